//! Black-box: ringdns as the secondary of a hidden primary (Knot DNS from apt): the first
//! AXFR, answers identical to the primary's for every name, a change at the primary followed
//! at the SOA's refresh, the copy on disk served at once after a restart without the
//! primary, and SERVFAIL with Extended DNS Error 14 and a failing `/ready` before any data.

mod support;

use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::knot::Knot;
use support::server::{Options, Server, dig, free_port};
use support::{eventually, http_get, q};

/// The primary's zone: refresh 2 s, so that a change is followed within a few seconds
/// without NOTIFY (retry 1 s, expire one day).
const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 2 1 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww AAAA 2001:db8::10\nmail A 192.0.2.25\n@ MX 10 mail\nalias CNAME www\n*.wild TXT \"wild\"\nsub NS ns.sub\nns.sub A 192.0.2.53\n_sip._udp SRV 0 5 5060 www\n";

fn edge(driver: &str, primary: std::net::SocketAddr, port: Option<u16>, dir: Option<&std::path::Path>) -> Server {
    let ready = free_port();
    let zones = dir.map_or("{DIR}/zones".to_string(), |d| d.display().to_string());
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from {primary}\n        directory {zones}\n    }}\n    ready 127.0.0.1:{ready}\n}}\n"
    );
    let mut o = Options::new(driver, &corefile);
    if let Some(p) = port {
        o = o.port(p);
    }
    let mut s = Server::start(o);
    s.port3 = ready;
    s
}

/// The first answer's data for `name` A.
fn first_a(s: &Server, name: &str) -> Option<String> {
    s.udp(&q(name, Rtype::A)).answer().first().map(|a| a.data.clone())
}

