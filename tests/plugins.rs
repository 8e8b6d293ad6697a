//! Black-box: the small stock plugins (`chaos`, `whoami`, `any`, `minimal`), each against
//! the examples of its CoreDNS README, asked with dig and with our own client where the test
//! must know the client's port.

mod support;

use std::net::UdpSocket;
use std::process::Command;
use std::time::Duration;

use domain::base::iana::Rtype;
use support::server::{Options, Server, dig, example_zone, free_port, wait_exit};
use support::{Reply, q};

/// A ringdns authoritative for `zone` from `text`: the upstream of forwarding tests, or the
/// plain server an answer is compared with.
fn authoritative(driver: &str, zone: &str, text: impl Into<String>) -> Server {
    let corefile = format!("{zone}:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/zone\n}}\n");
    Server::start(Options::new(driver, &corefile).file("zone", text))
}

// chaos README: `chaos CoreDNS-001 info@coredns.io`, queried for version.bind and
// authors.bind in class CH; hostname.bind answers the host's name.
both_drivers!(chaos_answers_version_authors_and_hostname_in_class_ch, |driver| {
    let corefile = ".:{PORT} {\n    bind 127.0.0.1\n    chaos CoreDNS-001 info@coredns.io \"Jane Doe\"\n}\nexample.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    let out = dig(&s, &["version.bind", "CH", "TXT"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("version.bind.\t\t0\tCH\tTXT\t\"CoreDNS-001\""), "{out}");
    assert!(
        !support::dig_flags(&out).contains(" aa"),
        "chaos answers are not authoritative, as CoreDNS's: {out}"
    );
    let out = dig(&s, &["+short", "version.server", "CH", "TXT"]);
    assert_eq!(out.trim(), "\"CoreDNS-001\"");
    let out = dig(&s, &["+short", "authors.bind", "CH", "TXT"]);
    let mut authors: Vec<&str> = out.lines().collect();
    authors.sort();
    assert_eq!(authors, ["\"Jane Doe\"", "\"info@coredns.io\""]);
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for name in ["hostname.bind", "id.server"] {
        let out = dig(&s, &["+short", name, "CH", "TXT"]);
        assert_eq!(out.trim(), format!("\"{}\"", host.trim()), "{name}");
    }
    // Other names and types in class CH, and CH below a block without chaos: REFUSED.
    for args in [
        &["other.bind", "CH", "TXT"][..],
        &["version.bind", "CH", "A"],
        &["www.example.test", "CH", "TXT"],
    ] {
        let out = dig(&s, args);
        assert!(out.contains("status: REFUSED"), "{args:?}: {out}");
    }
    // Class IN is unchanged.
    let out = dig(&s, &["+short", "www.example.test", "A"]);
    assert_eq!(out.trim(), "192.0.2.10");
});

both_drivers!(chaos_without_arguments_names_ringdns, |driver| {
    let s = Server::start(Options::new(driver, ".:{PORT} {\n    bind 127.0.0.1\n    chaos\n}\n"));
    let out = dig(&s, &["+short", "version.bind", "CH", "TXT"]);
    assert!(out.trim().starts_with("\"ringdns-"), "{out}");
    // Without chaos anywhere, class CH is refused before routing.
    let s = Server::start(Options::new(driver, ".:{PORT} {\n    bind 127.0.0.1\n    whoami\n}\n"));
    assert!(dig(&s, &["version.bind", "CH", "TXT"]).contains("status: REFUSED"));
});

/// Asks `name` A from a socket of our own: (reply, our port).
fn udp_from_own_socket(s: &Server, name: &str) -> (Reply, u16) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    sock.send_to(&q(name, Rtype::A).wire(), s.addr).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).expect("a reply");
    (Reply::parse(&buf[..n]), sock.local_addr().unwrap().port())
}

// whoami README: `example.org { whoami }`; the reply has no answer, and the client's
// address and port in the additional section.
both_drivers!(whoami_tells_the_client_its_address_and_port, |driver| {
    let corefile = "example.org:{PORT} {\n    bind 127.0.0.1\n    whoami\n}\n";
    let s = Server::start(Options::new(driver, corefile));
    let (r, port) = udp_from_own_socket(&s, "Host.Example.org");
    assert_eq!(r.rcode(), 0);
    assert!(r.aa());
    assert!(r.answer().is_empty());
    let extra = r.additional();
    assert_eq!(extra.len(), 2, "{extra:?}");
    assert_eq!((extra[0].rtype, extra[0].data.as_str()), (Rtype::A, "127.0.0.1"));
    assert!(extra[0].owner.eq_ignore_ascii_case("host.example.org"), "{extra:?}");
    assert_eq!(extra[1].rtype, Rtype::SRV);
    assert!(
        extra[1].owner.eq_ignore_ascii_case("_udp.host.example.org"),
        "{extra:?}"
    );
    assert_eq!(extra[1].data.trim_end_matches(['.', ' ']), format!("0 0 {port}"));
    // Over TCP the SRV is at _tcp.
    let r = s.tcp(&q("a.example.org", Rtype::AAAA));
    assert!(
        r.additional()
            .iter()
            .any(|x| x.rtype == Rtype::SRV && x.owner == "_tcp.a.example.org")
    );
    // With dig too, and outside the zone nothing answers.
    let out = dig(&s, &["a.example.org"]);
    assert!(out.contains("_udp.a.example.org.\t0\tIN\tSRV\t0 0 "), "{out}");
    assert!(dig(&s, &["other.test"]).contains("status: REFUSED"));
});

