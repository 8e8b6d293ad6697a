//! Builds the shard-facing [`Snapshot`] from a configuration and its loaded data.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::data::{DataSet, SecondaryEntry};
use super::tls::TlsListeners;
use crate::config::{Config, Scheme, ServerBlock, TlsConfig};
use crate::dns::pipeline::{
    Acl, Block, BlockPlugins, Chaos, FileHandler, Handler, HostsHandler, ListenerKey, Route, RouteEntry, Snapshot,
    UnavailableHandler,
};
use crate::telemetry::metrics::Registry;
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
        // Values published on another server need no answering here.
        if a.dns.is_some() {
            continue;
        }
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

/// The `server` label of a listener, as CoreDNS writes it: `dns://:53` for every address,
/// `dns://127.0.0.1:53` or `dns://[::1]:53` for one (ringdns's listeners on `0.0.0.0` and
/// `::` both count as CoreDNS's one `:53`).
pub fn server_label(l: &ListenerKey) -> String {
    let scheme = l.transport.scheme().name();
    match l.addr.ip() {
        ip if ip.is_unspecified() => format!("{scheme}://:{}", l.addr.port()),
        _ => format!("{scheme}://{}", l.addr),
    }
}

/// The snapshot for `cfg` with `data` and the TLS configurations of its listeners; with
/// `metrics`, the counts of the blocks that have `prometheus` (kept across snapshots by the
/// registry) and the plugins each block runs.
pub fn snapshot(
    cfg: &Config,
    data: &DataSet,
    tls: &TlsListeners,
    generation: u64,
    metrics: Option<&Registry>,
) -> Snapshot {
    // TSIG secrets are the server instance's, whichever block defines them (CoreDNS).
    let keys = Arc::new(crate::dns::tsig::Keyring::new(
        cfg.blocks.iter().filter_map(|b| b.tsig.as_ref()),
    ));
    let blocks: Vec<Arc<Block>> = cfg
        .blocks
        .iter()
        .enumerate()
        .map(|(i, b)| Arc::new(block(i, b, data, &keys)))
        .collect();
    let responder = Arc::new(Block {
        index: cfg.blocks.len(),
        label: "ACME challenge responder".into(),
        handlers: Vec::new(),
        log: Vec::new(),
        errors: false,
        plugins: Default::default(),
    });
    let responders = responders(cfg);
    let mut routes: BTreeMap<ListenerKey, Vec<RouteEntry>> = BTreeMap::new();
    for l in listeners(cfg) {
        let entry = routes.entry(l).or_default();
        // Challenge names only the challenge overlay answers (no zone data behind them).
        for (_, names) in responders.iter().filter(|(k, _)| *k == l) {
            for n in names {
                entry.push(RouteEntry {
                    zone: n.clone(),
                    block: responder.clone(),
                    series: None,
                });
            }
        }
        // A query reaching a specific address also reaches the blocks bound to the wildcard
        // of its family (the kernel prefers the specific socket); blocks bound to the address
        // itself take precedence for a zone they share.
        let mut serving = Vec::new();
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
                    serving.push(i);
                    let zone: Box<[u8]> = NameKey::of(&k.zone).as_slice().into();
                    if !entry.iter().any(|e| e.zone == zone) {
                        let series = metrics
                            .filter(|_| b.prometheus.is_some())
                            .map(|m| m.zone(&server_label(&l), &fqdn(&k.zone)));
                        entry.push(RouteEntry {
                            zone,
                            block: blocks[i].clone(),
                            series,
                        });
                    }
                }
            }
        }
        // Catalog member zones (RFC 9432) reach their catalog's block wherever it listens,
        // after every zone the Corefile names (those take precedence).
        let mut members: Vec<_> = data
            .members
            .iter()
            .filter(|(_, m)| serving.contains(&m.block))
            .collect();
        members.sort_by(|a, b| a.0.cmp(b.0));
        for (apex, m) in members {
            if !entry.iter().any(|e| e.zone == *apex) {
                let b = &cfg.blocks[m.block];
                let series = metrics
                    .filter(|_| b.prometheus.is_some())
                    .map(|reg| reg.zone(&server_label(&l), &fqdn(&crate::zone::name::from_wire(apex))));
                entry.push(RouteEntry {
                    zone: apex.clone(),
                    block: blocks[m.block].clone(),
                    series,
                });
            }
        }
    }
    // CoreDNS counts queries no block takes whenever any block has `prometheus`.
    let metered = cfg.blocks.iter().any(|b| b.prometheus.is_some());
    let metrics = metrics.filter(|_| metered);
    if let Some(m) = metrics {
        m.set_enabled(enabled_plugins(cfg));
        attach_plan_metrics(cfg, data, m);
        m.set_dnssec(dnssec_series(cfg, data));
    }
    let cookies = cfg.cookies.as_ref().map(|c| {
        Arc::new(crate::dns::cookie::Secrets {
            current: c.current,
            previous: c.previous,
        })
    });
    Snapshot {
        generation,
        listeners: routes
            .into_iter()
            .map(|(k, v)| {
                let dropped = metrics.map(|m| m.zone(&server_label(&k), "dropped"));
                (k, Route::new(v, tls.config(&k), dropped).with_cookies(cookies.clone()))
            })
            .collect(),
    }
}

