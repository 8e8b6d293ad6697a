//! What every task of a shard shares: the shard's number, the state shared with the control
//! thread, and the shard's own connection table, query log limiter and forwarding state.
//! The shard thread makes it; the serving loops here read it.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::conns::{ConnLimits, Conns};
use crate::dns::pipeline::Snapshot;
use crate::telemetry::stats::ShardStats;

/// State shared by the control thread and all shards.
pub struct Shared {
    /// The current pipeline and zone data.
    pub snapshot: ArcSwap<Snapshot>,
    /// Published ACME challenge values.
    pub challenges: ArcSwap<crate::zone::challenge::ChallengeSet>,
    /// One set of counters per shard.
    pub stats: std::sync::Arc<[ShardStats]>,
    /// TCP limits.
    pub conn_limits: ConnLimits,
    /// NOTIFYs taken from primaries, for the control thread: (zone apex, the primary).
    pub notified: tokio::sync::mpsc::UnboundedSender<Notified>,
    /// RFC 2136 updates taken by shards, for the control thread to apply.
    pub updates: tokio::sync::mpsc::UnboundedSender<UpdateRequest>,
}

/// A change to a zone for the control thread: an update a shard took (its block takes
/// updates for the zone, its TSIG checked; the control thread checks the key's grant), or
/// the values of an acme-dns registration. The rcode says how it went.
pub struct UpdateRequest {
    /// The zone, lowercase wire.
    pub zone: Box<[u8]>,
    /// What to change.
    pub what: UpdateWhat,
    /// Who sent it (for the log).
    pub from: std::net::IpAddr,
    /// Where the rcode goes.
    pub done: futures_channel::oneshot::Sender<domain::base::iana::Rcode>,
}

/// A NOTIFY a shard took: the zone (lowercase wire) and the primary that sent it.
pub type Notified = (Box<[u8]>, std::net::IpAddr);

/// Per-shard context handed to every task of the shard.
pub struct ShardCtx {
    /// Shard number.
    pub id: usize,
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Open TCP connections of this shard.
    pub conns: Rc<Conns>,
    /// Query log sampling of this shard.
    pub querylog: RefCell<crate::telemetry::querylog::Limiter>,
    /// Upstream connections, cache and in-flight queries of forwarding blocks.
    pub forward: Rc<crate::forward::ShardForward>,
    /// When a refused NOTIFY or zone transfer was last logged, per source (once a minute).
    pub zone_refusals: RefCell<std::collections::HashMap<std::net::IpAddr, std::time::Instant>>,
    /// `rrl`'s accounts of this shard.
    pub(crate) limiter: super::limit::Limiter,
}

impl ShardCtx {
    /// This shard's counters.
    pub fn stats(&self) -> &ShardStats {
        &self.shared.stats[self.id]
    }
}

/// What an [`UpdateRequest`] changes.
pub enum UpdateWhat {
    /// An RFC 2136 UPDATE message and the key that signed it (lowercase wire).
    Message {
        /// The message.
        message: Vec<u8>,
        /// The key.
        key: Box<[u8]>,
    },
    /// The TXT values of an acme-dns registration's name (lowercase wire), newest last.
    Values {
        /// The name.
        owner: Box<[u8]>,
        /// Its values.
        values: Vec<String>,
    },
}
