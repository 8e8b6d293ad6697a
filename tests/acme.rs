//! Black-box ACME: ringdns gets its certificates from a real ACME CA (pebble, started per
//! test on its own ports) by answering DNS-01 itself, serves DoT and DoH with them, reuses
//! stored ones, renews without restarting, and shares storage between instances.

mod support;

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use rustls::pki_types::{CertificateDer, ServerName};
use support::doh::{Client, b64};
use support::pebble::Pebble;
use support::server::{Options, Server, TempDir};
use support::tls;
use support::{Reply, q};

const HOSTS: &str = "    hosts {\n        192.0.2.10 mydomain.test\n        192.0.2.11 ns1.mydomain.test\n    }\n";

/// The first example of COREFILE.md on loopback: DoT for `*.mydomain.test`, DoH for
/// `ns1.mydomain.test`, plain DNS for the zone on pebble's DNS port.
fn coredns_example(p: &Pebble, certpath: &Path) -> String {
    let acme = p.acme_options(certpath);
    format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain *.mydomain.test\n{acme}    }}\n{HOSTS}}}\n\nhttps://mydomain.test:{{PORT3}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}}}\n\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n"
    )
}

fn start(driver: &str, p: &Pebble, corefile: &str) -> Server {
    Server::start(Options::new(driver, corefile).port(p.dns_port))
}

/// Completes a verified handshake (trusting only `root`) and returns the served chain.
fn handshake(addr: SocketAddr, root: &CertificateDer<'static>, sni: &str, alpn: &[u8]) -> Option<Vec<Vec<u8>>> {
    let cfg = tls::client_config(root, &[alpn]);
    let c = tls::connect(addr, cfg, ServerName::try_from(sni.to_string()).unwrap()).ok()?;
    Some(c.conn.peer_certificates()?.iter().map(|c| c.to_vec()).collect())
}

/// Waits until the listener serves a certificate that verifies.
fn wait_cert(
    addr: SocketAddr,
    root: &CertificateDer<'static>,
    sni: &str,
    alpn: &[u8],
    within: Duration,
    s: &Server,
) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(chain) = handshake(addr, root, sni, alpn) {
            return chain;
        }
        assert!(
            Instant::now() < deadline,
            "no valid certificate on {addr} for {sni}; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn dot(s: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], s.port2))
}

fn doh(s: &Server) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], s.port3))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn unit_dir(certpath: &Path, p: &Pebble, name: &str) -> PathBuf {
    certpath.join(format!("127.0.0.1_{}_dir", p.acme_port)).join(name)
}

