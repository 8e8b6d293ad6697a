//! The server pipeline snapshot: per listener, the server blocks it routes to, and per block
//! its handlers in CoreDNS plugin order. Built whole on the control thread, read by shards.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{LogRule, Transport};
use crate::meter::series::{Sharded, ZoneShard};
use crate::zone::hosts::Hosts;
use crate::zone::name::is_in_zone;
use crate::zone::store::Zone;

/// Identifies a listening socket across reloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenerKey {
    /// The socket's protocol.
    pub transport: Transport,
    /// Address and port.
    pub addr: SocketAddr,
}

impl std::fmt::Display for ListenerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.transport.scheme().name(), self.addr)
    }
}

/// Everything the shards read, replaced whole on every change.
#[derive(Default)]
pub struct Snapshot {
    /// Increases with every published snapshot.
    pub generation: u64,
    /// Routing per listener, sorted by key.
    pub listeners: Vec<(ListenerKey, Route)>,
}

impl Snapshot {
    /// The route of a listener.
    pub fn route(&self, key: &ListenerKey) -> Option<&Route> {
        self.listeners
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| &self.listeners[i].1)
    }
}

/// Per-shard counts of one (server, zone): `coredns_dns_*` series.
pub type ZoneSeries = Sharded<ZoneShard>;

/// A zone (lowercase wire) and the block serving it on a listener.
pub struct RouteEntry {
    /// The zone, lowercase wire.
    pub zone: Box<[u8]>,
    /// The block.
    pub block: Arc<Block>,
    /// Its counts, when the block has `prometheus`.
    pub series: Option<Arc<ZoneSeries>>,
}

/// The server blocks behind one listener.
#[derive(Default)]
pub struct Route {
    /// Entries longest zone first, so the first match is the longest suffix.
    zones: Vec<RouteEntry>,
    /// Some block behind this listener has `log` rules.
    logs: bool,
    /// Some block behind this listener has `chaos` (class CH is routed, not refused).
    chaos: bool,
    /// Some block behind this listener has a `rewrite class` rule (other classes are routed).
    reclass: bool,
    /// The `timeouts` of its blocks, the later block's winning.
    timeouts: crate::config::Timeouts,
    /// Counts of queries no block took (CoreDNS's zone `dropped`), when metrics are on.
    dropped: Option<Arc<ZoneSeries>>,
    /// TLS configuration of a `tls://` listener.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The configured cookie secrets (`cookies`); the process's random one without.
    cookies: Option<Arc<super::cookie::Secrets>>,
    /// Some block behind this listener has `shed`.
    sheds: bool,
}

impl Route {
    /// A route over `entries`, with the listener's TLS configuration and the counts of
    /// queries no block takes.
    pub fn new(
        mut zones: Vec<RouteEntry>,
        tls: Option<Arc<rustls::ServerConfig>>,
        dropped: Option<Arc<ZoneSeries>>,
    ) -> Self {
        zones.sort_by(|a, b| b.zone.len().cmp(&a.zone.len()).then_with(|| a.zone.cmp(&b.zone)));
        let logs = zones.iter().any(|e| !e.block.log.is_empty());
        let chaos = zones.iter().any(|e| e.block.plugins.chaos.is_some());
        let sheds = zones.iter().any(|e| e.block.plugins.shed);
        let reclass = zones.iter().any(|e| {
            e.block
                .plugins
                .rewrites
                .iter()
                .any(|r| matches!(r.kind, crate::config::rewrite::RuleKind::Class { .. }))
        });
        let mut blocks: Vec<&Block> = zones.iter().map(|e| &*e.block).collect();
        blocks.sort_by_key(|b| b.index);
        let timeouts = blocks
            .iter()
            .filter_map(|b| b.plugins.timeouts.as_ref())
            .fold(crate::config::Timeouts::default(), |t, later| t.then(later));
        Route {
            zones,
            logs,
            chaos,
            reclass,
            timeouts,
            dropped,
            tls,
            cookies: None,
            sheds,
        }
    }

