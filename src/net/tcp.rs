//! DNS over TCP (RFC 7766, RFC 1035 §4.2.2): 2-byte framing, pipelined queries answered as
//! they are read, timeouts for idle and stalled connections, and caps per shard and per
//! client prefix.
//!
//! Limits (also in the README; caps, eviction and pressure are in [`super::conns`]):
//! - idle timeout 10 s between messages, 1 s once under pressure;
//! - a message that has started must arrive whole within 1 s of its first byte (Knot uses
//!   0.5 s);
//! - a reply batch must be written within 5 s, and at most 128 KiB of replies are queued per
//!   connection before we wait for the client to read them;
//! - a length prefix of 0 closes the connection;
//! - out of file descriptors (EMFILE/ENFILE): accept backs off 100 ms instead of spinning;
//! - DNS over TLS: the handshake must finish within 5 s (1 s under pressure); after it, the
//!   rules above apply.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use monoio::net::{TcpListener, TcpStream};

use super::conns::{ConnGuard, ConnTimeouts, Cut, Phase};
use super::ctx::ShardCtx;
use super::handshake::{self, Refused};
use super::outbox::Outbox;
use super::report::Reporter;
use super::serve::{self, Listener, Served};
use super::udp::{RouteCache, rate_ok};
use crate::config::Transport;
use crate::dns::answer::REPLY_CAPACITY;
use crate::dns::pipeline::ListenerKey;
use crate::dns::{Ctx, Scratch};
use crate::stream::{self, StreamRead, StreamWrite, frame_len};