// whoami answers only names that the block's data sources leave unanswered.
both_drivers!(whoami_answers_after_the_zone_data, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    whoami\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    let r = s.udp(&q("www.example.test", Rtype::A));
    assert_eq!(r.answer()[0].data, "192.0.2.10");
    assert!(r.additional().iter().all(|x| x.rtype != Rtype::SRV));
});

// any README: `. { any; forward . 8.8.8.8 }`: ANY gets the RFC 8482 HINFO, other types are
// answered as before.
both_drivers!(any_answers_hinfo_for_qtype_any, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    any\n    file {DIR}/zone\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    for name in ["www.example.test", "nope.example.test", "example.test"] {
        let r = s.udp(&q(name, Rtype::ANY));
        assert_eq!(r.rcode(), 0, "{name}");
        assert!(r.aa());
        let a = r.answer();
        assert_eq!(a.len(), 1, "{name}: {a:?}");
        assert_eq!((a[0].rtype, a[0].ttl), (Rtype::HINFO, 8482));
        assert_eq!(a[0].data, "\"ANY obsoleted\" \"See RFC 8482\"");
    }
    let out = dig(&s, &["+short", "www.example.test", "A"]);
    assert_eq!(out.trim(), "192.0.2.10");
    let out = dig(&s, &["www.example.test", "ANY"]);
    assert!(out.contains("HINFO\t\"ANY obsoleted\" \"See RFC 8482\""), "{out}");
});

// minimal README: positive answers lose their authority and additional sections; NXDOMAIN,
// NODATA and referrals keep theirs.
both_drivers!(minimal_trims_positive_answers_only, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    minimal\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    let full = authoritative(driver, "example.test", example_zone());
    // MX: the full server adds the exchange's address; minimal does not.
    let with = full.udp(&q("example.test", Rtype::MX));
    assert!(!with.additional().is_empty());
    let r = s.udp(&q("example.test", Rtype::MX));
    assert_eq!(r.answer(), with.answer());
    assert!(
        r.authority().is_empty() && r.additional().is_empty(),
        "{:?}",
        r.additional()
    );
    for (name, t) in [
        ("nope.example.test", Rtype::A),
        ("www.example.test", Rtype::MX),
        ("x.sub.example.test", Rtype::A),
    ] {
        let (a, b) = (s.udp(&q(name, t)), full.udp(&q(name, t)));
        assert_eq!(a.wire[2..], b.wire[2..], "{name} {t}: unchanged");
        assert!(!a.authority().is_empty(), "{name} {t}");
    }
});

// loop README: a forward that points back at the server itself stops it at start-up.
both_drivers!(loop_stops_a_server_that_forwards_to_itself, |driver| {
    let corefile = ".:{PORT} {\n    bind 127.0.0.1\n    forward . 127.0.0.1:{PORT}\n    loop\n}\n";
    let mut s = Server::spawn(Options::new(driver, corefile));
    let st = wait_exit(&mut s.child, Duration::from_secs(40)).expect("stops");
    assert!(!st.success());
    let log = s.log();
    assert!(
        log.contains("a forwarding loop for zone \".\"") && log.contains("HINFO "),
        "{log}"
    );
});

// Two servers that forward to each other: the one with loop stops.
both_drivers!(loop_stops_a_loop_through_another_server, |driver| {
    let (a_port, b_port) = (free_port(), free_port());
    let b = Server::start(
        Options::new(
            driver,
            &format!(".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{a_port}\n}}\n"),
        )
        .port(b_port),
    );
    let corefile =
        format!("example.test:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{b_port}\n    loop\n}}\n");
    let mut a = Server::spawn(Options::new(driver, &corefile).port(a_port));
    let st = wait_exit(&mut a.child, Duration::from_secs(40)).expect("stops");
    assert!(!st.success());
    assert!(
        a.log().contains("a forwarding loop for zone \"example.test.\""),
        "{}",
        a.log()
    );
    drop(b);
});

// A forwarder with loop and a real upstream keeps running and answering.
both_drivers!(loop_lets_a_forwarder_without_a_loop_run, |driver| {
    let up = authoritative(driver, "example.test", example_zone());
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{}\n    loop\n}}\n",
        up.port
    );
    let mut s = Server::start(Options::new(driver, &corefile));
    // The probe is answered (NXDOMAIN from the upstream) and the check ends.
    assert!(wait_exit(&mut s.child, Duration::from_secs(3)).is_none(), "{}", s.log());
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).answer()[0].data, "192.0.2.10");
    assert!(!s.log().contains("loop"), "{}", s.log());
    let (st, _) = s.stop();
    assert!(st.success());
});

const POOL_ZONE: &str = "$ORIGIN pool.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\nweb A 192.0.2.11\nweb A 192.0.2.12\nweb A 192.0.2.13\nweb A 192.0.2.14\nweb AAAA 2001:db8::11\nweb AAAA 2001:db8::12\nalias CNAME web\n";

/// The answers' data of `n` queries from one socket (one shard: its cache serves the
/// forwarded ones after the first).
fn orders(s: &Server, name: &str, t: Rtype, n: usize) -> Vec<Vec<String>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    (0..n)
        .map(|_| {
            sock.send_to(&q(name, t).wire(), s.addr).unwrap();
            let mut buf = [0u8; 1500];
            let len = sock.recv(&mut buf).expect("a reply");
            Reply::parse(&buf[..len]).answer().into_iter().map(|r| r.data).collect()
        })
        .collect()
}

