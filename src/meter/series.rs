//! The per-shard storage behind the Prometheus series: fixed arrays of single-writer
//! counters, one set per shard on its own cache lines, indexed by small label slots (query
//! type, rcode, plugin, protocol, family), so recording is a few plain stores, with no lock,
//! no read-modify-write and no allocation. The scrape sums the shards.

use super::Counter;

/// Query types with a series of their own, as CoreDNS 1.14's `monitorType`; any other type
/// is counted as `other`.
pub const QTYPES: [(u16, &str); 20] = [
    (1, "A"),
    (2, "NS"),
    (5, "CNAME"),
    (6, "SOA"),
    (12, "PTR"),
    (15, "MX"),
    (16, "TXT"),
    (28, "AAAA"),
    (33, "SRV"),
    (43, "DS"),
    (46, "RRSIG"),
    (47, "NSEC"),
    (48, "DNSKEY"),
    (50, "NSEC3"),
    (64, "SVCB"),
    (65, "HTTPS"),
    (251, "IXFR"),
    (252, "AXFR"),
    (255, "ANY"),
    (0, "other"),
];
const QTYPE_SLOTS: usize = QTYPES.len();
const OTHER_QTYPE: usize = QTYPE_SLOTS - 1;

/// The slot of a query type in [`QTYPES`].
#[inline]
pub fn qtype_slot(qtype: u16) -> usize {
    match qtype {
        1 => 0,
        2 => 1,
        5 => 2,
        6 => 3,
        12 => 4,
        15 => 5,
        16 => 6,
        28 => 7,
        33 => 8,
        43 => 9,
        46 => 10,
        47 => 11,
        48 => 12,
        50 => 13,
        64 => 14,
        65 => 15,
        251 => 16,
        252 => 17,
        255 => 18,
        _ => OTHER_QTYPE,
    }
}

/// Response codes 0 to 23, the ones with a name (RFC 6895 §2.3). ringdns writes no other,
/// and a forwarded reply's header holds four bits; a larger value is counted as 23.
pub const RCODES: usize = 24;

/// The `rcode` label: miekg/dns's names (which CoreDNS uses), `RCODE<n>` for the unnamed.
pub fn rcode_label(rcode: usize) -> String {
    const NAMES: [&str; RCODES] = [
        "NOERROR",
        "FORMERR",
        "SERVFAIL",
        "NXDOMAIN",
        "NOTIMP",
        "REFUSED",
        "YXDOMAIN",
        "YXRRSET",
        "NXRRSET",
        "NOTAUTH",
        "NOTZONE",
        "DSOTYPENI",
        "",
        "",
        "",
        "",
        "BADSIG",
        "BADKEY",
        "BADTIME",
        "BADMODE",
        "BADNAME",
        "BADALG",
        "BADTRUNC",
        "BADCOOKIE",
    ];
    match NAMES.get(rcode) {
        Some(n) if !n.is_empty() => (*n).to_string(),
        _ => format!("RCODE{rcode}"),
    }
}

#[inline]
fn rcode_slot(rcode: u16) -> usize {
    usize::from(rcode).min(RCODES - 1)
}

/// Which part of ringdns wrote a reply: the `plugin` label of `coredns_dns_responses_total`
/// (empty when the server itself answered, as CoreDNS's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Plugin {
    /// The server: malformed queries, names no block serves.
    Server,
    /// `hosts`.
    Hosts,
    /// `file`.
    File,
    /// `forward` (an upstream's answer).
    Forward,
    /// `cache` (a forwarded name answered from the cache).
    Cache,
    /// `tls`: an ACME DNS-01 challenge value.
    Tls,
    /// `chaos`.
    Chaos,
    /// `any`.
    Any,
    /// `whoami`.
    Whoami,
    /// `acl` (a block or a filter).
    Acl,
    /// `template`.
    Template,
    /// `local`.
    Local,
    /// `dns64` (a synthesised AAAA answer).
    Dns64,
    /// `secondary`: a NOTIFY taken from a primary.
    Secondary,
    /// `tsig`: a request refused for its signature, or for the lack of one.
    Tsig,
    /// `dnssec`: the DNSKEY RRset of a zone signed online.
    Dnssec,
    /// `update`: an RFC 2136 update answered.
    Update,
}

