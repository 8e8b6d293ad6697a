//! Sockets and the per-shard serving loops for UDP and TCP.

pub mod socket;
mod sys;
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::dns::pipeline::Route;
use crate::shard::ShardCtx;
use crate::telemetry::querylog;

/// One answered query, as the `log` and `errors` directives see it.
pub(crate) struct Answered<'a> {
    pub peer: SocketAddr,
    pub query: &'a [u8],
    pub reply: &'a [u8],
    pub rcode: u16,
    pub block: usize,
    pub error: Option<&'static str>,
    /// Set when some block of the route logs queries.
    pub started: Option<Instant>,
}

/// Writes query log lines and error lines for the blocks that ask for them.
pub(crate) struct Reporter {
    ctx: Rc<ShardCtx>,
    proto: &'static str,
}

impl Reporter {
    pub(crate) fn new(ctx: &Rc<ShardCtx>, proto: &'static str) -> Self {
        Reporter {
            ctx: ctx.clone(),
            proto,
        }
    }

    pub(crate) fn report(&self, route: &Route, a: &Answered<'_>) {
        let Some(b) = route.block(a.block) else {
            return;
        };
        let mut limiter = self.ctx.querylog.borrow_mut();
        if let (Some(why), true) = (a.error, b.errors) {
            if limiter.admit(Instant::now()) {
                let q = querylog::describe_question(a.query);
                tracing::error!(target: "ringdns::errors", block = %b.label, client = %a.peer, "{q}: {why}");
            }
        }
        if let (Some(t0), false) = (a.started, b.log.is_empty()) {
            let entry = querylog::Entry {
                remote: a.peer,
                proto: self.proto,
                query: a.query,
                reply: a.reply,
                rcode: a.rcode,
                duration: t0.elapsed(),
            };
            querylog::log(&b.log, &entry, &mut limiter);
        }
    }
}