/// dig's view of `name type` at `port`: status, flags, counts and every section, without
/// the message ID, timing and server lines.
fn sections(port: u16, name: &str, t: &str) -> String {
    let out = std::process::Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+norec",
            "+nocookie",
            "+time=2",
            "+tries=1",
            name,
            t,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("status:"), "dig got an answer: {text}");
    text.lines()
        .filter(|l| {
            !l.starts_with(";; Query time")
                && !l.starts_with(";; WHEN")
                && !l.starts_with(";; SERVER")
                && !l.starts_with(";; MSG SIZE")
                && !l.starts_with("; <<>> DiG")
        })
        .map(|l| match l.find(", id: ") {
            Some(i) => l[..i].to_string(),
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

both_drivers!(secondary_follows_a_knot_primary, |driver| {
    let knot = Knot::primary(&[("example.test", ZONE)], None);
    let s = edge(driver, knot.addr(), None, None);
    assert!(
        eventually(10, || first_a(&s, "www.example.test").as_deref() == Some("192.0.2.10")),
        "the zone was transferred: {}",
        s.log()
    );
    // Every name as the primary answers it (flags and IDs aside).
    for (name, t) in [
        ("example.test", "SOA"),
        ("example.test", "NS"),
        ("example.test", "MX"),
        ("www.example.test", "A"),
        ("www.example.test", "AAAA"),
        ("alias.example.test", "A"),
        ("x.wild.example.test", "TXT"),
        ("host.sub.example.test", "A"),
        ("_sip._udp.example.test", "SRV"),
        ("nope.example.test", "A"),
        ("www.example.test", "TXT"),
    ] {
        assert_eq!(sections(s.port, name, t), sections(knot.port, name, t), "{name} {t}");
    }
    let r = s.udp(&q("www.example.test", Rtype::A));
    assert!(r.aa());
    // The copy on disk.
    // (Written beside the transfer, once the zone is served.)
    let path = s.dir.path().join("zones/example.test.zone");
    assert!(eventually(10, || path.exists()), "{}", s.log());
    let kept = std::fs::read_to_string(&path).unwrap();
    assert!(
        kept.starts_with("example.test. 300 IN SOA ns.example.test. admin.example.test. 1 2 1 86400 60\n"),
        "{kept}"
    );
    // /ready is 200 once the zone is there.
    let (code, body) = http_get(&format!("http://127.0.0.1:{}/ready", s.port3));
    assert_eq!(code, 200, "{body}");
    // A change at the primary is followed at the next refresh (2 s, with up to 5 s of jitter).
    knot.replace("example.test", "www", 300, "A", "192.0.2.99");
    assert!(
        eventually(20, || first_a(&s, "www.example.test").as_deref() == Some("192.0.2.99")),
        "the change was followed: {}",
        s.log()
    );
    assert_eq!(
        sections(s.port, "example.test", "SOA"),
        sections(knot.port, "example.test", "SOA")
    );
});

both_drivers!(a_restart_serves_the_copy_on_disk_without_the_primary, |driver| {
    let knot = Knot::primary(&[("example.test", ZONE)], None);
    let zones = support::server::TempDir::new("zones");
    let s = edge(driver, knot.addr(), None, Some(zones.path()));
    assert!(eventually(10, || s.udp(&q("www.example.test", Rtype::A)).rcode() == 0));
    // The copy is written beside the transfer, once it is served.
    assert!(eventually(10, || zones.path().join("example.test.zone").exists()));
    drop(s);
    let gone = knot.addr();
    drop(knot);
    let s = edge(driver, gone, None, Some(zones.path()));
    // At once: no transfer is possible.
    let r = s.udp(&q("www.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer()[0].data.as_str()), (0, "192.0.2.10"));
    assert!(dig(&s, &["mail.example.test", "A"]).contains("192.0.2.25"));
});

both_drivers!(no_data_yet_is_servfail_not_ready, |driver| {
    // A primary that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let s = edge(driver, silent.local_addr().unwrap(), None, None);
    let r = s.udp(&q("www.example.test", Rtype::A).edns(1232));
    assert_eq!(r.rcode(), 2);
    let ede = r.opt().map(|(_, _, _, opts)| opts).unwrap_or_default();
    assert!(
        ede.iter()
            .any(|(code, data)| *code == 15 && data[..2] == 14u16.to_be_bytes()),
        "{ede:?}"
    );
    let (code, body) = http_get(&format!("http://127.0.0.1:{}/ready", s.port3));
    assert_eq!(code, 503);
    assert!(
        body.contains("secondary zone example.test.: not transferred yet"),
        "{body}"
    );
    // Other zones are not ours.
    assert_eq!(s.udp(&q("www.other.test", Rtype::A)).rcode(), 5);
});

#[test]
fn check_refuses_bad_secondaries() {
    for (block, want) in [
        ("secondary", "secondary needs a primary"),
        (
            "secondary {\n        transfer to 10.0.0.1\n    }",
            "transfer from ADDRESS",
        ),
        ("secondary {\n        transfer from nowhere\n    }", "not an IP address"),
        (
            "secondary {\n        transfer from 10.0.0.1\n        catalog not..a.name\n    }",
            "not..a.name",
        ),
        (
            "secondary {\n        transfer from 10.0.0.1\n        upstream\n    }",
            "unknown secondary option",
        ),
    ] {
        let err = support::server::check(&format!("example.test {{\n    {block}\n}}\n")).unwrap_err();
        assert!(err.contains(want) && err.contains("Corefile:"), "{block}: {err}");
    }
    let ok = support::server::check(
        "example.test {\n    secondary {\n        transfer from 10.0.0.1 [2001:db8::1]:5353\n    }\n}\n",
    );
    assert!(ok.is_ok(), "{ok:?}");
}

/// The same zone with a refresh of an hour: only a NOTIFY can make a change arrive soon.
fn slow_zone() -> String {
    ZONE.replace("@ SOA ns admin 1 2 1 86400 60", "@ SOA ns admin 1 3600 600 86400 60")
}

// RFC 1996: Knot sends NOTIFY after a knotc commit; ringdns answers it (NOERROR, AA) and
// checks the zone at once. A NOTIFY from another source is REFUSED.
both_drivers!(notify_from_the_primary_triggers_a_check, |driver| {
    let port = free_port();
    let knot = Knot::primary(
        &[("example.test", &slow_zone())],
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
    );
    let s = edge(driver, knot.addr(), Some(port), None);
    assert!(
        eventually(10, || s.udp(&q("www.example.test", Rtype::A)).rcode() == 0),
        "{}",
        s.log()
    );
    let started = Instant::now();
    knot.replace("example.test", "www", 300, "A", "192.0.2.77");
    assert!(
        eventually(10, || first_a(&s, "www.example.test").as_deref() == Some("192.0.2.77")),
        "the NOTIFY brought the change: {}\n{}",
        s.log(),
        knot.log()
    );
    eprintln!("change served {:?} after the commit", started.elapsed());
    // Knot keeps a journal: the change came by IXFR (RFC 1995), not a whole transfer.
    assert!(s.log().contains("how=\"IXFR\""), "{}", s.log());
    assert_eq!(
        sections(s.port, "example.test", "SOA"),
        sections(knot.port, "example.test", "SOA")
    );
    // Knot logged our answer to its NOTIFY as a success.
    assert!(
        eventually(5, || knot.log().contains("notify, outgoing")
            && knot.log().contains("serial 2")),
        "{}",
        knot.log()
    );
    // From a source that is no primary: REFUSED, and nothing else happens.
    let other = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
    other.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    other
        .send_to(&q("example.test", Rtype::SOA).opcode(4).wire(), s.addr)
        .unwrap();
    let mut buf = [0u8; 512];
    let n = other.recv(&mut buf).expect("a reply");
    let r = support::Reply::parse(&buf[..n]);
    assert_eq!(r.rcode(), 5);
    assert!(eventually(5, || s.log().contains("NOTIFY refused")), "{}", s.log());
    // Once a minute per source: a second one from there is answered, not logged again.
    other
        .send_to(&q("example.test", Rtype::SOA).opcode(4).wire(), s.addr)
        .unwrap();
    let n = other.recv(&mut buf).expect("a reply");
    assert_eq!(support::Reply::parse(&buf[..n]).rcode(), 5);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.log().matches("NOTIFY refused").count(), 1, "{}", s.log());
    // From the primary's address, for a zone that is not a secondary here: REFUSED.
    assert_eq!(s.udp(&q("other.test", Rtype::SOA).opcode(4)).rcode(), 5);
    // From the primary's address for the zone: NOERROR, AA, opcode NOTIFY echoed.
    let r = s.udp(&q("example.test", Rtype::SOA).opcode(4));
    assert_eq!((r.rcode(), r.aa(), r.wire[2] >> 3 & 0xF), (0, true, 4));
});

/// SOA rdata for example.test with `serial` (refresh an hour: only NOTIFY makes it ask).
fn soa_rdata(serial: u32) -> Vec<u8> {
    let mut r = upstream::name("ns.example.test");
    r.extend(upstream::name("admin.example.test"));
    for v in [serial, 3600, 600, 86400, 60] {
        r.extend_from_slice(&v.to_be_bytes());
    }
    r
}

use support::upstream::{self, Act, Rec, Upstream};

// ROBUSTNESS: a transfer that stops half-way, records outside the zone, a closing SOA with
// another serial, a REFUSED transfer, a serial going backwards: the zone served before
// stays, whole, and a failure is logged with the primary and the zone.
both_drivers!(bad_transfers_leave_the_served_zone, |driver| {
    use std::sync::atomic::{AtomicU32, Ordering};
    let phase = std::sync::Arc::new(AtomicU32::new(0));
    let p = phase.clone();
    let primary = Upstream::start(move |query, tcp| {
        let phase = p.load(Ordering::SeqCst);
        // Phase 5: the primary's serial went backwards (0 is older than 1, RFC 1982).
        let serial = match phase {
            0 => 1,
            5 => 0,
            _ => 2,
        };
        let soa = || Rec("example.test", 6, 300, soa_rdata(serial));
        let www = |ip: u8| Rec("www.example.test", 1, 300, upstream::a([192, 0, 2, ip]));
        match (upstream::qtype(query), tcp) {
            (6, _) => vec![Act::Send(upstream::reply(query, 0, &[soa()], &[], &[]))],
            (252, true) => match phase {
                0 => vec![Act::Send(upstream::reply(query, 0, &[soa(), www(10), soa()], &[], &[]))],
                // Half-way: the opening SOA and a record, then the connection closes.
                1 => vec![
                    Act::Send(upstream::reply(query, 0, &[soa(), www(99)], &[], &[])),
                    Act::Close,
                ],
                2 => vec![Act::Send(upstream::reply(
                    query,
                    0,
                    &[
                        soa(),
                        Rec("www.other.test", 1, 300, upstream::a([192, 0, 2, 99])),
                        soa(),
                    ],
                    &[],
                    &[],
                ))],
                3 => {
                    let closing = Rec("example.test", 6, 300, soa_rdata(3));
                    vec![Act::Send(upstream::reply(
                        query,
                        0,
                        &[soa(), www(99), closing],
                        &[],
                        &[],
                    ))]
                }
                _ => vec![Act::Send(upstream::reply(query, 5, &[], &[], &[]))],
            },
            _ => vec![Act::Send(upstream::reply(query, 5, &[], &[], &[]))],
        }
    });
    let s = edge(driver, primary.addr, None, None);
    let www = || {
        s.udp(&q("www.example.test", Rtype::A))
            .answer()
            .first()
            .map(|a| a.data.clone())
    };
    assert!(eventually(10, || www().as_deref() == Some("192.0.2.10")), "{}", s.log());
    for (n, why) in [
        (1, "the transfer stopped"),
        (2, "outside the zone"),
        (3, "closing SOA has serial 3"),
        (4, "answered REFUSED"),
    ] {
        phase.store(n, Ordering::SeqCst);
        let before = primary
            .seen()
            .iter()
            .filter(|x| upstream::qtype(&x.wire) == 252)
            .count();
        // A NOTIFY from the primary's address makes ringdns ask at once.
        assert_eq!(s.udp(&q("example.test", Rtype::SOA).opcode(4)).rcode(), 0);
        assert!(
            eventually(10, || primary
                .seen()
                .iter()
                .filter(|x| upstream::qtype(&x.wire) == 252)
                .count()
                > before),
            "phase {n}: no AXFR asked"
        );
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(www().as_deref(), Some("192.0.2.10"), "phase {n}: the served zone stays");
        let r = s.udp(&q("example.test", Rtype::SOA));
        assert!(
            r.answer()[0].data.contains(" 1 3600 "),
            "phase {n}: serial 1 stays: {:?}",
            r.answer()
        );
        if n == 1 {
            let log = s.log();
            assert!(
                log.contains(why) && log.contains(&primary.addr.to_string()) && log.contains("example.test"),
                "phase {n}: {log}"
            );
        }
    }
    // A serial going backwards: no transfer is asked, the zone stays.
    phase.store(5, Ordering::SeqCst);
    let axfrs = |p: &Upstream| {
        p.seen()
            .iter()
            .filter(|x| matches!(upstream::qtype(&x.wire), 251 | 252))
            .count()
    };
    let soas = |p: &Upstream| p.seen().iter().filter(|x| upstream::qtype(&x.wire) == 6).count();
    let (before_soa, before_xfr) = (soas(&primary), axfrs(&primary));
    assert_eq!(s.udp(&q("example.test", Rtype::SOA).opcode(4)).rcode(), 0);
    assert!(eventually(10, || soas(&primary) > before_soa), "no SOA asked");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(axfrs(&primary), before_xfr, "a transfer was asked for an older serial");
    assert_eq!(www().as_deref(), Some("192.0.2.10"));
    // One warning for the streak, however many failures.
    assert_eq!(
        s.log().matches("no primary could be checked or transferred").count(),
        1,
        "{}",
        s.log()
    );
});

// XoT (RFC 9103): a secondary of a ringdns primary over TLS, the certificate checked
// against tls_servername and the CA; with another name nothing is transferred.
both_drivers!(secondary_over_tls, |driver| {
    let ca = support::tls::Ca::new();
    let leaf = ca.leaf(&["primary.example.test"]);
    let corefile = "tls://example.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/p.pem {DIR}/p.key\n    file {DIR}/zone\n    transfer {\n        to *\n    }\n}\nexample.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n";
    let primary = Server::start(
        Options::new(driver, corefile)
            .file("zone", ZONE)
            .file("p.pem", leaf.cert_pem)
            .file("p.key", leaf.key_pem),
    );
    let ca_path = primary.dir.write("ca.pem", &ca.pem());
    let edge_with = |name: &str| {
        let corefile = format!(
            "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from tls://127.0.0.1:{}\n        tls_servername {name}\n        tls {}\n        directory {{DIR}}/zones\n    }}\n}}\n",
            primary.port2,
            ca_path.display()
        );
        Server::start(Options::new(driver, &corefile))
    };
    let s = edge_with("primary.example.test");
    assert!(
        eventually(10, || first_a(&s, "www.example.test").as_deref() == Some("192.0.2.10")),
        "{}",
        s.log()
    );
    assert_eq!(
        sections(s.port, "mail.example.test", "A"),
        sections(primary.port, "mail.example.test", "A")
    );
    let wrong = edge_with("other.example.test");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(wrong.udp(&q("www.example.test", Rtype::A)).rcode(), 2);
    assert!(eventually(5, || wrong.log().contains("TLS")), "{}", wrong.log());
});

// secondary README: `fallthrough`: names the transferred zone answers NXDOMAIN for go to the
// next plugin (here a forward to another server with more names in the zone).
both_drivers!(fallthrough_hands_nxdomain_on, |driver| {
    let knot = Knot::primary(&[("example.test", ZONE)], None);
    let more = "$ORIGIN example.test.\n$TTL 60\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nextra A 192.0.2.200\n";
    let up = Server::start(
        Options::new(
            driver,
            "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n",
        )
        .file("zone", more),
    );
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from {}\n        directory {{DIR}}/zones\n        fallthrough\n    }}\n    forward . 127.0.0.1:{}\n}}\n",
        knot.addr(),
        up.port
    );
    let s = Server::start(Options::new(driver, &corefile));
    assert!(
        eventually(10, || first_a(&s, "www.example.test").as_deref() == Some("192.0.2.10")),
        "{}",
        s.log()
    );
    let r = s.udp(&q("extra.example.test", Rtype::A));
    assert_eq!(
        (r.rcode(), r.answer().first().map(|a| a.data.as_str())),
        (0, Some("192.0.2.200"))
    );
    // A name neither has: the next plugin's NXDOMAIN.
    assert_eq!(s.udp(&q("none.example.test", Rtype::A)).rcode(), 3);
    // NODATA stays the secondary's own answer.
    let r = s.udp(&q("www.example.test", Rtype::TXT));
    assert_eq!((r.rcode(), r.answer().len(), r.aa()), (0, 0, true));
});

