//! Interpretation of the directives of one server block.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use domain::base::Name;

use super::args::{check_inside_block, err, no_args, no_block, one_arg, zone_list};
use super::duration;
use super::error::ConfigError;
use super::lexer::Token;
use super::model::*;
use super::syntax::Line;
use crate::zone::name::parse_abs;

/// Directives this version implements.
pub const SUPPORTED: &[&str] = &[
    "acl",
    "acme_dns",
    "any",
    "auto",
    "bind",
    "bufsize",
    "cache",
    "cancel",
    "chaos",
    "cookies",
    "debug",
    "dns64",
    "dnssec",
    "errors",
    "file",
    "forward",
    "header",
    "health",
    "hosts",
    "loadbalance",
    "local",
    "log",
    "loop",
    "minimal",
    "nsid",
    "prometheus",
    "ready",
    "reload",
    "rewrite",
    "root",
    "rrl",
    "secondary",
    "shed",
    "sign",
    "template",
    "timeouts",
    "tls",
    "transfer",
    "tsig",
    "update",
    "whoami",
];

/// CoreDNS directives that ringdns knows of but does not implement yet.
const NOT_YET: &[&str] = &["dnstap", "etcd", "metadata", "trace", "view"];

/// CoreDNS plugins that ringdns will not have: back ends of other systems (Kubernetes,
/// cloud DNS services, Nomad, gRPC), Go's profiler, and plugins made for those.
const UNAVAILABLE: &[&str] = &[
    "autopath",
    "azure",
    "clouddns",
    "erratic",
    "geoip",
    "grpc",
    "k8s_external",
    "kubernetes",
    "multisocket",
    "nomad",
    "on",
    "pprof",
    "route53",
];

/// Default TTL of `hosts` records (CoreDNS: 3600).
const HOSTS_TTL: u32 = 3600;
/// Default `hosts` reload interval (CoreDNS: 5s).
const HOSTS_RELOAD: Duration = Duration::from_secs(5);
/// Default `file` reload interval (CoreDNS: 1m).
const FILE_RELOAD: Duration = Duration::from_secs(60);
/// Default `reload` interval and jitter (CoreDNS: 30s, 15s); the interval may not be below 2s.
const RELOAD_INTERVAL: Duration = Duration::from_secs(30);
const RELOAD_JITTER: Duration = Duration::from_secs(15);
const RELOAD_MIN: Duration = Duration::from_secs(2);
/// CoreDNS' `{common}` log format.
pub const COMMON_LOG_FORMAT: &str = "{remote}:{port} - {>id} \"{type} {class} {name} {proto} {size} {>do} {>bufsize}\" {rcode} {>rflags} {rsize} {duration}";

/// What one block's directives produce, besides the block itself.
pub struct BlockExtras {
    /// `reload` found in this block.
    pub reload: Option<Reload>,
    /// `health` found in this block.
    pub health: Option<Health>,
    /// `ready` found in this block.
    pub ready: Option<std::net::SocketAddr>,
    /// `root` found in this block.
    pub root: Option<PathBuf>,
    /// The shortest `auto` reload interval of this block: how often its folders are read.
    pub rescan: Option<Duration>,
    /// `cookies` found in this block.
    pub cookies: Option<super::cookies::CookiesConfig>,
}

/// Fills `block` from its lines.
pub fn apply(block: &mut ServerBlock, lines: &[Line]) -> Result<BlockExtras, ConfigError> {
    let extras = directives(block, lines)?;
    if let Some(root) = extras.root.clone() {
        rooted(block, &root);
    }
    if let Some(t) = &mut block.tsig {
        super::tsig::read_files(t)?;
    }
    if let Some(d) = &mut block.dnssec {
        super::dnssec::read_keys(d)?;
    }
    for s in &mut block.signs {
        super::sign::read_keys(s)?;
    }
    Ok(extras)
}

/// `root PATH`: the relative paths of `file` and `tls` are relative to PATH (the plugins
/// CoreDNS's `root` applies to that ringdns has), wherever `root` is in the block.
fn rooted(block: &mut ServerBlock, root: &std::path::Path) {
    let under = |p: &mut PathBuf| {
        if p.is_relative() {
            *p = root.join(&*p);
        }
    };
    for f in &mut block.files {
        under(&mut f.path);
    }
    if let Some((file, _)) = block.loadbalance.as_mut().and_then(|l| l.weighted.as_mut()) {
        under(file);
    }
    for (f, _) in block.tsig.iter_mut().flat_map(|t| &mut t.files) {
        under(f);
    }
    for (f, _) in block.dnssec.iter_mut().flat_map(|d| &mut d.key_files) {
        under(f);
    }
    for s in &mut block.signs {
        under(&mut s.dbfile);
        under(&mut s.directory);
        for (f, _) in s.key_files.iter_mut().chain(&mut s.key_dirs) {
            under(f);
        }
    }
    if let Some(u) = &mut block.update {
        under(&mut u.directory);
    }
    for a in &mut block.acme_dns {
        under(&mut a.directory);
    }
    for s in &mut block.secondaries {
        under(&mut s.directory);
        if let Some(t) = &mut s.tls {
            if let Some(ca) = &mut t.ca {
                under(ca);
            }
            if let Some((c, k)) = &mut t.client {
                under(c);
                under(k);
            }
        }
    }
    if let Some(TlsConfig::Files { cert, key, ca }) = &mut block.tls {
        under(cert);
        under(key);
        if let Some(ca) = ca {
            under(ca);
        }
    }
}

