//! The UDP loop of one shard and one address: receive a batch (recvmmsg), answer each query
//! inline, send the replies back in one call (sendmmsg). Forwarded queries that miss the
//! cache are answered by a task of their own.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use monoio::net::udp::UdpSocket;

use super::ctx::ShardCtx;
use super::mmsg::{BATCH, Batch};
use super::report::Reporter;
use super::serve::{self, Listener, Pending, Served};
use super::shed::{Resize, Shedder};
use super::socket::UDP_RECV_BUFFER;
use crate::config::Transport;
use crate::dns::pipeline::{ListenerKey, Route, Snapshot};
use crate::dns::request::DropReason;
use crate::dns::{Ctx, Scratch};

/// How often a degraded state (drops, socket errors) may be logged per socket.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `sock` until `stop` fires.
pub async fn serve(sock: Rc<UdpSocket>, key: ListenerKey, ctx: Rc<ShardCtx>, mut stop: oneshot::Receiver<()>) {
    let mut snapshots = arc_swap::Cache::new(&ctx.shared.snapshot);
    let mut challenges = arc_swap::Cache::new(&ctx.shared.challenges);
    let mut route_of = RouteCache::default();
    let mut batch = Batch::default();
    let mut scratch = Scratch::new();
    let fd = sock.as_raw_fd();
    let mut last_drop_log: Option<Instant> = None;
    let mut last_err_log: Option<Instant> = None;
    let reporter = Rc::new(Reporter::batched(&ctx, Transport::Udp));
    let mut shedding: Option<Shedder> = None;
    tracing::debug!(listener = %key, "udp listener started");
    loop {
        if !matches!(stop.try_recv(), Ok(None)) {
            break;
        }
        let n = match batch.recv(fd) {
            Ok(0) => {
                // Nothing waiting: sleep until the socket is readable (or we are stopped).
                monoio::select! {
                    _ = &mut stop => break,
                    _ = sock.readable(false) => {}
                }
                continue;
            }
            Ok(n) => n,
            Err(e) => {
                if rate_ok(&mut last_err_log) {
                    tracing::warn!(listener = %key, error = %e, "udp receive failed");
                }
                yield_now().await;
                continue;
            }
        };
        let snapshot = snapshots.load();
        let route = route_of.get(snapshot, &key);
        let sheds = route.is_some_and(Route::sheds);
        if sheds != shedding.is_some() {
            shedding = shed_turned(&sock, &key, &mut batch, sheds);
        }
        // The realtime clock of the arrival stamps, once per batch.
        let stamped_now = shedding.as_ref().map(|_| super::sys::realtime_nanos());
        // One clock read for the batch, when something reports its queries.
        let received = route.is_some_and(|r| r.logs() || r.metered()).then(Instant::now);
        let listener = Listener {
            shard: &ctx,
            key,
            snapshot,
            dns: Ctx {
                route,
                transport: Transport::Udp,
                challenges: Some(challenges.load()),
                client: None,
            },
            reporter: &reporter,
            received,
        };
        for i in 0..n {
            if let Some(now) = stamped_now {
                if Shedder::stale(batch.arrived(i), now) {
                    ctx.stats().shed[0].incr();
                    continue;
                }
            }
            let peer = batch.peer(i);
            let (query, out, send) = batch.slot(i);
            let Some(query) = query else {
                dropped(&ctx, &key, &mut last_drop_log, DropReason::Oversized);
                continue;
            };
            match serve::query(&listener, peer, query, &mut scratch, out) {
                Served::Reply => *send = true,
                // Transfers go over TCP and TLS only: the core never gives one here.
                Served::Transfer(_) => {}
                Served::Drop(reason) => dropped(&ctx, &key, &mut last_drop_log, reason),
                Served::Later(pending) => {
                    monoio::spawn(send_later(pending, sock.clone(), reporter.clone(), peer, ctx.clone()));
                }
            }
        }
        reporter.flush(route);
        if let (Some(s), Some(now)) = (shedding.as_mut(), stamped_now) {
            if let Resize::To(bytes) = s.after_batch(n, BATCH, batch.arrived(0), now) {
                // Best effort: the kernel may cap it; a failure leaves the old size.
                let _ = super::sys::set_recv_buffer(&*sock, bytes);
                if bytes < UDP_RECV_BUFFER && rate_ok(&mut last_drop_log) {
                    tracing::warn!(listener = %key, receive_buffer = bytes, "shard cannot keep up: shedding queries that waited over {:?} and shrinking the receive buffer", super::shed::MAX_WAIT);
                }
            }
        }
        batch.prepare_send(n);
        let mut failed = 0;
        let sent = loop {
            match batch.send(fd, &mut failed) {
                Ok(sent) => break sent,
                // The socket buffer is full: wait until it drains (UDP has no other backpressure).
                Err(_) => {
                    if sock.writable(false).await.is_err() {
                        break 0;
                    }
                }
            }
        };
        ctx.stats().udp_answered.add((sent - failed) as u64);
        if failed > 0 && rate_ok(&mut last_err_log) {
            tracing::warn!(listener = %key, failed, "udp send failed");
        }
        if n == BATCH {
            // More is probably waiting: let the shard's other tasks run first.
            yield_now().await;
        }
    }
    tracing::debug!(listener = %key, "udp listener stopped");
}