// A secondary that is itself a primary (`transfer`) keeps the differences it receives and
// passes them on by IXFR (RFC 1995 §4), not the whole zone.
both_drivers!(a_secondary_passes_differences_on, |driver| {
    let port = free_port();
    let knot = Knot::primary(
        &[("example.test", &slow_zone())],
        Some(std::net::SocketAddr::from(([127, 0, 0, 1], port))),
    );
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from {}\n        directory {{DIR}}/zones\n    }}\n    transfer {{\n        to *\n    }}\n}}\n",
        knot.addr()
    );
    let s = Server::start(Options::new(driver, &corefile).port(port));
    assert!(
        eventually(10, || first_a(&s, "www.example.test").is_some()),
        "{}",
        s.log()
    );
    knot.replace("example.test", "www", 300, "A", "192.0.2.77");
    assert!(
        eventually(10, || first_a(&s, "www.example.test").as_deref() == Some("192.0.2.77")),
        "{}",
        s.log()
    );
    let ixfr = |port: u16| {
        support::kdig_records(&support::kdig(&[
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "IXFR=1",
            "example.test",
        ]))
    };
    let recs = ixfr(s.port);
    // What the primary itself answers to the same IXFR.
    assert_eq!(recs, ixfr(knot.port));
    let soa = |n: u32| format!("example.test. 300 IN SOA ns.example.test. admin.example.test. {n} 3600 600 86400 60");
    assert_eq!(
        recs,
        [
            soa(2),
            soa(1),
            "www.example.test. 300 IN A 192.0.2.10".to_string(),
            soa(2),
            "www.example.test. 300 IN A 192.0.2.77".to_string(),
            soa(2),
        ]
    );
});