fn check_balanced(all: &[Vec<String>], want: &[&str]) {
    let mut firsts = std::collections::HashSet::new();
    for a in all {
        let mut sorted: Vec<&str> = a.iter().map(String::as_str).filter(|d| !d.ends_with('.')).collect();
        sorted.sort();
        assert_eq!(sorted, want, "every reply has the whole set");
        firsts.insert(a.iter().find(|d| !d.ends_with('.')).cloned());
    }
    assert_eq!(
        firsts.len(),
        want.len(),
        "each address comes first sometimes: {firsts:?}"
    );
}

// loadbalance README: `loadbalance round_robin` shuffles A and AAAA per reply, for zone data
// and, behind a CNAME, keeping the CNAME first.
both_drivers!(loadbalance_shuffles_addresses_of_zone_answers, |driver| {
    let corefile = "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    loadbalance round_robin\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", POOL_ZONE));
    let v4 = ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"];
    check_balanced(&orders(&s, "web.pool.test", Rtype::A, 200), &v4);
    check_balanced(
        &orders(&s, "web.pool.test", Rtype::AAAA, 100),
        &["2001:db8::11", "2001:db8::12"],
    );
    for a in orders(&s, "alias.pool.test", Rtype::A, 50) {
        assert_eq!(a[0], "web.pool.test.", "the CNAME stays first: {a:?}");
    }
    check_balanced(&orders(&s, "alias.pool.test", Rtype::A, 200), &v4);
    // Without loadbalance the order is the zone's, every time.
    let plain = authoritative(driver, "pool.test", POOL_ZONE);
    let all = orders(&plain, "web.pool.test", Rtype::A, 20);
    assert!(all.iter().all(|a| *a == all[0]), "{all:?}");
});

// Forwarded answers (from the upstream and from the cache) are shuffled too.
both_drivers!(loadbalance_shuffles_forwarded_answers, |driver| {
    let up = authoritative(driver, "pool.test", POOL_ZONE);
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{}\n    cache 30\n    loadbalance\n}}\n",
        up.port
    );
    let s = Server::start(Options::new(driver, &corefile));
    check_balanced(
        &orders(&s, "web.pool.test", Rtype::A, 200),
        &["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"],
    );
    let out = dig(&s, &["+short", "web.pool.test", "AAAA"]);
    assert_eq!(out.lines().count(), 2, "{out}");
});

/// MX records for the loadbalance tests: three exchanges inside the zone (their addresses
/// go to the additional section, with owners that point into the MX data).
const MX_ZONE: &str = "$ORIGIN mx.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\n@ MX 10 mail1\n@ MX 20 mail2\n@ MX 30 mail3\nmail1 A 192.0.2.21\nmail2 A 192.0.2.22\nmail3 A 192.0.2.23\n";

// loadbalance README: MX RRsets are shuffled too (their names may be pointed into: the
// reply is rebuilt, and the additional addresses still parse at the right owners).
both_drivers!(loadbalance_shuffles_mx, |driver| {
    let corefile = "mx.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    loadbalance\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", MX_ZONE));
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let r = s.udp(&q("mx.test", Rtype::MX));
        let mut a: Vec<String> = r.answer().into_iter().map(|x| x.data).collect();
        seen.insert(a.clone());
        a.sort();
        assert_eq!(a, ["10 mail1.mx.test.", "20 mail2.mx.test.", "30 mail3.mx.test."]);
        let mut extra: Vec<(String, String)> = r
            .additional()
            .into_iter()
            .filter(|x| x.rtype == Rtype::A)
            .map(|x| (x.owner, x.data))
            .collect();
        extra.sort();
        assert_eq!(
            extra,
            [
                ("mail1.mx.test".to_string(), "192.0.2.21".to_string()),
                ("mail2.mx.test".into(), "192.0.2.22".into()),
                ("mail3.mx.test".into(), "192.0.2.23".into())
            ]
        );
    }
    assert_eq!(seen.len(), 6, "all 3! orders: {seen:?}");
    let out = dig(&s, &["mx.test", "MX"]);
    assert!(
        out.contains("status: NOERROR") && out.contains("ADDITIONAL: 4"),
        "{out}"
    );
});

// loadbalance README, "Subnet Prioritization": addresses of the preferred subnets first, in
// the order of the subnets, the others shuffled after them.
both_drivers!(loadbalance_prefer_puts_subnets_first, |driver| {
    let corefile = "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    loadbalance round_robin {\n        prefer 192.0.2.13/32 192.0.2.8/29 2001:db8::12/128\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", POOL_ZONE));
    let all = orders(&s, "web.pool.test", Rtype::A, 100);
    let mut seconds = std::collections::HashSet::new();
    for a in &all {
        assert_eq!(a[0], "192.0.2.13", "{a:?}");
        // .11, .12 and .14 are in 192.0.2.8/29: shuffled among themselves.
        seconds.insert(a[1].clone());
    }
    assert_eq!(seconds.len(), 3, "{seconds:?}");
    for a in orders(&s, "web.pool.test", Rtype::AAAA, 20) {
        assert_eq!(a, ["2001:db8::12", "2001:db8::11"]);
    }
});

