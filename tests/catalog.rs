//! Black-box: catalog zones (RFC 9432) with Knot DNS generating the catalog. ringdns
//! consumes it: every member becomes a secondary zone of the same primary, answered as Knot
//! answers it; members added and removed at the primary (knotc configuration transactions,
//! which update the catalog and send NOTIFY) appear and disappear here; a restart serves the
//! members from disk without the primary; `catalog MEMBER-ZONES` restricts what is taken; a
//! catalog of another schema version is not applied.

mod support;

use domain::base::iana::Rtype;
use support::knot::Knot;
use support::server::{Options, Server, free_port};
use support::{eventually, q};

fn zone(origin: &str, www: &str) -> String {
    format!(
        "$ORIGIN {origin}.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A {www}\n@ MX 10 mail\nmail A 192.0.2.25\n"
    )
}

fn edge(
    driver: &str,
    primary: std::net::SocketAddr,
    port: u16,
    members: &str,
    dir: Option<&std::path::Path>,
) -> Server {
    let zones = dir.map_or("{DIR}/zones".to_string(), |d| d.display().to_string());
    let corefile = format!(
        "catalog.test:{{PORT}} {{\n    bind 127.0.0.1\n    secondary {{\n        transfer from {primary}\n        catalog{members}\n        directory {zones}\n    }}\n}}\n"
    );
    Server::start(Options::new(driver, &corefile).port(port))
}

fn www(s: &Server, origin: &str) -> Option<String> {
    let r = s.udp(&q(&format!("www.{origin}"), Rtype::A));
    (r.rcode() == 0)
        .then(|| r.answer().first().map(|a| a.data.clone()))
        .flatten()
}

/// kdig's records for `name type` at `port`, sorted, without comments.
fn records(port: u16, name: &str, t: &str) -> Vec<String> {
    let out = std::process::Command::new("kdig")
        .args([
            "@127.0.0.1",
            "-p",
            &port.to_string(),
            "+norec",
            "+noall",
            "+answer",
            name,
            t,
        ])
        .output()
        .expect("kdig");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

/// A Knot primary generating `catalog.test` with members a.test and b.test, NOTIFY to an
/// edge consuming it with `catalog MEMBERS`.
fn two_members(driver: &str, members: &str) -> (Knot, Server) {
    let port = free_port();
    let notify = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let knot = Knot::catalog_primary(
        "catalog.test",
        &[
            ("a.test", &zone("a.test", "192.0.2.10")),
            ("b.test", &zone("b.test", "192.0.2.20")),
        ],
        notify,
    );
    let s = edge(driver, knot.addr(), port, members, None);
    (knot, s)
}

both_drivers!(members_follow_a_knot_catalog, |driver| {
    let (knot, s) = two_members(driver, "");
    assert!(
        eventually(15, || www(&s, "a.test").is_some() && www(&s, "b.test").is_some()),
        "both members served: {}\n{}",
        s.log(),
        knot.log()
    );
    // As Knot answers them.
    for (name, t) in [
        ("a.test", "SOA"),
        ("a.test", "MX"),
        ("www.a.test", "A"),
        ("www.b.test", "A"),
        ("b.test", "NS"),
    ] {
        assert_eq!(records(s.port, name, t), records(knot.port, name, t), "{name} {t}");
    }
    assert!(s.udp(&q("www.a.test", Rtype::A)).aa());
    // A member added at the primary: its catalog changes, NOTIFY, served here.
    knot.add_member("catalog.test", "c.test", &zone("c.test", "192.0.2.30"));
    assert!(
        eventually(15, || www(&s, "c.test").as_deref() == Some("192.0.2.30")),
        "the new member is served: {}\n{}",
        s.log(),
        knot.log()
    );
    // A member removed: gone here (no block serves it: REFUSED), its copy deleted.
    let copy = s.dir.path().join("zones/b.test.zone");
    assert!(eventually(10, || copy.exists()), "{}", s.log());
    knot.remove_zone("b.test");
    assert!(
        eventually(15, || s.udp(&q("www.b.test", Rtype::A)).rcode() == 5),
        "the removed member is gone: {}\n{}",
        s.log(),
        knot.log()
    );
    assert!(!copy.exists());
    assert!(s.log().contains("catalog member zone removed"), "{}", s.log());
    // A change in a member is followed by its NOTIFY, as any secondary zone's.
    knot.replace("a.test", "www", 300, "A", "192.0.2.11");
    assert!(
        eventually(10, || www(&s, "a.test").as_deref() == Some("192.0.2.11")),
        "{}",
        s.log()
    );
    // A restart without the primary serves the catalog's members from disk at once (the
    // copies are written beside the transfers: wait for the last).
    let dir = s.dir.path().join("zones");
    let holds = |f: &str, yes: &str, no: &str| {
        std::fs::read_to_string(dir.join(f)).is_ok_and(|t| t.contains(yes) && !t.contains(no))
    };
    assert!(eventually(10, || holds("a.test.zone", "192.0.2.11", "192.0.2.10")));
    assert!(eventually(10, || holds(
        "catalog.test.zone",
        "PTR c.test.",
        "PTR b.test."
    )));
    let kept = support::server::TempDir::new("catalog-kept");
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), kept.path().join(f.file_name())).unwrap();
    }
    drop(s);
    drop(knot);
    let s = edge(
        driver,
        "127.0.0.1:9".parse().unwrap(),
        free_port(),
        "",
        Some(kept.path()),
    );
    assert_eq!(www(&s, "a.test").as_deref(), Some("192.0.2.11"), "{}", s.log());
    assert_eq!(www(&s, "c.test").as_deref(), Some("192.0.2.30"), "{}", s.log());
    assert_eq!(s.udp(&q("www.b.test", Rtype::A)).rcode(), 5);
});

// `catalog MEMBER-ZONES`: only members at or below the names are taken (RFC 9432 §7).
both_drivers!(member_zones_restrict_what_is_taken, |driver| {
    let (_knot, s) = two_members(driver, " a.test");
    assert!(eventually(15, || www(&s, "a.test").is_some()), "{}", s.log());
    assert_eq!(s.udp(&q("www.b.test", Rtype::A)).rcode(), 5);
    assert!(s.log().contains("outside its catalog MEMBER-ZONES"), "{}", s.log());
});

// A catalog of schema version 1 is not applied: no member is served, the log says why.
both_drivers!(only_version_2_catalogs_are_applied, |driver| {
    let v1 = "$ORIGIN catalog.test.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\nversion TXT \"1\"\nm1.zones PTR a.test.\n";
    let knot = Knot::primary(&[("catalog.test", v1), ("a.test", &zone("a.test", "192.0.2.10"))], None);
    let s = edge(driver, knot.addr(), free_port(), "", None);
    assert!(
        eventually(10, || s.log().contains("catalog zone not applied")),
        "{}",
        s.log()
    );
    assert!(s.log().contains("schema version \"1\" is not supported"), "{}", s.log());
    assert_eq!(s.udp(&q("www.a.test", Rtype::A)).rcode(), 5);
    // The catalog zone itself is served, as any secondary zone.
    assert_eq!(s.udp(&q("catalog.test", Rtype::SOA)).rcode(), 0);
});