fn directives(block: &mut ServerBlock, lines: &[Line]) -> Result<BlockExtras, ConfigError> {
    let mut extras = BlockExtras {
        reload: None,
        health: None,
        ready: None,
        root: None,
        rescan: None,
        cookies: None,
    };
    let where_ = block.label();
    for line in lines {
        let name = line.name.text.as_str();
        match name {
            "bind" => bind(block, line)?,
            "hosts" => {
                if block.hosts.is_some() {
                    return Err(err(&line.name, "hosts may be used only once per server block"));
                }
                block.hosts = Some(hosts(block, line)?);
            }
            "file" => {
                let f = file(block, line)?;
                block.files.push(f);
            }
            "auto" => {
                let (files, reload) = auto(block, line)?;
                block.files.extend(files);
                if !reload.is_zero() {
                    extras.rescan = Some(extras.rescan.map_or(reload, |r| r.min(reload)));
                }
            }
            "log" => block.log.push(log(line)?),
            "errors" => {
                errors(line)?;
                block.errors = true;
            }
            "cookies" => {
                if extras.cookies.is_some() {
                    return Err(err(&line.name, "cookies may be used only once per server block"));
                }
                extras.cookies = Some(super::cookies::cookies(line)?);
            }
            "reload" => {
                if extras.reload.is_some() {
                    return Err(err(&line.name, "reload may be used only once per server block"));
                }
                extras.reload = Some(reload(line)?);
            }
            "health" => {
                if extras.health.is_some() {
                    return Err(err(&line.name, "health may be used only once per server block"));
                }
                extras.health = Some(health(line)?);
            }
            "ready" => {
                if extras.ready.is_some() {
                    return Err(err(&line.name, "ready may be used only once per server block"));
                }
                no_block(line)?;
                extras.ready = Some(probe_addr(line, READY_PORT)?);
            }
            "chaos" => {
                if block.chaos.is_some() {
                    return Err(err(&line.name, "chaos may be used only once per server block"));
                }
                no_block(line)?;
                block.chaos = Some(chaos(line));
            }
            "whoami" | "any" | "minimal" => {
                no_args(line)?;
                no_block(line)?;
                let flag = match name {
                    "whoami" => &mut block.whoami,
                    "any" => &mut block.any,
                    _ => &mut block.minimal,
                };
                if *flag {
                    return Err(err(
                        &line.name,
                        format!("{name} may be used only once per server block"),
                    ));
                }
                *flag = true;
            }
            "dns64" => {
                if block.dns64.is_some() {
                    return Err(err(&line.name, "dns64 may be used only once per server block"));
                }
                block.dns64 = Some(dns64(line)?);
            }
            "cancel" => {
                no_block(line)?;
                if block.cancel.is_some() {
                    return Err(err(&line.name, "cancel may be used only once per server block"));
                }
                // CoreDNS's default: 5001 ms, just past a client's usual 5 s.
                let d = match line.args.as_slice() {
                    [] => Duration::from_millis(5001),
                    [t] => duration::parse(&t.text).map_err(|e| err(t, e))?,
                    [_, extra, ..] => return Err(err(extra, "cancel takes one timeout")),
                };
                if d.is_zero() {
                    return Err(err(&line.name, "cancel: the timeout must be above zero"));
                }
                block.cancel = Some(d);
            }
            "local" => {
                no_args(line)?;
                if block.local.is_some() {
                    return Err(err(&line.name, "local may be used only once per server block"));
                }
                let mut prefix = true;
                for o in line.block.iter().flatten() {
                    match (o.name.text.as_str(), o.args.first().map(|t| t.text.as_str())) {
                        ("localhost_prefix", Some("on")) if o.args.len() == 1 => prefix = true,
                        ("localhost_prefix", Some("off")) if o.args.len() == 1 => prefix = false,
                        ("localhost_prefix", _) => return Err(err(&o.name, "localhost_prefix takes on or off")),
                        (other, _) => {
                            return Err(err(
                                &o.name,
                                format!("unknown local option {other:?} (accepted: localhost_prefix)"),
                            ));
                        }
                    }
                }
                block.local = Some(prefix);
            }
            "header" => {
                if block.header.is_some() {
                    return Err(err(&line.name, "header may be used only once per server block"));
                }
                no_args(line)?;
                block.header = Some(header(line)?);
            }
            "nsid" => {
                no_block(line)?;
                if block.nsid.is_some() {
                    return Err(err(&line.name, "nsid may be used only once per server block"));
                }
                // CoreDNS: the words joined by spaces; the host's name without any.
                let data = if line.args.is_empty() {
                    super::hostname()
                } else {
                    line.args.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ")
                };
                if data.len() > 512 {
                    return Err(err(&line.name, "nsid: at most 512 octets"));
                }
                block.nsid = Some(data.into_bytes());
            }
            "template" => {
                let t = template(block, line)?;
                block.templates.push(t);
            }
            "transfer" => {
                let t = transfer(block, line)?;
                block.transfers.push(t);
            }
            "dnssec" => {
                // CoreDNS: "This plugin can only be used once per Server Block."
                if block.dnssec.is_some() {
                    return Err(err(&line.name, "dnssec may be used only once per server block"));
                }
                block.dnssec = Some(super::dnssec::dnssec(block, line)?);
            }
            "sign" => {
                let s = super::sign::sign(block, line)?;
                block.signs.push(s);
            }
            "tsig" => {
                if block.tsig.is_some() {
                    return Err(err(&line.name, "tsig may be used only once per server block"));
                }
                block.tsig = Some(super::tsig::tsig(block, line)?);
            }
            "secondary" => {
                let sec = secondary(block, line)?;
                block.secondaries.push(sec);
            }
            "timeouts" => {
                no_args(line)?;
                if block.timeouts.is_some() {
                    return Err(err(&line.name, "timeouts may be used only once per server block"));
                }
                block.timeouts = Some(timeouts(line)?);
            }
            "rewrite" => {
                let rule = super::rewrite::rewrite(line)?;
                block.rewrites.push(rule);
            }
            "shed" => {
                no_args(line)?;
                no_block(line)?;
                if !block.keys.iter().all(|k| k.scheme == Scheme::Dns) {
                    return Err(err(
                        &line.name,
                        "shed acts on UDP only: it may be used in plain DNS server blocks, not tls:// or https:// ones",
                    ));
                }
                block.shed = true;
            }
            "acme_dns" => {
                let a = super::acme_dns::acme_dns(block, line)?;
                block.acme_dns.push(a);
            }
            "update" => {
                if block.update.is_some() {
                    return Err(err(&line.name, "update may be used only once per server block"));
                }
                block.update = Some(super::update::update(block, line)?);
            }
            "rrl" => {
                if block.rrl.is_some() {
                    return Err(err(&line.name, "rrl may be used only once per server block"));
                }
                block.rrl = Some(super::rrl::rrl(block, line)?);
            }
            "acl" => {
                let rule = acl(block, line)?;
                block.acl.push(rule);
            }
            "root" => {
                no_block(line)?;
                if extras.root.is_some() {
                    return Err(err(&line.name, "root may be used only once per server block"));
                }
                extras.root = Some(PathBuf::from(&one_arg(line, "a folder")?.text));
            }
            // ringdns never recovers from a panic (it ends the process, see shard), which
            // is what `debug` asks of CoreDNS; its debug log is `--log-level debug`.
            "debug" => {
                no_args(line)?;
                no_block(line)?;
            }
            "bufsize" => {
                no_block(line)?;
                if block.bufsize.is_some() {
                    return Err(err(&line.name, "bufsize may be used only once per server block"));
                }
                block.bufsize = Some(bufsize(line)?);
            }
            "loadbalance" => {
                if block.loadbalance.is_some() {
                    return Err(err(&line.name, "loadbalance may be used only once per server block"));
                }
                block.loadbalance = Some(loadbalance(line)?);
            }
            "loop" => {
                no_args(line)?;
                no_block(line)?;
                if block.loop_probe.is_some() {
                    return Err(err(&line.name, "loop may be used only once per server block"));
                }
                // Below the block's first zone, as CoreDNS's.
                block.loop_probe = Some(std::sync::Arc::new(LoopProbe::new(&block.keys[0].zone)));
            }
            "prometheus" => {
                if block.prometheus.is_some() {
                    return Err(err(&line.name, "prometheus may be used only once per server block"));
                }
                block.prometheus = Some(prometheus(line)?);
            }
            "forward" => {
                if block.forward.is_some() {
                    return Err(err(&line.name, "forward may be used only once per server block"));
                }
                block.forward = Some(super::forward::forward(block, line)?);
            }
            "cache" => {
                if block.cache.is_some() {
                    return Err(err(&line.name, "cache may be used only once per server block"));
                }
                block.cache = Some(super::forward::cache(block, line)?);
            }
            "tls" => {
                if block.tls.is_some() {
                    return Err(err(&line.name, "tls may be used only once per server block"));
                }
                block.tls = Some(tls(line)?);
            }
            _ if UNAVAILABLE.contains(&name) => {
                return Err(err(
                    &line.name,
                    format!("plugin {name:?} (server block {where_:?}) is not available in ringdns"),
                ));
            }
            _ if NOT_YET.contains(&name) => {
                return Err(err(
                    &line.name,
                    format!(
                        "directive {name:?} in server block {where_:?} is not supported by this version of ringdns (supported: {})",
                        SUPPORTED.join(", ")
                    ),
                ));
            }
            _ => {
                let hint = suggest(name)
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                return Err(err(
                    &line.name,
                    format!(
                        "unknown directive {name:?} in server block {where_:?}{hint}: not a stock CoreDNS plugin (third-party plugins are not available in ringdns); supported: {}",
                        SUPPORTED.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(extras)
}

/// The closest supported or known directive, if it is close enough to be a typo.
fn suggest(name: &str) -> Option<&'static str> {
    SUPPORTED
        .iter()
        .chain(NOT_YET)
        .map(|c| (edit_distance(name, c), *c))
        .filter(|(d, c)| *d <= 2 && *d < c.len())
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn bind(block: &mut ServerBlock, line: &Line) -> Result<(), ConfigError> {
    if line.args.is_empty() {
        return Err(err(&line.name, "bind needs at least one address or interface name"));
    }
    let mut except = Vec::new();
    if let Some(opts) = &line.block {
        for o in opts {
            match o.name.text.as_str() {
                "except" if !o.args.is_empty() => {
                    for a in &o.args {
                        except.extend(resolve_bind(a)?);
                    }
                }
                "except" => return Err(err(&o.name, "except needs at least one address")),
                other => {
                    return Err(err(
                        &o.name,
                        format!("unknown bind option {other:?} (accepted: except)"),
                    ));
                }
            }
        }
    }
    for a in &line.args {
        for ip in resolve_bind(a)? {
            if !except.contains(&ip) && !block.bind.contains(&ip) {
                block.bind.push(ip);
            }
        }
    }
    if block.bind.is_empty() {
        return Err(err(&line.name, "bind leaves no address to listen on after except"));
    }
    Ok(())
}

/// An IP address, or every address of a network interface.
fn resolve_bind(tok: &Token) -> Result<Vec<IpAddr>, ConfigError> {
    if let Ok(ip) = tok.text.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let ifaces = if_addrs::get_if_addrs().map_err(|e| err(tok, format!("cannot list network interfaces: {e}")))?;
    let ips: Vec<IpAddr> = ifaces.iter().filter(|i| i.name == tok.text).map(|i| i.ip()).collect();
    if ips.is_empty() {
        let mut names: Vec<_> = ifaces.iter().map(|i| i.name.clone()).collect();
        names.sort();
        names.dedup();
        return Err(err(
            tok,
            format!(
                "{:?} is neither an IP address nor an interface name (interfaces: {})",
                tok.text,
                names.join(", ")
            ),
        ));
    }
    Ok(ips)
}

fn hosts(block: &ServerBlock, line: &Line) -> Result<HostsConfig, ConfigError> {
    let (file, file_explicit) = match line.args.first() {
        Some(f) => (PathBuf::from(&f.text), true),
        None => (PathBuf::from("/etc/hosts"), false),
    };
    let zone_toks = line.args.get(1..).unwrap_or(&[]);
    let zones = if zone_toks.is_empty() {
        block.zones()
    } else {
        let z = zone_list(zone_toks)?;
        check_inside_block(block, zone_toks, &z)?;
        z
    };
    let mut cfg = HostsConfig {
        pos: line.pos().clone(),
        file,
        file_explicit,
        zones,
        inline: Vec::new(),
        ttl: HOSTS_TTL,
        reload: HOSTS_RELOAD,
        no_reverse: false,
        fallthrough: None,
    };
    for o in line.block.iter().flatten() {
        let name = o.name.text.as_str();
        match name {
            "ttl" => {
                let t = one_arg(o, "a TTL in seconds")?;
                cfg.ttl = t
                    .text
                    .parse::<u32>()
                    .ok()
                    .filter(|v| (1..=i32::MAX as u32).contains(v))
                    .ok_or_else(|| {
                        err(
                            t,
                            format!("ttl {:?} is not a number of seconds from 1 to 2147483647", t.text),
                        )
                    })?;
            }
            "reload" => {
                let t = one_arg(o, "a duration (0 disables)")?;
                cfg.reload = duration::parse(&t.text).map_err(|e| err(t, e))?;
            }
            "no_reverse" => {
                no_args(o)?;
                cfg.no_reverse = true;
            }
            "fallthrough" => cfg.fallthrough = Some(zone_list(&o.args)?),
            _ if name.parse::<IpAddr>().is_ok() || name.contains(':') => {
                if o.block.is_some() {
                    return Err(err(&o.name, "a hosts entry takes no { } block"));
                }
                if o.args.is_empty() {
                    return Err(err(&o.name, "a hosts entry needs at least one name after the address"));
                }
                let mut toks = vec![o.name.text.clone()];
                toks.extend(o.args.iter().map(|t| t.text.clone()));
                cfg.inline.push((o.pos().clone(), toks));
            }
            _ => {
                return Err(err(
                    &o.name,
                    format!(
                        "unknown hosts option {name:?} (accepted: an \"IP NAME...\" entry, ttl, reload, no_reverse, fallthrough)"
                    ),
                ));
            }
        }
    }
    Ok(cfg)
}

fn file(block: &ServerBlock, line: &Line) -> Result<FileConfig, ConfigError> {
    let path = line
        .args
        .first()
        .ok_or_else(|| err(&line.name, "file needs a zone file path: file DBFILE [ZONES...]"))?;
    let zone_toks = &line.args[1..];
    let zones = if zone_toks.is_empty() {
        block.zones()
    } else {
        let z = zone_list(zone_toks)?;
        check_inside_block(block, zone_toks, &z)?;
        z
    };
    let mut cfg = FileConfig {
        pos: line.pos().clone(),
        path: PathBuf::from(&path.text),
        zones,
        reload: FILE_RELOAD,
    };
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "reload" => {
                let t = one_arg(o, "a duration (0 disables)")?;
                cfg.reload = duration::parse(&t.text).map_err(|e| err(t, e))?;
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown file option {other:?} (accepted: reload)"),
                ));
            }
        }
    }
    Ok(cfg)
}

/// `auto [ZONES...] { directory DIR [REGEXP ORIGIN_TEMPLATE]; reload DURATION }`: a `file`
/// for every file in DIR whose name REGEXP (default `db\.(.*)`) matches, as the zone
/// ORIGIN_TEMPLATE (default `{1}`, the first group) names, when that zone is in ZONES (the
/// block's by default). The folder is read when the Corefile is, and again every DURATION
/// (default 60 s, 0: never) through the Corefile's fingerprint, so zones that appear or go
/// are picked up. A folder that does not exist serves nothing, as in CoreDNS.
fn auto(block: &ServerBlock, line: &Line) -> Result<(Vec<FileConfig>, Duration), ConfigError> {
    let zone_toks = &line.args[..];
    let zones = if zone_toks.is_empty() {
        block.zones()
    } else {
        let z = zone_list(zone_toks)?;
        check_inside_block(block, zone_toks, &z)?;
        z
    };
    let mut dir: Option<PathBuf> = None;
    let mut re = regex::Regex::new(r"db\.(.*)").map_err(|e| err(&line.name, e.to_string()))?;
    let mut template = "{1}".to_string();
    let mut reload = FILE_RELOAD;
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "directory" => match o.args.as_slice() {
                [d] => dir = Some(PathBuf::from(&d.text)),
                [d, r, t] => {
                    dir = Some(PathBuf::from(&d.text));
                    re = regex::Regex::new(&r.text).map_err(|e| err(r, format!("auto: {e}")))?;
                    template = t.text.clone();
                }
                _ => return Err(err(&o.name, "directory DIR [REGEXP ORIGIN_TEMPLATE]")),
            },
            "reload" => {
                let t = one_arg(o, "a duration (0 disables)")?;
                reload = duration::parse(&t.text).map_err(|e| err(t, e))?;
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown auto option {other:?} (accepted: directory, reload)"),
                ));
            }
        }
    }
    let dir = dir.ok_or_else(|| err(&line.name, "auto needs a directory"))?;
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let mut files = Vec::new();
    for name in names {
        let Some(c) = re.captures(&name) else { continue };
        let mut origin = template.clone();
        for i in (1..c.len()).rev() {
            origin = origin.replace(&format!("{{{i}}}"), c.get(i).map_or("", |m| m.as_str()));
        }
        let Ok(zone) = parse_abs(&origin) else { continue };
        if !zones.iter().any(|z| zone.ends_with(z)) {
            continue;
        }
        files.push(FileConfig {
            pos: line.pos().clone(),
            path: dir.join(&name),
            zones: vec![zone],
            reload,
        });
    }
    Ok((files, reload))
}

