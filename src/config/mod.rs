//! Corefile loading: lexer → structure (imports, snippets) → typed [`Config`].
//!
//! The dialect is CoreDNS' (see the README's Corefile reference). Anything
//! ringdns does not implement is an error naming file, line and column, never ignored.

pub mod acme_dns;
mod args;
pub mod cookies;
mod directives;
pub mod dnssec;
mod duration;
mod error;
mod forward;
mod import;
mod keys;
mod lexer;
mod model;
pub mod rewrite;
pub mod rrl;
pub mod sign;
mod syntax;
pub mod template;
pub mod tsig;
pub mod update;

use std::collections::HashMap;
use std::path::Path;

pub use directives::{COMMON_LOG_FORMAT, SUPPORTED};
pub use error::{ConfigError, Pos};
pub use model::*;

/// Options from the command line that change how a Corefile reads.
#[derive(Clone, Copy, Debug)]
pub struct LoadOptions {
    /// Default port of keys without one (`--dns.port`, CoreDNS' `-dns.port`).
    pub dns_port: u16,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { dns_port: 53 }
    }
}

/// Reads and checks a Corefile.
pub fn load(path: &Path, opts: LoadOptions) -> Result<Config, ConfigError> {
    let raw = syntax::parse_file(path)?;
    build(path, raw, opts)
}

/// Parses Corefile text as if it were the file `path`.
pub fn parse(src: &str, path: &Path, opts: LoadOptions) -> Result<Config, ConfigError> {
    let raw = syntax::parse_str(src, path)?;
    build(path, raw, opts)
}

/// A digest of the Corefile as ringdns reads it: every token of it and of the files it
/// imports, so an edit to an imported file counts and a comment-only edit does not.
pub fn fingerprint(path: &Path) -> Result<u64, ConfigError> {
    use std::hash::{Hash, Hasher};
    let raw = syntax::parse_file(path)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    fn line(l: &syntax::Line, h: &mut impl Hasher) {
        l.name.text.hash(h);
        for a in &l.args {
            a.text.hash(h);
        }
        if let Some(b) = &l.block {
            b.len().hash(h);
            for x in b {
                line(x, h);
            }
        }
    }
    for b in &raw {
        for k in &b.keys {
            k.text.hash(&mut h);
        }
        b.lines.len().hash(&mut h);
        for l in &b.lines {
            line(l, &mut h);
        }
        directives::auto_listing(&b.lines).hash(&mut h);
    }
    Ok(h.finish())
}

