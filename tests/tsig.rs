//! Black-box: `tsig` (RFC 8945) with real peers. ringdns as the secondary of a Knot primary
//! that requires a key for transfers and signs its NOTIFYs; ringdns as the primary of a Knot
//! secondary that signs its requests and takes only signed NOTIFYs; kdig signing queries
//! and transfers with good keys, wrong secrets, unknown keys and a clock an hour off.

mod support;

use std::process::Command;

use domain::base::iana::Rtype;
use support::knot::Knot;
use support::server::{Options, Server, free_port};
use support::{eventually, kdig, kdig_records, q};

const KEY: &str = "xfr.example";
const SECRET: &str = "NoTCJU+DMqFWywaPyxSijrDEA/eC3nK0xi3AMEZuPVk=";
const WRONG: &str = "bm90IHRoZSBzZWNyZXQgYXQgYWxsLCBzb3JyeSEhIQ==";

/// Refresh an hour: only a NOTIFY brings a change soon.
const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nmail A 192.0.2.25\n@ MX 10 mail\n";

fn edge(driver: &str, primary: std::net::SocketAddr, port: u16, secret: &str) -> Server {
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    tsig {{\n        secret {KEY}. {secret}\n        require_opcode NOTIFY\n    }}\n    secondary {{\n        transfer from {primary}\n        directory {{DIR}}/zones\n    }}\n}}\n"
    );
    Server::start(Options::new(driver, &corefile).port(port))
}

// The primary refuses unsigned transfers: ringdns signs its SOA, IXFR and AXFR with its
// block's key, checks the signed replies, and takes the primary's signed NOTIFY.
both_drivers!(a_secondary_signs_what_it_asks_a_knot_primary, |driver| {
    let port = free_port();
    let notify = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let knot = Knot::primary_keyed(&[("example.test", ZONE)], Some(notify), Some((KEY, SECRET)));
    // Knot refuses the unsigned (NOTAUTH): the key is what lets ringdns in.
    let out = kdig(&["@127.0.0.1", "-p", &knot.port.to_string(), "AXFR", "example.test"]);
    assert!(out.contains("NOTAUTH"), "{out}");
    let s = edge(driver, knot.addr(), port, SECRET);
    let www = || {
        s.udp(&q("www.example.test", Rtype::A))
            .answer()
            .first()
            .map(|a| a.data.clone())
    };
    assert!(
        eventually(10, || www().as_deref() == Some("192.0.2.10")),
        "{}\n{}",
        s.log(),
        knot.log()
    );
    knot.replace("example.test", "www", 300, "A", "192.0.2.77");
    assert!(
        eventually(10, || www().as_deref() == Some("192.0.2.77")),
        "the signed NOTIFY brought the change: {}\n{}",
        s.log(),
        knot.log()
    );
    assert!(s.log().contains("how=\"IXFR\""), "{}", s.log());
    assert!(!s.log().contains("NOTIFY refused"), "{}", s.log());
    // `require_opcode NOTIFY`: an unsigned NOTIFY, even from the primary's address, is
    // REFUSED.
    let r = s.udp(&q("example.test", Rtype::SOA).opcode(4));
    assert_eq!(r.rcode(), 5);
});

// With the wrong secret the primary's answers do not check (and it refuses ours): the zone
// never loads, and the log says why.
both_drivers!(a_secondary_with_the_wrong_secret_gets_nothing, |driver| {
    let knot = Knot::primary_keyed(&[("example.test", ZONE)], None, Some((KEY, SECRET)));
    let s = edge(driver, knot.addr(), free_port(), WRONG);
    assert!(
        eventually(10, || s.log().contains("no primary could be checked")),
        "{}",
        s.log()
    );
    assert!(s.log().contains("TSIG"), "{}", s.log());
    let r = s.udp(&q("www.example.test", Rtype::A));
    assert_eq!(r.rcode(), 2, "{:?}\n{}", r.wire, s.log());
});

fn primary(driver: &str, knot_port: u16) -> Server {
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/zone {{\n        reload 1s\n    }}\n    tsig {{\n        secrets {{DIR}}/keys.conf\n        require AXFR IXFR\n    }}\n    transfer {{\n        to *\n        to 127.0.0.1:{knot_port}\n    }}\n}}\n"
    );
    // The key file as BIND's tsig-keygen writes it.
    let keys = format!("key \"{KEY}\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n");
    Server::start(
        Options::new(driver, &corefile)
            .file("zone", ZONE.to_string())
            .file("keys.conf", keys),
    )
}

