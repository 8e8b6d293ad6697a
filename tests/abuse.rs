//! Black-box: abusive clients (the "Slow and abusive clients" lines of ROBUSTNESS.md), under
//! both drivers with two shards: clients that never read, trickle a message, or hold
//! half-open TLS handshakes must not cost other clients their answers.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use rustls::pki_types::ServerName;
use support::doh::{Client, b64};
use support::server::{Options, Server, example_zone};
use support::tls::{self, Ca};
use support::{Reply, q};

/// UDP and TCP on PORT, DoT on PORT2, DoH on PORT3, one zone.
const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\ntls://example.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/dns.pem {DIR}/dns.key\n    file {DIR}/zone\n}\nhttps://example.test:{PORT3} {\n    bind 127.0.0.1\n    tls {DIR}/dns.pem {DIR}/dns.key\n    file {DIR}/zone\n}\n";

/// The test zone plus `huge`, a TXT RRset of about 60 KB.
fn zone() -> String {
    let mut z = example_zone();
    let txt = "x".repeat(250);
    for i in 0..240 {
        z.push_str(&format!("huge TXT \"{i:03}{txt}\"\n"));
    }
    z
}

struct Fixture {
    s: Server,
    ca: Ca,
}

fn fixture(driver: &str, args: &[&str]) -> Fixture {
    let ca = Ca::new();
    let leaf = ca.leaf(&["dns.example.test"]);
    let mut o = Options::new(driver, COREFILE)
        .file("zone", zone())
        .file("dns.pem", leaf.cert_pem)
        .file("dns.key", leaf.key_pem);
    for a in args {
        o = o.arg(a);
    }
    Fixture {
        s: Server::start(o),
        ca,
    }
}

impl Fixture {
    fn dot_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.s.port2))
    }
    fn doh_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.s.port3))
    }
    fn dot(&self) -> std::io::Result<tls::Tls> {
        let cfg = tls::client_config(&self.ca.der(), &[b"dot"]);
        tls::connect(self.dot_addr(), cfg, ServerName::try_from("dns.example.test").unwrap())
    }

    /// One query over each of UDP, TCP, DoT and DoH, each on a fresh socket or connection
    /// (so the kernel spreads them over the shards); the transports that got no answer.
    fn unanswered(&self) -> Vec<&'static str> {
        let mut missed = Vec::new();
        let query = q("www.example.test", Rtype::A);
        let good = |wire: Option<Vec<u8>>| wire.is_some_and(|w| Reply::parse(&w).answer().len() == 1);
        if !good(self.s.udp_timeout(&query.wire(), Duration::from_secs(2))) {
            missed.push("udp");
        }
        let tcp = TcpStream::connect(self.s.addr).ok().and_then(|mut c| {
            c.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
            support::server::write_frame(&mut c, &query.wire());
            support::server::read_frame(&mut c)
        });
        if !good(tcp) {
            missed.push("tcp");
        }
        let dot = self.dot().ok().and_then(|mut c| {
            tls::write_frame(&mut c, &query.wire());
            tls::read_frame(&mut c)
        });
        if !good(dot) {
            missed.push("dot");
        }
        let doh = Client::connect(
            self.doh_addr(),
            tls::client_config(&self.ca.der(), &[b"h2"]),
            "dns.example.test",
        )
        .ok()
        .and_then(|mut c| c.get(&format!("/dns-query?dns={}", b64(&query.id(0).wire()))).ok())
        .map(|g| g.body);
        if !good(doh) {
            missed.push("doh");
        }
        missed
    }
}

// Issue 10.1: a DoT client that pipelines queries with big answers and never reads used to
// kill its shard when the write timed out (a buffer still lent to the kernel was reused).
// Sixteen such clients land on both shards (the chance that all sit on one is 2^-15).
both_drivers!(dot_clients_that_never_read_leave_every_transport_answered, |driver| {
    let f = fixture(driver, &[]);
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let mut c = f.dot().expect("DoT handshake");
        let mut batch = Vec::new();
        for i in 0..300u16 {
            let w = q("huge.example.test", Rtype::TXT).id(i).wire();
            batch.extend_from_slice(&(w.len() as u16).to_be_bytes());
            batch.extend_from_slice(&w);
        }
        std::io::Write::write_all(&mut c, &batch).unwrap();
        std::io::Write::flush(&mut c).unwrap();
        stalled.push(c);
    }
    // The write timeout is 5 s: keep asking until well past it.
    let until = Instant::now() + Duration::from_secs(9);
    let mut rounds = 0;
    while Instant::now() < until {
        let missed = f.unanswered();
        assert!(
            missed.is_empty(),
            "round {rounds}: no answer over {missed:?}; log:\n{}",
            f.s.log()
        );
        rounds += 1;
    }
    for _ in 0..8 {
        let missed = f.unanswered();
        assert!(missed.is_empty(), "after the timeouts: no answer over {missed:?}");
    }
    let mut s = f.s;
    assert!(s.child.try_wait().unwrap().is_none(), "the server is still running");
    let log = s.log();
    assert!(!log.contains("panicked"), "{log}");
    drop(stalled);
});

// Issue 10.1: a panic in a shard ends the process at once with a non-zero status and the
// panic in the log, instead of leaving a live process with a dead shard. Debug builds
// (these tests) panic shard RINGDNS_FAULT_PANIC_SHARD on purpose once it listens.
both_drivers!(a_shard_panic_ends_the_process, |driver| {
    let ca = Ca::new();
    let leaf = ca.leaf(&["dns.example.test"]);
    let mut s = Server::spawn(
        Options::new(driver, COREFILE)
            .file("zone", zone())
            .file("dns.pem", leaf.cert_pem)
            .file("dns.key", leaf.key_pem)
            .env("RINGDNS_FAULT_PANIC_SHARD", "1"),
    );
    let st = support::server::wait_exit(&mut s.child, Duration::from_secs(10)).expect("the process ends");
    assert!(!st.success(), "{st}");
    let log = s.log();
    assert!(log.contains("panicked") && log.contains("shard-1"), "{log}");
    assert!(log.contains("fault injected"), "{log}");
});
