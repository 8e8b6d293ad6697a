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
    let fw = forwarder(driver, &corefile, Some(&ca));
    let started = Instant::now();
    // Wrong name (trusted CA), then the right name from an untrusted CA.
    for port in [fw.port, fw.port2] {
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
    assert!(started.elapsed() < Duration::from_secs(7));
    // Never a plaintext fallback: the upstreams saw no query at all.
    std::thread::sleep(Duration::from_millis(200));
    assert!(!up.log().contains("ringdns::query"), "{}", up.log());
    assert!(!up2.log().contains("ringdns::query"), "{}", up2.log());
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
    let conf_path = dir.write("unbound.conf", &conf);
    let child = std::process::Command::new("/usr/sbin/unbound")
        .args(["-d", "-c"])
        .arg(&conf_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("unbound.log")).unwrap())
        .spawn()
        .expect("unbound is installed (test.sh installs it)");
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
