//! `ringdns check` on the 41 Corefiles of ../shared/corefiles, as their owners would run
//! them: the zone files, hosts files, certificates and imported files they name present
//! (absolute paths moved under a scratch folder), their environment variables set. Each is
//! accepted, or refused at the file and line of the plugin ringdns does not have or of the
//! mistake in the file.
//!
//! An option that ringdns is still to implement is expected as "not supported by this
//! version" at its line; it moves to [`Expect::Accepted`] as it lands.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use support::server::{TempDir, binary};

/// What `ringdns check` must say.
enum Expect {
    /// Exit 0.
    Accepted,
    /// Refused at this line, the message holding every one of these.
    Refused(u32, &'static [&'static str]),
}
use Expect::*;

/// One Corefile of the corpus and what its owner has beside it.
struct Case {
    /// The file name's number prefix.
    file: &'static str,
    env: &'static [(&'static str, &'static str)],
    /// Zone files (path, origin).
    zones: &'static [(&'static str, &'static str)],
    /// Certificate and key pairs.
    certs: &'static [(&'static str, &'static str)],
    /// Other files that exist (hosts files, imported files): empty.
    empty: &'static [&'static str],
    expect: Expect,
}

const NONE: &[(&str, &str)] = &[];

/// Absolute folders the Corefiles name, moved under the scratch folder.
const ROOTS: &[&str] = &["/etc/coredns/", "/config/", "/zones/", "/var/lib/caddy/"];

fn case(file: &'static str, expect: Expect) -> Case {
    Case {
        file,
        env: NONE,
        zones: NONE,
        certs: NONE,
        empty: &[],
        expect,
    }
}

