//! `forward` and `cache`, with CoreDNS' defaults.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use super::args::{check_inside_block, err, no_args, one_arg, zone_list};
use super::duration;
use super::error::ConfigError;
use super::lexer::Token;
use super::model::*;
use super::syntax::Line;
use crate::zone::name::parse_abs;

/// CoreDNS' forward defaults.
const EXPIRE: Duration = Duration::from_secs(10);
const MAX_FAILS: u32 = 2;
const HEALTH_CHECK: Duration = Duration::from_millis(500);
/// At most this many upstreams (as CoreDNS).
const MAX_UPSTREAMS: usize = 15;

/// Parses one upstream: `IP[:PORT]`, `dns://`, `tls://IP[:853]`, `https://HOST[:443]/PATH`,
/// or a resolv.conf path (its `nameserver` lines).
fn upstreams(tok: &Token) -> Result<Vec<UpstreamAddr>, ConfigError> {
    let t = tok.text.as_str();
    let bad = |why: &str| {
        err(
            tok,
            format!(
                "bad upstream {t:?}: {why} (accepted: IP[:PORT], dns://IP[:PORT], tls://IP[:PORT], https://HOST[:PORT]/PATH, or a resolv.conf file)"
            ),
        )
    };
    let sock = |rest: &str, default_port: u16| -> Result<SocketAddr, ConfigError> {
        if let Ok(a) = rest.parse::<SocketAddr>() {
            return Ok(a);
        }
        let ip = rest.trim_start_matches('[').trim_end_matches(']');
        ip.parse::<IpAddr>()
            .map(|ip| SocketAddr::new(ip, default_port))
            .map_err(|_| bad("not an IP address with an optional port (names would need a resolver)"))
    };
    if let Some(rest) = t.strip_prefix("tls://") {
        return Ok(vec![UpstreamAddr::Tls(sock(rest, 853)?)]);
    }
    if let Some(rest) = t.strip_prefix("dns://") {
        return Ok(vec![UpstreamAddr::Dns(sock(rest, 53)?)]);
    }
    if let Some(rest) = t.strip_prefix("https://") {
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/dns-query"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && p.chars().all(|c| c.is_ascii_digit()) => (
                h.trim_start_matches('[').trim_end_matches(']'),
                p.parse::<u16>().map_err(|_| bad("bad port"))?,
            ),
            _ => (authority.trim_start_matches('[').trim_end_matches(']'), 443),
        };
        let ip: IpAddr = host
            .parse()
            .map_err(|_| bad("the host must be an IP address (name resolution for upstreams is not supported); put the name in tls_servername"))?;
        return Ok(vec![UpstreamAddr::Https {
            addr: SocketAddr::new(ip, port),
            host: host.to_string(),
            path: path.to_string(),
        }]);
    }
    if t.contains("://") {
        return Err(bad("unknown scheme"));
    }
    if t.starts_with('/') {
        let text = std::fs::read_to_string(t).map_err(|e| err(tok, format!("{t}: {e}")))?;
        let found: Vec<UpstreamAddr> = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|ip| ip.trim().split('%').next()?.parse::<IpAddr>().ok())
            .map(|ip| UpstreamAddr::Dns(SocketAddr::new(ip, 53)))
            .collect();
        if found.is_empty() {
            return Err(err(tok, format!("{t} lists no nameserver")));
        }
        return Ok(found);
    }
    Ok(vec![UpstreamAddr::Dns(sock(t, 53)?)])
}

