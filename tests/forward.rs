//! Black-box: `forward` and `cache` with real upstreams on loopback (a second ringdns over
//! UDP, TCP, DoT and DoH; unbound over DoT) and a scripted upstream for the "Forwarding
//! faults" of ROBUSTNESS.md, under both drivers.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use rustls::pki_types::ServerName;
use support::server::{Options, Server, example_zone, free_port, read_frame, write_frame};
use support::tls::{self, Ca, Leaf};
use support::upstream::{Act, Rec, Upstream, a, name, qname, qtype, reply};
use support::{Reply, q};

/// A ringdns serving example.test over UDP/TCP ({PORT}), DoT ({PORT2}) and DoH ({PORT3})
/// with a certificate for `upstream.test`, logging every query.
const UPSTREAM: &str = "\
example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    log\n}\n\
tls://example.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/up.pem {DIR}/up.key\n    file {DIR}/zone\n    log\n}\n\
https://example.test:{PORT3} {\n    bind 127.0.0.1\n    tls {DIR}/up.pem {DIR}/up.key\n    file {DIR}/zone\n    log\n}\n";

fn upstream_ringdns(driver: &str, leaf: &Leaf) -> Server {
    Server::start(
        Options::new(driver, UPSTREAM)
            .file("zone", example_zone())
            .file("up.pem", leaf.cert_pem.clone())
            .file("up.key", leaf.key_pem.clone()),
    )
}

/// Starts a forwarder whose Corefile is `corefile` (`{PORT}` etc. as usual).
fn forwarder(driver: &str, corefile: &str, ca: Option<&Ca>) -> Server {
    let mut o = Options::new(driver, corefile);
    if let Some(ca) = ca {
        o = o.file("ca.pem", ca.pem());
    }
    Server::start(o)
}

fn udp_to(addr: SocketAddr, wire: &[u8], t: Duration) -> Option<Vec<u8>> {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(t)).unwrap();
    sock.send_to(wire, addr).unwrap();
    let mut buf = vec![0u8; 65535];
    sock.recv_from(&mut buf).ok().map(|(n, _)| buf[..n].to_vec())
}

/// A client socket kept across queries: the kernel sends all of them to the same shard
/// (SO_REUSEPORT hashes the address pair), whose cache and coalescing the tests observe.
struct Client {
    sock: UdpSocket,
    to: SocketAddr,
}

impl Client {
    fn new(s: &Server) -> Client {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Client { sock, to: s.addr }
    }

    fn ask_raw(&self, wire: &[u8], t: Duration) -> Option<Vec<u8>> {
        self.sock.set_read_timeout(Some(t)).unwrap();
        self.sock.send_to(wire, self.to).unwrap();
        let mut buf = vec![0u8; 65535];
        let id = [wire[0], wire[1]];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            if n >= 2 && buf[..2] == id {
                return Some(buf[..n].to_vec());
            }
        }
    }

    fn ask(&self, q: &support::Query) -> Reply {
        Reply::parse(
            &self
                .ask_raw(&q.wire(), Duration::from_secs(4))
                .unwrap_or_else(|| panic!("no reply to {q:?}")),
        )
    }
}

fn a_records(r: &Reply) -> Vec<String> {
    r.answer()
        .iter()
        .filter(|rr| rr.rtype == Rtype::A)
        .map(|rr| rr.data.clone())
        .collect()
}

/// Log lines of `s` that are query log entries for `name` over `proto`.
fn logged(s: &Server, name: &str, proto: &str) -> usize {
    s.log()
        .lines()
        .filter(|l| l.contains("ringdns::query") && l.contains(name) && l.contains(&format!(" {proto} ")))
        .count()
}

