//! The UDP loop of one shard and one address: receive, answer inline, send. Forwarded
//! queries that miss the cache are answered by a task of their own.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_channel::oneshot;
use monoio::net::udp::UdpSocket;

use super::Reporter;
use super::forwarded::{self, Now};
use crate::dns::answer::REPLY_CAPACITY;
use crate::dns::pipeline::{ListenerKey, Route, Snapshot};
use crate::dns::reply::Delivery;
use crate::dns::resolve::Proto;
use crate::dns::{Ctx, Outcome, answer};
use crate::shard::ShardCtx;

/// Largest datagram we read (a UDP payload can be up to 65507 octets over IPv4).
const RECV_BUFFER: usize = 65535;
/// How often a degraded state (drops, socket errors) may be logged per socket.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Serves `sock` until `stop` fires.
pub async fn serve(sock: Rc<UdpSocket>, key: ListenerKey, ctx: Rc<ShardCtx>, mut stop: oneshot::Receiver<()>) {
    let mut snapshots = arc_swap::Cache::new(&ctx.shared.snapshot);
    let mut challenges = arc_swap::Cache::new(&ctx.shared.challenges);
    let mut route_of = RouteCache::default();
    let mut buf = Vec::with_capacity(RECV_BUFFER);
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    let mut last_drop_log: Option<Instant> = None;
    let mut last_err_log: Option<Instant> = None;
    let reporter = Rc::new(Reporter::new(&ctx, "udp"));
    tracing::debug!(listener = %key, "udp listener started");
    loop {
        let recv = sock.recv_from(buf);
        let (res, b) = monoio::select! {
            _ = &mut stop => break,
            r = recv => r,
        };
        buf = b;
        let (n, peer) = match res {
            Ok(x) => x,
            Err(e) => {
                if rate_ok(&mut last_err_log) {
                    tracing::warn!(listener = %key, error = %e, "udp receive failed");
                }
                continue;
            }
        };
        let snapshot = snapshots.load();
        let route = route_of.get(snapshot, &key);
        let started = route.is_some_and(Route::logs).then(Instant::now);
        let c = Ctx {
            route,
            transport: Delivery {
                proto: Proto::Udp,
                keepalive: None,
                encrypted: false,
            },
            challenges: Some(challenges.load()),
        };
        let mut outcome = answer(&c, &buf[..n], &mut out);
        if let Outcome::Forward { block } = outcome {
            match forwarded::start(&ctx, snapshot, key, block, &buf[..n], c.transport, started, &mut out) {
                Now::Reply(o) => outcome = o,
                Now::Later(pending) => {
                    monoio::spawn(send_later(pending, sock.clone(), reporter.clone(), peer, ctx.clone()));
                    continue;
                }
            }
        }
        match outcome {
            Outcome::Drop(reason) => {
                ctx.stats().udp_dropped.incr();
                if rate_ok(&mut last_drop_log) {
                    tracing::info!(listener = %key, ?reason, total = ctx.stats().udp_dropped.get(), "dropping malformed datagrams (short, or a response)");
                }
            }
            Outcome::Forward { .. } => {}
            Outcome::Reply { .. } => {
                reporter.after(route, &outcome, (peer, &buf[..n], &out), started);
                let (res, o) = sock.send_to(out, peer).await;
                out = o;
                match res {
                    Ok(_) => ctx.stats().udp_answered.incr(),
                    Err(e) => {
                        if rate_ok(&mut last_err_log) {
                            tracing::warn!(listener = %key, %peer, error = %e, "udp send failed");
                        }
                    }
                }
            }
        }
    }
    tracing::debug!(listener = %key, "udp listener stopped");
}

/// Sends the reply of a forwarded query once its upstreams answer.
async fn send_later(
    pending: forwarded::Pending,
    sock: Rc<UdpSocket>,
    reporter: Rc<Reporter>,
    peer: SocketAddr,
    ctx: Rc<ShardCtx>,
) {
    let Some(reply) = pending.run(&reporter, peer).await else {
        return;
    };
    if sock.send_to(reply, peer).await.0.is_ok() {
        ctx.stats().udp_answered.incr();
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