/// The names of the folder of each `auto` in `lines`, sorted: the Corefile's fingerprint
/// includes them, so a zone file that appears or goes is a change.
pub fn auto_listing(lines: &[Line]) -> Vec<String> {
    let mut out = Vec::new();
    for l in lines.iter().filter(|l| l.name.text == "auto") {
        for o in l.block.iter().flatten().filter(|o| o.name.text == "directory") {
            if let Some(d) = o.args.first() {
                if let Ok(rd) = std::fs::read_dir(&d.text) {
                    let mut names: Vec<String> = rd.filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
                    names.sort();
                    out.extend(names);
                }
            }
        }
    }
    out
}

/// `errors [stdout] { stacktrace }`: `stdout` is the pre-1.x log file argument, the only
/// one CoreDNS still accepts (ringdns logs to stderr); `stacktrace` (Go panics) changes
/// nothing here.
fn errors(line: &Line) -> Result<(), ConfigError> {
    match line.args.as_slice() {
        [] => {}
        [t] if t.text == "stdout" => {}
        [t] => return Err(err(t, format!("errors: invalid log file {:?} (only stdout)", t.text))),
        [_, extra, ..] => return Err(err(extra, "errors takes at most one argument (stdout)")),
    }
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "stacktrace" => no_args(o)?,
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown errors option {other:?} (accepted: stacktrace)"),
                ));
            }
        }
    }
    Ok(())
}