/// (server, zone, plugin) for `coredns_plugin_enabled`: the plugins of each block that
/// take part in answering, as CoreDNS lists its handlers (not bind, reload, health, ready).
fn enabled_plugins(cfg: &Config) -> Vec<(String, String, &'static str)> {
    let mut out = Vec::new();
    for b in &cfg.blocks {
        let names = block_plugins(b);
        for l in block_listeners(b) {
            if l.transport == crate::config::Transport::Tcp {
                // The UDP listener of the same address has the same label.
                continue;
            }
            let server = server_label(&l);
            for k in b
                .keys
                .iter()
                .filter(|k| k.scheme == l.transport.scheme() && k.port == l.addr.port())
            {
                for n in &names {
                    let row = (server.clone(), fqdn(&k.zone), *n);
                    if !out.contains(&row) {
                        out.push(row);
                    }
                }
            }
        }
    }
    out
}

/// The plugins of a block that take part in answering, in CoreDNS's names.
pub fn block_plugins(b: &ServerBlock) -> Vec<&'static str> {
    let mut names = Vec::new();
    names.extend(b.prometheus.map(|_| "prometheus"));
    names.extend(b.errors.then_some("errors"));
    names.extend((!b.log.is_empty()).then_some("log"));
    names.extend(b.cache.as_ref().map(|_| "cache"));
    names.extend(b.hosts.as_ref().map(|_| "hosts"));
    names.extend((!b.files.is_empty()).then_some("file"));
    names.extend((!b.secondaries.is_empty()).then_some("secondary"));
    names.extend((!b.transfers.is_empty()).then_some("transfer"));
    names.extend(b.tsig.as_ref().map(|_| "tsig"));
    names.extend(b.dnssec.as_ref().map(|_| "dnssec"));
    names.extend(b.forward.as_ref().map(|_| "forward"));
    names.extend(b.chaos.as_ref().map(|_| "chaos"));
    names.extend(b.any.then_some("any"));
    names.extend(b.minimal.then_some("minimal"));
    names.extend(b.whoami.then_some("whoami"));
    names.extend(b.loop_probe.as_ref().map(|_| "loop"));
    names.extend(b.loadbalance.as_ref().map(|_| "loadbalance"));
    names.extend(b.bufsize.map(|_| "bufsize"));
    names.extend((!b.acl.is_empty()).then_some("acl"));
    names.extend((!b.templates.is_empty()).then_some("template"));
    names.extend((!b.rewrites.is_empty()).then_some("rewrite"));
    names.extend(b.timeouts.map(|_| "timeouts"));
    names.extend(b.nsid.as_ref().map(|_| "nsid"));
    names.extend(b.header.map(|_| "header"));
    names.extend(b.local.map(|_| "local"));
    names.extend(b.dns64.map(|_| "dns64"));
    names.extend(b.rrl.as_ref().map(|_| "rrl"));
    names.extend(b.shed.then_some("shed"));
    names.extend(b.update.as_ref().map(|_| "update"));
    names.extend((!b.acme_dns.is_empty()).then_some("acme_dns"));
    names
}