// loadbalance README, `weighted`: the first address is drawn by its weight from the file
// (3 : 1 : 1 : 1 here), and a changed file is read again at the reload interval.
both_drivers!(loadbalance_weighted_by_file, |driver| {
    let corefile = "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    loadbalance weighted {DIR}/weights {\n        reload 1s\n    }\n}\n";
    let s = Server::start(
        Options::new(driver, corefile)
            .file("zone", POOL_ZONE)
            .file("weights", "# weights\nweb.pool.test\n192.0.2.11 3\n192.0.2.12 1\n"),
    );
    let tops = |n| {
        let mut count = std::collections::HashMap::new();
        for a in orders(&s, "web.pool.test", Rtype::A, n) {
            let mut sorted = a.clone();
            sorted.sort();
            assert_eq!(sorted, ["192.0.2.11", "192.0.2.12", "192.0.2.13", "192.0.2.14"]);
            *count.entry(a[0].clone()).or_insert(0usize) += 1;
        }
        count
    };
    // 600 draws: .11 expects 300 (sd 12), each other 100 (sd 9); these bounds are more
    // than 6 sd away.
    let c = tops(600);
    assert!(c["192.0.2.11"] > 220, "{c:?}");
    for ip in ["192.0.2.12", "192.0.2.13", "192.0.2.14"] {
        let n = c.get(ip).copied().unwrap_or(0);
        assert!((45..160).contains(&n), "{ip}: {c:?}");
    }
    // .14 weighs 255 now: it comes first almost always once the file is read again.
    std::fs::write(s.dir.path().join("weights"), "web.pool.test\n192.0.2.14 255\n").unwrap();
    let mut ok = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        if tops(50).get("192.0.2.14").copied().unwrap_or(0) >= 45 {
            ok = true;
            break;
        }
    }
    assert!(ok, "the reloaded weights apply");
});

/// A zone with a TXT RRset of about 900 octets at big.pool.test.
fn big_zone() -> String {
    let mut z = POOL_ZONE.to_string();
    for i in 0..9 {
        z.push_str(&format!("big TXT \"{}\"\n", format!("{i}").repeat(90)));
    }
    z
}

// bufsize README: `bufsize 512` lowers what a requester offers: an answer that fits the
// client's 4096 but not 512 is truncated, and the OPT offers 512.
both_drivers!(bufsize_lowers_the_requesters_payload, |driver| {
    let with = Server::start(
        Options::new(
            driver,
            "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    bufsize 512\n}\n",
        )
        .file("zone", big_zone()),
    );
    let without = authoritative(driver, "pool.test", big_zone());
    let ask = q("big.pool.test", Rtype::TXT).edns(4096);
    let r = without.udp(&ask);
    assert!(!r.tc() && r.answer().len() == 9 && r.wire.len() > 512);
    assert_eq!(r.opt().unwrap().0, 1232);
    let r = with.udp(&ask);
    assert!(r.tc() && r.wire.len() <= 512, "{} octets", r.wire.len());
    assert_eq!(r.opt().unwrap().0, 512);
    // Over TCP the full answer, as before.
    assert_eq!(with.tcp(&ask).answer().len(), 9);
    // Small answers are unchanged.
    assert_eq!(with.udp(&q("web.pool.test", Rtype::A).edns(4096)).answer().len(), 4);
});

// root README: `root /etc/coredns/zones` makes `file db.example.org` read
// /etc/coredns/zones/db.example.org; debug is accepted.
both_drivers!(root_makes_file_paths_relative_to_it, |driver| {
    let corefile =
        "pool.test:{PORT} {\n    bind 127.0.0.1\n    debug\n    file db.pool.test\n    root {DIR}/zones\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zones/db.pool.test", POOL_ZONE));
    assert_eq!(s.udp(&q("web.pool.test", Rtype::A)).answer().len(), 4);
});

