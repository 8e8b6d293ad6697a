//! Scenario suite through `dns::answer`: every authoritative rule of the issue, without
//! sockets. Black-box suites repeat the important ones over real sockets.

mod support;

use std::path::Path;

use domain::base::iana::Rtype;
use ringdns::config::Transport;
use ringdns::config::{self, LoadOptions};
use ringdns::control::{build, data::DataSet};
use ringdns::dns::pipeline::{ListenerKey, Snapshot};
use ringdns::dns::{Ctx, Outcome, Scratch, answer};
use ringdns::zone::challenge::{ChallengeSet, challenge_name};
use support::{Query, Reply, data, q};

struct World {
    snap: Snapshot,
    key: ListenerKey,
    challenges: Option<ChallengeSet>,
    encrypted: bool,
}

fn world() -> World {
    world_from(&format!(
        "example.test:1053 hosts.test:1053 2.0.192.in-addr.arpa:1053 {{\n bind 127.0.0.1\n file {zone} example.test\n hosts {none} hosts.test 2.0.192.in-addr.arpa {{\n  192.0.2.77 h1.hosts.test\n  2001:db8::77 h1.hosts.test\n  192.0.2.78 h2.hosts.test\n  ttl 120\n }}\n}}\nft.test:1053 {{\n bind 127.0.0.1\n hosts {none} {{\n  192.0.2.90 known.ft.test\n  fallthrough\n }}\n}}\n",
        zone = data("example.test.zone").display(),
        none = data("no-such-hosts-file").display(),
    ))
}

fn world_from(corefile: &str) -> World {
    let cfg = config::parse(corefile, Path::new("Corefile"), LoadOptions::default()).unwrap();
    let data = DataSet::load(&cfg, None).unwrap();
    let snap = build::snapshot(&cfg, &data, &Default::default(), 1, None);
    let key = snap.listeners[0].0;
    World {
        snap,
        key,
        challenges: None,
        encrypted: false,
    }
}

impl World {
    fn ask(&self, query: &Query, transport: Transport) -> Reply {
        let wire = query.wire();
        match self.ask_raw(&wire, transport) {
            Some(r) => r,
            None => panic!("no reply to {query:?}"),
        }
    }

    fn ask_raw(&self, wire: &[u8], transport: Transport) -> Option<Reply> {
        let ctx = Ctx {
            route: self.snap.route(&self.key),
            // Streams are DoT in worlds that are `encrypted`.
            transport: match transport {
                Transport::Tcp if self.encrypted => Transport::Tls,
                t => t,
            },
            challenges: self.challenges.as_ref(),
            client: None,
        };
        let mut out = Vec::new();
        let mut scratch = Scratch::new();
        match answer(&ctx, wire, &mut scratch, &mut out) {
            Outcome::Drop(_) => None,
            Outcome::Forward(_) => panic!("scenarios have no forward"),
            Outcome::Transfer { .. } => panic!("scenarios ask no transfer over UDP"),
            Outcome::Update(_) => panic!("scenarios send no update"),
            Outcome::Reply { .. } => Some(Reply::parse(&out)),
        }
    }

    fn udp(&self, query: Query) -> Reply {
        self.ask(&query, Transport::Udp)
    }

    fn tcp(&self, query: Query) -> Reply {
        self.ask(&query, Transport::Tcp)
    }
}

const NOERROR: u16 = 0;
const FORMERR: u16 = 1;
const SERVFAIL: u16 = 2;
const NXDOMAIN: u16 = 3;
const NOTIMP: u16 = 4;
const REFUSED: u16 = 5;
const BADVERS: u16 = 16;

fn datas(rrs: &[support::Rr]) -> Vec<String> {
    rrs.iter().map(|r| r.data.clone()).collect()
}

#[test]
fn positive_answer_is_authoritative_and_echoes_question() {
    let w = world();
    let r = w.udp(q("wWw.ExAmple.TEST", Rtype::A));
    assert_eq!(r.rcode(), NOERROR);
    assert!(r.aa() && r.qr() && !r.tc());
    assert_eq!(r.id(), 0x4242);
    assert_eq!(r.question_wire(), support::name_wire("wWw.ExAmple.TEST"));
    let ans = r.answer();
    assert_eq!(ans.len(), 1);
    assert_eq!(
        (ans[0].rtype, ans[0].ttl, ans[0].data.as_str()),
        (Rtype::A, 3600, "192.0.2.10")
    );
    // The owner compresses to the question, so the client's case comes back.
    assert_eq!(ans[0].owner, "wWw.ExAmple.TEST");
    assert!(r.authority().is_empty());
}

#[test]
fn nxdomain_carries_soa_with_negative_ttl() {
    let w = world();
    for name in ["nope.example.test", "deeper.nope.example.test"] {
        let r = w.udp(q(name, Rtype::A));
        assert_eq!(r.rcode(), NXDOMAIN, "{name}");
        assert!(r.aa());
        let auth = r.authority();
        assert_eq!(auth.len(), 1);
        assert_eq!(auth[0].rtype, Rtype::SOA);
        assert_eq!(auth[0].owner, "example.test");
        // min(SOA TTL 3600, minimum 300) (RFC 2308 §3).
        assert_eq!(auth[0].ttl, 300);
    }
}

