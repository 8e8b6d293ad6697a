//! Builds the shard-facing [`Snapshot`] from a configuration and its loaded data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::data::DataSet;
use super::tls::TlsListeners;
use crate::config::{Config, Scheme, ServerBlock, TlsConfig};
use crate::dns::pipeline::{Block, FileHandler, Handler, HostsHandler, ListenerKey, Route, RouteEntry, Snapshot};
use crate::zone::challenge::challenge_name;
use crate::zone::name::NameKey;
use crate::zone::name::is_in_zone;

/// The listeners a configuration needs, in a stable order: those of its blocks and those of
/// the ACME challenge responders.
pub fn listeners(cfg: &Config) -> Vec<ListenerKey> {
    let mut out: Vec<ListenerKey> = cfg
        .blocks
        .iter()
        .flat_map(|b| block_listeners(b).into_iter())
        .chain(responders(cfg).into_iter().map(|(k, _)| k))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Challenge names that no `dns://` block serves, by the listener (`port` of the `tls acme`
/// settings, on the addresses of its block) where ringdns answers them itself.
pub fn responders(cfg: &Config) -> Vec<(ListenerKey, Vec<Box<[u8]>>)> {
    let mut out: BTreeMap<ListenerKey, Vec<Box<[u8]>>> = BTreeMap::new();
    for b in &cfg.blocks {
        let Some(TlsConfig::Acme(a)) = &b.tls else { continue };
        let addrs = b.addrs();
        for d in &a.domains {
            let Ok(name) = challenge_name(d) else { continue };
            let served = cfg.blocks.iter().any(|x| {
                x.keys
                    .iter()
                    .any(|k| k.scheme == Scheme::Dns && is_in_zone(name.as_slice(), NameKey::of(&k.zone).as_slice()))
            });
            if served {
                continue;
            }
            for ip in addrs {
                for &transport in Scheme::Dns.transports() {
                    let key = ListenerKey {
                        transport,
                        addr: SocketAddr::new(*ip, a.port),
                    };
                    let names = out.entry(key).or_default();
                    if !names.iter().any(|n| **n == *name.as_slice()) {
                        names.push(name.as_slice().into());
                    }
                }
            }
        }
    }
    out.into_iter().collect()
}

fn block_listeners(b: &ServerBlock) -> Vec<ListenerKey> {
    let addrs = b.addrs();
    let mut out = Vec::new();
    for k in &b.keys {
        for ip in addrs {
            for &transport in k.scheme.transports() {
                out.push(ListenerKey {
                    transport,
                    addr: SocketAddr::new(*ip, k.port),
                });
            }
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
    let responder = Arc::new(Block {
        index: cfg.blocks.len(),
        label: "ACME challenge responder".into(),
        handlers: Vec::new(),
        log: Vec::new(),
        errors: false,
    });
    let responders = responders(cfg);
    let mut routes: BTreeMap<ListenerKey, Vec<RouteEntry>> = BTreeMap::new();
    for l in listeners(cfg) {
        let entry = routes.entry(l).or_default();
        // Challenge names only the challenge overlay answers (no zone data behind them).
        for (_, names) in responders.iter().filter(|(k, _)| *k == l) {
            for n in names {
                entry.push((n.clone(), responder.clone()));
            }
        }
        // A query reaching a specific address also reaches the blocks bound to the wildcard
        // of its family (the kernel prefers the specific socket); blocks bound to the address
        // itself take precedence for a zone they share.
        for exact in [true, false] {
            for (i, b) in cfg.blocks.iter().enumerate() {
                let addrs = b.addrs();
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
                    .filter(|k| k.scheme == l.transport.scheme() && k.port == l.addr.port())
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
                zones: h.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect(),
                fallthrough: h
                    .fallthrough
                    .as_ref()
                    .map(|zs| zs.iter().map(|z| NameKey::of(z).as_slice().into()).collect()),
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
    // forward comes last in CoreDNS' plugin order.
    if let Some((plan, _)) = data.plans.get(&index) {
        handlers.push(Handler::Forward(plan.clone()));
    }
    Block {
        index,
        label: b.label(),
        handlers,
        log: b.log.clone(),
        errors: b.errors,
    }
}
