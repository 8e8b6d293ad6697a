//! The typed configuration that the rest of ringdns reads.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use domain::base::Name;

use super::error::Pos;

/// The scheme of a server block key: which protocols the block is served over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain DNS over UDP and TCP (`dns://`, the default).
    Dns,
    /// DNS over TLS (`tls://`, RFC 7858).
    Tls,
    /// DNS over HTTPS (`https://`, RFC 8484).
    Https,
}

impl Scheme {
    /// The scheme as written in a key.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dns => "dns",
            Scheme::Tls => "tls",
            Scheme::Https => "https",
        }
    }

    /// The transports of a block with this scheme: a listening socket for each.
    pub fn transports(self) -> &'static [Transport] {
        match self {
            Scheme::Dns => &[Transport::Udp, Transport::Tcp],
            Scheme::Tls => &[Transport::Tls],
            Scheme::Https => &[Transport::Https],
        }
    }
}

/// How a query reaches us and its reply goes back: the protocol of one listening socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// DNS over UDP.
    Udp,
    /// DNS over TCP (RFC 7766).
    Tcp,
    /// DNS over TLS (RFC 7858).
    Tls,
    /// DNS over HTTPS (RFC 8484).
    Https,
}

impl Transport {
    /// The key scheme that serves it.
    pub fn scheme(self) -> Scheme {
        match self {
            Transport::Udp | Transport::Tcp => Scheme::Dns,
            Transport::Tls => Scheme::Tls,
            Transport::Https => Scheme::Https,
        }
    }

    /// A byte stream (messages up to 65535 octets, RFC 1035 §4.2.2), not datagrams.
    pub fn is_stream(self) -> bool {
        self != Transport::Udp
    }

    /// DoT or DoH: replies are padded when the query asks (RFC 8467).
    pub fn is_encrypted(self) -> bool {
        matches!(self, Transport::Tls | Transport::Https)
    }

    /// Its name in query logs.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Https => "https",
        }
    }
}

/// One server block key: `[scheme://]zone[:port]`.
#[derive(Clone, Debug)]
pub struct Key {
    /// The scheme.
    pub scheme: Scheme,
    /// The zone, lowercase and absolute.
    pub zone: Name<Bytes>,
    /// The port.
    pub port: u16,
    /// Where the key was written.
    pub pos: Pos,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let zone = crate::zone::name::display(crate::zone::name::NameKey::of(&self.zone).as_slice());
        write!(f, "{}://{}:{}", self.scheme.name(), zone, self.port)
    }
}

/// A whole Corefile.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Corefile path.
    pub path: PathBuf,
    /// Server blocks in file order.
    pub blocks: Vec<ServerBlock>,
    /// Periodic re-reading of the Corefile (`reload`), if enabled in any block.
    pub reload: Option<Reload>,
    /// `health` endpoints of every block (one per address).
    pub health: Vec<Health>,
    /// `ready` endpoints of every block (one per address).
    pub ready: Vec<SocketAddr>,
    /// `prometheus` endpoints of every block (one per address).
    pub metrics: Vec<SocketAddr>,
    /// How often `auto` folders are read again (the shortest `auto` reload).
    pub rescan: Option<Duration>,
    /// `cookies`: the server's DNS Cookie secret (a ringdns directive).
    pub cookies: Option<super::cookies::CookiesConfig>,
}

impl Config {
    /// How often the Corefile (and the folders of `auto`) are checked for changes, with
    /// the jitter: `reload`'s, or `auto`'s reload when shorter (without jitter).
    pub fn check_every(&self) -> Option<(Duration, Duration)> {
        let reload = self.reload.map(|r| (r.interval, r.jitter));
        match (reload, self.rescan) {
            (Some(r), Some(a)) if a < r.0 => Some((a, Duration::ZERO)),
            (Some(r), _) => Some(r),
            (None, Some(a)) => Some((a, Duration::ZERO)),
            (None, None) => None,
        }
    }
}

/// `health [ADDRESS] { lameduck D }`: `GET /health` answers `200 OK` while the process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Where it listens (`:8080` by default: every IPv4 address).
    pub addr: SocketAddr,
    /// How long a shutdown keeps answering queries after `ready` starts failing.
    pub lameduck: Duration,
}

