//! Black-box: zones signed by BIND's dnssec-signzone (bind9-utils) with NSEC, NSEC3 and
//! NSEC3 with Opt-Out, served by ringdns, validated by delv (bind9-dnsutils) from the
//! zone's own trust anchor for every class of answer (positive, NXDOMAIN, NODATA,
//! wildcard, wildcard NODATA, an empty non-terminal, a name below an existing one, DS at a
//! secure and at an insecure delegation), and answered as Knot DNS answers the same signed
//! zone (the records of every section, in any order; referrals included).

mod support;

use std::path::Path;
use std::process::Command;

use support::dnssec;
use support::knot::Knot;
use support::server::{Options, Server, TempDir};
use support::{kdig, kdig_records};

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww AAAA 2001:db8::10\n*.wild TXT \"wild\"\nc.b A 192.0.2.2\nmail A 192.0.2.25\n@ MX 10 mail\nsub NS ns.sub\nns.sub A 192.0.2.53\nsec NS ns.sec\nns.sec A 192.0.2.54\nsec DS 12345 13 2 2BB183AF5F22588179A53B0A98631FAD1A292118D83C1B2A6C5D0E4A7B1C2D3E\n";

/// The queries: (name, type, what delv must conclude).
const CASES: &[(&str, &str, &str)] = &[
    ("www.example.test", "A", "; fully validated"),
    ("example.test", "MX", "; fully validated"),
    ("nope.example.test", "A", "; negative response, fully validated"),
    ("www.example.test", "TXT", "; negative response, fully validated"),
    ("x.wild.example.test", "TXT", "; fully validated"),
    ("x.wild.example.test", "A", "; negative response, fully validated"),
    ("b.example.test", "A", "; negative response, fully validated"),
    ("q.c.b.example.test", "A", "; negative response, fully validated"),
    ("zzz.example.test", "AAAA", "; negative response, fully validated"),
    ("sec.example.test", "DS", "; fully validated"),
    ("sub.example.test", "DS", "; negative response, fully validated"),
    ("example.test", "DNSKEY", "; fully validated"),
    ("example.test", "CDS", "; negative response, fully validated"),
    ("example.test", "CDNSKEY", "; negative response, fully validated"),
];

/// Referrals (delv asks for recursion, so these are compared with Knot only).
const REFERRALS: &[(&str, &str)] = &[("www.sub.example.test", "A"), ("www.sec.example.test", "A")];

/// The denial chain of the signed zone, and who signs it.
#[derive(Clone, Copy, Debug)]
enum Chain {
    /// dnssec-signzone, ECDSA P-256.
    Nsec,
    Nsec3,
    Nsec3OptOut,
    /// Knot's kzonesign with a policy of its own keys (keymgr): Ed25519, NSEC3 with
    /// Opt-Out, CDS and CDNSKEY published.
    KnotNsec3OptOut,
}

impl Chain {
    fn args(self) -> &'static [&'static str] {
        match self {
            Chain::Nsec | Chain::KnotNsec3OptOut => &[],
            // RFC 9276 §3.1: no extra iterations; a salt still, to see it used.
            Chain::Nsec3 => &["-3", "aabbccdd", "-H", "0"],
            Chain::Nsec3OptOut => &["-3", "-", "-H", "0", "-A"],
        }
    }

    fn record(self) -> &'static str {
        match self {
            Chain::Nsec => "NSEC",
            _ => "NSEC3",
        }
    }

    fn opt_out(self) -> bool {
        matches!(self, Chain::Nsec3OptOut | Chain::KnotNsec3OptOut)
    }
}

/// Signs ZONE with a new ECDSA P-256 KSK and ZSK and the `chain`: the signed text and
/// delv's trust anchor file.
fn signed(dir: &TempDir, chain: Chain) -> (String, std::path::PathBuf) {
    signed_with(dir, chain, &[])
}