#[test]
fn nodata_and_empty_non_terminals() {
    let w = world();
    for (name, t) in [
        ("www.example.test", Rtype::TXT),
        ("b.ent.example.test", Rtype::A),
        ("ent.example.test", Rtype::AAAA),
    ] {
        let r = w.udp(q(name, t));
        assert_eq!(r.rcode(), NOERROR, "{name}");
        assert!(r.aa() && r.answer().is_empty(), "{name}");
        assert_eq!(r.authority()[0].rtype, Rtype::SOA, "{name}");
        assert_eq!(r.authority()[0].ttl, 300);
    }
}

#[test]
fn cname_chains_inside_the_zone() {
    let w = world();
    let r = w.udp(q("chain1.example.test", Rtype::A));
    assert_eq!(r.rcode(), NOERROR);
    let a = r.answer();
    let types: Vec<_> = a.iter().map(|r| r.rtype).collect();
    assert_eq!(types, vec![Rtype::CNAME, Rtype::CNAME, Rtype::A]);
    assert_eq!(a[1].owner, "chain2.example.test");
    assert_eq!(a[2].owner, "www.example.test");

    // Querying the CNAME itself returns only it.
    let r = w.udp(q("alias.example.test", Rtype::CNAME));
    assert_eq!(datas(&r.answer()), vec!["www.example.test."]);

    // A chain ending in a missing name: NXDOMAIN for the last name (RFC 6604).
    let r = w.udp(q("dangling.example.test", Rtype::A));
    assert_eq!(r.rcode(), NXDOMAIN);
    assert_eq!(r.answer().len(), 1);
    assert_eq!(r.authority()[0].rtype, Rtype::SOA);

    // Leaving the zone: the CNAME alone.
    let r = w.udp(q("external.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 1));

    // A loop ends after the chain limit, without failing.
    let r = w.udp(q("loop1.example.test", Rtype::A));
    assert_eq!(r.rcode(), NOERROR);
    assert!(r.answer().len() <= 9 && !r.answer().is_empty());

    // A CNAME chain to a name without the type: NODATA with SOA.
    let r = w.udp(q("alias.example.test", Rtype::TXT));
    assert_eq!(r.answer().len(), 1);
    assert_eq!(r.authority()[0].rtype, Rtype::SOA);
}

#[test]
fn wildcards_synthesise_the_query_name() {
    let w = world();
    for name in ["foo.wild.example.test", "a.b.wild.example.test"] {
        let r = w.udp(q(name, Rtype::A));
        assert_eq!(r.rcode(), NOERROR);
        let a = r.answer();
        assert_eq!((a[0].owner.as_str(), a[0].data.as_str()), (name, "192.0.2.30"));
        assert!(r.aa());
    }
    // Wildcard NODATA.
    let r = w.udp(q("foo.wild.example.test", Rtype::AAAA));
    assert_eq!(
        (r.rcode(), r.answer().len(), r.authority()[0].rtype),
        (NOERROR, 0, Rtype::SOA)
    );
    // The wildcard's parent is an empty non-terminal, not a wildcard match.
    let r = w.udp(q("wild.example.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 0));
}

#[test]
fn referral_below_a_delegation() {
    let w = world();
    for name in ["sub.example.test", "host.sub.example.test", "ns.sub.example.test"] {
        let r = w.udp(q(name, Rtype::A));
        assert_eq!(r.rcode(), NOERROR, "{name}");
        assert!(!r.aa(), "{name}: referrals are not authoritative");
        assert!(r.answer().is_empty());
        let auth = r.authority();
        assert_eq!(auth.len(), 2);
        assert!(
            auth.iter()
                .all(|a| a.rtype == Rtype::NS && a.owner == "sub.example.test")
        );
        let add = r.additional();
        assert_eq!(add.len(), 1, "{name}: glue for ns.sub only");
        assert_eq!(
            (add[0].owner.as_str(), add[0].data.as_str()),
            ("ns.sub.example.test", "192.0.2.50")
        );
    }
    // DS is answered from the parent side of the cut.
    let r = w.udp(q("sub.example.test", Rtype::DS));
    assert!(r.aa());
    assert_eq!(r.authority()[0].rtype, Rtype::SOA);
}

#[test]
fn additional_section_processing() {
    let w = world();
    let r = w.udp(q("example.test", Rtype::MX));
    assert_eq!(datas(&r.answer()), vec!["10 mail.example.test."]);
    assert_eq!(datas(&r.additional()), vec!["192.0.2.20"]);
    let r = w.udp(q("example.test", Rtype::NS));
    assert_eq!(r.answer().len(), 2);
    let mut add = datas(&r.additional());
    add.sort();
    assert_eq!(add, vec!["192.0.2.1", "192.0.2.2", "2001:db8::2"]);
    let r = w.udp(q("_sip._tcp.example.test", Rtype::SRV));
    assert_eq!(r.additional().len(), 2);
}

#[test]
fn names_outside_every_zone_are_refused() {
    let w = world();
    let r = w.udp(q("www.other.org", Rtype::A));
    assert_eq!(r.rcode(), REFUSED);
    assert!(!r.aa() && r.answer().is_empty());
    // A legal 127-label name outside the zones: REFUSED, not an error.
    let long = vec!["a"; 127].join(".");
    let r = w.udp(q(&long, Rtype::A));
    assert_eq!(r.rcode(), REFUSED);
}

#[test]
fn truncation_over_udp_and_complete_over_tcp() {
    let w = world();
    let r = w.udp(q("big.example.test", Rtype::TXT));
    assert!(r.tc());
    assert!(r.answer().is_empty());
    assert!(r.wire.len() <= 512);
    // With EDNS the limit is min(client, 1232); still too big, OPT present.
    let r = w.udp(q("big.example.test", Rtype::TXT).edns(4096));
    assert!(r.tc() && r.answer().is_empty() && r.opt().is_some());
    assert!(r.wire.len() <= 1232);
    let r = w.tcp(q("big.example.test", Rtype::TXT));
    assert!(!r.tc());
    assert_eq!(r.answer().len(), 30);
    assert!(r.wire.len() > 3000);
}

#[test]
fn edns_payload_do_and_unknown_bits() {
    let w = world();
    let r = w.udp(q("www.example.test", Rtype::A).edns(4096));
    assert_eq!(r.opt().unwrap().0, 1232);
    let r = w.udp(q("www.example.test", Rtype::A).edns(800));
    assert_eq!(r.opt().unwrap().0, 800);
    let r = w.udp(q("www.example.test", Rtype::A).edns(100));
    assert_eq!(r.opt().unwrap().0, 512);
    // DO echoed; unknown flag bits cleared; unknown options and NSID not echoed.
    let r = w.udp(
        q("www.example.test", Rtype::A)
            .edns(1232)
            .edns_flags(0x8000 | 0x0123)
            .option(65001, b"xyz")
            .option(3, b""),
    );
    assert_eq!(r.opt_flags_raw(), Some(0x8000));
    let (_, version, dnssec_ok, options) = r.opt().unwrap();
    assert_eq!((version, dnssec_ok), (0, true));
    assert!(options.is_empty(), "{options:?}");
    // No OPT in, no OPT out.
    assert!(w.udp(q("www.example.test", Rtype::A)).opt().is_none());
}

#[test]
fn edns_version_above_zero_is_badvers() {
    let w = world();
    let r = w.udp(q("www.example.test", Rtype::A).edns(1232).edns_version(1));
    assert_eq!(r.rcode(), BADVERS);
    assert_eq!(r.opt().unwrap().1, 0);
    assert!(r.answer().is_empty());
}

#[test]
fn tcp_keepalive_only_over_streams() {
    let w = world();
    let ask = || q("www.example.test", Rtype::A).edns(1232).option(11, b"");
    let r = w.tcp(ask());
    assert_eq!(r.opt().unwrap().3, vec![(11, vec![0, 100])]);
    let r = w.udp(ask());
    assert!(r.opt().unwrap().3.is_empty());
    // A value in a query's keepalive option is a FORMERR (RFC 7828 §3.2.1).
    let r = w.tcp(q("www.example.test", Rtype::A).edns(1232).option(11, &[0, 5]));
    assert_eq!(r.rcode(), FORMERR);
}

#[test]
fn any_is_minimal_over_udp() {
    let w = world();
    let r = w.udp(q("www.example.test", Rtype::ANY));
    assert_eq!(r.answer().len(), 1);
    let r = w.tcp(q("www.example.test", Rtype::ANY));
    assert_eq!(r.answer().len(), 2);
    let r = w.tcp(q("example.test", Rtype::ANY));
    assert!(r.answer().len() >= 4);
}

#[test]
fn fixed_rcodes_for_classes_types_and_opcodes() {
    let w = world();
    assert_eq!(w.udp(q("www.example.test", Rtype::A).class(3)).rcode(), REFUSED, "CH");
    assert_eq!(w.udp(q("version.bind", Rtype::TXT).class(3)).rcode(), REFUSED);
    assert_eq!(
        w.udp(q("www.example.test", Rtype::A).class(255)).rcode(),
        NOTIMP,
        "class ANY"
    );
    assert_eq!(w.udp(q("www.example.test", Rtype::A).qtype_raw(0)).rcode(), FORMERR);
    assert_eq!(w.udp(q("www.example.test", Rtype::OPT)).rcode(), FORMERR);
    assert_eq!(w.udp(q("www.example.test", Rtype::MAILA)).rcode(), NOTIMP);
    assert_eq!(w.udp(q("www.example.test", Rtype::MAILB)).rcode(), NOTIMP);
    assert_eq!(w.udp(q("example.test", Rtype::AXFR)).rcode(), REFUSED);
    assert_eq!(w.tcp(q("example.test", Rtype::AXFR)).rcode(), REFUSED);
    assert_eq!(w.udp(q("example.test", Rtype::IXFR)).rcode(), REFUSED);
    for op in [1u8, 2, 3, 6, 7, 15] {
        let r = w.udp(q("www.example.test", Rtype::A).opcode(op).id(0x1111));
        assert_eq!((r.rcode(), r.id()), (NOTIMP, 0x1111), "opcode {op}");
        assert_eq!(r.question_wire(), support::name_wire("www.example.test"));
    }
    for op in [4u8, 5] {
        assert_eq!(
            w.udp(q("example.test", Rtype::SOA).opcode(op)).rcode(),
            REFUSED,
            "opcode {op}"
        );
    }
}

#[test]
fn header_bits_in_queries() {
    let w = world();
    // TC, Z and AD set in the query; CD set: normal answer, Z and AD clear, CD and RD copied.
    let r = w.udp(q("www.example.test", Rtype::A).header_bits(0x02, 0x40 | 0x20 | 0x10));
    assert_eq!(r.rcode(), NOERROR);
    let h = r.msg.header();
    assert!(!h.tc() && !h.z() && !h.ad() && h.cd() && h.rd() && !h.ra());
    assert_eq!(r.answer().len(), 1);
}

#[test]
fn malformed_queries() {
    let w = world();
    assert!(w.ask_raw(&[], Transport::Udp).is_none());
    assert!(w.ask_raw(&[0u8; 11], Transport::Udp).is_none());
    let mut response = q("www.example.test", Rtype::A).wire();
    response[2] |= 0x80;
    assert!(w.ask_raw(&response, Transport::Udp).is_none());
    let mut two = q("www.example.test", Rtype::A).wire();
    two[5] = 2;
    let r = w.ask_raw(&two, Transport::Udp).unwrap();
    assert_eq!((r.rcode(), r.qdcount()), (FORMERR, 0));
    // A 4000-byte query (padding in an unknown EDNS option) is answered.
    let r = w.udp(q("www.example.test", Rtype::A).edns(1232).option(65002, &[0u8; 3900]));
    assert_eq!(r.rcode(), NOERROR);
    // FORMERR keeps the ID and, when the question parsed, the question.
    let mut trailing = q("www.example.test", Rtype::A).id(7).wire();
    trailing.push(0);
    let r = w.ask_raw(&trailing, Transport::Udp).unwrap();
    assert_eq!((r.rcode(), r.id(), r.qdcount()), (FORMERR, 7, 1));
}

#[test]
fn hosts_answers_and_reverse() {
    let w = world();
    let r = w.udp(q("h1.hosts.test", Rtype::A));
    assert_eq!((r.rcode(), r.aa()), (NOERROR, true));
    assert_eq!(r.answer()[0].ttl, 120);
    assert_eq!(datas(&r.answer()), vec!["192.0.2.77"]);
    let r = w.udp(q("h1.hosts.test", Rtype::AAAA));
    assert_eq!(datas(&r.answer()), vec!["2001:db8::77"]);
    // Name without that type: NODATA with the synthesised SOA.
    let r = w.udp(q("h2.hosts.test", Rtype::AAAA));
    assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 0));
    assert_eq!(r.authority()[0].rtype, Rtype::SOA);
    assert_eq!(r.authority()[0].ttl, 120);
    // Unknown name: NXDOMAIN with SOA.
    let r = w.udp(q("nobody.hosts.test", Rtype::A));
    assert_eq!(r.rcode(), NXDOMAIN);
    assert_eq!(r.authority()[0].owner, "hosts.test");
    // PTR synthesis.
    let r = w.udp(q("77.2.0.192.in-addr.arpa", Rtype::PTR));
    assert_eq!(datas(&r.answer()), vec!["h1.hosts.test."]);
}

#[test]
fn hosts_fallthrough_without_next_handler_is_refused() {
    let w = world();
    let r = w.udp(q("known.ft.test", Rtype::A));
    assert_eq!(datas(&r.answer()), vec!["192.0.2.90"]);
    let r = w.udp(q("unknown.ft.test", Rtype::A));
    assert_eq!(r.rcode(), REFUSED);
    let _ = SERVFAIL;
}

#[test]
fn caa_for_names_is_noerror() {
    let w = world();
    let r = w.udp(q("caa.example.test", Rtype::CAA));
    assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 1));
    let r = w.udp(q("www.example.test", Rtype::CAA));
    assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 0));
}