/// Every [`Plugin`], in slot order.
pub const PLUGINS: [Plugin; 17] = [
    Plugin::Server,
    Plugin::Hosts,
    Plugin::File,
    Plugin::Forward,
    Plugin::Cache,
    Plugin::Tls,
    Plugin::Chaos,
    Plugin::Any,
    Plugin::Whoami,
    Plugin::Acl,
    Plugin::Template,
    Plugin::Local,
    Plugin::Dns64,
    Plugin::Secondary,
    Plugin::Tsig,
    Plugin::Dnssec,
    Plugin::Update,
];

impl Plugin {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            Plugin::Server => "",
            Plugin::Hosts => "hosts",
            Plugin::File => "file",
            Plugin::Forward => "forward",
            Plugin::Cache => "cache",
            Plugin::Tls => "tls",
            Plugin::Chaos => "chaos",
            Plugin::Any => "any",
            Plugin::Whoami => "whoami",
            Plugin::Acl => "acl",
            Plugin::Template => "template",
            Plugin::Local => "local",
            Plugin::Dns64 => "dns64",
            Plugin::Secondary => "secondary",
            Plugin::Tsig => "tsig",
            Plugin::Dnssec => "dnssec",
            Plugin::Update => "update",
        }
    }
}

/// Upper bounds of CoreDNS's duration buckets, in nanoseconds: 0.25 ms doubling to 8.192 s
/// (`plugin.TimeBuckets`, `ExponentialBuckets(0.00025, 2, 16)`).
pub const TIME_BUCKETS: usize = 16;
const TIME_BASE_NS: u64 = 250_000;

/// The bucket of a duration: the first whose bound is at least `ns` (`TIME_BUCKETS` is +Inf).
#[inline]
pub fn time_slot(ns: u64) -> usize {
    let q = ns.saturating_sub(1) / TIME_BASE_NS;
    ((u64::BITS - q.leading_zeros()) as usize).min(TIME_BUCKETS)
}

/// The bound of duration bucket `i`, in seconds.
pub fn time_bound(i: usize) -> f64 {
    (TIME_BASE_NS << i) as f64 / 1e9
}

/// CoreDNS's size buckets (request and response sizes), in octets.
pub const SIZE_BOUNDS: [u32; 14] = [
    0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000, 32000, 48000, 64000,
];

#[inline]
fn size_slot(n: usize) -> usize {
    SIZE_BOUNDS
        .iter()
        .position(|&b| n <= b as usize)
        .unwrap_or(SIZE_BOUNDS.len())
}

/// A histogram with `N` buckets and +Inf, per bucket (not cumulative: the scrape adds up).
#[derive(Debug)]
pub struct Histogram<const N: usize> {
    /// Observations per bucket; the last is above every bound.
    pub buckets: [Counter; N],
    /// The +Inf bucket.
    pub over: Counter,
    /// Sum of the observed values (nanoseconds or octets).
    pub sum: Counter,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| Counter::default()),
            over: Counter::default(),
            sum: Counter::default(),
        }
    }
}

impl<const N: usize> Histogram<N> {
    #[inline]
    fn observe(&self, slot: usize, value: u64) {
        match self.buckets.get(slot) {
            Some(b) => b.incr(),
            None => self.over.incr(),
        }
        self.sum.add(value);
    }

    /// Adds this shard's values into `acc` (bucket counts, +Inf, sum).
    pub fn add_to(&self, acc: &mut HistogramSum) {
        acc.buckets.resize(N, 0);
        for (a, b) in acc.buckets.iter_mut().zip(&self.buckets) {
            *a += b.get();
        }
        acc.over += self.over.get();
        acc.sum += self.sum.get();
    }
}

