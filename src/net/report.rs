//! After a query is answered: its count in the metrics, and the query log lines and
//! error lines of the blocks that ask for them.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use super::ctx::ShardCtx;
use crate::config::Transport;
use crate::dns::Outcome;
use crate::dns::pipeline::Route;
use crate::meter::series::Answered;
use crate::telemetry::querylog;

/// Writes query log lines and error lines for the blocks that ask for them.
pub(crate) struct Reporter {
    ctx: Rc<ShardCtx>,
    transport: Transport,
}

impl Reporter {
    pub(crate) fn new(ctx: &Rc<ShardCtx>, transport: Transport) -> Self {
        Reporter {
            ctx: ctx.clone(),
            transport,
        }
    }

    /// Counts an answered query in the metrics of its zone (or the listener's `dropped`
    /// when no block took it) and reports it in its block's logs. `started` is set when the
    /// route logs or counts queries. Cheap when neither applies.
    #[inline]
    pub(crate) fn after(
        &self,
        route: Option<&Route>,
        outcome: &Outcome,
        exchange: (SocketAddr, &[u8], &[u8]),
        started: Option<Instant>,
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
        let Some(route) = route else { return };
        let (peer, query, reply) = exchange;
        let entry = entry.and_then(|i| route.entry(i));
        if route.metered() {
            let series = match entry {
                Some(e) => e.series.as_deref(),
                None => route.dropped(),
            };
            if let Some(series) = series {
                series.shard(self.ctx.id).record(&Answered {
                    stream: self.transport.is_stream(),
                    ipv6: matches!(peer.ip(), IpAddr::V6(a) if a.to_ipv4_mapped().is_none()),
                    qtype: asked.qtype,
                    dnssec_ok: asked.dnssec_ok,
                    rcode,
                    plugin,
                    query_len: query.len(),
                    reply_len: reply.len(),
                    nanos: started.map_or(0, |t| t.elapsed().as_nanos() as u64),
                });
            }
        }
        let Some(b) = entry.map(|e| &*e.block) else { return };
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
}
