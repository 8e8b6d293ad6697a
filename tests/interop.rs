//! Black-box: real DNS clients (kdig from Knot, dig from BIND) against ringdns, under both
//! drivers. The test command installs them (packages knot-dnsutils and bind9-dnsutils).

mod support;

use std::process::Command;

use support::server::{Options, Server, example_zone};

const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n";

fn tool(name: &str, args: &[String]) -> String {
    let out = Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!("{name} is needed for this test (apt-get install knot-dnsutils bind9-dnsutils): {e}")
    });
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kdig(s: &Server, extra: &[&str]) -> String {
    let mut a = vec![
        "@127.0.0.1".to_string(),
        "-p".into(),
        s.port.to_string(),
        "+time=2".into(),
        "+retry=0".into(),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    tool("kdig", &a)
}

fn dig(s: &Server, extra: &[&str]) -> String {
    let mut a = vec![
        "@127.0.0.1".to_string(),
        "-p".into(),
        s.port.to_string(),
        "+time=2".into(),
        "+tries=1".into(),
    ];
    a.extend(extra.iter().map(|x| x.to_string()));
    tool("dig", &a)
}

both_drivers!(kdig_over_udp_and_tcp, |driver| {
    let s = Server::start(Options::new(driver, COREFILE).file("zone", example_zone()));
    let out = kdig(&s, &["www.example.test", "A"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("Flags: qr aa rd") && out.contains("192.0.2.10"),
        "{out}"
    );
    let out = kdig(&s, &["+tcp", "chain1.example.test", "A"]);
    assert!(
        out.contains("chain2.example.test.") && out.contains("192.0.2.10") && out.contains("TCP"),
        "{out}"
    );
    let out = kdig(&s, &["nope.example.test", "A"]);
    assert!(out.contains("status: NXDOMAIN") && out.contains("SOA"), "{out}");
    let out = kdig(&s, &["+dnssec", "+nsid", "www.example.test", "AAAA"]);
    assert!(
        out.contains("flags: do") && out.contains("2001:db8::10") && !out.contains("NSID"),
        "{out}"
    );
    let out = kdig(
        &s,
        &["+keepopen", "+tcp", "www.example.test", "A", "mail.example.test", "A"],
    );
    assert_eq!(out.matches("status: NOERROR").count(), 2, "{out}");
    // The big RRset: truncated over UDP (kdig retries over TCP and gets all of it).
    let out = kdig(&s, &["big.example.test", "TXT"]);
    assert!(out.contains("TCP") && out.matches("record-").count() == 30, "{out}");
});

both_drivers!(dig_queries, |driver| {
    let s = Server::start(Options::new(driver, COREFILE).file("zone", example_zone()));
    let out = dig(&s, &["+norec", "x.wild.example.test", "A"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("x.wild.example.test.") && out.contains("192.0.2.30"),
        "{out}"
    );
    let out = dig(&s, &["+tcp", "host.sub.example.test", "A"]);
    assert!(
        out.contains("AUTHORITY: 2")
            && out.contains("ns.sub.example.test.")
            && !support::dig_flags(&out).contains(" aa"),
        "{out}"
    );
    let out = dig(&s, &["+short", "example.test", "MX"]);
    assert_eq!(out.trim(), "10 mail.example.test.");
    let out = dig(&s, &["www.other.org"]);
    assert!(out.contains("status: REFUSED"), "{out}");
});