/// `shed` turned on or off for the listener: the socket's arrival stamps and its full
/// receive buffer follow.
fn shed_turned(sock: &UdpSocket, key: &ListenerKey, batch: &mut Batch, on: bool) -> Option<Shedder> {
    if let Err(e) = super::sys::set_arrival_stamps(sock, on) {
        tracing::warn!(listener = %key, error = %e, "shed: the kernel gives no arrival stamps; not shedding");
        batch.read_stamps(false);
        return None;
    }
    batch.read_stamps(on);
    let _ = super::sys::set_recv_buffer(sock, UDP_RECV_BUFFER);
    on.then(|| Shedder::new(UDP_RECV_BUFFER))
}

/// Counts (and now and then logs) a datagram dropped without a reply.
fn dropped(ctx: &ShardCtx, key: &ListenerKey, last: &mut Option<Instant>, reason: DropReason) {
    count_drop(ctx, reason);
    // A drop that `acl` or `rrl` asks for is meant, not a fault to report.
    if !matches!(reason, DropReason::Policy | DropReason::RateLimit) && rate_ok(last) {
        tracing::info!(listener = %key, ?reason, total = ctx.stats().udp_dropped.get(), "dropping malformed datagrams (short, oversized, or a response)");
    }
}

/// Counts a datagram dropped without a reply, by reason (`ShardStats::udp_drops`).
fn count_drop(ctx: &ShardCtx, reason: DropReason) {
    ctx.stats().udp_dropped.incr();
    let slot = match reason {
        DropReason::Short => 0,
        DropReason::Response => 1,
        DropReason::Oversized => 2,
        DropReason::Policy => 3,
        DropReason::RateLimit => 4,
    };
    ctx.stats().udp_drops[slot].incr();
}

/// Returns to the executor once, so other tasks of the shard run.
async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

/// Sends the reply of a forwarded query once its upstreams answer.
async fn send_later(
    pending: Box<Pending>,
    sock: Rc<UdpSocket>,
    reporter: Rc<Reporter>,
    peer: SocketAddr,
    ctx: Rc<ShardCtx>,
) {
    let Some(reply) = pending.run(&reporter, peer).await else {
        count_drop(&ctx, DropReason::RateLimit);
        return;
    };
    match sock.send_to(reply, peer).await.0 {
        Ok(_) => ctx.stats().udp_answered.incr(),
        Err(e) => tracing::debug!(%peer, error = %e, "udp send of a forwarded reply failed"),
    }
}

/// True at most once per [`LOG_EVERY`].
pub(crate) fn rate_ok(last: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    match last {
        Some(t) if now.duration_since(*t) < LOG_EVERY => false,
        _ => {
            *last = Some(now);
            true
        }
    }
}

/// Remembers which route of the current snapshot belongs to a listener, so the search runs
/// once per snapshot, not once per packet.
pub(crate) struct RouteCache {
    generation: u64,
    index: Option<usize>,
}

impl Default for RouteCache {
    fn default() -> Self {
        RouteCache {
            generation: u64::MAX,
            index: None,
        }
    }
}

impl RouteCache {
    pub(crate) fn get<'s>(&mut self, snap: &'s Arc<Snapshot>, key: &ListenerKey) -> Option<&'s Route> {
        if snap.generation != self.generation {
            self.generation = snap.generation;
            self.index = snap.listeners.iter().position(|(k, _)| k == key);
        }
        self.index.and_then(|i| snap.listeners.get(i)).map(|(_, r)| r)
    }
}