/// `forward FROM TO... { ... }`.
pub fn forward(block: &ServerBlock, line: &Line) -> Result<ForwardConfig, ConfigError> {
    let (from_tok, to_toks) = match line.args.split_first() {
        Some((f, rest)) if !rest.is_empty() => (f, rest),
        _ => {
            return Err(err(
                &line.name,
                "forward needs FROM and at least one upstream: forward . 192.0.2.53",
            ));
        }
    };
    let from = zone_list(std::slice::from_ref(from_tok))?.remove(0);
    check_inside_block(block, std::slice::from_ref(from_tok), std::slice::from_ref(&from))?;
    let mut to = Vec::new();
    for t in to_toks {
        to.extend(upstreams(t)?);
    }
    if to.len() > MAX_UPSTREAMS {
        return Err(err(&to_toks[0], format!("at most {MAX_UPSTREAMS} upstreams")));
    }
    let mut f = ForwardConfig {
        pos: line.pos().clone(),
        from,
        to,
        except: Vec::new(),
        force_tcp: false,
        prefer_udp: false,
        expire: EXPIRE,
        max_fails: MAX_FAILS,
        tls_client: None,
        tls_ca: None,
        tls_servername: None,
        policy: Policy::Random,
        health_check: HEALTH_CHECK,
        health_no_rec: false,
        health_domain: domain::base::Name::root_bytes(),
        max_concurrent: 0,
    };
    for o in line.block.iter().flatten() {
        let name = o.name.text.as_str();
        if o.block.is_some() {
            return Err(err(&o.name, format!("{name} takes no {{ }} block")));
        }
        match name {
            "except" if !o.args.is_empty() => f.except = zone_list(&o.args)?,
            "except" => return Err(err(&o.name, "except needs at least one name")),
            "force_tcp" => {
                no_args(o)?;
                f.force_tcp = true;
            }
            "prefer_udp" => {
                no_args(o)?;
                f.prefer_udp = true;
            }
            "expire" => {
                let t = one_arg(o, "a duration")?;
                f.expire = duration::parse(&t.text).map_err(|e| err(t, e))?;
            }
            "max_fails" => {
                let t = one_arg(o, "a number (0 disables)")?;
                f.max_fails = t
                    .text
                    .parse()
                    .map_err(|_| err(t, format!("max_fails {:?} is not a number", t.text)))?;
            }
            "tls" => match o.args.as_slice() {
                [] => {}
                [ca] => f.tls_ca = Some(PathBuf::from(&ca.text)),
                [c, k] => f.tls_client = Some((PathBuf::from(&c.text), PathBuf::from(&k.text))),
                [c, k, ca] => {
                    f.tls_client = Some((PathBuf::from(&c.text), PathBuf::from(&k.text)));
                    f.tls_ca = Some(PathBuf::from(&ca.text));
                }
                [.., extra] => return Err(err(extra, "tls takes at most CERT KEY CA")),
            },
            "tls_servername" => {
                let t = one_arg(o, "a host name")?;
                parse_abs(&t.text).map_err(|e| err(t, e))?;
                f.tls_servername = Some(t.text.trim_end_matches('.').to_string());
            }
            "policy" => {
                let t = one_arg(o, "random, round_robin or sequential")?;
                f.policy = match t.text.as_str() {
                    "random" => Policy::Random,
                    "round_robin" => Policy::RoundRobin,
                    "sequential" => Policy::Sequential,
                    other => {
                        return Err(err(
                            t,
                            format!("unknown policy {other:?} (accepted: random, round_robin, sequential)"),
                        ));
                    }
                };
            }
            "health_check" => {
                let Some((d, rest)) = o.args.split_first() else {
                    return Err(err(&o.name, "health_check needs a duration"));
                };
                f.health_check = duration::parse(&d.text).map_err(|e| err(d, e))?;
                let mut it = rest.iter();
                while let Some(a) = it.next() {
                    match a.text.as_str() {
                        "no_rec" => f.health_no_rec = true,
                        "domain" => {
                            let n = it.next().ok_or_else(|| err(a, "domain needs a name"))?;
                            f.health_domain = parse_abs(&n.text).map_err(|e| err(n, e))?;
                        }
                        other => {
                            return Err(err(
                                a,
                                format!("unknown health_check option {other:?} (accepted: no_rec, domain NAME)"),
                            ));
                        }
                    }
                }
            }
            "max_concurrent" => {
                let t = one_arg(o, "a number")?;
                f.max_concurrent = t
                    .text
                    .parse()
                    .map_err(|_| err(t, format!("max_concurrent {:?} is not a number", t.text)))?;
            }
            other => {
                return Err(err(
                    &o.name,
                    format!(
                        "unknown forward option {other:?} (accepted: except, force_tcp, prefer_udp, expire, max_fails, tls, tls_servername, policy, health_check, max_concurrent)"
                    ),
                ));
            }
        }
    }
    if f.force_tcp && f.prefer_udp {
        return Err(err(&line.name, "force_tcp and prefer_udp exclude each other"));
    }
    let needs_name = f.to.iter().any(|u| matches!(u, UpstreamAddr::Tls(_)));
    if needs_name && f.tls_servername.is_none() {
        return Err(err(
            &line.name,
            "tls:// upstreams need tls_servername: the name their certificate is checked against (no unverified TLS)",
        ));
    }
    Ok(f)
}

