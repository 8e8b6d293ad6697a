//! Black-box: the "Wire format over UDP" and "EDNS" lines of ROBUSTNESS.md against the real
//! binary, under both drivers.

mod support;

use std::time::Duration;

use domain::base::iana::Rtype;
use support::server::{Options, Server, example_zone};
use support::{Reply, q};

const COREFILE: &str = "example.test:{PORT} hosts.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/example.test.zone example.test\n    hosts {DIR}/hosts hosts.test {\n        192.0.2.77 h1.hosts.test\n    }\n}\n";

fn server(driver: &str) -> Server {
    Server::start(
        Options::new(driver, COREFILE)
            .file("example.test.zone", example_zone())
            .file("hosts", "192.0.2.78 h2.hosts.test\n"),
    )
}

fn no_reply(s: &Server, wire: &[u8]) -> bool {
    s.udp_timeout(wire, Duration::from_millis(400)).is_none()
}

fn raw(s: &Server, wire: &[u8]) -> Reply {
    Reply::parse(&s.udp_timeout(wire, Duration::from_secs(2)).expect("a reply"))
}

both_drivers!(answers_with_question_echoed, |driver| {
    let s = server(driver);
    let r = s.udp(&q("wWw.eXample.TeSt", Rtype::A));
    assert_eq!((r.rcode(), r.aa()), (0, true));
    assert_eq!(r.question_wire(), support::name_wire("wWw.eXample.TeSt"));
    assert_eq!(r.answer()[0].data, "192.0.2.10");
    let r = s.udp(&q("h2.hosts.test", Rtype::A));
    assert_eq!(r.answer()[0].data, "192.0.2.78", "hosts file entry");
    let r = s.udp(&q("h1.hosts.test", Rtype::A));
    assert_eq!(r.answer()[0].data, "192.0.2.77", "inline entry");
    let r = s.udp(&q("nope.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.authority()[0].ttl), (3, 300));
    let r = s.udp(&q("elsewhere.org", Rtype::A));
    assert_eq!(r.rcode(), 5);
});

both_drivers!(short_and_response_datagrams_are_dropped_and_counted, |driver| {
    let s = server(driver);
    assert!(no_reply(&s, &[]));
    assert!(no_reply(&s, &[0u8; 11]));
    let mut resp = q("www.example.test", Rtype::A).wire();
    resp[2] |= 0x80;
    assert!(no_reply(&s, &resp));
    // Over the 4096 octets the UDP loop reads: cut by the kernel, so dropped.
    assert!(no_reply(
        &s,
        &q("www.example.test", Rtype::A)
            .edns(1232)
            .option(65001, &[7u8; 4200])
            .wire()
    ));
    assert!(
        s.wait_log("dropping malformed datagrams", Duration::from_secs(5)),
        "{}",
        s.log()
    );
    // Still serving.
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).rcode(), 0);
    let (_, log) = s.stop();
    assert!(log.contains("udp_dropped=4"), "{log}");
});