both_drivers!(coredns_example_gets_serves_and_reuses_certificates, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-example");
    let certpath = state.path().join("certs");
    let corefile = coredns_example(&p, &certpath);
    let s = start(driver, &p, &corefile);
    let root = p.issuer_root();
    // Plain DNS answers at once, before any certificate exists.
    assert_eq!(s.udp(&q("ns1.mydomain.test", Rtype::A)).answer()[0].data, "192.0.2.11");
    // DoT: a wildcard certificate, valid for x.mydomain.test under pebble's root.
    let chain = wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(60), &s);
    let intermediate = std::fs::read_to_string(p.env.get("ACME_ISSUER_INTERMEDIATE_PEM").unwrap()).unwrap();
    let intermediate =
        <CertificateDer as rustls::pki_types::pem::PemObject>::from_pem_slice(intermediate.as_bytes()).unwrap();
    assert_eq!(chain.len(), 2, "leaf and the intermediate the CA sent");
    assert_eq!(chain[1], intermediate.to_vec());
    let mut c = tls::connect(
        dot(&s),
        tls::client_config(&root, &[b"dot"]),
        ServerName::try_from("x.mydomain.test").unwrap(),
    )
    .unwrap();
    tls::write_frame(&mut c, &q("ns1.mydomain.test", Rtype::A).wire());
    assert_eq!(
        Reply::parse(&tls::read_frame(&mut c).unwrap()).answer()[0].data,
        "192.0.2.11"
    );
    // DoH: ns1.mydomain.test.
    wait_cert(doh(&s), &root, "ns1.mydomain.test", b"h2", Duration::from_secs(60), &s);
    let mut h = Client::connect(doh(&s), tls::client_config(&root, &[b"h2"]), "ns1.mydomain.test").unwrap();
    let g = h
        .get(&format!(
            "/dns-query?dns={}",
            b64(&q("mydomain.test", Rtype::A).id(0).wire())
        ))
        .unwrap();
    assert_eq!(
        (g.status.as_u16(), Reply::parse(&g.body).answer()[0].data.as_str()),
        (200, "192.0.2.10")
    );
    // Storage: private folders and keys.
    let unit = unit_dir(&certpath, &p, "wildcard.mydomain.test");
    assert_eq!(mode(&certpath), 0o700);
    assert_eq!(mode(&unit), 0o700);
    assert_eq!(mode(&unit.join("v1/key.pem")), 0o600);
    assert_eq!(
        mode(&certpath.join(format!("127.0.0.1_{}_dir/account.json", p.acme_port))),
        0o600
    );
    let first_log = s.log();
    assert_eq!(
        first_log.matches("ACME account created").count(),
        1,
        "one account per CA: {first_log}"
    );
    let pid = s.pid();
    let (st, _) = s.stop();
    assert!(st.success());
    // A restart uses the stored certificates at once, with no new order.
    let s = start(driver, &p, &corefile);
    assert_ne!(s.pid(), pid);
    let again = handshake(dot(&s), &root, "x.mydomain.test", b"dot").expect("served right away");
    assert_eq!(again[0], chain[0], "the same certificate");
    assert!(handshake(doh(&s), &root, "ns1.mydomain.test", b"h2").is_some());
    let log = s.log();
    assert_eq!(log.matches("using the stored certificate").count(), 2, "{log}");
    assert!(!log.contains("ordering a certificate"), "{log}");
});

/// The serial of the leaf a new handshake gets.
fn leaf(addr: SocketAddr, root: &CertificateDer<'static>, sni: &str, alpn: &[u8]) -> Option<Vec<u8>> {
    handshake(addr, root, sni, alpn).map(|mut c| c.remove(0))
}

both_drivers!(renewal_by_hot_swap_under_load, |driver| {
    let p = Pebble::start(Some(60));
    let state = TempDir::new("acme-renew");
    let certpath = state.path().join("certs");
    let s = start(driver, &p, &coredns_example(&p, &certpath));
    let root = p.issuer_root();
    let pid = s.pid();
    wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(60), &s);
    wait_cert(doh(&s), &root, "ns1.mydomain.test", b"h2", Duration::from_secs(60), &s);
    let mut persistent = tls::connect(
        dot(&s),
        tls::client_config(&root, &[b"dot"]),
        ServerName::try_from("x.mydomain.test").unwrap(),
    )
    .unwrap();
    let mut seen_dot: Vec<Vec<u8>> = Vec::new();
    let mut seen_doh: Vec<Vec<u8>> = Vec::new();
    let mut queries = 0;
    let deadline = Instant::now() + Duration::from_secs(170);
    while (seen_dot.len() < 3 || seen_doh.len() < 3) && Instant::now() < deadline {
        // A query on the connection opened before any renewal, and new handshakes.
        tls::write_frame(&mut persistent, &q("ns1.mydomain.test", Rtype::A).id(queries).wire());
        let r = Reply::parse(&tls::read_frame(&mut persistent).expect("the old DoT connection keeps answering"));
        assert_eq!(r.answer().len(), 1);
        let l = leaf(dot(&s), &root, "x.mydomain.test", b"dot").expect("every DoT handshake verifies");
        if !seen_dot.contains(&l) {
            seen_dot.push(l);
        }
        let mut h = Client::connect(doh(&s), tls::client_config(&root, &[b"h2"]), "ns1.mydomain.test")
            .expect("every DoH handshake verifies");
        let g = h
            .get(&format!(
                "/dns-query?dns={}",
                b64(&q("mydomain.test", Rtype::A).id(0).wire())
            ))
            .expect("DoH answers");
        assert_eq!(g.status.as_u16(), 200);
        let l = leaf(doh(&s), &root, "ns1.mydomain.test", b"h2").unwrap();
        if !seen_doh.contains(&l) {
            seen_doh.push(l);
        }
        queries += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        seen_dot.len() >= 3 && seen_doh.len() >= 3,
        "two renewals each: DoT {} DoH {}; log:\n{}",
        seen_dot.len(),
        seen_doh.len(),
        s.log()
    );
    assert_eq!(s.pid(), pid, "no restart");
    assert!(queries > 100);
});

