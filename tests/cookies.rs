//! Black-box: DNS Cookies (RFC 7873) with RFC 9018 server cookies. dig and kdig (both check
//! the cookie they get back) receive a version-1 server cookie; a valid one is sent back as
//! it is; a query without a question but with a cookie gets the server cookie; a COOKIE of a
//! wrong length is FORMERR with an OPT. Knot DNS with `mod-cookies` and the same secret is
//! the reference: each takes the other's cookies, as every node of a fleet must; a server
//! with another secret does not.

mod support;

use std::process::Command;

use support::knot::Knot;
use support::server::{Options, Server};

const ZONE: &str =
    "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n";
/// RFC 9018 Appendix A's secret.
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
/// RFC 9018 Appendix A's client cookie.
const CLIENT: &str = "2464c4abcf10c957";

fn dig(port: u16, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (test.sh installs bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The COOKIE dig shows (client and server cookie in hex) and whether dig called it good.
fn cookie(dig_out: &str) -> Option<(String, bool)> {
    let line = dig_out.lines().find(|l| l.starts_with("; COOKIE: "))?;
    let hex = line.split_whitespace().nth(2)?.to_ascii_lowercase();
    Some((hex, line.contains("(good)")))
}

fn server(driver: &str, secret: Option<&str>) -> Server {
    let cookies = secret.map_or(String::new(), |s| {
        format!("    cookies {{\n        secret {s}\n    }}\n")
    });
    Server::start(
        Options::new(
            driver,
            &format!("example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/db\n{cookies}}}\n"),
        )
        .file("db", ZONE),
    )
}

both_drivers!(clients_get_and_keep_a_server_cookie, |driver| {
    let s = server(driver, None);
    let out = dig(s.port, &["+cookie", "www.example.test", "A"]);
    let (c, good) = cookie(&out).unwrap_or_else(|| panic!("no cookie: {out}"));
    assert!(good && c.len() == 48, "{out}");
    // RFC 9018 §4.2: version 1, three reserved octets of zero, then timestamp and hash.
    assert_eq!(&c[16..24], "01000000", "{c}");
    // A valid server cookie comes back as it is (it is younger than half an hour).
    let again = dig(s.port, &[&format!("+cookie={c}"), "www.example.test", "A"]);
    assert_eq!(cookie(&again), Some((c.clone(), true)), "{again}");
    // kdig checks the client cookie it gets back too.
    let k = support::kdig(&[
        "@127.0.0.1",
        "-p",
        &s.port.to_string(),
        "+cookie",
        "www.example.test",
        "A",
    ]);
    let line = k
        .lines()
        .find(|l| l.contains("COOKIE:"))
        .unwrap_or_else(|| panic!("kdig: {k}"));
    assert_eq!(line.split_whitespace().last().map(str::len), Some(48), "{k}");
    assert!(k.contains("NOERROR") && !k.contains("WARNING"), "{k}");
    // RFC 7873 §5.4: no question, a cookie: NOERROR and the server cookie.
    let bare = dig(s.port, &["+header-only", &format!("+cookie={CLIENT}")]);
    assert!(bare.contains("status: NOERROR") && bare.contains("QUERY: 0"), "{bare}");
    assert!(
        cookie(&bare).is_some_and(|(c, good)| good && c.starts_with(CLIENT)),
        "{bare}"
    );
    // §5.2.2: a COOKIE too short for a client cookie is FORMERR, with an OPT.
    let bad = dig(s.port, &["+cookie=0102", "www.example.test", "A"]);
    assert!(
        bad.contains("status: FORMERR") && bad.contains("OPT PSEUDOSECTION"),
        "{bad}"
    );
});

both_drivers!(a_fleet_and_knot_take_each_others_cookies, |driver| {
    let knot = Knot::with_cookies("example.test", ZONE, SECRET);
    let (a, b) = (server(driver, Some(SECRET)), server(driver, Some(SECRET)));
    let other = server(driver, Some("00112233445566778899aabbccddeeff"));
    let ask = |port: u16, c: &str| {
        let out = dig(port, &[&format!("+cookie={c}"), "www.example.test", "A"]);
        cookie(&out).unwrap_or_else(|| panic!("no cookie from {port}: {out}")).0
    };
    // Knot answers a client cookie alone with BADCOOKIE and its server cookie; dig retries.
    let from_knot = ask(knot.port, CLIENT);
    assert_eq!(
        ask(a.port, &from_knot),
        from_knot,
        "ringdns takes Knot's cookie as valid"
    );
    let from_a = ask(a.port, CLIENT);
    assert_eq!(ask(b.port, &from_a), from_a, "another node takes it");
    assert_eq!(ask(knot.port, &from_a), from_a, "Knot takes ringdns's cookie as valid");
    assert_ne!(
        ask(other.port, &from_a),
        from_a,
        "a server with another secret makes its own"
    );
});

#[test]
fn cookie_errors_name_the_line() {
    let dir = support::server::TempDir::new("cookies-errors");
    let good = dir.write("secret", &format!("{SECRET}\n"));
    for (block, at, says) in [
        (
            "cookies {\n        secret 0102\n    }",
            "Corefile:3",
            "16 octets in hex",
        ),
        (
            "cookies {\n        previous e5e973e5a6b2a43f48e7dc849e37bfcf\n    }",
            "Corefile:2",
            "needs a secret",
        ),
        (
            "cookies {\n        secret_file /nonexistent\n    }",
            "Corefile:3",
            "/nonexistent",
        ),
        (
            "cookies {\n        salt x\n    }",
            "Corefile:3",
            "unknown cookies option",
        ),
    ] {
        let text = format!("example.test:1053 {{\n    {block}\n    whoami\n}}\n");
        let err = support::server::check(&text).expect_err(block);
        assert!(err.contains(at) && err.contains(says), "{block}: {err}");
    }
    let ok = format!(
        "a.test:1053 {{\n    cookies {{\n        secret_file {}\n    }}\n    whoami\n}}\n",
        good.display()
    );
    support::server::check(&ok).expect("a secret file");
    let two = format!(
        "a.test:1053 {{\n    cookies {{\n        secret {SECRET}\n    }}\n    whoami\n}}\nb.test:1053 {{\n    cookies {{\n        secret 00112233445566778899aabbccddeeff\n    }}\n    whoami\n}}\n"
    );
    let err = support::server::check(&two).expect_err("two secrets");
    assert!(
        err.contains("Corefile:8") && err.contains("one secret per server"),
        "{err}"
    );
}

// What the cookies showed is counted: ringdns_cookies_total{result}.
both_drivers!(cookie_outcomes_are_in_the_metrics, |driver| {
    let s = Server::start(
        Options::new(
            driver,
            &format!("example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/db\n    prometheus 127.0.0.1:{{PORT2}}\n    cookies {{\n        secret {SECRET}\n    }}\n}}\n"),
        )
        .file("db", ZONE),
    );
    let ask = |c: &str| {
        cookie(&dig(s.port, &[&format!("+cookie={c}"), "www.example.test", "A"]))
            .unwrap()
            .0
    };
    let ours = ask(CLIENT);
    assert_eq!(ask(&ours), ours);
    // A server cookie made with another secret does not check.
    ask("2464c4abcf10c957010000005cf79f111f8130c3eee29481");
    let (_, text) = support::http_get(&format!("http://127.0.0.1:{}/metrics", s.port2));
    let total = |result: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with("ringdns_cookies_total{") && l.contains(&format!("result=\"{result}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(
        (total("client_only"), total("valid"), total("bad")),
        (1, 1, 1),
        "{text}"
    );
});

// Forwarded answers carry the client's cookie too, from the upstream and from the cache.
both_drivers!(forwarded_and_cached_answers_carry_the_cookie, |driver| {
    let knot = Knot::primary(&[("example.test", ZONE)], None);
    let s = Server::start(Options::new(
        driver,
        &format!(
            "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{}\n    cache\n}}\n",
            knot.port
        ),
    ));
    for round in ["upstream", "cache"] {
        let out = dig(s.port, &[&format!("+cookie={CLIENT}"), "www.example.test", "A"]);
        let (c, good) = cookie(&out).unwrap_or_else(|| panic!("{round}: no cookie: {out}"));
        assert!(good && c.starts_with(CLIENT) && c.len() == 48, "{round}: {out}");
        assert!(out.contains("192.0.2.10"), "{round}: {out}");
    }
});
