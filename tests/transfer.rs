//! Black-box: `transfer { to ... }`: ringdns as the primary of Knot DNS (from apt), AXFR with
//! kdig, IXFR answered AXFR-style over TCP and with the SOA alone over UDP, and REFUSED for
//! clients not listed and for AXFR over UDP.

mod support;

use domain::base::iana::Rtype;
use support::knot::Knot;
use support::server::{Options, Server};
use support::{kdig, kdig_records, q};

/// A zone of `n` extra names besides the usual ones.
fn zone(n: usize) -> String {
    let mut z = String::from(
        "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 42 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww AAAA 2001:db8::10\n@ MX 10 mail\nmail A 192.0.2.25\nalias CNAME www\n*.wild TXT \"wild\"\nsub NS ns.sub\nns.sub A 192.0.2.53\n",
    );
    for i in 0..n {
        z.push_str(&format!("h{i} A 192.0.2.{}\nh{i} TXT \"host number {i}\"\n", i % 250));
    }
    z
}

fn primary(driver: &str, n: usize, to: &str) -> Server {
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1 127.0.0.2\n    file {{DIR}}/zone\n    transfer {{\n        to {to}\n    }}\n}}\n"
    );
    Server::start(Options::new(driver, &corefile).file("zone", zone(n)))
}

both_drivers!(axfr_to_kdig_and_refused_to_others, |driver| {
    let s = primary(driver, 3000, "127.0.0.1");
    let port = s.port.to_string();
    let out = kdig(&["@127.0.0.1", "-p", &port, "AXFR", "example.test"]);
    let recs = kdig_records(&out);
    // 11 records, 6000 more, and the SOA again at the end.
    assert_eq!(recs.len(), 11 + 6000 + 1, "{}", &out[..out.len().min(2000)]);
    assert!(
        recs[0].contains(" SOA ") && recs.last().unwrap().contains(" SOA "),
        "{} / {}",
        recs[0],
        recs.last().unwrap()
    );
    assert!(
        recs.iter()
            .any(|r| r == "h2999.example.test. 300 IN TXT \"host number 2999\"")
    );
    assert!(out.contains("Received"), "{out}");
    // IXFR over TCP: the whole zone, AXFR-style (RFC 1995 §4).
    let ixfr = kdig(&["@127.0.0.1", "-p", &port, "IXFR=1", "example.test"]);
    assert_eq!(
        kdig_records(&ixfr).len(),
        recs.len(),
        "{}",
        &ixfr[..ixfr.len().min(2000)]
    );
    // IXFR over UDP: the SOA alone.
    let r = s.udp(&q("example.test", Rtype::IXFR));
    assert_eq!((r.rcode(), r.answer().len(), r.answer()[0].rtype), (0, 1, Rtype::SOA));
    // AXFR over UDP: refused.
    assert_eq!(s.udp(&q("example.test", Rtype::AXFR)).rcode(), 5);
    // From a source not in `to`, and for a name that is no zone apex: refused.
    let other = kdig(&["@127.0.0.2", "-b", "127.0.0.2", "-p", &port, "AXFR", "example.test"]);
    assert!(other.contains("REFUSED"), "{other}");
    // Logged once a minute per source on each shard (two here), however often it asks.
    for _ in 0..4 {
        let again = kdig(&["@127.0.0.2", "-b", "127.0.0.2", "-p", &port, "AXFR", "example.test"]);
        assert!(again.contains("REFUSED"), "{again}");
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = s.log();
    let lines = log
        .lines()
        .filter(|l| l.contains("zone transfer refused") && l.contains("from=127.0.0.2"))
        .count();
    assert!((1..=2).contains(&lines), "{lines} lines for 5 refusals: {log}");
    let sub = kdig(&["@127.0.0.1", "-p", &port, "AXFR", "www.example.test"]);
    assert!(sub.contains("REFUSED"), "{sub}");
});

// Knot as a secondary of ringdns: it transfers the zone and answers every name as ringdns.
both_drivers!(knot_is_a_secondary_of_ringdns, |driver| {
    let s = primary(driver, 50, "*");
    let knot = Knot::secondary("example.test", s.addr);
    for (name, t) in [
        ("example.test", "SOA"),
        ("www.example.test", "A"),
        ("www.example.test", "AAAA"),
        ("example.test", "MX"),
        ("alias.example.test", "A"),
        ("x.wild.example.test", "TXT"),
        ("h49.example.test", "TXT"),
        ("host.sub.example.test", "A"),
        ("nope.example.test", "A"),
    ] {
        let ask = |p: u16| kdig_records(&kdig(&["@127.0.0.1", "-p", &p.to_string(), "+norec", name, t]));
        assert_eq!(ask(knot.port), ask(s.port), "{name} {t}\n{}", knot.log());
    }
});

// RFC 1996: a zone file reloaded with a larger serial is announced to the secondaries in
// `to`, from `source`; Knot (whose SOA refresh is an hour) follows at once.
both_drivers!(a_changed_zone_is_notified_to_its_secondaries, |driver| {
    let knot_port = support::server::free_port();
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/zone {{\n        reload 1s\n    }}\n    transfer {{\n        to 127.0.0.1:{knot_port}\n        source 127.0.0.3\n    }}\n}}\n"
    );
    let s = Server::start(Options::new(driver, &corefile).file("zone", zone(0)));
    let knot = Knot::secondary_on("example.test", s.addr, knot_port);
    let www = |p: u16| {
        kdig_records(&kdig(&[
            "@127.0.0.1",
            "-p",
            &p.to_string(),
            "+norec",
            "www.example.test",
            "A",
        ]))
    };
    assert_eq!(www(knot.port), ["www.example.test. 300 IN A 192.0.2.10"]);
    let changed = zone(0)
        .replace(" 42 3600 ", " 43 3600 ")
        .replace("www A 192.0.2.10", "www A 192.0.2.44");
    std::fs::write(s.dir.path().join("zone"), changed).unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while www(knot.port) != ["www.example.test. 300 IN A 192.0.2.44"] {
        assert!(
            std::time::Instant::now() < until,
            "Knot did not follow: {}\n{}",
            knot.log(),
            s.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // The NOTIFY came from `source`.
    assert!(
        knot.log().contains("notify, incoming, remote 127.0.0.3@"),
        "{}",
        knot.log()
    );
    // Knot asked IXFR from 42 and got the difference, not the zone (RFC 1995 §4).
    assert!(
        knot.log().contains("IXFR, incoming") && !knot.log().contains("AXFR-style"),
        "{}",
        knot.log()
    );
    // kdig sees it too: the new SOA, the old SOA and what went, the new SOA and what
    // came, the new SOA.
    let port = s.port.to_string();
    let ixfr = kdig_records(&kdig(&["@127.0.0.1", "-p", &port, "IXFR=42", "example.test"]));
    let soa = |n: u32| format!("example.test. 300 IN SOA ns.example.test. admin.example.test. {n} 3600 600 86400 60");
    assert_eq!(
        ixfr,
        [
            soa(43),
            soa(42),
            "www.example.test. 300 IN A 192.0.2.10".to_string(),
            soa(43),
            "www.example.test. 300 IN A 192.0.2.44".to_string(),
            soa(43),
        ]
    );
    // A client that is current gets the SOA alone; one older than the journal, the zone.
    assert_eq!(
        kdig_records(&kdig(&["@127.0.0.1", "-p", &port, "IXFR=43", "example.test"])),
        [soa(43)]
    );
    let whole = kdig_records(&kdig(&["@127.0.0.1", "-p", &port, "IXFR=41", "example.test"]));
    assert_eq!(whole.len(), 12, "{whole:?}");
});

