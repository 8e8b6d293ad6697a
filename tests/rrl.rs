//! Black-box: response rate limiting (`rrl`, the CoreDNS plugin's syntax) on loopback. A
//! paced flood from one socket gets the allowance answered and every `slip-ratio`-th limited
//! reply truncated and empty; a truncated client gets its answer over TCP; TCP is never
//! limited; a valid DNS Cookie exempts a client and a client cookie alone earns BADCOOKIE
//! with a fresh server cookie; a random-subdomain flood is one account; forwarded replies
//! (from the upstream and from the cache) are limited too; `report-only` sends everything;
//! dnsperf at full speed under a generous limit loses nothing. Every server runs one shard:
//! a test's sockets have different ports, and SO_REUSEPORT would spread them over shards,
//! each of which keeps its own accounts. Forged sources are in `rrl_netns.rs`.

mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::server::{Options, Server};

const ZONE: &str =
    "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n";
/// RFC 9018 Appendix A's secret.
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
/// BADCOOKIE (RFC 7873 §8).
const BADCOOKIE: u16 = 23;

/// What a paced run of UDP queries from one socket got back.
#[derive(Debug, Default)]
struct Tally {
    /// Replies with TC clear and an rcode other than BADCOOKIE.
    full: usize,
    /// Replies with TC set.
    truncated: usize,
    /// BADCOOKIE replies.
    badcookie: usize,
    /// Queries without a reply.
    silent: usize,
    /// Every reply, by query.
    replies: Vec<Option<Vec<u8>>>,
    /// How long the sending took.
    took: Duration,
}

/// Sends `count` queries (`make(i)` for query `i`, whose ID must be `i`) from one socket at
/// `per_second`, and collects the replies until half a second after the last.
fn flood(addr: SocketAddr, count: u16, per_second: u32, make: impl Fn(u16) -> Vec<u8>) -> Tally {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(addr).unwrap();
    let rx = sock.try_clone().unwrap();
    rx.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop = done.clone();
    let collector = std::thread::spawn(move || {
        let mut got: Vec<Option<Vec<u8>>> = vec![None; usize::from(count)];
        let mut buf = [0u8; 4096];
        let mut quiet_since: Option<Instant> = None;
        loop {
            match rx.recv(&mut buf) {
                Ok(n) if n >= 12 => {
                    let id = u16::from_be_bytes([buf[0], buf[1]]);
                    if let Some(slot) = got.get_mut(usize::from(id)) {
                        *slot = Some(buf[..n].to_vec());
                    }
                    quiet_since = None;
                }
                _ => {
                    if stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let since = *quiet_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > Duration::from_millis(500) {
                            return got;
                        }
                    }
                }
            }
        }
    });
    let start = Instant::now();
    for i in 0..count {
        let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(per_second));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        sock.send(&make(i)).unwrap();
    }
    let took = start.elapsed();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let replies = collector.join().unwrap();
    let mut t = Tally {
        took,
        ..Tally::default()
    };
    for r in &replies {
        match r {
            None => t.silent += 1,
            Some(w) if w[2] & 0x02 != 0 => t.truncated += 1,
            Some(w) if support::Reply::parse(w).rcode() == BADCOOKIE => t.badcookie += 1,
            Some(_) => t.full += 1,
        }
    }
    t.replies = replies;
    t
}

