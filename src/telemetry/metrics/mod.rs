//! The `prometheus` plugin: CoreDNS 1.14's metric names, labels and buckets, so that its
//! dashboards and alerts work unchanged, and ringdns's own under `ringdns_`.
//!
//! The shards count into [`crate::meter::series`] (per shard, no lock); the [`Registry`]
//! hands that storage out by labels, keeps it across reloads (a counter never goes back
//! because the Corefile changed) and renders the sums in the text exposition format at
//! scrape time. The format is written here rather than through a crate: it is output only,
//! a few lines per series, and the Prometheus crates' own counters are what the query path
//! must not use. `promtool check metrics` checks it in the tests.

mod process;
mod text;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::dns::pipeline::ZoneSeries;
use crate::dnssec::online::{CacheTotals, Signer};
use crate::meter::Counter;
use crate::meter::series::{
    CacheShard, HistogramSum, PLUGINS, PROTOS, QTYPES, RCODES, SIZE_BOUNDS, Sharded, TIME_BUCKETS, UpstreamShard,
    ZoneShard, rcode_label, time_bound,
};
use crate::telemetry::stats::ShardStats;
use text::{Labels, Text};

/// How an ACME order ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderResult {
    /// A certificate was issued.
    Valid,
    /// The CA said invalid (a challenge failed, the names were refused).
    Invalid,
    /// It did not get that far: the CA unreachable, an account error, a timeout.
    Error,
}

/// Per-shard counts of one `cache`.
pub type CacheSeries = Sharded<CacheShard>;
/// Per-shard counts of one upstream of a `forward`.
pub type UpstreamSeries = Sharded<UpstreamShard>;

/// One server's `dnssec` counts: what the signers before the current one counted, and the
/// current one.
type SignerSeries = (CacheTotals, Option<Arc<Signer>>);