fn cases() -> Vec<Case> {
    vec![
        case("01", Refused(9, &["plugin \"kubernetes\"", "not available in ringdns"])),
        case("02", Refused(9, &["plugin \"kubernetes\"", "not available in ringdns"])),
        Case {
            empty: &["/etc/coredns/NodeHosts"],
            ..case("03", Refused(7, &["plugin \"kubernetes\"", "not available in ringdns"]))
        },
        case("04", Accepted),
        case("05", Refused(3, &["quic", "not supported"])),
        Case {
            zones: &[
                ("zones/db.wyf.dn42", "wyf.dn42"),
                (
                    "zones/db.32-27.104.21.172.in-addr.arpa",
                    "32/27.104.21.172.in-addr.arpa",
                ),
                (
                    "zones/db.3.9.9.c.1.5.d.e.b.3.d.f.ip6.arpa",
                    "3.9.9.c.1.5.d.e.b.3.d.f.ip6.arpa",
                ),
            ],
            // CoreDNS refuses it too: forward takes IP addresses and files, not names.
            ..case("06", Refused(40, &["\"tls://dns.quad9.net\"", "not an IP address"]))
        },
        Case {
            zones: &[
                ("/etc/coredns/db.blackhole", "blackhole.as112.arpa"),
                ("/etc/coredns/db.prisoner", "@"),
                ("/etc/coredns/db.hostname", "@"),
            ],
            ..case("07", Accepted)
        },
        case("08", Refused(6, &["plugin \"grpc\"", "not available in ringdns"])),
        Case {
            zones: &[
                ("/config/pjts.dn42.zone", "pjts.dn42"),
                ("/config/mtf.dn42.zone", "mtf.dn42"),
                ("/config/pjts.dn42.rev.zone", "0.0.0.0.3.7.4.7.a.6.0.7.2.4.d.f.ip6.arpa"),
            ],
            ..case("09", Accepted)
        },
        Case {
            zones: &[
                ("gth.li.zone", "gth.li"),
                ("pinto.app.zone", "pinto.app"),
                ("jamesguthrie.ch.zone", "jamesguthrie.ch"),
                ("guthrie.ch.zone", "guthrie.ch"),
                ("isaandjames.ch.zone", "isaandjames.ch"),
            ],
            ..case("10", Accepted)
        },
        case("11", Accepted),
        case("12", Accepted),
        Case {
            zones: &[("/etc/coredns/zones/ts-homelab.db", "ts-homelab.myth-dab.ts.net")],
            ..case("13", Accepted)
        },
        case("14", Accepted),
        case(
            "15",
            Refused(4, &["\"alias\"", "third-party plugins are not available"]),
        ),
        case("16", Refused(6, &["unknown cache option \"http\""])),
        case("17", Accepted),
        Case {
            env: &[
                ("LOG_CLASS", "error"),
                ("CACHE_TTL", "30"),
                ("NSID", "aplr"),
                ("ADDITIONAL_ZONES", "privatelink.example.com"),
                ("PUBLIC_RESOLVER", "1.1.1.1"),
            ],
            // CoreDNS refuses `ready 80` too (net.SplitHostPort: missing port).
            ..case("18", Refused(11, &["ready: \"80\" is not an address"]))
        },
        Case {
            env: &[
                ("DNS_HEALTH_PORT", "8080"),
                ("DNS_PROMETHEUS_PORT", "9153"),
                ("DNS_UPSTREAM", "169.254.169.253"),
                ("DNS_CACHE_TIME", "30"),
                ("DNS_CACHE_SUCCESS", "5000"),
                ("DNS_CACHE_DENIAL", "2500"),
                ("DNS_CACHE_PREFETCH", "10"),
            ],
            ..case("19", Accepted)
        },
        case("20", Accepted),
        Case {
            certs: &[("fullchain.pem", "key.pem")],
            empty: &["ca.pem"],
            // CoreDNS starts with it, and then no query gets through: Go's TLS needs a name.
            ..case("21", Refused(5, &["tls:// upstreams need tls_servername"]))
        },
        case(
            "22",
            Refused(15, &["\"postgresql\"", "third-party plugins are not available"]),
        ),
        Case {
            zones: &[
                ("zones/db.dnhrrs.xyz", "dnhrrs.xyz"),
                ("zones/db.23.10.in-addr.arpa", "23.10.in-addr.arpa"),
            ],
            ..case("23", Accepted)
        },
        Case {
            env: &[
                ("COREDNS_LISTEN_ADDR", "100.82.73.91"),
                ("TAILSCALE_CIDR", "100.64.0.0/10"),
            ],
            zones: &[("zones/int.wilkesliberty.com.zone", "100.82.73.91")],
            ..case("24", Accepted)
        },
        case("25", Accepted),
        Case {
            zones: &[("/zones/filharmonic.beta.gouv.fr", "filharmonic.beta.gouv.fr")],
            ..case("26", Accepted)
        },
        case("27", Accepted),
        Case {
            zones: &[("db.domain", "domain"), ("db.192.168.1", "1.168.192.in-addr.arpa")],
            ..case("28", Accepted)
        },
        Case {
            zones: &[("etc/coredns/dbfiles/db.localhost", "localhost")],
            empty: &["etc/coredns/hosts-corp.example.com", "etc/coredns/hosts"],
            ..case("29", Refused(86, &["c.corp.example.com", "already defined at"]))
        },
        case("30", Accepted),
        case("31", Accepted),
        Case {
            zones: &[("/etc/coredns/x.benjojo.co.uk", "x.benjojo.co.uk")],
            ..case("32", Accepted)
        },
        Case {
            env: &[
                ("DNS_IP", "192.0.2.53"),
                ("DNS_UPSTREAM1", "192.0.2.1"),
                ("DNS_UPSTREAM2", "192.0.2.2"),
                ("DNS_UPSTREAM_NAME", "dns.example.net"),
            ],
            zones: &[
                ("/etc/coredns/zones/db.socozy.casa", "socozy.casa"),
                ("/etc/coredns/zones/db.outskirtslabs.com", "outskirtslabs.com"),
            ],
            empty: &["/etc/coredns/common.conf"],
            ..case(
                "33",
                Refused(6, &["\"alternate\"", "third-party plugins are not available"]),
            )
        },
        Case {
            certs: &[(
                "/var/lib/caddy/data/caddy/certificates/acme.zerossl.com-v2-dv90/dns.keiu.net/dns.keiu.net.crt",
                "/var/lib/caddy/data/caddy/certificates/acme.zerossl.com-v2-dv90/dns.keiu.net/dns.keiu.net.key",
            )],
            ..case("34", Accepted)
        },
        case(
            "35",
            Refused(4, &["\"pdsql\"", "third-party plugins are not available"]),
        ),
        case(
            "36",
            Refused(4, &["\"unbound\"", "third-party plugins are not available"]),
        ),
        Case {
            zones: &[("example.org", "@")],
            ..case("37", Accepted)
        },
        case("38", Accepted),
        case("39", Accepted),
        case("40", Refused(14, &["xxx.xxx.xxx.xxx"])),
        case(
            "41",
            Refused(13, &["\"gslb\"", "third-party plugins are not available"]),
        ),
    ]
}

