//! Black-box: RFC 2136 updates with TSIG from BIND's `nsupdate` and Knot's `knsupdate`:
//! the ways ACME clients publish a DNS-01 value (lego deletes the RRset and adds, certbot
//! adds and deletes one value, acme.sh deletes the name), served by every shard at once,
//! the serial bumped, carried by IXFR, kept across a restart; refused unsigned, with a
//! wrong secret, with a key granted another name, and for a type not allowed.

mod support;

use std::process::Command;

use domain::base::iana::Rtype;
use support::server::{Options, Server, TempDir};
use support::{kdig, q};

const ACME_KEY: &str = "acme.key";
const OTHER_KEY: &str = "host.key";
const SECRET: &str = "NoTCJU+DMqFWywaPyxSijrDEA/eC3nK0xi3AMEZuPVk=";
const OTHER_SECRET: &str = "c2Vjb25kIGtleSwgYW5vdGhlciBzZWNyZXQsIG9rIQ==";
const WRONG: &str = "bm90IHRoZSBzZWNyZXQgYXQgYWxsLCBzb3JyeSEhIQ==";

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 10 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nhost A 192.0.2.20\n";

const ACME: &str = "_acme-challenge.www.example.test";
const XFR_KEY: &str = "xfr.key";

/// A server of the zone in `dir` (the zone file and the update log outlive the server).
fn server(driver: &str, dir: &TempDir) -> Server {
    let d = dir.path().display();
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {d}/example.test.zone\n    tsig {{\n        secret {ACME_KEY}. {SECRET}\n        secret {OTHER_KEY}. {OTHER_SECRET}\n    }}\n    update {{\n        key {ACME_KEY}\n        key {OTHER_KEY} host.example.test\n        directory {d}/updates\n    }}\n    transfer {{\n        to *\n    }}\n}}\n"
    );
    Server::start(Options::new(driver, &corefile))
}

/// Runs `tool` (nsupdate or knsupdate) with `args` and `script` on stdin: (success, output).
fn run_update(tool: &str, args: &[&str], script: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(tool)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} (test.sh installs it): {e}"));
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn nsupdate(port: u16, key: Option<(&str, &str)>, commands: &str) -> (bool, String) {
    let y = key.map(|(n, s)| format!("hmac-sha256:{n}:{s}"));
    let mut args = vec!["-t", "3"];
    if let Some(y) = &y {
        args.extend(["-y", y]);
    }
    run_update(
        "nsupdate",
        &args,
        &format!("server 127.0.0.1 {port}\nzone example.test\n{commands}send\n"),
    )
}

fn nsupdate_tcp(port: u16, key: Option<(&str, &str)>, commands: &str) -> (bool, String) {
    let (n, sec) = key.unwrap();
    let y = format!("hmac-sha256:{n}:{sec}");
    run_update(
        "nsupdate",
        &["-v", "-t", "3", "-y", &y],
        &format!("server 127.0.0.1 {port}\nzone example.test\n{commands}send\n"),
    )
}

fn knsupdate(port: u16, key: (&str, &str), commands: &str) -> (bool, String) {
    let y = format!("hmac-sha256:{}:{}", key.0, key.1);
    run_update(
        "knsupdate",
        &["-t", "3", "-y", &y],
        &format!("server 127.0.0.1 {port}\nzone example.test.\n{commands}send\nanswer\n"),
    )
}

/// The TXT values at `name`, asked on a fresh socket each time (a fresh source port: the
/// kernel spreads them over the shards).
fn txt(s: &Server, name: &str) -> Vec<String> {
    let mut v: Vec<String> = s
        .udp(&q(name, Rtype::TXT))
        .answer()
        .into_iter()
        .map(|a| a.data)
        .collect();
    v.sort();
    v
}

fn serial(s: &Server) -> u32 {
    let soa = s.udp(&q("example.test", Rtype::SOA)).answer();
    soa.first()
        .and_then(|a| a.data.split_whitespace().nth(2)?.parse().ok())
        .unwrap_or(0)
}