/// Initial read buffer per connection; grows for large messages.
const INITIAL_READ_BUFFER: usize = 4096;
/// Back-off after accept fails for lack of resources.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
                let now = Instant::now();
                let limits = ctx.conns.limits();
                let (phase, idle) = match key.transport {
                    Transport::Tls => (Phase::Handshake(now), limits.idle),
                    Transport::Https => (Phase::Handshake(now), super::doh::IDLE),
                    Transport::Udp | Transport::Tcp => (Phase::Idle(now), limits.idle),
                };
                // The listener's `timeouts` as they are when the connection opens.
                let set = ctx
                    .shared
                    .snapshot
                    .load()
                    .route(&key)
                    .map(|r| *r.timeouts())
                    .unwrap_or_default();
                let timeouts = ConnTimeouts {
                    idle: set.idle.unwrap_or(idle),
                    message: set.read.unwrap_or(limits.message),
                    write: set.write.unwrap_or(limits.write),
                    max_queries: set.max_tcp_queries.flatten(),
                };
                let guard = match ctx.conns.try_open(peer.ip(), phase, timeouts) {
                    Ok((guard, evicted)) => {
                        ctx.stats().conn_evicted.add(evicted as u64);
                        guard
                    }
                    Err(why) => {
                        // Over a cap: accept-and-close keeps the backlog moving.
                        ctx.stats().tcp_refused.incr();
                        ctx.stats().tcp_refusals[why as usize].incr();
                        drop(stream);
                        continue;
                    }
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

impl From<Refused> for End {
    fn from(r: Refused) -> End {
        match r {
            Refused::Timeout => End::Timeout,
            Refused::Evicted => End::Evicted,
            Refused::Failed => End::Handshake,
        }
    }
}

/// Why a connection ended.
#[derive(Debug)]
enum End {
    Eof,
    /// `maxtcpqueries` queries were answered.
    Served,
    ZeroLength,
    Timeout,
    /// Closed to make room for a newcomer.
    Evicted,
    Io,
    /// The TLS handshake failed (or no certificate exists yet).
    Handshake,
}

async fn connection(stream: TcpStream, peer: SocketAddr, key: ListenerKey, ctx: Rc<ShardCtx>, guard: ConnGuard) {
    let end = match key.transport {
        Transport::Tls => tls_connection(stream, peer, key, &ctx, &guard).await,
        Transport::Https => match super::doh::connection(stream, peer, key, ctx.clone(), &guard).await {
            Ok(()) => End::Eof,
            Err(e) => e.into(),
        },
        Transport::Udp | Transport::Tcp => {
            let (r, w) = stream::tcp(stream);
            serve_connection(r, w, peer, key, &ctx, &guard).await
        }
    };
    match end {
        End::Timeout => ctx.stats().tcp_timeouts.incr(),
        End::Evicted => {}
        End::Handshake => ctx.stats().tls_handshake_failures.incr(),
        _ => {}
    }
    tracing::trace!(%peer, ?end, "connection closed");
    drop(guard);
}

/// DNS over TLS (RFC 7858): the handshake, then the same framing as TCP.
async fn tls_connection(
    stream: TcpStream,
    peer: SocketAddr,
    key: ListenerKey,
    ctx: &Rc<ShardCtx>,
    guard: &ConnGuard,
) -> End {
    match handshake::accept(stream, peer, &key, ctx, guard).await {
        Err(e) => e.into(),
        Ok(tls) => {
            let (r, w) = stream::tls(tls);
            serve_connection(r, w, peer, key, ctx, guard).await
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
) -> End {
    let outbox = Rc::new(Outbox::default());
    let reader = async {
        let end = read_queries(&mut r, peer, key, ctx, guard, &outbox).await;
        outbox.reader_done();
        end
    };
    let writer = async {
        let result = outbox.drain(&mut w, guard.timeouts().write).await;
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
    outbox: &Rc<Outbox>,
) -> End {
    let mut snapshots = arc_swap::Cache::new(&ctx.shared.snapshot);
    let mut challenges = arc_swap::Cache::new(&ctx.shared.challenges);
    let mut route_of = RouteCache::default();
    let reporter = Rc::new(Reporter::new(ctx, key.transport));
    let mut input: Vec<u8> = Vec::with_capacity(INITIAL_READ_BUFFER);
    let mut out: Vec<u8> = Vec::new();
    let mut scratch = Scratch::new();
    // When the last read completed, and when the first byte of the message we hold part of
    // arrived: the whole message is due within the message limit of that (issue 10.2).
    let mut read_at = Instant::now();
    let mut message_since: Option<Instant> = None;
    let mut answered: u32 = 0;
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
            let listener = Listener {
                shard: ctx,
                key,
                snapshot,
                dns: Ctx {
                    route: route_of.get(snapshot, &key),
                    transport: key.transport,
                    challenges: Some(challenges.load()),
                    client: None,
                },
                reporter: &reporter,
                received: None,
            };
            let served = serve::query(&listener, peer, query, &mut scratch, &mut out);
            if !matches!(served, Served::Drop(_)) {
                answered += 1;
            }
            match served {
                Served::Reply => {
                    // `answer` never writes more than 65535 octets over a stream.
                    outbox.push(&out);
                    ctx.stats().tcp_answered.incr();
                }
                // Short messages and responses get no reply, over a stream too.
                Served::Drop(_) => {}
                Served::Transfer(mut axfr) => {
                    // One message at a time, each once the writer has room: a slow reader
                    // holds back the transfer, not the shard's memory.
                    outbox.push(&out);
                    ctx.stats().tcp_answered.incr();
                    while axfr.next_message(&mut out) {
                        if !outbox.room().await {
                            return End::Io;
                        }
                        outbox.push(&out);
                    }
                }
                Served::Later(pending) => {
                    let open = outbox.forward_opened();
                    let (outbox, reporter, ctx) = (outbox.clone(), reporter.clone(), ctx.clone());
                    monoio::spawn(async move {
                        // `rrl` limits UDP only: a stream's reply always comes.
                        if let Some(reply) = pending.run(&reporter, peer).await {
                            outbox.push(&reply);
                            ctx.stats().tcp_answered.incr();
                        }
                        drop(open);
                    });
                }
            }
            used += 2 + len;
            if !outbox.room().await {
                return End::Io;
            }
            if guard.timeouts().max_queries.is_some_and(|max| answered >= max) {
                // `timeouts { maxtcpqueries }`: the replies go out, then FIN.
                return End::Served;
            }
        }
        input.drain(..used);
        if input.is_empty() {
            message_since = None;
            guard.set_phase(Phase::Idle(Instant::now()));
        } else {
            // What is left began in the last read, unless it is the rest of a message whose
            // first part came earlier.
            let since = match message_since {
                Some(t) if used == 0 => t,
                _ => read_at,
            };
            message_since = Some(since);
            guard.set_phase(Phase::Message(since));
        }
        // Room for the rest of the current message.
        let need = 2 + frame_len(&input).unwrap_or(0);
        if input.capacity() < need.max(INITIAL_READ_BUFFER) {
            input.reserve(need.max(INITIAL_READ_BUFFER) - input.len());
        }
        let read = guard
            .watch(async {
                monoio::select! {
                    r = stream.read_some(input) => Some(r),
                    _ = outbox.writer_failed() => None,
                }
            })
            .await;
        match read {
            Err(Cut::Timeout) => return End::Timeout,
            Err(Cut::Evicted) => return End::Evicted,
            Ok(None) => return End::Io,
            Ok(Some((Ok(0), _))) => return End::Eof,
            Ok(Some((Ok(_), buf))) => input = buf,
            Ok(Some((Err(_), _))) => return End::Io,
        }
        read_at = Instant::now();
        guard.set_phase(Phase::Busy);
    }
}