/// `log [NAMES...] [FORMAT] { class CLASSES... }`. A lone `stdout` is the pre-1.x file
/// argument (`log stdout`): all names are logged. (CoreDNS takes it as the name `stdout.`
/// and so logs nothing, which is not what anyone writing it wants.)
fn log(line: &Line) -> Result<LogRule, ConfigError> {
    let mut args: &[Token] = &line.args;
    if matches!(args, [t] if t.text == "stdout") {
        args = &[];
    }
    let mut format = COMMON_LOG_FORMAT.to_string();
    if let Some(last) = args.last() {
        if last.text.contains('{') {
            format = match last.text.as_str() {
                "{common}" => COMMON_LOG_FORMAT.to_string(),
                "{combined}" => format!("{COMMON_LOG_FORMAT} \"{{>opcode}}\""),
                f => f.to_string(),
            };
            args = &args[..args.len() - 1];
        }
    }
    let names = if args.is_empty() {
        vec![Name::root_bytes()]
    } else {
        zone_list(args)?
    };
    let mut classes = LogClasses::ALL;
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "class" if !o.args.is_empty() => {
                classes = LogClasses::default();
                for c in &o.args {
                    match c.text.as_str() {
                        "all" => classes = LogClasses::ALL,
                        "success" => classes.success = true,
                        "denial" => classes.denial = true,
                        "error" => classes.error = true,
                        other => {
                            return Err(err(
                                c,
                                format!("unknown log class {other:?} (accepted: all, success, denial, error)"),
                            ));
                        }
                    }
                }
            }
            "class" => {
                return Err(err(&o.name, "class needs at least one of: all, success, denial, error"));
            }
            other => {
                return Err(err(&o.name, format!("unknown log option {other:?} (accepted: class)")));
            }
        }
    }
    Ok(LogRule { names, format, classes })
}

/// `health [ADDRESS] { lameduck DURATION }` (CoreDNS's health plugin).
fn health(line: &Line) -> Result<Health, ConfigError> {
    let mut h = Health {
        addr: probe_addr(line, HEALTH_PORT)?,
        lameduck: Duration::ZERO,
    };
    for opt in line.block.iter().flatten() {
        match opt.name.text.as_str() {
            "lameduck" => {
                let t = one_arg(opt, "a duration")?;
                h.lameduck = duration::parse(&t.text).map_err(|e| err(t, e))?;
            }
            other => {
                return Err(err(
                    &opt.name,
                    format!("unknown health option {other:?}; supported: lameduck"),
                ));
            }
        }
    }
    Ok(h)
}

/// `chaos [VERSION] [AUTHORS...]`: VERSION defaults to `ringdns-<version>` (CoreDNS says
/// `CoreDNS-<version>`), AUTHORS to ringdns's authors.
fn chaos(line: &Line) -> ChaosConfig {
    let mut args = line.args.iter().map(|t| t.text.clone());
    ChaosConfig {
        version: args
            .next()
            .unwrap_or_else(|| format!("ringdns-{}", env!("CARGO_PKG_VERSION"))),
        authors: {
            let a: Vec<String> = args.collect();
            if a.is_empty() {
                vec!["ringdns developers".to_string()]
            } else {
                a
            }
        },
    }
}

/// `template CLASS TYPE [ZONES...] { ... }`. CoreDNS's `var` and `expr` (the expr
/// language) are not in ringdns yet and say so.
fn template(block: &ServerBlock, line: &Line) -> Result<TemplateConfig, ConfigError> {
    use super::template::RecordTemplate;
    use domain::base::iana::{Class, Rcode, Rtype};
    let (Some(class_t), Some(type_t)) = (line.args.first(), line.args.get(1)) else {
        return Err(err(
            &line.name,
            "template needs CLASS and TYPE (for example: template IN A)",
        ));
    };
    let class = match class_t.text.to_ascii_uppercase().as_str() {
        "ANY" => None,
        c => Some(
            c.parse::<Class>()
                .map_err(|_| err(class_t, format!("template: {:?} is not a class", class_t.text)))?,
        ),
    };
    let qtype = match type_t.text.to_ascii_uppercase().as_str() {
        "ANY" => None,
        t => Some(
            t.parse::<Rtype>()
                .map_err(|_| err(type_t, format!("template: {:?} is not a record type", type_t.text)))?,
        ),
    };
    let zone_toks = &line.args[2..];
    let zones = if zone_toks.is_empty() {
        block.zones()
    } else {
        let z = zone_list(zone_toks)?;
        check_inside_block(block, zone_toks, &z)?;
        z
    };
    let mut t = TemplateConfig {
        pos: line.pos().clone(),
        class,
        qtype,
        zones,
        matches: Vec::new(),
        answer: Vec::new(),
        additional: Vec::new(),
        authority: Vec::new(),
        rcode: Rcode::NOERROR,
        ederror: None,
        fallthrough: None,
    };
    for o in line.block.iter().flatten() {
        let name = o.name.text.as_str();
        match name {
            "match" => {
                if o.args.is_empty() {
                    return Err(err(&o.name, "match needs at least one regex"));
                }
                for r in &o.args {
                    if r.text.len() > 10_000 {
                        return Err(err(r, "match: a regex may have at most 10000 characters"));
                    }
                    t.matches
                        .push(regex::Regex::new(&r.text).map_err(|e| err(r, format!("match: {e}")))?);
                }
            }
            "answer" | "additional" | "authority" => {
                let rr = one_arg(o, "a record in zone file syntax (quoted)")?;
                let parsed = RecordTemplate::parse(&rr.text).map_err(|e| err(rr, e))?;
                match name {
                    "answer" => t.answer.push(parsed),
                    "additional" => t.additional.push(parsed),
                    _ => t.authority.push(parsed),
                }
            }
            "rcode" => {
                let c = one_arg(o, "a response code")?;
                t.rcode = match c.text.to_ascii_uppercase().as_str() {
                    "NOERROR" => Rcode::NOERROR,
                    "FORMERR" => Rcode::FORMERR,
                    "SERVFAIL" => Rcode::SERVFAIL,
                    "NXDOMAIN" => Rcode::NXDOMAIN,
                    "NOTIMP" => Rcode::NOTIMP,
                    "REFUSED" => Rcode::REFUSED,
                    "YXDOMAIN" => Rcode::YXDOMAIN,
                    "YXRRSET" => Rcode::YXRRSET,
                    "NXRRSET" => Rcode::NXRRSET,
                    "NOTAUTH" => Rcode::NOTAUTH,
                    "NOTZONE" => Rcode::NOTZONE,
                    other => return Err(err(c, format!("rcode: {other:?} is not a response code"))),
                };
            }
            "ederror" => {
                let Some(code) = o.args.first() else {
                    return Err(err(&o.name, "ederror needs an INFO-CODE (0 to 24)"));
                };
                let n = code
                    .text
                    .parse::<u16>()
                    .ok()
                    .filter(|n| *n <= 24)
                    .ok_or_else(|| err(code, "ederror: an INFO-CODE from 0 to 24 (RFC 8914)"))?;
                let reason = o.args[1..]
                    .iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ");
                t.ederror = Some((n, reason));
            }
            "fallthrough" => t.fallthrough = Some(zone_list(&o.args)?),
            "var" | "expr" => {
                return Err(err(
                    &o.name,
                    format!("template {name} (the expr language) is not supported by this version of ringdns"),
                ));
            }
            other => {
                return Err(err(
                    &o.name,
                    format!(
                        "unknown template option {other:?} (accepted: match, answer, additional, authority, rcode, ederror, fallthrough)"
                    ),
                ));
            }
        }
    }
    Ok(t)
}

