//! DNS over TCP (RFC 7766, RFC 1035 §4.2.2): 2-byte framing, pipelined queries answered as
//! they are read, timeouts for idle and stalled connections, and caps per shard and per
//! client prefix.
//!
//! Limits (also in the README):
//! - idle timeout 10 s between messages, 1 s once under pressure (3/4 of the shard's cap);
//! - a message that has started must arrive whole within 1 s (Knot uses 0.5 s);
//! - a reply batch must be written within 5 s, and at most 128 KiB of replies are queued per
//!   connection before we wait for the client to read them;
//! - a length prefix of 0 closes the connection;
//! - beyond the per-shard cap, or the per-prefix cap (/24 for IPv4, /56 for IPv6), a new
//!   connection is accepted and closed at once; existing ones are not disturbed;
//! - out of file descriptors (EMFILE/ENFILE): accept backs off 100 ms instead of spinning;
//! - DNS over TLS: the handshake must finish within 5 s; after it, the rules above apply.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use monoio::net::{TcpListener, TcpStream};

use super::Reporter;
use super::forwarded::{self, Now};
use super::handshake::{self, Refused};
use super::outbox::Outbox;
use super::stream::{self, StreamRead, StreamWrite, frame_len};
use super::udp::{RouteCache, rate_ok};
use crate::config::Transport;
use crate::dns::answer::REPLY_CAPACITY;
use crate::dns::pipeline::ListenerKey;
use crate::dns::reply::Delivery;
use crate::dns::resolve::Proto;
use crate::dns::{Ctx, Outcome, answer};
use crate::shard::ShardCtx;

/// Timeouts and caps of TCP connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// Open connections per shard.
    pub per_shard: usize,
    /// Open connections per client prefix per shard.
    pub per_prefix: usize,
    /// Idle time allowed between messages.
    pub idle: Duration,
    /// Idle time allowed when the shard is near its cap.
    pub idle_under_pressure: Duration,
    /// Time for the rest of a message once its first byte arrived.
    pub message: Duration,
    /// Time to write a batch of replies.
    pub write: Duration,
    /// Time for a TLS handshake.
    pub handshake: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            per_shard: 1024,
            per_prefix: 256,
            idle: Duration::from_secs(10),
            idle_under_pressure: Duration::from_secs(1),
            message: Duration::from_secs(1),
            write: Duration::from_secs(5),
            handshake: Duration::from_secs(5),
        }
    }
}

/// Initial read buffer per connection; grows for large messages.
const INITIAL_READ_BUFFER: usize = 4096;
/// Back-off after accept fails for lack of resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// The open connections of one shard.
pub struct Conns {
    limits: ConnLimits,
    open: Cell<usize>,
    per_prefix: RefCell<HashMap<Prefix, usize>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Prefix {
    V4([u8; 3]),
    V6([u8; 7]),
}

fn prefix(ip: IpAddr) -> Prefix {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            Prefix::V4([o[0], o[1], o[2]])
        }
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => prefix(IpAddr::V4(v4)),
            None => {
                let o = a.octets();
                Prefix::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6]])
            }
        },
    }
}

impl Conns {
    /// Tracking for one shard.
    pub fn new(limits: ConnLimits) -> Self {
        Conns {
            limits,
            open: Cell::new(0),
            per_prefix: RefCell::new(HashMap::new()),
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.get()
    }

    fn try_open(self: &Rc<Self>, peer: IpAddr) -> Option<ConnGuard> {
        if self.open.get() >= self.limits.per_shard {
            return None;
        }
        let p = prefix(peer);
        let mut map = self.per_prefix.borrow_mut();
        let n = map.entry(p).or_insert(0);
        if *n >= self.limits.per_prefix {
            return None;
        }
        *n += 1;
        self.open.set(self.open.get() + 1);
        Some(ConnGuard {
            conns: self.clone(),
            prefix: p,
        })
    }

    fn idle_timeout(&self) -> Duration {
        if self.open.get() * 4 >= self.limits.per_shard * 3 {
            self.limits.idle_under_pressure
        } else {
            self.limits.idle
        }
    }
}

/// Releases a connection's slot when dropped.
struct ConnGuard {
    conns: Rc<Conns>,
    prefix: Prefix,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conns.open.set(self.conns.open.get().saturating_sub(1));
        let mut map = self.conns.per_prefix.borrow_mut();
        if let Some(n) = map.get_mut(&self.prefix) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.prefix);
            }
        }
    }
}