/// The default `health` address, as CoreDNS's (`:8080`).
pub const HEALTH_PORT: u16 = 8080;
/// The default `ready` address, as CoreDNS's (`:8181`).
pub const READY_PORT: u16 = 8181;
/// The default `prometheus` address, as CoreDNS's (`localhost:9153`).
pub const METRICS_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9153);

/// `reload [INTERVAL [JITTER]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reload {
    /// How often the Corefile is checked for changes.
    pub interval: Duration,
    /// Random extra delay up to this much, so a fleet does not reload in step.
    pub jitter: Duration,
}

/// One server block.
#[derive(Clone, Debug)]
pub struct ServerBlock {
    /// Where the block starts (its first key).
    pub pos: Pos,
    /// The keys.
    pub keys: Vec<Key>,
    /// Addresses to listen on; empty means all (`0.0.0.0` and `::`).
    pub bind: Vec<IpAddr>,
    /// The `hosts` directive.
    pub hosts: Option<HostsConfig>,
    /// The `file` directives.
    pub files: Vec<FileConfig>,
    /// `log` rules.
    pub log: Vec<LogRule>,
    /// `errors`.
    pub errors: bool,
    /// `tls`: the certificate of `tls://` and `https://` listeners.
    pub tls: Option<TlsConfig>,
    /// `forward`.
    pub forward: Option<ForwardConfig>,
    /// `cache`.
    pub cache: Option<CacheConfig>,
    /// `prometheus [ADDRESS]`: where this block's metrics are scraped.
    pub prometheus: Option<SocketAddr>,
    /// `chaos [VERSION] [AUTHORS...]`.
    pub chaos: Option<ChaosConfig>,
    /// `whoami`: names no other plugin serves get the client's address and port.
    pub whoami: bool,
    /// `any`: ANY queries get the RFC 8482 HINFO.
    pub any: bool,
    /// `minimal`: positive answers go without authority and additional records.
    pub minimal: bool,
    /// `header { query|response set|clear FLAGS... }`, folded: the last rule for a flag wins.
    pub header: Option<HeaderRules>,
    /// `dns64 [PREFIX] { prefix PREFIX; translate_all; allow_ipv4 }`.
    pub dns64: Option<Dns64Config>,
    /// `cancel [TIMEOUT]`: how long a forwarded query may take.
    pub cancel: Option<Duration>,
    /// `local { localhost_prefix on|off }`: `Some(prefix)` when on.
    pub local: Option<bool>,
    /// `nsid [DATA]`: the NSID of the block's replies.
    pub nsid: Option<Vec<u8>>,
    /// `template` directives, in the order written.
    pub templates: Vec<TemplateConfig>,
    /// `acl` rules, in the order written.
    pub acl: Vec<AclRule>,
    /// `transfer` directives: who may transfer the block's zones out.
    pub transfers: Vec<TransferConfig>,
    /// `secondary` directives: zones transferred from primaries.
    pub secondaries: Vec<SecondaryConfig>,
    /// `tsig`: keys, and what must come signed.
    pub tsig: Option<super::tsig::TsigConfig>,
    /// `dnssec`: online signing of the block's answers.
    pub dnssec: Option<super::dnssec::DnssecConfig>,
    /// `sign` directives: zone files signed into files that `file` serves.
    pub signs: Vec<super::sign::SignConfig>,
    /// `timeouts { read D; write D; idle D; maxtcpqueries N }`.
    pub timeouts: Option<Timeouts>,
    /// `rewrite` rules, in the order written (one per directive).
    pub rewrites: Vec<super::rewrite::RewriteRule>,
    /// `bufsize [SIZE]`: the largest EDNS UDP payload a requester's query is taken to offer.
    pub bufsize: Option<u16>,
    /// `loadbalance [round_robin | weighted FILE] { reload D; prefer CIDR... }`.
    pub loadbalance: Option<LoadBalanceConfig>,
    /// `loop`: the probe that detects a forwarding loop at start-up.
    pub loop_probe: Option<std::sync::Arc<LoopProbe>>,
    /// `rrl [ZONES] { ... }`: response rate limiting of UDP replies.
    pub rrl: Option<super::rrl::RrlConfig>,
    /// `shed`: the block's UDP listeners drop queries that waited too long and shrink
    /// their receive buffers while they cannot keep up (`net::shed`).
    pub shed: bool,
    /// `update [ZONES] { key NAME [NAMES...]; allow_types TYPE... }`: RFC 2136 updates of
    /// the block's zone files.
    pub update: Option<super::update::UpdateConfig>,
    /// `acme_dns ZONE { listen ADDR; ... }`: the acme-dns HTTP API, its values served in
    /// the zone file ZONE of the block.
    pub acme_dns: Vec<super::acme_dns::AcmeDnsConfig>,
}