/// Gives each `forward` plan of a block with `prometheus` its cache and upstream counts
/// (a plan kept from an earlier snapshot keeps the ones it has).
fn attach_plan_metrics(cfg: &Config, data: &DataSet, m: &Registry) {
    for (i, b) in cfg.blocks.iter().enumerate() {
        let (Some(_), Some((plan, _))) = (b.prometheus, data.plans.get(&i)) else {
            continue;
        };
        let Some(first) = block_listeners(b).first().map(server_label) else {
            continue;
        };
        let zones: Vec<String> = plan
            .cache
            .as_ref()
            .map(|c| c.zones.iter().map(fqdn).collect())
            .unwrap_or_default();
        plan.attach_metrics(|| crate::dns::plan::PlanMetrics {
            cache: plan.cache.is_some().then(|| m.cache(&first, &zones.join(","))),
            upstreams: plan.cfg.to.iter().map(|u| m.upstream(&upstream_label(u))).collect(),
        });
    }
}

/// The `dnssec` signers of the blocks with `prometheus`, by their first listener's label.
fn dnssec_series(cfg: &Config, data: &DataSet) -> Vec<(String, Arc<crate::dnssec::online::Signer>)> {
    cfg.blocks
        .iter()
        .enumerate()
        .filter(|(_, b)| b.prometheus.is_some())
        .filter_map(|(i, b)| {
            let server = block_listeners(b).first().map(server_label)?;
            Some((server, data.signers.get(&i)?.clone()))
        })
        .collect()
}

/// A zone as CoreDNS labels it: absolute, with the final dot (`example.org.`, `.`).
fn fqdn(name: &domain::base::Name<bytes::Bytes>) -> String {
    let s = name.to_string();
    if s.ends_with('.') { s } else { s + "." }
}

/// The `to` label of an upstream: its address, as CoreDNS's proxies name themselves.
pub fn upstream_label(u: &crate::config::UpstreamAddr) -> String {
    use crate::config::UpstreamAddr;
    match u {
        UpstreamAddr::Dns(a) => a.to_string(),
        UpstreamAddr::Tls(a) => format!("tls://{a}"),
        UpstreamAddr::Https { host, path, .. } => format!("https://{host}{path}"),
    }
}

/// Extended DNS Errors of secondary zones without data (RFC 8914 §4.15, §4.25).
const EDE_NOT_READY: u16 = 14;
const EDE_INVALID_DATA: u16 = 24;