/// `header { SELECTOR ACTION FLAGS... }`: SELECTOR `query` or `response`, ACTION `set` or
/// `clear`, FLAGS of `aa`, `ra`, `rd`; later rules win.
fn header(line: &Line) -> Result<HeaderRules, ConfigError> {
    let mut rules = HeaderRules::default();
    let mut any = false;
    for o in line.block.iter().flatten() {
        let flags = match o.name.text.as_str() {
            "query" => &mut rules.query,
            "response" => &mut rules.response,
            other => {
                return Err(err(
                    &o.name,
                    format!("header: unknown selector {other:?} (accepted: query, response)"),
                ));
            }
        };
        let (Some(action), rest) = (o.args.first(), o.args.get(1..).unwrap_or(&[])) else {
            return Err(err(&o.name, "header: a selector needs set or clear and flags"));
        };
        let value = match action.text.as_str() {
            "set" => true,
            "clear" => false,
            other => {
                return Err(err(
                    action,
                    format!("header: unknown action {other:?} (accepted: set, clear)"),
                ));
            }
        };
        if rest.is_empty() {
            return Err(err(action, "header: which flags? (aa, ra, rd)"));
        }
        for f in rest {
            let i = match f.text.as_str() {
                "aa" => 0,
                "ra" => 1,
                "rd" => 2,
                other => return Err(err(f, format!("header: unknown flag {other:?} (accepted: aa, ra, rd)"))),
            };
            flags[i] = Some(value);
        }
        any = true;
    }
    if !any {
        return Err(err(&line.name, "header needs at least one rule"));
    }
    Ok(rules)
}

/// `acl [ZONES...] { ACTION [type QTYPE...] [net SOURCE...] }`; `*` for all types or all
/// sources.
fn acl(block: &ServerBlock, line: &Line) -> Result<AclRule, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let mut policies = Vec::new();
    for o in line.block.iter().flatten() {
        let action = match o.name.text.as_str() {
            "allow" => AclAction::Allow,
            "block" => AclAction::Block,
            "filter" => AclAction::Filter,
            "drop" => AclAction::Drop,
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown acl action {other:?} (accepted: allow, block, filter, drop)"),
                ));
            }
        };
        let mut p = AclPolicy {
            action,
            types: Vec::new(),
            nets: Vec::new(),
        };
        let mut section: Option<&str> = None;
        let (mut any_type, mut any_net) = (false, false);
        for t in &o.args {
            match (t.text.as_str(), section) {
                ("type", _) => section = Some("type"),
                ("net", _) => section = Some("net"),
                ("*", Some("type")) => any_type = true,
                ("*", Some("net")) => any_net = true,
                (v, Some("type")) => p.types.push(
                    v.parse::<domain::base::iana::Rtype>()
                        .map_err(|_| err(t, format!("acl: {v:?} is not a record type")))?,
                ),
                (v, Some("net")) => p
                    .nets
                    .push(acl_net(v).ok_or_else(|| err(t, format!("acl: {v:?} is not an IP address or CIDR prefix")))?),
                (v, _) => return Err(err(t, format!("acl: {v:?}: expected type or net"))),
            }
        }
        if any_type {
            p.types.clear();
        }
        if any_net {
            p.nets.clear();
        }
        policies.push(p);
    }
    if policies.is_empty() {
        return Err(err(
            &line.name,
            "acl needs at least one rule: allow, block, filter or drop",
        ));
    }
    Ok(AclRule { zones, policies })
}

/// `IP` or `IP/LEN`.
pub(super) fn net(v: &str) -> Option<(IpAddr, u8)> {
    acl_net(v)
}

/// `IP` or `IP/LEN`.
fn acl_net(v: &str) -> Option<(IpAddr, u8)> {
    let (ip, len) = match v.split_once('/') {
        Some((ip, len)) => (ip.parse::<IpAddr>().ok()?, len.parse::<u8>().ok()?),
        None => {
            let ip = v.parse::<IpAddr>().ok()?;
            (ip, if ip.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((ip, len))
}

/// `dns64 [PREFIX] { prefix PREFIX; translate_all; allow_ipv4 }`; PREFIX defaults to the
/// well-known 64:ff9b::/96 (RFC 6052 §2.1).
fn dns64(line: &Line) -> Result<Dns64Config, ConfigError> {
    let parse = |t: &Token| -> Result<(std::net::Ipv6Addr, u8), ConfigError> {
        let bad = || {
            err(
                t,
                format!(
                    "dns64: {:?} is not an IPv6 prefix of length 32, 40, 48, 56, 64 or 96",
                    t.text
                ),
            )
        };
        let (ip, len) = t.text.split_once('/').ok_or_else(bad)?;
        let ip: std::net::Ipv6Addr = ip.parse().map_err(|_| bad())?;
        let len: u8 = len.parse().map_err(|_| bad())?;
        if ![32, 40, 48, 56, 64, 96].contains(&len) {
            return Err(bad());
        }
        // RFC 6052 §2.2: bits 64 to 71 of the address must be zero.
        if len >= 72 && ip.octets()[8] != 0 {
            return Err(err(t, "dns64: bits 64-71 of the prefix must be zero (RFC 6052 §2.2)"));
        }
        Ok((ip, len))
    };
    let mut cfg = Dns64Config {
        prefix: ("64:ff9b::".parse().unwrap_or(std::net::Ipv6Addr::UNSPECIFIED), 96),
        translate_all: false,
        allow_ipv4: false,
    };
    match line.args.as_slice() {
        [] => {}
        [t] => cfg.prefix = parse(t)?,
        [_, extra, ..] => return Err(err(extra, "dns64 takes one prefix")),
    }
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "prefix" => cfg.prefix = parse(one_arg(o, "an IPv6 prefix")?)?,
            "translate_all" => {
                no_args(o)?;
                cfg.translate_all = true;
            }
            "allow_ipv4" => {
                no_args(o)?;
                cfg.allow_ipv4 = true;
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown dns64 option {other:?} (accepted: prefix, translate_all, allow_ipv4)"),
                ));
            }
        }
    }
    Ok(cfg)
}

/// `bufsize [SIZE]`: 512 to 4096, default 1232 (CoreDNS's).
fn bufsize(line: &Line) -> Result<u16, ConfigError> {
    let Some(t) = line.args.first() else {
        return Ok(1232);
    };
    if let Some(extra) = line.args.get(1) {
        return Err(err(extra, "bufsize takes one size"));
    }
    t.text
        .parse::<u16>()
        .ok()
        .filter(|n| (512..=4096).contains(n))
        .ok_or_else(|| err(t, format!("bufsize: {:?} is not a size from 512 to 4096", t.text)))
}