/// Asks from `src` (a loopback address): the reply, or `None` when none came in 1 s.
fn ask_from(s: &Server, src: &str, name: &str, t: Rtype) -> Option<Reply> {
    let sock = UdpSocket::bind((src, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    sock.send_to(&q(name, t).edns(1232).wire(), s.addr).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).ok()?;
    Some(Reply::parse(&buf[..n]))
}

/// The Extended DNS Error INFO-CODE of a reply's OPT, if any.
fn ede(r: &Reply) -> Option<u16> {
    let (_, _, _, opts) = r.opt()?;
    opts.iter()
        .find(|(code, _)| *code == 15)
        .map(|(_, d)| u16::from_be_bytes([d[0], d[1]]))
}

// acl README's examples, with loopback addresses for the networks: block type A from a
// network, filter, allow a smaller network before blocking a larger one, drop, and a rule
// for a zone below the block's.
both_drivers!(acl_allows_blocks_filters_and_drops_by_source_and_type, |driver| {
    let corefile = "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    acl {\n        block type A net 127.0.0.2/32\n        filter type AAAA net 127.0.0.2\n        allow net 127.0.0.3/32\n        drop net 127.0.0.5\n        block net 127.0.0.0/29\n    }\n    acl web.pool.test {\n        block net 127.0.0.6\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", POOL_ZONE));
    let name = "web.pool.test";
    // 127.0.0.1 is in 127.0.0.0/29: blocked, REFUSED with EDE 15 (Blocked).
    let r = ask_from(&s, "127.0.0.1", name, Rtype::A).unwrap();
    assert_eq!((r.rcode(), ede(&r)), (5, Some(15)));
    let r = ask_from(&s, "127.0.0.2", name, Rtype::A).unwrap();
    assert_eq!((r.rcode(), ede(&r), r.answer().len()), (5, Some(15), 0));
    let r = ask_from(&s, "127.0.0.2", name, Rtype::AAAA).unwrap();
    assert_eq!((r.rcode(), ede(&r), r.answer().len()), (0, Some(17), 0), "filtered");
    let r = ask_from(&s, "127.0.0.3", name, Rtype::A).unwrap();
    assert_eq!((r.rcode(), r.answer().len()), (0, 4), "allowed before the /29 block");
    assert!(ask_from(&s, "127.0.0.5", name, Rtype::A).is_none(), "dropped");
    // 127.0.0.9 is outside every rule: allowed; 127.0.0.6 only for web.pool.test.
    assert_eq!(ask_from(&s, "127.0.0.9", name, Rtype::A).unwrap().answer().len(), 4);
    assert_eq!(ask_from(&s, "127.0.0.6", name, Rtype::A).unwrap().rcode(), 5);
    assert_eq!(
        ask_from(&s, "127.0.0.6", "ns.pool.test", Rtype::A).unwrap().rcode(),
        5,
        "the /29 rule"
    );
    assert_eq!(
        ask_from(&s, "127.0.0.9", "ns.pool.test", Rtype::A)
            .unwrap()
            .answer()
            .len(),
        1
    );
    // dig sees the EDE too.
    let out = Command::new("dig")
        .args([
            "@127.0.0.1",
            "-p",
            &s.port.to_string(),
            "-b",
            "127.0.0.2",
            "+time=2",
            "+tries=1",
            name,
            "A",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("status: REFUSED") && out.contains("EDE: 15 (Blocked)"),
        "{out}"
    );
});

// "Allow only" from the README: allow two networks, block the rest; over TCP as well.
both_drivers!(acl_allow_only_these_networks, |driver| {
    let corefile = "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    acl {\n        allow net 127.0.0.8/30 127.0.0.1\n        block\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", POOL_ZONE));
    assert_eq!(
        ask_from(&s, "127.0.0.9", "web.pool.test", Rtype::A)
            .unwrap()
            .answer()
            .len(),
        4
    );
    assert_eq!(
        ask_from(&s, "127.0.0.12", "web.pool.test", Rtype::A).unwrap().rcode(),
        5
    );
    assert_eq!(s.tcp(&q("web.pool.test", Rtype::A)).answer().len(), 4);
});

// template README: "resolve everything under .invalid as NXDOMAIN", with the SOA in the
// authority section, written over several lines.
both_drivers!(template_answers_nxdomain_with_an_soa, |driver| {
    let corefile = ".:{PORT} {\n    bind 127.0.0.1\n    template ANY ANY invalid {\n        rcode NXDOMAIN\n        authority \"invalid. 60 {{ .Class }} SOA ns.invalid. hostmaster.invalid. (1 60 60 60 60)\"\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile));
    let r = s.udp(&q("host.invalid", Rtype::A));
    assert_eq!(r.rcode(), 3);
    assert!(r.aa());
    let auth = r.authority();
    assert_eq!((auth.len(), auth[0].rtype, auth[0].ttl), (1, Rtype::SOA, 60));
    assert!(
        auth[0]
            .data
            .starts_with("ns.invalid. hostmaster.invalid. 1 60 60 60 60"),
        "{auth:?}"
    );
    // Names outside its zone are not its business (no other plugin: REFUSED).
    assert_eq!(s.udp(&q("host.example", Rtype::A)).rcode(), 5);
});

// template README: A records from named groups, PTR back, fallthrough, and index .Match.
both_drivers!(template_builds_a_and_ptr_from_the_name, |driver| {
    let corefile = concat!(
        "example:{PORT} 10.in-addr.arpa:{PORT} {\n    bind 127.0.0.1\n",
        "    template IN A example {\n        match \"^ip-(?P<a>[0-9]*)-(?P<b>[0-9]*)-(?P<c>[0-9]*)-(?P<d>[0-9]*)[.]example[.]$\"\n",
        "        answer \"{{ .Name }} 60 IN A {{ .Group.a }}.{{ .Group.b }}.{{ .Group.c }}.{{ .Group.d }}\"\n        fallthrough\n    }\n",
        "    template IN PTR 10.in-addr.arpa {\n        match \"^(?P<d>[0-9]*)[.](?P<c>[0-9]*)[.](?P<b>[0-9]*)[.]10[.]in-addr[.]arpa[.]$\"\n",
        "        answer \"{{ .Name }} 60 IN PTR ip-10-{{ .Group.b }}-{{ .Group.c }}-{{ .Group.d }}.example.\"\n    }\n",
        "    template IN TXT example {\n        match \"^(?P<who>[a-z]+)[.]example[.]$\"\n",
        "        answer \"{{ .Name }} 30 IN TXT \\\"{{ index .Match 1 }} asked {{ .Type }} in {{ .Zone }} from {{ .Remote }}\\\"\"\n",
        "        additional \"extra.example. 30 IN A 192.0.2.99\"\n    }\n",
        "    file {DIR}/zone example\n}\n"
    );
    let zone = "$ORIGIN example.\n@ 300 IN SOA ns hostmaster 1 7200 3600 1209600 300\n@ 300 IN NS ns\nns 300 IN A 192.0.2.1\nstatic 300 IN A 192.0.2.7\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", zone));
    let r = s.udp(&q("ip-10-64-1-2.example", Rtype::A));
    assert_eq!((r.rcode(), r.aa()), (0, true));
    let a = r.answer();
    assert_eq!((a.len(), a[0].data.as_str(), a[0].ttl), (1, "10.64.1.2", 60));
    let r = s.udp(&q("2.1.64.10.in-addr.arpa", Rtype::PTR));
    assert_eq!(r.answer()[0].data, "ip-10-64-1-2.example.");
    // No regex matches: fallthrough hands the name to the file.
    assert_eq!(s.udp(&q("static.example", Rtype::A)).answer()[0].data, "192.0.2.7");
    // The PTR template has no fallthrough: SERVFAIL.
    assert_eq!(s.udp(&q("x.10.in-addr.arpa", Rtype::PTR)).rcode(), 2);
    // Another type than the template's goes to the next plugin.
    assert_eq!(s.udp(&q("static.example", Rtype::AAAA)).rcode(), 0);
    let out = dig(&s, &["+short", "bob.example", "TXT"]);
    assert_eq!(out.trim(), "\"bob asked TXT in example. from 127.0.0.1\"");
    let r = s.udp(&q("bob.example", Rtype::TXT));
    assert_eq!(r.additional()[0].data, "192.0.2.99");
    let out = dig(&s, &["ip-10-0-0-9.example", "A"]);
    assert!(out.contains("ip-10-0-0-9.example.\t60\tIN\tA\t10.0.0.9"), "{out}");
});