    /// Whether a block of this listener has `shed` (CoreDNS: any block with it installs
    /// it on the shared socket).
    pub fn sheds(&self) -> bool {
        self.sheds
    }

    /// The route with the configured cookie secrets.
    pub fn with_cookies(mut self, secrets: Option<Arc<super::cookie::Secrets>>) -> Self {
        self.cookies = secrets;
        self
    }

    /// The secrets its cookies are made and checked with.
    pub fn cookie_secrets(&self) -> &super::cookie::Secrets {
        match self.cookies.as_deref() {
            Some(s) => s,
            None => super::cookie::Secrets::process(),
        }
    }

    /// The TLS configuration of a `tls://` listener.
    pub fn tls(&self) -> Option<&Arc<rustls::ServerConfig>> {
        self.tls.as_ref()
    }

    /// Whether any block of this listener logs queries (checked before any log work).
    pub fn logs(&self) -> bool {
        self.logs
    }

    /// Whether a block of this listener answers class CH.
    pub fn chaos(&self) -> bool {
        self.chaos
    }

    /// The stream connection limits its blocks set (`timeouts`).
    pub fn timeouts(&self) -> &crate::config::Timeouts {
        &self.timeouts
    }

    /// Whether a block of this listener rewrites classes (then any class reaches the blocks).
    pub fn reclass(&self) -> bool {
        self.reclass
    }

    /// Whether queries on this listener are counted (then each is timed).
    pub fn metered(&self) -> bool {
        self.dropped.is_some()
    }

    /// Entry `index` (as [`Route::entry_for`] gave it).
    pub fn entry(&self, index: usize) -> Option<&RouteEntry> {
        self.zones.get(index)
    }

    /// The counts of queries no block took.
    pub fn dropped(&self) -> Option<&ZoneSeries> {
        self.dropped.as_deref()
    }

    /// The index of the entry with the longest zone containing `key`, and its block.
    pub fn entry_for(&self, key: &[u8]) -> Option<(usize, &Block)> {
        self.zones
            .iter()
            .position(|e| is_in_zone(key, &e.zone))
            .map(|i| (i, &*self.zones[i].block))
    }
}

/// One server block at run time.
pub struct Block {
    /// Index of the block in the Corefile.
    pub index: usize,
    /// The block's keys, for logs.
    pub label: String,
    /// Handlers in CoreDNS plugin order (hosts before file).
    pub handlers: Vec<Handler>,
    /// Query log rules.
    pub log: Vec<LogRule>,
    /// `errors` is on.
    pub errors: bool,
    /// The plugins that answer besides the data sources, or reshape their answers.
    pub plugins: BlockPlugins,
}

