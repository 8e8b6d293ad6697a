//! Black-box: `rewrite`, against the examples of its CoreDNS README, on answers of the
//! block's own zones and on forwarded answers (from the upstream and from the cache), asked
//! with dig (which checks that the question it gets back is the one it sent) and with our
//! own client.

mod support;

use domain::base::iana::{Class, Rtype};
use support::server::{Options, Server, dig};
use support::{Reply, q};

/// The README's `consul` data: three addresses at ftp.service.us-west-1.consul, a CNAME, an
/// MX and an SRV whose targets are in the zone, and a PTR zone.
const CONSUL: &str = "$ORIGIN consul.\n$TTL 60\n@ IN SOA ns.consul. admin.consul. 1 3600 600 86400 60\n@ NS ns.consul.\nns A 192.0.2.53\nftp.service.us-west-1 A 10.10.10.10\nftp.service.us-west-1 A 10.20.20.20\nftp.service.us-west-1 A 10.30.30.30\nwww.service CNAME web.service\nweb.service A 192.0.2.80\nweb.service MX 10 mail.service\n_http._tcp.web.service SRV 0 5 80 web.service\nmail.service A 192.0.2.25\n";
const ARPA: &str = "$ORIGIN 10.in-addr.arpa.\n$TTL 60\n@ IN SOA ns.consul. admin.consul. 1 3600 600 86400 60\n@ NS ns.consul.\n30.30.30 PTR ftp-us-west-1.service.consul.\n";

/// The answer section of dig's reply, one `owner ttl class type data` line each, with the
/// tabs squeezed.
fn answers(out: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut inside = false;
    for l in out.lines() {
        if l.starts_with(";; ANSWER SECTION:") {
            inside = true;
        } else if inside && l.trim().is_empty() {
            break;
        } else if inside {
            lines.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    lines
}

/// A ringdns serving the consul zone, the upstream of forwarding tests.
fn consul(driver: &str) -> Server {
    let corefile = "consul:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/consul\n}\n";
    Server::start(Options::new(driver, corefile).file("consul", CONSUL))
}

/// A front server with `rules` in a `.` block that forwards to `up` (with a cache).
fn front(driver: &str, up: &Server, rules: &str) -> Server {
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n{rules}\n    forward . 127.0.0.1:{}\n    cache 30\n}}\n",
        up.port
    );
    Server::start(Options::new(driver, &corefile))
}

