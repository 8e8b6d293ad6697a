//! Black-box: DNS over TLS (RFC 7858) with `tls CERT KEY`, under both drivers, and the DoT
//! lines of ROBUSTNESS.md.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use rustls::pki_types::ServerName;
use support::server::{Options, Server, closed_within, example_zone};
use support::tls::{self, Ca, Leaf};
use support::{Reply, q};

const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\ntls://example.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/dns.pem {DIR}/dns.key\n    file {DIR}/zone\n}\ntls://other.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/other.pem {DIR}/other.key\n    hosts {DIR}/none {\n        192.0.2.5 a.other.test\n    }\n}\n";

struct Fixture {
    s: Server,
    ca: Ca,
    dns: Leaf,
    other: Leaf,
}

fn fixture(driver: &str) -> Fixture {
    let ca = Ca::new();
    let dns = ca.leaf(&["dns.example.test"]);
    let other = ca.leaf(&["other.test"]);
    let s = Server::start(
        Options::new(driver, COREFILE)
            .file("zone", example_zone())
            .file("dns.pem", dns.cert_pem.clone())
            .file("dns.key", dns.key_pem.clone())
            .file("other.pem", other.cert_pem.clone())
            .file("other.key", other.key_pem.clone()),
    );
    Fixture { s, ca, dns, other }
}

impl Fixture {
    fn dot_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.s.port2))
    }

    fn connect(&self, sni: &str) -> tls::Tls {
        let cfg = tls::client_config(&self.ca.der(), &[b"dot"]);
        tls::connect(self.dot_addr(), cfg, ServerName::try_from(sni.to_string()).unwrap()).expect("DoT handshake")
    }

    /// Waits (up to 15 s) until `leaf` is served for dns.example.test.
    fn wait_for_leaf(&self, leaf: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.served_leaf(Some("dns.example.test")) != leaf {
            assert!(
                Instant::now() < deadline,
                "the new certificate was not picked up; log:\n{}",
                self.s.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The leaf served for `sni` (None: no SNI at all).
    fn served_leaf(&self, sni: Option<&str>) -> Vec<u8> {
        let (cfg, rec) = tls::recording_config(&[&rustls::version::TLS13]);
        let name = match sni {
            Some(n) => ServerName::try_from(n.to_string()).unwrap(),
            None => ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()),
        };
        tls::connect(self.dot_addr(), cfg, name).expect("handshake");
        let leaf = rec.leaf.lock().unwrap().clone();
        leaf.expect("a certificate was presented")
    }
}

both_drivers!(answers_over_tls_with_the_right_certificate, |driver| {
    let f = fixture(driver);
    let mut c = f.connect("dns.example.test");
    assert_eq!(c.conn.alpn_protocol(), Some(&b"dot"[..]));
    tls::write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    let r = Reply::parse(&tls::read_frame(&mut c).unwrap());
    assert_eq!((r.rcode(), r.answer()[0].data.as_str()), (0, "192.0.2.10"));
    // Pipelined on the same connection, across both blocks of the listener.
    let mut batch = Vec::new();
    for (id, name) in [
        (1u16, "mail.example.test"),
        (2, "a.other.test"),
        (3, "nope.example.test"),
    ] {
        let w = q(name, Rtype::A).id(id).wire();
        batch.extend_from_slice(&(w.len() as u16).to_be_bytes());
        batch.extend_from_slice(&w);
    }
    c.write_all(&batch).unwrap();
    let mut got: Vec<(u16, u16)> = (0..3)
        .map(|_| {
            let r = Reply::parse(&tls::read_frame(&mut c).unwrap());
            (r.id(), r.rcode())
        })
        .collect();
    got.sort();
    assert_eq!(got, vec![(1, 0), (2, 0), (3, 3)]);
    // A client without ALPN is served too.
    let cfg = tls::client_config(&f.ca.der(), &[]);
    let mut c = tls::connect(f.dot_addr(), cfg, ServerName::try_from("dns.example.test").unwrap()).unwrap();
    tls::write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    assert!(tls::read_frame(&mut c).is_some());
});

both_drivers!(sni_picks_the_certificate_and_defaults_to_the_first, |driver| {
    let f = fixture(driver);
    assert_eq!(f.served_leaf(Some("other.test")), f.other.der);
    assert_eq!(f.served_leaf(Some("dns.example.test")), f.dns.der);
    assert_eq!(
        f.served_leaf(Some("unknown.example")),
        f.dns.der,
        "unknown SNI: the default"
    );
    assert_eq!(f.served_leaf(None), f.dns.der, "no SNI: the default");
});

both_drivers!(no_plaintext_and_no_h2_on_the_dot_port, |driver| {
    let f = fixture(driver);
    // Plain DNS over TCP to the DoT port: a TLS alert (or a close), never a DNS answer.
    let mut c = TcpStream::connect(f.dot_addr()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(6))).unwrap();
    support::server::write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    let t0 = Instant::now();
    let mut buf = [0u8; 64];
    match c.read(&mut buf) {
        Ok(0) | Err(_) => {}
        Ok(n) => assert_eq!(buf[0], 0x15, "a TLS alert record, got {:?}", &buf[..n]),
    }
    assert!(closed_within(&mut c, Duration::from_secs(6)));
    assert!(t0.elapsed() < Duration::from_secs(6));
    // Only h2 offered: no common protocol, the handshake fails with the
    // no_application_protocol alert (RFC 7301 §3.2), as on the DoH port, not a bare EOF.
    let cfg = tls::client_config(&f.ca.der(), &[b"h2"]);
    let err =
        tls::connect(f.dot_addr(), cfg, ServerName::try_from("dns.example.test").unwrap()).expect_err("no handshake");
    assert!(format!("{err:?}").contains("NoApplicationProtocol"), "{err:?}");
});