/// CoreDNS' cache defaults.
const CAPACITY: usize = 9984;
const SUCCESS_TTL: Duration = Duration::from_secs(3600);
const DENIAL_TTL: Duration = Duration::from_secs(1800);
const MIN_TTL: Duration = Duration::from_secs(5);
const SERVFAIL_TTL: Duration = Duration::from_secs(5);
const STALE: Duration = Duration::from_secs(3600);

fn secs(t: &Token) -> Result<Duration, ConfigError> {
    t.text
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| err(t, format!("{:?} is not a number of seconds", t.text)))
}

/// `cache [TTL] [ZONES...] { ... }`.
pub fn cache(block: &ServerBlock, line: &Line) -> Result<CacheConfig, ConfigError> {
    let mut args: &[Token] = &line.args;
    let mut c = CacheConfig {
        zones: block.zones(),
        success: CacheBucket {
            capacity: CAPACITY,
            max_ttl: SUCCESS_TTL,
            min_ttl: MIN_TTL,
        },
        denial: CacheBucket {
            capacity: CAPACITY,
            max_ttl: DENIAL_TTL,
            min_ttl: MIN_TTL,
        },
        prefetch: None,
        serve_stale: None,
        servfail: SERVFAIL_TTL,
    };
    if let Some(first) = args.first() {
        if first.text.chars().all(|ch| ch.is_ascii_digit()) {
            let ttl = secs(first)?;
            c.success.max_ttl = ttl;
            c.denial.max_ttl = ttl;
            args = &args[1..];
        }
    }
    if !args.is_empty() {
        let z = zone_list(args)?;
        check_inside_block(block, args, &z)?;
        c.zones = z;
    }
    for o in line.block.iter().flatten() {
        let name = o.name.text.as_str();
        match name {
            "success" | "denial" => {
                let bucket = if name == "success" {
                    &mut c.success
                } else {
                    &mut c.denial
                };
                match o.args.as_slice() {
                    [cap, rest @ ..] if rest.len() <= 2 => {
                        bucket.capacity = cap
                            .text
                            .parse()
                            .map_err(|_| err(cap, format!("capacity {:?} is not a number", cap.text)))?;
                        if let Some(t) = rest.first() {
                            bucket.max_ttl = secs(t)?;
                        }
                        if let Some(t) = rest.get(1) {
                            bucket.min_ttl = secs(t)?;
                        }
                    }
                    _ => return Err(err(&o.name, format!("{name} needs CAPACITY [TTL [MINTTL]]"))),
                }
            }
            "prefetch" => {
                let (amount, rest) = o
                    .args
                    .split_first()
                    .ok_or_else(|| err(&o.name, "prefetch needs AMOUNT [DURATION [PERCENTAGE%]]"))?;
                let amount: u32 = amount
                    .text
                    .parse()
                    .map_err(|_| err(amount, "AMOUNT must be a number"))?;
                let dur = match rest.first() {
                    Some(t) => duration::parse(&t.text).map_err(|e| err(t, e))?,
                    None => Duration::from_secs(60),
                };
                let pct = match rest.get(1) {
                    Some(t) => t
                        .text
                        .strip_suffix('%')
                        .and_then(|p| p.parse::<u8>().ok())
                        .filter(|p| *p <= 100)
                        .ok_or_else(|| err(t, "PERCENTAGE must be like 10%"))?,
                    None => 10,
                };
                c.prefetch = Some((amount.max(1), dur, pct));
            }
            "serve_stale" => {
                c.serve_stale = Some(match o.args.first() {
                    Some(t) => duration::parse(&t.text).map_err(|e| err(t, e))?,
                    None => STALE,
                });
                if let Some(mode) = o.args.get(1) {
                    if mode.text != "immediate" && mode.text != "verify" {
                        return Err(err(mode, "serve_stale refresh mode is immediate or verify"));
                    }
                }
            }
            "servfail" => {
                let t = one_arg(o, "a duration up to 5m (0 disables)")?;
                let d = duration::parse(&t.text).map_err(|e| err(t, e))?;
                if d > Duration::from_secs(300) {
                    return Err(err(t, "servfail may be at most 5m (RFC 9520)"));
                }
                c.servfail = d;
            }
            other => {
                return Err(err(
                    &o.name,
                    format!(
                        "unknown cache option {other:?} (accepted: success, denial, prefetch, serve_stale, servfail)"
                    ),
                ));
            }
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use crate::config::{LoadOptions, Policy, UpstreamAddr, parse};
    use std::path::Path;
    use std::time::Duration;

    fn cfg(src: &str) -> Result<crate::config::Config, String> {
        parse(src, Path::new("Corefile"), LoadOptions::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn forward_forms_and_options() {
        let c = cfg(". {\n forward . 192.0.2.1 [2001:db8::1]:5353 dns://192.0.2.2 tls://192.0.2.3 https://192.0.2.4/dns-query {\n  except example.org\n  policy sequential\n  tls_servername dns.example\n  health_check 1s no_rec domain probe.example\n  max_fails 3\n  expire 5s\n  max_concurrent 100\n }\n}\n").unwrap();
        let f = c.blocks[0].forward.as_ref().unwrap();
        assert_eq!(f.to.len(), 5);
        assert_eq!(f.to[1], UpstreamAddr::Dns("[2001:db8::1]:5353".parse().unwrap()));
        assert_eq!(f.to[3], UpstreamAddr::Tls("192.0.2.3:853".parse().unwrap()));
        assert!(matches!(&f.to[4], UpstreamAddr::Https { path, .. } if path == "/dns-query"));
        assert_eq!(
            (f.policy, f.max_fails, f.expire, f.max_concurrent),
            (Policy::Sequential, 3, Duration::from_secs(5), 100)
        );
        assert!(f.health_no_rec);
        assert_eq!(f.health_domain.to_string(), "probe.example");
    }

    #[test]
    fn forward_errors() {
        assert!(
            cfg(". {\n forward .\n}\n")
                .unwrap_err()
                .contains("needs FROM and at least one upstream")
        );
        assert!(
            cfg(". {\n forward . tls://192.0.2.1\n}\n")
                .unwrap_err()
                .contains("need tls_servername")
        );
        assert!(
            cfg(". {\n forward . dns.google\n}\n")
                .unwrap_err()
                .contains("not an IP address")
        );
        assert!(
            cfg(". {\n forward . 192.0.2.1 {\n  policy fastest\n }\n}\n")
                .unwrap_err()
                .contains("Corefile:3:10")
        );
        assert!(
            cfg("a.test {\n forward b.test 192.0.2.1\n}\n")
                .unwrap_err()
                .contains("neither inside nor above")
        );
    }

    #[test]
    fn cache_options() {
        let c = cfg(". {\n cache 600 {\n  success 1000 300 10\n  denial 500\n  prefetch 5 1m 20%\n  serve_stale 2h\n  servfail 10s\n }\n forward . 192.0.2.1\n}\n").unwrap();
        let k = c.blocks[0].cache.as_ref().unwrap();
        assert_eq!(k.success.capacity, 1000);
        assert_eq!(k.success.max_ttl, Duration::from_secs(300));
        assert_eq!(k.success.min_ttl, Duration::from_secs(10));
        assert_eq!(k.denial.max_ttl, Duration::from_secs(600));
        assert_eq!(k.prefetch, Some((5, Duration::from_secs(60), 20)));
        assert_eq!(k.serve_stale, Some(Duration::from_secs(7200)));
        assert_eq!(k.servfail, Duration::from_secs(10));
        assert!(
            cfg(". {\n cache {\n  servfail 10m\n }\n}\n")
                .unwrap_err()
                .contains("at most 5m")
        );
    }
}