both_drivers!(ca_unreachable_at_start, |driver| {
    let mut p = Pebble::prepare(None);
    // Create pebble's HTTPS CA, then stop it: the CA is down when ringdns starts.
    p.run();
    p.halt();
    let state = TempDir::new("acme-down");
    let certpath = state.path().join("certs");
    let s = start(driver, &p, &coredns_example(&p, &certpath));
    assert_eq!(
        s.udp(&q("ns1.mydomain.test", Rtype::A)).answer()[0].data,
        "192.0.2.11",
        "plain DNS answers at once"
    );
    std::thread::sleep(Duration::from_secs(2));
    // The TLS ports accept connections but never complete a handshake, and never answer plaintext.
    let cfg = tls::recording_config(&[&rustls::version::TLS13]).0;
    assert!(tls::connect(dot(&s), cfg.clone(), ServerName::try_from("x.mydomain.test").unwrap()).is_err());
    assert!(tls::connect(doh(&s), cfg, ServerName::try_from("ns1.mydomain.test").unwrap()).is_err());
    assert!(s.log().contains("certificate order failed"), "{}", s.log());
    // The CA comes back; the next attempt (one minute after the first) gets the certificates.
    p.run();
    let root = p.issuer_root();
    wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(100), &s);
    wait_cert(doh(&s), &root, "ns1.mydomain.test", b"h2", Duration::from_secs(30), &s);
});

both_drivers!(two_instances_share_one_certpath, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-shared");
    let certpath = state.path().join("certs");
    let acme = p.acme_options(&certpath);
    // Instance A answers pebble's DNS queries; B serves the zone on another port. Either may
    // win the lock and order: the other serves the posted challenge.
    let corefile = format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}}}\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n"
    );
    let mut a = Server::spawn(Options::new(driver, &corefile).port(p.dns_port));
    let mut b = Server::spawn(Options::new(driver, &corefile));
    a.wait_ready();
    b.wait_ready();
    let root = p.issuer_root();
    let la = wait_cert(dot(&a), &root, "ns1.mydomain.test", b"dot", Duration::from_secs(90), &a);
    let lb = wait_cert(dot(&b), &root, "ns1.mydomain.test", b"dot", Duration::from_secs(90), &b);
    assert_eq!(la[0], lb[0], "both serve the one certificate");
    let logs = format!("{}{}", a.log(), b.log());
    assert_eq!(
        logs.matches("certificate obtained").count(),
        1,
        "exactly one order:\n{logs}"
    );
    assert_eq!(p.log().matches("Issued certificate serial").count(), 1, "{}", p.log());
});

