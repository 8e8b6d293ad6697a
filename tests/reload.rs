//! Black-box: reloading zone files, hosts files and the Corefile while queries run.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::server::{Options, Server};
use support::{Reply, q};

fn zone(serial: u32, www: &str) -> String {
    format!(
        "$ORIGIN example.test.\n$TTL 60\n@ SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\nwww A {www}\n"
    )
}

const COREFILE: &str =
    "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone {\n        reload 200ms\n    }\n}\n";

fn www(s: &Server) -> Option<String> {
    let raw = s.udp_timeout(&q("www.example.test", Rtype::A).wire(), Duration::from_secs(2))?;
    Reply::parse(&raw).answer().first().map(|r| r.data.clone())
}

fn eventually(what: &str, s: &Server, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} did not happen; log:\n{}", s.log());
}

both_drivers!(zone_rewritten_under_load_never_fails_a_query, |driver| {
    let s = Arc::new(Server::start(
        Options::new(driver, COREFILE).file("zone", zone(1, "192.0.2.10")),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (asked, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let (s, stop, asked, failed) = (s.clone(), stop.clone(), asked.clone(), failed.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    asked.fetch_add(1, Ordering::Relaxed);
                    let ok = match s.udp_timeout(&q("www.example.test", Rtype::A).wire(), Duration::from_secs(2)) {
                        Some(raw) => {
                            let r = Reply::parse(&raw);
                            r.rcode() == 0 && r.answer().len() == 1
                        }
                        None => false,
                    };
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    // Rewrite in place many times (a reader may see a half-written file: it must keep the
    // old zone), then settle on serial 20.
    for serial in 2..=20 {
        let addr = format!("192.0.2.{}", 10 + serial);
        std::fs::write(s.dir.path().join("zone"), zone(serial, &addr)).unwrap();
        std::thread::sleep(Duration::from_millis(120));
    }
    eventually("the new zone", &s, || www(&s).as_deref() == Some("192.0.2.30"));
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.join().unwrap();
    }
    assert!(asked.load(Ordering::Relaxed) > 200, "the loop ran");
    assert_eq!(failed.load(Ordering::Relaxed), 0, "no query failed during reloads");
    assert!(s.log().contains("zone reloaded"));
});

both_drivers!(broken_or_unchanged_serial_keeps_old_data, |driver| {
    let s = Server::start(Options::new(driver, COREFILE).file("zone", zone(5, "192.0.2.10")));
    let path = s.dir.path().join("zone");
    std::fs::write(&path, zone(5, "192.0.2.99")).unwrap();
    assert!(
        s.wait_log("SOA serial did not grow", Duration::from_secs(10)),
        "{}",
        s.log()
    );
    assert_eq!(www(&s).as_deref(), Some("192.0.2.10"));
    std::fs::write(
        &path,
        "$ORIGIN example.test.\n@ SOA ns1 hostmaster 6 1 1 1 1\nwww A not-an-ip\n",
    )
    .unwrap();
    assert!(s.wait_log("zone reload failed", Duration::from_secs(10)), "{}", s.log());
    assert!(
        s.log().contains("zone:3: "),
        "the error names file and line: {}",
        s.log()
    );
    assert_eq!(www(&s).as_deref(), Some("192.0.2.10"));
    std::fs::write(&path, zone(7, "192.0.2.77")).unwrap();
    eventually("the fixed zone", &s, || www(&s).as_deref() == Some("192.0.2.77"));
});

both_drivers!(hosts_file_reload, |driver| {
    let corefile =
        "hosts.test:{PORT} {\n    bind 127.0.0.1\n    hosts {DIR}/hosts hosts.test {\n        reload 200ms\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("hosts", "192.0.2.1 a.hosts.test\n"));
    let a = |s: &Server| {
        s.udp(&q("a.hosts.test", Rtype::A))
            .answer()
            .first()
            .map(|r| r.data.clone())
    };
    assert_eq!(a(&s).as_deref(), Some("192.0.2.1"));
    // mtime granularity: make sure the stamp changes.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        s.dir.path().join("hosts"),
        "192.0.2.2 a.hosts.test\n192.0.2.3 b.hosts.test\n",
    )
    .unwrap();
    eventually("the new hosts entry", &s, || a(&s).as_deref() == Some("192.0.2.2"));
});

both_drivers!(sighup_reloads_corefile_and_keeps_old_on_error, |driver| {
    let s = Server::start(Options::new(driver, COREFILE).file("zone", zone(1, "192.0.2.10")));
    // Add a block on a second port and a hosts zone.
    let port2 = support::server::free_port();
    let new = format!(
        "example.test:{p} {{\n    bind 127.0.0.1\n    file {d}/zone\n}}\nother.test:{p} other.test:{p2} {{\n    bind 127.0.0.1\n    hosts {d}/none {{\n        192.0.2.44 x.other.test\n    }}\n}}\n",
        p = s.port,
        p2 = port2,
        d = s.dir.path().display()
    );
    std::fs::write(&s.corefile, new).unwrap();
    s.signal("HUP");
    eventually("the new block", &s, || {
        s.udp_timeout(&q("x.other.test", Rtype::A).wire(), Duration::from_secs(1))
            .is_some_and(|r| Reply::parse(&r).answer().len() == 1)
    });
    // The new listener answers too.
    let raw = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    raw.send_to(&q("x.other.test", Rtype::A).wire(), ("127.0.0.1", port2))
        .unwrap();
    let mut buf = [0u8; 512];
    let n = raw.recv(&mut buf).expect("the listener added by reload answers");
    assert_eq!(Reply::parse(&buf[..n]).answer().len(), 1);
    // A broken Corefile: the error is logged with its place, everything keeps serving.
    std::fs::write(&s.corefile, "example.test:1 {\n    hots\n}\n").unwrap();
    s.signal("HUP");
    assert!(s.wait_log("reload failed", Duration::from_secs(10)), "{}", s.log());
    assert!(
        s.log().contains("Corefile:2:5: unknown directive \"hots\""),
        "{}",
        s.log()
    );
    assert_eq!(www(&s).as_deref(), Some("192.0.2.10"));
    assert_eq!(s.udp(&q("x.other.test", Rtype::A)).answer().len(), 1);
    // Dropping the second port closes its listener; the first keeps serving.
    let back = format!(
        "example.test:{p} {{\n    bind 127.0.0.1\n    file {d}/zone\n}}\n",
        p = s.port,
        d = s.dir.path().display()
    );
    std::fs::write(&s.corefile, back).unwrap();
    s.signal("HUP");
    eventually("the listener to close", &s, || {
        raw.send_to(&q("x.other.test", Rtype::A).wire(), ("127.0.0.1", port2))
            .unwrap();
        raw.recv(&mut buf).is_err()
    });
    assert_eq!(www(&s).as_deref(), Some("192.0.2.10"));
});

both_drivers!(reload_directive_watches_the_corefile, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    reload 2s 0s\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", zone(1, "192.0.2.10")));
    assert_eq!(s.udp(&q("y.more.test", Rtype::A)).rcode(), 5);
    let new = format!(
        "example.test:{p} more.test:{p} {{\n    bind 127.0.0.1\n    file {d}/zone example.test\n    hosts {d}/none more.test {{\n        192.0.2.55 y.more.test\n    }}\n    reload 2s 0s\n}}\n",
        p = s.port,
        d = s.dir.path().display()
    );
    std::fs::write(&s.corefile, new).unwrap();
    eventually("the Corefile change", &s, || {
        s.udp(&q("y.more.test", Rtype::A)).answer().len() == 1
    });
    assert!(s.log().contains("Corefile changed"));
});