fn block(index: usize, b: &ServerBlock, data: &DataSet, keys: &Arc<crate::dns::tsig::Keyring>) -> Block {
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
    let mut zones: Vec<_> = b
        .files
        .iter()
        .flat_map(|f| f.zones.iter().filter_map(|z| data.zone(&f.path, z)))
        .collect();
    // `secondary` zones with data are served as `file` zones are; the others answer
    // SERVFAIL with an Extended DNS Error saying why (RFC 8914 §4.15, §4.25).
    let mut unavailable = Vec::new();
    let mut falling = Vec::new();
    // Catalog members (RFC 9432) are served by their catalog's block, as its listed zones.
    let members = data.members.iter().filter(|(_, m)| m.block == index).map(|(apex, m)| {
        let s = b
            .secondaries
            .iter()
            .find(|s| s.directory == m.catalog.0 && s.catalog.is_some());
        (apex.clone(), s)
    });
    let listed = b
        .secondaries
        .iter()
        .flat_map(|s| s.zones.iter().map(move |z| (NameKey::of(z).as_slice().into(), Some(s))));
    for (apex, s) in listed.chain(members).collect::<Vec<(Box<[u8]>, _)>>() {
        let Some(s) = s else {
            continue;
        };
        {
            match data.secondaries.get(&(s.directory.clone(), apex.clone())) {
                Some(SecondaryEntry {
                    zone: Some(zone),
                    expired: false,
                }) => match &s.fallthrough {
                    None => zones.push(zone.clone()),
                    // With `fallthrough`, a handler of its own after the others' zones.
                    Some(ft) => falling.push(FileHandler {
                        zones: vec![zone.clone()],
                        fallthrough: Some(ft.iter().map(|z| NameKey::of(z).as_slice().into()).collect()),
                    }),
                },
                Some(SecondaryEntry {
                    zone: Some(_),
                    expired: true,
                }) => unavailable.push((apex, EDE_INVALID_DATA)),
                _ => unavailable.push((apex, EDE_NOT_READY)),
            }
        }
    }
    if !zones.is_empty() {
        handlers.push(Handler::File(FileHandler {
            zones,
            fallthrough: None,
        }));
    }
    handlers.extend(falling.into_iter().map(Handler::File));
    if !unavailable.is_empty() {
        handlers.push(Handler::Unavailable(UnavailableHandler { zones: unavailable }));
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
        plugins: BlockPlugins {
            chaos: b
                .chaos
                .as_ref()
                .map(|c| Chaos::new(&c.version, &c.authors, &crate::config::hostname())),
            whoami: b.whoami,
            any: b.any,
            minimal: b.minimal,
            loop_probe: b.loop_probe.clone(),
            loadbalance: b.loadbalance.as_ref().map(|l| crate::dns::balance::Balance {
                weights: l
                    .weighted
                    .as_ref()
                    .map(|_| data.weights.get(&index).map(|e| e.table.clone()).unwrap_or_default()),
                prefer: l.prefer.clone(),
            }),
            bufsize: b.bufsize,
            shed: b.shed,
            rrl: b.rrl.as_ref().map(|r| {
                Arc::new(crate::dns::rrl::Limits {
                    zones: r.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect(),
                    interval: r.intervals,
                    request_interval: r.request_interval,
                    window: r.window,
                    ipv4_prefix: r.ipv4_prefix,
                    ipv6_prefix: r.ipv6_prefix,
                    slip: r.slip,
                    table_size: r.table_size,
                    report_only: r.report_only,
                })
            }),
            acl: b
                .acl
                .iter()
                .map(|r| Acl {
                    zones: r.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect(),
                    policies: r.policies.clone(),
                })
                .collect(),
            templates: b.templates.iter().map(crate::dns::template::Template::new).collect(),
            rewrites: b.rewrites.clone(),
            timeouts: b.timeouts,
            tsig: b
                .tsig
                .as_ref()
                .map(|t| Arc::new(crate::dns::tsig::Policy::new(t, keys.clone()))),
            update: b.update.as_ref().map(|u| {
                Arc::new(crate::dns::pipeline::UpdateZones {
                    zones: u.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect(),
                    keys: keys.clone(),
                })
            }),
            dnssec: data.signers.get(&index).cloned(),
            journals: b
                .transfers
                .iter()
                .flat_map(|t| t.zones.iter().map(|z| NameKey::of(z).as_slice().into()))
                .filter_map(|apex: Box<[u8]>| {
                    let j = data.journals.get(&apex)?.clone();
                    Some((apex, j))
                })
                .collect(),
            transfers: b
                .transfers
                .iter()
                .flat_map(|t| {
                    t.zones
                        .iter()
                        .map(move |z| (NameKey::of(z).as_slice().into(), t.to.clone()))
                })
                .collect(),
            primaries: b
                .secondaries
                .iter()
                .flat_map(|s| {
                    let from: Vec<_> = s.from.iter().map(|p| p.addr.ip()).collect();
                    let members = data
                        .members
                        .iter()
                        .filter(|(_, m)| m.block == index && m.catalog.0 == s.directory && s.catalog.is_some())
                        .map(|(apex, _)| apex.clone());
                    s.zones
                        .iter()
                        .map(|z| NameKey::of(z).as_slice().into())
                        .chain(members)
                        .map(move |z| (z, from.clone()))
                        .collect::<Vec<_>>()
                })
                .collect(),
            nsid: b.nsid.as_deref().map(Box::from),
            header: b.header,
            local: b.local,
            dns64: b.dns64,
        },
    }
}