both_drivers!(process_killed_while_storing_leaves_a_matching_pair, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-crash");
    let certpath = state.path().join("certs");
    let corefile = coredns_example(&p, &certpath);
    let mut s = Server::spawn(
        Options::new(driver, &corefile)
            .port(p.dns_port)
            .env("RINGDNS_FAILPOINT", "storage-after-key"),
    );
    let st =
        support::server::wait_exit(&mut s.child, Duration::from_secs(60)).expect("the failpoint stops the process");
    assert!(!st.success());
    // The new key was written, the rest was not: nothing is current, no mixed pair.
    let ca_dir = certpath.join(format!("127.0.0.1_{}_dir", p.acme_port));
    let unit = std::fs::read_dir(&ca_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|d| d.join("v1").exists())
        .expect("the crashed certificate's folder");
    assert!(!unit.join("current").exists(), "{}", unit.display());
    assert!(unit.join("v1/key.pem").exists() && !unit.join("v1/chain.pem").exists());
    // A restart orders again and serves a certificate whose key matches.
    // The dead process's lock is taken over at once (same host, process gone).
    let s = start(driver, &p, &corefile);
    let root = p.issuer_root();
    wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(60), &s);
    wait_cert(doh(&s), &root, "ns1.mydomain.test", b"h2", Duration::from_secs(60), &s);
    let current = std::fs::read_to_string(unit.join("current")).unwrap();
    assert_eq!(current.trim(), "v2");
    assert!(s.log().contains("taking over a stale certificate lock"), "{}", s.log());
});

both_drivers!(bad_nonces_are_retried, |driver| {
    let p = Pebble::prepare(None).with_env("PEBBLE_WFE_NONCEREJECT", "40");
    let mut p = p;
    p.run();
    let state = TempDir::new("acme-nonce");
    let s = start(driver, &p, &coredns_example(&p, &state.path().join("certs")));
    let root = p.issuer_root();
    wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(120), &s);
    assert!(
        p.log().contains("badNonce") || p.log().contains("bad nonce") || p.log().to_lowercase().contains("nonce"),
        "pebble rejected some nonces"
    );
});

both_drivers!(corrupt_account_is_replaced_once, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-account");
    let certpath = state.path().join("certs");
    let ca_dir = certpath.join(format!("127.0.0.1_{}_dir", p.acme_port));
    std::fs::create_dir_all(&ca_dir).unwrap();
    std::fs::write(ca_dir.join("account.json"), "{ this is not json").unwrap();
    let s = start(driver, &p, &coredns_example(&p, &certpath));
    let root = p.issuer_root();
    wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(60), &s);
    wait_cert(doh(&s), &root, "ns1.mydomain.test", b"h2", Duration::from_secs(60), &s);
    let log = s.log();
    assert!(log.contains("stored ACME account is corrupt"), "{log}");
    assert_eq!(
        log.matches("ACME account created").count(),
        1,
        "one new account, no loop: {log}"
    );
});

both_drivers!(own_responder_without_a_dns_block, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-responder");
    let acme = p.acme_options(&state.path().join("certs"));
    // No dns:// block: ringdns answers the challenge on the tls acme port itself. The readiness
    // probe needs a UDP answer on {PORT}: that is the responder (REFUSED for other names).
    let corefile = format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}}}\n"
    );
    let s = start(driver, &p, &corefile);
    let root = p.issuer_root();
    wait_cert(dot(&s), &root, "ns1.mydomain.test", b"dot", Duration::from_secs(60), &s);
    assert_eq!(
        s.udp(&q("ns1.mydomain.test", Rtype::A)).rcode(),
        5,
        "the responder serves challenges only"
    );
    assert!(
        s.log().contains(&format!("dns://127.0.0.1:{}", p.dns_port)),
        "{}",
        s.log()
    );
});

fn stub_corefile(stub: &support::acme_stub::Stub, p: &Pebble, certpath: &Path) -> String {
    format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n        ca {}\n        cacert {}\n        certpath {}\n        port {}\n    }}\n{HOSTS}}}\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n",
        stub.directory(),
        stub.bundle.display(),
        certpath.display(),
        p.dns_port
    )
}

both_drivers!(ari_window_drives_an_early_renewal, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-ari");
    let stub = support::acme_stub::Stub::start(
        support::acme_stub::Mode::Ari,
        &p.directory(),
        &p.https_ca(),
        state.path(),
    );
    let s = start(driver, &p, &stub_corefile(&stub, &p, &state.path().join("certs")));
    let root = p.issuer_root();
    let first = wait_cert(dot(&s), &root, "ns1.mydomain.test", b"dot", Duration::from_secs(60), &s).remove(0);
    // The CA's ARI window for the first (90-day) certificate has begun: it is renewed at once,
    // long before a third of its lifetime is left; the second gets a window in two months.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let l = leaf(dot(&s), &root, "ns1.mydomain.test", b"dot").unwrap();
        if l != first {
            break;
        }
        assert!(Instant::now() < deadline, "no ARI renewal; log:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    let log = s.log();
    assert!(log.contains("ARI suggests renewing"), "{log}");
    assert_eq!(
        log.matches("certificate obtained").count(),
        2,
        "one renewal, no loop: {log}"
    );
    assert!(
        stub.ari_ids.lock().unwrap().len() >= 2,
        "ARI was asked about both certificates"
    );
});