/// A block's plugins that are not data sources.
#[derive(Default)]
pub struct BlockPlugins {
    /// `chaos`: the TXT rdata of its names.
    pub chaos: Option<Chaos>,
    /// `whoami` answers names no data source serves.
    pub whoami: bool,
    /// `any` answers ANY with RFC 8482's HINFO.
    pub any: bool,
    /// `minimal` drops authority and additional records from positive answers.
    pub minimal: bool,
    /// `acl` rules, in order.
    pub acl: Vec<Acl>,
    /// `dns64`: AAAA synthesised from A (RFC 6147).
    pub dns64: Option<crate::config::Dns64Config>,
    /// `local`: `Some(localhost_prefix)` when on.
    pub local: Option<bool>,
    /// `header`: flags set or cleared in queries and replies.
    pub header: Option<crate::config::HeaderRules>,
    /// `nsid`: the NSID of its replies (RFC 5001).
    pub nsid: Option<Box<[u8]>>,
    /// `template`s, in order.
    pub templates: Vec<super::template::Template>,
    /// `bufsize`: the largest UDP payload a requester is taken to offer.
    pub bufsize: Option<u16>,
    /// `transfer`: zones (lowercase wire) and who may transfer them out.
    pub transfers: Vec<(Box<[u8]>, Vec<crate::config::TransferPeer>)>,
    /// The journals of those zones (their recent differences, for IXFR out).
    pub journals: Vec<(Box<[u8]>, Arc<crate::zone::diff::Journal>)>,
    /// `secondary` zones (lowercase wire) and the addresses of their primaries: a NOTIFY for
    /// one of them is taken from those only (RFC 1996 §4.7).
    pub primaries: Vec<(Box<[u8]>, Vec<std::net::IpAddr>)>,
    /// `tsig`: the keys its signed requests are checked against, and what must be signed.
    pub tsig: Option<Arc<super::tsig::Policy>>,
    /// `update`: the zones (lowercase wire) it takes RFC 2136 updates for, and the
    /// server's TSIG keys they are checked against.
    pub update: Option<Arc<UpdateZones>>,
    /// `dnssec`: its answers signed online.
    pub dnssec: Option<Arc<crate::dnssec::online::Signer>>,
    /// `timeouts` of its listeners' connections.
    pub timeouts: Option<crate::config::Timeouts>,
    /// `rewrite` rules, in order.
    pub rewrites: Vec<crate::config::rewrite::RewriteRule>,
    /// `loadbalance`: how addresses and MX records are ordered.
    pub loadbalance: Option<super::balance::Balance>,
    /// `loop`'s probe, which counts the queries for its name.
    pub loop_probe: Option<Arc<crate::config::LoopProbe>>,
    /// `shed`: its UDP listeners drop work that waited too long (`net::shed`).
    pub shed: bool,
    /// `rrl`: what the block's UDP replies are limited to.
    pub rrl: Option<Arc<super::rrl::Limits>>,
}

/// One `acl` rule at run time.
pub struct Acl {
    /// Its zones, lowercase wire.
    pub zones: Vec<Box<[u8]>>,
    /// Its policies, in order.
    pub policies: Vec<crate::config::AclPolicy>,
}

impl BlockPlugins {
    /// The journal of the zone at `apex`, if it keeps one.
    pub fn journal(&self, apex: &[u8]) -> Option<&crate::zone::diff::Journal> {
        self.journals.iter().find(|(a, _)| **a == *apex).map(|(_, j)| &**j)
    }

    /// What `acl` does with a query for `key` of `qtype` from `client`: the action of the
    /// first policy that matches in the first rule (in order) whose zones hold the name and
    /// that has one; `None` is allow.
    #[inline]
    pub fn acl_action(
        &self,
        key: &[u8],
        qtype: domain::base::iana::Rtype,
        client: Option<std::net::IpAddr>,
    ) -> Option<crate::config::AclAction> {
        for rule in &self.acl {
            if !rule.zones.iter().any(|z| is_in_zone(key, z)) {
                continue;
            }
            if let Some(p) = rule.policies.iter().find(|p| p.matches(qtype, client)) {
                return Some(p.action);
            }
        }
        None
    }
}

/// The TXT rdata (wire, one character-string each) that `chaos` answers.
pub struct Chaos {
    /// `version.bind`, `version.server`.
    pub version: Box<[u8]>,
    /// `authors.bind`, one record each.
    pub authors: Vec<Box<[u8]>>,
    /// `hostname.bind`, `id.server`.
    pub hostname: Box<[u8]>,
}

impl Chaos {
    /// The records for `version`, `authors` and the host's name.
    pub fn new(version: &str, authors: &[String], hostname: &str) -> Chaos {
        Chaos {
            version: txt(version),
            authors: authors.iter().map(|a| txt(a)).collect(),
            hostname: txt(hostname),
        }
    }