// template README: ederror, and a template whose record does not parse is SERVFAIL.
// template README, "Resolve hexadecimal ip pattern using parseInt"; a value that does not
// fit its bit size fails the template (SERVFAIL), as Go's template execution does.
both_drivers!(template_parse_int_as_the_readme, |driver| {
    let corefile = concat!(
        "example:{PORT} {\n    bind 127.0.0.1\n",
        "    template IN A example {\n        match \"^ip0a(?P<b>[a-f0-9]{2})(?P<c>[a-f0-9]{2})(?P<d>[a-f0-9]{2})[.]example[.]$\"\n",
        "        answer \"{{ .Name }} 60 IN A 10.{{ parseInt .Group.b 16 8 }}.{{ parseInt .Group.c 16 8 }}.{{ parseInt .Group.d 16 8 }}\"\n        fallthrough\n    }\n",
        "    template IN TXT example {\n        match \"^n([0-9]+)[.]example[.]$\"\n",
        "        answer \"{{ .Name }} 60 IN TXT {{ parseInt (index .Match 1) 10 4 }} {{ .Question.Qtype }} {{ .Question.Qclass }}\"\n    }\n",
        "}\n"
    );
    let s = Server::start(Options::new(driver, corefile));
    let out = dig(&s, &["+short", "ip0a7b7b7b.example", "A"]);
    assert_eq!(out.trim(), "10.123.123.123");
    let out = dig(&s, &["+short", "ip0a00ff10.example", "A"]);
    assert_eq!(out.trim(), "10.0.255.16");
    let out = dig(&s, &["+short", "n15.example", "TXT"]);
    assert_eq!(out.trim(), "\"15\" \"16\" \"1\"");
    // 16 needs five bits.
    assert_eq!(s.udp(&q("n16.example", Rtype::TXT)).rcode(), 2);
});

both_drivers!(template_ederror_and_broken_records, |driver| {
    let corefile = ".:{PORT} {\n    bind 127.0.0.1\n    template ANY ANY blocked.test {\n        rcode REFUSED\n        ederror 15 \"blocked by policy\"\n    }\n    template IN A broken.test {\n        answer \"{{ .Name }} 60 IN A not-an-address\"\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile));
    let r = s.udp(&q("x.blocked.test", Rtype::A).edns(1232));
    assert_eq!(r.rcode(), 5);
    assert_eq!(ede(&r), Some(15));
    assert_eq!(s.udp(&q("x.broken.test", Rtype::A)).rcode(), 2);
});

// nsid README: `nsid Use The Force`; dig +nsid shows it, for the block's own answers and
// for forwarded ones (from the upstream and from the cache); nothing without +nsid.
both_drivers!(nsid_identifies_the_server_to_clients_that_ask, |driver| {
    let up = authoritative(driver, "pool.test", POOL_ZONE);
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/zone\n    nsid Use The Force\n}}\npool.test:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{}\n    cache 30\n    nsid edge-1\n}}\n",
        up.port
    );
    let s = Server::start(Options::new(driver, &corefile).file("zone", example_zone()));
    let out = dig(&s, &["+nsid", "www.example.test", "A"]);
    assert!(
        out.contains("; NSID: 55 73 65 20 54 68 65 20 46 6f 72 63 65 (\"Use The Force\")"),
        "{out}"
    );
    assert!(out.contains("192.0.2.10"), "{out}");
    let out = dig(&s, &["+nsid", "+tcp", "nope.example.test", "A"]);
    assert!(
        out.contains("status: NXDOMAIN") && out.contains("(\"Use The Force\")"),
        "{out}"
    );
    assert!(!dig(&s, &["www.example.test", "A"]).contains("NSID"));
    for _ in 0..2 {
        let out = dig(&s, &["+nsid", "web.pool.test", "A"]);
        assert!(out.contains("(\"edge-1\")") && out.contains("192.0.2.11"), "{out}");
    }
    // The upstream has no nsid: its own answer says nothing.
    assert!(!dig(&up, &["+nsid", "web.pool.test", "A"]).contains("NSID:"));
    let out = Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &s.port.to_string(),
            "+nsid",
            "+time=2",
            "www.example.test",
        ])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.contains("5573652054686520466f726365") || out.contains("Use The Force"),
        "{out}"
    );
});

