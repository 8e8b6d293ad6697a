//! The query log lines and error lines of the blocks that ask for them.

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use super::ctx::ShardCtx;
use crate::config::Transport;
use crate::dns::Outcome;
use crate::dns::pipeline::Route;
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

    /// Reports an answered query if its block logs queries (`started` is set when some block
    /// of the route does) or errors. Cheap when neither applies.
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
            block: Some(block),
            error,
            ..
        } = *outcome
        else {
            return;
        };
        if started.is_none() && error.is_none() {
            return;
        }
        let Some(b) = route.and_then(|r| r.block(block)) else {
            return;
        };
        let (peer, query, reply) = exchange;
        let mut limiter = self.ctx.querylog.borrow_mut();
        if let (Some(why), true) = (error, b.errors) {
            if limiter.admit(Instant::now()) {
                let q = querylog::describe_question(query);
                tracing::error!(target: "ringdns::errors", block = %b.label, client = %peer, "{q}: {why}");
            }
        }
        if let (Some(t0), false) = (started, b.log.is_empty()) {
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
