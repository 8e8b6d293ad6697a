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
use super::limit;
use super::report::Reporter;
use crate::config::Transport;
use crate::dns::answer::{Asked, Plugin};
use crate::dns::axfr::{AxfrOut, IxfrOut, TransferOut};
use crate::dns::dns64::{self, Dns64};
use crate::dns::pipeline::{ListenerKey, Route, Snapshot};
use crate::dns::request::DropReason;
use crate::dns::request::{self, Parsed, Request};
use crate::dns::rewrite::{self, Reverts};
use crate::dns::wire::{FLAGS1, FLAGS2, HEADER_LEN, flags1, flags2};
use crate::dns::{Ctx, Forwarding, Outcome, Scratch, answer};
use crate::forward::{self, Cached, Plan};
use crate::zone::name::NameKey;
use domain::base::iana::{Class, Rtype};

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
    /// A zone transfer: `out` holds its first message, these are the rest.
    Transfer(Box<TransferOut>),
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
        Outcome::Transfer { entry, zone, id } => {
            let question = &wire[HEADER_LEN..HEADER_LEN + crate::dns::wire::question_len(wire)];
            let t = Outcome::Reply {
                rcode: 0,
                truncated: false,
                entry: Some(entry),
                error: None,
                plugin: Plugin::File,
                asked: Asked {
                    qtype: Rtype::AXFR.to_int(),
                    dnssec_ok: false,
                    cookie: None,
                },
            };
            let plugins = route.and_then(|r| r.entry(entry)).map(|e| &e.block.plugins);
            // IXFR from the zone's journal when it reaches back to the client's serial
            // (RFC 1995 §4); the whole zone otherwise.
            // The question ends with QTYPE and QCLASS.
            let qtype = question
                .len()
                .checked_sub(4)
                .map(|t| u16::from_be_bytes([question[t], question[t + 1]]));
            let ixfr = (qtype == Some(Rtype::IXFR.to_int()))
                .then(|| crate::dns::axfr::client_serial(wire))
                .flatten()
                .and_then(|serial| {
                    let journal = plugins.and_then(|p| p.journal(zone.apex()));
                    IxfrOut::plan(zone, journal, serial, id, question)
                });
            let mut axfr = match ixfr {
                Some(i) => TransferOut::Ixfr(i),
                None => TransferOut::Axfr(AxfrOut::new(zone.clone(), id, question)),
            };
            // A signed request (its TSIG already checked by `answer`): every message signed.
            let policy = plugins.and_then(|p| p.tsig.as_ref());
            if let Some(seq) = policy.and_then(|p| crate::dns::tsig::sequence(&p.keys, wire)) {
                axfr = axfr.signed(seq);
            }
            let mut axfr = Box::new(axfr);
            // The first message stands for the transfer in the logs and counts.
            axfr.next_message(out);
            l.reporter.answered(route, &t, (peer, wire, out), started);
            return Served::Transfer(axfr);
        }
        Outcome::Forward(f) => {
            let cookie = f.request.cookie_reply.map(|c| c.verdict);
            if !request_allowed(l, Some(f.entry), cookie, peer, wire) {
                return Served::Drop(DropReason::RateLimit);
            }
            match forwarded(l, f, peer, wire, started, out) {
                Ok(o) => o,
                Err(later) => return later,
            }
        }
        Outcome::Update(u) => {
            let (entry, asked) = (u.entry, u.asked);
            return Served::Later(Box::new(Pending {
                shard: l.shard.clone(),
                snapshot: l.snapshot.clone(),
                key: l.key,
                entry,
                asked,
                first: First::Update(u),
                wire: wire.to_vec(),
                rewrite: None,
                via: l.dns.transport,
                started,
                dns64: None,
            }));
        }
        o @ Outcome::Reply { .. } => {
            if let Outcome::Reply { entry, asked, .. } = o {
                if !request_allowed(l, entry, asked.cookie, peer, wire) {
                    return Served::Drop(DropReason::RateLimit);
                }
            }
            o
        }
    };

    if let Outcome::Reply {
        entry: Some(e),
        asked,
        plugin,
        ..
    } = outcome
    {
        // dns64 only looks at AAAA; the request is parsed again only for a block with it.
        let has = route
            .and_then(|r| r.entry(e))
            .is_some_and(|x| x.block.plugins.dns64.is_some());
        if has && asked.qtype == Rtype::AAAA.to_int() {
            let mut key = NameKey::EMPTY;
            if let Parsed::Query(req) = request::parse(wire, &mut key) {
                if let Some(p) = dns64_later(l, (e, plugin), asked, peer, wire, &req, started, out) {
                    return Served::Later(p);
                }
            }
        }
    }
    if let Outcome::Reply {
        plugin, rcode, asked, ..
    } = outcome
    {
        let notify = wire
            .get(FLAGS1)
            .is_some_and(|b| (b >> flags1::OPCODE_SHIFT) & flags1::OPCODE_MASK == OPCODE_NOTIFY);
        let transfer = asked.qtype == Rtype::AXFR.to_int() || asked.qtype == Rtype::IXFR.to_int();
        if notify || transfer {
            zone_request(l, peer, wire, notify, plugin, rcode);
        }
    }
    shape(route, &outcome, out);
    let outcome = match limit_reply(l, peer, outcome, out) {
        Some(o) => o,
        None => return Served::Drop(DropReason::RateLimit),
    };
    l.reporter.answered(route, &outcome, (peer, wire, out), started);
    Served::Reply
}

