//! DNS over HTTPS (RFC 8484) on a shard: TLS (ALPN `h2`, `http/1.1`), then HTTP/2 or
//! HTTP/1.1 through hyper, GET `?dns=` and POST `application/dns-message` on `/dns-query`.
//!
//! Limits (also in the README): 100 concurrent streams per HTTP/2 connection, 16 KiB of
//! decoded headers, at most 20 pending reset streams and 200 locally reset streams before
//! the connection is closed (rapid reset, MadeYouReset), 64 KiB of request body, and an
//! idle timeout of 30 s since the latest request (1 s when the shard is under pressure,
//! see [`super::conns`]) after which the connection is told to go away (GOAWAY) and is
//! closed at the latest 5 s later.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use monoio::net::TcpStream;
use monoio_compat::hyper::{MonoioExecutor, MonoioIo, MonoioTimer};

use super::conns::{ConnGuard, Cut, Phase};
use super::ctx::ShardCtx;
use super::handshake::{self, Refused};
use super::report::Reporter;
use super::serve::{self, Listener, Served};
use crate::config::Transport;
use crate::dns::answer::REPLY_CAPACITY;
use crate::dns::pipeline::ListenerKey;
use crate::dns::reply::min_ttl;
use crate::dns::{Ctx, Scratch, wire};

/// The DoH path (CoreDNS and RFC 8484 examples use it).
pub const PATH: &str = "/dns-query";
/// The media type of DNS messages (RFC 8484 §6).
pub const DNS_MESSAGE: &str = "application/dns-message";
/// Largest DNS message in a request body.
const MAX_BODY: usize = 65535;
/// Concurrent HTTP/2 streams per connection.
const MAX_STREAMS: u32 = 100;
/// Decoded header bytes per request.
const MAX_HEADER_LIST: u32 = 16 * 1024;
/// Idle time before GOAWAY.
pub const IDLE: Duration = Duration::from_secs(30);
/// Least time for an HTTP/1.1 request's headers (`timeouts { read }` may give more).
const HEADER_READ: Duration = Duration::from_secs(5);
/// Time given to in-flight requests after GOAWAY.
const DRAIN: Duration = Duration::from_secs(5);

/// Serves one DoH connection: the handshake, then HTTP/2 or HTTP/1.1 until either side
/// closes, the connection is idle past its limit (GOAWAY, then at most [`DRAIN`] for what is
/// in flight), or it is evicted for a newcomer.
pub(crate) async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    key: ListenerKey,
    ctx: Rc<ShardCtx>,
    guard: &ConnGuard,
) -> Result<(), Refused> {
    let tls = handshake::accept(stream, peer, &key, &ctx, guard).await?;
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = MonoioIo::new(tls);
    let reporter = Rc::new(Reporter::new(&ctx, Transport::Https));
    let service = {
        let ctx = ctx.clone();
        hyper::service::service_fn(move |req| {
            // Idle counts from the start of the latest request.
            guard.set_phase(Phase::Idle(Instant::now()));
            let answering = h2.then(|| Answering(Some(ctx.clone())));
            let handled = handle(req, ctx.clone(), reporter.clone(), key, (peer, h2));
            async move {
                let r = handled.await;
                if let Some(mut a) = answering {
                    a.0 = None;
                }
                r
            }
        })
    };
    if h2 {
        let conn = hyper::server::conn::http2::Builder::new(MonoioExecutor)
            .timer(MonoioTimer)
            .max_concurrent_streams(MAX_STREAMS)
            .max_header_list_size(MAX_HEADER_LIST)
            .max_pending_accept_reset_streams(20)
            .max_local_error_reset_streams(200)
            .max_send_buf_size(256 * 1024)
            .serve_connection(io, service);
        let errored = drive(conn, guard, |c| c.graceful_shutdown()).await?;
        if errored {
            ctx.stats().http2_resets[RESET_CONNECTION].incr();
        }
        Ok(())
    } else {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(MonoioTimer)
            .header_read_timeout(guard.timeouts().message.max(HEADER_READ))
            .max_buf_size(64 * 1024)
            .keep_alive(true)
            .serve_connection(io, service);
        drive(conn, guard, |c| c.graceful_shutdown()).await.map(drop)
    }
}