/// The counter `field` from the "ringdns stopped" line.
fn counter(log: &str, field: &str) -> u64 {
    let line = log.lines().find(|l| l.contains("ringdns stopped")).expect("stop line");
    let at = line
        .find(&format!("{field}="))
        .unwrap_or_else(|| panic!("{field} in {line}"))
        + field.len()
        + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

both_drivers!(every_upstream_transport, |driver: &str| {
    let ca = Ca::new();
    let leaf = ca.leaf(&["upstream.test"]);
    let up = upstream_ringdns(driver, &leaf);
    let doh_port = free_port();
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{p}\n}}\n\
         .:{{PORT2}} {{\n    bind 127.0.0.1\n    forward . dns://127.0.0.1:{p} {{\n        force_tcp\n    }}\n}}\n\
         .:{{PORT3}} {{\n    bind 127.0.0.1\n    forward . tls://127.0.0.1:{p2} {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n\
         .:{doh_port} {{\n    bind 127.0.0.1\n    forward . https://127.0.0.1:{p3}/dns-query {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n",
        p = up.port,
        p2 = up.port2,
        p3 = up.port3,
    );
    let fw = forwarder(driver, &corefile, Some(&ca));
    let ports = [
        (fw.port, "udp"),
        (fw.port2, "tcp"),
        (fw.port3, "tls"),
        (doh_port, "https"),
    ];
    for (i, (port, proto)) in ports.into_iter().enumerate() {
        let query = q("www.example.test", Rtype::A).id(100 + i as u16).edns(1232);
        let raw = udp_to(
            SocketAddr::from(([127, 0, 0, 1], port)),
            &query.wire(),
            Duration::from_secs(3),
        )
        .unwrap_or_else(|| panic!("no reply via the {proto} upstream"));
        let r = Reply::parse(&raw);
        assert_eq!((r.id(), r.rcode()), (100 + i as u16, 0), "via {proto}");
        assert_eq!(a_records(&r), vec!["192.0.2.10"], "via {proto}");
        assert!(!r.aa(), "a forwarded answer is not authoritative");
        // Each forwarder block has its own cache: every one asked the upstream once.
        assert!(
            up.wait_log(&format!(" {proto} "), Duration::from_secs(2)),
            "upstream saw {proto}: {}",
            up.log()
        );
    }
    // NXDOMAIN and its SOA pass through; over TCP to the forwarder too.
    let r = fw.tcp(&q("nothere.example.test", Rtype::A).edns(1232));
    assert_eq!(r.rcode(), 3);
    assert!(r.authority().iter().any(|rr| rr.rtype == Rtype::SOA));
    assert_eq!(logged(&up, "www.example.test", "udp"), 1);
    assert_eq!(logged(&up, "www.example.test", "tcp"), 1);
    assert_eq!(logged(&up, "www.example.test", "tls"), 1);
    assert_eq!(logged(&up, "www.example.test", "https"), 1);
});

both_drivers!(dot_upstream_with_a_bad_certificate_fails_closed, |driver: &str| {
    let ca = Ca::new();
    let wrong_name = ca.leaf(&["someone-else.test"]);
    let up = upstream_ringdns(driver, &wrong_name);
    let other_ca = Ca::new();
    let trusted_leaf = other_ca.leaf(&["upstream.test"]);
    let up2 = upstream_ringdns(driver, &trusted_leaf);
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . tls://127.0.0.1:{p} {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n\
         .:{{PORT2}} {{\n    bind 127.0.0.1\n    forward . tls://127.0.0.1:{p2} {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n",
        p = up.port2,
        p2 = up2.port2,
    );
    let expired = ca.expired_leaf(&["upstream.test"]);
    let up3 = upstream_ringdns(driver, &expired);
    let corefile = format!(
        "{corefile}.:{{PORT3}} {{\n    bind 127.0.0.1\n    forward . tls://127.0.0.1:{p3} {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n",
        p3 = up3.port2
    );
    let fw = forwarder(driver, &corefile, Some(&ca));
    // The expired certificate is really served (so the refusal is ours).
    let (cfg, rec) = tls::recording_config(&[&rustls::version::TLS13]);
    tls::connect(
        SocketAddr::from(([127, 0, 0, 1], up3.port2)),
        cfg,
        ServerName::try_from("upstream.test").unwrap(),
    )
    .expect("handshake");
    assert_eq!(rec.leaf.lock().unwrap().as_deref(), Some(&expired.der[..]));
    let started = Instant::now();
    // Wrong name (trusted CA), the right name from an untrusted CA, an expired certificate.
    for port in [fw.port, fw.port2, fw.port3] {
        let raw = udp_to(
            SocketAddr::from(([127, 0, 0, 1], port)),
            &q("www.example.test", Rtype::A).edns(1232).wire(),
            Duration::from_secs(4),
        )
        .expect("a reply");
        let r = Reply::parse(&raw);
        assert_eq!(r.rcode(), 2, "SERVFAIL");
        assert!(r.answer().is_empty());
        assert!(
            ede_codes(&r).contains(&23) || ede_codes(&r).contains(&22),
            "EDE: {:?}",
            ede_codes(&r)
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    // Never a plaintext fallback: the upstreams saw no query at all.
    std::thread::sleep(Duration::from_millis(200));
    for u in [&up, &up2, &up3] {
        assert!(!u.log().contains("ringdns::query"), "{}", u.log());
    }
});

/// EDE codes of a reply's OPT (RFC 8914 option 15).
fn ede_codes(r: &Reply) -> Vec<u16> {
    r.opt()
        .map(|(_, _, _, opts)| {
            opts.iter()
                .filter(|(code, data)| *code == 15 && data.len() >= 2)
                .map(|(_, data)| u16::from_be_bytes([data[0], data[1]]))
                .collect()
        })
        .unwrap_or_default()
}

/// unbound, serving `unbound.test` from local data over DoT on `port` with `leaf`.
struct Unbound {
    child: std::process::Child,
    _dir: support::server::TempDir,
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts unbound in the foreground with `conf`, written into `dir`, logging there.
fn spawn_unbound(dir: &support::server::TempDir, conf: &str) -> std::process::Child {
    let conf_path = dir.write("unbound.conf", conf);
    std::process::Command::new("/usr/sbin/unbound")
        .args(["-d", "-c"])
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("unbound.log")).unwrap())
        .spawn()
        .expect("unbound is installed (test.sh installs it)")
}

fn unbound(ca: &Ca, leaf: &Leaf, port: u16) -> Unbound {
    let dir = support::server::TempDir::new("unbound");
    let pem = dir.write("unbound.pem", &leaf.cert_pem);
    let key = dir.write("unbound.key", &leaf.key_pem);
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  tls-port: {port}\n  tls-service-key: \"{key}\"\n  tls-service-pem: \"{pem}\"\n  \
         do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  \
         do-ip6: no\n  access-control: 127.0.0.0/8 allow\n  local-zone: \"unbound.test.\" static\n  \
         local-data: \"www.unbound.test. 300 IN A 192.0.2.77\"\n  local-data: \"unbound.test. 300 IN SOA ns.unbound.test. h.unbound.test. 1 3600 600 86400 60\"\n",
        key = key.display(),
        pem = pem.display(),
        dir = dir.path().display(),
    );
    let child = spawn_unbound(&dir, &conf);
    // Ready once it completes a TLS handshake.
    let cfg = tls::client_config(&ca.der(), &[b"dot"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        if tls::connect(addr, cfg.clone(), ServerName::try_from("unbound.test").unwrap()).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "unbound did not start: {}",
            std::fs::read_to_string(dir.path().join("unbound.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Unbound { child, _dir: dir }
}

both_drivers!(unbound_as_dot_upstream, |driver: &str| {
    let ca = Ca::new();
    let leaf = ca.leaf(&["unbound.test"]);
    let port = free_port();
    let _u = unbound(&ca, &leaf, port);
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . tls://127.0.0.1:{port} {{\n        tls {{DIR}}/ca.pem\n        tls_servername unbound.test\n    }}\n    cache\n}}\n"
    );
    let fw = forwarder(driver, &corefile, Some(&ca));
    let r = fw.udp(&q("www.unbound.test", Rtype::A).edns(1232));
    assert_eq!(r.rcode(), 0);
    assert_eq!(a_records(&r), vec!["192.0.2.77"]);
    let r = fw.tcp(&q("nope.unbound.test", Rtype::A).edns(1232));
    assert_eq!(r.rcode(), 3);
    // Pipelined over one client TCP connection: the replies come back, each to its query.
    let mut s = fw.connect();
    for i in 0..20u16 {
        write_frame(&mut s, &q(&format!("n{i}.unbound.test"), Rtype::A).id(1000 + i).wire());
    }
    let mut ids: Vec<u16> = (0..20)
        .map(|_| Reply::parse(&read_frame(&mut s).expect("reply")).id())
        .collect();
    ids.sort();
    assert_eq!(ids, (1000..1020).collect::<Vec<_>>());
});

/// A forwarder on `{PORT}` to `ups` with forward options `opts` and extra block lines `extra`.
fn forward_to(driver: &str, ups: &[&Upstream], opts: &str, extra: &str) -> Server {
    let to: Vec<String> = ups.iter().map(|u| u.addr.to_string()).collect();
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . {} {{\n{opts}    }}\n{extra}}}\n",
        to.join(" ")
    );
    forwarder(driver, &corefile, None)
}

/// An upstream answering every A query with `ip` (TTL 300) over UDP and TCP.
fn answering(ip: [u8; 4]) -> Upstream {
    Upstream::start(move |query, _| {
        let n = qname(query);
        vec![Act::Send(reply(query, 0, &[Rec(&n, 1, 300, a(ip))], &[], &[]))]
    })
}

fn silent() -> Upstream {
    Upstream::start(|_, _| vec![])
}

both_drivers!(silent_upstream_fails_over_then_servfail_with_ede, |driver: &str| {
    let dead = silent();
    let dead2 = silent();
    let good = answering([192, 0, 2, 1]);
    let fw = forward_to(driver, &[&dead, &good], "        policy sequential\n", "");
    let t0 = Instant::now();
    let r = fw.udp(&q("a.failover.test", Rtype::A).edns(1232));
    assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.1".to_string()]));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "failover inside the budget: {:?}",
        t0.elapsed()
    );
    // Asked first unless the harness's readiness probes already got it marked down.
    assert!(dead.count("a.failover.test") <= 1);
    drop(fw);
    let fw = forward_to(driver, &[&dead, &dead2], "", "    cache\n");
    let c = Client::new(&fw);
    let t0 = Instant::now();
    let raw = c
        .ask_raw(
            &q("b.failover.test", Rtype::A).edns(1232).wire(),
            Duration::from_secs(5),
        )
        .expect("an answer inside the budget");
    let took = t0.elapsed();
    let r = Reply::parse(&raw);
    assert_eq!(r.rcode(), 2, "SERVFAIL");
    assert!(took < Duration::from_secs(3), "within 3 s: {took:?}");
    assert!(!ede_codes(&r).is_empty(), "with an EDE");
    let asked = dead.count("b.failover.test") + dead2.count("b.failover.test");
    // The failure is cached (RFC 9520): at once, with EDE 13 (Cached Error), no new upstream query.
    let t0 = Instant::now();
    let r = c.ask(&q("b.failover.test", Rtype::A).edns(1232));
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!(r.rcode(), 2);
    assert!(ede_codes(&r).contains(&13), "{:?}", ede_codes(&r));
    assert_eq!(dead.count("b.failover.test") + dead2.count("b.failover.test"), asked);
});

both_drivers!(servfail_and_refused_upstreams_are_skipped, |driver: &str| {
    let failing = Upstream::start(|query, _| vec![Act::Send(reply(query, 2, &[], &[], &[]))]);
    let refusing = Upstream::start(|query, _| vec![Act::Send(reply(query, 5, &[], &[], &[]))]);
    let good = answering([192, 0, 2, 2]);
    let fw = forward_to(driver, &[&failing, &refusing, &good], "        policy sequential\n", "");
    let r = fw.udp(&q("x.skip.test", Rtype::A));
    assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.2".to_string()]));
    assert_eq!((failing.count("x.skip.test"), refusing.count("x.skip.test")), (1, 1));
    drop(fw);
    let fw = forward_to(driver, &[&failing, &refusing], "        policy sequential\n", "");
    let r = fw.udp(&q("y.skip.test", Rtype::A).edns(1232));
    assert_eq!(r.rcode(), 2, "SERVFAIL, not the upstream's REFUSED");
    assert!(!ede_codes(&r).is_empty());
});

both_drivers!(forged_and_garbage_replies_are_ignored, |driver: &str| {
    let up = Upstream::start(|query, tcp| {
        let n = qname(query);
        let forged = reply(query, 0, &[Rec(&n, 1, 300, a([6, 6, 6, 6]))], &[], &[]);
        let mut wrong_id = forged.clone();
        wrong_id[1] ^= 0x5a;
        let other_q = reply(
            &support::q("other.forged.test", Rtype::A)
                .id(u16::from_be_bytes([query[0], query[1]]))
                .wire(),
            0,
            &[Rec("other.forged.test", 1, 300, a([6, 6, 6, 6]))],
            &[],
            &[],
        );
        let real = reply(query, 0, &[Rec(&n, 1, 300, a([192, 0, 2, 3]))], &[], &[]);
        let mut acts = vec![
            Act::Send(b"\x00\x01garbage".to_vec()),
            Act::Send(wrong_id),
            Act::Send(other_q),
        ];
        if !tcp {
            acts.push(Act::SendFromOtherPort(forged.clone()));
            acts.push(Act::SendFromOtherAddr(forged));
        }
        acts.push(Act::Sleep(Duration::from_millis(50)));
        acts.push(Act::Send(real));
        acts
    });
    let fw = forward_to(driver, &[&up], "", "");
    let r = fw.udp(&q("www.forged.test", Rtype::A).edns(1232));
    assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.3".to_string()]));
    assert_eq!(
        up.count("www.forged.test"),
        1,
        "the real reply was accepted after the forged ones"
    );
    drop(fw);
    let fw = forward_to(driver, &[&up], "        force_tcp\n", "");
    let r = fw.udp(&q("tcp.forged.test", Rtype::A).edns(1232));
    assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.3".to_string()]));
});

both_drivers!(truncated_upstream_reply_is_retried_over_tcp, |driver: &str| {
    let up = Upstream::start(|query, tcp| {
        let n = qname(query);
        let mut r = reply(query, 0, &[Rec(&n, 1, 300, a([192, 0, 2, 4]))], &[], &[]);
        if !tcp {
            r = reply(query, 0, &[], &[], &[]);
            r[2] |= 0x02;
        }
        vec![Act::Send(r)]
    });
    let fw = forward_to(driver, &[&up], "", "");
    let r = fw.udp(&q("tc.test", Rtype::A).edns(1232));
    assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.4".to_string()]));
    let seen = up.seen_for("tc.test");
    assert_eq!(seen.iter().map(|s| s.tcp).collect::<Vec<_>>(), vec![false, true]);
});

both_drivers!(out_of_bailiwick_records_are_dropped, |driver: &str| {
    let up = Upstream::start(|query, _| {
        vec![Act::Send(reply(
            query,
            0,
            &[
                Rec("www.example.test", 1, 300, a([192, 0, 2, 10])),
                Rec("evil.other.test", 1, 300, a([6, 6, 6, 6])),
            ],
            &[
                Rec("example.test", 2, 300, name("ns1.example.test")),
                Rec("other.test", 2, 300, name("ns.evil.test")),
                Rec("test", 2, 300, name("ns.evil.test")),
            ],
            &[
                Rec("ns1.example.test", 1, 300, a([192, 0, 2, 1])),
                Rec("ns.evil.test", 1, 300, a([6, 6, 6, 6])),
                Rec("www.google.test", 1, 300, a([6, 6, 6, 6])),
            ],
        ))]
    });
    // Bailiwick is the forward's FROM: `test.` NS is above it, other.test beside it.
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward example.test {}\n    cache\n}}\n",
        up.addr
    );
    let fw = forwarder(driver, &corefile, None);
    let c = Client::new(&fw);
    for round in 0..2 {
        let r = c.ask(&q("www.example.test", Rtype::A).edns(1232));
        assert_eq!(r.rcode(), 0);
        let all: Vec<_> = [r.answer(), r.authority(), r.additional()].concat();
        assert!(
            all.iter()
                .all(|rr| !rr.data.contains("6.6.6.6") && !rr.data.contains("evil")),
            "round {round}: {all:?}"
        );
        assert_eq!(a_records(&r), vec!["192.0.2.10"]);
        assert_eq!(r.authority().len(), 1, "only example.test NS: {:?}", r.authority());
        assert_eq!(r.additional().iter().filter(|rr| rr.rtype == Rtype::A).count(), 1);
    }
    assert_eq!(up.count("www.example.test"), 1, "the second answer came from the cache");
});

/// An upstream answering `cN.chain.test` with a chain of `links` CNAMEs ending in an A record
/// (or looping back to the start when `links` is 0).
fn chain_upstream() -> Upstream {
    Upstream::start(|query, _| {
        let n = qname(query);
        let links: usize = n
            .split('.')
            .next()
            .unwrap()
            .trim_start_matches('l')
            .parse()
            .unwrap_or(0);
        let names: Vec<String> = (0..=links.max(2))
            .map(|i| if i == 0 { n.clone() } else { format!("x{i}.{n}") })
            .collect();
        let mut recs = Vec::new();
        if links == 0 {
            recs.push(Rec(&names[0], 5, 300, name(&names[1])));
            recs.push(Rec(&names[1], 5, 300, name(&names[0])));
        } else {
            for i in 0..links {
                recs.push(Rec(&names[i], 5, 300, name(&names[i + 1])));
            }
            recs.push(Rec(&names[links], 1, 300, a([192, 0, 2, 5])));
        }
        vec![Act::Send(reply(query, 0, &recs, &[], &[]))]
    })
}

both_drivers!(long_or_looping_cname_chains_are_servfail, |driver: &str| {
    let up = chain_upstream();
    let fw = forward_to(driver, &[&up], "", "");
    let ok = fw.udp(&q("l11.chain.test", Rtype::A).edns(1232));
    assert_eq!(ok.rcode(), 0);
    assert_eq!(ok.answer().len(), 12, "11 CNAMEs and the address");
    assert_eq!(fw.udp(&q("l12.chain.test", Rtype::A).edns(1232)).rcode(), 2);
    assert_eq!(fw.udp(&q("l0.chain.test", Rtype::A).edns(1232)).rcode(), 2, "a loop");
});

/// Sends `n` queries for `name` (IDs 0..n) from one socket and collects the replies that
/// arrive within `window`, with their arrival times.
fn burst(fw: &Server, name: &str, n: u16, window: Duration) -> Vec<(Duration, Reply)> {
    let c = Client::new(fw);
    // Hundreds of immediate replies arrive within a millisecond or two: a default receive
    // buffer (208 KiB, about 420 of them) overflows before the reader thread is scheduled
    // on a busy machine. Tests run as root: SO_RCVBUFFORCE passes net.core.rmem_max.
    let size: libc::c_int = 8 << 20;
    // SAFETY: setsockopt on a socket this function owns, with a c_int it points at.
    let forced = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&c.sock),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&size).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(forced, 0, "SO_RCVBUFFORCE (the tests run as root)");
    let rx = c.sock.try_clone().unwrap();
    let t0 = Instant::now();
    // The reader only copies datagrams out (parsing comes after): a burst of immediate
    // replies must not overflow the socket's receive buffer while it parses.
    let reader = std::thread::spawn(move || {
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 65535];
        rx.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        while t0.elapsed() < window {
            if let Ok((len, _)) = rx.recv_from(&mut buf) {
                raw.push((t0.elapsed(), buf[..len].to_vec()));
            }
        }
        raw.into_iter().map(|(t, b)| (t, Reply::parse(&b))).collect::<Vec<_>>()
    });
    for id in 0..n {
        c.sock
            .send_to(&q(name, Rtype::A).id(id).edns(1232).wire(), c.to)
            .unwrap();
        if id % 100 == 99 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    reader.join().unwrap()
}

