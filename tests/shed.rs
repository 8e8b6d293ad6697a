//! Black-box: `shed`. A server stopped (SIGSTOP) for a moment while queries arrive stands for
//! a shard that cannot keep up: with `shed`, the queries that waited in its socket longer
//! than 5 ms are dropped unanswered when it resumes and counted, and what arrives after is
//! answered at once; without `shed` every one of them is answered, late. `shed` is refused
//! in a tls:// block. The README's two recommended configurations pass `ringdns check`.

mod support;

use std::net::UdpSocket;
use std::time::Duration;

use domain::base::iana::Rtype;
use support::server::{Options, Server};

const ZONE: &str =
    "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n";

fn server(driver: &str, shed: bool) -> Server {
    Server::start(
        Options::new(
            driver,
            &format!(
                "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/db\n    prometheus 127.0.0.1:{{PORT2}}\n{}}}\n",
                if shed { "    shed\n" } else { "" }
            ),
        )
        .file("db", ZONE)
        .arg("--shards")
        .arg("1"),
    )
}

fn stale_total(metrics_port: u16) -> u64 {
    let (_, text) = support::http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"));
    text.lines()
        .filter(|l| l.starts_with("ringdns_shed_total{") && l.contains("reason=\"stale_query\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Sends 50 queries while the server is stopped, resumes it, and counts the replies; then
/// sends one more and says whether it was answered.
fn queued_while_stopped(s: &Server) -> (usize, bool) {
    // A first answer: the listener has seen its snapshot (and turned the stamps on).
    s.udp(&support::q("www.example.test", Rtype::A));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(s.addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    s.signal("STOP");
    // kill returns once the signal is sent, not delivered: wait until every thread of the
    // server is stopped (state T), or its shards may answer the queue as it arrives.
    let stopped = || {
        std::fs::read_dir(format!("/proc/{}/task", s.pid())).is_ok_and(|tasks| {
            tasks.flatten().all(|t| {
                std::fs::read_to_string(t.path().join("stat"))
                    .is_ok_and(|st| st.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T')))
            })
        })
    };
    assert!(support::eventually(5, stopped), "the server did not stop");
    for id in 0..50u16 {
        sock.send(&support::q("www.example.test", Rtype::A).id(id).wire())
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(100));
    s.signal("CONT");
    let mut buf = [0u8; 512];
    let mut replies = 0;
    while sock.recv(&mut buf).is_ok() {
        replies += 1;
    }
    sock.send(&support::q("www.example.test", Rtype::A).id(99).wire())
        .unwrap();
    let fresh = sock
        .recv(&mut buf)
        .is_ok_and(|n| n > 2 && u16::from_be_bytes([buf[0], buf[1]]) == 99);
    (replies, fresh)
}

both_drivers!(
    queries_that_waited_too_long_are_dropped_and_fresh_ones_answered,
    |driver| {
        let s = server(driver, true);
        let (replies, fresh) = queued_while_stopped(&s);
        assert_eq!(replies, 0, "queries 100 ms old were answered");
        assert!(fresh, "a fresh query after the stall is answered");
        assert_eq!(stale_total(s.port2), 50);
        // Without shed the same queue is answered, late.
        let plain = server(driver, false);
        let (replies, fresh) = queued_while_stopped(&plain);
        assert_eq!(replies, 50);
        assert!(fresh);
        assert_eq!(stale_total(plain.port2), 0);
    }
);

#[test]
fn shed_is_for_plain_dns_blocks() {
    let err = support::server::check("tls://example.test:8853 {\n    tls cert.pem key.pem\n    shed\n}\n").unwrap_err();
    assert!(
        err.contains("Corefile:3") && err.contains("plain DNS server blocks"),
        "{err}"
    );
    let err = support::server::check("example.test {\n    shed now\n}\n").unwrap_err();
    assert!(err.contains("Corefile:2"), "{err}");
}

#[test]
fn the_readmes_recommended_configurations_check() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let dir = support::server::TempDir::new("shed-readme");
    let db = dir.write("db.example.com", &ZONE.replace("example.test.", "example.com."));
    let secret = dir.write("cookie-secret", "e5e973e5a6b2a43f48e7dc849e37bfcf\n");
    let mut found = 0;
    for marker in [
        "Recommended for a **public authoritative server**",
        "for a **public resolver front door**",
    ] {
        let at = readme.find(marker).unwrap_or_else(|| panic!("README lacks {marker:?}"));
        let block = readme[at..].split("```").nth(1).unwrap();
        let text = block
            .trim_start_matches('\n')
            .replace("db.example.com", &db.display().to_string())
            .replace("/etc/ringdns/cookie-secret", &secret.display().to_string());
        let out = support::server::check(&text);
        assert!(out.is_ok(), "{marker}: {out:?}\n{text}");
        found += 1;
    }
    assert_eq!(found, 2);
}