/// Runs a connection until it ends, sending it away once idle and dropping it if it does
/// not finish after that, or at once when evicted. `Ok(true)`: it ended on an error (for
/// HTTP/2: a GOAWAY of ours or the peer's, a reset flood, a broken frame, or the transport
/// failing).
async fn drive<C, E>(conn: C, guard: &ConnGuard, shutdown: impl Fn(std::pin::Pin<&mut C>)) -> Result<bool, Refused>
where
    C: std::future::Future<Output = Result<(), E>>,
{
    let mut conn = std::pin::pin!(conn);
    match guard.watch(conn.as_mut()).await {
        Ok(Ok(())) => Ok(false),
        Ok(Err(_)) => Ok(true),
        Err(Cut::Evicted) => Err(Refused::Evicted),
        Err(Cut::Timeout) => {
            shutdown(conn.as_mut());
            let _ = monoio::time::timeout(DRAIN, conn.as_mut()).await;
            Ok(false)
        }
    }
}

/// `http2_resets` slots: a stream cut off before its response, a connection ended on an
/// HTTP/2 error.
pub const RESET_STREAM: usize = 0;
/// See [`RESET_STREAM`].
pub const RESET_CONNECTION: usize = 1;

/// Held while an HTTP/2 request is answered: dropped before its response (the client reset
/// the stream after its body, or the connection went away), it counts a reset. A reset
/// while the body is read ends that read instead, and is counted there.
struct Answering(Option<Rc<ShardCtx>>);

impl Drop for Answering {
    fn drop(&mut self) {
        if let Some(ctx) = &self.0 {
            ctx.stats().http2_resets[RESET_STREAM].incr();
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static("text/plain"));
    r
}

async fn handle(
    req: Request<Incoming>,
    ctx: Rc<ShardCtx>,
    reporter: Rc<Reporter>,
    key: ListenerKey,
    (peer, h2): (SocketAddr, bool),
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The whole request is read before any response, whatever the response will be: a reply
    // sent while the request stream is open lets the stream be reset under the client's
    // later frames, and a body that contradicts its content-length must be a stream error
    // (RFC 9113 §8.1.1), which h2 only sees while reading it.
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "DNS message too large\n"));
    }
    let (head, body) = req.into_parts();
    // A GET's stream usually ends with its headers: nothing to read.
    let body = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new()
    } else {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "DNS message too large\n"));
            }
            // A body shorter or longer than its content-length, or a reset stream: over
            // HTTP/2 both are a stream reset (h2 resets a stream whose body contradicts its
            // content-length with PROTOCOL_ERROR, RFC 9113 §8.1.1).
            Err(_) => {
                if h2 {
                    ctx.stats().http2_resets[RESET_STREAM].incr();
                }
                return Ok(plain(StatusCode::BAD_REQUEST, "bad request body\n"));
            }
        }
    };
    if head.uri.path() != PATH {
        return Ok(plain(
            StatusCode::NOT_FOUND,
            "not found: DNS queries go to /dns-query\n",
        ));
    }
    let query = match head.method {
        Method::GET => match get_query(head.uri.query()) {
            Ok(q) => q,
            Err(why) => return Ok(plain(StatusCode::BAD_REQUEST, why)),
        },
        Method::POST => {
            let ctype = head.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
            if !ctype.is_some_and(|c| c.eq_ignore_ascii_case(DNS_MESSAGE)) {
                return Ok(plain(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content-type must be application/dns-message\n",
                ));
            }
            body.to_vec()
        }
        method => {
            // A response to HEAD has no body (RFC 9110 §9.3.2).
            let mut r = if method == Method::HEAD {
                Response::new(Full::new(Bytes::new()))
            } else {
                plain(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST\n")
            };
            *r.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            r.headers_mut()
                .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, POST"));
            return Ok(r);
        }
    };
    Ok(resolve(&query, &ctx, &reporter, key, peer).await)
}

