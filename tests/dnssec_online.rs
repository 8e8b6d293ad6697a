//! Black-box: online signing (`dnssec { key file ... }`) of a `file` zone and a `hosts`
//! zone with keys from BIND's dnssec-keygen: ECDSA P-256 as one key, Ed25519 as a KSK and
//! a ZSK, RSA/SHA-256. delv (bind9-dnsutils) validates every class of answer from the key
//! as trust anchor, an unbound that validates with it and forwards to ringdns sets AD on
//! what it relays, signatures come from the shard's cache until two days before they
//! expire (libfaketime moves the clock) and the DNSKEY RRset is signed by the KSK alone;
//! `secondary` (from Knot DNS), `auto` and `template` answers are signed too, and the
//! cache's counts are in the metrics.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::dnssec::{self, dnskey, keygen};
use support::eventually;
use support::knot::Knot;
use support::server::{Options, Server, TempDir, free_port};
use support::{kdig, kdig_records};

const ZONE: &str = "$ORIGIN example.org.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww AAAA 2001:db8::10\n*.wild TXT \"wild\"\nc.b A 192.0.2.2\n@ MX 10 mail\nmail A 192.0.2.25\nsub NS ns.sub\nns.sub A 192.0.2.53\nalias CNAME www\n";

/// (name, type, what delv must conclude).
const CASES: &[(&str, &str, &str)] = &[
    ("www.example.org", "A", "; fully validated"),
    ("www.example.org", "AAAA", "; fully validated"),
    ("example.org", "MX", "; fully validated"),
    ("example.org", "DNSKEY", "; fully validated"),
    ("example.org", "SOA", "; fully validated"),
    ("alias.example.org", "A", "; fully validated"),
    ("nope.example.org", "A", "; negative response, fully validated"),
    ("www.example.org", "TXT", "; negative response, fully validated"),
    ("x.wild.example.org", "TXT", "; fully validated"),
    ("x.wild.example.org", "A", "; negative response, fully validated"),
    ("b.example.org", "A", "; negative response, fully validated"),
    ("sub.example.org", "DS", "; negative response, fully validated"),
    ("example.org", "CDS", "; negative response, fully validated"),
    ("h1.hosts.example", "A", "; fully validated"),
    ("h1.hosts.example", "AAAA", "; negative response, fully validated"),
    ("nobody.hosts.example", "A", "; negative response, fully validated"),
];

/// A trust-anchors file for delv with `anchor` for both zones.
fn anchors(dir: &TempDir, anchor: &Path) -> PathBuf {
    dnssec::anchors(dir, &["example.org", "hosts.example"], &dnskey(anchor))
}

fn corefile(keys: &[PathBuf]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
    let keys = keys.join(" ");
    format!(
        "example.org:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/db\n    dnssec {{\n        key file {keys}\n    }}\n}}\n\
         hosts.example:{{PORT}} {{\n    bind 127.0.0.1\n    hosts {{\n        192.0.2.77 h1.hosts.example\n    }}\n    dnssec {{\n        key file {keys}\n        cache_capacity 100\n    }}\n}}\n"
    )
}

fn delv(port: u16, anchors: &Path, name: &str, t: &str) -> String {
    let root = if name.ends_with("hosts.example") {
        "hosts.example"
    } else {
        "example.org"
    };
    dnssec::delv(port, anchors, root, name, t)
}

/// The records of the answer and authority sections with DO=1.
fn signed_records(port: u16, name: &str, t: &str) -> Vec<String> {
    dnssec::signed_records(port, &["+answer", "+authority"], name, t)
}

/// The RRSIG records over `covered` among `records`, as their fields.
fn rrsigs<'a>(records: &'a [String], covered: &str) -> Vec<Vec<&'a str>> {
    records
        .iter()
        .map(|r| r.split_whitespace().collect::<Vec<_>>())
        .filter(|f| f.get(3) == Some(&"RRSIG") && f.get(4) == Some(&covered))
        .collect()
}

/// Serves ZONE and the hosts zone signed with `keys`, the trust anchor being `anchor`:
/// delv validates every case, and nothing without DO is signed.
fn validates(driver: &str, dir: &TempDir, keys: &[PathBuf], anchor: &Path) -> Server {
    // One shard: each shard has its own cache, and the tests look at one.
    let s = Server::start(
        Options::new(driver, &corefile(keys))
            .file("db", ZONE)
            .arg("--shards")
            .arg("1"),
    );
    let anchors = anchors(dir, anchor);
    for (name, t, want) in CASES {
        let v = delv(s.port, &anchors, name, t);
        assert!(v.contains(want), "{name} {t}: delv says\n{v}");
    }
    // Black lies (RFC 9824): no NXDOMAIN, an NSEC at the name itself.
    let nx = signed_records(s.port, "nope.example.org", "A");
    assert!(
        nx.iter()
            .any(|r| r.starts_with("nope.example.org.") && r.contains(" NSEC \\000.nope.example.org.")),
        "{nx:?}"
    );
    let plain = kdig_records(&kdig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "+noall",
        "+answer",
        "www.example.org",
        "A",
    ]));
    assert_eq!(plain.len(), 1, "no RRSIG without DO: {plain:?}");
    s
}

