//! Per-shard counters: each shard writes only its own (on its own cache line), the control
//! side sums them on read.

pub use crate::meter::Counter;

/// Counters of one shard.
#[derive(Default, Debug)]
#[repr(align(128))]
pub struct ShardStats {
    /// UDP queries answered.
    pub udp_answered: Counter,
    /// Datagrams dropped without a reply (short, or QR=1).
    pub udp_dropped: Counter,
    /// The same by reason: short, a response, oversized, `acl` drop, `rrl` drop.
    pub udp_drops: [Counter; 5],
    /// Queries answered over TCP.
    pub tcp_answered: Counter,
    /// TCP connections accepted and served.
    pub tcp_accepted: Counter,
    /// TCP, DoT and DoH connections open now (a gauge).
    pub conns_open: Counter,
    /// TCP connections closed at once because a cap was reached.
    pub tcp_refused: Counter,
    /// The same by cap: the prefix's connections, the prefix's handshakes, a full shard.
    pub tcp_refusals: [Counter; 3],
    /// DoH over HTTP/2: streams cut off before their response, connections ended on an
    /// error (see `net::doh::RESET_STREAM`).
    pub http2_resets: [Counter; 2],
    /// TCP connections closed for a timeout.
    pub tcp_timeouts: Counter,
    /// Waiting connections closed to make room for a newcomer.
    pub conn_evicted: Counter,
    /// TLS handshakes that failed (bad client, no certificate yet, protocol mismatch).
    pub tls_handshake_failures: Counter,
    /// Queries answered over DNS over HTTPS.
    pub doh_answered: Counter,
    /// Queries sent to upstreams (retries and failovers count once each).
    pub upstream_queries: Counter,
    /// Forwarded queries answered from the cache.
    pub cache_hits: Counter,
    /// Forwarded queries that waited for an identical query already upstream.
    pub coalesced: Counter,
    /// Requests with a DNS Cookie, by what it showed: a client cookie alone, a server
    /// cookie that did not check, one that did (`dns::cookie::Verdict`).
    pub cookies: [Counter; 3],
    /// `rrl`: requests dropped, replies dropped, slipped, answered BADCOOKIE, and those
    /// over the limit but sent (`report-only`), as `net::limit::counted` numbers them.
    pub rrl: [Counter; 5],
    /// `shed`: UDP queries dropped unanswered because they waited too long; forwarded
    /// queries refused at once because the shard had as many upstream queries in flight
    /// as it allows (`max_concurrent`).
    pub shed: [Counter; 2],
}

/// One shard's counters, held by state that lives on the shard.
#[derive(Clone, Debug)]
pub struct ShardStatsRef {
    all: std::sync::Arc<[ShardStats]>,
    id: usize,
}

impl ShardStatsRef {
    /// Shard `id` of `all`.
    pub fn new(all: std::sync::Arc<[ShardStats]>, id: usize) -> Self {
        assert!(id < all.len());
        ShardStatsRef { all, id }
    }
}

impl ShardStatsRef {
    /// The shard's number.
    pub fn id(&self) -> usize {
        self.id
    }
}

impl Default for ShardStatsRef {
    /// Counters of their own (for state used outside a running server).
    fn default() -> Self {
        ShardStatsRef::new(std::sync::Arc::from(vec![ShardStats::default()]), 0)
    }
}

impl std::ops::Deref for ShardStatsRef {
    type Target = ShardStats;
    fn deref(&self) -> &ShardStats {
        &self.all[self.id]
    }
}

/// Sums of all shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// See [`ShardStats::udp_answered`].
    pub udp_answered: u64,
    /// See [`ShardStats::udp_dropped`].
    pub udp_dropped: u64,
    /// See [`ShardStats::tcp_answered`].
    pub tcp_answered: u64,
    /// See [`ShardStats::tcp_accepted`].
    pub tcp_accepted: u64,
    /// See [`ShardStats::tcp_refused`].
    pub tcp_refused: u64,
    /// See [`ShardStats::tcp_timeouts`].
    pub tcp_timeouts: u64,
    /// See [`ShardStats::conn_evicted`].
    pub conn_evicted: u64,
    /// See [`ShardStats::tls_handshake_failures`].
    pub tls_handshake_failures: u64,
    /// See [`ShardStats::doh_answered`].
    pub doh_answered: u64,
    /// See [`ShardStats::upstream_queries`].
    pub upstream_queries: u64,
    /// See [`ShardStats::cache_hits`].
    pub cache_hits: u64,
    /// See [`ShardStats::coalesced`].
    pub coalesced: u64,
}

/// Sums the counters of every shard.
pub fn totals(shards: &[ShardStats]) -> Totals {
    let mut t = Totals::default();
    for s in shards {
        t.udp_answered += s.udp_answered.get();
        t.udp_dropped += s.udp_dropped.get();
        t.tcp_answered += s.tcp_answered.get();
        t.tcp_accepted += s.tcp_accepted.get();
        t.tcp_refused += s.tcp_refused.get();
        t.tcp_timeouts += s.tcp_timeouts.get();
        t.conn_evicted += s.conn_evicted.get();
        t.tls_handshake_failures += s.tls_handshake_failures.get();
        t.doh_answered += s.doh_answered.get();
        t.upstream_queries += s.upstream_queries.get();
        t.cache_hits += s.cache_hits.get();
        t.coalesced += s.coalesced.get();
    }
    t
}