both_drivers!(identical_queries_are_coalesced_and_waiters_capped, |driver: &str| {
    // hot.*: answered after 600 ms; late.*: after 4 s, past the client budget.
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        let wait = if n.starts_with("late.") { 4000 } else { 600 };
        vec![
            Act::Sleep(Duration::from_millis(wait)),
            Act::Send(reply(query, 0, &[Rec(&n, 1, 300, a([192, 0, 2, 6]))], &[], &[])),
        ]
    });
    let fw = forward_to(driver, &[&up], "", "    cache\n");
    let got = burst(&fw, "hot.coalesce.test", 1000, Duration::from_secs(3));
    assert_eq!(
        up.count("hot.coalesce.test"),
        1,
        "one upstream query for 1000 identical client queries"
    );
    let answered = got
        .iter()
        .filter(|(_, r)| r.rcode() == 0 && a_records(r) == ["192.0.2.6"])
        .count();
    let refused_waiting = got.iter().filter(|(_, r)| r.rcode() == 2).count();
    // The asking query plus at most 64 waiters get the answer; the rest SERVFAIL at once.
    assert!((2..=65).contains(&answered), "answered {answered}");
    assert!(
        answered + refused_waiting >= 900,
        "replies: {} of 1000; log: {}",
        got.len(),
        fw.log()
    );
    assert!(
        got.iter()
            .filter(|(_, r)| r.rcode() == 2)
            .all(|(t, _)| *t < Duration::from_millis(500)),
        "over-cap waiters are not kept waiting"
    );
    // Late upstream reply: every waiter gets SERVFAIL inside the budget, and nothing after.
    let got = burst(&fw, "late.coalesce.test", 50, Duration::from_secs(5));
    assert_eq!(got.len(), 50);
    assert!(
        got.iter().all(|(t, r)| r.rcode() == 2 && *t < Duration::from_secs(3)),
        "{:?}",
        got.iter().map(|(t, r)| (*t, r.rcode())).collect::<Vec<_>>()
    );
    let (_, log) = fw.stop();
    assert!(counter(&log, "coalesced") >= 1, "{log}");
});

