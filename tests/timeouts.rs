//! Black-box: `timeouts { read; write; idle; maxtcpqueries }` (CoreDNS's README examples) on
//! TCP connections, against ringdns's defaults (a message within 1 s of its first byte, 10 s
//! idle, no query limit).

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use domain::base::iana::Rtype;
use support::server::{Options, Server, example_zone};
use support::{Reply, q};

fn server(driver: &str, timeouts: &str) -> Server {
    let corefile = format!("example.test:{{PORT}} {{\n    bind 127.0.0.1\n{timeouts}\n    file {{DIR}}/zone\n}}\n");
    Server::start(Options::new(driver, &corefile).file("zone", example_zone()))
}

fn framed(name: &str) -> Vec<u8> {
    let m = q(name, Rtype::A).wire();
    let mut f = (m.len() as u16).to_be_bytes().to_vec();
    f.extend(m);
    f
}

/// Reads framed replies until the server closes or `wait` passes without a byte: the
/// replies, and whether the server closed.
fn read_all(c: &mut TcpStream, wait: Duration) -> (Vec<Reply>, bool) {
    c.set_read_timeout(Some(wait)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        match c.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break false,
            Err(_) => break true,
        }
    };
    let mut replies = Vec::new();
    let mut at = 0;
    while at + 2 <= buf.len() {
        let len = u16::from_be_bytes([buf[at], buf[at + 1]]) as usize;
        if at + 2 + len > buf.len() {
            break;
        }
        replies.push(Reply::parse(&buf[at + 2..at + 2 + len]));
        at += 2 + len;
    }
    (replies, closed)
}

// README: `timeouts { maxtcpqueries 128 }` closes a connection after it served that many.
both_drivers!(maxtcpqueries_closes_after_that_many_answers, |driver| {
    let s = server(driver, "    timeouts {\n        maxtcpqueries 3\n    }");
    let mut c = TcpStream::connect(s.addr).unwrap();
    let mut all = Vec::new();
    for _ in 0..5 {
        all.extend(framed("www.example.test"));
    }
    c.write_all(&all).unwrap();
    let (replies, closed) = read_all(&mut c, Duration::from_secs(5));
    assert_eq!(replies.len(), 3);
    assert!(closed, "the server closes after the third answer");
    assert!(replies.iter().all(|r| r.answer()[0].data == "192.0.2.10"));
    // Without the option (and with -1) all five are answered on one connection.
    for t in ["", "    timeouts {\n        maxtcpqueries -1\n    }"] {
        let s = server(driver, t);
        let mut c = TcpStream::connect(s.addr).unwrap();
        c.write_all(&all).unwrap();
        let (replies, closed) = read_all(&mut c, Duration::from_secs(2));
        assert_eq!((replies.len(), closed), (5, false), "{t:?}");
    }
});

/// Sends a query's first two octets, waits `gap`, then the rest: whether it is answered.
fn slow_message(s: &Server, gap: Duration) -> bool {
    let mut c = TcpStream::connect(s.addr).unwrap();
    let f = framed("www.example.test");
    c.write_all(&f[..2]).unwrap();
    std::thread::sleep(gap);
    if c.write_all(&f[2..]).is_err() {
        return false;
    }
    let (replies, _) = read_all(&mut c, Duration::from_secs(3));
    replies.len() == 1
}

// README: `timeouts { read 10s }` for slow links: a message may take that long to arrive.
// ringdns's default gives it 1 s from its first byte (a slow sender holds no connection).
both_drivers!(read_gives_a_slow_message_longer, |driver| {
    let s = server(driver, "    timeouts {\n        read 5s\n        write 20s\n    }");
    assert!(slow_message(&s, Duration::from_millis(2500)));
    let s = server(driver, "");
    assert!(!slow_message(&s, Duration::from_millis(2500)));
});

// `idle`: an idle connection is closed after it (default 10 s).
both_drivers!(idle_closes_a_quiet_connection, |driver| {
    let s = server(driver, "    timeouts {\n        idle 1s\n    }");
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(&framed("www.example.test")).unwrap();
    let (replies, closed) = read_all(&mut c, Duration::from_secs(6));
    assert_eq!((replies.len(), closed), (1, true));
    let s = server(driver, "");
    let mut c = TcpStream::connect(s.addr).unwrap();
    c.write_all(&framed("www.example.test")).unwrap();
    let (replies, closed) = read_all(&mut c, Duration::from_secs(3));
    assert_eq!((replies.len(), closed), (1, false));
});

// The options and their bounds, as CoreDNS checks them, with the file and line.
#[test]
fn check_refuses_bad_timeouts() {
    for (block, want) in [
        ("timeouts", "at least one of read, write, idle, maxtcpqueries"),
        ("timeouts {\n    }", "at least one of"),
        ("timeouts {\n        read 500ms\n    }", "between 1 second and 24 hours"),
        ("timeouts {\n        idle 25h\n    }", "between 1 second and 24 hours"),
        (
            "timeouts {\n        maxtcpqueries 0\n    }",
            "-1 (no limit) or a positive number",
        ),
        ("timeouts {\n        maxtcpqueries many\n    }", "not a number"),
        ("timeouts {\n        slow 1s\n    }", "unknown timeouts option"),
        ("timeouts {\n        read\n    }", "takes one value"),
        ("timeouts 5s", "takes no arguments"),
    ] {
        let err = support::server::check(&format!(". {{\n    {block}\n    whoami\n}}\n")).unwrap_err();
        assert!(err.contains(want) && err.contains("Corefile:"), "{block}: {err}");
    }
    // And one that is right is accepted.
    assert!(
        support::server::check(
            ". {\n    timeouts {\n        read 10s\n        maxtcpqueries -1\n    }\n    whoami\n}\n"
        )
        .is_ok()
    );
}