fn build(path: &Path, raw: Vec<syntax::RawBlock>, opts: LoadOptions) -> Result<Config, ConfigError> {
    let mut cfg = Config {
        path: path.to_path_buf(),
        blocks: Vec::new(),
        reload: None,
        health: Vec::new(),
        ready: Vec::new(),
        metrics: Vec::new(),
        rescan: None,
        cookies: None,
    };
    // Where each (scheme, zone, address) was first defined, to reject duplicates; the
    // same zone and port may be served by several blocks bound to different addresses.
    let mut seen: HashMap<(Scheme, Vec<u8>, std::net::SocketAddr), Pos> = HashMap::new();
    for rb in raw {
        let mut keys = Vec::new();
        for tok in &rb.keys {
            keys.push(keys::parse_key(tok, opts.dns_port)?);
        }
        let schemes: Vec<_> = keys.iter().map(|k| k.scheme).collect();
        let mut block = ServerBlock {
            pos: rb.keys[0].pos.clone(),
            keys,
            bind: Vec::new(),
            hosts: None,
            files: Vec::new(),
            log: Vec::new(),
            errors: false,
            tls: None,
            forward: None,
            cache: None,
            prometheus: None,
            chaos: None,
            whoami: false,
            any: false,
            minimal: false,
            loop_probe: None,
            loadbalance: None,
            bufsize: None,
            acl: Vec::new(),
            templates: Vec::new(),
            rewrites: Vec::new(),
            timeouts: None,
            secondaries: Vec::new(),
            tsig: None,
            dnssec: None,
            signs: Vec::new(),
            transfers: Vec::new(),
            nsid: None,
            header: None,
            local: None,
            cancel: None,
            dns64: None,
            rrl: None,
            shed: false,
            update: None,
            acme_dns: Vec::new(),
        };
        let extras = directives::apply(&mut block, &rb.lines)?;
        let addrs = block.addrs();
        for key in &block.keys {
            for ip in addrs {
                let id = (
                    key.scheme,
                    key.zone.as_slice().to_vec(),
                    std::net::SocketAddr::new(*ip, key.port),
                );
                if let Some(first) = seen.get(&id) {
                    return Err(ConfigError::at(
                        &key.pos,
                        format!("server block key {key} on {ip} is already defined at {first}"),
                    ));
                }
                seen.insert(id, key.pos.clone());
            }
        }
        if let Some(r) = extras.reload {
            cfg.reload = Some(r);
        }
        // The cookie secret is the server's: blocks that give one give the same.
        if let Some(c) = extras.cookies {
            match &cfg.cookies {
                Some(first) if (first.current, first.previous) != (c.current, c.previous) => {
                    return Err(ConfigError::At {
                        pos: c.pos,
                        msg: format!(
                            "cookies: the secret differs from the one at {} (one secret per server)",
                            first.pos
                        ),
                    });
                }
                Some(_) => {}
                None => cfg.cookies = Some(c),
            }
        }
        if let Some(r) = extras.rescan {
            cfg.rescan = Some(cfg.rescan.map_or(r, |x: std::time::Duration| x.min(r)));
        }
        // Blocks naming one address share its endpoint; the longest lameduck wins.
        if let Some(h) = extras.health {
            match cfg.health.iter_mut().find(|x| x.addr == h.addr) {
                Some(x) => x.lameduck = x.lameduck.max(h.lameduck),
                None => cfg.health.push(h),
            }
        }
        if let Some(r) = extras.ready {
            if !cfg.ready.contains(&r) {
                cfg.ready.push(r);
            }
        }
        // Several blocks may name one `prometheus` address: it serves them all.
        if let Some(m) = block.prometheus {
            if !cfg.metrics.contains(&m) {
                cfg.metrics.push(m);
            }
        }
        let encrypted = schemes.iter().any(|t| *t != Scheme::Dns);
        if encrypted && schemes.contains(&Scheme::Dns) {
            return Err(ConfigError::at(
                &block.pos,
                format!(
                    "server block {:?} mixes dns:// with tls:// or https:// keys; give the encrypted ones their own block",
                    block.label()
                ),
            ));
        }
        cfg.blocks.push(block);
    }
    if let Some(b) = cfg
        .blocks
        .iter()
        .find(|b| b.tls.is_none() && !certified(&cfg.blocks, b))
    {
        return Err(ConfigError::at(
            &b.pos,
            format!(
                "server block {:?} is tls:// or https:// and needs a tls directive (or another block with one on the same port)",
                b.label()
            ),
        ));
    }
    update_keys_defined(&cfg)?;
    if cfg.blocks.is_empty() {
        return Err(ConfigError::at(
            &Pos {
                file: std::sync::Arc::from(path),
                line: 1,
                col: 1,
            },
            "no server blocks: a Corefile needs at least one, such as \"example.com:1053 { ... }\"",
        ));
    }
    Ok(cfg)
}

/// Every key an `update` grants is one some `tsig` of the Corefile defines (TSIG keys are
/// the server's, CoreDNS says, whichever block names them).
fn update_keys_defined(cfg: &Config) -> Result<(), ConfigError> {
    let defined = |name: &domain::base::Name<bytes::Bytes>| {
        cfg.blocks
            .iter()
            .flat_map(|b| b.tsig.iter().flat_map(|t| &t.keys))
            .any(|k| domain::base::ToName::name_eq(&k.name, name))
    };
    // acme_dns serves its values in a zone file of its block (which gives the SOA and NS).
    let mut listens: Vec<(std::net::SocketAddr, &Pos)> = Vec::new();
    for b in &cfg.blocks {
        for a in &b.acme_dns {
            if !b.files.iter().any(|f| f.zones.contains(&a.zone)) {
                return Err(ConfigError::at(
                    &a.pos,
                    format!(
                        "acme_dns: the block has no file for zone {} (its values are served in it: file db.{} {})",
                        a.zone, a.zone, a.zone
                    ),
                ));
            }
            if let Some((_, first)) = listens.iter().find(|(l, _)| *l == a.listen) {
                return Err(ConfigError::at(
                    &a.pos,
                    format!("acme_dns: {} is already the listen address at {first}", a.listen),
                ));
            }
            listens.push((a.listen, &a.pos));
        }
    }
    for g in cfg.blocks.iter().flat_map(|b| b.update.iter().flat_map(|u| &u.grants)) {
        if !defined(&g.key) {
            return Err(ConfigError::at(
                &g.pos,
                format!(
                    "update: no tsig defines key {} (add tsig {{ secret {} SECRET }} to a server block)",
                    g.key, g.key
                ),
            ));
        }
    }
    Ok(())
}

