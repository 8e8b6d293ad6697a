//! `ringdns check`: what a Corefile would serve, as text.

use std::fmt::Write;

use super::build;
use super::data::DataSet;
use crate::config::{Config, TlsConfig};
use crate::zone::name::{NameKey, display};

/// Describes listeners, blocks and the data each block serves.
pub fn describe(cfg: &Config, data: &DataSet) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Corefile {} is valid.", cfg.path.display());
    let _ = writeln!(s, "Listeners:");
    let mut shown = Vec::new();
    for l in build::listeners(cfg) {
        // Plain DNS's UDP and TCP sockets of an address are one dns:// listener here.
        let name = l.to_string();
        if shown.contains(&name) {
            continue;
        }
        let carriers = match l.transport.scheme() {
            crate::config::Scheme::Dns => "udp+tcp",
            crate::config::Scheme::Tls => "DNS over TLS",
            crate::config::Scheme::Https => "DNS over HTTPS",
        };
        let _ = writeln!(s, "  {name} ({carriers})");
        shown.push(name);
    }
    for (i, b) in cfg.blocks.iter().enumerate() {
        let _ = writeln!(s, "Server block {} at {}:", b.label(), b.pos);
        if let Some(h) = &b.hosts {
            let entries = data.hosts.get(&i).map(|e| e.hosts.entry_count()).unwrap_or(0);
            let zones: Vec<String> = h.zones.iter().map(|z| display(NameKey::of(z).as_slice())).collect();
            let _ = writeln!(
                s,
                "  hosts {} for {}: {entries} entries, ttl {}{}{}",
                h.file.display(),
                zones.join(" "),
                h.ttl,
                if h.no_reverse { ", no PTR" } else { "" },
                if h.fallthrough.is_some() { ", fallthrough" } else { "" },
            );
        }
        for f in &b.files {
            for z in &f.zones {
                match data.zone(&f.path, z) {
                    Some(zone) => {
                        let _ = writeln!(
                            s,
                            "  file {} as {}: serial {}, {} names, {} records",
                            f.path.display(),
                            display(zone.apex()),
                            zone.serial(),
                            zone.name_count(),
                            zone.record_count()
                        );
                    }
                    None => {
                        let _ = writeln!(
                            s,
                            "  file {} as {}: not loaded",
                            f.path.display(),
                            display(NameKey::of(z).as_slice())
                        );
                    }
                }
            }
        }
        if !b.log.is_empty() {
            let _ = writeln!(s, "  log: {} rule(s)", b.log.len());
        }
        if b.errors {
            let _ = writeln!(s, "  errors");
        }
        match &b.tls {
            Some(TlsConfig::Files { cert, key, .. }) => {
                let chain = data.cert(cert, key).map_or(0, |c| c.cert.len());
                let _ = writeln!(
                    s,
                    "  tls {} with {}: {chain} certificate(s) in the chain",
                    cert.display(),
                    key.display()
                );
            }
            Some(TlsConfig::Acme(a)) => {
                let unit = crate::acme::unit_of(a);
                let stored = match crate::storage::Store::at(&unit.root).load(&unit.dir) {
                    Ok(Some(st)) => format!("stored version {}", st.version),
                    Ok(None) => "none stored yet".into(),
                    Err(e) => format!("storage unreadable: {e}"),
                };
                let _ = writeln!(
                    s,
                    "  tls acme for {} via {}: {} ({stored})",
                    a.domains.join(" "),
                    a.ca,
                    unit.dir.display()
                );
            }
            None => {}
        }
        if let Some(f) = &b.forward {
            let to: Vec<String> = f.to.iter().map(build::upstream_label).collect();
            let _ = writeln!(
                s,
                "  forward {} to {}",
                display(NameKey::of(&f.from).as_slice()),
                to.join(" ")
            );
        }
        // The other plugins, as coredns_plugin_enabled lists them.
        let others: Vec<&str> = build::block_plugins(b)
            .into_iter()
            .filter(|n| !matches!(*n, "hosts" | "file" | "log" | "errors" | "forward"))
            .collect();
        if !others.is_empty() {
            let _ = writeln!(s, "  plugins: {}", others.join(", "));
        }
    }
    for (what, addrs) in [
        ("health", cfg.health.iter().map(|h| h.addr).collect::<Vec<_>>()),
        ("ready", cfg.ready.clone()),
        ("prometheus", cfg.metrics.clone()),
    ] {
        for a in addrs {
            let _ = writeln!(s, "{what} on http://{a}");
        }
    }
    if let Some(r) = cfg.reload {
        let _ = writeln!(s, "Corefile reload every {:?} (+ up to {:?})", r.interval, r.jitter);
    }
    s
}