/// A zone file for `origin` (`@`: every zone the Corefile loads it for; its records are
/// relative to the origin it is loaded with).
fn zone_text(origin: &str) -> String {
    let head = if origin == "@" {
        String::new()
    } else {
        format!("$ORIGIN {}.\n", origin.trim_end_matches('.'))
    };
    format!(
        "{head}$TTL 3600\n@ IN SOA ns hostmaster 2024010101 7200 3600 1209600 300\n@ IN NS ns\nns IN A 192.0.2.53\n"
    )
}

/// The Corefile with every path under one of [`ROOTS`] (a token that starts with it) moved
/// under `root`; lines and columns stay where they were.
fn moved(text: &str, root: &Path) -> String {
    let mut out = String::new();
    for piece in text.split_inclusive(char::is_whitespace) {
        if ROOTS.iter().any(|r| piece.starts_with(r)) {
            out.push_str(&root.display().to_string());
        }
        out.push_str(piece);
    }
    out
}

fn place(root: &Path, path: &str) -> PathBuf {
    let p = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    p
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corefiles")
}

#[test]
fn every_corefile_is_accepted_or_refused_where_it_should_be() {
    let dir = corpus_dir();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".Corefile"))
        .collect();
    names.sort();
    let cases = cases();
    assert_eq!(names.len(), cases.len(), "a case for every Corefile: {names:?}");
    let ca = support::tls::Ca::new();
    let mut wrong = Vec::new();
    for (name, c) in names.iter().zip(&cases) {
        assert!(name.starts_with(c.file), "cases in file order: {name} vs {}", c.file);
        let scratch = TempDir::new("corpus");
        let root = scratch.path();
        let text = moved(&std::fs::read_to_string(dir.join(name)).unwrap(), root);
        let conf = root.join(name);
        std::fs::write(&conf, text).unwrap();
        for (path, origin) in c.zones {
            std::fs::write(place(root, path), zone_text(origin)).unwrap();
        }
        for (crt, key) in c.certs {
            let leaf = ca.leaf(&["dns.example.net"]);
            std::fs::write(place(root, crt), &leaf.cert_pem).unwrap();
            std::fs::write(place(root, key), &leaf.key_pem).unwrap();
        }
        for path in c.empty {
            std::fs::write(place(root, path), "").unwrap();
        }
        let out = Command::new(binary())
            .args(["check", "--conf"])
            .arg(&conf)
            .current_dir(root)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(c.env.iter().copied())
            .output()
            .expect("ringdns runs");
        let said = String::from_utf8_lossy(&out.stderr)
            .trim()
            .replace(&format!("{}/", root.display()), "");
        let at = |line: u32| said.starts_with(&format!("{name}:{line}:"));
        let ok = match &c.expect {
            Accepted => out.status.success(),
            Refused(line, words) => !out.status.success() && at(*line) && words.iter().all(|w| said.contains(w)),
        };
        if !ok {
            wrong.push(format!("{name}: exit {:?}: {said}", out.status.code()));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}