// XoT (RFC 9103), serving side: AXFR over a tls:// listener, checked against the CA with
// kdig; clients not in `to` are refused there too.
both_drivers!(axfr_over_tls, |driver| {
    let ca = support::tls::Ca::new();
    let leaf = ca.leaf(&["dns.example.test"]);
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\ntls://example.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/dns.pem {DIR}/dns.key\n    file {DIR}/zone\n    transfer {\n        to 127.0.0.1/32\n    }\n}\n";
    let s = Server::start(
        Options::new(driver, corefile)
            .file("zone", zone(500))
            .file("dns.pem", leaf.cert_pem)
            .file("dns.key", leaf.key_pem),
    );
    let ca_path = s.dir.write("ca.pem", &ca.pem());
    let (text, err) = support::kdig_encrypted(s.port2, "+tls", &ca_path, "dns.example.test", &["AXFR", "example.test"]);
    assert_eq!(
        kdig_records(&text).len(),
        11 + 1000 + 1,
        "{}\n{err}",
        &text[..text.len().min(1500)]
    );
    // (Port 2 speaks only TLS: the transfer went over it.)
    // The plain listener has no transfer: refused.
    let plain = kdig(&["@127.0.0.1", "-p", &s.port.to_string(), "AXFR", "example.test"]);
    assert!(plain.contains("REFUSED"), "{plain}");
});