/// `loop`: a query for a name nobody else knows (`<random>.<random>.<zone>` HINFO), sent to
/// the block's own address after start-up and after each reload. If it comes back to the
/// block, ringdns forwards to itself: CoreDNS's plugin stops the server then, and so does
/// ringdns. The shards count sightings here; the control thread sends the probe.
#[derive(Debug)]
pub struct LoopProbe {
    /// The probe's name, lowercase wire.
    pub name: Box<[u8]>,
    seen: std::sync::atomic::AtomicU32,
    off: std::sync::atomic::AtomicBool,
    sent: std::sync::atomic::AtomicBool,
}

impl LoopProbe {
    /// A probe for a random name below `zone`.
    pub fn new(zone: &Name<Bytes>) -> LoopProbe {
        let mut r = [0u8; 16];
        // Without entropy the clock still makes the name one nobody else asks for.
        if getrandom::fill(&mut r).is_err() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos();
            r = t.to_le_bytes();
        }
        let mut name = Vec::new();
        for half in r.chunks(8) {
            // Decimal labels, as CoreDNS's.
            let label = (u64::from_le_bytes(half.try_into().unwrap_or([0; 8])) >> 2).to_string();
            name.push(label.len() as u8);
            name.extend_from_slice(label.as_bytes());
        }
        name.extend_from_slice(crate::zone::name::NameKey::of(zone).as_slice());
        LoopProbe {
            name: name.into(),
            seen: Default::default(),
            off: Default::default(),
            sent: Default::default(),
        }
    }

    /// Called by the shards for each query routed to the block: counts the probe's name.
    #[inline]
    pub fn observe(&self, key: &[u8], qtype: domain::base::iana::Rtype) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.off.load(Relaxed) && qtype == domain::base::iana::Rtype::HINFO && *key == *self.name {
            self.seen.fetch_add(1, Relaxed);
        }
    }

    /// How often the probe's name arrived.
    pub fn seen(&self) -> u32 {
        self.seen.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Forgets the sightings (a probe that got no answer is sent again).
    pub fn reset(&self) {
        self.seen.store(0, std::sync::atomic::Ordering::Relaxed);
    }

    /// True the first time only: the probe is to be sent once per configuration.
    pub fn start(&self) -> bool {
        !self.sent.swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops counting: the check is done.
    pub fn disable(&self) {
        self.off.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// `template CLASS TYPE [ZONES...] { match REGEX...; answer|additional|authority RR;
/// rcode CODE; ederror CODE [REASON]; fallthrough [ZONES...] }`.
#[derive(Clone, Debug)]
pub struct TemplateConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The class it answers (`None`: ANY).
    pub class: Option<domain::base::iana::Class>,
    /// The type it answers (`None`: ANY).
    pub qtype: Option<domain::base::iana::Rtype>,
    /// Its zones (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// `match` regexes against the lowercase query name with its final dot (none: all).
    pub matches: Vec<regex::Regex>,
    /// `answer` records.
    pub answer: Vec<super::template::RecordTemplate>,
    /// `additional` records.
    pub additional: Vec<super::template::RecordTemplate>,
    /// `authority` records.
    pub authority: Vec<super::template::RecordTemplate>,
    /// `rcode` (NOERROR by default).
    pub rcode: domain::base::iana::Rcode,
    /// `ederror CODE [REASON]`.
    pub ederror: Option<(u16, String)>,
    /// `fallthrough [ZONES...]`: names not matched go on (`Some(empty)`: every name).
    pub fallthrough: Option<Vec<Name<Bytes>>>,
}

/// `transfer [ZONES...] { to ADDRESS|CIDR|*... }`: the block's zones (from `file`, `auto` or
/// `secondary`) transferred out by AXFR over TCP and TLS to the listed clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// Its zones (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// Who may ask.
    pub to: Vec<TransferPeer>,
    /// `source ADDRESS`: the local address NOTIFYs leave from.
    pub source: Option<IpAddr>,
}

/// One `to` of `transfer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferPeer {
    /// `*`: everyone.
    Any,
    /// An address (with the port NOTIFY would go to, 53 unless given).
    Host(SocketAddr),
    /// A prefix (a ringdns extension: CoreDNS takes addresses only).
    Net(IpAddr, u8),
}