/// Accepts connections on `listener` until `stop` fires.
pub async fn serve(listener: TcpListener, key: ListenerKey, ctx: Rc<ShardCtx>, mut stop: oneshot::Receiver<()>) {
    let mut last_err_log = None;
    tracing::debug!(listener = %key, "tcp listener started");
    loop {
        let accepted = monoio::select! {
            _ = &mut stop => break,
            r = listener.accept() => r,
        };
        match accepted {
            Ok((stream, peer)) => {
                let Some(guard) = ctx.conns.try_open(peer.ip()) else {
                    // Over a cap: accept-and-close keeps the backlog moving.
                    ctx.stats().tcp_refused.incr();
                    drop(stream);
                    continue;
                };
                ctx.stats().tcp_accepted.incr();
                let _ = stream.set_nodelay(true);
                monoio::spawn(connection(stream, peer, key, ctx.clone(), guard));
            }
            Err(e) => {
                let scarce = matches!(
                    e.raw_os_error(),
                    Some(libc_errno::EMFILE | libc_errno::ENFILE | libc_errno::ENOBUFS | libc_errno::ENOMEM)
                );
                if rate_ok(&mut last_err_log) {
                    tracing::warn!(listener = %key, error = %e, "tcp accept failed");
                }
                if scarce {
                    monoio::time::sleep(ACCEPT_BACKOFF).await;
                }
            }
        }
    }
    tracing::debug!(listener = %key, "tcp listener stopped");
}

/// errno values of interest (Linux).
mod libc_errno {
    pub const ENOMEM: i32 = 12;
    pub const ENFILE: i32 = 23;
    pub const EMFILE: i32 = 24;
    pub const ENOBUFS: i32 = 105;
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Eof,
    ZeroLength,
    Timeout,
    Io,
    /// The TLS handshake failed (or no certificate exists yet).
    Handshake,
}

async fn connection(stream: TcpStream, peer: SocketAddr, key: ListenerKey, ctx: Rc<ShardCtx>, guard: ConnGuard) {
    let end = match key.transport {
        Transport::Tls => tls_connection(stream, peer, key, &ctx, &guard).await,
        Transport::Https => {
            match super::doh::connection(stream, peer, key, ctx.clone(), guard.conns.limits.handshake).await {
                super::doh::DohEnd::HandshakeTimeout => End::Timeout,
                super::doh::DohEnd::HandshakeFailed => End::Handshake,
                super::doh::DohEnd::Done => End::Eof,
            }
        }
        Transport::Dns => {
            let (r, w) = stream::tcp(stream);
            serve_connection(r, w, peer, key, &ctx, &guard, "tcp").await
        }
    };
    match end {
        End::Timeout => ctx.stats().tcp_timeouts.incr(),
        End::Handshake => ctx.stats().tls_handshake_failures.incr(),
        _ => {}
    }
    tracing::trace!(%peer, ?end, "connection closed");
    drop(guard);
}

/// DNS over TLS (RFC 7858): the handshake within [`ConnLimits::handshake`], then the same
/// framing as TCP.
async fn tls_connection(
    stream: TcpStream,
    peer: SocketAddr,
    key: ListenerKey,
    ctx: &Rc<ShardCtx>,
    guard: &ConnGuard,
) -> End {
    match handshake::accept(stream, peer, &key, ctx, guard.conns.limits.handshake).await {
        Err(Refused::Timeout) => End::Timeout,
        Err(Refused::Failed) => End::Handshake,
        Ok(tls) => {
            let (r, w) = stream::tls(tls);
            serve_connection(r, w, peer, key, ctx, guard, "tls").await
        }
    }
}