both_drivers!(acme_clients_publish_and_remove_their_values, |driver| {
    let dir = TempDir::new("update");
    dir.write("example.test.zone", ZONE);
    let s = server(driver, &dir);
    let key = Some((ACME_KEY, SECRET));
    // lego: delete the RRset, add the value.
    let (ok, out) = nsupdate(
        s.port,
        key,
        &format!("update delete {ACME}. TXT\nupdate add {ACME}. 60 TXT \"lego-value\"\n"),
    );
    assert!(ok, "{out}\n{}", s.log());
    // The next query sees it on every shard: twenty fresh sockets, every one answered.
    for _ in 0..20 {
        assert_eq!(txt(&s, ACME), vec!["\"lego-value\"".to_string()], "{}", s.log());
    }
    assert_eq!(serial(&s), 11, "the serial grew by one (RFC 2136 §3.6)");
    // certbot: adds a second value, then deletes one (with knsupdate).
    let (ok, out) = knsupdate(
        s.port,
        (ACME_KEY, SECRET),
        &format!("add {ACME}. 60 TXT \"certbot-value\"\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(txt(&s, ACME).len(), 2);
    let (ok, out) = knsupdate(
        s.port,
        (ACME_KEY, SECRET),
        &format!("del {ACME}. 60 TXT \"lego-value\"\n"),
    );
    assert!(ok, "{out}");
    assert_eq!(txt(&s, ACME), vec!["\"certbot-value\"".to_string()]);
    // IXFR from the serial before the last update carries it as a difference (RFC 1995):
    // our SOA, the old SOA, the value deleted, the new SOA, ours again (the journal keeps no more differences
    // than the zone has records, so older ones are AXFR-style here).
    let ixfr = kdig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "+tcp",
        "IXFR=12",
        "example.test",
    ]);
    let records = support::kdig_records(&ixfr);
    assert_eq!(records.len(), 5, "{ixfr}");
    assert!(
        records[1].contains(" 12 3600") && records[2].contains("\"lego-value\""),
        "{ixfr}"
    );
    // A prerequisite that does not hold: NXRRSET, nothing changed.
    let (ok, out) = nsupdate(
        s.port,
        key,
        &format!("prereq nxrrset {ACME}. TXT\nupdate add {ACME}. 60 TXT \"x\"\n"),
    );
    assert!(!ok && out.contains("YXRRSET"), "{out}");
    // acme.sh: deletes the whole name (over TCP: nsupdate -v).
    let (ok, out) = nsupdate_tcp(s.port, key, &format!("update delete {ACME}.\n"));
    assert!(ok, "{out}");
    assert!(txt(&s, ACME).is_empty());
    assert_eq!(serial(&s), 14);
    // The A records of the zone were out of the key's reach all along.
    let www = s.udp(&q("www.example.test", Rtype::A)).answer();
    assert_eq!(www.first().map(|a| a.data.as_str()), Some("192.0.2.10"));
});

both_drivers!(unsigned_wrongly_signed_and_ungranted_updates_are_refused, |driver| {
    let dir = TempDir::new("update-refused");
    dir.write("example.test.zone", ZONE);
    let s = server(driver, &dir);
    let add = format!("update add {ACME}. 60 TXT \"v\"\n");
    let (ok, out) = nsupdate(s.port, None, &add);
    assert!(!ok && out.contains("REFUSED"), "unsigned: {out}");
    let (ok, out) = nsupdate(s.port, Some((ACME_KEY, WRONG)), &add);
    assert!(
        !ok && (out.contains("NOTAUTH") || out.contains("BADSIG") || out.contains("tsig")),
        "wrong secret: {out}"
    );
    let (ok, out) = nsupdate(s.port, Some((OTHER_KEY, OTHER_SECRET)), &add);
    assert!(!ok && out.contains("REFUSED"), "a key granted another name: {out}");
    // That key may change its own name, and TXT only.
    let (ok, out) = nsupdate(
        s.port,
        Some((OTHER_KEY, OTHER_SECRET)),
        "update add host.example.test. 60 TXT \"mine\"\n",
    );
    assert!(ok, "{out}\n{}", s.log());
    let (ok, out) = nsupdate(
        s.port,
        Some((OTHER_KEY, OTHER_SECRET)),
        "update add host.example.test. 60 A 192.0.2.99\n",
    );
    assert!(!ok && out.contains("REFUSED"), "a type not allowed: {out}");
    // One change out of the grant refuses the whole message: nothing half-applied.
    let (ok, out) = nsupdate(
        s.port,
        Some((ACME_KEY, SECRET)),
        &format!("{add}update add host.example.test. 60 TXT \"no\"\n"),
    );
    assert!(!ok && out.contains("REFUSED"), "{out}");
    assert!(txt(&s, ACME).is_empty());
    assert_eq!(txt(&s, "host.example.test"), vec!["\"mine\"".to_string()]);
    assert_eq!(serial(&s), 11, "one update applied");
    // Three refusals from one source, one log line (ROBUSTNESS: once a minute per source).
    assert_eq!(s.log().matches("update refused").count(), 1, "{}", s.log());
});