#[test]
fn signatures_only_with_do() {
    let w = world_from(&format!(
        "signed.test:1053 {{\n bind 127.0.0.1\n file {}\n}}\n",
        data("signed.test.zone").display()
    ));
    let r = w.udp(q("www.signed.test", Rtype::A));
    assert_eq!(r.answer().len(), 1, "no RRSIG without DO");
    let r = w.udp(q("www.signed.test", Rtype::A).edns(1232).dnssec_ok());
    let types: Vec<_> = r.answer().iter().map(|a| a.rtype).collect();
    assert_eq!(types, vec![Rtype::A, Rtype::RRSIG]);
    assert!(
        r.answer()[1].data.starts_with("A 13 3 3600"),
        "only the RRSIG covering A: {:?}",
        r.answer()
    );
    // Negative answers carry the SOA's signature with DO.
    let r = w.udp(q("www.signed.test", Rtype::TXT).edns(1232).dnssec_ok());
    let types: Vec<_> = r.authority().iter().map(|a| (a.rtype, a.ttl)).collect();
    assert_eq!(types, vec![(Rtype::SOA, 300), (Rtype::RRSIG, 300)]);
    let r = w.udp(q("www.signed.test", Rtype::TXT).edns(1232));
    assert_eq!(r.authority().len(), 1);
}