both_drivers!(ecdsa_key_signs_every_answer_and_caches_its_signatures, |driver| {
    let dir = TempDir::new("online-ecdsa");
    let key = keygen(dir.path(), "example.org", "ECDSAP256SHA256", false);
    let s = validates(driver, &dir, std::slice::from_ref(&key), &key);
    // ECDSA signatures are randomised: the same bytes twice are the cache's.
    let first = signed_records(s.port, "www.example.org", "A");
    let again = signed_records(s.port, "www.example.org", "A");
    assert_eq!(rrsigs(&first, "A").len(), 1, "{first:?}");
    assert_eq!(rrsigs(&first, "A"), rrsigs(&again, "A"));
});

both_drivers!(ed25519_ksk_signs_the_dnskey_rrset_and_the_zsk_the_rest, |driver| {
    let dir = TempDir::new("online-ed25519");
    let ksk = keygen(dir.path(), "example.org", "ED25519", true);
    let zsk = keygen(dir.path(), "example.org", "ED25519", false);
    let s = validates(driver, &dir, &[ksk.clone(), zsk.clone()], &ksk);
    let tag = |k: &Path| {
        k.to_string_lossy()
            .rsplit('+')
            .next()
            .unwrap()
            .trim_start_matches('0')
            .to_string()
    };
    let keyset = signed_records(s.port, "example.org", "DNSKEY");
    let sigs = rrsigs(&keyset, "DNSKEY");
    assert_eq!(sigs.len(), 1, "{keyset:?}");
    assert_eq!(sigs[0][10], tag(&ksk), "the KSK signs DNSKEY: {keyset:?}");
    assert_eq!(keyset.iter().filter(|r| r.contains(" IN DNSKEY ")).count(), 2);
    let www = signed_records(s.port, "www.example.org", "A");
    let sigs = rrsigs(&www, "A");
    assert_eq!(sigs.len(), 1, "{www:?}");
    assert_eq!(sigs[0][10], tag(&zsk), "the ZSK signs the rest: {www:?}");
});

both_drivers!(rsa_sha256_key_signs, |driver| {
    let dir = TempDir::new("online-rsa");
    let key = keygen(dir.path(), "example.org", "RSASHA256", false);
    validates(driver, &dir, std::slice::from_ref(&key), &key);
});

