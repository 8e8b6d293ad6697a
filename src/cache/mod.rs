//! The response cache of one block on one shard: reply templates by (name, type, DO, CD),
//! positive and negative (RFC 2308) with their own capacity and TTL bounds, failures for a
//! short time (RFC 9520), stale serving (RFC 8767) and prefetch.
//!
//! Per shard, not shared: a hit costs a hash lookup and a copy with no lock and no atomic
//! (the query path rule), at the price of each shard warming its own cache. On this 2-core
//! machine that price is one extra miss per name; the benchmark figures are in the commit
//! that introduced this module and in `benches/answer.rs` (`cache/hit`).

pub mod template;

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;

use crate::config::{CacheBucket, CacheConfig};
use crate::zone::name::{MAX_NAME_LEN, NameKey};
use template::{Kind, Template};

/// Failures are remembered this long at least (RFC 9520 §3.2: at least 1 s).
pub const MIN_FAILURE_TTL: Duration = Duration::from_secs(1);

/// A cache key on the stack: name, type, and the DO and CD bits.
#[derive(Clone, Copy)]
pub struct Key {
    buf: [u8; MAX_NAME_LEN + 3],
    len: usize,
}

impl Key {
    /// The key of a question.
    pub fn new(name: &NameKey, qtype: Rtype, dnssec_ok: bool, cd: bool) -> Key {
        let mut buf = [0u8; MAX_NAME_LEN + 3];
        let n = name.as_slice();
        buf[..n.len()].copy_from_slice(n);
        buf[n.len()..n.len() + 2].copy_from_slice(&qtype.to_int().to_be_bytes());
        buf[n.len() + 2] = u8::from(dnssec_ok) | (u8::from(cd) << 1);
        Key { buf, len: n.len() + 3 }
    }

    /// The key bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// One cached reply.
struct Entry {
    template: Rc<Template>,
    stored: Instant,
    ttl: Duration,
    hits: u32,
    window: Instant,
    refreshing: bool,
}

/// The outcome of a lookup.
pub enum Lookup {
    /// Fresh: render with this age (seconds); `prefetch` asks for a background refresh.
    Fresh {
        /// The reply.
        template: Rc<Template>,
        /// Seconds since it was stored.
        age: u32,
        /// Seconds it is cached for.
        lifetime: u32,
        /// Refresh it now in the background.
        prefetch: bool,
    },
    /// Expired but inside the serve-stale window: serve it and refresh when `refresh`.
    Stale {
        /// The reply.
        template: Rc<Template>,
        /// Refresh it now in the background (only one refresh at a time).
        refresh: bool,
    },
    /// Not cached.
    Miss,
}

struct Bucket {
    map: HashMap<Box<[u8]>, Entry, foldhash::fast::RandomState>,
    limits: CacheBucket,
}

impl Bucket {
    fn new(limits: CacheBucket) -> Self {
        Bucket {
            map: HashMap::default(),
            limits,
        }
    }

    fn insert(&mut self, key: &[u8], entry: Entry) {
        if self.limits.capacity == 0 {
            return;
        }
        if self.map.len() >= self.limits.capacity && !self.map.contains_key(key) {
            // Random eviction (as CoreDNS): the hasher is seeded per process.
            if let Some(victim) = self.map.keys().next().cloned() {
                self.map.remove(&victim);
            }
        }
        self.map.insert(key.into(), entry);
    }
}

/// The cache of one block on one shard.
pub struct Cache {
    success: Bucket,
    denial: Bucket,
    failure: Bucket,
    failure_ttl: Duration,
    serve_stale: Option<Duration>,
    prefetch: Option<(u32, Duration, u8)>,
}

impl Cache {
    /// A cache as configured.
    pub fn new(cfg: &CacheConfig) -> Cache {
        Cache {
            success: Bucket::new(cfg.success),
            denial: Bucket::new(cfg.denial),
            failure: Bucket::new(CacheBucket {
                capacity: cfg.denial.capacity.max(1024),
                max_ttl: cfg.servfail,
                min_ttl: Duration::ZERO,
            }),
            failure_ttl: cfg.servfail,
            serve_stale: cfg.serve_stale,
            prefetch: cfg.prefetch,
        }
    }

