//! Black-box: ringdns as a DoT forwarder gets its own certificate for a name it does not
//! serve: `tls acme { dns rfc2136 ... }` publishes the DNS-01 value on a Knot primary by an
//! RFC 2136 update signed with TSIG, waits until Knot answers it, lets the test CA validate
//! there, and deletes the value afterwards; `tls acme { dns acme_dns ... }` sets it through
//! an acme-dns server (ringdns's own), following the CNAME of the challenge name.

mod support;

use rustls::pki_types::ServerName;
use support::knot::Knot;
use support::pebble::Pebble;
use support::server::{Options, Server, TempDir};
use support::{eventually, kdig, tls};

const KEY: &str = "acme.key";
const SECRET: &str = "NoTCJU+DMqFWywaPyxSijrDEA/eC3nK0xi3AMEZuPVk=";
const ZONE: &str =
    "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\nwww A 127.0.0.1\n";

/// Whether `s` completes a DoT handshake for www.example.test under `root` within 60 s.
fn served(s: &Server, root: &rustls::pki_types::CertificateDer<'static>) -> bool {
    eventually(60, || {
        let cfg = tls::client_config(root, &[b"dot"]);
        tls::connect(s.addr, cfg, ServerName::try_from("www.example.test").unwrap()).is_ok()
    })
}

both_drivers!(a_dot_forwarder_gets_its_certificate_through_a_knot_primary, |driver| {
    let knot = Knot::updatable(("example.test", ZONE), (KEY, SECRET));
    // The CA asks Knot, the zone's server, for the value.
    let mut pebble = Pebble::prepare(None);
    pebble.dns_port = knot.port;
    pebble.run();
    let state = TempDir::new("remote-acme");
    let corefile = format!(
        "tls://www.example.test:{{PORT}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain www.example.test\n        ca {}\n        cacert {}\n        certpath {}\n        dns rfc2136 127.0.0.1:{} {{\n            key {KEY} hmac-sha256 {SECRET}\n            check 127.0.0.1:{}\n        }}\n    }}\n    forward . 127.0.0.1:{}\n}}\n",
        pebble.directory(),
        pebble.https_ca().display(),
        state.path().join("certs").display(),
        knot.port,
        knot.port,
        knot.port
    );
    let s = Server::spawn(Options::new(driver, &corefile));
    let root = pebble.issuer_root();
    assert!(
        served(&s, &root),
        "no certificate: {}\n{}\n{}",
        s.log(),
        knot.log(),
        pebble.log()
    );
    assert!(s.log().contains("challenge value published by RFC 2136"), "{}", s.log());
    // The query goes through to Knot over the new certificate.
    let mut c = tls::connect(
        s.addr,
        tls::client_config(&root, &[b"dot"]),
        ServerName::try_from("www.example.test").unwrap(),
    )
    .unwrap();
    tls::write_frame(
        &mut c,
        &support::q("www.example.test", domain::base::iana::Rtype::A).wire(),
    );
    assert_eq!(
        support::Reply::parse(&tls::read_frame(&mut c).unwrap()).answer()[0].data,
        "127.0.0.1"
    );
    // The value is gone from Knot once the order is over.
    let txt = || {
        kdig(&[
            "@127.0.0.1",
            "-p",
            &knot.port.to_string(),
            "+short",
            "_acme-challenge.www.example.test",
            "TXT",
        ])
    };
    assert!(eventually(10, || txt().trim().is_empty()), "{}\n{}", txt(), s.log());
    assert!(s.log().contains("challenge value removed"), "{}", s.log());
});

// The same through an acme-dns server, ringdns's own `acme_dns`: the registration made
// with curl, the CNAME put in the zone by the operator; the forwarder sets its value by
// the API and waits until the acme-dns server answers it.
both_drivers!(
    a_dot_forwarder_gets_its_certificate_through_an_acme_dns_server,
    |driver| {
        let mut pebble = Pebble::prepare(None);
        let zone = ZONE.to_string();
        let edge = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/example.test.zone\n    acme_dns example.test {\n        listen 127.0.0.1:{PORT2}\n        plain\n        directory {DIR}/acme-dns\n    }\n}\n";
        let auth = Server::start(
            Options::new(driver, edge)
                .port(pebble.dns_port)
                .file("example.test.zone", zone.clone()),
        );
        pebble.run();
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-X",
                "POST",
                &format!("http://127.0.0.1:{}/register", auth.port2),
            ])
            .output()
            .expect("curl");
        let reg: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a registration");
        let full = reg["fulldomain"].as_str().unwrap();
        std::fs::write(
            auth.dir.path().join("example.test.zone"),
            zone.replace(" 1 3600", " 2 3600") + &format!("_acme-challenge.www CNAME {full}.\n"),
        )
        .unwrap();
        auth.signal("HUP");
        assert!(eventually(10, || !auth
            .udp(&support::q(
                "_acme-challenge.www.example.test",
                domain::base::iana::Rtype::CNAME
            ))
            .answer()
            .is_empty()));
        let state = TempDir::new("remote-acme-dns");
        let corefile = format!(
            "tls://www.example.test:{{PORT}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain www.example.test\n        ca {}\n        cacert {}\n        certpath {}\n        dns acme_dns http://127.0.0.1:{} {{\n            username {}\n            password {}\n            subdomain {}\n            check 127.0.0.1:{}\n        }}\n    }}\n    forward . 127.0.0.1:{}\n}}\n",
            pebble.directory(),
            pebble.https_ca().display(),
            state.path().join("certs").display(),
            auth.port2,
            reg["username"].as_str().unwrap(),
            reg["password"].as_str().unwrap(),
            reg["subdomain"].as_str().unwrap(),
            auth.port,
            auth.port
        );
        let s = Server::spawn(Options::new(driver, &corefile));
        assert!(
            served(&s, &pebble.issuer_root()),
            "no certificate: {}\n{}\n{}",
            s.log(),
            auth.log(),
            pebble.log()
        );
        assert!(s.log().contains("challenge value published by acme-dns"), "{}", s.log());
    }
);