/// Serves one connection: a reader answering as it reads, and a writer, joined by an
/// [`Outbox`].
async fn serve_connection<R: StreamRead, W: StreamWrite>(
    mut r: R,
    mut w: W,
    peer: SocketAddr,
    key: ListenerKey,
    ctx: &Rc<ShardCtx>,
    guard: &ConnGuard,
    proto: &'static str,
) -> End {
    let outbox = Rc::new(Outbox::default());
    let reader = async {
        let end = read_queries(&mut r, peer, key, ctx, guard, proto, &outbox).await;
        outbox.reader_done();
        end
    };
    let writer = async {
        let result = outbox.drain(&mut w, guard.conns.limits.write).await;
        if result.is_ok() {
            // FIN (and close_notify over TLS), best effort; not after a failed or timed-out
            // write, whose peer is not reading.
            let _ = monoio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
        }
        result
    };
    let (end, written) = monoio::join!(reader, writer);
    match written {
        Err(true) => End::Timeout,
        Err(false) => End::Io,
        Ok(()) => end,
    }
}

#[allow(clippy::too_many_arguments)]
async fn read_queries<R: StreamRead>(
    stream: &mut R,
    peer: SocketAddr,
    key: ListenerKey,
    ctx: &Rc<ShardCtx>,
    guard: &ConnGuard,
    proto: &'static str,
    outbox: &Rc<Outbox>,
) -> End {
    let mut snapshots = arc_swap::Cache::new(&ctx.shared.snapshot);
    let mut challenges = arc_swap::Cache::new(&ctx.shared.challenges);
    let mut route_of = RouteCache::default();
    let reporter = Rc::new(Reporter::new(ctx, proto));
    let limits = guard.conns.limits;
    let keepalive = u16::try_from(limits.idle.as_millis() / 100).ok();
    let mut input: Vec<u8> = Vec::with_capacity(INITIAL_READ_BUFFER);
    let mut out: Vec<u8> = Vec::new();
    loop {
        // Answer every complete message we hold.
        let mut used = 0;
        while let Some(len) = frame_len(&input[used..]) {
            if len == 0 {
                return End::ZeroLength;
            }
            if input.len() - used < 2 + len {
                break;
            }
            if out.capacity() == 0 {
                out.reserve(REPLY_CAPACITY);
            }
            let query = &input[used + 2..used + 2 + len];
            let snapshot = snapshots.load();
            let route = route_of.get(snapshot, &key);
            let started = route.is_some_and(|r| r.logs()).then(Instant::now);
            let c = Ctx {
                route,
                transport: Delivery {
                    proto: Proto::Tcp,
                    keepalive,
                    encrypted: proto == "tls",
                },
                challenges: Some(challenges.load()),
            };
            let mut outcome = answer(&c, query, &mut out);
            if let Outcome::Forward { block } = outcome {
                match forwarded::start(ctx, snapshot, key, block, query, c.transport, started, &mut out) {
                    Now::Reply(o) => outcome = o,
                    Now::Later(pending) => {
                        let open = outbox.forward_opened();
                        let (outbox, reporter, ctx) = (outbox.clone(), reporter.clone(), ctx.clone());
                        monoio::spawn(async move {
                            if let Some(reply) = pending.run(&reporter, peer).await {
                                outbox.push(&reply);
                                ctx.stats().tcp_answered.incr();
                            }
                            drop(open);
                        });
                    }
                }
            }
            if let Outcome::Reply { .. } = outcome {
                // `answer` never writes more than 65535 octets over a stream.
                outbox.push(&out);
                ctx.stats().tcp_answered.incr();
                reporter.after(route, &outcome, (peer, query, &out), started);
            }
            used += 2 + len;
            if !outbox.room().await {
                return End::Io;
            }
        }
        input.drain(..used);
        // Room for the rest of the current message.
        let need = match frame_len(&input) {
            Some(len) => 2 + len,
            None => 2,
        };
        if input.capacity() < need.max(INITIAL_READ_BUFFER) {
            input.reserve(need.max(INITIAL_READ_BUFFER) - input.len());
        }
        let wait = if input.is_empty() {
            guard.conns.idle_timeout()
        } else {
            limits.message
        };
        let read = monoio::time::timeout(wait, stream.read_some(input));
        let read = monoio::select! {
            r = read => r,
            _ = outbox.writer_failed() => return End::Io,
        };
        match read {
            Err(_) => return End::Timeout,
            Ok((Ok(0), _)) => return End::Eof,
            Ok((Ok(_), buf)) => input = buf,
            Ok((Err(_), _)) => return End::Io,
        }
    }
}