#[test]
fn hosts_fallthrough_reaches_the_zone_file_and_no_reverse() {
    let w = world_from(&format!(
        "example.test:1053 {{\n bind 127.0.0.1\n file {zone}\n hosts {none} {{\n  192.0.2.99 override.example.test\n  192.0.2.98 www.example.test\n  no_reverse\n  fallthrough\n }}\n}}\n",
        zone = data("example.test.zone").display(),
        none = data("no-such-hosts-file").display(),
    ));
    // hosts runs first (CoreDNS plugin order) and wins where it has the name.
    assert_eq!(
        datas(&w.udp(q("www.example.test", Rtype::A)).answer()),
        vec!["192.0.2.98"]
    );
    assert_eq!(
        datas(&w.udp(q("override.example.test", Rtype::A)).answer()),
        vec!["192.0.2.99"]
    );
    // Names hosts lacks fall through to the zone file.
    assert_eq!(
        datas(&w.udp(q("mail.example.test", Rtype::A)).answer()),
        vec!["192.0.2.20"]
    );
    let r = w.udp(q("nope.example.test", Rtype::A));
    assert_eq!(
        (r.rcode(), r.authority()[0].ttl),
        (NXDOMAIN, 300),
        "the zone's own NXDOMAIN"
    );
    // no_reverse: no PTR was synthesised, so nothing claims the reverse name.
    assert_eq!(w.udp(q("99.2.0.192.in-addr.arpa", Rtype::PTR)).rcode(), REFUSED);
}