/// `dns=` of a GET: base64url without padding (RFC 8484 §4.1, §6).
pub fn get_query(query: Option<&str>) -> Result<Vec<u8>, &'static str> {
    let value = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("dns="))
        .ok_or("missing dns parameter\n")?;
    if value.contains('=') || value.contains('%') {
        return Err("dns must be base64url without padding\n");
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| "dns is not base64url\n")?;
    if bytes.len() > MAX_BODY {
        return Err("DNS message too large\n");
    }
    Ok(bytes)
}

/// Answers a DNS message; 400 when it is not one (RFC 8484 §4.2.1: DNS errors are 200).
/// A message whose header and question parse is DNS (and earns a DNS answer, FORMERR
/// included); anything else (no reply, or one without a question) is a bad HTTP request.
async fn resolve(
    query: &[u8],
    ctx: &Rc<ShardCtx>,
    reporter: &Rc<Reporter>,
    key: ListenerKey,
    peer: SocketAddr,
) -> Response<Full<Bytes>> {
    let mut out = Vec::with_capacity(REPLY_CAPACITY.min(4096));
    // The snapshot and challenge guards must not live across the wait for upstreams.
    let pending = {
        let snapshot = ctx.shared.snapshot.load();
        let challenges = ctx.shared.challenges.load();
        let listener = Listener {
            shard: ctx,
            key,
            snapshot: &snapshot,
            dns: Ctx {
                route: snapshot.route(&key),
                transport: Transport::Https,
                challenges: Some(&challenges),
                client: None,
            },
            reporter,
            received: None,
        };
        match serve::query(&listener, peer, query, &mut Scratch::new(), &mut out) {
            Served::Reply if wire::count(&out, 0) == 1 => return dns_response(ctx, out),
            Served::Drop(crate::dns::request::DropReason::Policy) => {
                return plain(StatusCode::FORBIDDEN, "refused by policy\n");
            }
            // Transfers go over TCP and TLS only: the core never gives one over DoH.
            Served::Reply | Served::Drop(_) | Served::Transfer(_) => {
                return plain(StatusCode::BAD_REQUEST, "not a DNS query\n");
            }
            Served::Later(pending) => pending,
        }
    };
    match pending.run(reporter, peer).await {
        Some(reply) => dns_response(ctx, reply),
        // `rrl` limits UDP only; were it to drop a reply here, this is what the client sees.
        None => plain(StatusCode::TOO_MANY_REQUESTS, "rate limited\n"),
    }
}

/// A 200 response carrying a DNS reply, cacheable for its smallest TTL (RFC 8484 §5.1).
fn dns_response(ctx: &ShardCtx, out: Vec<u8>) -> Response<Full<Bytes>> {
    ctx.stats().doh_answered.incr();
    let max_age = min_ttl(&out).unwrap_or(0);
    let len = out.len();
    let mut r = Response::new(Full::new(Bytes::from(out)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, hyper::header::HeaderValue::from_static(DNS_MESSAGE));
    h.insert(CONTENT_LENGTH, hyper::header::HeaderValue::from(len));
    if let Ok(v) = hyper::header::HeaderValue::from_str(&format!("max-age={max_age}")) {
        h.insert(CACHE_CONTROL, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_parameter_rules() {
        assert_eq!(get_query(Some("dns=AAABAAABAAAAAAAA")).unwrap().len(), 12);
        assert_eq!(get_query(Some("x=1&dns=AAABAAABAAAAAAAA")).unwrap().len(), 12);
        assert!(get_query(Some("dns=AAABAAABAAAAAAA=")).is_err(), "padding");
        assert!(get_query(Some("dns=%%%")).is_err());
        assert!(get_query(Some("dns=AA+/")).is_err(), "standard alphabet");
        assert!(get_query(Some("other=1")).is_err());
        assert!(get_query(None).is_err());
    }
}