/// A forwarded query: the cache's reply in `out`, or the work of asking upstream (or of
/// `dns64`'s A lookup) as the `Err`.
fn forwarded(
    l: &Listener<'_>,
    f: Forwarding<'_>,
    peer: SocketAddr,
    wire: &[u8],
    started: Option<Instant>,
    out: &mut Vec<u8>,
) -> Result<Outcome<'static>, Served> {
    match cached(l, f, wire, started, out) {
        Some(mut pending) => {
            pending.dns64 = dns64_for(l.dns.route, Some(f.entry), peer, &f.request);
            Err(Served::Later(pending))
        }
        None => {
            if let Some(r) = f.reverts {
                rewrite::respond(r, wire, out);
            }
            let by = (f.entry, Plugin::Cache);
            if let Some(p) = dns64_later(l, by, Asked::of(&f.request), peer, wire, &f.request, started, out) {
                return Err(Served::Later(p));
            }
            Ok(reply_outcome(f.entry, Plugin::Cache, Asked::of(&f.request), out))
        }
    }
}

/// The block's `rrl`, when the query came over UDP (the one transport it limits) and its
/// cookie does not exempt it.
fn udp_limits<'r>(
    l: &Listener<'r>,
    entry: Option<usize>,
    cookie: Option<crate::dns::cookie::Verdict>,
) -> Option<&'r Arc<crate::dns::rrl::Limits>> {
    if l.dns.transport != Transport::Udp || limit::exempt(cookie) {
        return None;
    }
    l.dns.route?.entry(entry?)?.block.plugins.rrl.as_ref()
}

/// `rrl`'s request stage (`requests-per-second`): false when the request is dropped.
fn request_allowed(
    l: &Listener<'_>,
    entry: Option<usize>,
    cookie: Option<crate::dns::cookie::Verdict>,
    peer: SocketAddr,
    wire: &[u8],
) -> bool {
    udp_limits(l, entry, cookie).is_none_or(|limits| {
        l.shard
            .limiter
            .request(limits, peer.ip(), wire, clock(l), l.shard.stats())
    })
}

/// The time RRL counts a query at: the batch's arrival when the loop read it.
fn clock(l: &Listener<'_>) -> Instant {
    l.received.unwrap_or_else(Instant::now)
}