/// Every series ringdns exports, by labels.
pub struct Registry {
    shards: usize,
    zones: Mutex<BTreeMap<(String, String), Arc<ZoneSeries>>>,
    caches: Mutex<BTreeMap<(String, String), Arc<CacheSeries>>>,
    upstreams: Mutex<BTreeMap<String, Arc<UpstreamSeries>>>,
    /// (server, zone, plugin) of the running configuration.
    enabled: Mutex<Vec<(String, String, &'static str)>>,
    /// Failed reloads (written by the control thread only).
    reload_failed: Counter,
    /// (names, source, not-after in Unix seconds) of every certificate served.
    certificates: Mutex<Vec<(String, &'static str, u64)>>,
    /// ACME orders by result (valid, invalid, error), control thread only.
    orders: [Counter; 3],
    /// `dnssec` signature caches by server.
    dnssec: Mutex<BTreeMap<String, SignerSeries>>,
    stats: Arc<[ShardStats]>,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic anywhere ends the process (see shard), so a poisoned lock is never seen
    // running; take the data either way.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Registry {
    /// A registry for `stats.len()` shards, reading their connection counters from `stats`.
    pub fn new(stats: Arc<[ShardStats]>) -> Self {
        Registry {
            shards: stats.len(),
            zones: Mutex::default(),
            caches: Mutex::default(),
            upstreams: Mutex::default(),
            enabled: Mutex::default(),
            reload_failed: Counter::default(),
            certificates: Mutex::default(),
            orders: Default::default(),
            dnssec: Mutex::default(),
            stats,
        }
    }

    /// The counts of (server, zone), made on first use.
    pub fn zone(&self, server: &str, zone: &str) -> Arc<ZoneSeries> {
        let mut zones = locked(&self.zones);
        zones
            .entry((server.to_string(), zone.to_string()))
            .or_insert_with(|| {
                let labels = Labels::new().with("server", server).with("zone", zone).with("view", "");
                Arc::new(Sharded::new(labels.into_string(), self.shards))
            })
            .clone()
    }

    /// The counts of a `cache` of (server, its zones), made on first use.
    pub fn cache(&self, server: &str, zones: &str) -> Arc<CacheSeries> {
        let mut caches = locked(&self.caches);
        caches
            .entry((server.to_string(), zones.to_string()))
            .or_insert_with(|| {
                let labels = Labels::new()
                    .with("server", server)
                    .with("zones", zones)
                    .with("view", "");
                Arc::new(Sharded::new(labels.into_string(), self.shards))
            })
            .clone()
    }

    /// The counts of upstream `to` (`proxy_name` `forward`), made on first use.
    pub fn upstream(&self, to: &str) -> Arc<UpstreamSeries> {
        let mut ups = locked(&self.upstreams);
        ups.entry(to.to_string())
            .or_insert_with(|| {
                let labels = Labels::new().with("proxy_name", "forward").with("to", to);
                Arc::new(Sharded::new(labels.into_string(), self.shards))
            })
            .clone()
    }

    /// The plugins of the running configuration, per server and zone
    /// (`coredns_plugin_enabled`).
    pub fn set_enabled(&self, enabled: Vec<(String, String, &'static str)>) {
        *locked(&self.enabled) = enabled;
    }

    /// The certificates served now: (names, `file` or `acme`, not-after in Unix seconds).
    pub fn set_certificates(&self, certs: Vec<(String, &'static str, u64)>) {
        *locked(&self.certificates) = certs;
    }

    /// Counts an ACME order that ended: `valid`, `invalid` (the CA refused it) or `error`.
    pub fn order(&self, result: OrderResult) {
        self.orders[result as usize].incr();
    }

    /// The `dnssec` signers of the running configuration, by server label. Counts of the
    /// signers they replace are kept, so the counters do not go back on a reload.
    pub fn set_dnssec(&self, signers: Vec<(String, Arc<Signer>)>) {
        let mut all = locked(&self.dnssec);
        for (base, current) in all.values_mut() {
            let Some(old) = current.take() else { continue };
            if !signers.iter().any(|(_, s)| Arc::ptr_eq(s, &old)) {
                let t = old.cache_totals();
                base.hits += t.hits;
                base.misses += t.misses;
            }
        }
        for (server, signer) in signers {
            all.entry(server).or_default().1 = Some(signer);
        }
    }

    /// Counts a failed reload (control thread only).
    pub fn reload_failed(&self) {
        self.reload_failed.incr();
    }

    /// Every series, summed over the shards, in the text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut t = Text::default();
        build_info(&mut t);
        t.family(
            "coredns_panics_total",
            "A metrics that counts the number of panics.",
            "counter",
        );
        t.sample("coredns_panics_total", "", 0);
        let zones: Vec<_> = locked(&self.zones).values().cloned().collect();
        dns(&mut t, &zones);
        self.plugins(&mut t);
        let caches: Vec<_> = locked(&self.caches).values().cloned().collect();
        cache(&mut t, &caches);
        let ups: Vec<_> = locked(&self.upstreams).values().cloned().collect();
        proxy(&mut t, &ups);
        t.family(
            "coredns_reload_failed_total",
            "Counter of the number of failed reload attempts.",
            "counter",
        );
        t.sample("coredns_reload_failed_total", "", self.reload_failed.get());
        self.dnssec(&mut t);
        shards(&mut t, &self.stats);
        self.tls(&mut t);
        process::render(&mut t);
        t.into_string()
    }

    /// CoreDNS's `dnssec` families.
    fn dnssec(&self, t: &mut Text) {
        let all = locked(&self.dnssec);
        if all.is_empty() {
            return;
        }
        let rows: Vec<(&String, CacheTotals)> = all
            .iter()
            .map(|(server, (base, current))| {
                let now = current.as_ref().map(|c| c.cache_totals()).unwrap_or_default();
                let t = CacheTotals {
                    hits: base.hits + now.hits,
                    misses: base.misses + now.misses,
                    entries: now.entries,
                };
                (server, t)
            })
            .collect();
        const ENTRIES: &str = "coredns_dnssec_cache_entries";
        t.family(ENTRIES, "The number of elements in the dnssec cache.", "gauge");
        for (server, c) in &rows {
            let l = Labels::new().with("server", server).with("type", "signature");
            t.sample(ENTRIES, l.as_str(), c.entries);
        }
        for (name, help, get) in [
            (
                "coredns_dnssec_cache_hits_total",
                "The count of cache hits.",
                (|c: &CacheTotals| c.hits) as fn(&CacheTotals) -> u64,
            ),
            (
                "coredns_dnssec_cache_misses_total",
                "The count of cache misses.",
                |c: &CacheTotals| c.misses,
            ),
        ] {
            t.family(name, help, "counter");
            for (server, c) in &rows {
                t.sample(name, Labels::new().with("server", server).as_str(), get(c));
            }
        }
    }

    fn tls(&self, t: &mut Text) {
        const NOT_AFTER: &str = "ringdns_certificate_not_after_seconds";
        t.family(
            NOT_AFTER,
            "When each certificate served expires, in Unix seconds.",
            "gauge",
        );
        for (names, source, at) in locked(&self.certificates).iter() {
            let l = Labels::new().with("names", names).with("source", source);
            t.sample(NOT_AFTER, l.as_str(), *at);
        }
        const ORDERS: &str = "ringdns_acme_orders_total";
        t.family(ORDERS, "ACME orders that ended, by result.", "counter");
        for (i, result) in ["valid", "invalid", "error"].iter().enumerate() {
            t.sample(
                ORDERS,
                Labels::new().with("result", result).as_str(),
                self.orders[i].get(),
            );
        }
    }

    fn plugins(&self, t: &mut Text) {
        let enabled = locked(&self.enabled);
        if enabled.is_empty() {
            return;
        }
        t.family(
            "coredns_plugin_enabled",
            "A metric that indicates whether a plugin is enabled on per server and zone basis.",
            "gauge",
        );
        for (server, zone, name) in enabled.iter() {
            let l = Labels::new()
                .with("server", server)
                .with("zone", zone)
                .with("view", "")
                .with("name", name);
            t.sample("coredns_plugin_enabled", l.as_str(), 1);
        }
    }
}

fn build_info(t: &mut Text) {
    let version = env!("CARGO_PKG_VERSION");
    t.family(
        "coredns_build_info",
        "A metric with a constant '1' value labeled by version, revision, and goversion from which CoreDNS was built.",
        "gauge",
    );
    // ringdns is no Go program: `goversion` names what built it instead.
    let l = Labels::new()
        .with("version", version)
        .with("revision", option_env!("RINGDNS_REVISION").unwrap_or("unknown"))
        .with("goversion", "ringdns (Rust)");
    t.sample("coredns_build_info", l.as_str(), 1);
    t.family("ringdns_build_info", "ringdns's version.", "gauge");
    t.sample("ringdns_build_info", Labels::new().with("version", version).as_str(), 1);
}

/// Sums `f` over the shards of `s`.
fn sum<T>(s: &Sharded<T>, f: impl Fn(&T) -> u64) -> u64 {
    s.shards().iter().map(f).sum()
}

fn hist_sum<T, const N: usize>(s: &Sharded<T>, f: impl Fn(&T) -> &crate::meter::series::Histogram<N>) -> HistogramSum {
    let mut acc = HistogramSum::default();
    for shard in s.shards() {
        f(shard).add_to(&mut acc);
    }
    acc
}

fn dns(t: &mut Text, zones: &[Arc<ZoneSeries>]) {
    const REQ: &str = "coredns_dns_requests_total";
    t.family(
        REQ,
        "Counter of DNS requests made per zone, protocol and family.",
        "counter",
    );
    for z in zones {
        for (p, proto) in PROTOS.iter().enumerate() {
            for (f, family) in ["1", "2"].iter().enumerate() {
                for (q, (_, qtype)) in QTYPES.iter().enumerate() {
                    let n = sum(z, |s: &ZoneShard| s.requests[p][f][q].get());
                    if n > 0 {
                        let l = Labels::from(&z.labels)
                            .with("proto", proto)
                            .with("family", family)
                            .with("type", qtype);
                        t.sample(REQ, l.as_str(), n);
                    }
                }
            }
        }
    }
    const DO: &str = "coredns_dns_do_requests_total";
    t.family(DO, "Counter of DNS requests with DO bit set per zone.", "counter");
    for z in zones {
        let n = sum(z, |s| s.do_requests.get());
        if n > 0 {
            t.sample(DO, &z.labels, n);
        }
    }
    const RESP: &str = "coredns_dns_responses_total";
    t.family(RESP, "Counter of response status codes.", "counter");
    for z in zones {
        for rcode in 0..RCODES {
            for (i, plugin) in PLUGINS.iter().enumerate() {
                let n = sum(z, |s| s.responses[rcode][i].get());
                if n > 0 {
                    let l = Labels::from(&z.labels)
                        .with("rcode", &rcode_label(rcode))
                        .with("plugin", plugin.label());
                    t.sample(RESP, l.as_str(), n);
                }
            }
        }
    }
    const DUR: &str = "coredns_dns_request_duration_seconds";
    t.family(
        DUR,
        "Histogram of the time (in seconds) each request took per zone.",
        "histogram",
    );
    for z in zones {
        let h = hist_sum(z, |s| &s.duration);
        if h.count() > 0 {
            t.histogram(DUR, &z.labels, &h, time_bounds(), 1e9);
        }
    }
    let sizes: Vec<f64> = SIZE_BOUNDS.iter().map(|&b| f64::from(b)).collect();
    for (name, help, which) in [
        (
            "coredns_dns_request_size_bytes",
            "Size of the EDNS0 UDP buffer in bytes (64K for TCP) per zone and protocol.",
            0,
        ),
        (
            "coredns_dns_response_size_bytes",
            "Size of the returned response in bytes.",
            1,
        ),
    ] {
        t.family(name, help, "histogram");
        for z in zones {
            for (p, proto) in PROTOS.iter().enumerate() {
                let h = hist_sum(z, |s| {
                    if which == 0 {
                        &s.request_size[p]
                    } else {
                        &s.response_size[p]
                    }
                });
                if h.count() > 0 {
                    let l = Labels::from(&z.labels).with("proto", proto);
                    t.histogram(name, l.as_str(), &h, &sizes, 1.0);
                }
            }
        }
    }
}

fn time_bounds() -> &'static [f64] {
    static BOUNDS: std::sync::OnceLock<Vec<f64>> = std::sync::OnceLock::new();
    BOUNDS.get_or_init(|| (0..TIME_BUCKETS).map(time_bound).collect())
}

/// A metric family read from per-shard storage `T`.
struct Def<T> {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    get: Read<T>,
}

const fn def<T>(name: &'static str, help: &'static str, kind: &'static str, get: Read<T>) -> Def<T> {
    Def { name, help, kind, get }
}

const CACHE: [Def<CacheShard>; 4] = [
    def(
        "coredns_cache_requests_total",
        "The count of cache requests.",
        "counter",
        |s| s.requests.get(),
    ),
    def(
        "coredns_cache_misses_total",
        "The count of cache misses. Deprecated, derive misses from cache hits/requests counters.",
        "counter",
        |s| s.misses.get(),
    ),
    def(
        "coredns_cache_prefetch_total",
        "The number of times the cache has prefetched a cached item.",
        "counter",
        |s| s.prefetch.get(),
    ),
    def(
        "coredns_cache_served_stale_total",
        "The number of requests served from stale cache entries.",
        "counter",
        |s| s.served_stale.get(),
    ),
];

/// Reads one shard's value of a series.
type Read<T> = fn(&T) -> u64;

/// Families with a `type` label: (definition of `success`, reader of `denial`).
const CACHE_TYPED: [(Def<CacheShard>, Read<CacheShard>); 2] = [
    (
        def("coredns_cache_hits_total", "The count of cache hits.", "counter", |s| {
            s.hits_success.get()
        }),
        |s| s.hits_denial.get(),
    ),
    (
        def(
            "coredns_cache_entries",
            "The number of elements in the cache.",
            "gauge",
            |s| s.entries_success.get(),
        ),
        |s| s.entries_denial.get(),
    ),
];

fn cache(t: &mut Text, caches: &[Arc<CacheSeries>]) {
    if caches.is_empty() {
        return;
    }
    for d in &CACHE {
        t.family(d.name, d.help, d.kind);
        for c in caches {
            t.sample(d.name, &c.labels, sum(c, d.get));
        }
    }
    for (d, denial) in &CACHE_TYPED {
        t.family(d.name, d.help, d.kind);
        for c in caches {
            for (ty, f) in [("success", d.get), ("denial", *denial)] {
                let l = Labels::from(&c.labels).with("type", ty);
                t.sample(d.name, l.as_str(), sum(c, f));
            }
        }
    }
}

fn proxy(t: &mut Text, ups: &[Arc<UpstreamSeries>]) {
    if ups.is_empty() {
        return;
    }
    const DUR: &str = "coredns_proxy_request_duration_seconds";
    t.family(DUR, "Histogram of the time each request took.", "histogram");
    for u in ups {
        for rcode in 0..RCODES {
            let h = hist_sum(u, |s| &s.duration[rcode]);
            if h.count() > 0 {
                let l = Labels::from(&u.labels).with("rcode", &rcode_label(rcode));
                t.histogram(DUR, l.as_str(), &h, time_bounds(), 1e9);
            }
        }
    }
    const HC: &str = "coredns_proxy_healthcheck_failures_total";
    t.family(HC, "Counter of the number of failed healthchecks.", "counter");
    for u in ups {
        t.sample(HC, &u.labels, sum(u, |s| s.healthcheck_failures.get()));
    }
    const FAIL: &str = "ringdns_upstream_failures_total";
    t.family(
        FAIL,
        "Exchanges with an upstream that failed: timeouts, network errors, unusable replies.",
        "counter",
    );
    for u in ups {
        t.sample(FAIL, &u.labels, sum(u, |s| s.failures.get()));
    }
}

/// ringdns's own per-shard series.
fn shards(t: &mut Text, stats: &[ShardStats]) {
    let per_shard: [Def<ShardStats>; 6] = [
        def(
            "ringdns_udp_dropped_total",
            "UDP datagrams dropped without a reply (short, or a response).",
            "counter",
            |s| s.udp_dropped.get(),
        ),
        def(
            "ringdns_tcp_accepted_total",
            "TCP, DoT and DoH connections accepted.",
            "counter",
            |s| s.tcp_accepted.get(),
        ),
        def(
            "ringdns_connections_open",
            "TCP, DoT and DoH connections open now.",
            "gauge",
            |s| s.conns_open.get(),
        ),
        def(
            "ringdns_tls_handshake_failures_total",
            "TLS handshakes that failed.",
            "counter",
            |s| s.tls_handshake_failures.get(),
        ),
        def(
            "ringdns_upstream_queries_total",
            "Queries sent to upstreams (each retry and failover counts).",
            "counter",
            |s| s.upstream_queries.get(),
        ),
        def(
            "ringdns_forward_coalesced_total",
            "Forwarded queries that waited for an identical query already upstream.",
            "counter",
            |s| s.coalesced.get(),
        ),
    ];
    for d in per_shard {
        t.family(d.name, d.help, d.kind);
        for (i, s) in stats.iter().enumerate() {
            t.sample(d.name, Labels::new().with("shard", &i.to_string()).as_str(), (d.get)(s));
        }
    }
    by_shard(
        t,
        stats,
        (
            "ringdns_answered_total",
            "Queries answered, by transport (tcp counts TCP and DoT).",
            "transport",
        ),
        |s| {
            vec![
                ("udp", s.udp_answered.get()),
                ("tcp", s.tcp_answered.get()),
                ("https", s.doh_answered.get()),
            ]
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_cookies_total",
            "Requests with a DNS Cookie, by what it showed: a client cookie alone, a server cookie that did not check, one that did.",
            "result",
        ),
        |s| {
            ["client_only", "bad", "valid"]
                .into_iter()
                .zip(s.cookies.iter().map(Counter::get))
                .collect()
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_shed_total",
            "Work shed by a shard that could not keep up: UDP queries dropped unanswered after waiting too long (shed), forwarded queries refused at once over max_concurrent.",
            "reason",
        ),
        |s| {
            ["stale_query", "forward_refused"]
                .into_iter()
                .zip(s.shed.iter().map(Counter::get))
                .collect()
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_rrl_total",
            "UDP requests and replies over an rrl limit, by what became of them: requests dropped, replies dropped, replies slipped (truncated), replies sent as BADCOOKIE, and those sent anyway (report-only).",
            "action",
        ),
        |s| {
            ["request_dropped", "dropped", "slipped", "badcookie", "reported"]
                .into_iter()
                .zip(s.rrl.iter().map(Counter::get))
                .collect()
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_udp_drops_total",
            "UDP datagrams dropped without a reply, by reason.",
            "reason",
        ),
        |s| {
            ["short", "response", "oversized", "acl", "rrl"]
                .into_iter()
                .zip(s.udp_drops.iter().map(Counter::get))
                .collect()
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_connections_closed_total",
            "Connections closed by ringdns, by reason: refused at a cap, timed out, evicted for a newcomer.",
            "reason",
        ),
        |s| {
            vec![
                ("refused", s.tcp_refused.get()),
                ("timeout", s.tcp_timeouts.get()),
                ("evicted", s.conn_evicted.get()),
            ]
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_connections_refused_total",
            "Connections refused at a cap, by cap: the client prefix's connections, its TLS handshakes, a full shard.",
            "reason",
        ),
        |s| {
            ["prefix", "prefix_handshakes", "full"]
                .into_iter()
                .zip(s.tcp_refusals.iter().map(Counter::get))
                .collect()
        },
    );
    by_shard(
        t,
        stats,
        (
            "ringdns_http2_resets_total",
            "DoH over HTTP/2: streams cut off before their response (reset by the client, or the connection went), connections ended on an error.",
            "scope",
        ),
        |s| {
            ["stream", "connection"]
                .into_iter()
                .zip(s.http2_resets.iter().map(Counter::get))
                .collect()
        },
    );
}

/// A counter family with a `shard` label and one more, `(name, help, label)`, whose values
/// `values` reads from each shard's counters.
fn by_shard(
    t: &mut Text,
    stats: &[ShardStats],
    (name, help, label): (&str, &str, &str),
    values: impl Fn(&ShardStats) -> Vec<(&'static str, u64)>,
) {
    t.family(name, help, "counter");
    for (i, s) in stats.iter().enumerate() {
        let shard = i.to_string();
        for (v, n) in values(s) {
            t.sample(name, Labels::new().with("shard", &shard).with(label, v).as_str(), n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meter::series::{Answered, Plugin};

    #[test]
    fn counts_of_every_shard_are_summed_and_kept_by_labels() {
        let stats: Arc<[ShardStats]> = Arc::from(vec![ShardStats::default(), ShardStats::default()]);
        let r = Registry::new(stats);
        let z = r.zone("dns://:53", "example.org.");
        let a = Answered {
            stream: false,
            ipv6: false,
            qtype: 1,
            dnssec_ok: true,
            rcode: 3,
            plugin: Plugin::File,
            query_len: 40,
            reply_len: 120,
            nanos: 300_000,
        };
        z.shard(0).record(&a);
        z.shard(1).record(&a);
        // The same labels give the same storage (a reload keeps the counts).
        assert!(Arc::ptr_eq(&z, &r.zone("dns://:53", "example.org.")));
        let text = r.render();
        for line in [
            r#"coredns_dns_requests_total{server="dns://:53",zone="example.org.",view="",proto="udp",family="1",type="A"} 2"#,
            r#"coredns_dns_do_requests_total{server="dns://:53",zone="example.org.",view=""} 2"#,
            r#"coredns_dns_responses_total{server="dns://:53",zone="example.org.",view="",rcode="NXDOMAIN",plugin="file"} 2"#,
            r#"coredns_dns_request_duration_seconds_bucket{server="dns://:53",zone="example.org.",view="",le="0.00025"} 0"#,
            r#"coredns_dns_request_duration_seconds_bucket{server="dns://:53",zone="example.org.",view="",le="0.0005"} 2"#,
            r#"coredns_dns_request_duration_seconds_bucket{server="dns://:53",zone="example.org.",view="",le="+Inf"} 2"#,
            r#"coredns_dns_request_duration_seconds_count{server="dns://:53",zone="example.org.",view=""} 2"#,
            r#"coredns_dns_request_duration_seconds_sum{server="dns://:53",zone="example.org.",view=""} 0.0006"#,
            r#"coredns_dns_response_size_bytes_bucket{server="dns://:53",zone="example.org.",view="",proto="udp",le="200"} 2"#,
            r#"coredns_dns_response_size_bytes_sum{server="dns://:53",zone="example.org.",view="",proto="udp"} 240"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
