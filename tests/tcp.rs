//! Black-box: DNS over TCP (RFC 7766) and the plain-TCP lines of ROBUSTNESS.md, under both
//! drivers.

mod support;

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::server::{Options, Server, closed_within, connect_from, example_zone, read_frame, write_frame};
use support::{Reply, q};

const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/example.test.zone\n}\n";

/// The test zone plus a ~64 KB RRset (`huge`) and one that cannot fit 65535 octets.
fn zone() -> String {
    let mut z = example_zone();
    let txt = "x".repeat(250);
    for i in 0..240 {
        z.push_str(&format!("huge TXT \"{i:03}{txt}\"\n"));
    }
    for i in 0..300 {
        z.push_str(&format!("toobig TXT \"{i:03}{txt}\"\n"));
    }
    z
}

fn server(driver: &str, extra: &[&str]) -> Server {
    let mut o = Options::new(driver, COREFILE).file("example.test.zone", zone());
    for a in extra {
        o = o.arg(a);
    }
    Server::start(o)
}

both_drivers!(answers_and_keepalive, |driver| {
    let s = server(driver, &[]);
    let r = s.tcp(&q("www.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer().len()), (0, 1));
    let r = s.tcp(&q("www.example.test", Rtype::A).edns(1232).option(11, b""));
    assert_eq!(
        r.opt().unwrap().3,
        vec![(11, vec![0, 100])],
        "idle timeout 10 s in 100 ms units"
    );
    assert_eq!(s.tcp(&q("example.test", Rtype::AXFR)).rcode(), 5);
    assert!(s.tcp(&q("www.example.test", Rtype::ANY)).answer().len() >= 2);
});

both_drivers!(pipelined_queries_all_answered, |driver| {
    let s = server(driver, &[]);
    let mut c = s.connect();
    let mut batch = Vec::new();
    for (id, name) in [
        (1u16, "www.example.test"),
        (2, "mail.example.test"),
        (3, "nope.example.test"),
    ] {
        let w = q(name, Rtype::A).id(id).wire();
        batch.extend_from_slice(&(w.len() as u16).to_be_bytes());
        batch.extend_from_slice(&w);
    }
    c.write_all(&batch).unwrap();
    let mut ids: Vec<(u16, u16)> = (0..3)
        .map(|_| {
            let r = Reply::parse(&read_frame(&mut c).unwrap());
            (r.id(), r.rcode())
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec![(1, 0), (2, 0), (3, 3)]);
});

both_drivers!(ten_thousand_queries_on_one_connection, |driver| {
    let s = server(driver, &[]);
    let mut c = s.connect();
    let mut writer = c.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..10_000u16 {
            let w = q("www.example.test", Rtype::A).id(i).wire();
            buf.extend_from_slice(&(w.len() as u16).to_be_bytes());
            buf.extend_from_slice(&w);
        }
        writer.write_all(&buf).unwrap();
    });
    let mut seen = vec![false; 10_000];
    for _ in 0..10_000 {
        let r = Reply::parse(&read_frame(&mut c).expect("every query answered"));
        assert_eq!(r.rcode(), 0);
        seen[r.id() as usize] = true;
    }
    sender.join().unwrap();
    assert!(seen.iter().all(|s| *s));
});

both_drivers!(big_answers_whole_or_truncated, |driver| {
    let s = server(driver, &[]);
    let mut c = s.connect();
    write_frame(&mut c, &q("huge.example.test", Rtype::TXT).wire());
    let raw = read_frame(&mut c).unwrap();
    assert!(raw.len() > 60_000, "{}", raw.len());
    let r = Reply::parse(&raw);
    assert!(!r.tc());
    assert_eq!(r.answer().len(), 240);
    // Too big for any TCP message: TC, never a torn frame; the connection stays usable.
    write_frame(&mut c, &q("toobig.example.test", Rtype::TXT).wire());
    let r = Reply::parse(&read_frame(&mut c).unwrap());
    assert!(r.tc() && r.answer().is_empty());
    write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    assert_eq!(Reply::parse(&read_frame(&mut c).unwrap()).answer().len(), 1);
});

both_drivers!(silent_connection_closed_by_idle_timeout, |driver| {
    let s = server(driver, &[]);
    let mut c = s.connect();
    let t0 = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(13)));
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_secs(9), "closed too early: {waited:?}");
});

both_drivers!(stalled_messages_closed_within_io_timeout, |driver| {
    let s = server(driver, &[]);
    for partial in [&[0u8][..], &[0, 40, 0x12, 0x34, 1]] {
        let mut c = s.connect();
        c.write_all(partial).unwrap();
        let t0 = Instant::now();
        assert!(closed_within(&mut c, Duration::from_secs(4)), "{partial:?}");
        assert!(t0.elapsed() < Duration::from_secs(3), "{partial:?}: {:?}", t0.elapsed());
    }
});

both_drivers!(zero_length_prefix_closes_at_once, |driver| {
    let s = server(driver, &[]);
    let mut c = s.connect();
    c.write_all(&[0, 0]).unwrap();
    let t0 = Instant::now();
    assert!(closed_within(&mut c, Duration::from_secs(2)));
    assert!(t0.elapsed() < Duration::from_millis(900));
});

both_drivers!(client_that_stops_reading_is_dropped, |driver| {
    let s = server(driver, &[]);
    let mut c = stalled_reader(&s);
    // Do not read: the server's writes stall, its write timeout (5 s) fires, it closes.
    std::thread::sleep(Duration::from_secs(8));
    assert!(closed_within(&mut c, Duration::from_secs(10)));
    // Everyone else is served.
    assert_eq!(s.tcp(&q("www.example.test", Rtype::A)).rcode(), 0);
});