// ringdns as the primary: signed AXFR and queries for kdig, the RFC's errors for wrong
// secrets, unknown keys and clocks outside the fudge, REFUSED unsigned transfers; Knot as
// a signed secondary, told of a change by a signed NOTIFY.
both_drivers!(a_primary_checks_and_signs, |driver| {
    let knot_port = free_port();
    let s = primary(driver, knot_port);
    let port = s.port.to_string();
    let good = format!("hmac-sha256:{KEY}:{SECRET}");
    let out = kdig(&["@127.0.0.1", "-p", &port, "-y", &good, "AXFR", "example.test"]);
    // kdig checks every message's TSIG and says so when one fails.
    assert_eq!(kdig_records(&out).len(), 7, "{out}");
    assert!(!out.contains("WARNING") && !out.contains("failed"), "{out}");
    let out = kdig(&[
        "@127.0.0.1",
        "-p",
        &port,
        "-y",
        &good,
        "+notcp",
        "www.example.test",
        "A",
    ]);
    assert!(
        out.contains("status: NOERROR") && out.contains("TSIG PSEUDOSECTION"),
        "{out}"
    );
    assert!(!out.contains("WARNING") && !out.contains("failed"), "{out}");
    // Unsigned transfer: REFUSED (`require AXFR IXFR`); unsigned queries are answered.
    let out = kdig(&["@127.0.0.1", "-p", &port, "AXFR", "example.test"]);
    assert!(out.contains("REFUSED"), "{out}");
    assert!(kdig(&["@127.0.0.1", "-p", &port, "www.example.test", "A"]).contains("192.0.2.10"));
    // Wrong secret: NOTAUTH, BADSIG (unsigned, RFC 8945 §5.3.2; kdig shows the TSIG error
    // as the status).
    let bad = format!("hmac-sha256:{KEY}:{WRONG}");
    let out = kdig(&["@127.0.0.1", "-p", &port, "-y", &bad, "SOA", "example.test"]);
    assert!(out.contains("status: BADSIG"), "{out}");
    // A key nobody configured: BADKEY.
    let stranger = format!("hmac-sha256:someone.else:{SECRET}");
    let out = kdig(&["@127.0.0.1", "-p", &port, "-y", &stranger, "SOA", "example.test"]);
    assert!(out.contains("status: BADKEY"), "{out}");
    // A clock an hour off: BADTIME, signed, with our time in Other Data.
    let out = String::from_utf8_lossy(
        &Command::new("faketime")
            .args([
                "-f",
                "-1h",
                "kdig",
                "@127.0.0.1",
                "-p",
                &port,
                "-y",
                &good,
                "SOA",
                "example.test",
            ])
            .output()
            .expect("faketime (test.sh installs it)")
            .stdout,
    )
    .into_owned();
    assert!(out.contains("status: BADTIME"), "{out}");
    // Knot, signing its requests with the key, transfers the zone.
    let knot = Knot::secondary_keyed("example.test", s.addr, knot_port, Some((KEY, SECRET)));
    let www = || {
        kdig_records(&kdig(&[
            "@127.0.0.1",
            "-p",
            &knot_port.to_string(),
            "+norec",
            "www.example.test",
            "A",
        ]))
    };
    assert_eq!(www(), ["www.example.test. 300 IN A 192.0.2.10"], "{}", knot.log());
    // A change, told by a signed NOTIFY (Knot takes no other): Knot follows.
    let changed = ZONE.replace(" 1 3600 ", " 2 3600 ").replace("192.0.2.10", "192.0.2.44");
    std::fs::write(s.dir.path().join("zone"), changed).unwrap();
    assert!(
        eventually(15, || www() == ["www.example.test. 300 IN A 192.0.2.44"]),
        "{}\n{}",
        knot.log(),
        s.log()
    );
});

#[test]
fn check_refuses_bad_tsig() {
    for (block, want) in [
        ("tsig", "tsig needs a key"),
        ("tsig {\n        secret k.\n    }", "secret NAME KEY"),
        ("tsig {\n        secret k. not-base64!\n    }", "not base64"),
        (
            "tsig {\n        secret k. AAAA\n        require BOGUS\n    }",
            "not a query type",
        ),
        (
            "tsig {\n        secret k. AAAA\n        require_opcode PUSH\n    }",
            "not a opcode",
        ),
        (
            "tsig {\n        secrets /nonexistent/keys\n    }",
            "tsig secrets /nonexistent/keys",
        ),
        (
            "tsig {\n        secret k. AAAA\n        fudge 300\n    }",
            "unknown tsig option",
        ),
    ] {
        let err = support::server::check(&format!("example.test {{\n    {block}\n}}\n")).unwrap_err();
        assert!(err.contains(want) && err.contains("Corefile:"), "{block}: {err}");
    }
    // A key file with MD5: the file and line are named.
    let dir = support::server::TempDir::new("tsig-check");
    let file = dir.write(
        "keys",
        &format!("\nkey \"k\" {{ algorithm hmac-md5; secret \"{SECRET}\"; }};\n"),
    );
    let err = support::server::check(&format!(
        "example.test {{\n    tsig {{\n        secrets {}\n    }}\n}}\n",
        file.display()
    ))
    .unwrap_err();
    assert!(
        err.contains(&format!("{}:2:", file.display())) && err.contains("hmac-md5 is refused"),
        "{err}"
    );
    let ok = support::server::check(&format!(
        "example.test {{\n    tsig {{\n        secret {KEY}. {SECRET}\n        require all\n        require_opcode NOTIFY UPDATE\n    }}\n}}\n"
    ));
    assert!(ok.is_ok(), "{ok:?}");
}