#[test]
fn challenge_values_come_first() {
    let mut w = world();
    let name = challenge_name("*.example.test").unwrap();
    let values = [
        "LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0".to_string(),
        "9ihDbjxTlg6-tFYUTVzQDe2ZNTxAx-UYNTF0q3ZmfJA".to_string(),
    ];
    w.challenges = Some(ChallengeSet::new(1, [(&name, &values[..])]));
    // Without EDNS, as the test CA asks: both values, AA, TTL 0, under 512 octets.
    let r = w.udp(q("_ACME-challenge.example.test", Rtype::TXT));
    assert_eq!((r.rcode(), r.aa(), r.tc()), (NOERROR, true, false));
    let mut got = datas(&r.answer());
    got.sort();
    assert_eq!(got, vec![format!("\"{}\"", values[1]), format!("\"{}\"", values[0])]);
    assert!(r.answer().iter().all(|a| a.ttl == 0));
    assert!(r.wire.len() < 512);
    // Other types at that name, and names outside the listener's zones, are not overlaid.
    assert_eq!(w.udp(q("_acme-challenge.example.test", Rtype::A)).rcode(), NXDOMAIN);
    let other = challenge_name("other.org").unwrap();
    w.challenges = Some(ChallengeSet::new(2, [(&other, &values[..1])]));
    assert_eq!(w.udp(q("_acme-challenge.other.org", Rtype::TXT)).rcode(), REFUSED);
}

#[test]
fn padding_only_over_encrypted_transports() {
    let mut w = world();
    let padded = || q("www.example.test", Rtype::A).edns(1232).option(12, &[]);
    // Plain TCP and UDP: never padded (RFC 8467 §4).
    assert!(w.tcp(padded()).opt().unwrap().3.is_empty());
    assert!(w.udp(padded()).opt().unwrap().3.is_empty());
    w.encrypted = true;
    for query in [
        padded(),
        q("big.example.test", Rtype::TXT).edns(1232).option(12, &[0; 8]),
    ] {
        let r = w.tcp(query);
        assert_eq!(r.wire.len() % 468, 0, "padded to a 468-octet block: {}", r.wire.len());
        assert!(
            r.opt()
                .unwrap()
                .3
                .iter()
                .any(|(code, data)| *code == 12 && data.iter().all(|b| *b == 0))
        );
    }
    // No Padding option in the query: none in the reply.
    assert!(
        w.tcp(q("www.example.test", Rtype::A).edns(1232))
            .opt()
            .unwrap()
            .3
            .is_empty()
    );
}

// Issue 11 B.7 (RFC 4035 §3.1.4): a referral carries the DS with DO=1 only when it has its
// RRSIG, i.e. from a signed zone; an unsigned zone's referral is NS and glue.
#[test]
fn ds_in_referrals_only_with_its_signature() {
    let w = world_from(&format!(
        "signed.test:1053 unsigned.test:1053 {{\n bind 127.0.0.1\n file {} signed.test\n file {} unsigned.test\n}}\n",
        data("signed.test.zone").display(),
        data("unsigned-ds.test.zone").display()
    ));
    let r = w.udp(q("www.child.signed.test", Rtype::A).edns(1232).dnssec_ok());
    let types: Vec<_> = r.authority().iter().map(|a| a.rtype).collect();
    assert_eq!(
        types,
        vec![Rtype::NS, Rtype::DS, Rtype::RRSIG],
        "signed: {:?}",
        r.authority()
    );
    let r = w.udp(q("www.child.unsigned.test", Rtype::A).edns(1232).dnssec_ok());
    let types: Vec<_> = r.authority().iter().map(|a| a.rtype).collect();
    assert_eq!(types, vec![Rtype::NS], "unsigned: {:?}", r.authority());
    assert_eq!(datas(&r.additional()), vec!["192.0.2.60"], "the glue stays");
}

