//! Forwarded queries on the network side: the cache answers inline when it can; otherwise a
//! task asks the block's upstreams. Either way the reply is reported in the block's logs like
//! any other.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use domain::base::iana::Rcode;

use super::report::Reporter;
use crate::config::Transport;
use crate::dns::Outcome;
use crate::dns::pipeline::{ListenerKey, Route, Snapshot};
use crate::dns::wire::{FLAGS1, FLAGS2, flags1, flags2};
use crate::forward::{self, Cached, Plan};
use crate::shard::ctx::ShardCtx;

/// What became of a forwarded query at once.
pub(crate) enum Now {
    /// `out` holds the reply (from the cache, or SERVFAIL when the block lost its plan).
    Reply(Outcome),
    /// Run this to get the reply.
    Later(Pending),
}

/// A forwarded query waiting for its upstreams.
pub(crate) struct Pending {
    ctx: Rc<ShardCtx>,
    snapshot: Arc<Snapshot>,
    key: ListenerKey,
    block: usize,
    plan: Arc<Plan>,
    query: Vec<u8>,
    via: Transport,
    started: Option<Instant>,
}

/// Answers from the cache into `out`, or returns the work to do.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    ctx: &Rc<ShardCtx>,
    snapshot: &Arc<Snapshot>,
    key: ListenerKey,
    block: usize,
    query: &[u8],
    via: Transport,
    started: Option<Instant>,
    out: &mut Vec<u8>,
) -> Now {
    let Some(plan) = snapshot.route(&key).and_then(|r| r.forward_plan(block)) else {
        // Unreachable with a consistent snapshot; SERVFAIL rather than silence.
        forward::servfail(query, via, out);
        return Now::Reply(outcome(block, out));
    };
    match ctx.forward.cached(&plan, query, via, out) {
        Cached::Hit { refresh } => {
            if refresh {
                monoio::spawn(forward::refresh(ctx.forward.clone(), plan, query.to_vec()));
            }
            Now::Reply(outcome(block, out))
        }
        Cached::Miss => Now::Later(Pending {
            ctx: ctx.clone(),
            snapshot: snapshot.clone(),
            key,
            block,
            plan,
            query: query.to_vec(),
            via,
            started,
        }),
    }
}

impl Pending {
    /// Asks upstream and reports the reply; `None`: nothing to send.
    pub(crate) async fn run(self, reporter: &Reporter, peer: SocketAddr) -> Option<Vec<u8>> {
        let reply = forward::resolve(self.ctx.forward.clone(), self.plan, self.query.clone(), self.via).await?;
        let route: Option<&Route> = self.snapshot.route(&self.key);
        reporter.after(
            route,
            &outcome(self.block, &reply),
            (peer, &self.query, &reply),
            self.started,
        );
        Some(reply)
    }
}

/// The outcome to report for a forwarded reply.
fn outcome(block: usize, reply: &[u8]) -> Outcome {
    let rcode = reply.get(FLAGS2).map_or(u16::from(Rcode::SERVFAIL.to_int()), |b| {
        u16::from(b & flags2::RCODE_MASK)
    });
    Outcome::Reply {
        rcode,
        truncated: reply.get(FLAGS1).is_some_and(|b| b & flags1::TC != 0),
        block: Some(block),
        error: (rcode == 2).then_some("no upstream answered (SERVFAIL)"),
    }
}