both_drivers!(cache_counts_hits_and_ages_ttls, |driver: &str| {
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        if n.starts_with("nx.") {
            let soa = [
                name("ns.cache.test"),
                name("h.cache.test"),
                vec![0, 0, 0, 1, 0, 0, 14, 16, 0, 0, 2, 88, 0, 1, 81, 128, 0, 0, 0, 30],
            ]
            .concat();
            return vec![Act::Send(reply(query, 3, &[], &[Rec("cache.test", 6, 60, soa)], &[]))];
        }
        vec![Act::Send(reply(
            query,
            0,
            &[Rec(&n, 1, 300, a([192, 0, 2, 7]))],
            &[],
            &[],
        ))]
    });
    let fw = forward_to(driver, &[&up], "", "    cache\n");
    let c = Client::new(&fw);
    for _ in 0..10 {
        assert_eq!(a_records(&c.ask(&q("www.cache.test", Rtype::A))), ["192.0.2.7"]);
    }
    assert_eq!(up.count("www.cache.test"), 1);
    std::thread::sleep(Duration::from_millis(2100));
    let r = c.ask(&q("www.cache.test", Rtype::A));
    assert!(
        (290..=298).contains(&r.answer()[0].ttl),
        "TTL counted down: {}",
        r.answer()[0].ttl
    );
    // NXDOMAIN cached for min(SOA TTL, MINIMUM) = 30 s (RFC 2308 §5).
    for _ in 0..2 {
        let r = c.ask(&q("nx.cache.test", Rtype::A));
        assert_eq!(r.rcode(), 3);
        assert!(r.authority()[0].ttl <= 30);
    }
    assert_eq!(up.count("nx.cache.test"), 1);
    let (_, log) = fw.stop();
    assert_eq!(counter(&log, "cache_hits"), 9 + 1 + 1, "{log}");
});