/// A server whose `.` block has `rules` and serves the consul and arpa zones itself.
fn own(driver: &str, rules: &str) -> Server {
    let corefile = format!(
        ".:{{PORT}} {{\n    bind 127.0.0.1\n{rules}\n    file {{DIR}}/consul consul\n    file {{DIR}}/arpa 10.in-addr.arpa\n}}\n"
    );
    Server::start(
        Options::new(driver, &corefile)
            .file("consul", CONSUL)
            .file("arpa", ARPA),
    )
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

// README, "Name Field Rewrites" and "Explicit Response Name Rewrite": the regex example, and
// with `answer name` the answers carry the client's name again. Forwarded, then cached.
both_drivers!(regex_name_with_answer_name, |driver| {
    let up = consul(driver);
    let rules = "    rewrite stop {\n        name regex (.*)-(us-west-1)\\.coredns\\.rocks {1}.service.{2}.consul\n        answer name (.*)\\.service\\.(us-west-1)\\.consul {1}-{2}.coredns.rocks\n    }";
    let s = front(driver, &up, rules);
    for round in ["upstream", "cache"] {
        let out = dig(&s, &["ftp-us-west-1.coredns.rocks", "A"]);
        assert!(out.contains("status: NOERROR"), "{round}: {out}");
        assert!(out.contains(";ftp-us-west-1.coredns.rocks.\tIN\tA"), "{round}: {out}");
        assert!(!out.contains("mismatch"), "{round}: {out}");
        let a = sorted(answers(&out));
        let want: Vec<String> = ["10.10.10.10", "10.20.20.20", "10.30.30.30"]
            .iter()
            .map(|ip| format!("ftp-us-west-1.coredns.rocks. IN A {ip}"))
            .collect();
        let got: Vec<String> = a.iter().map(|l| drop_ttl(l)).collect();
        assert_eq!(got, want, "{round}: {out}");
    }
    // A name the regex does not match is forwarded as it is: the upstream has no such zone
    // (it refuses; the forwarder answers SERVFAIL).
    let out = dig(&s, &["ftp-eu-west-1.coredns.rocks", "A"]);
    assert!(out.contains("status: SERVFAIL") && answers(&out).is_empty(), "{out}");
});

fn drop_ttl(line: &str) -> String {
    let w: Vec<&str> = line.split(' ').collect();
    let mut v = vec![w[0]];
    v.extend(&w[2..]);
    v.join(" ")
}

// README: without an answer rule the answer keeps the rewritten names (the "mismatch" the
// README shows), while the question is the client's.
both_drivers!(substring_without_answer_rules_keeps_the_new_names, |driver| {
    let up = consul(driver);
    let s = front(
        driver,
        &up,
        "    rewrite name substring service.us-west-1.example.org service.us-west-1.consul",
    );
    let r = s.udp(&q("ftp.Service.us-west-1.example.org", Rtype::A));
    assert_eq!(r.rcode(), 0);
    // The question exactly as the client wrote it, case included.
    assert_eq!(
        r.question_wire(),
        support::name_wire("ftp.Service.us-west-1.example.org")
    );
    let a = r.answer();
    assert_eq!(a.len(), 3, "{a:?}");
    assert!(a.iter().all(|x| x.owner == "ftp.service.us-west-1.consul"), "{a:?}");
});

// README, "Auto Response Name Rewrite": `name suffix .coredns.rocks .service.consul answer
// auto`; names and values are mapped back (CNAME target, MX exchange, SRV target, additional
// records), on the block's own zone data.
both_drivers!(suffix_answer_auto_maps_owners_and_values_back, |driver| {
    let s = own(
        driver,
        "    rewrite stop {\n        name suffix .coredns.rocks .service.consul answer auto\n    }",
    );
    let out = dig(&s, &["www.coredns.rocks", "A"]);
    assert!(
        out.contains("status: NOERROR") && support::dig_flags(&out).contains(" aa"),
        "{out}"
    );
    assert_eq!(
        answers(&out),
        [
            "www.coredns.rocks. 60 IN CNAME web.coredns.rocks.",
            "web.coredns.rocks. 60 IN A 192.0.2.80"
        ],
        "{out}"
    );
    let out = dig(&s, &["web.coredns.rocks", "MX"]);
    assert_eq!(
        answers(&out),
        ["web.coredns.rocks. 60 IN MX 10 mail.coredns.rocks."],
        "{out}"
    );
    let out = dig(&s, &["_http._tcp.web.coredns.rocks", "SRV"]);
    assert_eq!(
        answers(&out),
        ["_http._tcp.web.coredns.rocks. 60 IN SRV 0 5 80 web.coredns.rocks."],
        "{out}"
    );
    // NXDOMAIN keeps the zone's SOA (not below the rewritten suffix, so unchanged).
    let out = dig(&s, &["nope.coredns.rocks", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
    assert!(out.contains("consul.\t\t\t60\tIN\tSOA\tns.consul."), "{out}");
});

// README, "Rewriting other Response Values": the PTR example with `answer value`.
both_drivers!(answer_value_rewrites_a_ptr_target, |driver| {
    let s = own(
        driver,
        "    rewrite stop {\n        name suffix .arpa .arpa\n        answer name auto\n        answer value (.*)\\.service\\.consul\\. {1}.coredns.rocks.\n    }",
    );
    let out = dig(&s, &["-x", "10.30.30.30"]);
    assert_eq!(
        answers(&out),
        ["30.30.30.10.in-addr.arpa. 60 IN PTR ftp-us-west-1.coredns.rocks."],
        "{out}"
    );
});

// README: an exact rule always maps the answer back (`rewrite name exact RED BLUE`: the client
// sees only RED), forwarded and cached, over UDP and TCP.
both_drivers!(exact_rule_always_maps_the_answer_back, |driver| {
    let up = consul(driver);
    let s = front(driver, &up, "    rewrite name exact red.example. web.service.consul.");
    for round in 0..2 {
        for r in [s.udp(&q("Red.Example", Rtype::A)), s.tcp(&q("red.example", Rtype::A))] {
            assert_eq!(r.rcode(), 0, "{round}");
            let a = r.answer();
            assert_eq!(a.len(), 1, "{round}: {a:?}");
            // The owner points at the question, so it shows the client's case.
            assert!(a[0].owner.eq_ignore_ascii_case("red.example"), "{a:?}");
            assert_eq!(a[0].data, "192.0.2.80");
        }
    }
    let out = dig(&s, &["red.example", "A"]);
    assert!(!out.contains("mismatch") && !out.contains("consul"), "{out}");
});

// README, "TTL Field Rewrites": a fixed TTL and ranges.
both_drivers!(ttl_rules_set_and_clamp, |driver| {
    let up = consul(driver);
    let s = front(
        driver,
        &up,
        "    rewrite continue {\n        ttl regex (.*)\\.us-west-1\\.consul 15\n    }\n    rewrite ttl suffix .service.consul. 100-300",
    );
    let r = s.udp(&q("ftp.service.us-west-1.consul", Rtype::A));
    assert!(r.answer().iter().all(|x| x.ttl == 15), "{:?}", r.answer());
    // 60 is raised to the range's 100 (a cached answer counts down from there).
    let r = s.udp(&q("web.service.consul", Rtype::A));
    let a = r.answer();
    assert!(!a.is_empty() && a.iter().all(|x| (90..=100).contains(&x.ttl)), "{a:?}");
    // Names no rule matches keep their TTLs.
    let r = s.udp(&q("ns.consul", Rtype::A));
    assert!(r.answer().iter().all(|x| x.ttl <= 60 && x.ttl > 50), "{:?}", r.answer());
});

// README, "RCODE Field Rewrites", by name and by number.
both_drivers!(rcode_rules_replace_the_rcode, |driver| {
    let s = own(
        driver,
        "    rewrite continue {\n        rcode regex (.*)\\.nx\\.consul NXDOMAIN NOERROR\n    }\n    rewrite rcode suffix .gone.consul. 3 5",
    );
    let out = dig(&s, &["a.nx.consul", "A"]);
    assert!(out.contains("status: NOERROR"), "{out}");
    let out = dig(&s, &["a.gone.consul", "A"]);
    assert!(out.contains("status: REFUSED"), "{out}");
    let out = dig(&s, &["nope.consul", "A"]);
    assert!(out.contains("status: NXDOMAIN"), "{out}");
});

// `type` and `class`: the block answers the other type or class; the client gets its own
// question back.
both_drivers!(type_and_class_rules, |driver| {
    let s = own(driver, "    rewrite continue type AAAA A\n    rewrite class CH IN");
    let out = dig(&s, &["web.service.consul", "AAAA"]);
    assert!(out.contains(";web.service.consul.\t\tIN\tAAAA"), "{out}");
    assert_eq!(answers(&out), ["web.service.consul. 60 IN A 192.0.2.80"], "{out}");
    let r = s.udp(&q("web.service.consul", Rtype::A).class(Class::CH.to_int()));
    assert_eq!((r.rcode(), r.qclass()), (0, Class::CH));
    assert_eq!(r.answer()[0].data, "192.0.2.80");
    // Class HS has no rule: refused.
    let r = s.udp(&q("web.service.consul", Rtype::A).class(Class::HS.to_int()));
    assert_eq!(r.rcode(), 5);
});

// `continue` goes on to the next rule, `stop` (the default) does not; a name that is not a
// domain name after the rewrite is SERVFAIL, as CoreDNS answers.
both_drivers!(continue_stop_and_invalid_names, |driver| {
    let s = own(
        driver,
        "    rewrite continue name exact a.test. b.test.\n    rewrite name exact b.test. web.service.consul.\n    rewrite name exact c.test. ns.consul.\n    rewrite name regex ^x\\.(.*)$ {1}.\n    rewrite name exact stop.test. c.test.\n    rewrite name exact c.test. web.service.consul.",
    );
    let r = s.udp(&q("a.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer()[0].data.as_str()), (0, "192.0.2.80"));
    assert_eq!(r.answer()[0].owner, "a.test");
    // stop.test becomes c.test and stops there: c.test is no zone of the block (REFUSED).
    let r = s.udp(&q("stop.test", Rtype::A));
    assert_eq!(r.rcode(), 5);
    // x.y.test becomes "y.test.." (an empty label).
    let r = s.udp(&q("x.y.test", Rtype::A));
    assert_eq!(r.rcode(), 2);
});

// A reply that grows past the client's limit when its names are mapped back is truncated
// (TC=1) and comes whole over TCP.
both_drivers!(a_reply_that_grows_is_truncated, |driver| {
    let mut zone = String::from(
        "$ORIGIN s.test.\n$TTL 60\n@ IN SOA ns.s.test. admin.s.test. 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n",
    );
    for i in 0..20 {
        zone.push_str(&format!("m MX {i} h{i}\n"));
    }
    let corefile = ".:{PORT} {\n    bind 127.0.0.1\n    rewrite name suffix .a-very-much-longer-name-for-the-zone.test .s.test answer auto\n    file {DIR}/zone s.test\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", zone));
    let name = "m.a-very-much-longer-name-for-the-zone.test";
    let r = s.udp(&q(name, Rtype::MX));
    assert!(r.tc(), "{} octets", r.wire.len());
    assert!(r.wire.len() <= 512, "{}", r.wire.len());
    let r = s.tcp(&q(name, Rtype::MX));
    assert!(!r.tc());
    let a = r.answer();
    assert_eq!(a.len(), 20);
    assert!(
        a.iter()
            .all(|x| x.owner == name && x.data.ends_with(".a-very-much-longer-name-for-the-zone.test.")),
        "{a:?}"
    );
    let big = Reply::parse(&r.wire);
    assert_eq!(big.qdcount(), 1);
});

// Configuration errors name the file, line and the word at fault.
#[test]
fn check_refuses_bad_rules_at_their_line() {
    for (rule, want) in [
        (
            "rewrite edns0 local set 0xffee abcd",
            "rewrite edns0 is not available in ringdns",
        ),
        ("rewrite name regex ( x", "invalid regex"),
        ("rewrite ttl a. 9-1", "invalid TTL"),
    ] {
        let err = support::server::check(&format!(". {{\n    {rule}\n}}\n")).unwrap_err();
        assert!(err.contains(want) && err.contains("Corefile:2:"), "{rule}: {err}");
    }
}