/// `loadbalance [round_robin]`; CoreDNS's `weighted WEIGHTFILE` and `prefer CIDR...` are
/// not in ringdns yet and say so.
/// `secondary [ZONES...] { transfer from ADDR[:PORT]...; catalog [MEMBER-ZONES...];
/// fallthrough [ZONES...]; directory DIR; tls...; tls_servername NAME }`. `transfer from`
/// may be repeated; at least one primary is needed (CoreDNS accepts none and serves
/// nothing).
fn secondary(block: &ServerBlock, line: &Line) -> Result<SecondaryConfig, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let mut from = Vec::new();
    let mut directory = crate::storage::default_zone_root();
    let (mut servername, mut ca, mut client) = (None, None, None);
    let mut fallthrough = None;
    let mut catalog = None;
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "transfer" => {
                let Some((_, addrs)) = o.args.split_first().filter(|(d, a)| d.text == "from" && !a.is_empty()) else {
                    return Err(err(&o.name, "secondary: transfer from ADDRESS..."));
                };
                for a in addrs {
                    from.push(match a.text.strip_prefix("tls://") {
                        Some(rest) => Primary {
                            addr: primary_addr_with(a, rest, 853)?,
                            tls: true,
                        },
                        None => Primary {
                            addr: primary_addr(a)?,
                            tls: false,
                        },
                    });
                }
            }
            "directory" => directory = PathBuf::from(&one_arg(o, "a folder")?.text),
            "tls_servername" => {
                let t = one_arg(o, "a host name")?;
                parse_abs(&t.text).map_err(|e| err(t, e))?;
                servername = Some(t.text.trim_end_matches('.').to_string());
            }
            "tls" => match o.args.as_slice() {
                [] => {}
                [c] => ca = Some(PathBuf::from(&c.text)),
                [c, k] => client = Some((PathBuf::from(&c.text), PathBuf::from(&k.text))),
                [c, k, a] => {
                    client = Some((PathBuf::from(&c.text), PathBuf::from(&k.text)));
                    ca = Some(PathBuf::from(&a.text));
                }
                [.., extra] => return Err(err(extra, "tls takes at most CERT KEY CA")),
            },
            "fallthrough" => {
                let z = zone_list(&o.args)?;
                check_inside_block(block, &o.args, &z)?;
                fallthrough = Some(z);
            }
            "catalog" => {
                // Member zones may lie anywhere (they are routed to this block): no check
                // against the block's zones.
                catalog = Some(zone_list(&o.args)?);
            }
            other => {
                return Err(err(
                    &o.name,
                    format!(
                        "unknown secondary option {other:?} (accepted: transfer from, catalog, fallthrough, directory, tls, tls_servername)"
                    ),
                ));
            }
        }
    }
    if from.is_empty() {
        return Err(err(
            &line.name,
            "secondary needs a primary: secondary { transfer from ADDRESS }",
        ));
    }
    let tls = match servername {
        Some(servername) => Some(SecondaryTls { servername, ca, client }),
        None if from.iter().any(|p| p.tls) => {
            return Err(err(
                &line.name,
                "secondary: a tls:// primary needs tls_servername NAME (its certificate is checked against it)",
            ));
        }
        None => None,
    };
    Ok(SecondaryConfig {
        pos: line.pos().clone(),
        zones,
        from,
        tls,
        fallthrough,
        directory,
        catalog,
    })
}

/// `transfer [ZONES...] { to ADDRESS|CIDR|*...; source ADDRESS }` (`to` may repeat; `source`
/// is where NOTIFYs leave from).
fn transfer(block: &ServerBlock, line: &Line) -> Result<TransferConfig, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let mut to = Vec::new();
    let mut source = None;
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "to" => {
                if o.args.is_empty() {
                    return Err(err(&o.name, "transfer: to ADDRESS... (or * for everyone)"));
                }
                for a in &o.args {
                    to.push(if a.text == "*" {
                        TransferPeer::Any
                    } else if a.text.contains('/') {
                        let (ip, len) = acl_net(&a.text)
                            .ok_or_else(|| err(a, format!("transfer: {:?} is not a CIDR prefix", a.text)))?;
                        TransferPeer::Net(ip, len)
                    } else {
                        TransferPeer::Host(primary_addr(a).map_err(|_| {
                            err(
                                a,
                                format!("transfer: {:?} is not an address, a CIDR prefix or *", a.text),
                            )
                        })?)
                    });
                }
            }
            "source" => {
                let a = one_arg(o, "an address")?;
                source = Some(
                    a.text
                        .parse::<IpAddr>()
                        .map_err(|_| err(a, format!("transfer source: {:?} is not an IP address", a.text)))?,
                );
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown transfer option {other:?} (accepted: to, source)"),
                ));
            }
        }
    }
    if to.is_empty() {
        return Err(err(&line.name, "transfer needs to: transfer { to ADDRESS... }"));
    }
    Ok(TransferConfig {
        pos: line.pos().clone(),
        zones,
        to,
        source,
    })
}

/// A primary's `IP[:PORT]` (53 by default; `[v6]:port` for IPv6 with a port).
fn primary_addr(t: &Token) -> Result<std::net::SocketAddr, ConfigError> {
    primary_addr_with(t, t.text.strip_prefix("dns://").unwrap_or(&t.text), 53)
}

/// `text` as `IP[:PORT]`, `port` when it has none.
fn primary_addr_with(t: &Token, text: &str, port: u16) -> Result<std::net::SocketAddr, ConfigError> {
    if let Ok(a) = text.parse::<std::net::SocketAddr>() {
        return Ok(a);
    }
    text.parse::<IpAddr>()
        .map(|ip| std::net::SocketAddr::new(ip, port))
        .map_err(|_| err(t, format!("secondary: {:?} is not an IP address or IP:PORT", t.text)))
}

/// `timeouts { read D; write D; idle D; maxtcpqueries N }`: each between 1 s and 24 h as
/// CoreDNS checks; `maxtcpqueries` positive or -1 (no limit); at least one option.
fn timeouts(line: &Line) -> Result<Timeouts, ConfigError> {
    let mut t = Timeouts::default();
    let mut any = false;
    for o in line.block.iter().flatten() {
        let name = o.name.text.as_str();
        let [v] = o.args.as_slice() else {
            return Err(err(&o.name, format!("timeouts {name} takes one value")));
        };
        if name == "maxtcpqueries" {
            let n: i64 = v
                .text
                .parse()
                .map_err(|_| err(v, format!("timeouts maxtcpqueries: {:?} is not a number", v.text)))?;
            t.max_tcp_queries = Some(match n {
                -1 => None,
                1.. => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                _ => return Err(err(v, "timeouts maxtcpqueries: -1 (no limit) or a positive number")),
            });
            any = true;
            continue;
        }
        let d = duration::parse(&v.text).map_err(|e| err(v, e))?;
        if !(Duration::from_secs(1)..=Duration::from_secs(24 * 3600)).contains(&d) {
            return Err(err(v, format!("timeouts {name}: between 1 second and 24 hours")));
        }
        let slot = match name {
            "read" => &mut t.read,
            "write" => &mut t.write,
            "idle" => &mut t.idle,
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown timeouts option {other:?} (accepted: read, write, idle, maxtcpqueries)"),
                ));
            }
        };
        *slot = Some(d);
        any = true;
    }
    if !any {
        return Err(err(
            &line.name,
            "timeouts needs at least one of read, write, idle, maxtcpqueries",
        ));
    }
    Ok(t)
}

/// `loadbalance [round_robin | weighted WEIGHTFILE] { reload D; prefer CIDR... }`. CoreDNS
/// reads `prefer` only without `weighted` (its weighted block takes `reload` alone);
/// ringdns takes both in either.
fn loadbalance(line: &Line) -> Result<LoadBalanceConfig, ConfigError> {
    let mut weighted = match line.args.as_slice() {
        [] => None,
        [t] if t.text == "round_robin" => None,
        [t, extra, ..] if t.text == "round_robin" => {
            return Err(err(extra, "loadbalance round_robin takes no argument"));
        }
        [t] if t.text == "weighted" => return Err(err(t, "loadbalance weighted needs a weight file")),
        [t, file] if t.text == "weighted" => Some((PathBuf::from(&file.text), Duration::from_secs(30))),
        [t, _, extra, ..] if t.text == "weighted" => {
            return Err(err(extra, "loadbalance weighted takes one weight file"));
        }
        [t, ..] => {
            return Err(err(
                t,
                format!(
                    "unknown loadbalance policy {:?} (accepted: round_robin, weighted)",
                    t.text
                ),
            ));
        }
    };
    let mut prefer = Vec::new();
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "reload" => {
                let Some((_, reload)) = weighted.as_mut() else {
                    return Err(err(&o.name, "loadbalance: reload is for a weighted policy's file"));
                };
                let [d] = o.args.as_slice() else {
                    return Err(err(&o.name, "loadbalance reload takes one duration"));
                };
                *reload = duration::parse(&d.text).map_err(|e| err(d, e))?;
            }
            "prefer" => {
                if o.args.is_empty() {
                    return Err(err(&o.name, "loadbalance prefer needs at least one CIDR"));
                }
                for c in &o.args {
                    let net = acl_net(&c.text)
                        .filter(|_| c.text.contains('/'))
                        .ok_or_else(|| err(c, format!("loadbalance prefer: invalid CIDR {:?}", c.text)))?;
                    prefer.push(net);
                }
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown loadbalance option {other:?} (accepted: reload, prefer)"),
                ));
            }
        }
    }
    Ok(LoadBalanceConfig { weighted, prefer })
}