// Issue 11 B.8: RD and CD are defined for QUERY; a NOTIMP for another opcode clears them.
#[test]
fn notimp_for_an_unknown_opcode_clears_rd_and_cd() {
    let w = world();
    for op in [2u8, 3, 6, 15] {
        let r = w.udp(q("www.example.test", Rtype::A).opcode(op).header_bits(0, 0x10));
        assert_eq!(r.rcode(), NOTIMP, "opcode {op}");
        let h = r.msg.header();
        assert!(!h.rd() && !h.cd(), "opcode {op}: RD {} CD {}", h.rd(), h.cd());
    }
    // Class ANY is a QUERY: its NOTIMP keeps RD and CD.
    let r = w.udp(q("www.example.test", Rtype::A).class(255).header_bits(0, 0x10));
    assert!(r.msg.header().rd() && r.msg.header().cd());
}

// Issue 11 B.5 (RFC 6891 §6.1.1, §7): every reply to a query that carried an OPT carries one,
// FORMERR included, so clients do not conclude that the server speaks no EDNS.
#[test]
fn formerr_replies_carry_an_opt_when_the_query_had_one() {
    let w = world();
    let base = q("www.example.test", Rtype::A).edns(1400).dnssec_ok();
    let wire = base.wire();
    let qlen = support::name_wire("www.example.test").len() + 4;
    let (head, opt) = wire.split_at(12 + qlen);
    // QDCOUNT 0: the OPT follows the header.
    let mut none = wire[..12].to_vec();
    none[5] = 0;
    none.extend_from_slice(opt);
    // QDCOUNT 2: the question twice, then the OPT.
    let mut two = head.to_vec();
    two[5] = 2;
    two.extend_from_slice(&head[12..]);
    two.extend_from_slice(opt);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("QDCOUNT 0", none),
        ("QDCOUNT 2", two),
        (
            "ECS prefix longer than IPv4",
            base.clone().option(8, &[0, 1, 33, 0, 192, 0, 2, 1, 0]).wire(),
        ),
        (
            "ECS bits beyond the prefix",
            base.clone().option(8, &[0, 1, 20, 0, 192, 0, 0x2f]).wire(),
        ),
        ("keepalive with a value", base.clone().option(11, &[0, 100]).wire()),
        ("truncated option", {
            let mut t = base.clone().option(10, &[1, 2, 3, 4]).wire();
            let n = t.len();
            t[n - 5] = 9; // option length 9, four octets present
            t
        }),
        ("two OPT records", {
            let mut t = wire.clone();
            t[11] = 2;
            t.extend_from_slice(opt);
            t
        }),
    ];
    for (case, wire) in cases {
        let r = w
            .ask_raw(&wire, Transport::Udp)
            .unwrap_or_else(|| panic!("{case}: a reply"));
        assert_eq!(r.rcode(), FORMERR, "{case}");
        let (payload, version, dnssec_ok, options) = r.opt().unwrap_or_else(|| panic!("{case}: an OPT"));
        assert_eq!((payload, version, dnssec_ok), (1232, 0, true), "{case}");
        assert!(options.is_empty(), "{case}: {options:?}");
    }
    // Without an OPT in the query, none in the reply.
    let mut plain = q("www.example.test", Rtype::A).wire();
    plain[5] = 0;
    plain.truncate(12);
    let r = w.ask_raw(&plain, Transport::Udp).unwrap();
    assert_eq!((r.rcode(), r.opt().is_none()), (FORMERR, true));
    // NOTIMP and REFUSED (opcodes) carry one too.
    for op in [2u8, 4] {
        let r = w.udp(q("www.example.test", Rtype::A).edns(1232).opcode(op));
        assert!(r.opt().is_some(), "opcode {op}");
    }
}

fn chains() -> World {
    world_from(&format!(
        "chains.test:1053 {{\n bind 127.0.0.1\n file {}\n}}\n",
        data("chains.test.zone").display()
    ))
}

// Issue 11 B.6 (RFC 1034 §4.3.2 step 3b): a CNAME whose target lies below a delegation is
// answered with the CNAME and, after the restart at the target, the referral: the child's
// NS in authority and its glue, as Knot and NSD do. AA stays set for the CNAME.
#[test]
fn cname_into_a_delegation_gives_the_referral() {
    let w = chains();
    let r = w.udp(q("into.chains.test", Rtype::A));
    assert_eq!(r.rcode(), NOERROR);
    assert!(r.aa(), "authoritative for the CNAME");
    assert_eq!(datas(&r.answer()), vec!["host.sub.chains.test."]);
    let auth = r.authority();
    assert_eq!(auth.len(), 1);
    assert_eq!((auth[0].rtype, auth[0].owner.as_str()), (Rtype::NS, "sub.chains.test"));
    assert_eq!(datas(&r.additional()), vec!["192.0.2.50"]);
}

