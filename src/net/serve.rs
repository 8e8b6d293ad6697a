//! One query, whatever the transport it came over: the core's answer; for a forwarded
//! query the cache's answer inline or a task that asks the upstreams; the block's query and
//! error logs either way. The UDP, TCP/DoT and DoH loops all call [`query`] and differ only
//! in how they send what it gives them.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use domain::base::iana::Rcode;

use super::ctx::ShardCtx;
use super::report::Reporter;
use crate::config::Transport;
use crate::dns::answer::{Asked, Plugin};
use crate::dns::pipeline::{ListenerKey, Route, Snapshot};
use crate::dns::request::DropReason;
use crate::dns::wire::{FLAGS1, FLAGS2, flags1, flags2};
use crate::dns::{Ctx, Forwarding, Outcome, Scratch, answer};
use crate::forward::{self, Cached, Plan};

/// What a serving loop holds while it answers queries of one listener: the shard, the
/// snapshot and route it loaded, the core's context and the block logs' reporter.
pub(crate) struct Listener<'a> {
    /// The shard.
    pub shard: &'a Rc<ShardCtx>,
    /// The listener.
    pub key: ListenerKey,
    /// The snapshot the route comes from (forwarded queries keep it for their logs).
    pub snapshot: &'a Arc<Snapshot>,
    /// The core's context: route, transport, challenges.
    pub dns: Ctx<'a>,
    /// Counts and logs the answers.
    pub reporter: &'a Rc<Reporter>,
    /// When the query arrived, if the loop knows (a UDP batch's arrival); otherwise the
    /// clock is read here when the route logs or counts queries.
    pub received: Option<Instant>,
}

/// What became of a query.
pub(crate) enum Served {
    /// `out` holds the reply (already logged).
    Reply,
    /// Nothing to send.
    Drop(DropReason),
    /// The reply comes from the upstreams: run this to get it (boxed: it carries the
    /// query's facts, and this path allocates for the upstream exchange anyway).
    Later(Box<Pending>),
}

/// Answers `wire` from `peer` into `out`, or says what to do instead; `scratch` is the
/// loop's, reused from query to query.
pub(crate) fn query(
    l: &Listener<'_>,
    peer: SocketAddr,
    wire: &[u8],
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Served {
    let route = l.dns.route;
    // Timed only when something reports it: a query log or the metrics.
    let started = route
        .is_some_and(|r| r.logs() || r.metered())
        .then(|| l.received.unwrap_or_else(Instant::now));
    let dns = Ctx {
        client: Some(peer),
        ..l.dns
    };
    let outcome = match answer(&dns, wire, scratch, out) {
        Outcome::Drop(reason) => return Served::Drop(reason),
        Outcome::Forward(f) => match cached(l, f, wire, started, out) {
            Some(pending) => return Served::Later(pending),
            None => reply_outcome(f.entry, Plugin::Cache, Asked::of(&f.request), out),
        },
        o @ Outcome::Reply { .. } => o,
    };
    shape(route, &outcome, out);
    l.reporter.answered(route, &outcome, (peer, wire, out), started);
    Served::Reply
}

/// The cache's reply in `out` (`None`), or the work of asking upstream.
fn cached(
    l: &Listener<'_>,
    f: Forwarding<'_>,
    wire: &[u8],
    started: Option<Instant>,
    out: &mut Vec<u8>,
) -> Option<Box<Pending>> {
    let fwd = &l.shard.forward;
    // The core forwards only queries with a question.
    let q = forward::Query::of(&f.request)?;
    match fwd.cached(f.plan, &q, wire, (l.dns.transport, f.request.nsid), out) {
        Cached::Hit { refresh } => {
            if refresh {
                monoio::spawn(forward::refresh(fwd.clone(), f.plan.clone(), q));
            }
            None
        }
        Cached::Miss => Some(Box::new(Pending {
            shard: l.shard.clone(),
            snapshot: l.snapshot.clone(),
            key: l.key,
            entry: f.entry,
            asked: Asked::of(&f.request),
            plan: f.plan.clone(),
            query: q,
            wire: wire.to_vec(),
            via: l.dns.transport,
            started,
        })),
    }
}

/// A forwarded query waiting for its upstreams.
pub(crate) struct Pending {
    shard: Rc<ShardCtx>,
    snapshot: Arc<Snapshot>,
    key: ListenerKey,
    entry: usize,
    asked: Asked,
    plan: Arc<Plan>,
    query: forward::Query,
    wire: Vec<u8>,
    via: Transport,
    started: Option<Instant>,
}

impl Pending {
    /// Asks upstream, reports the reply in the block's logs and returns it.
    pub(crate) async fn run(self, reporter: &Reporter, peer: SocketAddr) -> Vec<u8> {
        let forwarder = self.shard.forward.clone();
        let route = self.snapshot.route(&self.key);
        // The block's NSID, for a client that asked (the forwarder checks that).
        let nsid = route
            .and_then(|r| r.entry(self.entry))
            .and_then(|e| e.block.plugins.nsid.as_deref());
        let reply = forward::resolve(forwarder, self.plan, self.query, &self.wire, (self.via, nsid)).await;
        let outcome = reply_outcome(self.entry, Plugin::Forward, self.asked, &reply);
        let mut reply = reply;
        shape(route, &outcome, &mut reply);
        reporter.after(route, &outcome, (peer, &self.wire, &reply), self.started);
        reply
    }
}

/// What a block's plugins do to a finished reply: `loadbalance` shuffles its addresses,
/// `header` sets and clears its flags.
#[inline]
fn shape(route: Option<&Route>, outcome: &Outcome<'_>, out: &mut [u8]) {
    let Outcome::Reply { entry: Some(i), .. } = *outcome else {
        return;
    };
    let Some(p) = route.and_then(|r| r.entry(i)).map(|e| &e.block.plugins) else {
        return;
    };
    if p.loadbalance {
        crate::dns::balance::shuffle_addresses(out);
    }
    if let (Some(h), true) = (p.header, out.len() > FLAGS2) {
        let at = [(FLAGS1, flags1::AA), (FLAGS2, flags2::RA), (FLAGS1, flags1::RD)];
        for (flag, (byte, bit)) in h.response.iter().zip(at) {
            match flag {
                Some(true) => out[byte] |= bit,
                Some(false) => out[byte] &= !bit,
                None => {}
            }
        }
    }
}

/// The outcome to report for a forwarded reply (from the cache or the upstreams).
fn reply_outcome(entry: usize, plugin: Plugin, asked: Asked, reply: &[u8]) -> Outcome<'static> {
    let rcode = reply.get(FLAGS2).map_or(u16::from(Rcode::SERVFAIL.to_int()), |b| {
        u16::from(b & flags2::RCODE_MASK)
    });
    Outcome::Reply {
        rcode,
        truncated: reply.get(FLAGS1).is_some_and(|b| b & flags1::TC != 0),
        entry: Some(entry),
        error: (rcode == u16::from(Rcode::SERVFAIL.to_int())).then_some("no upstream answered (SERVFAIL)"),
        plugin,
        asked,
    }
}
