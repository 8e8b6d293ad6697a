//! Builds the shard-facing [`Snapshot`] from a configuration and its loaded data.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::data::DataSet;
use super::tls::TlsListeners;
use crate::config::{ANY_ADDRS, Config, ServerBlock};
use crate::dns::pipeline::{
    Block, FileHandler, Handler, HostsHandler, ListenerKey, Route, RouteEntry, Snapshot,
};
use crate::zone::name::NameKey;

/// The listeners a configuration needs, in a stable order.
pub fn listeners(cfg: &Config) -> Vec<ListenerKey> {
    let mut out: Vec<ListenerKey> = cfg
        .blocks
        .iter()
        .flat_map(|b| block_listeners(b).into_iter())
        .collect();
    out.sort();
    out.dedup();
    out
}

fn block_listeners(b: &ServerBlock) -> Vec<ListenerKey> {
    let addrs: &[IpAddr] = if b.bind.is_empty() {
        &ANY_ADDRS
    } else {
        &b.bind
    };
    let mut out = Vec::new();
    for k in &b.keys {
        for ip in addrs {
            out.push(ListenerKey {
                transport: k.transport,
                addr: SocketAddr::new(*ip, k.port),
            });
        }
    }
    out
}

/// The snapshot for `cfg` with `data` and the TLS configurations of its listeners.
pub fn snapshot(cfg: &Config, data: &DataSet, tls: &TlsListeners, generation: u64) -> Snapshot {
    let blocks: Vec<Arc<Block>> = cfg
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| Arc::new(block(i, b, data)))
        .collect();
    let mut routes: BTreeMap<ListenerKey, Vec<RouteEntry>> = BTreeMap::new();
    for l in listeners(cfg) {
        let entry = routes.entry(l).or_default();
        // A query reaching a specific address also reaches the blocks bound to the wildcard
        // of its family (the kernel prefers the specific socket); blocks bound to the address
        // itself take precedence for a zone they share.
        for exact in [true, false] {
            for (i, b) in cfg.blocks.iter().enumerate() {
                let addrs: &[IpAddr] = if b.bind.is_empty() {
                    &ANY_ADDRS
                } else {
                    &b.bind
                };
                let reaches = addrs.iter().any(|a| {
                    if exact {
                        *a == l.addr.ip()
                    } else {
                        a.is_unspecified() && a.is_ipv4() == l.addr.ip().is_ipv4()
                    }
                });
                if !reaches {
                    continue;
                }
                for k in b
                    .keys
                    .iter()
                    .filter(|k| k.transport == l.transport && k.port == l.addr.port())
                {
                    let zone: Box<[u8]> = NameKey::of(&k.zone).as_slice().into();
                    if !entry.iter().any(|(z, _)| *z == zone) {
                        entry.push((zone, blocks[i].clone()));
                    }
                }
            }
        }
    }
    Snapshot {
        generation,
        listeners: routes
            .into_iter()
            .map(|(k, v)| (k, Route::new(v, tls.config(&k))))
            .collect(),
    }
}

fn block(index: usize, b: &ServerBlock, data: &DataSet) -> Block {
    let mut handlers = Vec::new();
    // CoreDNS runs plugins in plugin.cfg order, whatever the Corefile order: hosts, then file.
    if let Some(h) = &b.hosts {
        if let Some(entry) = data.hosts.get(&index) {
            handlers.push(Handler::Hosts(HostsHandler {
                table: entry.hosts.clone(),
                zones: h
                    .zones
                    .iter()
                    .map(|z| NameKey::of(z).as_slice().into())
                    .collect(),
                fallthrough: h.fallthrough.as_ref().map(|zs| {
                    zs.iter()
                        .map(|z| NameKey::of(z).as_slice().into())
                        .collect()
                }),
            }));
        }
    }
    let zones: Vec<_> = b
        .files
        .iter()
        .flat_map(|f| f.zones.iter().filter_map(|z| data.zone(&f.path, z)))
        .collect();
    if !zones.is_empty() {
        handlers.push(Handler::File(FileHandler { zones }));
    }
    Block {
        index,
        label: b.label(),
        handlers,
        log: b.log.clone(),
        errors: b.errors,
    }
}