both_drivers!(malformed_queries_get_formerr, |driver| {
    let s = server(driver);
    let base = q("www.example.test", Rtype::A).id(99).wire();
    // QDCOUNT 0 and 2 (RFC 9619).
    for qd in [0u8, 2] {
        let mut m = base.clone();
        m[5] = qd;
        let r = raw(&s, &m);
        assert_eq!((r.rcode(), r.id(), r.qdcount()), (1, 99, 0), "qdcount {qd}");
    }
    // ARCOUNT larger than the records present.
    let mut m = base.clone();
    m[11] = 3;
    assert_eq!(raw(&s, &m).rcode(), 1);
    // Compression pointer loops and pointers past the end, label types 0x40/0x80.
    for name in [
        &[0xc0u8, 12][..],
        &[0xc0, 14, 0xc0, 12],
        &[0xc0, 0xff],
        &[0x40, 1, 0],
        &[0x80, 1, 0],
        &[3, b'w', b'w'],
    ] {
        let mut m = base[..12].to_vec();
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        assert_eq!(raw(&s, &m).rcode(), 1, "{name:?}");
    }
    // 128 labels: over 255 octets.
    let long = vec!["a"; 128].join(".");
    let mut m = base[..12].to_vec();
    for _ in 0..128 {
        m.extend_from_slice(b"\x01a");
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    assert_eq!(raw(&s, &m).rcode(), 1, "{}", long.len());
    // 127 labels is legal: REFUSED (outside our zones).
    let legal = vec!["a"; 127].join(".");
    assert_eq!(s.udp(&q(&legal, Rtype::A)).rcode(), 5);
    // Trailing bytes after the last record.
    let mut m = base.clone();
    m.extend_from_slice(&[0xde, 0xad]);
    let r = raw(&s, &m);
    assert_eq!((r.rcode(), r.qdcount()), (1, 1));
});

both_drivers!(large_query_is_answered, |driver| {
    let s = server(driver);
    let r = s.udp(&q("www.example.test", Rtype::A).edns(1232).option(65001, &[7u8; 3940]));
    assert_eq!(r.rcode(), 0);
    assert_eq!(r.answer().len(), 1);
});

both_drivers!(opcodes_classes_and_meta_types, |driver| {
    let s = server(driver);
    for op in [1u8, 2, 3, 6, 15] {
        let r = s.udp(&q("www.example.test", Rtype::A).opcode(op).id(0xabcd));
        assert_eq!((r.rcode(), r.id(), r.qdcount()), (4, 0xabcd, 1), "opcode {op}");
    }
    assert_eq!(s.udp(&q("example.test", Rtype::SOA).opcode(4)).rcode(), 5, "NOTIFY");
    assert_eq!(s.udp(&q("example.test", Rtype::SOA).opcode(5)).rcode(), 5, "UPDATE");
    assert_eq!(s.udp(&q("example.test", Rtype::AXFR)).rcode(), 5);
    assert_eq!(s.udp(&q("example.test", Rtype::IXFR)).rcode(), 5);
    assert_eq!(s.udp(&q("version.bind", Rtype::TXT).class(3)).rcode(), 5);
    assert_eq!(s.udp(&q("id.server", Rtype::TXT).class(3)).rcode(), 5);
    assert_eq!(s.udp(&q("www.example.test", Rtype::A).class(3)).rcode(), 5);
    assert_eq!(s.udp(&q("www.example.test", Rtype::A).class(255)).rcode(), 4);
    assert_eq!(s.udp(&q("www.example.test", Rtype::A).qtype_raw(0)).rcode(), 1);
    assert_eq!(s.udp(&q("www.example.test", Rtype::OPT)).rcode(), 1);
    assert_eq!(s.udp(&q("www.example.test", Rtype::MAILB)).rcode(), 4);
    // TC, Z, AD in a query: a normal answer with Z and AD clear.
    let r = s.udp(&q("www.example.test", Rtype::A).header_bits(0x02, 0x60));
    let h = r.msg.header();
    assert!(!h.z() && !h.ad() && !h.tc() && r.rcode() == 0 && r.answer().len() == 1);
    // ANY over UDP: one RRset (RFC 8482).
    assert_eq!(s.udp(&q("www.example.test", Rtype::ANY)).answer().len(), 1);
});

both_drivers!(edns_rules, |driver| {
    let s = server(driver);
    let r = s.udp(
        &q("www.example.test", Rtype::A)
            .edns(65535)
            .dnssec_ok()
            .option(3, b"")
            .option(65000, b"x"),
    );
    let (payload, version, dnssec_ok, options) = r.opt().unwrap();
    assert_eq!((payload, version, dnssec_ok), (1232, 0, true));
    assert!(
        options.is_empty(),
        "NSID not configured, unknown options not echoed: {options:?}"
    );
    assert_eq!(s.udp(&q("www.example.test", Rtype::A).edns(200)).opt().unwrap().0, 512);
    let r = s.udp(&q("www.example.test", Rtype::A).edns(1232).edns_version(1));
    assert_eq!((r.rcode(), r.opt().unwrap().1), (16, 0));
    // Unknown flags cleared.
    let r = s.udp(&q("www.example.test", Rtype::A).edns(1232).edns_flags(0x7fff));
    assert_eq!(r.opt_flags_raw(), Some(0));
    // Keepalive over UDP is not answered with one.
    let r = s.udp(&q("www.example.test", Rtype::A).edns(1232).option(11, b""));
    assert!(r.opt().unwrap().3.is_empty());
    // Two OPT records; OPT owner not root; truncated option; ECS prefix too long.
    let two = {
        let mut m = q("www.example.test", Rtype::A).edns(1232).wire();
        let opt = m[m.len() - 11..].to_vec();
        m.extend_from_slice(&opt);
        m[11] = 2;
        m
    };
    assert_eq!(raw(&s, &two).rcode(), 1);
    let owned = {
        let mut m = q("www.example.test", Rtype::A).edns(1232).wire();
        let at = m.len() - 11;
        m.splice(at..at + 1, [1u8, b'x', 0]);
        m
    };
    assert_eq!(raw(&s, &owned).rcode(), 1);
    assert_eq!(
        s.udp(
            &q("www.example.test", Rtype::A)
                .edns(1232)
                .option(8, &[0, 1, 33, 0, 1, 2, 3, 4, 5])
        )
        .rcode(),
        1
    );
    let mut cut = q("www.example.test", Rtype::A)
        .edns(1232)
        .option(10, &[1, 2, 3, 4, 5, 6, 7, 8])
        .wire();
    let n = cut.len();
    cut[n - 13] = 6; // OPT rdlen 12 → 6: the option claims 8 bytes, the record holds 2
    assert_eq!(raw(&s, &cut).rcode(), 1);
});

both_drivers!(truncation, |driver| {
    let s = server(driver);
    let r = raw(&s, &q("big.example.test", Rtype::TXT).wire());
    assert!(r.tc() && r.answer().is_empty() && r.wire.len() <= 512);
    let r = raw(&s, &q("big.example.test", Rtype::TXT).edns(4096).wire());
    assert!(r.tc() && r.answer().is_empty() && r.opt().is_some() && r.wire.len() <= 1232);
    let r = s.tcp(&q("big.example.test", Rtype::TXT).edns(4096));
    assert!(!r.tc());
    assert_eq!(r.answer().len(), 30);
});

// Issue 10.6, RFC 8945 §5.2.1: a request signed with a key we do not have is NOTAUTH with
// TSIG error BADKEY (unsigned), never an unsigned NOERROR; kdig and dig sign real requests.
both_drivers!(tsig_with_an_unknown_key_is_badkey, |driver| {
    let s = server(driver);
    for tcp in [false, true] {
        let mut kdig = std::process::Command::new("kdig");
        kdig.args(["@127.0.0.1", "-p", &s.port.to_string(), "+time=2", "+retry=0"])
            .args(["-y", "hmac-sha256:nobody.key:c2VjcmV0c2VjcmV0c2VjcmV0"])
            .args(["www.example.test", "A"]);
        if tcp {
            kdig.arg("+tcp");
        }
        let out = kdig.output().expect("kdig (test.sh installs knot-dnsutils)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("status: BADKEY") && text.contains("ANSWER: 0"),
            "tcp={tcp}: {text}"
        );
        assert!(
            !text.contains("192.0.2.10"),
            "no data for an unverified request: {text}"
        );
    }
    let out = std::process::Command::new("dig")
        .args(["@127.0.0.1", "-p", &s.port.to_string(), "+time=2", "+tries=1"])
        .args(["-y", "hmac-sha256:nobody.key:c2VjcmV0c2VjcmV0c2VjcmV0"])
        .args(["www.example.test", "A"])
        .output()
        .expect("dig (test.sh installs bind9-dnsutils)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("status: NOTAUTH") && text.contains("BADKEY"), "{text}");
    // On the wire: OPT then TSIG is NOTAUTH with an OPT and an unsigned TSIG, error BADKEY.
    let mut tsig = b"\x01k\x00\x00\xfa\x00\xff\x00\x00\x00\x00".to_vec();
    let rdata: Vec<u8> = [
        &b"\x0bhmac-sha256\x00"[..],
        &[0, 0, 0x5f, 0, 0, 0, 1, 44, 0, 0, 0x42, 0x42, 0, 0, 0, 0],
    ]
    .concat();
    tsig.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    tsig.extend_from_slice(&rdata);
    let opt = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
    let mut wire = q("www.example.test", Rtype::A).wire();
    wire[11] = 2;
    wire.extend_from_slice(&opt);
    wire.extend_from_slice(&tsig);
    let r = raw(&s, &wire);
    assert_eq!(r.rcode(), 9, "NOTAUTH");
    assert!(r.opt().is_some() && r.answer().is_empty());
    assert_eq!(u16::from_be_bytes([r.wire[10], r.wire[11]]), 2, "OPT and TSIG");
    let n = r.wire.len();
    assert_eq!(
        &r.wire[n - 6..],
        &[0x42, 0x42, 0, 17, 0, 0],
        "original ID, BADKEY, no other data"
    );
    // A TSIG that is not the last record: FORMERR (RFC 8945 §5.1).
    let mut wire = q("www.example.test", Rtype::A).wire();
    wire[11] = 2;
    wire.extend_from_slice(&tsig);
    wire.extend_from_slice(&opt);
    assert_eq!(raw(&s, &wire).rcode(), 1, "TSIG before the OPT");
});
