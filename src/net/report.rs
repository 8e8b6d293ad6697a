//! After a query is answered: its count in the metrics, and the query log lines and
//! error lines of the blocks that ask for them.
//!
//! A UDP batch is answered together and its replies leave together (sendmmsg), so each of
//! its queries waited from the batch's arrival to the batch's end: the UDP reporter keeps
//! the batch's counts until [`Reporter::flush`] and reads the clock once for all of them,
//! instead of twice per query (two clock reads were most of what `prometheus` cost a UDP
//! query; tuning/results/2026-12-01-1643-prometheus-per-query-clock.md).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use arrayvec::ArrayVec;

use super::ctx::ShardCtx;
use super::mmsg::BATCH;
use crate::config::Transport;
use crate::dns::Outcome;
use crate::dns::pipeline::Route;
use crate::meter::series::Answered;
use crate::telemetry::querylog;

/// A counted query waiting for the end of its batch: its route entry (`None`: the
/// listener's `dropped`), its facts, and when its batch arrived.
struct Deferred {
    entry: Option<usize>,
    answered: Answered,
    started: Instant,
}

/// Counts answered queries and writes the query log and error lines of their blocks.
pub(crate) struct Reporter {
    ctx: Rc<ShardCtx>,
    transport: Transport,
    /// The batch's counts, for a UDP loop (see the module's comment).
    batch: Option<RefCell<ArrayVec<Deferred, BATCH>>>,
}

impl Reporter {
    /// A reporter that counts each query as it is answered.
    pub(crate) fn new(ctx: &Rc<ShardCtx>, transport: Transport) -> Self {
        Reporter {
            ctx: ctx.clone(),
            transport,
            batch: None,
        }
    }

    /// A reporter for a loop that answers in batches and calls [`Reporter::flush`] after
    /// each.
    pub(crate) fn batched(ctx: &Rc<ShardCtx>, transport: Transport) -> Self {
        Reporter {
            batch: Some(RefCell::new(ArrayVec::new())),
            ..Reporter::new(ctx, transport)
        }
    }

    /// Reports a query answered in the serving loop: counted now, or at the end of the
    /// batch for a batched reporter. `started` is set when the route logs or counts
    /// queries; cheap when neither applies.
    #[inline]
    pub(crate) fn answered(
        &self,
        route: Option<&Route>,
        outcome: &Outcome,
        exchange: (SocketAddr, &[u8], &[u8]),
        started: Option<Instant>,
    ) {
        self.report(route, outcome, exchange, started, true);
    }

    /// Reports a query answered later (from the upstreams): counted now.
    pub(crate) fn after(
        &self,
        route: Option<&Route>,
        outcome: &Outcome,
        exchange: (SocketAddr, &[u8], &[u8]),
        started: Option<Instant>,
    ) {
        self.report(route, outcome, exchange, started, false);
    }

    /// Counts the batch's queries, all with the time from the batch's arrival to now.
    pub(crate) fn flush(&self, route: Option<&Route>) {
        let Some(batch) = &self.batch else { return };
        let mut batch = batch.borrow_mut();
        if batch.is_empty() {
            return;
        }
        let now = Instant::now();
        if let Some(route) = route {
            for d in batch.iter_mut() {
                d.answered.nanos = now.saturating_duration_since(d.started).as_nanos() as u64;
                self.record(route, d.entry, &d.answered);
            }
        }
        batch.clear();
    }

    #[inline]
    fn report(
        &self,
        route: Option<&Route>,
        outcome: &Outcome,
        exchange: (SocketAddr, &[u8], &[u8]),
        started: Option<Instant>,
        may_defer: bool,
    ) {
        let Outcome::Reply {
            rcode,
            entry,
            error,
            plugin,
            asked,
            ..
        } = *outcome
        else {
            return;
        };
        if let Some(v) = asked.cookie {
            self.ctx.stats().cookies[v as usize].incr();
        }
        let Some(route) = route else { return };
        let (peer, query, reply) = exchange;
        if let (true, Some(t0)) = (route.metered(), started) {
            let answered = Answered {
                stream: self.transport.is_stream(),
                ipv6: matches!(peer.ip(), IpAddr::V6(a) if a.to_ipv4_mapped().is_none()),
                qtype: asked.qtype,
                dnssec_ok: asked.dnssec_ok,
                rcode,
                plugin,
                query_len: query.len(),
                reply_len: reply.len(),
                nanos: 0,
            };
            self.count(route, entry, answered, t0, may_defer);
        }
        let Some(b) = entry.and_then(|i| route.entry(i)).map(|e| &*e.block) else {
            return;
        };
        let logs = started.is_some() && !b.log.is_empty();
        if !logs && error.is_none() {
            return;
        }
        let mut limiter = self.ctx.querylog.borrow_mut();
        if let (Some(why), true) = (error, b.errors) {
            if limiter.admit(Instant::now()) {
                let q = querylog::describe_question(query);
                tracing::error!(target: "ringdns::errors", block = %b.label, client = %peer, "{q}: {why}");
            }
        }
        if let (Some(t0), true) = (started, logs) {
            let entry = querylog::Entry {
                remote: peer,
                proto: self.transport.name(),
                query,
                reply,
                rcode,
                duration: t0.elapsed(),
            };
            querylog::log(&b.log, &entry, &mut limiter);
        }
    }

    #[inline]
    fn count(&self, route: &Route, entry: Option<usize>, mut answered: Answered, started: Instant, may_defer: bool) {
        if let (true, Some(batch)) = (may_defer, &self.batch) {
            let mut batch = batch.borrow_mut();
            if !batch.is_full() {
                batch.push(Deferred {
                    entry,
                    answered,
                    started,
                });
                return;
            }
        }
        answered.nanos = started.elapsed().as_nanos() as u64;
        self.record(route, entry, &answered);
    }

    /// Counts into the series of the route entry that answered, or the listener's
    /// `dropped` when no block took the query; nothing when that block has no metrics.
    #[inline]
    fn record(&self, route: &Route, entry: Option<usize>, answered: &Answered) {
        let series = match entry {
            Some(i) => route.entry(i).and_then(|e| e.series.as_deref()),
            None => route.dropped(),
        };
        if let Some(s) = series {
            s.shard(self.ctx.id).record(answered);
        }
    }
}