/// `prometheus [ADDRESS] { runtime_metrics }`. `runtime_metrics` (Go runtime series) is
/// accepted and has nothing to add here: ringdns has no Go runtime.
fn prometheus(line: &Line) -> Result<std::net::SocketAddr, ConfigError> {
    for opt in line.block.iter().flatten() {
        match opt.name.text.as_str() {
            "runtime_metrics" => no_args(opt)?,
            other => {
                return Err(err(
                    &opt.name,
                    format!("unknown prometheus option {other:?}; supported: runtime_metrics"),
                ));
            }
        }
    }
    if line.args.is_empty() {
        return Ok(METRICS_ADDR);
    }
    probe_addr(line, METRICS_ADDR.port())
}

/// The one optional ADDRESS of `health`, `ready` and `prometheus`: `[HOST]:PORT` with HOST an IP address,
/// `localhost` (127.0.0.1) or empty (every IPv4 address, as Go's `:PORT`); the default port
/// when there is no argument.
fn probe_addr(line: &Line, default_port: u16) -> Result<std::net::SocketAddr, ConfigError> {
    let any = std::net::Ipv4Addr::UNSPECIFIED.into();
    let Some(t) = line.args.first() else {
        return Ok(std::net::SocketAddr::new(any, default_port));
    };
    if let Some(extra) = line.args.get(1) {
        return Err(err(extra, format!("{} takes at most one address", line.name.text)));
    }
    let bad = || {
        err(
            t,
            format!(
                "{}: {:?} is not an address (examples: :8080, 127.0.0.1:8080, [::1]:8080, localhost:8080)",
                line.name.text, t.text
            ),
        )
    };
    let (host, port) = t.text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']') {
        "" => any,
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        h => h.parse().map_err(|_| bad())?,
    };
    Ok(std::net::SocketAddr::new(ip, port))
}

fn reload(line: &Line) -> Result<Reload, ConfigError> {
    no_block(line)?;
    let mut r = Reload {
        interval: RELOAD_INTERVAL,
        jitter: RELOAD_JITTER,
    };
    if let Some(t) = line.args.first() {
        r.interval = duration::parse(&t.text).map_err(|e| err(t, e))?;
        if r.interval < RELOAD_MIN {
            return Err(err(
                t,
                format!("reload interval must be at least {}s", RELOAD_MIN.as_secs()),
            ));
        }
        r.jitter = r.interval / 2;
    }
    if let Some(t) = line.args.get(1) {
        r.jitter = duration::parse(&t.text).map_err(|e| err(t, e))?;
        if r.jitter > r.interval / 2 {
            return Err(err(t, "reload jitter may be at most half the interval"));
        }
    }
    if let Some(t) = line.args.get(2) {
        return Err(err(t, "reload takes at most an interval and a jitter"));
    }
    Ok(r)
}

fn tls(line: &Line) -> Result<TlsConfig, ConfigError> {
    let (cert, key, ca) = match line.args.as_slice() {
        [first, rest @ ..] if first.text == "acme" => {
            if let Some(extra) = rest.first() {
                return Err(err(extra, "tls acme takes its options in a { } block"));
            }
            let opts = line
                .block
                .as_deref()
                .ok_or_else(|| err(&line.name, "tls acme needs a { } block with at least one domain"))?;
            return acme(line, opts, AcmeSyntax::Tlsplus);
        }
        [] => {
            let opts = line.block.as_deref().ok_or_else(|| {
                err(
                    &line.name,
                    "tls needs CERT KEY [CA], acme { ... }, or a { acme ... } block",
                )
            })?;
            return acme(line, opts, AcmeSyntax::CoreDns);
        }
        [c] => return Err(err(c, "tls needs CERT and KEY files: tls CERT KEY [CA]")),
        [c, k] => (c, k, None),
        [c, k, ca] => (c, k, Some(ca)),
        [.., extra] => return Err(err(extra, "tls takes at most CERT KEY CA")),
    };
    if let Some(o) = line.block.as_deref().and_then(<[Line]>::first) {
        return Err(err(&o.name, "tls CERT KEY takes no options in this version"));
    }
    Ok(TlsConfig::Files {
        cert: PathBuf::from(&cert.text),
        key: PathBuf::from(&key.text),
        ca: ca.map(|t| PathBuf::from(&t.text)),
    })
}

#[derive(PartialEq)]
enum AcmeSyntax {
    /// `tls acme { domain ...; certpath; cacert; ... }`.
    Tlsplus,
    /// `tls { acme NAMES; storage; ca_root; ... }`.
    CoreDns,
}

fn acme(line: &Line, opts: &[Line], syntax: AcmeSyntax) -> Result<TlsConfig, ConfigError> {
    let mut c = AcmeConfig {
        domains: Vec::new(),
        email: None,
        ca: "https://acme-v02.api.letsencrypt.org/directory".into(),
        cacert: None,
        certpath: None,
        port: 53,
        checkinterval: Duration::from_secs(15 * 60),
        key_type: KeyType::default(),
        eab: None,
        renew: RenewPolicy::Ari,
        dns: None,
    };
    let names_opt = if syntax == AcmeSyntax::Tlsplus {
        "domain"
    } else {
        "acme"
    };
    let accepted = if syntax == AcmeSyntax::Tlsplus {
        "domain, email, ca, cacert, certpath, port, checkinterval, key_type, eab, renew, dns"
    } else {
        "acme, email, ca, ca_root, storage, port, checkinterval, key_type, eab, renew, dns"
    };
    for o in opts {
        let name = o.name.text.as_str();
        if name == "dns" {
            c.dns = Some(Box::new(dns_publisher(o)?));
            continue;
        }
        if o.block.is_some() {
            return Err(err(&o.name, format!("{name} takes no {{ }} block")));
        }
        match name {
            n if n == names_opt => {
                if o.args.is_empty() {
                    return Err(err(&o.name, format!("{n} needs at least one name")));
                }
                for t in &o.args {
                    let bare = t.text.strip_prefix("*.").unwrap_or(&t.text);
                    if bare.contains('*') {
                        return Err(err(t, "only a leading \"*.\" wildcard label is allowed"));
                    }
                    parse_abs(bare).map_err(|e| err(t, e))?;
                    c.domains.push(t.text.trim_end_matches('.').to_ascii_lowercase());
                }
            }
            "email" => c.email = Some(one_arg(o, "an address")?.text.clone()),
            "ca" => {
                let t = one_arg(o, "a directory URL")?;
                // Without a scheme it is https (the seed's own test writes `localhost:14000/dir`).
                c.ca = match t.text.split_once("://") {
                    None => format!("https://{}", t.text),
                    Some(("https", _)) => t.text.clone(),
                    Some(_) => return Err(err(t, "ca must be an https:// ACME directory URL")),
                };
            }
            "cacert" | "ca_root" if (name == "cacert") == (syntax == AcmeSyntax::Tlsplus) => {
                c.cacert = Some(PathBuf::from(&one_arg(o, "a PEM file")?.text));
            }
            "certpath" | "storage" if (name == "certpath") == (syntax == AcmeSyntax::Tlsplus) => {
                c.certpath = Some(PathBuf::from(&one_arg(o, "a folder")?.text));
            }
            "port" => {
                let t = one_arg(o, "a port number")?;
                c.port = t
                    .text
                    .parse()
                    .map_err(|_| err(t, format!("port {:?} is not a number from 0 to 65535", t.text)))?;
            }
            "checkinterval" => {
                let t = one_arg(o, "a number of minutes")?;
                let m: u64 = t.text.parse().ok().filter(|m| *m >= 1).ok_or_else(|| {
                    err(
                        t,
                        format!(
                            "checkinterval {:?} is not a whole number of minutes (at least 1)",
                            t.text
                        ),
                    )
                })?;
                c.checkinterval = Duration::from_secs(m * 60);
            }
            "key_type" => {
                let t = one_arg(o, "ecdsa256, ecdsa384 or rsa2048")?;
                c.key_type = match t.text.as_str() {
                    "ecdsa256" => KeyType::EcdsaP256,
                    "ecdsa384" => KeyType::EcdsaP384,
                    "rsa2048" => KeyType::Rsa2048,
                    other => {
                        return Err(err(
                            t,
                            format!("unknown key_type {other:?} (accepted: ecdsa256, ecdsa384, rsa2048)"),
                        ));
                    }
                };
            }
            "eab" => match o.args.as_slice() {
                [kid, hmac] => c.eab = Some((kid.text.clone(), hmac.text.clone())),
                _ => return Err(err(&o.name, "eab needs KEY_ID HMAC_B64")),
            },
            "renew" => match o.args.as_slice() {
                [m] if m.text == "ari" => c.renew = RenewPolicy::Ari,
                [m, r] if m.text == "ratio" => {
                    let v: f64 = r
                        .text
                        .parse()
                        .ok()
                        .filter(|v: &f64| *v > 0.0 && *v < 1.0)
                        .ok_or_else(|| err(r, "renew ratio must be a fraction between 0 and 1, e.g. 0.33"))?;
                    c.renew = RenewPolicy::Ratio(v);
                }
                _ => return Err(err(&o.name, "renew needs \"ari\" or \"ratio R\"")),
            },
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown tls acme option {other:?} (accepted: {accepted})"),
                ));
            }
        }
    }
    if c.domains.is_empty() {
        return Err(err(
            &line.name,
            format!("tls acme needs at least one name ({names_opt} NAME)"),
        ));
    }
    Ok(TlsConfig::Acme(c))
}