// A full shard makes room by closing its oldest idle connection (issue 10.3); a newcomer is
// refused only when every connection is busy.
both_drivers!(
    connection_cap_evicts_the_oldest_idle_and_refuses_when_all_are_busy,
    |driver| {
        let s = server(driver, &["--shards", "1", "--tcp-conns-per-shard", "4"]);
        let mut open: Vec<TcpStream> = Vec::new();
        for _ in 0..4 {
            let mut c = s.connect();
            write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
            assert!(read_frame(&mut c).is_some());
            open.push(c);
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut newcomer = s.connect();
        write_frame(&mut newcomer, &q("www.example.test", Rtype::A).wire());
        assert!(
            read_frame(&mut newcomer).is_some(),
            "a newcomer to a full shard is served"
        );
        assert!(
            closed_within(&mut open[0], Duration::from_secs(2)),
            "the oldest idle connection made room"
        );
        for c in open[1..].iter_mut() {
            write_frame(c, &q("mail.example.test", Rtype::A).wire());
            assert!(read_frame(c).is_some(), "the younger ones keep working");
        }
        drop(open);
        drop(newcomer);
        std::thread::sleep(Duration::from_millis(200));
        // Four connections busy writing answers nobody reads: none can be evicted.
        let busy: Vec<TcpStream> = (0..4).map(|_| stalled_reader(&s)).collect();
        std::thread::sleep(Duration::from_millis(300));
        let mut extra = s.connect();
        write_frame(&mut extra, &q("www.example.test", Rtype::A).wire());
        assert!(
            read_frame(&mut extra).is_none(),
            "all busy: the newcomer is closed unanswered"
        );
        drop(busy);
    }
);

both_drivers!(per_prefix_cap_leaves_other_prefixes_alone, |driver| {
    let s = server(driver, &["--shards", "1", "--tcp-conns-per-prefix", "2"]);
    let mut same: Vec<TcpStream> = (0..2).map(|_| connect_from("127.0.0.1:0", s.addr)).collect();
    for c in same.iter_mut() {
        write_frame(c, &q("www.example.test", Rtype::A).wire());
        assert!(read_frame(c).is_some());
    }
    let mut third = connect_from("127.0.0.9:0", s.addr);
    assert!(closed_within(&mut third, Duration::from_secs(2)), "same /24: refused");
    let mut other = connect_from("127.0.1.1:0", s.addr);
    write_frame(&mut other, &q("www.example.test", Rtype::A).wire());
    assert!(read_frame(&mut other).is_some(), "another /24 is served");
});

/// utime+stime of a process in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

both_drivers!(fd_exhaustion_backs_off, |driver| {
    let s = Server::start(
        Options::new(driver, COREFILE)
            .file("example.test.zone", zone())
            .arg("--shards")
            .arg("1")
            .shell("ulimit -n 48;"),
    );
    let conns: Vec<TcpStream> = (0..80).filter_map(|_| TcpStream::connect(s.addr).ok()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(s.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(s.pid()) - before;
    assert!(used < 50, "no busy loop while out of descriptors: {used} ticks in 2 s");
    assert!(
        s.log().contains("tcp accept failed"),
        "descriptors ran out: {}",
        s.log()
    );
    drop(conns);
    // Recovered: idle connections time out or close, and new ones are served.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = std::panic::catch_unwind(|| s.tcp(&q("www.example.test", Rtype::A)).rcode() == 0).unwrap_or(false);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "TCP did not recover; log:\n{}", s.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).rcode(), 0);
});

/// A connection that pipelines `huge` queries and never reads: busy writing for 5 s.
fn stalled_reader(s: &Server) -> TcpStream {
    let mut c = s.connect();
    let mut batch = Vec::new();
    for i in 0..300u16 {
        let w = q("huge.example.test", Rtype::TXT).id(i).wire();
        batch.extend_from_slice(&(w.len() as u16).to_be_bytes());
        batch.extend_from_slice(&w);
    }
    c.write_all(&batch).unwrap();
    c
}

// Issue 10.3: under pressure the idle limit drops to 1 s, for connections already waiting
// too, not only for those that start waiting afterwards.
both_drivers!(idle_timeout_shrinks_under_pressure, |driver| {
    let s = server(driver, &["--shards", "1", "--tcp-conns-per-shard", "8"]);
    let mut early = s.connect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(300));
    // Six of eight slots in use (five of them busy): at three quarters the pressure begins.
    let _busy: Vec<TcpStream> = (0..5).map(|_| stalled_reader(&s)).collect();
    assert!(closed_within(&mut early, Duration::from_secs(5)));
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "open before: closed after {:?}",
        t0.elapsed()
    );
    let mut idle = s.connect();
    let t1 = Instant::now();
    assert!(closed_within(&mut idle, Duration::from_secs(5)));
    assert!(t1.elapsed() < Duration::from_secs(3), "closed after {:?}", t1.elapsed());
});

both_drivers!(ipv6_listener, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1 ::1\n    file {DIR}/example.test.zone\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("example.test.zone", zone()));
    let v6: SocketAddr = format!("[::1]:{}", s.port).parse().unwrap();
    let u = std::net::UdpSocket::bind("[::1]:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    u.send_to(&q("www.example.test", Rtype::AAAA).wire(), v6).unwrap();
    let mut buf = [0u8; 512];
    let n = u.recv(&mut buf).expect("UDP over IPv6");
    assert_eq!(Reply::parse(&buf[..n]).answer()[0].data, "2001:db8::10");
    let mut c = TcpStream::connect(v6).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    write_frame(&mut c, &q("www.example.test", Rtype::A).wire());
    assert_eq!(
        Reply::parse(&read_frame(&mut c).unwrap()).answer()[0].data,
        "192.0.2.10"
    );
});