impl TransferPeer {
    /// Whether a client at `ip` may transfer.
    pub fn admits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match *self {
            TransferPeer::Any => true,
            TransferPeer::Host(a) => a.ip().to_canonical() == ip,
            TransferPeer::Net(net, len) => in_prefix(ip, net, len),
        }
    }
}

/// `secondary [ZONES...] { transfer from ADDR[:PORT]...; directory DIR }`: zones pulled from
/// primaries by AXFR and kept on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// Its zones (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// The primaries, tried in order (port 53, or 853 for `tls://`, unless given).
    pub from: Vec<Primary>,
    /// For `tls://` primaries (XoT, RFC 9103): `tls_servername NAME` (the name their
    /// certificate must have) and `tls [CERT KEY] [CA]`, as `forward` takes them.
    pub tls: Option<SecondaryTls>,
    /// `fallthrough [ZONES...]`: NXDOMAIN goes to the next plugin (`Some(empty)`: always).
    pub fallthrough: Option<Vec<Name<Bytes>>>,
    /// `directory DIR` (a ringdns extension): where the transferred zones are kept, one
    /// zone file each, so a restart serves the last copy at once.
    pub directory: PathBuf,
    /// `catalog [MEMBER-ZONES...]`: the zones are catalogs (RFC 9432) whose members become
    /// secondary zones of the same primaries; `Some(empty)` accepts every member, else only
    /// those at or below one of the names.
    pub catalog: Option<Vec<Name<Bytes>>>,
}

/// A primary of a `secondary` zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Primary {
    /// Its address.
    pub addr: SocketAddr,
    /// `tls://`: transfers go over TLS (XoT).
    pub tls: bool,
}

/// How `tls://` primaries are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryTls {
    /// The name their certificate must have.
    pub servername: String,
    /// The CA file (default: the system's roots).
    pub ca: Option<PathBuf>,
    /// A client certificate and key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// `loadbalance`: how the addresses of a block's replies are ordered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadBalanceConfig {
    /// `weighted WEIGHTFILE` and how often the file is checked (0: never); `None`:
    /// `round_robin`.
    pub weighted: Option<(PathBuf, Duration)>,
    /// `prefer CIDR...`: prefixes whose addresses come first, in this order.
    pub prefer: Vec<(IpAddr, u8)>,
}

/// `timeouts`: the limits of the TCP, DoT and DoH connections of a block's listeners
/// (`None`: ringdns's default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// `read`: time for a whole message once its first byte arrived (DoH over HTTP/1.1: for
    /// the request's headers).
    pub read: Option<Duration>,
    /// `write`: time to write a batch of replies (TCP and DoT).
    pub write: Option<Duration>,
    /// `idle`: time allowed between messages (DoH: between requests).
    pub idle: Option<Duration>,
    /// `maxtcpqueries`: queries answered before a TCP or DoT connection is closed
    /// (`Some(None)`: `-1`, no limit).
    pub max_tcp_queries: Option<Option<u32>>,
}

impl Timeouts {
    /// `self` with every setting of `later` that is given over it (CoreDNS: the last block
    /// of a listener that sets one wins).
    pub fn then(self, later: &Timeouts) -> Timeouts {
        Timeouts {
            read: later.read.or(self.read),
            write: later.write.or(self.write),
            idle: later.idle.or(self.idle),
            max_tcp_queries: later.max_tcp_queries.or(self.max_tcp_queries),
        }
    }
}