both_drivers!(stale_answers_are_served_when_upstreams_fail, |driver: &str| {
    let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flag = alive.clone();
    let up = Upstream::start(move |query, _| {
        if !flag.load(std::sync::atomic::Ordering::Relaxed) {
            return vec![];
        }
        let n = qname(query);
        vec![Act::Send(reply(
            query,
            0,
            &[Rec(&n, 1, 1, a([192, 0, 2, 8]))],
            &[],
            &[],
        ))]
    });
    let fw = forward_to(
        driver,
        &[&up],
        "",
        "    cache {\n        success 1000 3600 0\n        serve_stale 1h\n    }\n",
    );
    let c = Client::new(&fw);
    assert_eq!(a_records(&c.ask(&q("stale.test", Rtype::A).edns(1232))), ["192.0.2.8"]);
    alive.store(false, std::sync::atomic::Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(2200));
    // Expired and the upstream silent: the stale answer at once, TTL 30, EDE 3 (RFC 8767).
    let t0 = Instant::now();
    let r = c.ask(&q("stale.test", Rtype::A).edns(1232));
    assert!(t0.elapsed() < Duration::from_millis(500));
    assert_eq!(a_records(&r), ["192.0.2.8"]);
    assert_eq!(r.answer()[0].ttl, 30);
    assert!(ede_codes(&r).contains(&3), "{:?}", ede_codes(&r));
});

both_drivers!(upstream_ids_and_ports_are_spread, |driver: &str| {
    let up = answering([192, 0, 2, 9]);
    let fw = forward_to(driver, &[&up], "", "");
    let c = Client::new(&fw);
    c.sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 2048];
    for batch in 0..100u16 {
        for i in 0..100u16 {
            let id = batch * 100 + i;
            c.sock
                .send_to(&q(&format!("n{id}.spread.test"), Rtype::A).id(id).wire(), c.to)
                .unwrap();
        }
        for _ in 0..100 {
            c.sock.recv_from(&mut buf).expect("every query answered");
        }
    }
    let seen: Vec<_> = up
        .seen()
        .into_iter()
        .filter(|s| qname(&s.wire).ends_with(".spread.test.") && qtype(&s.wire) == 1)
        .collect();
    assert_eq!(seen.len(), 10_000);
    let ids: Vec<u16> = seen
        .iter()
        .map(|s| u16::from_be_bytes([s.wire[0], s.wire[1]]))
        .collect();
    let ports: Vec<u16> = seen.iter().map(|s| s.peer.port()).collect();
    let distinct = |v: &[u16]| v.iter().collect::<std::collections::HashSet<_>>().len();
    // Uniform 16-bit IDs: about 65536·(1 − e^(−10000/65536)) ≈ 9270 distinct.
    assert!(distinct(&ids) > 9000, "distinct IDs {}", distinct(&ids));
    let steps = |v: &[u16]| {
        v.windows(2)
            .filter(|w| w[1].wrapping_sub(w[0]) < 4 || w[0].wrapping_sub(w[1]) < 4)
            .count()
    };
    assert!(steps(&ids) < 20, "ID sequences: {}", steps(&ids));
    let mut bins = [0usize; 16];
    for id in &ids {
        bins[usize::from(id >> 12)] += 1;
    }
    assert!(bins.iter().all(|&b| (450..=800).contains(&b)), "ID bins {bins:?}");
    // A fresh ephemeral port per query, over a wide range.
    assert!(distinct(&ports) > 5000, "distinct ports {}", distinct(&ports));
    let (lo, hi) = (ports.iter().min().unwrap(), ports.iter().max().unwrap());
    assert!(hi - lo > 20_000, "port range {lo}..{hi}");
    assert!(steps(&ports) < 100, "port sequences: {}", steps(&ports));
});

both_drivers!(a_64k_upstream_tcp_reply_is_relayed, |driver: &str| {
    let txt: Vec<u8> = std::iter::once(250u8).chain(std::iter::repeat_n(b'x', 250)).collect();
    let up = Upstream::start(move |query, tcp| {
        if !tcp {
            let mut r = reply(query, 0, &[], &[], &[]);
            r[2] |= 0x02;
            return vec![Act::Send(r)];
        }
        let recs: Vec<Rec> = (0..240).map(|_| Rec("big.test", 16, 300, txt.clone())).collect();
        vec![Act::Send(reply(query, 0, &recs, &[], &[]))]
    });
    let fw = forward_to(driver, &[&up], "", "");
    let r = fw.tcp(&q("big.test", Rtype::TXT).edns(1232));
    assert_eq!(r.rcode(), 0);
    assert_eq!(r.answer().len(), 240);
    assert!(r.wire.len() > 60_000, "{} octets", r.wire.len());
    // Over UDP the client gets TC and retries over TCP itself.
    let u = fw.udp(&q("big.test", Rtype::TXT).edns(1232));
    assert!(u.tc() && u.answer().is_empty());
    assert!(u.wire.len() <= 1232);
});

both_drivers!(policies_spread_or_order_upstream_choice, |driver: &str| {
    let one = answering([192, 0, 2, 11]);
    let two = answering([192, 0, 2, 12]);
    let names = |tag: &str| (0..20).map(|i| format!("p{i}.{tag}.test")).collect::<Vec<_>>();
    let count = |u: &Upstream, tag: &str| {
        u.seen()
            .iter()
            .filter(|s| qname(&s.wire).ends_with(&format!(".{tag}.test.")))
            .count()
    };
    for (policy, tag) in [("sequential", "seq"), ("round_robin", "rr"), ("random", "rnd")] {
        let fw = forward_to(driver, &[&one, &two], &format!("        policy {policy}\n"), "");
        let c = Client::new(&fw);
        for n in names(tag) {
            assert_eq!(c.ask(&q(&n, Rtype::A)).rcode(), 0);
        }
        let (a1, a2) = (count(&one, tag), count(&two, tag));
        assert_eq!(a1 + a2, 20, "{policy}");
        match policy {
            "sequential" => assert_eq!((a1, a2), (20, 0)),
            // One shard serves one client socket: it alternates exactly.
            "round_robin" => assert_eq!((a1, a2), (10, 10)),
            _ => assert!(a1 > 0 && a2 > 0, "random used both: {a1}/{a2}"),
        }
    }
});