    /// The cache of a block without `cache`: failures only, for [`MIN_FAILURE_TTL`].
    pub fn failures_only() -> Cache {
        let none = CacheBucket {
            capacity: 0,
            max_ttl: Duration::ZERO,
            min_ttl: Duration::ZERO,
        };
        Cache {
            success: Bucket::new(none),
            denial: Bucket::new(none),
            failure: Bucket::new(CacheBucket {
                capacity: 1024,
                max_ttl: MIN_FAILURE_TTL,
                min_ttl: Duration::ZERO,
            }),
            failure_ttl: MIN_FAILURE_TTL,
            serve_stale: None,
            prefetch: None,
        }
    }

    /// Looks `key` up at `now`.
    pub fn get(&mut self, key: &[u8], now: Instant) -> Lookup {
        for bucket in [&mut self.success, &mut self.denial, &mut self.failure] {
            let Some(e) = bucket.map.get_mut(key) else { continue };
            let age = now.saturating_duration_since(e.stored);
            if age < e.ttl {
                let mut prefetch = false;
                if let Some((amount, window, pct)) = self.prefetch {
                    if now.saturating_duration_since(e.window) > window {
                        e.window = now;
                        e.hits = 0;
                    }
                    e.hits += 1;
                    let left = e.ttl - age;
                    if e.hits >= amount
                        && !e.refreshing
                        && left.as_secs_f64() <= e.ttl.as_secs_f64() * f64::from(pct) / 100.0
                    {
                        e.refreshing = true;
                        prefetch = true;
                    }
                }
                return Lookup::Fresh {
                    template: e.template.clone(),
                    age: age.as_secs() as u32,
                    lifetime: e.ttl.as_secs() as u32,
                    prefetch,
                };
            }
            // Expired: failures never go stale (RFC 8767 §5 serves data, not errors).
            let stale_ok = e.template.kind != Kind::Failure && self.serve_stale.is_some_and(|w| age < e.ttl + w);
            if stale_ok {
                let refresh = !e.refreshing;
                e.refreshing = true;
                return Lookup::Stale {
                    template: e.template.clone(),
                    refresh,
                };
            }
            bucket.map.remove(key);
            return Lookup::Miss;
        }
        Lookup::Miss
    }

    /// Stores a reply under `key`; returns the seconds it is cached for (0: not cached).
    pub fn put(&mut self, key: &[u8], template: Template, now: Instant) -> u32 {
        let (bucket, ttl) = match template.kind {
            Kind::Success => (&mut self.success, Duration::from_secs(u64::from(template.ttl))),
            Kind::Denial => (&mut self.denial, Duration::from_secs(u64::from(template.ttl))),
            Kind::Failure => (&mut self.failure, self.failure_ttl),
        };
        let ttl = ttl.clamp(bucket.limits.min_ttl, bucket.limits.max_ttl.max(bucket.limits.min_ttl));
        if ttl.is_zero() {
            return 0;
        }
        // A refreshed entry replaces the stale one in whichever bucket it was.
        for b in [&mut self.success, &mut self.denial, &mut self.failure] {
            b.map.remove(key);
        }
        let bucket = match template.kind {
            Kind::Success => &mut self.success,
            Kind::Denial => &mut self.denial,
            Kind::Failure => &mut self.failure,
        };
        bucket.insert(
            key,
            Entry {
                template: Rc::new(template),
                stored: now,
                ttl,
                hits: 0,
                window: now,
                refreshing: false,
            },
        );
        ttl.as_secs() as u32
    }

    /// Lets the next stale or prefetch hit start a refresh again (after a failed one).
    pub fn refresh_done(&mut self, key: &[u8]) {
        for b in [&mut self.success, &mut self.denial, &mut self.failure] {
            if let Some(e) = b.map.get_mut(key) {
                e.refreshing = false;
            }
        }
    }