both_drivers!(a_restart_keeps_the_updates_over_the_zone_file, |driver| {
    let dir = TempDir::new("update-restart");
    dir.write("example.test.zone", ZONE);
    let s = server(driver, &dir);
    let (ok, out) = nsupdate(
        s.port,
        Some((ACME_KEY, SECRET)),
        &format!("update add {ACME}. 60 TXT \"kept\"\n"),
    );
    assert!(ok, "{out}");
    s.stop();
    let s = server(driver, &dir);
    assert_eq!(txt(&s, ACME), vec!["\"kept\"".to_string()], "{}", s.log());
    assert_eq!(serial(&s), 11);
    // The operator edits the file (a new serial, a new record): both the edit and the
    // update are served, at a serial past the file's.
    dir.write(
        "example.test.zone",
        &ZONE
            .replace(" 10 3600", " 20 3600")
            .replace("host A", "new A 192.0.2.30\nhost A"),
    );
    s.stop();
    let s = server(driver, &dir);
    assert_eq!(txt(&s, ACME), vec!["\"kept\"".to_string()], "{}", s.log());
    let new = s.udp(&q("new.example.test", Rtype::A)).answer();
    assert_eq!(new.first().map(|a| a.data.as_str()), Some("192.0.2.30"));
    assert_eq!(serial(&s), 21);
    let log = std::fs::read_to_string(dir.path().join("updates/example.test.updates")).unwrap();
    assert!(log.starts_with("; ringdns"), "{log}");
});

// An update is a new version of the zone like any other: announced by NOTIFY to the
// secondaries in `transfer to` and carried by IXFR (Knot's refresh is an hour away).
both_drivers!(a_knot_secondary_follows_an_update_by_notify_and_ixfr, |driver| {
    let dir = TempDir::new("update-knot");
    dir.write("example.test.zone", ZONE);
    let knot_port = support::server::free_port();
    let d = dir.path().display();
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {d}/example.test.zone\n    tsig {{\n        secret {XFR_KEY}. {OTHER_SECRET}\n        secret {ACME_KEY}. {SECRET}\n    }}\n    update {{\n        key {ACME_KEY}\n        directory {d}/updates\n    }}\n    transfer {{\n        to 127.0.0.1:{knot_port}\n    }}\n}}\n"
    );
    let s = Server::start(Options::new(driver, &corefile));
    // The fleet's transfer key comes first in `tsig`: NOTIFYs are signed with it.
    let knot = support::knot::Knot::secondary_keyed("example.test", s.addr, knot_port, Some((XFR_KEY, OTHER_SECRET)));
    let at_knot = || {
        support::kdig_records(&kdig(&[
            "@127.0.0.1",
            "-p",
            &knot.port.to_string(),
            "+norec",
            ACME,
            "TXT",
        ]))
    };
    assert!(
        support::eventually(10, || kdig(&[
            "@127.0.0.1",
            "-p",
            &knot.port.to_string(),
            "example.test",
            "SOA"
        ])
        .contains(" 10 3600")),
        "{}",
        knot.log()
    );
    let (ok, out) = nsupdate(
        s.port,
        Some((ACME_KEY, SECRET)),
        &format!("update add {ACME}. 60 TXT \"to-knot\"\n"),
    );
    assert!(ok, "{out}");
    assert!(
        support::eventually(15, || at_knot() == [format!("{ACME}. 60 IN TXT \"to-knot\"")]),
        "{:?}\n{}\n{}",
        at_knot(),
        knot.log(),
        s.log()
    );
    assert!(knot.log().contains("IXFR"), "{}", knot.log());
});

// The README's examples of update, acme_dns and tls acme's dns pass `ringdns check`.
#[test]
fn the_readme_examples_check() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = TempDir::new("update-readme");
    for (marker, zone) in [
        ("## ACME for other servers: RFC 2136 updates", "example.com"),
        ("## acme-dns: the HTTP API for ACME clients", "auth.example.com"),
        ("**Names ringdns does not serve**", "example.com"),
    ] {
        let db = dir.write(
            &format!("db.{zone}"),
            &ZONE.replace("example.test.", &format!("{zone}.")),
        );
        let at = readme.find(marker).unwrap_or_else(|| panic!("README lacks {marker:?}"));
        let block = readme[at..].split("```").nth(1).unwrap();
        let text = block
            .trim_start_matches('\n')
            .replace(&format!("db.{zone}"), &db.display().to_string())
            .replace("192.0.2.53:8443", "127.0.0.1:8443");
        let out = support::server::check(&text);
        assert!(out.is_ok(), "{marker}: {out:?}\n{text}");
    }
}
