//! A `forward` ready to run: its settings, TLS client configurations and cache settings,
//! and which names it takes. Built on the control thread (the forwarder's `build_plan`
//! reads the TLS files), shared by the shards through the snapshot; the query path asks it
//! only [`Plan::forwards`], and hands it to the forwarder with the query.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::config::{CacheConfig, ForwardConfig, UpstreamAddr};
use crate::meter::series::{CacheShard, Sharded, UpstreamShard};
use crate::zone::name::{NameKey, is_in_zone};

static PLAN_IDS: AtomicU64 = AtomicU64::new(1);

/// A `forward` ready to run: its settings, TLS client configurations and cache settings.
#[derive(Debug)]
pub struct Plan {
    /// Unique per build (per-shard state is keyed by it).
    pub id: u64,
    /// Settings.
    pub cfg: ForwardConfig,
    /// For DoT upstreams (ALPN `dot`).
    pub dot: Option<Arc<ClientConfig>>,
    /// For DoH upstreams (ALPN `h2`).
    pub doh: Option<Arc<ClientConfig>>,
    /// The block's `cache`, if any.
    pub cache: Option<CacheConfig>,
    pub(crate) from: Box<[u8]>,
    except: Vec<Box<[u8]>>,
    /// The `cache` ZONES (empty: no cache).
    cache_zones: Vec<Box<[u8]>>,
    /// Counts for the metrics, when the block has `prometheus`.
    metrics: OnceLock<PlanMetrics>,
    /// How long a client waits at most (the block's `cancel`, within the forwarder's budget).
    pub budget: Option<std::time::Duration>,
}

/// The per-shard counts a plan writes: its cache's and each upstream's (in `to` order).
#[derive(Debug)]
pub struct PlanMetrics {
    /// `coredns_cache_*`, when the block has a `cache`.
    pub cache: Option<Arc<Sharded<CacheShard>>>,
    /// `coredns_proxy_*` per upstream.
    pub upstreams: Vec<Arc<Sharded<UpstreamShard>>>,
}

impl Plan {
    /// The plan of `cfg` with the block's `cache`, and the TLS client configurations of its
    /// DoT and DoH upstreams.
    pub fn new(
        cfg: &ForwardConfig,
        cache: Option<&CacheConfig>,
        dot: Option<Arc<ClientConfig>>,
        doh: Option<Arc<ClientConfig>>,
    ) -> Plan {
        Plan {
            id: PLAN_IDS.fetch_add(1, Ordering::Relaxed),
            from: NameKey::of(&cfg.from).as_slice().into(),
            except: cfg.except.iter().map(|n| NameKey::of(n).as_slice().into()).collect(),
            cfg: cfg.clone(),
            dot,
            doh,
            cache_zones: cache.map_or_else(Vec::new, |c| {
                c.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect()
            }),
            cache: cache.cloned(),
            metrics: OnceLock::new(),
            budget: None,
        }
    }

    /// Gives the plan its counts, unless it has them already (a plan kept over a reload).
    pub fn attach_metrics(&self, make: impl FnOnce() -> PlanMetrics) {
        let _ = self.metrics.get_or_init(make);
    }

    /// The plan's counts, if it has any.
    #[inline]
    pub fn metrics(&self) -> Option<&PlanMetrics> {
        self.metrics.get()
    }

    /// Whether queries for `key` go upstream (under FROM, not under an `except` name).
    pub fn forwards(&self, key: &[u8]) -> bool {
        is_in_zone(key, &self.from) && !self.except.iter().any(|e| is_in_zone(key, e))
    }

    /// Whether answers for `key` are cached (failures are cached for every name, RFC 9520).
    pub(crate) fn caches(&self, key: &[u8]) -> bool {
        self.cache_zones.iter().any(|z| is_in_zone(key, z))
    }

    pub(crate) fn sni(&self, u: &UpstreamAddr) -> Option<ServerName<'static>> {
        let name = match (&self.cfg.tls_servername, u) {
            (Some(n), _) => n.clone(),
            (None, UpstreamAddr::Https { host, .. }) => host.clone(),
            _ => return None,
        };
        ServerName::try_from(name).ok()
    }
}