// Issue 10.7: the server's cipher suite order wins (testssl flags the client's order): a
// client that prefers ChaCha20 gets AES-256-GCM when it offers both, over TLS 1.3 and 1.2.
both_drivers!(server_cipher_order_wins, |driver| {
    let f = fixture(driver);
    for (version, suites) in [
        (
            "-tls1_3",
            "-ciphersuites=TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384",
        ),
        (
            "-tls1_2",
            "-cipher=ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
        ),
    ] {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &f.dot_addr().to_string(),
                "-servername",
                "dns.example.test",
            ])
            .args([version, suites, "-alpn", "dot"])
            .stdin(Stdio::null())
            .output()
            .expect("openssl (test.sh installs it)");
        let text = String::from_utf8_lossy(&out.stdout);
        let chosen = text
            .lines()
            .find(|l| l.contains("Cipher is") || l.trim_start().starts_with("Cipher    :"));
        let chosen = chosen.unwrap_or_else(|| panic!("{version}: no cipher in\n{text}"));
        assert!(
            chosen.contains("AES_256_GCM") || chosen.contains("AES256-GCM"),
            "{version}: {chosen}"
        );
    }
});

both_drivers!(trickled_client_hello_times_out, |driver| {
    let f = fixture(driver);
    let mut c = TcpStream::connect(f.dot_addr()).unwrap();
    let t0 = Instant::now();
    // A record header, then one byte a second.
    c.write_all(&[0x16, 0x03, 0x01, 0x00, 0xc8]).unwrap();
    let mut closed = false;
    for _ in 0..12 {
        std::thread::sleep(Duration::from_secs(1));
        if c.write_all(&[0x01]).is_err() {
            closed = true;
            break;
        }
        c.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
        let mut b = [0u8; 16];
        if matches!(c.read(&mut b), Ok(0)) {
            closed = true;
            break;
        }
    }
    assert!(closed, "the handshake timeout closed the connection");
    assert!(t0.elapsed() <= Duration::from_secs(10), "{:?}", t0.elapsed());
});

/// A TLS ClientHello that offers only `version` (no supported_versions extension).
fn legacy_hello(version: [u8; 2]) -> Vec<u8> {
    let mut body = version.to_vec();
    body.extend_from_slice(&[7u8; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0, 4, 0x00, 0x2f, 0x00, 0x35]); // AES128-SHA, AES256-SHA
    body.extend_from_slice(&[1, 0]); // null compression
    let mut hs = vec![1, 0, (body.len() >> 8) as u8, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01, (hs.len() >> 8) as u8, hs.len() as u8];
    rec.extend_from_slice(&hs);
    rec
}

both_drivers!(old_protocol_versions_are_refused, |driver| {
    let f = fixture(driver);
    for (name, version) in [("SSLv3", [3u8, 0]), ("TLS 1.0", [3, 1]), ("TLS 1.1", [3, 2])] {
        let mut c = TcpStream::connect(f.dot_addr()).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(&legacy_hello(version)).unwrap();
        let mut buf = [0u8; 16];
        match c.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(_) => assert_eq!(buf[0], 0x15, "{name}: an alert, never a ServerHello"),
        }
    }
    // TLS 1.2 itself works.
    let (cfg, _) = tls::recording_config(&[&rustls::version::TLS12]);
    let mut c = tls::connect(f.dot_addr(), cfg, ServerName::try_from("dns.example.test").unwrap()).unwrap();
    tls::write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    assert!(tls::read_frame(&mut c).is_some());
});