/// `rrl`'s response stage: the outcome to report for the reply in `out` (rewritten if it
/// slipped), or `None` when it is not to be sent.
fn limit_reply<'o>(l: &Listener<'_>, peer: SocketAddr, outcome: Outcome<'o>, out: &mut Vec<u8>) -> Option<Outcome<'o>> {
    let Outcome::Reply { entry, asked, .. } = outcome else {
        return Some(outcome);
    };
    let Some(limits) = udp_limits(l, entry, asked.cookie) else {
        return Some(outcome);
    };
    let sent = out.len();
    if !l
        .shard
        .limiter
        .response(limits, peer.ip(), asked.cookie, out, clock(l), l.shard.stats())
    {
        return None;
    }
    Some(if out.len() == sent {
        outcome
    } else {
        slipped(outcome, out)
    })
}

/// The outcome of a reply `rrl` rewrote.
fn slipped<'o>(outcome: Outcome<'o>, out: &[u8]) -> Outcome<'o> {
    let Outcome::Reply {
        entry, plugin, asked, ..
    } = outcome
    else {
        return outcome;
    };
    let (rcode, truncated) = crate::dns::wire::rcode_and_tc(out);
    Outcome::Reply {
        rcode,
        truncated,
        entry,
        error: Some("rrl: over the response rate, slipped"),
        plugin,
        asked,
    }
}

/// NOTIFY's opcode (RFC 1996 §3.3).
const OPCODE_NOTIFY: u8 = 4;

/// A NOTIFY or a zone transfer request answered: a NOTIFY taken from a primary goes to the
/// control thread, which has its zone checked at once; a refused one of either is logged
/// once a minute per source on each shard (ROBUSTNESS: at most once per source per minute;
/// one source's datagrams reach one shard, its TCP connections may reach each).
fn zone_request(l: &Listener<'_>, peer: SocketAddr, wire: &[u8], notify: bool, plugin: Plugin, rcode: u16) {
    let mut key = NameKey::EMPTY;
    let Parsed::Query(req) = request::parse(wire, &mut key) else {
        return;
    };
    let Some(q) = req.question else { return };
    let from = peer.ip().to_canonical();
    if notify && plugin == Plugin::Secondary {
        let _ = l.shard.shared.notified.send((q.key.into(), from));
        return;
    }
    if rcode != u16::from(Rcode::REFUSED.to_int()) {
        return;
    }
    let mut seen = l.shard.zone_refusals.borrow_mut();
    let now = Instant::now();
    if seen
        .get(&from)
        .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(60))
    {
        return;
    }
    if seen.len() >= 4096 {
        seen.clear();
    }
    seen.insert(from, now);
    let what = if notify { "NOTIFY" } else { "zone transfer" };
    tracing::warn!(zone = %crate::zone::name::display(q.key), %from, "{what} refused: the source is not allowed for this zone here (logged once a minute per source)");
}

/// The block's `dns64` when it applies to this query: AAAA in class IN, from an IPv6 client
/// (or any with `allow_ipv4`), RFC 6147 §5.1.
fn dns64_for(route: Option<&Route>, entry: Option<usize>, peer: SocketAddr, req: &Request<'_>) -> Option<Dns64> {
    let cfg = route?.entry(entry?)?.block.plugins.dns64?;
    let q = req.question?;
    let v6 = matches!(peer.ip(), std::net::IpAddr::V6(a) if a.to_ipv4_mapped().is_none());
    (q.qtype == Rtype::AAAA && q.qclass == Class::IN && (v6 || cfg.allow_ipv4)).then_some(cfg)
}

