//! Black-box: running under systemd. ringdns is started with `NOTIFY_SOCKET` pointing at a
//! datagram socket of the test (what systemd gives a `Type=notify` service) and
//! `WATCHDOG_USEC`, and must say READY=1 once it answers, WATCHDOG=1 at half the interval,
//! RELOADING=1 then READY=1 on SIGHUP, and STOPPING=1 on SIGTERM. The unit file in contrib/
//! passes `systemd-analyze verify`.

mod support;

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::q;
use support::server::{Options, Server, TempDir, binary, example_zone};

/// Messages received within `within`, until one contains `until`.
fn read_until(sock: &UnixDatagram, until: &str, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            let done = m.lines().any(|l| l == until);
            got.push(m);
            if done {
                return got;
            }
        }
    }
    panic!("no {until} within {within:?}; got {got:?}");
}

both_drivers!(notifies_ready_watchdog_reload_and_stop, |driver| {
    let dir = TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n";
    let s = Server::start(
        Options::new(driver, corefile)
            .file("zone", example_zone())
            .env("NOTIFY_SOCKET", &path.display().to_string())
            .env("WATCHDOG_USEC", "200000")
            // systemd names the process the watchdog is for; exec keeps the shell's PID.
            .shell("WATCHDOG_PID=$$"),
    );
    let got = read_until(&sock, "READY=1", Duration::from_secs(10));
    assert!(got.last().unwrap().contains("STATUS=serving"), "{got:?}");
    // Already answering when it said so (Server::start waited for an answer too).
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).rcode(), 0);
    // Watchdog keep-alives every 100 ms: at least five in a second.
    let t0 = Instant::now();
    let mut dogs = 0;
    let mut buf = [0u8; 512];
    while t0.elapsed() < Duration::from_secs(1) {
        if let Ok(n) = sock.recv(&mut buf) {
            dogs += usize::from(buf[..n].trim_ascii_end() == b"WATCHDOG=1");
        }
    }
    assert!(dogs >= 5, "{dogs} watchdog messages in 1 s");
    s.signal("HUP");
    let got = read_until(&sock, "READY=1", Duration::from_secs(10));
    assert!(got.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")), "{got:?}");
    s.signal("TERM");
    read_until(&sock, "STOPPING=1", Duration::from_secs(10));
    let (st, _) = s.stop();
    assert!(st.success());
});

#[test]
fn the_unit_file_verifies() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        panic!("systemd-analyze is needed (package systemd)");
    }
    let dir = TempDir::new("unit");
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/contrib/ringdns.service")).unwrap();
    let unit = unit.replace("/usr/local/bin/ringdns", binary());
    let path = dir.write("ringdns.service", &unit);
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    for needle in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "StateDirectory=ringdns",
        "DynamicUser=yes",
    ] {
        assert!(unit.contains(needle), "{needle}");
    }
}
