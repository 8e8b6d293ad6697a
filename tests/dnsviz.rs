//! Black-box: DNSViz (`dnsviz probe -A` then `dnsviz grok`, Debian's dnsviz with BIND's
//! named for its delegation stub) analyses a zone served by ringdns three ways: signed by
//! dnssec-signzone with NSEC3, signed online by `dnssec`, signed offline by `sign`. Every
//! status must be valid or secure and nothing may be reported but the two findings this set-up
//! cannot avoid: the name server's address is a loopback one (GLUE_PRIVATE_IP,
//! NS_NAME_PRIVATE_IP). dnsviz asks the zone's name servers on port 53, so each test binds
//! port 53 on an address of its own in 127.53.0.0/24 (the suite runs as root) and the zone
//! delegates nowhere (dnsviz would ask the child's servers). Both drivers, in one test.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::server::{Options, Server, TempDir};

/// What dnsviz may report here: the name server's address is loopback.
const EXPECTED: &[&str] = &["GLUE_PRIVATE_IP", "NS_NAME_PRIVATE_IP"];

fn zone(ns: &str) -> String {
    format!(
        "$ORIGIN dnsviz.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A {ns}\nwww A 192.0.2.10\n*.wild TXT \"w\"\nc.b A 192.0.2.2\n@ MX 10 www\n"
    )
}

/// A KSK and a ZSK for dnsviz.test in `dir`: their base names, relative to `dir`.
fn keys(dir: &Path) -> [String; 2] {
    [true, false].map(|ksk| {
        let base = support::dnssec::keygen(dir, "dnsviz.test", "ECDSAP256SHA256", ksk);
        base.file_name().unwrap().to_string_lossy().into_owned()
    })
}

/// The DS of the KSK `ksk` as dnsviz's -D takes it: "TAG ALG 2 HEX".
fn ds(dir: &Path, ksk: &str) -> String {
    let out = Command::new("dnssec-dsfromkey")
        .current_dir(dir)
        .args(["-2", &format!("{ksk}.key")])
        .output()
        .expect("dnssec-dsfromkey");
    let text = String::from_utf8_lossy(&out.stdout);
    let f: Vec<&str> = text.split_whitespace().collect();
    let at = f.iter().position(|t| *t == "DS").unwrap_or_else(|| panic!("{text}"));
    format!("{} {} {} {}", f[at + 1], f[at + 2], f[at + 3], f[at + 4..].concat())
}

/// How the zone is signed.
#[derive(Clone, Copy, Debug)]
enum Way {
    PreSigned,
    Online,
    Offline,
}

fn analyse(driver: &str, way: Way, ns: &str) {
    let dir = TempDir::new("dnsviz");
    let d = dir.path();
    let [ksk, zsk] = keys(d);
    let text = zone(ns);
    let serve = match way {
        Way::PreSigned => {
            let key_text = |k: &str| std::fs::read_to_string(d.join(format!("{k}.key"))).unwrap();
            let db = dir.write("db", &format!("{text}{}{}", key_text(&ksk), key_text(&zsk)));
            let out = Command::new("dnssec-signzone")
                .current_dir(d)
                .args([
                    "-q",
                    "-o",
                    "dnsviz.test",
                    "-N",
                    "keep",
                    "-3",
                    "-",
                    "-H",
                    "0",
                    "-f",
                    "db.signed",
                ])
                .arg(&db)
                .args([&zsk, &ksk])
                .output()
                .expect("dnssec-signzone");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            format!("    file {}/db.signed\n", d.display())
        }
        Way::Online => {
            dir.write("db", &text);
            format!(
                "    file {dd}/db\n    dnssec {{\n        key file {dd}/{ksk} {dd}/{zsk}\n    }}\n",
                dd = d.display()
            )
        }
        Way::Offline => {
            dir.write("db", &text);
            // `sign` signs with CSKs: the KSK alone.
            format!(
                "    file {dd}/out/db.dnsviz.test.signed\n    sign {dd}/db {{\n        key file {dd}/{ksk}\n        directory {dd}/out\n    }}\n",
                dd = d.display()
            )
        }
    };
    let corefile = format!("dnsviz.test:53 {{\n    bind {ns}\n{serve}}}\n");
    let s = Server::spawn(Options::new(driver, &corefile));
    assert!(s.wait_log("ringdns ready", Duration::from_secs(15)), "{}", s.log());
    let probe = Command::new("dnsviz")
        .env(
            "PATH",
            format!("{}:/usr/sbin", std::env::var("PATH").unwrap_or_default()),
        )
        .args(["probe", "-A", "-a", "dnsviz.test", "-N"])
        .arg(format!("dnsviz.test:ns.dnsviz.test={ns}"))
        .arg("-D")
        .arg(format!("dnsviz.test:{}", ds(d, &ksk)))
        .args([
            "dnsviz.test",
            "www.dnsviz.test",
            "nope.dnsviz.test",
            "x.wild.dnsviz.test",
            "c.b.dnsviz.test",
            "b.dnsviz.test",
        ])
        .output()
        .expect("dnsviz (test.sh installs dnsviz and bind9)");
    assert!(
        probe.status.success(),
        "dnsviz probe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let grok = Command::new("sh")
        .arg("-c")
        .arg("dnsviz grok")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&probe.stdout)?;
            c.wait_with_output()
        })
        .expect("dnsviz grok");
    let report: serde_json::Value = serde_json::from_slice(&grok.stdout).expect("grok's JSON");
    let (mut statuses, mut findings) = (Vec::new(), Vec::new());
    walk(&report, &mut statuses, &mut findings);
    let unexpected: Vec<&String> = findings.iter().filter(|c| !EXPECTED.contains(&c.as_str())).collect();
    assert!(
        unexpected.is_empty(),
        "{way:?}: dnsviz reports {unexpected:?}:\n{report:#}"
    );
    let bad: Vec<&String> = statuses
        .iter()
        .filter(|s| !matches!(s.as_str(), "VALID" | "SECURE" | "NOERROR" | "NXDOMAIN"))
        .collect();
    assert!(bad.is_empty(), "{way:?}: {bad:?}:\n{report:#}");
    let valid = statuses.iter().filter(|s| *s == "VALID").count();
    assert!(
        valid >= 30 && statuses.iter().any(|s| s == "SECURE"),
        "{way:?}: {valid} valid:\n{report:#}"
    );
}

/// Every "status" and every error or warning code in grok's report.
fn walk(v: &serde_json::Value, statuses: &mut Vec<String>, findings: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("status", serde_json::Value::String(s)) => statuses.push(s.clone()),
                    ("errors" | "warnings", serde_json::Value::Array(a)) => {
                        findings.extend(a.iter().map(|e| e["code"].as_str().unwrap_or("?").to_string()));
                    }
                    _ => {}
                }
                walk(x, statuses, findings);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, statuses, findings)),
        _ => {}
    }
}

/// One test, the runs one after the other: dnsviz's stub servers of concurrent probes of
/// one zone name answer each other's queries.
#[test]
fn signed_zones_are_clean_under_both_drivers() {
    let mut n = 0;
    for driver in ["io-uring", "legacy"] {
        for way in [Way::PreSigned, Way::Online, Way::Offline] {
            n += 1;
            analyse(driver, way, &format!("127.53.0.{n}"));
        }
    }
}