/// [`signed`], with more arguments for dnssec-signzone.
fn signed_with(dir: &TempDir, chain: Chain, extra: &[&str]) -> (String, std::path::PathBuf) {
    if let Chain::KnotNsec3OptOut = chain {
        return knot_signed(dir);
    }
    let d = dir.path();
    let keygen = |extra: &[&str]| {
        let out = Command::new("dnssec-keygen")
            .current_dir(d)
            .args(["-q", "-a", "ECDSAP256SHA256"])
            .args(extra)
            .arg("example.test")
            .output()
            .expect("dnssec-keygen (test.sh installs bind9-utils)");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let (ksk, zsk) = (keygen(&["-f", "KSK"]), keygen(&[]));
    let key_text = |k: &str| std::fs::read_to_string(d.join(format!("{k}.key"))).unwrap();
    let db = dir.write("db", &format!("{ZONE}{}{}", key_text(&ksk), key_text(&zsk)));
    let out = Command::new("dnssec-signzone")
        .current_dir(d)
        .args(["-q", "-o", "example.test", "-N", "keep", "-f", "db.signed"])
        .args(chain.args())
        .args(extra)
        .arg(&db)
        .args([&zsk, &ksk])
        .output()
        .expect("dnssec-signzone");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let signed = std::fs::read_to_string(d.join("db.signed")).unwrap();
    assert!(signed.contains(&format!(" {} ", chain.record())), "{chain:?} chain");
    // The KSK's public key, as delv takes a trust anchor.
    let anchors = dnssec::anchors(dir, &["example.test"], &dnssec::dnskey_fields(&key_text(&ksk)));
    (signed, anchors)
}

/// Signs ZONE with Knot's kzonesign under an automatic policy (keys made by Knot, kept
/// in its KASP database; keymgr prints the KSK for the trust anchor).
fn knot_signed(dir: &TempDir) -> (String, std::path::PathBuf) {
    let d = dir.path().display().to_string();
    dir.write("example.test.zone", ZONE);
    let conf = dir.write(
        "knot.conf",
        &format!(
            "database:\n    storage: \"{d}\"\npolicy:\n  - id: p\n    algorithm: ed25519\n    nsec3: on\n    nsec3-iterations: 0\n    nsec3-opt-out: on\n    cds-cdnskey-publish: always\ntemplate:\n  - id: default\n    storage: \"{d}\"\n    dnssec-signing: on\n    dnssec-policy: p\nzone:\n  - domain: example.test\n    file: example.test.zone\n"
        ),
    );
    let out = Command::new("kzonesign")
        .arg("-c")
        .arg(&conf)
        .arg("-o")
        .arg(dir.path().join("out"))
        .arg("example.test")
        .output()
        .expect("kzonesign (test.sh installs knot-dnssecutils)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let signed = std::fs::read_to_string(dir.path().join("out/example.test.zone")).unwrap();
    assert!(signed.contains("NSEC3PARAM") && signed.contains("CDNSKEY"), "{signed}");
    // keymgr prints the KSK's DNSKEY: "example.test. DNSKEY 257 3 15 <key>".
    let out = Command::new("keymgr")
        .arg("-c")
        .arg(&conf)
        .args(["example.test", "dnskey"])
        .output()
        .expect("keymgr");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("DNSKEY 257"))
        .unwrap_or_else(|| panic!("keymgr: {text}"));
    (
        signed,
        dnssec::anchors(dir, &["example.test"], &dnssec::dnskey_fields(line)),
    )
}

/// delv validating from the zone's trust anchor.
fn delv(port: u16, anchors: &Path, name: &str, t: &str) -> String {
    dnssec::delv(port, anchors, "example.test", name, t)
}

/// delv's conclusion: its first comment line.
fn verdict(delv: &str) -> String {
    delv.lines()
        .find(|l| l.starts_with("; "))
        .unwrap_or_default()
        .to_string()
}

/// Every record of every section for `name type` with DO=1, sorted (kdig's order is the
/// server's; the sets are what must agree).
fn sections(port: u16, name: &str, t: &str) -> Vec<String> {
    let mut v = dnssec::signed_records(port, &["+answer", "+authority", "+additional"], name, t);
    v.sort();
    v
}

/// Serves the zone signed with `chain` from ringdns and Knot: delv validates ringdns's
/// answers, and both servers give the same records.
fn denials_validate_and_match_knot(driver: &str, chain: Chain) {
    let dir = TempDir::new("dnssec");
    let (text, anchors) = signed(&dir, chain);
    let s = Server::start(
        Options::new(
            driver,
            "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/db.signed\n}\n",
        )
        .file("db.signed", text.clone()),
    );
    let knot = Knot::primary(&[("example.test", &text)], None);
    for (name, t, want) in CASES {
        let v = delv(s.port, &anchors, name, t);
        match chain {
            // An Opt-Out NSEC3 covering a name leaves it possibly an unsigned delegation
            // (RFC 5155 §9.2), so some answers validate only as insecure: the verdict must
            // be the one delv reaches on Knot's answer, and never a failure.
            _ if chain.opt_out() => {
                let knot_verdict = verdict(&delv(knot.port, &anchors, name, t));
                assert_eq!(verdict(&v), knot_verdict, "{chain:?} {name} {t}: delv says\n{v}");
                assert!(
                    v.contains("fully validated") || v.contains("unsigned answer"),
                    "{name} {t}: {v}"
                );
                // Data that exists is proven by its own signature, Opt-Out or not.
                if *want == "; fully validated" && !name.contains("wild") {
                    assert!(v.contains(want), "{chain:?} {name} {t}: {v}");
                }
            }
            _ => assert!(v.contains(want), "{chain:?} {name} {t}: delv says\n{v}"),
        }
        assert_eq!(
            sections(s.port, name, t),
            sections(knot.port, name, t),
            "{chain:?} {name} {t}"
        );
    }
    for (name, t) in REFERRALS {
        let ours = sections(s.port, name, t);
        assert!(ours.iter().any(|r| r.contains(" IN NS ")), "{chain:?} {name}: {ours:?}");
        assert_eq!(ours, sections(knot.port, name, t), "{chain:?} {name} {t}");
    }
    // A hashed owner is no name to ask about (RFC 5155 §7.2.8): as if it did not exist.
    if let Some(hashed) = text.lines().find(|l| l.contains(" NSEC3 ") && !l.contains("RRSIG")) {
        let owner = hashed.split_whitespace().next().unwrap();
        for t in ["NSEC3", "A"] {
            let ours = sections(s.port, owner, t);
            assert!(
                !ours
                    .iter()
                    .any(|r| r.starts_with(owner) && r.contains(" IN NSEC3 ") && r.contains(t)),
                "{ours:?}"
            );
            assert_eq!(ours, sections(knot.port, owner, t), "{chain:?} {owner} {t}");
        }
    }
    // RFC 4035 §3.2.3 and RFC 6840 §5.9: an authoritative answer never sets AD, even when
    // asked to (RFC 6840 §5.7), and copies CD; DO is echoed (RFC 3225 §3).
    let head = kdig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "+dnssec",
        "+adflag",
        "+cdflag",
        "www.example.test",
        "A",
    ]);
    let flags = head.lines().find(|l| l.starts_with(";; Flags:")).unwrap_or_default();
    assert!(flags.contains(" cd") && !flags.contains(" ad"), "{head}");
    assert!(
        head.lines().any(|l| l.starts_with(";; Version: 0; flags: do;")),
        "{head}"
    );
    // Without DO: no NSEC(3), no RRSIG.
    let plain = kdig_records(&kdig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "+noall",
        "+authority",
        "nope.example.test",
        "A",
    ]));
    assert_eq!(plain.len(), 1, "{plain:?}");
}