both_drivers!(renegotiation_is_refused, |driver| {
    let f = fixture(driver);
    let ca = f.s.dir.write("ca.pem", &f.ca.pem());
    // openssl's interactive "R" asks for a TLS 1.2 renegotiation.
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-no_ign_eof",
            "-servername",
            "dns.example.test",
            "-CAfile",
        ])
        .arg(&ca)
        .arg("-connect")
        .arg(f.dot_addr().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed");
    let mut stdin = child.stdin.take().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let _ = stdin.write_all(b"R\n");
    std::thread::sleep(Duration::from_millis(1000));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Verify return code: 0 (ok)"),
        "the handshake itself worked: {text}"
    );
    assert!(text.contains("RENEGOTIATING"), "{text}");
    assert!(
        text.contains("no renegotiation"),
        "refused with a no_renegotiation alert: {text}"
    );
    // The server still serves.
    let mut c = f.connect("dns.example.test");
    tls::write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    assert!(tls::read_frame(&mut c).is_some());
});

both_drivers!(certificate_files_swapped_without_restart, |driver| {
    let f = fixture(driver);
    let pid = f.s.pid();
    let mut open = f.connect("dns.example.test");
    let renewed = f.ca.leaf(&["dns.example.test"]);
    // The key first, then the chain: in between the pair does not match and is not used.
    std::fs::write(f.s.dir.path().join("dns.key"), &renewed.key_pem).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    std::fs::write(f.s.dir.path().join("dns.pem"), &renewed.cert_pem).unwrap();
    f.wait_for_leaf(&renewed.der);
    // The connection opened before the swap goes on.
    tls::write_frame(&mut open, &q("www.example.test", Rtype::A).wire());
    assert!(tls::read_frame(&mut open).is_some());
    assert_eq!(f.s.pid(), pid);
    assert!(f.s.log().contains("certificate reloaded"));
});

both_drivers!(kdig_over_tls, |driver| {
    let f = fixture(driver);
    let ca = f.s.dir.write("ca.pem", &f.ca.pem());
    let (text, err) = support::kdig_encrypted(
        f.s.port2,
        "+tls",
        &ca,
        "dns.example.test",
        &["www.example.test", "AAAA"],
    );
    assert!(text.contains("2001:db8::10") && text.contains("TLS"), "{text}\n{err}");
});

both_drivers!(padding_over_tls, |driver| {
    let f = fixture(driver);
    let mut c = f.connect("dns.example.test");
    tls::write_frame(
        &mut c,
        &q("www.example.test", Rtype::A).edns(1232).option(12, &[]).wire(),
    );
    let reply = tls::read_frame(&mut c).unwrap();
    assert_eq!(reply.len() % 468, 0, "RFC 8467 block padding: {}", reply.len());
    assert_eq!(Reply::parse(&reply).answer().len(), 1);
});

// Issue 10.5: a renewed pair of the same sizes copied in with the old timestamps (`cp -p`
// of files made at the same moment) used to go unnoticed: files are compared by content.
both_drivers!(certificate_swap_seen_with_same_size_and_timestamps, |driver| {
    let f = fixture(driver);
    let (pem, key) = (f.s.dir.path().join("dns.pem"), f.s.dir.path().join("dns.key"));
    let stamp = |p: &std::path::Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.len(), m.modified().unwrap())
    };
    let before = (stamp(&pem), stamp(&key));
    // Same names, same key type: the same sizes (retry the rare draw that differs).
    let renewed = (0..20)
        .map(|_| f.ca.leaf(&["dns.example.test"]))
        .find(|l| l.cert_pem.len() as u64 == before.0.0 && l.key_pem.len() as u64 == before.1.0)
        .expect("a leaf of the same size");
    let times = |p: &std::path::Path, t: std::time::SystemTime| {
        let file = std::fs::File::options().write(true).open(p).unwrap();
        file.set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    };
    std::fs::write(&key, &renewed.key_pem).unwrap();
    times(&key, before.1.1);
    std::fs::write(&pem, &renewed.cert_pem).unwrap();
    times(&pem, before.0.1);
    assert_eq!((stamp(&pem), stamp(&key)), before, "size and mtime as before");
    f.wait_for_leaf(&renewed.der);
});