    /// The rdatas for a CH TXT query of `key` (lowercase wire), if it is one of its names.
    pub fn lookup(&self, key: &[u8]) -> Option<&[Box<[u8]>]> {
        const VERSION_BIND: &[u8] = b"\x07version\x04bind\x00";
        const VERSION_SERVER: &[u8] = b"\x07version\x06server\x00";
        const AUTHORS_BIND: &[u8] = b"\x07authors\x04bind\x00";
        const HOSTNAME_BIND: &[u8] = b"\x08hostname\x04bind\x00";
        const ID_SERVER: &[u8] = b"\x02id\x06server\x00";
        match key {
            VERSION_BIND | VERSION_SERVER => Some(std::slice::from_ref(&self.version)),
            AUTHORS_BIND => Some(&self.authors),
            HOSTNAME_BIND | ID_SERVER => Some(std::slice::from_ref(&self.hostname)),
            _ => None,
        }
    }
}

/// TXT rdata of one character-string (at most 255 octets, as CoreDNS trims it).
fn txt(s: &str) -> Box<[u8]> {
    let b = &s.as_bytes()[..s.len().min(255)];
    let mut v = Vec::with_capacity(b.len() + 1);
    v.push(b.len() as u8);
    v.extend_from_slice(b);
    v.into()
}

/// A data source of a block.
pub enum Handler {
    /// `hosts`.
    Hosts(HostsHandler),
    /// `file` (one or more zones).
    File(FileHandler),
    /// `forward` (with the block's `cache`).
    Forward(Arc<crate::dns::plan::Plan>),
    /// `secondary` zones without data to serve: not transferred yet, or expired.
    Unavailable(UnavailableHandler),
}

/// Zones the block is authoritative for but cannot answer: SERVFAIL with an Extended DNS
/// Error (RFC 8914).
pub struct UnavailableHandler {
    /// Each zone (lowercase wire) and its INFO-CODE: 14 Not Ready (no transfer yet), 24
    /// Invalid Data (expired, RFC 1035 §4.3.5).
    pub zones: Vec<(Box<[u8]>, u16)>,
}

/// `hosts` at run time.
pub struct HostsHandler {
    /// The table.
    pub table: Arc<Hosts>,
    /// Zones it answers for (lowercase wire).
    pub zones: Vec<Box<[u8]>>,
    /// `fallthrough` zones; `Some(empty)` is every zone.
    pub fallthrough: Option<Vec<Box<[u8]>>>,
}

/// `file` at run time.
pub struct FileHandler {
    /// The loaded zones.
    pub zones: Vec<Arc<Zone>>,
    /// `secondary { fallthrough [ZONES] }`: names these zones answer NXDOMAIN for go to the
    /// next plugin (`Some(empty)`: every name).
    pub fallthrough: Option<Vec<Box<[u8]>>>,
}

impl FileHandler {
    /// Whether an NXDOMAIN for `key` goes to the next plugin.
    pub fn falls_through(&self, key: &[u8]) -> bool {
        match &self.fallthrough {
            None => false,
            Some(zones) => zones.is_empty() || zones.iter().any(|z| is_in_zone(key, z)),
        }
    }

    /// The zone whose apex is `key`.
    pub fn zone_at(&self, key: &[u8]) -> Option<&Arc<Zone>> {
        self.zones.iter().find(|z| z.apex() == key)
    }

    /// The zone with the longest apex containing `key`.
    pub fn zone_for(&self, key: &[u8]) -> Option<&Zone> {
        self.zones
            .iter()
            .filter(|z| is_in_zone(key, z.apex()))
            .max_by_key(|z| z.apex().len())
            .map(|z| &**z)
    }
}

impl HostsHandler {
    /// Whether a NXDOMAIN for `key` falls through to the next handler.
    pub fn falls_through(&self, key: &[u8]) -> bool {
        match &self.fallthrough {
            None => false,
            Some(zones) => zones.is_empty() || zones.iter().any(|z| is_in_zone(key, z)),
        }
    }
}

/// A block's `update`: the shard checks the zone and the signature; the control thread the
/// key's grant and the update itself.
pub struct UpdateZones {
    /// The zones, lowercase wire.
    pub zones: Vec<Box<[u8]>>,
    /// Every TSIG key of the server (those of every `tsig`).
    pub keys: Arc<super::tsig::Keyring>,
}
