//! The server pipeline snapshot: per listener, the server blocks it routes to, and per block
//! its handlers in CoreDNS plugin order. Built whole on the control thread, read by shards.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{LogRule, Transport};
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

/// A zone (lowercase wire) and the block serving it on a listener.
pub type RouteEntry = (Box<[u8]>, Arc<Block>);

/// The server blocks behind one listener.
#[derive(Default)]
pub struct Route {
    /// (zone, block) pairs, longest zone first, so the first match is the longest suffix.
    zones: Vec<RouteEntry>,
    /// Some block behind this listener has `log` rules.
    logs: bool,
    /// TLS configuration of a `tls://` listener.
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Route {
    /// A route over `entries` (zone key, block), with the listener's TLS configuration.
    pub fn new(mut zones: Vec<RouteEntry>, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        zones.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let logs = zones.iter().any(|(_, b)| !b.log.is_empty());
        Route { zones, logs, tls }
    }

    /// The TLS configuration of a `tls://` listener.
    pub fn tls(&self) -> Option<&Arc<rustls::ServerConfig>> {
        self.tls.as_ref()
    }

    /// Whether any block of this listener logs queries (checked before any log work).
    pub fn logs(&self) -> bool {
        self.logs
    }

    /// The block with Corefile index `index`.
    pub fn block(&self, index: usize) -> Option<&Block> {
        self.zones.iter().find(|(_, b)| b.index == index).map(|(_, b)| &**b)
    }

    /// The block with the longest zone containing `key`.
    pub fn block_for(&self, key: &[u8]) -> Option<&Block> {
        self.zones.iter().find(|(z, _)| is_in_zone(key, z)).map(|(_, b)| &**b)
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
}

/// A data source of a block.
pub enum Handler {
    /// `hosts`.
    Hosts(HostsHandler),
    /// `file` (one or more zones).
    File(FileHandler),
    /// `forward` (with the block's `cache`).
    Forward(Arc<crate::dns::plan::Plan>),
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
}

impl FileHandler {
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