/// A histogram summed over shards.
#[derive(Default, Debug, Clone)]
pub struct HistogramSum {
    /// Per bucket, not cumulative.
    pub buckets: Vec<u64>,
    /// Above every bound.
    pub over: u64,
    /// Sum of the values.
    pub sum: u64,
}

impl HistogramSum {
    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum::<u64>() + self.over
    }
}

/// Transport slots of the `proto` label.
pub const PROTOS: [&str; 2] = ["udp", "tcp"];

/// One shard's counts for one (server, zone): the series of CoreDNS's `metrics` plugin.
#[derive(Debug)]
#[repr(align(128))]
pub struct ZoneShard {
    /// `coredns_dns_requests_total` by proto, family (IPv4, IPv6) and type.
    pub requests: [[[Counter; QTYPE_SLOTS]; 2]; 2],
    /// `coredns_dns_do_requests_total`.
    pub do_requests: Counter,
    /// `coredns_dns_responses_total` by rcode and plugin.
    pub responses: [[Counter; PLUGINS.len()]; RCODES],
    /// `coredns_dns_request_duration_seconds`.
    pub duration: Histogram<TIME_BUCKETS>,
    /// `coredns_dns_request_size_bytes` by proto.
    pub request_size: [Histogram<{ SIZE_BOUNDS.len() }>; 2],
    /// `coredns_dns_response_size_bytes` by proto.
    pub response_size: [Histogram<{ SIZE_BOUNDS.len() }>; 2],
}

impl Default for ZoneShard {
    fn default() -> Self {
        ZoneShard {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| std::array::from_fn(|_| Counter::default()))),
            do_requests: Counter::default(),
            responses: std::array::from_fn(|_| std::array::from_fn(|_| Counter::default())),
            duration: Histogram::default(),
            request_size: std::array::from_fn(|_| Histogram::default()),
            response_size: std::array::from_fn(|_| Histogram::default()),
        }
    }
}

/// What is known of one answered query, for [`ZoneShard::record`].
#[derive(Clone, Copy, Debug)]
pub struct Answered {
    /// Over a stream (TCP, DoT, DoH: CoreDNS's `tcp`), not UDP.
    pub stream: bool,
    /// From an IPv6 address.
    pub ipv6: bool,
    /// The question's type (0 without a question).
    pub qtype: u16,
    /// The query had DO set.
    pub dnssec_ok: bool,
    /// The reply's rcode.
    pub rcode: u16,
    /// Who wrote the reply.
    pub plugin: Plugin,
    /// Octets of the query.
    pub query_len: usize,
    /// Octets of the reply.
    pub reply_len: usize,
    /// Nanoseconds from the query's arrival to its reply.
    pub nanos: u64,
}

impl ZoneShard {
    /// Counts one answered query (only from the owning shard).
    #[inline]
    pub fn record(&self, a: &Answered) {
        let proto = usize::from(a.stream);
        self.requests[proto][usize::from(a.ipv6)][qtype_slot(a.qtype)].incr();
        if a.dnssec_ok {
            self.do_requests.incr();
        }
        self.responses[rcode_slot(a.rcode)][a.plugin as usize].incr();
        self.duration.observe(time_slot(a.nanos), a.nanos);
        self.request_size[proto].observe(size_slot(a.query_len), a.query_len as u64);
        self.response_size[proto].observe(size_slot(a.reply_len), a.reply_len as u64);
    }
}

/// One shard's counts for one `cache`.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct CacheShard {
    /// Lookups (`coredns_cache_requests_total`).
    pub requests: Counter,
    /// Hits on data (`coredns_cache_hits_total{type="success"}`).
    pub hits_success: Counter,
    /// Hits on NXDOMAIN, NODATA or a cached failure (`type="denial"`).
    pub hits_denial: Counter,
    /// Lookups that went upstream (`coredns_cache_misses_total`).
    pub misses: Counter,
    /// Background refreshes started by `prefetch` (`coredns_cache_prefetch_total`).
    pub prefetch: Counter,
    /// Answers served from expired entries (`coredns_cache_served_stale_total`).
    pub served_stale: Counter,
    /// Entries now held with data (a gauge, set by the shard).
    pub entries_success: Counter,
    /// Entries now held with denials and failures.
    pub entries_denial: Counter,
}