/// `header`: what becomes of the AA, RA and RD flags (`Some(true)` set, `Some(false)`
/// cleared, `None` untouched) of queries before the block handles them and of its replies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderRules {
    /// Query flags: [aa, ra, rd].
    pub query: [Option<bool>; 3],
    /// Response flags: [aa, ra, rd].
    pub response: [Option<bool>; 3],
}

/// `dns64`: how AAAA answers are synthesised from A (RFC 6147).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dns64Config {
    /// The prefix and its length (32, 40, 48, 56, 64 or 96, RFC 6052 §2.2).
    pub prefix: (std::net::Ipv6Addr, u8),
    /// Translate even when the AAAA answer has AAAA records.
    pub translate_all: bool,
    /// Translate for IPv4 clients too.
    pub allow_ipv4: bool,
}

/// One `acl [ZONES...] { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclRule {
    /// The zones it applies to (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// Its policies, the first that matches decides.
    pub policies: Vec<AclPolicy>,
}

/// `ACTION [type QTYPE...] [net SOURCE...]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclPolicy {
    /// What to do with a query that matches.
    pub action: AclAction,
    /// Query types matched (empty: all).
    pub types: Vec<domain::base::iana::Rtype>,
    /// Source prefixes matched (empty: all).
    pub nets: Vec<(IpAddr, u8)>,
}

impl AclPolicy {
    /// Whether a query of `qtype` from `client` matches (`None`: the client is unknown and
    /// matches only a policy without `net`).
    pub fn matches(&self, qtype: domain::base::iana::Rtype, client: Option<IpAddr>) -> bool {
        let type_ok = self.types.is_empty() || self.types.contains(&qtype);
        let net_ok = self.nets.is_empty()
            || client.is_some_and(|ip| {
                self.nets
                    .iter()
                    .any(|&(net, len)| in_prefix(ip.to_canonical(), net, len))
            });
        type_ok && net_ok
    }
}

/// Whether `ip` lies in `net/len`.
pub fn in_prefix(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(len.min(32))).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(len.min(128))).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// What `acl` does with a matching query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AclAction {
    /// Answer it as usual (and look at no later rule).
    Allow,
    /// REFUSED, with Extended DNS Error 15 (Blocked).
    Block,
    /// NOERROR without records, with Extended DNS Error 17 (Filtered).
    Filter,
    /// No reply at all.
    Drop,
}

/// `chaos [VERSION] [AUTHORS...]`: what `version.bind` and `authors.bind` say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosConfig {
    /// For `version.bind` and `version.server`.
    pub version: String,
    /// For `authors.bind`, one TXT record each.
    pub authors: Vec<String>,
}

/// How a `forward` reaches one upstream.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UpstreamAddr {
    /// Plain DNS (UDP, TCP on truncation or `force_tcp`).
    Dns(std::net::SocketAddr),
    /// DNS over TLS.
    Tls(std::net::SocketAddr),
    /// DNS over HTTPS: the connect address, the host for SNI and `:authority`, the path.
    Https {
        /// Where to connect.
        addr: std::net::SocketAddr,
        /// Host name (or IP literal) of the URL.
        host: String,
        /// Path of the URL.
        path: String,
    },
}

/// Upstream selection order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Policy {
    /// Random order each query (CoreDNS' default).
    #[default]
    Random,
    /// Rotating start.
    RoundRobin,
    /// In the order written.
    Sequential,
}

/// `forward FROM TO... { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct ForwardConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zone forwarded.
    pub from: Name<Bytes>,
    /// Upstreams in order.
    pub to: Vec<UpstreamAddr>,
    /// Names under FROM not forwarded.
    pub except: Vec<Name<Bytes>>,
    /// Plain-DNS upstreams over TCP always.
    pub force_tcp: bool,
    /// Plain-DNS upstreams over UDP even when the client came over TCP.
    pub prefer_udp: bool,
    /// Idle time after which a pooled connection is closed.
    pub expire: Duration,
    /// Consecutive failures after which an upstream is down until a health check passes.
    pub max_fails: u32,
    /// Client certificate and key, and the CA to verify upstreams with (None: system roots).
    pub tls_client: Option<(PathBuf, PathBuf)>,
    /// CA file for upstream certificates.
    pub tls_ca: Option<PathBuf>,
    /// Name to verify the upstream certificate against (and SNI).
    pub tls_servername: Option<String>,
    /// Selection policy.
    pub policy: Policy,
    /// Health-check interval of down upstreams (0: off).
    pub health_check: Duration,
    /// Health checks without RD.
    pub health_no_rec: bool,
    /// Name asked by health checks.
    pub health_domain: Name<Bytes>,
    /// Queries in flight per shard beyond which new ones are refused (0: unlimited).
    pub max_concurrent: usize,
}