both_drivers!(except_names_are_not_forwarded, |driver: &str| {
    let up = answering([192, 0, 2, 13]);
    let fw = forward_to(driver, &[&up], "        except internal.test\n", "");
    assert_eq!(
        fw.udp(&q("host.internal.test", Rtype::A)).rcode(),
        5,
        "REFUSED: no plugin serves it"
    );
    assert_eq!(up.count("host.internal.test"), 0);
    assert_eq!(a_records(&fw.udp(&q("host.public.test", Rtype::A))), ["192.0.2.13"]);
});

both_drivers!(max_concurrent_refuses_beyond_the_limit, |driver: &str| {
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        vec![
            Act::Sleep(Duration::from_millis(800)),
            Act::Send(reply(query, 0, &[Rec(&n, 1, 300, a([192, 0, 2, 14]))], &[], &[])),
        ]
    });
    let fw = forward_to(driver, &[&up], "        max_concurrent 3\n", "");
    // The harness's readiness probes are forwarded too: let them finish.
    std::thread::sleep(Duration::from_millis(1200));
    let c = Client::new(&fw);
    for i in 0..10u16 {
        c.sock
            .send_to(&q(&format!("m{i}.slow.test"), Rtype::A).id(i).wire(), c.to)
            .unwrap();
    }
    let mut rcodes = Vec::new();
    let mut buf = vec![0u8; 2048];
    c.sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    for _ in 0..10 {
        let (n, _) = c.sock.recv_from(&mut buf).expect("every query answered");
        rcodes.push(Reply::parse(&buf[..n]).rcode());
    }
    rcodes.sort();
    assert_eq!(rcodes, [0, 0, 0, 5, 5, 5, 5, 5, 5, 5]);
});

both_drivers!(transport_choice_follows_the_client_and_options, |driver: &str| {
    let up = answering([192, 0, 2, 15]);
    let plain = forward_to(driver, &[&up], "", "");
    let prefer = forward_to(driver, &[&up], "        prefer_udp\n", "");
    let force = forward_to(driver, &[&up], "        force_tcp\n", "");
    let over_tcp = |name: &str| up.seen_for(name).iter().map(|s| s.tcp).collect::<Vec<_>>();
    plain.udp(&q("u.plain.test", Rtype::A));
    plain.tcp(&q("t.plain.test", Rtype::A));
    prefer.tcp(&q("t.prefer.test", Rtype::A));
    force.udp(&q("u.force.test", Rtype::A));
    assert_eq!(over_tcp("u.plain.test"), [false]);
    assert_eq!(over_tcp("t.plain.test"), [true], "a TCP client is forwarded over TCP");
    assert_eq!(over_tcp("t.prefer.test"), [false]);
    assert_eq!(over_tcp("u.force.test"), [true]);
});

both_drivers!(stream_connections_are_reused_until_expire, |driver: &str| {
    let up = answering([192, 0, 2, 16]);
    let fw = forward_to(driver, &[&up], "        force_tcp\n        expire 1s\n", "");
    let c = Client::new(&fw);
    for i in 0..5 {
        c.ask(&q(&format!("r{i}.reuse.test"), Rtype::A));
    }
    std::thread::sleep(Duration::from_millis(2500));
    c.ask(&q("after.reuse.test", Rtype::A));
    let peer = |n: &str| up.seen_for(n)[0].peer;
    let first = peer("r0.reuse.test");
    assert!(
        (1..5).all(|i| peer(&format!("r{i}.reuse.test")) == first),
        "one pipelined connection"
    );
    assert_ne!(peer("after.reuse.test"), first, "a new connection after expire");
});