/// With `dns64`, a reply already in `out` that needs an A lookup becomes pending work.
#[allow(clippy::too_many_arguments)]
fn dns64_later(
    l: &Listener<'_>,
    (entry, by): (usize, Plugin),
    asked: Asked,
    peer: SocketAddr,
    wire: &[u8],
    req: &Request<'_>,
    started: Option<Instant>,
    out: &[u8],
) -> Option<Box<Pending>> {
    let cfg = dns64_for(l.dns.route, Some(entry), peer, req)?;
    if !dns64::needed(out, cfg.translate_all) {
        return None;
    }
    Some(Box::new(Pending {
        shard: l.shard.clone(),
        snapshot: l.snapshot.clone(),
        key: l.key,
        entry,
        asked,
        first: First::Ready(out.to_vec(), by),
        wire: wire.to_vec(),
        rewrite: None,
        via: l.dns.transport,
        started,
        dns64: Some(cfg),
    }))
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
    match fwd.cached(f.plan, &q, f.wire, (l.dns.transport, f.request.nsid), out) {
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
            first: First::Upstream {
                plan: f.plan.clone(),
                query: q,
            },
            wire: wire.to_vec(),
            rewrite: f.reverts.map(|r| Box::new((f.wire.to_vec(), r.clone()))),
            via: l.dns.transport,
            started,
            dns64: None,
        })),
    }
}

/// A query whose reply comes later: from its upstreams, or (with `dns64`) after an A
/// lookup of its own.
pub(crate) struct Pending {
    shard: Rc<ShardCtx>,
    snapshot: Arc<Snapshot>,
    key: ListenerKey,
    entry: usize,
    asked: Asked,
    first: First,
    /// The client's query.
    wire: Vec<u8>,
    /// With `rewrite`: the query asked instead, and what its reply needs.
    rewrite: Option<Box<(Vec<u8>, Reverts)>>,
    via: Transport,
    started: Option<Instant>,
    /// The block's `dns64`, when it applies to this query.
    dns64: Option<Dns64>,
}

/// Where the first reply of a pending query comes from.
// Pending is boxed whole already: boxing the query again would allocate twice per forward.
#[allow(clippy::large_enum_variant)]
enum First {
    /// The upstreams.
    Upstream { plan: Arc<Plan>, query: forward::Query },
    /// It is there already (the block's own answer, or the cache's), written by this plugin.
    Ready(Vec<u8>, Plugin),
    /// The control thread, which applies an update and gives the rcode of its reply.
    Update(Box<crate::dns::update::UpdateAsk>),
}

impl Pending {
    /// Asks upstream, reports the reply in the block's logs and returns it; `None` when
    /// `rrl` says not to send it (UDP only).
    pub(crate) async fn run(mut self, reporter: &Reporter, peer: SocketAddr) -> Option<Vec<u8>> {
        let route = self.snapshot.route(&self.key);
        // The block's NSID, for a client that asked (the forwarder checks that).
        let nsid = route
            .and_then(|r| r.entry(self.entry))
            .and_then(|e| e.block.plugins.nsid.as_deref());
        let first = std::mem::replace(&mut self.first, First::Ready(Vec::new(), Plugin::Server));
        let (reply, mut plugin) = match first {
            First::Upstream { plan, query } => {
                let fwd = self.shard.forward.clone();
                let asked = self.rewrite.as_ref().map_or(&self.wire, |r| &r.0);
                let mut r = forward::resolve(fwd, plan, query, asked, (self.via, nsid)).await;
                if let Some(rw) = &self.rewrite {
                    rewrite::respond(&rw.1, &self.wire, &mut r);
                }
                (r, Plugin::Forward)
            }
            First::Ready(r, by) => (r, by),
            First::Update(mut u) => {
                let (done, rcode) = futures_channel::oneshot::channel();
                let ask = super::ctx::UpdateRequest {
                    zone: u.zone.clone(),
                    what: super::ctx::UpdateWhat::Message {
                        message: std::mem::take(&mut u.message),
                        key: u.key.clone(),
                    },
                    from: peer.ip().to_canonical(),
                    done,
                };
                // A control thread that is gone (shutting down) or drops the request: SERVFAIL.
                let rcode = match self.shard.shared.updates.send(ask) {
                    Ok(()) => rcode.await.unwrap_or(Rcode::SERVFAIL),
                    Err(_) => Rcode::SERVFAIL,
                };
                (u.reply(rcode)?, Plugin::Update)
            }
        };
        let mut reply = reply;
        if let Some(cfg) = self.dns64.filter(|c| dns64::needed(&reply, c.translate_all)) {
            if let Some(made) = self.synthesize(&cfg, &reply, peer).await {
                reply = made;
                plugin = Plugin::Dns64;
            }
        }
        let mut outcome = reply_outcome(self.entry, plugin, self.asked, &reply);
        shape(route, &outcome, &mut reply);
        let limits = route
            .and_then(|r| r.entry(self.entry))
            .and_then(|e| e.block.plugins.rrl.as_ref())
            .filter(|_| self.via == Transport::Udp && !limit::exempt(self.asked.cookie));
        if let Some(limits) = limits {
            let (shard, sent) = (&self.shard, reply.len());
            let cookie = self.asked.cookie;
            if !shard
                .limiter
                .response(limits, peer.ip(), cookie, &mut reply, Instant::now(), shard.stats())
            {
                return None;
            }
            if reply.len() != sent {
                outcome = slipped(outcome, &reply);
            }
        }
        reporter.after(route, &outcome, (peer, &self.wire, &reply), self.started);
        Some(reply)
    }
}