/// `dns rfc2136 SERVER[:PORT] { key NAME ALGORITHM SECRET; check ADDR[:PORT]... }`, a
/// ringdns extension of `tls acme`.
fn dns_publisher(o: &Line) -> Result<super::model::DnsPublisher, ConfigError> {
    let [kind, server] = o.args.as_slice() else {
        return Err(err(
            &o.name,
            "dns rfc2136 SERVER[:PORT] { key NAME ALGORITHM SECRET } or dns acme_dns URL { username U; password P; subdomain S }",
        ));
    };
    match kind.text.as_str() {
        "rfc2136" => {}
        "acme_dns" => return acme_dns_publisher(o, server),
        _ => {
            return Err(err(
                kind,
                format!("unknown dns publisher {:?} (accepted: rfc2136, acme_dns)", kind.text),
            ));
        }
    }
    let addr = |t: &Token| -> Result<std::net::SocketAddr, ConfigError> {
        t.text
            .parse::<std::net::SocketAddr>()
            .or_else(|_| t.text.parse::<IpAddr>().map(|ip| std::net::SocketAddr::new(ip, 53)))
            .map_err(|_| err(t, format!("{:?} is not an IP address with an optional :PORT", t.text)))
    };
    let server = addr(server)?;
    let (mut key, mut check) = (None, Vec::new());
    for k in o.block.iter().flatten() {
        match k.name.text.as_str() {
            "key" => {
                let [name, alg, secret] = k.args.as_slice() else {
                    return Err(err(&k.name, "dns rfc2136: key NAME ALGORITHM SECRET"));
                };
                key = Some(super::tsig::TsigKey {
                    name: parse_abs(&name.text).map_err(|e| err(name, e))?,
                    algorithm: Some(super::tsig::algorithm(&alg.text).map_err(|e| err(alg, e))?),
                    secret: super::tsig::secret(&secret.text).map_err(|e| err(secret, e))?,
                });
            }
            "check" => {
                if k.args.is_empty() {
                    return Err(err(&k.name, "dns rfc2136: check ADDR[:PORT]..."));
                }
                for t in &k.args {
                    check.push(addr(t)?);
                }
            }
            other => {
                return Err(err(
                    &k.name,
                    format!("unknown dns rfc2136 option {other:?} (accepted: key, check)"),
                ));
            }
        }
    }
    let Some(key) = key else {
        return Err(err(
            &o.name,
            "dns rfc2136 needs key NAME ALGORITHM SECRET (updates are signed)",
        ));
    };
    Ok(super::model::DnsPublisher::Rfc2136 { server, key, check })
}

/// `dns acme_dns URL { username U; password P; subdomain S; fulldomain NAME; check ADDR... }`.
fn acme_dns_publisher(o: &Line, url: &Token) -> Result<super::model::DnsPublisher, ConfigError> {
    let host = url
        .text
        .strip_prefix("https://")
        .or_else(|| url.text.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
        .ok_or_else(|| err(url, "dns acme_dns: the URL is http:// or https://"))?;
    let host_ip = host
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>());
    // The password crosses the connection: plain HTTP only to this host.
    if url.text.starts_with("http://") && !host_ip.as_ref().is_ok_and(IpAddr::is_loopback) {
        return Err(err(
            url,
            "dns acme_dns: plain http:// only to a loopback address (the password crosses it)",
        ));
    }
    let (mut username, mut password, mut subdomain, mut fulldomain, mut check) = (None, None, None, None, Vec::new());
    for k in o.block.iter().flatten() {
        match k.name.text.as_str() {
            "username" => username = Some(one_arg(k, "the registration's username")?.text.clone()),
            "password" => password = Some(one_arg(k, "the registration's password")?.text.clone()),
            "subdomain" => subdomain = Some(one_arg(k, "the registration's subdomain")?.text.clone()),
            "fulldomain" => {
                let t = one_arg(k, "the registration's full name")?;
                fulldomain = Some(parse_abs(&t.text).map_err(|e| err(t, e))?);
            }
            "check" => {
                for t in &k.args {
                    let a = t
                        .text
                        .parse::<std::net::SocketAddr>()
                        .or_else(|_| t.text.parse::<IpAddr>().map(|ip| std::net::SocketAddr::new(ip, 53)))
                        .map_err(|_| err(t, format!("{:?} is not an IP address with an optional :PORT", t.text)))?;
                    check.push(a);
                }
            }
            other => {
                return Err(err(
                    &k.name,
                    format!(
                        "unknown dns acme_dns option {other:?} (accepted: username, password, subdomain, fulldomain, check)"
                    ),
                ));
            }
        }
    }
    let (Some(username), Some(password), Some(subdomain)) = (username, password, subdomain) else {
        return Err(err(
            &o.name,
            "dns acme_dns needs username, password and subdomain (the registration)",
        ));
    };
    if check.is_empty() {
        match host_ip {
            Ok(ip) => check.push(std::net::SocketAddr::new(ip, 53)),
            Err(_) => {
                return Err(err(
                    &o.name,
                    "dns acme_dns: the URL names no IP address: say which servers answer the values (check ADDR...)",
                ));
            }
        }
    }
    Ok(super::model::DnsPublisher::AcmeDns {
        url: url.text.trim_end_matches('/').to_string(),
        username,
        password,
        subdomain,
        fulldomain,
        check,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_for_typos() {
        assert_eq!(suggest("hots"), Some("hosts"));
        assert_eq!(suggest("fiel"), Some("file"));
        assert_eq!(suggest("frward"), Some("forward"));
        assert_eq!(suggest("zzzzzzzz"), None);
    }
}