    /// Entries held with data, and with denials or failures (CoreDNS's `success` and
    /// `denial` entries).
    pub fn sizes(&self) -> (usize, usize) {
        (self.success.map.len(), self.denial.map.len() + self.failure.map.len())
    }

    /// Entries held (for tests and stats).
    pub fn len(&self) -> usize {
        self.success.map.len() + self.denial.map.len() + self.failure.map.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::template::{Kind, failure};
    use super::*;
    use crate::zone::name::parse_abs;

    fn cfg() -> CacheConfig {
        CacheConfig {
            zones: vec![],
            success: CacheBucket {
                capacity: 2,
                max_ttl: Duration::from_secs(100),
                min_ttl: Duration::from_secs(5),
            },
            denial: CacheBucket {
                capacity: 2,
                max_ttl: Duration::from_secs(50),
                min_ttl: Duration::from_secs(5),
            },
            prefetch: Some((2, Duration::from_secs(60), 50)),
            serve_stale: Some(Duration::from_secs(30)),
            servfail: Duration::from_secs(5),
        }
    }

    fn template(kind: Kind, ttl: u32) -> Template {
        let mut t = failure(&NameKey::of(&parse_abs("a.test").unwrap()), Rtype::A, 22);
        t.kind = kind;
        t.ttl = ttl;
        t
    }

    #[test]
    fn ttl_bounds_staleness_and_prefetch() {
        let mut c = Cache::new(&cfg());
        let k = Key::new(&NameKey::of(&parse_abs("a.test").unwrap()), Rtype::A, false, false);
        let t0 = Instant::now();
        c.put(k.as_slice(), template(Kind::Success, 1000), t0);
        // Clamped to the 100 s maximum.
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(99)),
            Lookup::Fresh { age: 99, .. }
        ));
        // Second hit within the window with half the TTL left: prefetch once.
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(99)),
            Lookup::Fresh { prefetch: true, .. }
        ));
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(99)),
            Lookup::Fresh { prefetch: false, .. }
        ));
        c.refresh_done(k.as_slice());
        // Stale within 30 s after expiry; gone after.
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(110)),
            Lookup::Stale { refresh: true, .. }
        ));
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(111)),
            Lookup::Stale { refresh: false, .. }
        ));
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(131)),
            Lookup::Miss
        ));
        // Short TTLs are raised to the minimum; failures last `servfail` and never go stale.
        c.put(k.as_slice(), template(Kind::Denial, 1), t0);
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(4)),
            Lookup::Fresh { .. }
        ));
        c.put(k.as_slice(), template(Kind::Failure, 0), t0);
        assert!(matches!(
            c.get(k.as_slice(), t0 + Duration::from_secs(4)),
            Lookup::Fresh { .. }
        ));
        assert!(matches!(c.get(k.as_slice(), t0 + Duration::from_secs(6)), Lookup::Miss));
    }

    #[test]
    fn capacity_is_bounded_and_keys_differ_by_do_and_cd() {
        let mut c = Cache::new(&cfg());
        let now = Instant::now();
        for (i, n) in ["a.test", "b.test", "c.test"].iter().enumerate() {
            let k = Key::new(&NameKey::of(&parse_abs(n).unwrap()), Rtype::A, i == 1, false);
            c.put(k.as_slice(), template(Kind::Success, 60), now);
        }
        assert_eq!(c.len(), 2);
        let name = NameKey::of(&parse_abs("a.test").unwrap());
        assert_ne!(
            Key::new(&name, Rtype::A, true, false).as_slice(),
            Key::new(&name, Rtype::A, false, false).as_slice()
        );
        assert_ne!(
            Key::new(&name, Rtype::A, false, true).as_slice(),
            Key::new(&name, Rtype::A, false, false).as_slice()
        );
        assert!(Cache::failures_only().is_empty());
    }
}
