//! Black-box: the `health` and `ready` endpoints, asked with curl, through start-up, zone
//! loading, reloads and a lameduck shutdown.

mod support;

use std::io::Write;
use std::process::Command;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::server::{Options, Server, TempDir, example_zone, wait_exit};
use support::{http_get as get, q};

/// Asks until `want(status, body)` holds; panics with the last answer after 15 s.
fn until(url: &str, s: &Server, want: impl Fn(u16, &str) -> bool) -> (u16, String) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, body) = get(url);
        if want(code, &body) {
            return (code, body);
        }
        assert!(
            Instant::now() < deadline,
            "{url}: still {code} {body:?}; log:\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    health 127.0.0.1:{PORT2} {\n        lameduck 1500ms\n    }\n    ready 127.0.0.1:{PORT3}\n}\n";

both_drivers!(ready_waits_for_the_zones_health_does_not, |driver| {
    // A zone file that is a FIFO: the load blocks until the test writes it, so "still
    // loading" is a state the test holds, not a race it hopes to win.
    let fifo_dir = TempDir::new("fifo");
    let fifo = fifo_dir.path().join("zone");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {} {{\n        reload 0\n    }}\n    health 127.0.0.1:{{PORT2}}\n    ready 127.0.0.1:{{PORT3}}\n}}\n",
        fifo.display()
    );
    let mut s = Server::spawn(Options::new(driver, &corefile));
    let health = format!("http://127.0.0.1:{}/health", s.port2);
    let ready = format!("http://127.0.0.1:{}/ready", s.port3);
    assert_eq!(until(&health, &s, |c, _| c != 0), (200, "OK".to_string()));
    let (code, body) = get(&ready);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("loading zones"), "{body}");
    // Each address serves only its own endpoint.
    assert_eq!(get(&format!("http://127.0.0.1:{}/ready", s.port2)).0, 404);
    assert_eq!(get(&format!("http://127.0.0.1:{}/health", s.port3)).0, 404);
    assert_eq!(get(&format!("http://127.0.0.1:{}/", s.port2)).0, 404);

    std::fs::File::options()
        .write(true)
        .open(&fifo)
        .unwrap()
        .write_all(example_zone().as_bytes())
        .unwrap();
    s.wait_ready();
    assert_eq!(until(&ready, &s, |c, _| c != 503), (200, "OK".to_string()));
    let r = s.udp(&q("www.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer().len()), (0, 1));
    let (st, _) = s.stop();
    assert!(st.success());
});

both_drivers!(lameduck_fails_ready_and_keeps_answering, |driver| {
    let s = Server::start(Options::new(driver, COREFILE).file("zone", example_zone()));
    let ready = format!("http://127.0.0.1:{}/ready", s.port3);
    let health = format!("http://127.0.0.1:{}/health", s.port2);
    assert_eq!(until(&ready, &s, |c, _| c != 0).0, 200);
    let mut s = s;
    let term = Instant::now();
    s.signal("TERM");
    let (code, body) = until(&ready, &s, |c, _| c != 200);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("lameduck"), "{body}");
    // Still alive and still answering, over both transports.
    assert_eq!(get(&health).0, 200);
    let r = s.udp(&q("www.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer().len()), (0, 1));
    assert_eq!(s.tcp(&q("www.example.test", Rtype::A)).answer().len(), 1);
    let st = wait_exit(&mut s.child, Duration::from_secs(15)).expect("exits after the lameduck");
    assert!(st.success(), "{st}; log:\n{}", s.log());
    assert!(
        term.elapsed() >= Duration::from_millis(1500),
        "left after {:?}",
        term.elapsed()
    );
    assert!(s.log().contains("lameduck"), "{}", s.log());
});

both_drivers!(reload_moves_the_endpoints, |driver| {
    let s = Server::start(
        Options::new(
            driver,
            "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    health 127.0.0.1:{PORT2}\n}\n",
        )
        .file("zone", example_zone()),
    );
    let old = format!("http://127.0.0.1:{}/health", s.port2);
    assert_eq!(until(&old, &s, |c, _| c != 0).0, 200);
    let text = std::fs::read_to_string(&s.corefile).unwrap();
    let moved = text.replace(
        &format!("health 127.0.0.1:{}", s.port2),
        &format!("ready 127.0.0.1:{}", s.port3),
    );
    std::fs::write(&s.corefile, moved).unwrap();
    s.signal("HUP");
    let new = format!("http://127.0.0.1:{}/ready", s.port3);
    assert_eq!(until(&new, &s, |c, _| c != 0), (200, "OK".to_string()));
    assert_eq!(get(&old).0, 0, "the old address is closed");
    // Removing both stops them; no lameduck then, so SIGTERM is prompt.
    let text = std::fs::read_to_string(&s.corefile).unwrap();
    std::fs::write(&s.corefile, text.replace(&format!("ready 127.0.0.1:{}", s.port3), "")).unwrap();
    s.signal("HUP");
    until(&new, &s, |c, _| c == 0);
    let (st, _) = s.stop();
    assert!(st.success());
});

both_drivers!(an_address_in_use_stops_the_start, |driver| {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/zone\n    ready 127.0.0.1:{port}\n}}\n"
    );
    let mut s = Server::spawn(Options::new(driver, &corefile).file("zone", example_zone()));
    let st = wait_exit(&mut s.child, Duration::from_secs(15)).expect("exits");
    assert!(!st.success());
    let log = s.log();
    assert!(
        log.contains(&format!("ready: cannot listen on 127.0.0.1:{port}")),
        "{log}"
    );
});
