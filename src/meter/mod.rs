//! Counting without locks: single-writer counters and the per-shard series behind the
//! Prometheus metrics. A leaf module: the query path (dns, net, forward) writes here, the
//! scrape (telemetry) reads here, and this depends on neither.

pub mod series;

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter with a single writer: increments are a plain load and store, no locked
/// read-modify-write.
#[derive(Default, Debug)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one (only from the owning shard).
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    /// Adds `n` (only from the owning shard).
    #[inline]
    pub fn add(&self, n: u64) {
        self.0
            .store(self.0.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    /// Sets the value, for a gauge (only from the owning shard).
    #[inline]
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
