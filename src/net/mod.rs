//! Sockets and the per-shard serving loops for UDP and TCP.

pub mod socket;
pub mod tcp;
pub mod udp;

use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Instant;

use crate::dns::pipeline::Route;
use crate::shard::ShardCtx;
use crate::telemetry::querylog;

/// Writes query log lines for the blocks that ask for them.
pub(crate) struct QueryLogger {
    ctx: Rc<ShardCtx>,
    proto: &'static str,
}

impl QueryLogger {
    pub(crate) fn new(ctx: &Rc<ShardCtx>, proto: &'static str) -> Self {
        QueryLogger {
            ctx: ctx.clone(),
            proto,
        }
    }

    #[allow(clippy::too_many_arguments)] // each argument is a distinct fact about one query
    pub(crate) fn log(
        &self,
        route: &Route,
        block: usize,
        peer: SocketAddr,
        query: &[u8],
        reply: &[u8],
        rcode: u16,
        started: Instant,
    ) {
        let Some(b) = route.block(block) else { return };
        if b.log.is_empty() {
            return;
        }
        let entry = querylog::Entry {
            remote: peer,
            proto: self.proto,
            query,
            reply,
            rcode,
            duration: started.elapsed(),
        };
        querylog::log(&b.log, &entry, &mut self.ctx.querylog.borrow_mut());
    }
}