/// `cache` capacities and TTL bounds for one kind of answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheBucket {
    /// Entries.
    pub capacity: usize,
    /// Longest TTL kept.
    pub max_ttl: Duration,
    /// Shortest TTL kept.
    pub min_ttl: Duration,
}

/// `cache [TTL] [ZONES...] { ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheConfig {
    /// Zones cached (default: the block's).
    pub zones: Vec<Name<Bytes>>,
    /// Positive answers.
    pub success: CacheBucket,
    /// NXDOMAIN and NODATA (RFC 2308).
    pub denial: CacheBucket,
    /// `prefetch AMOUNT DURATION PERCENTAGE`: refresh entries asked AMOUNT times within
    /// DURATION once PERCENTAGE of their TTL is left.
    pub prefetch: Option<(u32, Duration, u8)>,
    /// How long expired entries may still be served (RFC 8767).
    pub serve_stale: Option<Duration>,
    /// How long an upstream failure is remembered (RFC 9520).
    pub servfail: Duration,
}

/// Addresses a block without `bind` listens on: every IPv4 and every IPv6 address.
pub const ANY_ADDRS: [IpAddr; 2] = [
    IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
    IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
];

impl ServerBlock {
    /// Where the log of applied updates of the block's zone file `origin` is kept, and the
    /// directive that keeps it: `update` when it covers the zone, or `acme_dns` for it.
    pub fn update_log_dir(&self, origin: &Name<Bytes>) -> Option<(&std::path::Path, &Pos)> {
        if let Some(u) = self.update.as_ref().filter(|u| u.zones.contains(origin)) {
            return Some((&u.directory, &u.pos));
        }
        let a = self.acme_dns.iter().find(|a| a.zone == *origin)?;
        Some((&a.directory, &a.pos))
    }

    /// The addresses the block listens on: its `bind` list, or every address.
    pub fn addrs(&self) -> &[IpAddr] {
        if self.bind.is_empty() { &ANY_ADDRS } else { &self.bind }
    }

    /// The block's name for messages: its keys as written.
    pub fn label(&self) -> String {
        self.keys.iter().map(|k| k.to_string()).collect::<Vec<_>>().join(" ")
    }

    /// The block's zones.
    pub fn zones(&self) -> Vec<Name<Bytes>> {
        let mut z: Vec<_> = self.keys.iter().map(|k| k.zone.clone()).collect();
        z.dedup();
        z
    }
}

/// `hosts [FILE [ZONES...]] { ... }`.
#[derive(Clone, Debug)]
pub struct HostsConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The hosts file (CoreDNS reads `/etc/hosts` when none is given).
    pub file: PathBuf,
    /// Whether the file was named explicitly (a missing default file is only a warning).
    pub file_explicit: bool,
    /// Zones the plugin answers for (default: the block's zones).
    pub zones: Vec<Name<Bytes>>,
    /// Inline entries: the line's tokens, with the position of the line.
    pub inline: Vec<(Pos, Vec<String>)>,
    /// TTL of synthesised records.
    pub ttl: u32,
    /// How often the file is checked for changes (zero: never).
    pub reload: Duration,
    /// No PTR synthesis.
    pub no_reverse: bool,
    /// `fallthrough [ZONES...]`: `None` off, `Some(empty)` every zone.
    pub fallthrough: Option<Vec<Name<Bytes>>>,
}

/// `file DBFILE [ZONES...] { reload D }`.
#[derive(Clone, Debug)]
pub struct FileConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zone file.
    pub path: PathBuf,
    /// The zones loaded from it (default: the block's zones).
    pub zones: Vec<Name<Bytes>>,
    /// How often the file is checked for a change with a larger serial (zero: never).
    pub reload: Duration,
}