both_drivers!(a_failing_upstream_is_marked_down_and_probed_back, |driver: &str| {
    let alive = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = alive.clone();
    let flaky = Upstream::start(move |query, _| {
        if !flag.load(std::sync::atomic::Ordering::Relaxed) {
            return vec![];
        }
        let n = qname(query);
        vec![Act::Send(reply(
            query,
            0,
            &[Rec(&n, 1, 300, a([192, 0, 2, 17]))],
            &[],
            &[],
        ))]
    });
    let good = answering([192, 0, 2, 18]);
    let fw = forward_to(
        driver,
        &[&flaky, &good],
        "        policy sequential\n        max_fails 2\n        health_check 200ms no_rec domain probe.health.test\n",
        "",
    );
    let c = Client::new(&fw);
    for i in 0..2 {
        assert_eq!(
            a_records(&c.ask(&q(&format!("f{i}.health.test"), Rtype::A))),
            ["192.0.2.18"]
        );
    }
    // Down now: answers come from the next upstream without waiting on the silent one.
    let t0 = Instant::now();
    assert_eq!(a_records(&c.ask(&q("down.health.test", Rtype::A))), ["192.0.2.18"]);
    assert!(t0.elapsed() < Duration::from_millis(500), "{:?}", t0.elapsed());
    assert_eq!(flaky.count("down.health.test"), 0);
    // Health checks (NS .) find it back.
    alive.store(true, std::sync::atomic::Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = c.ask(&q(
            &format!("back{}.health.test", deadline.elapsed().as_millis()),
            Rtype::A,
        ));
        if a_records(&r) == ["192.0.2.17"] {
            break;
        }
        assert!(Instant::now() < deadline, "never back up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let probes = flaky.seen_for("probe.health.test");
    assert!(!probes.is_empty(), "probed");
    assert!(
        probes.iter().all(|s| qtype(&s.wire) == 2 && s.wire[2] & 0x01 == 0),
        "NS with RD clear"
    );
});

// The "Encrypted forwarder" of COREFILE.md on loopback: certificates from pebble by DNS-01,
// upstreams a ringdns over DoT and DoH trusted through the test CA.
both_drivers!(corefile_encrypted_forwarder_answers_over_dot_and_doh, |driver: &str| {
    let ca = Ca::new();
    let leaf = ca.leaf(&["upstream.test"]);
    let up = upstream_ringdns(driver, &leaf);
    let p = support::pebble::Pebble::start(None);
    let state = support::server::TempDir::new("fw-acme");
    let acme = p.acme_options(&state.path().join("certs"));
    let hosts = "    hosts {\n        192.0.2.10 mydomain.test\n        192.0.2.11 ns1.mydomain.test\n    }\n";
    let corefile = format!(
        "tls://.:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n    forward . tls://127.0.0.1:{dot} {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n\n\
         https://.:{{PORT3}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n    forward . https://127.0.0.1:{doh}/dns-query {{\n        tls {{DIR}}/ca.pem\n        tls_servername upstream.test\n    }}\n}}\n\n\
         mydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{hosts}}}\n",
        dot = up.port2,
        doh = up.port3,
    );
    let fw = Server::start(
        Options::new(driver, &corefile)
            .port(p.dns_port)
            .file("ca.pem", ca.pem()),
    );
    let root = p.issuer_root();
    let dot_addr = SocketAddr::from(([127, 0, 0, 1], fw.port2));
    let doh_addr = SocketAddr::from(([127, 0, 0, 1], fw.port3));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut c = loop {
        let cfg = tls::client_config(&root, &[b"dot"]);
        if let Ok(c) = tls::connect(dot_addr, cfg, ServerName::try_from("ns1.mydomain.test").unwrap()) {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "no certificate from pebble; log:\n{}",
            fw.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    };
    tls::write_frame(
        &mut c,
        &q("www.example.test", Rtype::A).edns(1232).option(12, &[]).wire(),
    );
    let raw = tls::read_frame(&mut c).expect("a DoT reply");
    assert_eq!(a_records(&Reply::parse(&raw)), ["192.0.2.10"]);
    assert_eq!(raw.len() % 468, 0, "padded (RFC 8467): {} octets", raw.len());
    // Again from the cache, padded too.
    tls::write_frame(
        &mut c,
        &q("www.example.test", Rtype::A).edns(1232).option(12, &[]).wire(),
    );
    assert_eq!(tls::read_frame(&mut c).expect("a DoT reply").len() % 468, 0);
    assert!(up.wait_log(" tls ", Duration::from_secs(2)));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut h = loop {
        if let Ok(h) = support::doh::Client::connect(doh_addr, tls::client_config(&root, &[b"h2"]), "ns1.mydomain.test")
        {
            break h;
        }
        assert!(Instant::now() < deadline, "no DoH certificate; log:\n{}", fw.log());
        std::thread::sleep(Duration::from_millis(250));
    };
    let g = h
        .get(&format!(
            "/dns-query?dns={}",
            support::doh::b64(&q("mail.example.test", Rtype::A).id(0).wire())
        ))
        .unwrap();
    assert_eq!(g.status.as_u16(), 200);
    assert_eq!(a_records(&Reply::parse(&g.body)), ["192.0.2.20"]);
    assert!(up.wait_log(" https ", Duration::from_secs(2)));
});

both_drivers!(cache_zones_limit_what_is_cached, |driver: &str| {
    let up = answering([192, 0, 2, 19]);
    let fw = forward_to(driver, &[&up], "", "    cache 300 kept.test\n");
    let c = Client::new(&fw);
    for _ in 0..3 {
        c.ask(&q("www.kept.test", Rtype::A));
        c.ask(&q("www.passed.test", Rtype::A));
    }
    assert_eq!(up.count("www.kept.test"), 1);
    assert_eq!(up.count("www.passed.test"), 3);
});

both_drivers!(a_reload_keeps_the_cache_of_an_unchanged_forward, |driver: &str| {
    let up = answering([192, 0, 2, 20]);
    let block = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . {}\n    cache\n}}\n",
        up.addr
    );
    let fw = forwarder(driver, &block, None);
    let c = Client::new(&fw);
    let reload = |text: String, n: usize| {
        std::fs::write(&fw.corefile, text.replace("{PORT}", &fw.port.to_string())).unwrap();
        fw.signal("HUP");
        let deadline = Instant::now() + Duration::from_secs(10);
        while fw.log().matches("configuration reloaded").count() < n {
            assert!(Instant::now() < deadline, "no reload: {}", fw.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    c.ask(&q("www.keep.test", Rtype::A));
    // Another block added: the forward is the same, its cache stays warm.
    reload(
        format!(
            "{block}other.test:{{PORT}} {{\n    bind 127.0.0.1\n    hosts {{\n        192.0.2.99 a.other.test\n    }}\n}}\n"
        ),
        1,
    );
    c.ask(&q("www.keep.test", Rtype::A));
    assert_eq!(up.count("www.keep.test"), 1);
    // The forward changed: a new plan, a cold cache.
    reload(block.replace("    cache\n", "    cache 60\n"), 2);
    c.ask(&q("www.keep.test", Rtype::A));
    assert_eq!(up.count("www.keep.test"), 2);
});

// Issue 11 B.4 (RFC 1035 §4.1.1): a forwarded reply says recursion is available here, RA=1,
// whatever the upstream set, from the upstream and from the cache (authoritative answers
// keep RA=0: tests/scenarios.rs, header_bits_in_queries).
both_drivers!(forwarded_replies_say_recursion_is_available, |driver: &str| {
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        let mut r = reply(query, 0, &[Rec(&n, 1, 300, a([192, 0, 2, 9]))], &[], &[]);
        r[3] &= !0x80;
        vec![Act::Send(r)]
    });
    let fw = forward_to(driver, &[&up], "", "    cache\n");
    let c = Client::new(&fw);
    for round in ["upstream", "cache"] {
        let r = c.ask(&q("ra.test", Rtype::A));
        assert_eq!(a_records(&r), vec!["192.0.2.9"]);
        assert!(r.msg.header().ra(), "{round}: RA set");
    }
    assert_eq!(up.count("ra.test"), 1, "the second answer came from the cache");
});

// Issue 11 B.9: `forward .` in a block below the root (the dn42 and DoH-front Corefiles)
// forwards every query that reaches the block; other names still find no block.
both_drivers!(forward_root_inside_a_block_below_the_root, |driver: &str| {
    let up = answering([192, 0, 2, 42]);
    let corefile = format!(
        "dn42:{{PORT}} 20.172.in-addr.arpa:{{PORT}} {{\n    bind 127.0.0.1\n    forward . {}\n}}\n",
        up.addr
    );
    let fw = forwarder(driver, &corefile, None);
    let r = fw.udp(&q("www.wyf.dn42", Rtype::A));
    assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.42".to_string()]));
    assert_eq!(fw.udp(&q("www.example.org", Rtype::A)).rcode(), 5, "no block for it");
    assert_eq!(up.count("www.example.org"), 0);
});

/// unbound as a recursive resolver on 127.0.0.1:`port`, resolving example.test through the
/// authoritative server at `auth` (RD=0 queries are refused, as its `allow` access does).
fn unbound_recursive(port: u16, auth: SocketAddr) -> Unbound {
    let dir = support::server::TempDir::new("unbound-rec");
    let conf = format!(
        "server:\n  interface: 127.0.0.1@{port}\n  do-daemonize: no\n  username: \"\"\n  chroot: \"\"\n  directory: \"{dir}\"\n  \
         pidfile: \"\"\n  use-syslog: no\n  logfile: \"\"\n  do-ip6: no\n  access-control: 127.0.0.0/8 allow\n  \
         do-not-query-localhost: no\n  module-config: \"iterator\"\n  local-zone: \"test.\" nodefault\n\
         forward-zone:\n  name: \"example.test.\"\n  forward-addr: {ip}@{p}\n",
        dir = dir.path().display(),
        ip = auth.ip(),
        p = auth.port(),
    );
    let child = spawn_unbound(&dir, &conf);
    // Ready once it answers.
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while udp_to(addr, &q("ready.invalid", Rtype::A).wire(), Duration::from_millis(200)).is_none() {
        assert!(Instant::now() < deadline, "unbound did not start");
    }
    Unbound { child, _dir: dir }
}

// Issue 11 B.3 (RFC 1034 §4.3.1): one client's RD=0 must not change what others get. A
// recursive upstream (unbound) refuses RD=0; ringdns used to cache that as SERVFAIL under a
// key without RD, and every client then got SERVFAIL (EDE 13) for the name. RD=0 is now
// relayed to the upstream for that client alone, never cached or coalesced, its REFUSED
// relayed; and never answered from the cache (no snooping on what others asked).
both_drivers!(
    rd0_queries_are_relayed_and_leave_other_clients_intact,
    |driver: &str| {
        let auth = Server::start(
            Options::new(
                driver,
                "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n",
            )
            .file("zone", example_zone()),
        );
        let port = free_port();
        let _u = unbound_recursive(port, auth.addr);
        let corefile = format!(".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{port}\n    cache\n}}\n");
        let fw = forwarder(driver, &corefile, None);
        let norec = |name: &str| {
            let mut wire = q(name, Rtype::A).edns(1232).wire();
            wire[2] &= !0x01;
            Reply::parse(&udp_to(fw.addr, &wire, Duration::from_secs(4)).expect("a reply to RD=0"))
        };
        let r = norec("www.example.test");
        assert_eq!(r.rcode(), 5, "the upstream's REFUSED, relayed");
        assert!(!r.msg.header().rd() && r.msg.header().ra());
        // Another client, RD=1: the real answer, not a cached failure.
        let r = fw.udp(&q("www.example.test", Rtype::A).edns(1232));
        assert_eq!((r.rcode(), a_records(&r)), (0, vec!["192.0.2.10".to_string()]));
        assert!(ede_codes(&r).is_empty(), "{:?}", ede_codes(&r));
        // RD=0 for a name now in the cache: still relayed (the upstream refuses it), never
        // answered from what other clients asked.
        assert_eq!(norec("www.example.test").rcode(), 5);
        assert_eq!(fw.udp(&q("www.example.test", Rtype::A)).rcode(), 0);
        // The same over TCP.
        let mut wire = q("mail.example.test", Rtype::A).wire();
        wire[2] &= !0x01;
        let mut c = fw.connect();
        write_frame(&mut c, &wire);
        assert_eq!(Reply::parse(&read_frame(&mut c).unwrap()).rcode(), 5);
        assert_eq!(
            a_records(&fw.tcp(&q("mail.example.test", Rtype::A))),
            vec!["192.0.2.20"]
        );
    }
);

// Issue 11 B.3, the other request bits: a client's EDNS options never reach the upstream (an
// ECS would tailor an answer that the cache then gives everyone); CD and DO keep answers
// apart; the payload size only changes truncation.
both_drivers!(only_answer_equal_queries_share_a_cache_entry, |driver: &str| {
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        // 192.0.2.1 for CD=0, 192.0.2.2 for CD=1.
        let last = 1 + u8::from(query[3] & 0x10 != 0);
        vec![Act::Send(reply(
            query,
            0,
            &[Rec(&n, 1, 300, a([192, 0, 2, last]))],
            &[],
            &[],
        ))]
    });
    let fw = forward_to(driver, &[&up], "", "    cache\n");
    let c = Client::new(&fw);
    let ecs = |net: [u8; 3]| {
        q("e.test", Rtype::A)
            .edns(1232)
            .option(8, &[0, 1, 24, 0, net[0], net[1], net[2]])
    };
    assert_eq!(a_records(&c.ask(&ecs([192, 0, 2]))), vec!["192.0.2.1"]);
    assert_eq!(a_records(&c.ask(&ecs([198, 51, 100]))), vec!["192.0.2.1"]);
    assert_eq!(up.count("e.test"), 1, "one entry: the upstream never saw a subnet");
    for s in up.seen_for("e.test") {
        let r = Reply::parse(&s.wire);
        let (_, _, _, options) = r.opt().expect("our own OPT upstream");
        assert!(options.is_empty(), "no client option upstream: {options:?}");
    }
    let cd = |name: &str| q(name, Rtype::A).edns(1232).header_bits(0, 0x10);
    assert_eq!(
        a_records(&c.ask(&cd("e.test"))),
        vec!["192.0.2.2"],
        "CD=1 is its own entry"
    );
    assert_eq!(
        a_records(&c.ask(&q("e.test", Rtype::A).edns(512))),
        vec!["192.0.2.1"],
        "the payload size is not"
    );
    assert_eq!(up.count("e.test"), 2);
});