both_drivers!(rate_limit_retry_after_is_honoured, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-429");
    let stub = support::acme_stub::Stub::start(
        support::acme_stub::Mode::RateLimited,
        &p.directory(),
        &p.https_ca(),
        state.path(),
    );
    let s = start(driver, &p, &stub_corefile(&stub, &p, &state.path().join("certs")));
    let deadline = Instant::now() + Duration::from_secs(20);
    while stub.new_orders.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline, "no order attempt; log:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    // Retry-After: 3600 outweighs the 1-minute back-off: nothing more for longer than that.
    std::thread::sleep(Duration::from_secs(70));
    assert_eq!(
        stub.new_orders.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "log:\n{}",
        s.log()
    );
    let log = s.log();
    assert!(log.contains("retry_in_s=359"), "{log}");
    // Plain DNS is unaffected.
    assert_eq!(s.udp(&q("ns1.mydomain.test", Rtype::A)).answer()[0].data, "192.0.2.11");
});

/// Writes a certificate for `names` that expired yesterday into storage as version 1.
fn store_expired(unit: &Path, names: &[&str]) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(unit.join("v1")).unwrap();
    std::fs::write(unit.join("v1/chain.pem"), cert.pem()).unwrap();
    std::fs::write(unit.join("v1/key.pem"), key.serialize_pem()).unwrap();
    std::fs::write(unit.join("current"), "v1\n").unwrap();
}

both_drivers!(expired_certificate_and_ca_down_at_start, |driver| {
    let mut p = Pebble::prepare(None);
    p.run();
    p.halt();
    let state = TempDir::new("acme-expired");
    let certpath = state.path().join("certs");
    let acme = p.acme_options(&certpath);
    let corefile = format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}}}\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n"
    );
    store_expired(&unit_dir(&certpath, &p, "ns1.mydomain.test"), &["ns1.mydomain.test"]);
    let s = start(driver, &p, &corefile);
    assert_eq!(s.udp(&q("ns1.mydomain.test", Rtype::A)).answer()[0].data, "192.0.2.11");
    // The expired certificate is not served: no handshake completes, none is answered in plaintext.
    let cfg = tls::recording_config(&[&rustls::version::TLS13]).0;
    assert!(tls::connect(dot(&s), cfg, ServerName::try_from("ns1.mydomain.test").unwrap()).is_err());
    assert!(s.log().contains("certificate has expired"), "{}", s.log());
    p.run();
    wait_cert(
        dot(&s),
        &p.issuer_root(),
        "ns1.mydomain.test",
        b"dot",
        Duration::from_secs(100),
        &s,
    );
});

both_drivers!(ca_down_at_renewal_keeps_the_old_certificate, |driver| {
    let p = Pebble::start(Some(60));
    let state = TempDir::new("acme-down-renew");
    let s = start(driver, &p, &coredns_example(&p, &state.path().join("certs")));
    let root = p.issuer_root();
    let first = wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(60), &s).remove(0);
    p.halt();
    // The renewal point (a third of 60 s before expiry) passes with the CA down.
    let deadline = Instant::now() + Duration::from_secs(50);
    while !s.log().contains("certificate order failed") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    // Still served. A handshake lost to a loaded machine is tried again (three times, a
    // second apart); the error and the log say what happened when none works.
    let mut last = Err("not tried".to_string());
    for _ in 0..3 {
        let cfg = tls::client_config(&root, &[b"dot"]);
        last = tls::connect(dot(&s), cfg, ServerName::try_from("x.mydomain.test").unwrap())
            .map_err(|e| e.to_string())
            .and_then(|c| {
                c.conn
                    .peer_certificates()
                    .map(|c| c[0].to_vec())
                    .ok_or("no certificate".into())
            });
        if last.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    match last {
        Ok(l) => assert_eq!(l, first, "the old certificate is still served"),
        Err(e) => panic!("no DoT handshake verifies after the failed renewal: {e}\n{}", s.log()),
    }
});