/// Which responses a `log` rule records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct LogClasses {
    /// NOERROR with data.
    pub success: bool,
    /// NXDOMAIN and NODATA.
    pub denial: bool,
    /// Every other rcode.
    pub error: bool,
}

impl LogClasses {
    /// Every class.
    pub const ALL: LogClasses = LogClasses {
        success: true,
        denial: true,
        error: true,
    };
}

/// `log [NAMES...] [FORMAT] { class ... }`.
#[derive(Clone, Debug)]
pub struct LogRule {
    /// Names under which queries are logged (root = all).
    pub names: Vec<Name<Bytes>>,
    /// The CoreDNS-style format with `{placeholders}`.
    pub format: String,
    /// Which responses are logged.
    pub classes: LogClasses,
}

/// `tls` in one of its three forms.
#[derive(Clone, Debug)]
pub enum TlsConfig {
    /// `tls CERT KEY [CA]`.
    Files {
        /// Certificate chain (PEM).
        cert: PathBuf,
        /// Private key (PEM).
        key: PathBuf,
        /// CA for client certificates.
        ca: Option<PathBuf>,
    },
    /// `tls acme { ... }` or `tls { acme ... }`.
    Acme(AcmeConfig),
}

/// Key algorithms for ACME certificates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum KeyType {
    /// ECDSA P-256 (the default).
    #[default]
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA 2048.
    Rsa2048,
}

/// When to renew.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RenewPolicy {
    /// ARI when offered, else the ratio.
    Ari,
    /// Renew when this fraction of the lifetime remains.
    Ratio(f64),
}

/// Options of `tls acme`.
#[derive(Clone, Debug, PartialEq)]
pub struct AcmeConfig {
    /// Names to certify (may include `*.zone`).
    pub domains: Vec<String>,
    /// Contact address.
    pub email: Option<String>,
    /// ACME directory URL.
    pub ca: String,
    /// PEM of the CA that signs the ACME server's HTTPS certificate.
    pub cacert: Option<PathBuf>,
    /// Certificate storage folder.
    pub certpath: Option<PathBuf>,
    /// Port of the challenge responder when no `dns://` block serves the names.
    pub port: u16,
    /// Minutes between storage checks.
    pub checkinterval: Duration,
    /// Certificate key algorithm.
    pub key_type: KeyType,
    /// External account binding: key id and base64url HMAC key.
    pub eab: Option<(String, String)>,
    /// Renewal policy.
    pub renew: RenewPolicy,
    /// `dns`: where the DNS-01 values are published when ringdns does not serve the names
    /// (`None`: by its own shards).
    pub dns: Option<Box<DnsPublisher>>,
}

/// `tls acme { dns ... }`: a remote server that publishes the challenge values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DnsPublisher {
    /// `dns rfc2136 SERVER[:PORT] { key NAME ALGORITHM SECRET; check ADDR[:PORT]... }`:
    /// RFC 2136 updates signed with the key; `check` names the authoritative servers to
    /// ask before the CA is told (default: the zone's NS addresses, port 53).
    Rfc2136 {
        /// The primary that takes the updates.
        server: SocketAddr,
        /// The key that signs them.
        key: super::tsig::TsigKey,
        /// The servers that must answer the value first.
        check: Vec<SocketAddr>,
    },
    /// `dns acme_dns URL { username U; password P; subdomain S; fulldomain NAME; check
    /// ADDR[:PORT]... }`: an acme-dns server (ringdns's `acme_dns` included). `check`
    /// defaults to the URL's host on port 53 (acme-dns answers DNS where it answers HTTP);
    /// the value is asked there at `fulldomain`, or at the CNAME target of the challenge name.
    AcmeDns {
        /// The API's base URL.
        url: String,
        /// `X-Api-User`.
        username: String,
        /// `X-Api-Key`.
        password: String,
        /// The registration's subdomain.
        subdomain: String,
        /// The registration's full name, if given.
        fulldomain: Option<Name<Bytes>>,
        /// The servers that must answer the value first.
        check: Vec<SocketAddr>,
    },
}