/// The host's name (for `nsid` and `chaos`); "localhost" when it has none, as CoreDNS.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether every encrypted listener of `b` has a certificate: its own `tls`, or, as CoreDNS
/// groups blocks by listener and takes the first `tls` of the group, one of another block on
/// the same scheme, port and address.
fn certified(blocks: &[ServerBlock], b: &ServerBlock) -> bool {
    let overlap = |x: &ServerBlock, y: &ServerBlock| {
        x.addrs().iter().any(|a| {
            y.addrs()
                .iter()
                .any(|c| a == c || ((a.is_unspecified() || c.is_unspecified()) && a.is_ipv4() == c.is_ipv4()))
        })
    };
    b.keys.iter().filter(|k| k.scheme != Scheme::Dns).all(|k| {
        b.tls.is_some()
            || blocks.iter().any(|o| {
                o.tls.is_some() && overlap(o, b) && o.keys.iter().any(|ok| ok.scheme == k.scheme && ok.port == k.port)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(src: &str) -> Config {
        parse(src, Path::new("Corefile"), LoadOptions::default()).unwrap()
    }

    fn parse_err(src: &str) -> String {
        parse(src, Path::new("Corefile"), LoadOptions::default())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn update_and_its_errors() {
        let b = parse_ok("example.test {\n tsig {\n  secret k1. MTIzNDU2Nzg5MGFiY2RlZg==\n }\n update {\n  key k1 host.example.test *.dyn.example.test\n  allow_types TXT A\n }\n}\n")
            .blocks[0]
            .clone();
        let u = b.update.unwrap();
        assert_eq!(
            u.types,
            vec![domain::base::iana::Rtype::TXT, domain::base::iana::Rtype::A]
        );
        assert_eq!(u.grants[0].names.len(), 2);
        assert!(matches!(u.grants[0].names[1], update::GrantName::Below(_)));
        for (src, want) in [
            (
                "example.test {\n update {\n  key nokey\n }\n}\n",
                "Corefile:3:3: update: no tsig defines key nokey",
            ),
            ("example.test {\n update\n}\n", "update needs a key"),
            (
                "example.test {\n tsig {\n  secret k1. MTIz\n }\n update {\n  key k1\n  allow_types SOA\n }\n}\n",
                "SOA cannot be changed",
            ),
            (
                "example.test {\n update {\n  grant k1\n }\n}\n",
                "unknown update option \"grant\"",
            ),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src}: {e}");
        }
    }

    #[test]
    fn acme_dns_and_tls_acme_dns_errors() {
        for (src, want) in [
            ("auth.test {\n acme_dns auth.test\n}\n", "acme_dns needs listen"),
            (
                "auth.test {\n acme_dns other.test {\n  listen 127.0.0.1:8443\n }\n}\n",
                "not inside the server block's zones",
            ),
            (
                "auth.test {\n acme_dns auth.test {\n  listen 192.0.2.1:8443\n  plain\n }\n}\n",
                "plain HTTP only on a loopback",
            ),
            (
                "tls://a.test {\n tls acme {\n  domain a.test\n  dns rfc2136 192.0.2.1\n }\n}\n",
                "dns rfc2136 needs key",
            ),
            (
                "tls://a.test {\n tls acme {\n  domain a.test\n  dns acme_dns http://192.0.2.1:8443 {\n   username u\n   password p\n   subdomain s\n  }\n }\n}\n",
                "plain http:// only to a loopback",
            ),
            (
                "tls://a.test {\n tls acme {\n  domain a.test\n  dns route53 x\n }\n}\n",
                "unknown dns publisher \"route53\"",
            ),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src}: {e}");
        }
        let c = parse_ok(
            "tls://a.test {\n tls acme {\n  domain a.test\n  dns rfc2136 192.0.2.1 {\n   key k. hmac-sha256 MTIzNDU2Nzg5MGFiY2RlZg==\n  }\n }\n}\n",
        );
        let Some(TlsConfig::Acme(a)) = &c.blocks[0].tls else {
            panic!("acme")
        };
        let Some(DnsPublisher::Rfc2136 { server, .. }) = a.dns.as_deref() else {
            panic!("rfc2136")
        };
        assert_eq!(server.port(), 53, "port 53 unless given");
    }

    #[test]
    fn rrl() {
        let b = parse_ok(". {\n rrl example.org {\n  responses-per-second 10\n  nxdomains-per-second 0.5\n  errors-per-second 0\n  window 5\n  ipv4-prefix-length 32\n  ipv6-prefix-length 64\n  slip-ratio 2\n  requests-per-second 100\n  max-table-size 5000\n  report-only\n }\n}\n")
            .blocks[0]
            .clone();
        let r = b.rrl.unwrap();
        assert_eq!(
            crate::zone::name::display(crate::zone::name::NameKey::of(&r.zones[0]).as_slice()),
            "example.org."
        );
        // Nodata and referrals default to responses; nxdomains and errors are their own.
        assert_eq!(r.intervals, [100_000_000, 100_000_000, 2_000_000_000, 100_000_000, 0]);
        assert_eq!(
            (r.window, r.ipv4_prefix, r.ipv6_prefix, r.slip),
            (5_000_000_000, 32, 64, 2)
        );
        assert_eq!(
            (r.request_interval, r.table_size, r.report_only),
            (10_000_000, 5000, true)
        );
        // CoreDNS's defaults: nothing limited until an allowance is given.
        let d = parse_ok("a.test {\n rrl\n}\n").blocks[0].clone().rrl.unwrap();
        assert_eq!(
            (d.intervals, d.window, d.ipv4_prefix, d.ipv6_prefix),
            ([0; 5], 15_000_000_000, 24, 56)
        );
        assert_eq!((d.slip, d.table_size, d.report_only), (0, 100_000, false));
        for (src, want) in [
            ("a.test {\n rrl {\n  window 0\n }\n}\n", "window is from"),
            (
                "a.test {\n rrl {\n  slip-ratio 11\n }\n}\n",
                "slip-ratio is a whole number from 0 to 10",
            ),
            ("a.test {\n rrl {\n  ipv4-prefix-length 33\n }\n}\n", "from 1 to 32"),
            ("a.test {\n rrl {\n  responses-per-second -1\n }\n}\n", "from 0 to"),
            (
                "a.test {\n rrl {\n  responses-per-second many\n }\n}\n",
                "is not a number",
            ),
            ("a.test {\n rrl {\n  report-only yes\n }\n}\n", "takes no value"),
            ("a.test {\n rrl {\n  burst 5\n }\n}\n", "unknown rrl option \"burst\""),
            ("a.test {\n rrl other.test\n}\n", "other.test"),
            ("a.test {\n rrl\n rrl\n}\n", "only once"),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src:?}: {e}");
            assert!(e.starts_with("Corefile:"), "{e}");
        }
    }

    #[test]
    fn health_and_ready() {
        let c = parse_ok(
            "a.test {\n health :8090 {\n  lameduck 2s\n }\n ready\n}\nb.test {\n health 0.0.0.0:8090 {\n  lameduck 5s\n }\n ready localhost:9\n}\nc.test {\n health [::1]:7\n}\n",
        );
        let any: std::net::IpAddr = std::net::Ipv4Addr::UNSPECIFIED.into();
        let s = std::time::Duration::from_secs;
        // One endpoint per address; the longest lameduck of the blocks that share it.
        assert_eq!(
            c.health,
            vec![
                Health {
                    addr: (any, 8090).into(),
                    lameduck: s(5)
                },
                Health {
                    addr: "[::1]:7".parse().unwrap(),
                    lameduck: s(0)
                },
            ]
        );
        assert_eq!(c.ready, vec![(any, READY_PORT).into(), "127.0.0.1:9".parse().unwrap()]);
        assert_eq!(
            parse_ok("a.test {\n health\n}\n").health[0].addr,
            (any, HEALTH_PORT).into()
        );
        for (src, want) in [
            (
                "a.test {\n health 8080\n}\n",
                "Corefile:2:9: health: \"8080\" is not an address",
            ),
            ("a.test {\n health :x\n}\n", "is not an address"),
            ("a.test {\n ready :1 :2\n}\n", "ready takes at most one address"),
            ("a.test {\n ready :1 {\n  x\n }\n}\n", "ready"),
            ("a.test {\n health {\n  lameduck soon\n }\n}\n", "Corefile:3"),
            (
                "a.test {\n health {\n  grace 1s\n }\n}\n",
                "unknown health option \"grace\"",
            ),
            ("a.test {\n health\n health\n}\n", "health may be used only once"),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn hosts_file_and_log() {
        let c = parse_ok(
            "example.com:1053 {\n bind 127.0.0.1 ::1\n hosts /tmp/h example.com {\n  10.0.0.1 a.example.com b\n  ttl 60\n  no_reverse\n  fallthrough\n }\n file db.example.com\n log\n errors\n reload 10s\n}\n",
        );
        let b = &c.blocks[0];
        assert_eq!(b.keys[0].port, 1053);
        assert_eq!(b.bind.len(), 2);
        let h = b.hosts.as_ref().unwrap();
        assert_eq!((h.ttl, h.no_reverse, h.inline.len()), (60, true, 1));
        assert_eq!(h.fallthrough.as_deref(), Some(&[][..]));
        assert_eq!(b.files[0].zones[0].to_string(), "example.com");
        assert_eq!(b.log[0].format, COMMON_LOG_FORMAT);
        assert!(b.errors);
        assert_eq!(c.reload.unwrap().interval, std::time::Duration::from_secs(10));
    }

    #[test]
    fn unknown_directive_suggests() {
        let e = parse_err("example.com:53 {\n    hots\n}\n");
        let (head, supported) = e.split_once("; supported: ").unwrap();
        assert_eq!(
            head,
            "Corefile:2:5: unknown directive \"hots\" in server block \"dns://example.com.:53\" (did you mean \"hosts\"?): not a stock CoreDNS plugin (third-party plugins are not available in ringdns)"
        );
        assert_eq!(supported, directives::SUPPORTED.join(", "));
    }

    #[test]
    fn prometheus_addresses() {
        let c = parse_ok(
            "a.test {\n prometheus\n}\nb.test {\n prometheus localhost:9153 {\n  runtime_metrics\n }\n}\nc.test {\n prometheus :9253\n}\n",
        );
        assert_eq!(c.blocks[0].prometheus, Some(METRICS_ADDR));
        assert_eq!(c.blocks[1].prometheus, Some(METRICS_ADDR));
        assert_eq!(
            c.metrics,
            vec![METRICS_ADDR, (std::net::Ipv4Addr::UNSPECIFIED, 9253).into()]
        );
        for (src, want) in [
            (
                "a.test {\n prometheus 9153\n}\n",
                "Corefile:2:13: prometheus: \"9153\" is not an address",
            ),
            (
                "a.test {\n prometheus :1 :2\n}\n",
                "prometheus takes at most one address",
            ),
            (
                "a.test {\n prometheus {\n  port 1\n }\n}\n",
                "unknown prometheus option \"port\"",
            ),
            (
                "a.test {\n prometheus\n prometheus\n}\n",
                "prometheus may be used only once",
            ),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn small_plugins_forms_and_errors() {
        let c = parse_ok(
            "a.test {\n bufsize 1000\n cancel 2s\n nsid edge 1\n local {\n  localhost_prefix off\n }\n header {\n  response set ra aa\n  response clear aa\n  query set rd\n }\n dns64 64:ff9b:1::/48 {\n  translate_all\n }\n}\n",
        );
        let b = &c.blocks[0];
        assert_eq!(b.bufsize, Some(1000));
        assert_eq!(b.cancel, Some(std::time::Duration::from_secs(2)));
        assert_eq!(b.nsid.as_deref(), Some(&b"edge 1"[..]));
        assert_eq!(b.local, Some(false));
        let h = b.header.unwrap();
        assert_eq!(
            (h.response, h.query),
            ([Some(false), Some(true), None], [None, None, Some(true)]),
            "later rules win"
        );
        let d = b.dns64.unwrap();
        assert_eq!((d.prefix.1, d.translate_all, d.allow_ipv4), (48, true, false));
        let d = parse_ok("a.test {\n dns64\n bufsize\n cancel\n}\n").blocks[0].clone();
        assert_eq!(d.dns64.unwrap().prefix, ("64:ff9b::".parse().unwrap(), 96));
        assert_eq!(d.bufsize, Some(1232));
        assert_eq!(d.cancel, Some(std::time::Duration::from_millis(5001)));
        for (src, want) in [
            ("a.test {\n bufsize 100\n}\n", "from 512 to 4096"),
            ("a.test {\n bufsize 1 2\n}\n", "one size"),
            ("a.test {\n cancel 0s\n}\n", "above zero"),
            ("a.test {\n local {\n  localhost_prefix maybe\n }\n}\n", "on or off"),
            ("a.test {\n local {\n  other\n }\n}\n", "unknown local option"),
            ("a.test {\n header {\n  reply set aa\n }\n}\n", "unknown selector"),
            ("a.test {\n header {\n  query toggle rd\n }\n}\n", "unknown action"),
            ("a.test {\n header {\n  query set cd\n }\n}\n", "unknown flag"),
            ("a.test {\n header {\n  query set\n }\n}\n", "which flags"),
            ("a.test {\n header\n}\n", "at least one rule"),
            ("a.test {\n dns64 64:ff9b::/80\n}\n", "length 32, 40, 48, 56, 64 or 96"),
            ("a.test {\n dns64 2001:db8:0:0:ff00::/96\n}\n", "bits 64-71"),
            ("a.test {\n dns64 {\n  nat\n }\n}\n", "unknown dns64 option"),
            ("a.test {\n loadbalance weighted\n}\n", "needs a weight file"),
            (
                "a.test {\n loadbalance {\n  reload 5s\n }\n}\n",
                "reload is for a weighted",
            ),
            ("a.test {\n loadbalance {\n  prefer 10.0.0.1\n }\n}\n", "invalid CIDR"),
            (
                "a.test {\n loadbalance {\n  spread\n }\n}\n",
                "unknown loadbalance option",
            ),
            ("a.test {\n loadbalance random\n}\n", "unknown loadbalance policy"),
            ("a.test {\n loop now\n}\n", "loop takes no arguments"),
            ("a.test {\n chaos\n chaos\n}\n", "chaos may be used only once"),
            ("a.test {\n root\n}\n", "root"),
            ("a.test {\n auto\n}\n", "auto needs a directory"),
            (
                "a.test {\n auto {\n  directory /x (\n }\n}\n",
                "directory DIR [REGEXP ORIGIN_TEMPLATE]",
            ),
            ("a.test {\n auto {\n  directory /x ( {1}\n }\n}\n", "auto:"),
            (
                "a.test {\n auto {\n  upstream\n }\n}\n",
                "unknown auto option \"upstream\"",
            ),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn template_forms_and_errors() {
        let c = parse_ok(
            "example {\n template IN A {\n  match ^a[.] ^b[.]\n  answer \"{{ .Name }} 60 IN A 192.0.2.1\"\n  fallthrough\n }\n template ANY ANY {\n  rcode NXDOMAIN\n  ederror 15 why not\n }\n}\n",
        );
        let t = &c.blocks[0].templates;
        assert_eq!((t.len(), t[0].matches.len(), t[0].answer.len()), (2, 2, 1));
        assert_eq!(t[0].fallthrough, Some(Vec::new()));
        assert_eq!((t[1].class, t[1].qtype), (None, None));
        assert_eq!(t[1].ederror, Some((15, "why not".into())));
        for (src, want) in [
            ("a.test {\n template IN\n}\n", "needs CLASS and TYPE"),
            ("a.test {\n template XX A\n}\n", "not a class"),
            ("a.test {\n template IN NOPE\n}\n", "not a record type"),
            ("a.test {\n template IN A {\n  match (\n }\n}\n", "Corefile:3:9: match:"),
            (
                "a.test {\n template IN A {\n  answer \"{{ .Meta \\\"x\\\" }}\"\n }\n}\n",
                "not supported by ringdns's templates",
            ),
            ("a.test {\n template IN A {\n  var x 1\n }\n}\n", "expr language"),
            (
                "a.test {\n template IN A {\n  rcode MAYBE\n }\n}\n",
                "not a response code",
            ),
            (
                "a.test {\n template IN A {\n  ederror 99\n }\n}\n",
                "INFO-CODE from 0 to 24",
            ),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn acl_rules() {
        let c = parse_ok(
            "a.test {\n acl {\n  block type A AAAA net 10.0.0.0/8 2001:db8::/32\n  allow net *\n }\n acl b.a.test {\n  drop type *\n }\n}\n",
        );
        let acl = &c.blocks[0].acl;
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[0].policies[0].types.len(), 2);
        assert_eq!(acl[0].policies[0].nets.len(), 2);
        assert!(acl[0].policies[1].nets.is_empty(), "* is every source");
        assert_eq!(acl[1].zones[0].to_string(), "b.a.test");
        let ip = |s: &str| Some(s.parse::<std::net::IpAddr>().unwrap());
        let p = &acl[0].policies[0];
        assert!(p.matches(domain::base::iana::Rtype::A, ip("10.1.2.3")));
        assert!(
            p.matches(domain::base::iana::Rtype::A, ip("::ffff:10.1.2.3")),
            "mapped IPv4"
        );
        assert!(!p.matches(domain::base::iana::Rtype::MX, ip("10.1.2.3")));
        assert!(!p.matches(domain::base::iana::Rtype::A, ip("11.0.0.1")));
        assert!(!p.matches(domain::base::iana::Rtype::A, None));
        for (src, want) in [
            ("a.test {\n acl {\n  permit\n }\n}\n", "unknown acl action \"permit\""),
            (
                "a.test {\n acl {\n  block net 10.0.0.0/33\n }\n}\n",
                "not an IP address or CIDR",
            ),
            ("a.test {\n acl {\n  block type NOPE\n }\n}\n", "not a record type"),
            ("a.test {\n acl {\n  block 10.0.0.1\n }\n}\n", "expected type or net"),
            ("a.test {\n acl\n}\n", "at least one rule"),
            ("a.test {\n acl other.test {\n  block\n }\n}\n", "Corefile:2:6"),
        ] {
            let e = parse_err(src);
            assert!(e.contains(want), "{src:?}: {e}");
        }
    }

    #[test]
    fn pre_1x_log_and_errors_arguments() {
        let c = parse_ok("a.test {\n errors stdout\n log stdout\n}\n");
        assert!(c.blocks[0].errors);
        assert_eq!(c.blocks[0].log[0].names, vec![domain::base::Name::root_bytes()]);
        assert!(parse_err("a.test {\n errors /var/log/x\n}\n").contains("invalid log file"));
        assert!(parse_ok("a.test {\n errors {\n  stacktrace\n }\n}\n").blocks[0].errors);
        // `log stdout example.org` is two names, as in CoreDNS.
        assert_eq!(
            parse_ok("a.test {\n log stdout b.test\n}\n").blocks[0].log[0]
                .names
                .len(),
            2
        );
    }

    #[test]
    fn plugins_ringdns_will_not_have_are_named() {
        let e = parse_err(".:53 {\n errors\n kubernetes cluster.local {\n  pods insecure\n }\n}\n");
        assert!(
            e.starts_with("Corefile:3:2: plugin \"kubernetes\"") && e.ends_with("is not available in ringdns"),
            "{e}"
        );
        let e = parse_err(".:53 {\n alternate SERVFAIL . 1.1.1.1\n}\n");
        assert!(e.starts_with("Corefile:2:2: unknown directive \"alternate\""), "{e}");
        assert!(e.contains("third-party plugins are not available in ringdns"), "{e}");
    }

    #[test]
    fn later_directives_are_refused_not_ignored() {
        let e = parse_err(". {\n dnstap /tmp/x\n}\n");
        assert!(
            e.starts_with("Corefile:2:2: directive \"dnstap\"") && e.contains("not supported"),
            "{e}"
        );
    }

    #[test]
    fn bad_arguments_are_located() {
        assert!(parse_err("a.test {\n hosts {\n  ttl x\n }\n}\n").starts_with("Corefile:3:7:"));
        assert!(parse_err("a.test {\n file\n}\n").starts_with("Corefile:2:2:"));
        assert!(parse_err("a.test {\n file db other.test\n}\n").contains("neither inside nor above"));
        assert!(parse_err("a.test {\n bind nosuchif0\n}\n").contains("neither an IP address nor an interface"));
        assert!(parse_err("a.test {\n reload 1s\n}\n").contains("at least 2s"));
        assert!(parse_err("a.test {\n errors loud\n}\n").starts_with("Corefile:2:9:"));
    }

    /// Issue 11 B.9: as in CoreDNS, FROM is matched against the query name, so `forward .`
    /// in a block below the root forwards everything that reaches the block; a `file` or
    /// `hosts` zone above the block's zones serves what reaches it.
    #[test]
    fn plugin_zones_may_contain_the_block_zones() {
        let cfg = parse(
            "dn42 20.172.in-addr.arpa {\n forward . 192.0.2.53\n}\n",
            Path::new("Corefile"),
            LoadOptions::default(),
        )
        .expect("forward . below the root");
        assert!(cfg.blocks[0].forward.as_ref().is_some_and(|f| f.from.is_root()));
        assert!(
            parse(
                "sub.example.test {\n hosts {\n  192.0.2.1 a.sub.example.test\n }\n forward . 192.0.2.53\n}\n",
                Path::new("Corefile"),
                LoadOptions::default()
            )
            .is_ok()
        );
        assert!(parse_err("a.test {\n forward other.test 192.0.2.53\n}\n").contains("neither inside nor above"));
    }

    #[test]
    fn duplicate_keys_are_refused() {
        let e = parse_err("a.test:53 {\n}\nA.test.:53 {\n}\n");
        assert!(
            e.starts_with("Corefile:3:1:") && e.contains("already defined at Corefile:1:1"),
            "{e}"
        );
        // The same zone on different addresses is fine.
        parse_ok("a.test:53 {\n bind 127.0.0.1\n}\na.test:53 {\n bind 127.0.0.2\n}\n");
    }

    #[test]
    fn tls_blocks_parse_in_both_syntaxes() {
        let c = parse_ok(
            "tls://mydomain.com {\n tls acme {\n  domain *.mydomain.com\n  certpath /tmp/c\n  renew ratio 0.33\n }\n}\nhttps://. {\n tls {\n  acme ns1.mydomain.com\n  storage /tmp/s\n }\n}\n",
        );
        match &c.blocks[0].tls {
            Some(TlsConfig::Acme(a)) => {
                assert_eq!(a.domains, vec!["*.mydomain.com"]);
                assert_eq!(a.renew, RenewPolicy::Ratio(0.33));
            }
            other => panic!("{other:?}"),
        }
        match &c.blocks[1].tls {
            Some(TlsConfig::Acme(a)) => {
                assert_eq!(a.certpath.as_deref(), Some(Path::new("/tmp/s")))
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_err("tls://x.test {\n}\n").contains("needs a tls directive"));
        // A block on the listener of another that has a certificate shares it (CoreDNS).
        let c = parse_ok("tls://a.test {\n}\ntls://. {\n tls c.pem k.pem\n}\n");
        assert!(c.blocks[0].tls.is_none());
        assert!(parse_err("tls://a.test:8853 {\n}\ntls://. {\n tls c.pem k.pem\n}\n").starts_with("Corefile:1:1:"));
        assert!(
            parse_err("tls://x.test {\n tls acme {\n  storage /x\n }\n}\n")
                .contains("unknown tls acme option \"storage\"")
        );
        let ca = |v: &str| {
            let c = parse(
                &format!("tls://x.test {{\n tls acme {{\n  domain x.test\n  ca {v}\n }}\n}}\n"),
                Path::new("Corefile"),
                LoadOptions::default(),
            );
            c.map(|c| match &c.blocks[0].tls {
                Some(TlsConfig::Acme(a)) => a.ca.clone(),
                other => panic!("{other:?}"),
            })
            .map_err(|e| e.to_string())
        };
        assert_eq!(ca("localhost:14000/dir").unwrap(), "https://localhost:14000/dir");
        assert_eq!(ca("https://ca.test/dir").unwrap(), "https://ca.test/dir");
        assert!(ca("http://ca.test/dir").unwrap_err().contains("https://"));
    }

    #[test]
    fn dns_port_flag_sets_default_port() {
        let c = parse(
            "x.test {\n}\ntls://x.test {\n tls c k\n}\n",
            Path::new("C"),
            LoadOptions { dns_port: 1053 },
        )
        .unwrap();
        assert_eq!(c.blocks[0].keys[0].port, 1053);
        assert_eq!(c.blocks[1].keys[0].port, 853);
    }
}