both_drivers!(invalid_challenge_backs_off, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-invalid");
    let acme = p.acme_options(&state.path().join("certs"));
    // The zone is served on another port than the one the CA asks: validation fails.
    let corefile = format!("tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}}}\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n").replace(&format!("port {}", p.dns_port), "port 1");
    let s = Server::start(Options::new(driver, &corefile));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.log().contains("certificate order failed") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    let log = s.log();
    assert!(
        log.contains("unauthorized") || log.contains("invalid"),
        "the CA refused the challenge: {log}"
    );
    assert!(
        log.contains("retry_in_s=59") || log.contains("retry_in_s=60"),
        "one minute first: {log}"
    );
    std::thread::sleep(Duration::from_secs(30));
    assert_eq!(
        s.log().matches("ordering a certificate").count(),
        1,
        "no new order before the back-off: {}",
        s.log()
    );
});

both_drivers!(disk_full_while_storing_keeps_the_old_pair, |driver| {
    let p = Pebble::start(Some(60));
    let state = TempDir::new("acme-enospc");
    let certpath = state.path().join("certs");
    let corefile = coredns_example(&p, &certpath);
    let s = start(driver, &p, &corefile);
    let root = p.issuer_root();
    let first = wait_cert(dot(&s), &root, "x.mydomain.test", b"dot", Duration::from_secs(60), &s).remove(0);
    drop(s);
    // The next run cannot store what it orders: the renewal fails, the old pair stays current.
    let s = Server::start(
        Options::new(driver, &corefile)
            .port(p.dns_port)
            .env("RINGDNS_FAILPOINT", "storage-enospc"),
    );
    let deadline = Instant::now() + Duration::from_secs(50);
    while !s.log().contains("os error 28") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(500));
    }
    let unit = unit_dir(&certpath, &p, "wildcard.mydomain.test");
    assert_eq!(std::fs::read_to_string(unit.join("current")).unwrap().trim(), "v1");
    let chain = std::fs::read_to_string(unit.join("v1/chain.pem")).unwrap();
    let key = std::fs::read_to_string(unit.join("v1/key.pem")).unwrap();
    ringdns::tls::certs::pair_from_pem(chain.as_bytes(), key.as_bytes(), "chain", "key").expect("a matching pair");
    assert_eq!(leaf(dot(&s), &root, "x.mydomain.test", b"dot"), Some(first));
});