// Issue 11 B.2: a hosts block is a real zone. Its apex answers SOA and NS (ns.dns.ZONE,
// the name its synthesised SOA uses) and NODATA for other types; names above entries are
// empty non-terminals, NODATA (RFC 4592 §2.2.2, RFC 8020 §2), in the reverse zones too.
// CoreDNS answers all of these NXDOMAIN.
#[test]
fn hosts_zones_have_an_apex_and_empty_non_terminals() {
    let w = world_from(&format!(
        "lan.test:1053 2.0.192.in-addr.arpa:1053 8.b.d.0.1.0.0.2.ip6.arpa:1053 {{\n bind 127.0.0.1\n hosts {none} {{\n  192.0.2.10 host.office.lan.test\n  2001:db8::10 host.office.lan.test\n  ttl 60\n }}\n}}\n",
        none = data("no-such-hosts-file").display(),
    ));
    let r = w.udp(q("lan.test", Rtype::SOA));
    assert_eq!((r.rcode(), r.aa()), (NOERROR, true));
    assert!(
        datas(&r.answer())[0].starts_with("ns.dns.lan.test. hostmaster.ns.dns.lan.test."),
        "{:?}",
        r.answer()
    );
    let r = w.udp(q("lan.test", Rtype::NS));
    assert_eq!(datas(&r.answer()), vec!["ns.dns.lan.test."]);
    for (name, qtype) in [
        ("lan.test", Rtype::A),
        ("office.lan.test", Rtype::A),
        ("office.lan.test", Rtype::AAAA),
    ] {
        let r = w.udp(q(name, qtype));
        assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 0), "{name} {qtype}: NODATA");
        assert_eq!(r.authority()[0].rtype, Rtype::SOA, "{name}");
    }
    assert_eq!(w.udp(q("nothere.lan.test", Rtype::A)).rcode(), NXDOMAIN);
    assert_eq!(w.udp(q("x.host.office.lan.test", Rtype::A)).rcode(), NXDOMAIN);
    assert_eq!(
        datas(&w.udp(q("host.office.lan.test", Rtype::A)).answer()),
        vec!["192.0.2.10"]
    );
    // ANY at the apex: over UDP one RRset (RFC 8482), over TCP SOA and NS.
    assert_eq!(w.udp(q("lan.test", Rtype::ANY)).answer().len(), 1);
    let types: Vec<_> = w
        .tcp(q("lan.test", Rtype::ANY))
        .answer()
        .iter()
        .map(|a| a.rtype)
        .collect();
    assert_eq!(types, vec![Rtype::SOA, Rtype::NS]);
    // The reverse zones: apex SOA and NS, PTRs, empty non-terminals NODATA, others NXDOMAIN.
    let r = w.udp(q("2.0.192.in-addr.arpa", Rtype::NS));
    assert_eq!(datas(&r.answer()), vec!["ns.dns.2.0.192.in-addr.arpa."]);
    assert_eq!(
        datas(&w.udp(q("10.2.0.192.in-addr.arpa", Rtype::PTR)).answer()),
        vec!["host.office.lan.test."]
    );
    assert_eq!(w.udp(q("11.2.0.192.in-addr.arpa", Rtype::PTR)).rcode(), NXDOMAIN);
    let v6_apex = "8.b.d.0.1.0.0.2.ip6.arpa";
    assert_eq!(w.udp(q(v6_apex, Rtype::SOA)).answer().len(), 1);
    let ent = format!("0.{v6_apex}");
    let r = w.udp(q(&ent, Rtype::PTR));
    assert_eq!(
        (r.rcode(), r.answer().len()),
        (NOERROR, 0),
        "{ent}: an empty non-terminal"
    );
    assert_eq!(w.udp(q(&format!("1.{v6_apex}"), Rtype::PTR)).rcode(), NXDOMAIN);
}

/// (type, owner, data) of a section.
fn rrs(rrs: &[support::Rr]) -> Vec<(Rtype, String, String)> {
    rrs.iter().map(|r| (r.rtype, r.owner.clone(), r.data.clone())).collect()
}

// Issue 11 B.1, RFC 6672 §3.2: at a DNAME owner above the query name the answer holds the
// DNAME, a CNAME synthesised from it (TTL of the DNAME) and the answer for the new name.
#[test]
fn dname_redirects_the_names_below_it() {
    let w = chains();
    let r = w.udp(q("www.old.chains.test", Rtype::A));
    assert_eq!((r.rcode(), r.aa()), (NOERROR, true));
    assert_eq!(
        rrs(&r.answer()),
        vec![
            (Rtype::DNAME, "old.chains.test".into(), "new.chains.test.".into()),
            (
                Rtype::CNAME,
                "www.old.chains.test".into(),
                "www.new.chains.test.".into()
            ),
            (Rtype::A, "www.new.chains.test".into(), "192.0.2.80".into()),
        ]
    );
    let ttls: Vec<u32> = r.answer().iter().map(|a| a.ttl).collect();
    assert_eq!(ttls, vec![300, 300, 3600], "the CNAME has the DNAME's TTL");
    // The question keeps its case; the DNAME owner itself is not redirected.
    assert_eq!(w.udp(q("WWW.Old.chains.test", Rtype::A)).answer().len(), 3);
    let r = w.udp(q("old.chains.test", Rtype::DNAME));
    assert_eq!(
        rrs(&r.answer()),
        vec![(Rtype::DNAME, "old.chains.test".into(), "new.chains.test.".into())]
    );
    let r = w.udp(q("old.chains.test", Rtype::A));
    assert_eq!((r.rcode(), r.answer().len()), (NOERROR, 0), "NODATA at the owner");
    // Asked for the CNAME itself: the DNAME and the synthesised CNAME, no restart.
    assert_eq!(w.udp(q("www.old.chains.test", Rtype::CNAME)).answer().len(), 2);
}

