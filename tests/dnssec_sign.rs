//! Black-box: offline signing (`sign DBFILE { key file KEY; directory DIR }`) with a key
//! from BIND's dnssec-keygen. ldns-verify-zone (ldnsutils) verifies what it writes; `file`
//! serves it; delv (bind9-dnsutils) validates every class of answer from the key as trust
//! anchor and Knot DNS serving the same file answers the same; an edited zone file is
//! signed again on SIGHUP, and signatures made 20 days ago (libfaketime) are renewed.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::knot::Knot;
use support::server::{Options, Server, TempDir};
use support::{dnssec, eventually};

const ZONE: &str = "$ORIGIN example.org.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww AAAA 2001:db8::10\n*.wild TXT \"wild\"\nc.b A 192.0.2.2\n@ MX 10 mail\nmail A 192.0.2.25\nsub NS ns.sub\nns.sub A 192.0.2.53\nsec NS ns.sec\nns.sec A 192.0.2.54\nsec DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118D83C1B2A6C5D0E4A7B1C2D3E\n";

const CASES: &[(&str, &str, &str)] = &[
    ("www.example.org", "A", "; fully validated"),
    ("example.org", "MX", "; fully validated"),
    ("example.org", "DNSKEY", "; fully validated"),
    ("example.org", "CDS", "; fully validated"),
    ("example.org", "CDNSKEY", "; fully validated"),
    ("nope.example.org", "A", "; negative response, fully validated"),
    ("www.example.org", "TXT", "; negative response, fully validated"),
    ("x.wild.example.org", "TXT", "; fully validated"),
    ("x.wild.example.org", "A", "; negative response, fully validated"),
    ("b.example.org", "A", "; negative response, fully validated"),
    ("q.c.b.example.org", "A", "; negative response, fully validated"),
    ("sub.example.org", "DS", "; negative response, fully validated"),
    ("sec.example.org", "DS", "; fully validated"),
];

/// A KSK from dnssec-keygen: its base name and delv's trust anchor file.
fn key(dir: &TempDir) -> (PathBuf, PathBuf) {
    let base = dnssec::keygen(dir.path(), "example.org", "ECDSAP256SHA256", true);
    let anchors = dnssec::anchors(dir, &["example.org"], &dnssec::dnskey(&base));
    (base, anchors)
}

fn corefile(dir: &Path, key: &Path) -> String {
    let d = dir.display();
    format!(
        "example.org:{{PORT}} {{\n    bind 127.0.0.1\n    file {d}/out/db.example.org.signed {{\n        reload 0\n    }}\n    sign {d}/db.example.org {{\n        key file {}\n        directory {d}/out\n    }}\n}}\n",
        key.display()
    )
}

fn delv(port: u16, anchors: &Path, name: &str, t: &str) -> String {
    dnssec::delv(port, anchors, "example.org", name, t)
}

fn verify(path: &Path) {
    let out = Command::new("ldns-verify-zone")
        .arg(path)
        .output()
        .expect("ldns-verify-zone (test.sh installs ldnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("Zone is verified and complete"),
        "{text}"
    );
}

/// The inception of the SOA's RRSIG in the signed file (seconds, as written).
fn soa_inception(path: &Path) -> u64 {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text.lines().find(|l| l.contains(" RRSIG SOA ")).unwrap();
    line.split_whitespace().nth(9).unwrap().parse().unwrap()
}

both_drivers!(signed_zone_verifies_validates_and_matches_knot, |driver| {
    let dir = TempDir::new("sign");
    let (key, anchors) = key(&dir);
    dir.write("db.example.org", ZONE);
    let s = Server::start(Options::new(driver, &corefile(dir.path(), &key)));
    let signed = dir.path().join("out/db.example.org.signed");
    verify(&signed);
    let text = std::fs::read_to_string(&signed).unwrap();
    let knot = Knot::primary(&[("example.org", &text)], None);
    for (name, t, want) in CASES {
        let v = delv(s.port, &anchors, name, t);
        assert!(v.contains(want), "{name} {t}: delv says\n{v}");
        assert_eq!(
            dnssec::sections(s.port, name, t),
            dnssec::sections(knot.port, name, t),
            "{name} {t}"
        );
    }
    assert!(s.log().contains("zone signed"), "{}", s.log());
});

both_drivers!(an_edited_zone_file_is_signed_again_on_sighup, |driver| {
    let dir = TempDir::new("sign-edit");
    let (key, anchors) = key(&dir);
    dir.write("db.example.org", ZONE);
    let s = Server::start(Options::new(driver, &corefile(dir.path(), &key)));
    // A second later, so the edit's time is after the signed file's.
    std::thread::sleep(Duration::from_millis(1100));
    dir.write("db.example.org", &format!("{ZONE}new A 192.0.2.99\n"));
    s.signal("HUP");
    assert!(
        eventually(10, || delv(s.port, &anchors, "new.example.org", "A")
            .contains("; fully validated")),
        "{}",
        s.log()
    );
    verify(&dir.path().join("out/db.example.org.signed"));
    assert!(s.log().contains("the zone file changed"), "{}", s.log());
});

both_drivers!(signatures_made_20_days_ago_are_renewed, |driver| {
    let dir = TempDir::new("sign-old");
    let (key, _) = key(&dir);
    dir.write("db.example.org", ZONE);
    let signed = dir.path().join("out/db.example.org.signed");
    let first = Server::start(Options::new(driver, &corefile(dir.path(), &key)));
    let (_, _) = first.stop();
    let old = soa_inception(&signed);
    // Twenty days on, the signatures (at most 37 days) are 20 days old: signed again.
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(Path::new(lib).exists(), "faketime is installed by test.sh");
    let later = Server::start(
        Options::new(driver, &corefile(dir.path(), &key))
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", "+20d")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    );
    assert!(later.log().contains("signed 20 days ago"), "{}", later.log());
    assert!(soa_inception(&signed) > old);
});