// header README: `response set ra aa` and `response clear rd`; `query set rd`.
both_drivers!(header_sets_and_clears_flags, |driver| {
    let corefile = "pool.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    header {\n        response set ra aa\n        response clear rd\n    }\n}\nexample.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone2\n    header {\n        query set rd\n        response clear aa\n    }\n}\n";
    let s = Server::start(
        Options::new(driver, corefile)
            .file("zone", POOL_ZONE)
            .file("zone2", example_zone()),
    );
    let r = s.udp(&q("web.pool.test", Rtype::A));
    let h = r.msg.header();
    assert!(h.ra() && h.aa() && !h.rd(), "{:?}", r.wire[2..4].to_vec());
    assert_eq!(r.answer().len(), 4);
    // query set rd: the reply echoes the RD the block saw; AA cleared.
    let mut norec = q("www.example.test", Rtype::A);
    norec.rd = false;
    let r = s.udp(&norec);
    let h = r.msg.header();
    assert!(h.rd() && !h.aa(), "{:?}", r.wire[2..4].to_vec());
    let out = dig(&s, &["+norec", "web.pool.test", "A"]);
    assert!(out.contains("flags: qr aa ra;"), "{out}");
});

// local README: localhost and names below it are loopback, the RFC 6303 zones answer here
// (never forwarded), localhost.<domain> too unless localhost_prefix off.
both_drivers!(local_answers_localhost_names_here, |driver| {
    let up = authoritative(driver, "pool.test", POOL_ZONE);
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    local\n    forward . 127.0.0.1:{}\n}}\n",
        up.port
    );
    let s = Server::start(Options::new(driver, &corefile));
    let data = |name: &str, t: Rtype| -> (u16, Vec<String>, Vec<String>) {
        let r = s.udp(&q(name, t));
        (
            r.rcode(),
            r.answer().into_iter().map(|x| x.data).collect(),
            r.authority()
                .into_iter()
                .map(|x| format!("{} {}", x.owner, x.rtype))
                .collect(),
        )
    };
    assert_eq!(data("localhost", Rtype::A), (0, vec!["127.0.0.1".into()], vec![]));
    assert_eq!(data("localhost", Rtype::AAAA), (0, vec!["::1".into()], vec![]));
    assert_eq!(data("app.localhost", Rtype::A), (0, vec!["127.0.0.1".into()], vec![]));
    assert_eq!(
        data("localhost.pool.test", Rtype::A),
        (0, vec!["127.0.0.1".into()], vec![]),
        "legacy prefix"
    );
    assert_eq!(data("localhost", Rtype::NS).1, vec!["localhost.".to_string()]);
    assert_eq!(
        data("1.0.0.127.in-addr.arpa", Rtype::PTR).1,
        vec!["localhost.".to_string()]
    );
    let (rc, ans, auth) = data("9.9.127.in-addr.arpa", Rtype::PTR);
    assert_eq!((rc, ans.len(), auth), (3, 0, vec!["127.in-addr.arpa SOA".to_string()]));
    assert_eq!(data("localhost", Rtype::MX).2, vec!["localhost SOA".to_string()]);
    assert!(!s.udp(&q("localhost", Rtype::A)).aa(), "not authoritative, as CoreDNS");
    // Other names are forwarded as before.
    assert_eq!(data("web.pool.test", Rtype::A).1.len(), 4);
    // localhost_prefix off: localhost.pool.test goes upstream (NXDOMAIN there).
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    local {{\n        localhost_prefix off\n    }}\n    forward . 127.0.0.1:{}\n}}\n",
        up.port
    );
    let s = Server::start(Options::new(driver, &corefile));
    assert_eq!(s.udp(&q("localhost.pool.test", Rtype::A)).rcode(), 3);
    assert_eq!(s.udp(&q("x.localhost", Rtype::AAAA)).answer()[0].data, "::1");
    let out = dig(&s, &["+short", "localhost"]);
    assert_eq!(out.trim(), "127.0.0.1");
});

const DNS64_ZONE: &str = "$ORIGIN six.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 120\n@ NS ns\nns A 192.0.2.1\nv4only A 192.0.2.33\nboth A 192.0.2.34\nboth AAAA 2001:db8::34\nalias CNAME v4only\n";

/// Asks `name` AAAA over IPv6 (from ::1): the reply's rcode and answer records' data.
fn aaaa_from(s: &Server, src: &str, name: &str) -> (u16, Vec<Rr>) {
    let sock = UdpSocket::bind((src, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(4))).unwrap();
    let to: std::net::SocketAddr = if src.contains(':') {
        format!("[::1]:{}", s.port).parse().unwrap()
    } else {
        s.addr
    };
    sock.send_to(&q(name, Rtype::AAAA).edns(1232).wire(), to).unwrap();
    let mut buf = [0u8; 1500];
    let n = sock.recv(&mut buf).expect("a reply");
    let r = Reply::parse(&buf[..n]);
    (r.rcode(), r.answer())
}