both_drivers!(nsec_denials_validate_and_match_knot, |driver| {
    denials_validate_and_match_knot(driver, Chain::Nsec);
});

both_drivers!(nsec3_denials_validate_and_match_knot, |driver| {
    denials_validate_and_match_knot(driver, Chain::Nsec3);
});

both_drivers!(nsec3_opt_out_denials_validate_and_match_knot, |driver| {
    denials_validate_and_match_knot(driver, Chain::Nsec3OptOut);
});

both_drivers!(knot_signed_zone_validates_and_matches_knot, |driver| {
    denials_validate_and_match_knot(driver, Chain::KnotNsec3OptOut);
});

// A signed zone with faults is served as it is, with a warning at load naming the first
// broken record of each kind (README: "Signed zones").
both_drivers!(broken_signed_zones_are_served_with_a_warning, |driver| {
    let dir = TempDir::new("dnssec-broken");
    // Signatures of 2020, expired; -P: dnssec-signzone would refuse to verify them.
    let (text, _) = signed_with(
        &dir,
        Chain::Nsec,
        &["-P", "-s", "20200101000000", "-e", "20200201000000"],
    );
    let text = format!("{text}extra.example.test. 300 IN A 192.0.2.99\n");
    let mut s = Server::spawn(
        Options::new(
            driver,
            "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/db.signed\n}\n",
        )
        .file("db.signed", text),
    );
    s.wait_ready();
    let log = s.log();
    assert!(
        log.contains("signatures expired") && log.contains("RRSIG"),
        "the expired signatures named: {log}"
    );
    assert!(
        log.contains("RRsets without an RRSIG") && log.contains("extra.example.test. A"),
        "the unsigned RRset named: {log}"
    );
    let www = kdig_records(&kdig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "+dnssec",
        "+noall",
        "+answer",
        "www.example.test",
        "A",
    ]));
    assert!(
        www.iter().any(|r| r.contains(" RRSIG A ")),
        "still served, signatures and all: {www:?}"
    );
});