impl Pending {
    /// `dns64`: asks the block for A (its own data, the cache or the upstreams) and turns
    /// the A records into AAAA; `None` keeps the AAAA reply.
    async fn synthesize(&self, cfg: &Dns64, aaaa: &[u8], peer: SocketAddr) -> Option<Vec<u8>> {
        let a_wire = dns64::a_query(&self.wire)?;
        let route = self.snapshot.route(&self.key)?;
        let ctx = Ctx {
            route: Some(route),
            transport: self.via,
            challenges: None,
            client: Some(peer),
        };
        let mut scratch = Scratch::new();
        let mut out = Vec::with_capacity(crate::dns::answer::REPLY_CAPACITY);
        let (a_reply, limit) = match answer(&ctx, &a_wire, &mut scratch, &mut out) {
            Outcome::Reply { .. } => (out, None),
            Outcome::Drop(_) | Outcome::Transfer { .. } | Outcome::Update(_) => return None,
            Outcome::Forward(f) => {
                let limit = f.request.edns.map(|e| e.udp_size);
                let q = forward::Query::of(&f.request)?;
                let fwd = &self.shard.forward;
                let nsid = f.request.nsid;
                let mut a = match fwd.cached(f.plan, &q, f.wire, (self.via, nsid), &mut out) {
                    Cached::Hit { .. } => out,
                    Cached::Miss => forward::resolve(fwd.clone(), f.plan.clone(), q, f.wire, (self.via, nsid)).await,
                };
                if let Some(r) = f.reverts {
                    rewrite::respond(r, &a_wire, &mut a);
                }
                (a, Some(limit))
            }
        };
        let payload = match limit {
            Some(l) => l,
            None => {
                let mut key = NameKey::EMPTY;
                match request::parse(&a_wire, &mut key) {
                    Parsed::Query(r) => r.edns.map(|e| e.udp_size),
                    _ => None,
                }
            }
        };
        dns64::synthesize(cfg, aaaa, &a_reply, crate::dns::wire::reply_limit(self.via, payload))
    }
}

/// What a block's plugins do to a finished reply: `loadbalance` orders its addresses and MX,
/// `header` sets and clears its flags.
#[inline]
fn shape(route: Option<&Route>, outcome: &Outcome<'_>, out: &mut Vec<u8>) {
    let Outcome::Reply { entry: Some(i), .. } = *outcome else {
        return;
    };
    let Some(p) = route.and_then(|r| r.entry(i)).map(|e| &e.block.plugins) else {
        return;
    };
    if let Some(b) = &p.loadbalance {
        crate::dns::balance::balance(out, b);
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