use support::Rr;

// dns64 README: the well-known prefix for IPv6 clients; AAAA answers that exist are left
// alone, NXDOMAIN too, and IPv4 clients are not translated (allow_ipv4 is off).
both_drivers!(dns64_synthesises_aaaa_for_ipv6_clients, |driver| {
    let corefile = "six.test:{PORT} {\n    bind 127.0.0.1 ::1\n    file {DIR}/zone\n    dns64\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", DNS64_ZONE));
    let (rc, a) = aaaa_from(&s, "::1", "v4only.six.test");
    assert_eq!(rc, 0);
    assert_eq!(a.len(), 1, "{a:?}");
    // RFC 6147 §5.1.7: the smaller of the A's TTL (300) and the NODATA's SOA TTL (120, its
    // minimum, RFC 2308 §5).
    assert_eq!(
        (a[0].rtype, a[0].data.as_str(), a[0].ttl),
        (Rtype::AAAA, "64:ff9b::c000:221", 120)
    );
    let (_, a) = aaaa_from(&s, "::1", "both.six.test");
    assert_eq!(a.iter().map(|r| r.data.as_str()).collect::<Vec<_>>(), ["2001:db8::34"]);
    let (_, a) = aaaa_from(&s, "::1", "alias.six.test");
    assert_eq!(
        (a[0].rtype, a[1].data.as_str()),
        (Rtype::CNAME, "64:ff9b::c000:221"),
        "{a:?}"
    );
    assert_eq!(aaaa_from(&s, "::1", "nope.six.test").0, 3);
    let (rc, a) = aaaa_from(&s, "127.0.0.1", "v4only.six.test");
    assert_eq!((rc, a.len()), (0, 0), "an IPv4 client gets the plain NODATA");
});

// dns64 README: a custom prefix, translate_all and allow_ipv4; forwarded answers, from the
// upstream and from the cache.
both_drivers!(dns64_translates_forwarded_answers_with_options, |driver| {
    let up = authoritative(driver, "six.test", DNS64_ZONE);
    let corefile = format!(
        "six.test:{{PORT}} {{\n    bind 127.0.0.1 ::1\n    forward . 127.0.0.1:{}\n    cache 30\n    dns64 {{\n        prefix 64:1337::/96\n        translate_all\n        allow_ipv4\n    }}\n}}\n",
        up.port
    );
    let s = Server::start(Options::new(driver, &corefile));
    for _ in 0..2 {
        let (rc, a) = aaaa_from(&s, "127.0.0.1", "both.six.test");
        assert_eq!(rc, 0);
        assert_eq!(
            a.iter().map(|r| r.data.as_str()).collect::<Vec<_>>(),
            ["64:1337::c000:222"],
            "translate_all"
        );
        let (_, a) = aaaa_from(&s, "::1", "v4only.six.test");
        assert_eq!(a[0].data, "64:1337::c000:221");
    }
    // Other types are untouched.
    assert_eq!(s.udp(&q("v4only.six.test", Rtype::A)).answer()[0].data, "192.0.2.33");
    let out = Command::new("dig")
        .args(["@::1", "-p", &s.port.to_string(), "+short", "v4only.six.test", "AAAA"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "64:1337::c000:221");
});

fn small_zone(origin: &str, ip: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A {ip}\nwww A {ip}\n"
    )
}

// auto README: a zone per db.ZONE file of a folder; files that appear and go are picked up
// at the reload interval; a custom regex and origin template.
both_drivers!(auto_serves_the_zones_of_a_folder, |driver| {
    let corefile = "test:{PORT} {\n    bind 127.0.0.1\n    auto {\n        directory {DIR}/zones\n        reload 1s\n    }\n    auto {\n        directory {DIR}/other ^([a-z]+)[.]zone$ {1}.test\n    }\n}\n";
    let s = Server::start(
        Options::new(driver, corefile)
            .file("zones/db.a.test", small_zone("a.test", "192.0.2.1"))
            .file("zones/db.b.test", small_zone("b.test", "192.0.2.2"))
            .file("zones/README", "not a zone\n")
            .file("other/c.zone", small_zone("c.test", "192.0.2.3")),
    );
    let www = |zone: &str| -> (u16, Option<String>) {
        let r = s.udp(&q(&format!("www.{zone}"), Rtype::A));
        (r.rcode(), r.answer().first().map(|a| a.data.clone()))
    };
    assert_eq!(www("a.test"), (0, Some("192.0.2.1".into())));
    assert_eq!(www("b.test"), (0, Some("192.0.2.2".into())));
    assert_eq!(www("c.test"), (0, Some("192.0.2.3".into())));
    let until = |zone: &str, want: (u16, Option<String>)| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while www(zone) != want {
            assert!(
                std::time::Instant::now() < deadline,
                "{zone}: {:?}\n{}",
                www(zone),
                s.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    // A new file: a new zone; a file gone: its zone too (REFUSED: nothing serves it).
    std::fs::write(s.dir.path().join("zones/db.d.test"), small_zone("d.test", "192.0.2.4")).unwrap();
    until("d.test", (0, Some("192.0.2.4".into())));
    std::fs::remove_file(s.dir.path().join("zones/db.a.test")).unwrap();
    until("a.test", (5, None));
    assert_eq!(www("b.test"), (0, Some("192.0.2.2".into())));
});