/// One shard's counts for one upstream of a `forward`.
#[derive(Debug)]
#[repr(align(128))]
pub struct UpstreamShard {
    /// `coredns_proxy_request_duration_seconds` by rcode.
    pub duration: [Histogram<TIME_BUCKETS>; RCODES],
    /// Exchanges that failed (timeouts, network errors, unusable replies).
    pub failures: Counter,
    /// Health checks that got no answer (`coredns_proxy_healthcheck_failures_total`).
    pub healthcheck_failures: Counter,
}

impl Default for UpstreamShard {
    fn default() -> Self {
        UpstreamShard {
            duration: std::array::from_fn(|_| Histogram::default()),
            failures: Counter::default(),
            healthcheck_failures: Counter::default(),
        }
    }
}

impl UpstreamShard {
    /// Counts one answered exchange (only from the owning shard).
    pub fn answered(&self, rcode: u16, nanos: u64) {
        self.duration[rcode_slot(rcode)].observe(time_slot(nanos), nanos);
    }
}

/// Per-shard storage with labels: what the registry hands out and the scrape reads.
#[derive(Debug)]
pub struct Sharded<T> {
    /// The labels, rendered (`name="value",...`).
    pub labels: String,
    shards: Box<[T]>,
}

impl<T: Default> Sharded<T> {
    /// Zeroed storage for `shards` shards.
    pub fn new(labels: String, shards: usize) -> Self {
        Sharded {
            labels,
            shards: (0..shards.max(1)).map(|_| T::default()).collect(),
        }
    }
}

impl<T> Sharded<T> {
    /// Shard `id`'s storage.
    #[inline]
    pub fn shard(&self, id: usize) -> &T {
        &self.shards[id.min(self.shards.len() - 1)]
    }

    /// Every shard's storage.
    pub fn shards(&self) -> &[T] {
        &self.shards
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_slots_are_in_order() {
        for (i, p) in PLUGINS.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?}");
        }
    }

    #[test]
    fn time_slots_match_coredns_bounds() {
        assert_eq!(time_slot(0), 0);
        assert_eq!(time_slot(250_000), 0);
        assert_eq!(time_slot(250_001), 1);
        assert_eq!(time_slot(500_000), 1);
        assert_eq!(time_slot(500_001), 2);
        assert_eq!(time_slot(8_192_000_000), 15);
        assert_eq!(time_slot(8_192_000_001), TIME_BUCKETS);
        assert_eq!(time_slot(u64::MAX), TIME_BUCKETS);
        assert!((time_bound(0) - 0.00025).abs() < 1e-12);
        assert!((time_bound(15) - 8.192).abs() < 1e-9);
    }

    #[test]
    fn size_and_type_slots() {
        assert_eq!(size_slot(0), 0);
        assert_eq!(size_slot(1), 1);
        assert_eq!(size_slot(100), 1);
        assert_eq!(size_slot(101), 2);
        assert_eq!(size_slot(400), 4);
        assert_eq!(size_slot(401), 5);
        assert_eq!(size_slot(511), 5);
        for n in 0..70_000 {
            let want = SIZE_BOUNDS
                .iter()
                .position(|&b| n <= b as usize)
                .unwrap_or(SIZE_BOUNDS.len());
            assert_eq!(size_slot(n), want, "{n}");
        }
        assert_eq!(size_slot(512), 6);
        assert_eq!(size_slot(65535), SIZE_BOUNDS.len());
        for (i, (t, _)) in QTYPES.iter().enumerate().take(OTHER_QTYPE) {
            assert_eq!(qtype_slot(*t), i);
        }
        assert_eq!(qtype_slot(99), OTHER_QTYPE);
        assert_eq!(rcode_label(3), "NXDOMAIN");
        assert_eq!(rcode_label(12), "RCODE12");
        assert_eq!(rcode_label(16), "BADSIG");
    }
}