// Issue 11 B.1: through the forwarder, a DNAME answer from a signed zone validates as it does
// from the authoritative server itself (delv, with the zone's key as its trust anchor): the
// DNAME and its RRSIG are kept, not scrubbed.
both_drivers!(a_signed_dname_answer_validates_through_the_forwarder, |driver: &str| {
    let auth = Server::start(
        Options::new(
            driver,
            "dname.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n",
        )
        .file(
            "zone",
            std::fs::read_to_string(support::data("dname.test.signed")).unwrap(),
        ),
    );
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n    forward . {}\n    cache\n}}\n",
        auth.addr
    );
    let fw = forwarder(driver, &corefile, None);
    let delv = |port: u16| {
        let out = std::process::Command::new("delv")
            .args(["@127.0.0.1", "-p", &port.to_string(), "+root=dname.test", "-a"])
            .arg(support::data("dname.test.anchor"))
            .args(["www.old.dname.test", "A"])
            .output()
            .expect("delv (test.sh installs bind9-dnsutils)");
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    for (who, port) in [
        ("the authoritative server", auth.port),
        ("the forwarder", fw.port),
        ("its cache", fw.port),
    ] {
        let text = delv(port);
        assert!(
            text.contains("; fully validated") && text.contains("192.0.2.81"),
            "{who}: {text}"
        );
        assert!(text.contains("RRSIG\tDNAME"), "{who}: {text}");
    }
});

// cancel README: `cancel 1s` gives up on a query after a second. ringdns answers SERVFAIL
// (with an Extended DNS Error) then, where CoreDNS writes nothing; an upstream that takes
// 700 ms is waited for without cancel (one try is 1 s, the budget 2.5 s).
both_drivers!(cancel_shortens_the_wait_for_upstreams, |driver: &str| {
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        vec![
            Act::Sleep(Duration::from_millis(700)),
            Act::Send(reply(query, 0, &[Rec(&n, 1, 300, a([192, 0, 2, 6]))], &[], &[])),
        ]
    });
    let patient = forward_to(driver, &[&up], "", "");
    let r = patient.udp_timeout(&q("slow.test", Rtype::A).edns(1232).wire(), Duration::from_secs(5));
    assert_eq!(Reply::parse(&r.expect("a reply")).answer()[0].data, "192.0.2.6");
    let hasty = forward_to(driver, &[&up], "", "    cancel 300ms\n");
    let r = hasty.udp_timeout(&q("slow2.test", Rtype::A).edns(1232).wire(), Duration::from_secs(5));
    let r = Reply::parse(&r.expect("a reply"));
    assert_eq!(r.rcode(), 2, "SERVFAIL once the cancel timeout passed");
});