// An unbound that validates with the key as its trust anchor and asks ringdns (a stub
// zone) sets AD on the positive and the negative answers it relays.
both_drivers!(unbound_validates_what_it_forwards, |driver| {
    let dir = TempDir::new("online-unbound");
    let key = keygen(dir.path(), "example.org", "ECDSAP256SHA256", false);
    let s = Server::start(Options::new(driver, &corefile(std::slice::from_ref(&key))).file("db", ZONE));
    let [flags, proto, alg, k] = dnskey(&key);
    let port = free_port();
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{d}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  \
         do-ip6: no\n  access-control: 127.0.0.0/8 allow\n  do-not-query-localhost: no\n  module-config: \"validator iterator\"\n  \
         trust-anchor: \"example.org. DNSKEY {flags} {proto} {alg} {k}\"\n  val-log-level: 2\n\
         stub-zone:\n  name: \"example.org\"\n  stub-addr: 127.0.0.1@{sp}\n",
        d = dir.path().display(),
        sp = s.port,
    );
    let conf_path = dir.write("unbound.conf", &conf);
    let mut child = Command::new("/usr/sbin/unbound")
        .args(["-d", "-c"])
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("unbound.log")).unwrap())
        .spawn()
        .expect("unbound (test.sh installs it)");
    let ask = |name: &str, t: &str| {
        kdig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+dnssec",
            "+time=2",
            "+retry=0",
            name,
            t,
        ])
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ask("www.example.org", "A").contains("NOERROR") {
        assert!(
            Instant::now() < deadline,
            "unbound did not answer: {}",
            std::fs::read_to_string(dir.path().join("unbound.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (name, t, rcode) in [
        ("www.example.org", "A", "NOERROR"),
        ("nope.example.org", "A", "NOERROR"),
        ("www.example.org", "TXT", "NOERROR"),
        ("x.wild.example.org", "TXT", "NOERROR"),
    ] {
        let out = ask(name, t);
        let flags = out.lines().find(|l| l.starts_with(";; Flags:")).unwrap_or_default();
        assert!(
            flags.contains(" ad"),
            "{name} {t}: unbound did not validate:\n{out}\n{}",
            std::fs::read_to_string(dir.path().join("unbound.log")).unwrap_or_default()
        );
        assert!(out.contains(rcode), "{name} {t}: {out}");
    }
    let _ = child.kill();
    let _ = child.wait();
});

// Signatures are made again two days before they expire (eight days after they were
// made, CoreDNS's window), not before: libfaketime reads the clock's offset from a file
// the test rewrites.
both_drivers!(signatures_are_refreshed_two_days_before_they_expire, |driver| {
    let dir = TempDir::new("online-refresh");
    let key = keygen(dir.path(), "example.org", "ECDSAP256SHA256", false);
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(Path::new(lib).exists(), "faketime is installed by test.sh");
    let offset = dir.write("faketime", "+0d\n");
    let s = Server::start(
        Options::new(driver, &corefile(std::slice::from_ref(&key)))
            .file("db", ZONE)
            .arg("--shards")
            .arg("1")
            .env("LD_PRELOAD", lib)
            .env("FAKETIME_TIMESTAMP_FILE", &offset.display().to_string())
            .env("FAKETIME_NO_CACHE", "1")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    );
    let sig = |label: &str| -> (u64, u64, String) {
        let r = signed_records(s.port, "www.example.org", "A");
        let f = rrsigs(&r, "A")
            .first()
            .cloned()
            .unwrap_or_else(|| panic!("{label}: {r:?}"))
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>();
        (f[8].parse().unwrap(), f[9].parse().unwrap(), f[12..].concat())
    };
    let (exp0, inc0, sig0) = sig("now");
    // Five days on, three are left: the cached signature stays.
    std::fs::write(&offset, "+5d\n").unwrap();
    assert_eq!(sig("+5d"), (exp0, inc0, sig0.clone()));
    // Seven days on, one is left: signed again, valid from three hours before "now".
    std::fs::write(&offset, "+7d\n").unwrap();
    let (exp1, inc1, sig1) = sig("+7d");
    assert_ne!(sig1, sig0);
    assert!(inc1 > inc0 && exp1 > exp0, "{inc0} {exp0} -> {inc1} {exp1}");
});

/// Key errors name the Corefile's line and the file; CoreDNS's other key source and a
/// second `dnssec` in a block are refused.
#[test]
fn key_errors_name_the_line_and_the_file() {
    let dir = TempDir::new("online-errors");
    let bad = dir.write("Kbad.+013+00001.key", "example.org. IN DNSKEY 256 3 13 AAAA\n");
    dir.write(
        "Kbad.+013+00001.private",
        "Private-key-format: v1.3\nAlgorithm: 13 (ECDSAP256SHA256)\nPrivateKey: AAAA\n",
    );
    let cases = [
        (
            "dnssec {\n        key file /nonexistent/Kx\n    }",
            "Corefile:3",
            "/nonexistent/Kx.key",
        ),
        (
            &format!("dnssec {{\n        key file {}\n    }}", bad.display()),
            "Corefile:3",
            "does not hold",
        ),
        (
            "dnssec {\n        key aws_secretsmanager Kx\n    }",
            "Corefile:3",
            "aws_secretsmanager",
        ),
        (
            "dnssec {\n        cache_capacity 10\n    }",
            "Corefile:2",
            "needs a key",
        ),
        (
            "dnssec {\n        key file /k\n        cache_capacity none\n    }",
            "Corefile:4",
            "cache_capacity",
        ),
    ];
    for (directive, at, says) in cases {
        let text = format!("example.org:1053 {{\n    {directive}\n    whoami\n}}\n");
        let err = support::server::check(&text).expect_err(directive);
        assert!(err.contains(at) && err.contains(says), "{directive}: {err}");
    }
}

// CoreDNS's dnssec metrics: the signature cache's hits, misses and entries, per server;
// promtool accepts the exposition.
both_drivers!(cache_counts_are_in_the_metrics, |driver| {
    let dir = TempDir::new("online-metrics");
    let key = keygen(dir.path(), "example.org", "ECDSAP256SHA256", false);
    let corefile = format!(
        "example.org:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/db\n    prometheus 127.0.0.1:{{PORT2}}\n    dnssec {{\n        key file {}\n    }}\n}}\n",
        key.display()
    );
    let s = Server::start(
        Options::new(driver, &corefile)
            .file("db", ZONE)
            .arg("--shards")
            .arg("1"),
    );
    for _ in 0..3 {
        signed_records(s.port, "www.example.org", "A");
    }
    let scrape = || {
        let out = Command::new("curl")
            .args(["-s", &format!("http://127.0.0.1:{}/metrics", s.port2)])
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let value = |text: &str, family: &str| -> Option<u64> {
        text.lines()
            .find(|l| l.starts_with(family) && l.contains(&format!("server=\"dns://127.0.0.1:{}\"", s.port)))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    let text = scrape();
    // The first answer signs (a miss), the next two are cache hits.
    assert_eq!(value(&text, "coredns_dnssec_cache_hits_total"), Some(2), "{text}");
    assert_eq!(value(&text, "coredns_dnssec_cache_misses_total"), Some(1), "{text}");
    assert_eq!(value(&text, "coredns_dnssec_cache_entries"), Some(1), "{text}");
    let check = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "curl -s http://127.0.0.1:{}/metrics | promtool check metrics",
            s.port2
        ))
        .output()
        .expect("promtool (test.sh installs prometheus)");
    let said = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
    assert!(!said.contains("dnssec"), "promtool: {said}");
});

// `template` answers are signed too (CoreDNS signs whatever the plugins after `dnssec`
// answer): the README's address template and an NXDOMAIN template, and the DNSKEY of a
// zone that only templates serve.
both_drivers!(template_answers_are_signed, |driver| {
    let dir = TempDir::new("online-template");
    let key = keygen(dir.path(), "example.net", "ECDSAP256SHA256", false);
    let corefile = format!(
        "example.net:{{PORT}} {{\n    bind 127.0.0.1\n    template IN A example.net {{\n        match \"^ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]net[.]$\"\n        answer \"{{{{ .Name }}}} 60 IN A {{{{ .Group.a }}}}.{{{{ .Group.b }}}}.{{{{ .Group.c }}}}.{{{{ .Group.d }}}}\"\n        fallthrough\n    }}\n    template IN ANY nx.example.net {{\n        rcode NXDOMAIN\n        authority \"example.net. 60 IN SOA ns.example.net. h.example.net. 1 60 60 60 60\"\n    }}\n    dnssec {{\n        key file {}\n    }}\n}}\n",
        key.display()
    );
    let s = Server::start(Options::new(driver, &corefile));
    let anchors = dnssec::anchors(&dir, &["example.net"], &dnskey(&key));
    for (name, t, want) in [
        ("ip-192-0-2-1.example.net", "A", "; fully validated"),
        ("example.net", "DNSKEY", "; fully validated"),
        ("x.nx.example.net", "A", "; negative response, fully validated"),
        ("x.nx.example.net", "TXT", "; negative response, fully validated"),
    ] {
        let v = dnssec::delv(s.port, &anchors, "example.net", name, t);
        assert!(v.contains(want), "{name} {t}: delv says\n{v}");
    }
});

// `secondary` (Knot DNS as the hidden primary) and `auto` zones are signed online as well.
both_drivers!(secondary_and_auto_zones_are_signed, |driver| {
    let dir = TempDir::new("online-secondary");
    let key = keygen(dir.path(), "example.org", "ECDSAP256SHA256", false);
    let knot = Knot::primary(&[("example.org", ZONE)], None);
    std::fs::create_dir_all(dir.path().join("auto")).unwrap();
    dir.write("auto/db.auto.example", &ZONE.replace("example.org.", "auto.example."));
    let keyfile = key.display().to_string();
    let corefile = format!(
        "example.org:{{PORT}} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from 127.0.0.1:{kp}\n        directory {{DIR}}/zones\n    }}\n    dnssec {{\n        key file {keyfile}\n    }}\n}}\n\
         auto.example:{{PORT}} {{\n    bind 127.0.0.1\n    auto {{\n        directory {d}/auto\n    }}\n    dnssec {{\n        key file {keyfile}\n    }}\n}}\n",
        kp = knot.port,
        d = dir.path().display(),
    );
    let s = Server::start(Options::new(driver, &corefile));
    let anchors = dnssec::anchors(&dir, &["example.org", "auto.example"], &dnskey(&key));
    let ask = |root: &str, name: &str, t: &str| dnssec::delv(s.port, &anchors, root, name, t);
    assert!(
        eventually(10, || ask("example.org", "www.example.org", "A")
            .contains("; fully validated")),
        "the transferred zone is signed: {}",
        s.log()
    );
    for (root, name, t, want) in [
        (
            "example.org",
            "nope.example.org",
            "A",
            "; negative response, fully validated",
        ),
        ("auto.example", "www.auto.example", "A", "; fully validated"),
        (
            "auto.example",
            "nope.auto.example",
            "A",
            "; negative response, fully validated",
        ),
        ("auto.example", "auto.example", "DNSKEY", "; fully validated"),
    ] {
        let v = ask(root, name, t);
        assert!(v.contains(want), "{name} {t}: delv says\n{v}");
    }
});