both_drivers!(coredns_syntax_key_types_and_storage_pickup, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-syntax");
    let storage = state.path().join("certs");
    // CoreDNS' own syntax (acme NAMES, ca_root, storage) with RSA keys, and ECDSA P-384.
    let corefile = format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls {{\n        acme ns1.mydomain.test\n        email hostmaster@mydomain.test\n        ca {ca}\n        ca_root {root}\n        storage {st}\n        port {dns}\n        key_type rsa2048\n        checkinterval 1\n    }}\n{HOSTS}}}\nhttps://mydomain.test:{{PORT3}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain mydomain.test\n        ca {ca}\n        cacert {root}\n        certpath {st}\n        key_type ecdsa384\n    }}\n{HOSTS}}}\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n",
        ca = p.directory(),
        root = p.https_ca().display(),
        st = storage.display(),
        dns = p.dns_port
    );
    let s = start(driver, &p, &corefile);
    let issuer = p.issuer_root();
    let rsa = wait_cert(
        dot(&s),
        &issuer,
        "ns1.mydomain.test",
        b"dot",
        Duration::from_secs(60),
        &s,
    )
    .remove(0);
    let ec = wait_cert(doh(&s), &issuer, "mydomain.test", b"h2", Duration::from_secs(60), &s).remove(0);
    let alg = |der: &[u8]| {
        let (_, c) = x509_parser::parse_x509_certificate(der).unwrap();
        c.public_key().algorithm.algorithm.to_id_string()
    };
    assert_eq!(alg(&rsa), "1.2.840.113549.1.1.1", "rsaEncryption");
    assert_eq!(alg(&ec), "1.2.840.10045.2.1", "id-ecPublicKey");
    let (_, c) = x509_parser::parse_x509_certificate(&ec).unwrap();
    assert!(c.public_key().parsed().is_ok_and(|k| k.key_size() == 384), "P-384");
    // CAA for a certified name is answered NOERROR.
    assert_eq!(s.udp(&q("ns1.mydomain.test", Rtype::CAA)).rcode(), 0);
    // A newer certificate appearing in storage (another instance renewed) is picked up within
    // checkinterval (1 minute here).
    let unit = unit_dir(&storage, &p, "ns1.mydomain.test");
    let copy = |f: &str| std::fs::copy(unit.join("v1").join(f), unit.join("v2").join(f)).unwrap();
    std::fs::create_dir_all(unit.join("v2")).unwrap();
    copy("chain.pem");
    copy("key.pem");
    std::fs::write(unit.join("current"), "v2\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(75);
    while !s.log().contains("version=2") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(500));
    }
});

both_drivers!(clock_two_days_ahead_warns_without_thrash, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-skew");
    let acme = p.acme_options(&state.path().join("certs"));
    let corefile = format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}}}\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n"
    );
    // libfaketime moves the wall clock two days ahead (timers stay on the real monotonic clock).
    let lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
    assert!(Path::new(lib).exists(), "faketime is installed by test.sh");
    let s = Server::start(
        Options::new(driver, &corefile)
            .port(p.dns_port)
            .env("LD_PRELOAD", lib)
            .env("FAKETIME", "+2d")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !s.log().contains("certificate obtained") {
        assert!(Instant::now() < deadline, "{}", s.log());
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(10));
    let log = s.log();
    assert!(log.contains("clock is ahead of the ACME CA's"), "{log}");
    assert_eq!(
        log.matches("ordering a certificate").count(),
        1,
        "no renewal thrash: {log}"
    );
});

// The metrics say how orders ended and when the certificate served expires.
both_drivers!(orders_and_expiry_are_in_the_metrics, |driver| {
    let p = Pebble::start(None);
    let state = TempDir::new("acme-metrics");
    let acme = p.acme_options(&state.path().join("certs"));
    let metrics = support::server::free_port();
    let corefile = format!(
        "tls://mydomain.test:{{PORT2}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain ns1.mydomain.test\n{acme}    }}\n{HOSTS}    prometheus 127.0.0.1:{metrics}\n}}\n\nmydomain.test:{{PORT}} {{\n    bind 127.0.0.1\n{HOSTS}}}\n"
    );
    let s = start(driver, &p, &corefile);
    let chain = wait_cert(
        dot(&s),
        &p.issuer_root(),
        "ns1.mydomain.test",
        b"dot",
        Duration::from_secs(60),
        &s,
    );
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let not_after = leaf.validity().not_after.timestamp();
    let scrape = || {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{metrics}/metrics"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let want =
        format!("ringdns_certificate_not_after_seconds{{names=\"ns1.mydomain.test\",source=\"acme\"}} {not_after}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut page = scrape();
    while !page.lines().any(|l| l == want) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        page = scrape();
    }
    assert!(page.lines().any(|l| l == want), "{want}\n{page}");
    assert!(
        page.lines()
            .any(|l| l == "ringdns_acme_orders_total{result=\"valid\"} 1"),
        "{page}"
    );
    assert!(
        page.lines()
            .any(|l| l == "ringdns_acme_orders_total{result=\"error\"} 0"),
        "{page}"
    );
});