/// The sum over shards of `ringdns_rrl_total{action}`.
fn rrl_total(metrics_port: u16, action: &str) -> u64 {
    let (_, text) = support::http_get(&format!("http://127.0.0.1:{metrics_port}/metrics"));
    text.lines()
        .filter(|l| l.starts_with("ringdns_rrl_total{") && l.contains(&format!("action=\"{action}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A one-shard server of example.test with `rrl { OPTIONS }` and metrics on `{PORT2}`.
fn server(driver: &str, rrl: &str, extra: &str) -> Server {
    Server::start(
        Options::new(
            driver,
            &format!(
                "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/db\n    prometheus 127.0.0.1:{{PORT2}}\n    rrl {{\n{rrl}\n    }}\n{extra}}}\n"
            ),
        )
        .file("db", ZONE)
        .arg("--shards")
        .arg("1"),
    )
}

fn www(id: u16) -> Vec<u8> {
    support::q("www.example.test", Rtype::A).id(id).wire()
}

/// The most replies an account of `per_second` may send in `took`: a second's burst, then
/// the allowance (and one for the clock's granularity).
fn allowance(per_second: f64, took: Duration) -> usize {
    (per_second * (1.0 + took.as_secs_f64())).ceil() as usize + 1
}

both_drivers!(
    a_flood_gets_the_allowance_and_every_second_limited_reply_slips,
    |driver| {
        let s = server(driver, "        responses-per-second 20\n        slip-ratio 2", "");
        let t = flood(s.addr, 300, 150, www);
        assert!(
            t.full >= 20 && t.full <= allowance(20.0, t.took),
            "answered {} of 300 in {:?}",
            t.full,
            t.took
        );
        // The limited ones: every second one slips, the others are dropped.
        let limited = 300 - t.full;
        assert!(
            t.truncated.abs_diff(t.silent) <= 1 && t.truncated + t.silent == limited,
            "{t:?}"
        );
        for w in t.replies.iter().flatten().filter(|w| w[2] & 0x02 != 0) {
            let r = support::Reply::parse(w);
            assert!(r.answer().is_empty() && r.authority().is_empty() && r.additional().is_empty());
            assert_eq!(r.msg.sole_question().unwrap().qtype(), Rtype::A, "the question stays");
        }
        assert_eq!(rrl_total(s.port2, "slipped"), t.truncated as u64);
        assert_eq!(rrl_total(s.port2, "dropped"), t.silent as u64);
        // The credit comes back with time.
        std::thread::sleep(Duration::from_millis(1100));
        let again = s.udp(&support::q("www.example.test", Rtype::A));
        assert!(!again.tc() && again.answer().len() == 1);
    }
);

both_drivers!(
    a_truncated_client_gets_its_answer_over_tcp_and_a_cookie_client_over_udp,
    |driver| {
        let s = server(driver, "        responses-per-second 1\n        slip-ratio 1", "");
        // Spend the prefix's credit (127.0.0.0/24 is one account whatever the port).
        let t = flood(s.addr, 10, 1000, www);
        assert!(t.truncated >= 8, "{t:?}");
        let out = support::server::dig(&s, &["+nocookie", "www.example.test", "A"]);
        assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
        assert!(out.contains("192.0.2.10"), "{out}");
        // dig sends a client cookie by default: the limited reply is BADCOOKIE with a server
        // cookie, and dig asks again over UDP with it, which is exempt.
        let out = support::server::dig(&s, &["www.example.test", "A"]);
        assert!(out.contains("BADCOOKIE, retrying"), "{out}");
        assert!(out.contains("192.0.2.10") && out.contains("(UDP)"), "{out}");
        // TCP itself is never limited.
        let mut c = s.connect();
        for id in 0..50u16 {
            support::server::write_frame(&mut c, &www(id));
            let r = support::Reply::parse(&support::server::read_frame(&mut c).expect("a TCP reply"));
            assert!(!r.tc() && r.answer().len() == 1);
        }
    }
);

/// The COOKIE option of a reply, if any.
fn reply_cookie(w: &[u8]) -> Option<Vec<u8>> {
    let (_, _, _, options) = support::Reply::parse(w).opt()?;
    options.into_iter().find(|(c, _)| *c == 10).map(|(_, d)| d)
}

both_drivers!(
    a_valid_cookie_is_exempt_and_a_client_cookie_alone_earns_badcookie,
    |driver| {
        let s = server(
            driver,
            "        responses-per-second 5\n        slip-ratio 1",
            &format!("    cookies {{\n        secret {SECRET}\n    }}\n"),
        );
        let client = [7u8; 8];
        let with = |cookie: &[u8]| {
            let cookie = cookie.to_vec();
            move |id: u16| {
                support::q("www.example.test", Rtype::A)
                    .id(id)
                    .edns(1232)
                    .option(10, &cookie)
                    .wire()
            }
        };
        let first = flood(s.addr, 1, 10, with(&client));
        let ours = reply_cookie(first.replies[0].as_ref().unwrap()).unwrap();
        assert_eq!((ours.len(), &ours[..8]), (24, &client[..]));
        // With the server cookie the source is proven: nothing is limited.
        let proven = flood(s.addr, 200, 400, with(&ours));
        assert_eq!((proven.full, proven.silent), (200, 0), "{proven:?}");
        // A client cookie alone is limited, and the limited replies are BADCOOKIE carrying a
        // fresh server cookie (RFC 7873 §5.2.3) instead of a truncated reply.
        let unproven = flood(s.addr, 30, 400, with(&client));
        assert!(unproven.full <= 5 && unproven.badcookie >= 25, "{unproven:?}");
        let bad = unproven
            .replies
            .iter()
            .flatten()
            .find(|w| support::Reply::parse(w).rcode() == BADCOOKIE)
            .unwrap();
        let fresh = reply_cookie(bad).expect("BADCOOKIE carries a cookie");
        assert_eq!((fresh.len(), &fresh[..8]), (24, &client[..]));
        assert!(support::Reply::parse(bad).answer().is_empty());
        // ... with which the client is answered at once.
        let retried = flood(s.addr, 1, 10, with(&fresh));
        assert_eq!(retried.full, 1, "{retried:?}");
        assert_eq!(rrl_total(s.port2, "badcookie"), unproven.badcookie as u64);
    }
);

both_drivers!(report_only_sends_every_reply_and_counts, |driver| {
    let s = server(driver, "        responses-per-second 5\n        report-only", "");
    let t = flood(s.addr, 100, 500, www);
    assert_eq!((t.full, t.silent), (100, 0), "{t:?}");
    let reported = rrl_total(s.port2, "reported");
    assert!((90..=95).contains(&reported), "{reported}");
});

both_drivers!(
    a_random_subdomain_flood_is_one_account_and_spares_real_names,
    |driver| {
        let s = server(driver, "        responses-per-second 10", "");
        let t = flood(s.addr, 150, 300, |id| {
            support::q(&format!("r{id}x.example.test"), Rtype::A).id(id).wire()
        });
        assert!(t.full >= 10 && t.full <= allowance(10.0, t.took), "{t:?}");
        let answered: Vec<_> = t.replies.iter().flatten().map(|w| support::Reply::parse(w)).collect();
        assert!(answered.iter().all(|r| r.rcode() == 3), "NXDOMAIN");
        // A name that exists is another account.
        let r = s.udp(&support::q("www.example.test", Rtype::A));
        assert!(!r.tc() && r.answer().len() == 1);
    }
);

both_drivers!(
    forwarded_replies_from_the_upstream_and_the_cache_are_limited,
    |driver| {
        let upstream = Server::start(
            Options::new(
                driver,
                "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/db\n}\n",
            )
            .file("db", ZONE),
        );
        let front = Server::start(
        Options::new(
            driver,
            &format!(
                "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{}\n    cache\n    prometheus 127.0.0.1:{{PORT2}}\n    rrl {{\n        responses-per-second 10\n    }}\n}}\n",
                upstream.port
            ),
        )
        .arg("--shards")
        .arg("1"),
    );
        // Unique names: every one goes upstream, and every NXDOMAIN is the zone's account.
        let misses = flood(front.addr, 100, 200, |id| {
            support::q(&format!("m{id}.example.test"), Rtype::A).id(id).wire()
        });
        assert!(
            misses.full >= 10 && misses.full <= allowance(10.0, misses.took),
            "{misses:?}"
        );
        // One name: the cache answers, and is limited the same.
        let hits = flood(front.addr, 100, 200, www);
        assert!(hits.full >= 10 && hits.full <= allowance(10.0, hits.took), "{hits:?}");
        assert_eq!(rrl_total(front.port2, "dropped"), (misses.silent + hits.silent) as u64);
    }
);

both_drivers!(dnsperf_at_full_speed_with_a_generous_limit_loses_nothing, |driver| {
    let s = server(driver, "        responses-per-second 10000000", "");
    let queries = s.dir.write(
        "queries",
        "www.example.test A\nns.example.test A\nexample.test SOA\nnope.example.test A\n",
    );
    let out = std::process::Command::new("dnsperf")
        .args([
            "-s",
            "127.0.0.1",
            "-p",
            &s.port.to_string(),
            "-l",
            "3",
            "-q",
            "100",
            "-d",
        ])
        .arg(&queries)
        .output()
        .expect("dnsperf (test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let sent = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Queries sent:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(sent > 1000, "{text}");
    assert!(text.contains("Queries lost:         0 "), "{text}");
    for action in ["dropped", "slipped", "request_dropped"] {
        assert_eq!(rrl_total(s.port2, action), 0, "{action}");
    }
});