// RFC 6672 §3.2 with RFC 1034 §4.3.2: CNAMEs and DNAMEs chain, both ways, counting against
// one limit; the rcode describes the last name (RFC 6604).
#[test]
fn dname_chains_with_cnames_and_dnames() {
    let w = chains();
    // A CNAME into a DNAME.
    let r = w.udp(q("alias.chains.test", Rtype::A));
    let types: Vec<_> = r.answer().iter().map(|a| a.rtype).collect();
    assert_eq!(types, vec![Rtype::CNAME, Rtype::DNAME, Rtype::CNAME, Rtype::A]);
    assert_eq!(
        r.answer()[2].owner,
        "www.old.chains.test",
        "the CNAME from the name the chain reached"
    );
    // A DNAME into a DNAME.
    let r = w.udp(q("www.dn2.chains.test", Rtype::A));
    assert_eq!(
        rrs(&r.answer()),
        vec![
            (Rtype::DNAME, "dn2.chains.test".into(), "old.chains.test.".into()),
            (
                Rtype::CNAME,
                "www.dn2.chains.test".into(),
                "www.old.chains.test.".into()
            ),
            (Rtype::DNAME, "old.chains.test".into(), "new.chains.test.".into()),
            (
                Rtype::CNAME,
                "www.old.chains.test".into(),
                "www.new.chains.test.".into()
            ),
            (Rtype::A, "www.new.chains.test".into(), "192.0.2.80".into()),
        ]
    );
    // To a missing target: NXDOMAIN for the new name, the chain and the SOA.
    let r = w.udp(q("x.gone.chains.test", Rtype::A));
    assert_eq!(r.rcode(), NXDOMAIN);
    let types: Vec<_> = r.answer().iter().map(|a| a.rtype).collect();
    assert_eq!(types, vec![Rtype::DNAME, Rtype::CNAME]);
    assert_eq!(r.authority()[0].rtype, Rtype::SOA);
    // Out of the zone: the DNAME and the CNAME; the resolver goes on from there.
    let r = w.udp(q("x.ext.chains.test", Rtype::A));
    assert_eq!(r.rcode(), NOERROR);
    assert_eq!(datas(&r.answer()), vec!["example.org.", "x.example.org."]);
}

// RFC 6672 §2.2: a new name over 255 octets is YXDOMAIN, with the DNAME.
#[test]
fn dname_to_a_name_too_long_is_yxdomain() {
    let w = chains();
    let fits = format!("{}.long.chains.test", "a".repeat(50));
    let r = w.udp(q(&fits, Rtype::A));
    assert_eq!(r.rcode(), NXDOMAIN, "the new name fits: it just does not exist");
    let long = format!("{}.{}.long.chains.test", "a".repeat(50), "b".repeat(20));
    let r = w.udp(q(&long, Rtype::A));
    assert_eq!(r.rcode(), 6, "YXDOMAIN");
    assert_eq!(
        r.answer().iter().map(|a| a.rtype).collect::<Vec<_>>(),
        vec![Rtype::DNAME]
    );
}

// RFC 6672 §5.3: with DO=1 the DNAME comes with its RRSIG; the synthesised CNAME has none.
#[test]
fn dname_with_do_on_a_signed_zone() {
    let w = world_from(&format!(
        "signed.test:1053 {{\n bind 127.0.0.1\n file {}\n}}\n",
        data("signed.test.zone").display()
    ));
    let r = w.udp(q("www.olddn.signed.test", Rtype::A).edns(1232).dnssec_ok());
    let types: Vec<_> = r.answer().iter().map(|a| (a.rtype, a.owner.clone())).collect();
    assert_eq!(
        types,
        vec![
            (Rtype::DNAME, "olddn.signed.test".into()),
            (Rtype::RRSIG, "olddn.signed.test".into()),
            (Rtype::CNAME, "www.olddn.signed.test".into()),
            (Rtype::A, "www.signed.test".into()),
            (Rtype::RRSIG, "www.signed.test".into()),
        ]
    );
    assert!(r.answer()[1].data.starts_with("DNAME 13 3"), "{:?}", r.answer()[1]);
    assert_eq!(
        w.udp(q("www.olddn.signed.test", Rtype::A)).answer().len(),
        3,
        "no RRSIG without DO"
    );
}
