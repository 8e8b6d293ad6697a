//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the test that replays their
//! seed corpus, so both exercise exactly the same code.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::config::Transport;
use crate::config::{self, LoadOptions};
use crate::dns::pipeline::{Block, FileHandler, Handler, HostsHandler, Route, RouteEntry};
use crate::dns::{Ctx, Scratch, answer, wire};
use crate::zone::hosts::HostsBuilder;
use crate::zone::name::{NameKey, parse_abs};
use crate::zone::zonefile;

/// The zone every answer fuzz run is served from (the test zone of the repository).
const ZONE: &str = include_str!("../tests/data/example.test.zone");

fn route() -> &'static Route {
    static ROUTE: OnceLock<Route> = OnceLock::new();
    ROUTE.get_or_init(|| {
        let origin = parse_abs("example.test").unwrap_or_else(|_| domain::base::Name::root_bytes());
        let zone = zonefile::load_bytes(ZONE.as_bytes(), Path::new("example.test.zone"), &origin)
            .unwrap_or_else(|e| panic!("the built-in fuzz zone loads: {e}"));
        let signed_origin = parse_abs("nsec.test").unwrap_or_else(|_| domain::base::Name::root_bytes());
        let signed = zonefile::load_bytes(NSEC_ZONE.as_bytes(), Path::new("nsec.test.zone"), &signed_origin)
            .unwrap_or_else(|e| panic!("the built-in NSEC zone loads: {e}"));
        let nsec3_origin = parse_abs("nsec3.test").unwrap_or_else(|_| domain::base::Name::root_bytes());
        let nsec3 = zonefile::load_bytes(NSEC3_ZONE.as_bytes(), Path::new("nsec3.test.signed"), &nsec3_origin)
            .unwrap_or_else(|e| panic!("the built-in NSEC3 zone loads: {e}"));
        let online_origin = parse_abs("online.test").unwrap_or_else(|_| domain::base::Name::root_bytes());
        let online = zonefile::load_bytes(ONLINE_ZONE.as_bytes(), Path::new("online.test.zone"), &online_origin)
            .unwrap_or_else(|e| panic!("the built-in online zone loads: {e}"));
        let key = crate::dnssec::keys::SigningKey::parse(
            ONLINE_KEY.0,
            ONLINE_KEY.1,
            Path::new("Kexample.test.+013+33970.key"),
            Path::new("Kexample.test.+013+33970.private"),
        )
        .unwrap_or_else(|e| panic!("the built-in key loads: {e}"));
        let hosts_origin = parse_abs("hosts.test").unwrap_or_else(|_| domain::base::Name::root_bytes());
        let mut hb = HostsBuilder::default();
        hb.add_text("192.0.2.77 h1.hosts.test\n2001:db8::77 h1.hosts.test\n", true);
        let hosts = hb.build(std::slice::from_ref(&hosts_origin), 60);
        let block = Arc::new(Block {
            index: 0,
            label: "fuzz".into(),
            handlers: vec![
                Handler::Hosts(HostsHandler {
                    table: Arc::new(hosts),
                    zones: vec![NameKey::of(&hosts_origin).as_slice().into()],
                    fallthrough: None,
                }),
                Handler::File(FileHandler {
                    zones: vec![Arc::new(zone), Arc::new(signed), Arc::new(nsec3), Arc::new(online)],
                    fallthrough: None,
                }),
            ],
            log: Vec::new(),
            errors: false,
            plugins: crate::dns::pipeline::BlockPlugins {
                // Signs online.test and the hosts zone as they are answered.
                dnssec: Some(Arc::new(crate::dnssec::online::Signer::new(
                    vec![
                        NameKey::of(&online_origin).as_slice().into(),
                        NameKey::of(&hosts_origin).as_slice().into(),
                    ],
                    vec![Arc::new(key)],
                    64,
                ))),
                ..Default::default()
            },
        });
        let entry = |zone: &domain::base::Name<bytes::Bytes>, block: &Arc<Block>| RouteEntry {
            zone: NameKey::of(zone).as_slice().into(),
            block: block.clone(),
            series: None,
        };
        Route::new(
            vec![
                entry(&origin, &block),
                entry(&hosts_origin, &block),
                entry(&signed_origin, &block),
                entry(&nsec3_origin, &block),
                entry(&online_origin, &block),
            ],
            None,
            None,
        )
    })
}

/// A zone signed with NSEC3 by dnssec-signzone (real signatures, valid to 2035).
const NSEC3_ZONE: &str = include_str!("../tests/data/nsec3.test.signed");

/// An unsigned zone that the route's `dnssec` signs online, with the test key.
const ONLINE_ZONE: &str = "$ORIGIN online.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n@ MX 10 ns\nns A 192.0.2.1\n*.w TXT \"w\"\nc.b A 192.0.2.2\nalias CNAME c.b\nout CNAME www.example.test.\nsub NS ns.sub\nns.sub A 192.0.2.53\n";
const ONLINE_KEY: (&str, &str) = (
    include_str!("../tests/data/Kexample.test.+013+33970.key"),
    include_str!("../tests/data/Kexample.test.+013+33970.private"),
);

/// A zone signed with NSEC (the signatures are not real: the proofs are looked up, not
/// checked), with a wildcard, an empty non-terminal and a delegation.
const NSEC_ZONE: &str = "$ORIGIN nsec.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n@ NSEC *.w NS SOA RRSIG NSEC\n@ RRSIG NSEC 13 2 60 20300101000000 20200101000000 1 nsec.test. c2ln\n@ RRSIG SOA 13 2 300 20300101000000 20200101000000 1 nsec.test. c2ln\n*.w TXT \"w\"\n*.w NSEC c.b TXT RRSIG NSEC\n*.w RRSIG NSEC 13 3 60 20300101000000 20200101000000 1 nsec.test. c2ln\n*.w RRSIG TXT 13 3 300 20300101000000 20200101000000 1 nsec.test. c2ln\nc.b A 192.0.2.2\nc.b NSEC ns A RRSIG NSEC\nns A 192.0.2.1\nns NSEC sub A RRSIG NSEC\nsub NS ns.sub\nsub NSEC nsec.test. NS RRSIG NSEC\nns.sub A 192.0.2.53\n";

/// `rewrite` rules that touch every query and every reply of the plugins route: names
/// (with answer rules of each kind), types, classes, TTLs and rcodes.
macro_rules! rewrite_rules {
    () => {
        concat!(
            "    rewrite continue name regex ^([0-9]+)[.]r[.](.*)$ {1}.{2}. answer name ^(.*)$ {1}.back.\n",
            "    rewrite continue name suffix .s. .longer-suffix. answer auto answer value (.*) {1}\n",
            "    rewrite continue name substring x y\n",
            "    rewrite continue type AAAA A\n",
            "    rewrite continue class HS IN\n",
            "    rewrite continue ttl regex .* 5-10\n",
            "    rewrite continue rcode regex .* NXDOMAIN NOERROR\n",
        )
    };
}

/// The plugins that answer from the query itself (template, chaos, any, local, acl, nsid,
/// whoami), on the root zone: untrusted names go through their regexes and renderers.
const PLUGINS_COREFILE: &str = concat!(
    ".:53 {\n    local\n    acl {\n        block type MX net 192.0.2.0/24\n        filter type TXT\n        drop type SRV\n    }\n",
    "    template IN A {\n        match ^(?P<a>[0-9]+)[.](?P<b>[^.]*)[.]\n        answer \"{{ .Name }} 60 IN A 192.0.2.{{ .Group.a }}\"\n",
    "        additional \"{{ .Group.b }}.{{ .Zone }} 60 IN TXT \\\"{{ .Name }} {{ .Remote }} {{ index .Match 0 }}\\\"\"\n        fallthrough\n    }\n",
    "    template IN TXT {\n        match ^([0-9a-z_]+)[.]\n        answer \"{{ .Name }} 60 IN TXT {{ parseInt (index .Match 1) 0 16 }} {{ .Question.Qtype }}\"\n        fallthrough\n    }\n",
    "    chaos ringdns-fuzz someone\n    any\n    nsid fuzz\n    whoami\n",
    rewrite_rules!(),
    "}\n"
);

fn plugins_route() -> &'static Route {
    static SNAPSHOT: OnceLock<crate::dns::pipeline::Snapshot> = OnceLock::new();
    let snap = SNAPSHOT.get_or_init(|| {
        let cfg = config::parse(PLUGINS_COREFILE, Path::new("fuzz"), LoadOptions::default())
            .unwrap_or_else(|e| panic!("the built-in fuzz Corefile parses: {e}"));
        let data = crate::control::data::DataSet::load(&cfg, None)
            .unwrap_or_else(|e| panic!("the built-in fuzz Corefile loads: {e}"));
        crate::control::build::snapshot(&cfg, &data, &Default::default(), 1, None)
    });
    &snap.listeners[0].1
}

/// Answers arbitrary bytes as a UDP and as a TCP query, from zone data and from the
/// plugins that answer from the query itself; checks the reply limits hold.
pub fn answer_bytes(data: &[u8]) {
    let mut out = Vec::new();
    let client = Some(std::net::SocketAddr::from(([192, 0, 2, 1], 5353)));
    for (transport, limit, route, client) in [
        (Transport::Udp, 1232, route(), None),
        (Transport::Tcp, 65535, route(), None),
        (Transport::Udp, 1232, plugins_route(), client),
        (Transport::Tcp, 65535, plugins_route(), client),
    ] {
        let ctx = Ctx {
            route: Some(route),
            transport,
            challenges: None,
            client,
        };
        let mut scratch = Scratch::new();
        if let crate::dns::Outcome::Reply { .. } = answer(&ctx, data, &mut scratch, &mut out) {
            assert!(
                out.len() <= limit,
                "reply of {} octets over the {limit} limit",
                out.len()
            );
            assert!(
                out.len() >= wire::HEADER_LEN && out[wire::FLAGS1] & wire::flags1::QR != 0,
                "a reply has a header with QR set"
            );
        }
    }
}

/// The UDP reply to `query`, if one is sent.
pub fn answer_udp(query: &[u8]) -> Option<Vec<u8>> {
    let ctx = Ctx {
        route: Some(route()),
        transport: Transport::Udp,
        challenges: None,
        client: None,
    };
    let mut out = Vec::new();
    let mut scratch = Scratch::new();
    match answer(&ctx, query, &mut scratch, &mut out) {
        crate::dns::Outcome::Reply { .. } => Some(out),
        crate::dns::Outcome::Drop(_)
        | crate::dns::Outcome::Forward(_)
        | crate::dns::Outcome::Transfer { .. }
        | crate::dns::Outcome::Update(_) => None,
    }
}

/// Parses arbitrary bytes as a Corefile (no file is read unless it imports one).
pub fn corefile_bytes(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = config::parse(text, Path::new("/nonexistent/fuzz/Corefile"), LoadOptions::default());
    }
}

/// `loadbalance` round_robin and weighted, both with `prefer`.
fn balances() -> &'static [crate::dns::balance::Balance; 2] {
    use crate::dns::balance::{Balance, Weights};
    static BALANCES: OnceLock<[Balance; 2]> = OnceLock::new();
    BALANCES.get_or_init(|| {
        let prefer = vec![
            ("10.0.0.0".parse().unwrap_or([0u8; 4].into()), 8),
            ([0u8; 16].into(), 1),
        ];
        let weights = Weights::parse("a.s\n10.0.0.1 5\n::1 200\n").unwrap_or_default();
        [
            Balance {
                weights: None,
                prefer: prefer.clone(),
            },
            Balance {
                weights: Some(std::sync::Arc::new(weights)),
                prefer,
            },
        ]
    })
}

/// A query for `a.s.` that the fuzz rules rewrite, and what its reply needs.
fn rewrite_reverts() -> &'static (Vec<u8>, crate::dns::rewrite::Reverts) {
    static REVERTS: OnceLock<(Vec<u8>, crate::dns::rewrite::Reverts)> = OnceLock::new();
    REVERTS.get_or_init(|| {
        let corefile = concat!(".:53 {\n", rewrite_rules!(), "}\n");
        let cfg = config::parse(corefile, Path::new("fuzz"), LoadOptions::default())
            .unwrap_or_else(|e| panic!("the built-in rewrite rules parse: {e}"));
        let query = wire::query(b"\x01a\x01s\x00", domain::base::iana::Rtype::A, true);
        let mut key = NameKey::EMPTY;
        let crate::dns::request::Parsed::Query(req) = crate::dns::request::parse(&query, &mut key) else {
            panic!("the built-in query parses")
        };
        let q = req
            .question
            .unwrap_or_else(|| panic!("the built-in query has a question"));
        let mut s = crate::dns::rewrite::Scratch::default();
        let done = crate::dns::rewrite::request(&cfg.blocks[0].rewrites, &query, &q, 512, &mut s);
        assert_eq!(done, crate::dns::rewrite::Rewritten::Changed);
        (query, s.reverts)
    })
}

/// Arbitrary bytes as a reply that ringdns rewrites before sending it on: `loadbalance`'s
/// shuffle (forwarded replies come from upstreams), `rewrite`'s mapping back, `dns64`'s
/// synthesis from an A reply, and `rrl`'s reading, slipping and BADCOOKIE of it.
/// Checks that the shuffle keeps the size and the header, that a synthesised reply stays
/// within its limit, and that a slipped reply is never larger than the one it replaces
/// (a BADCOOKIE one, by at most its OPT).
pub fn reply_bytes(data: &[u8]) {
    rate_limited(data);
    let mut shuffled = data.to_vec();
    crate::dns::balance::shuffle_addresses(&mut shuffled);
    assert_eq!(shuffled.len(), data.len(), "the shuffle moves octets, it adds none");
    assert_eq!(
        shuffled.get(..wire::HEADER_LEN),
        data.get(..wire::HEADER_LEN),
        "the header stays"
    );
    let cfg = crate::dns::dns64::Dns64 {
        prefix: (std::net::Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96),
        translate_all: data.first().is_some_and(|b| b & 1 == 1),
        allow_ipv4: true,
    };
    for b in balances() {
        let mut balanced = data.to_vec();
        crate::dns::balance::balance(&mut balanced, b);
        assert!(balanced.len() <= data.len(), "loadbalance never grows a reply");
    }
    let (query, reverts) = rewrite_reverts();
    let mut mapped = data.to_vec();
    crate::dns::rewrite::respond(reverts, query, &mut mapped);
    if mapped != data {
        assert!(
            mapped.len() <= reverts.limit,
            "a rewritten reply of {} octets over its limit",
            mapped.len()
        );
    }
    let _ = crate::dns::dns64::needed(data, cfg.translate_all);
    let _ = crate::dns::dns64::a_query(data);
    // The first half as the AAAA reply, the whole as the A reply.
    let half = &data[..data.len() / 2];
    for (aaaa, a) in [(data, data), (half, data)] {
        if let Some(out) = crate::dns::dns64::synthesize(&cfg, aaaa, a, 512) {
            assert!(out.len() <= 512, "a synthesised reply of {} octets over 512", out.len());
        }
    }
}

/// `rrl` on a reply from anywhere: its category and names, the table's verdict, the slip.
fn rate_limited(data: &[u8]) {
    use crate::dns::rrl;
    let _ = rrl::classify(data);
    let limits = rrl::Limits {
        zones: vec![Box::from(&b"\0"[..])],
        interval: [rrl::SECOND; rrl::CATEGORIES],
        request_interval: rrl::SECOND,
        window: rrl::SECOND,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        slip: 1,
        table_size: 4,
        report_only: false,
    };
    let mut table = rrl::Table::new(limits.table_size);
    let client = std::net::IpAddr::from([198, 18, 0, 1]);
    for now in [1, 2] {
        let _ = table.request(&limits, client, data, now);
        let _ = table.reply(&limits, client, data, now);
    }
    let mut slipped = data.to_vec();
    rrl::slip(&mut slipped);
    assert!(slipped.len() <= data.len(), "a slipped reply grew");
    let mut bad = data.to_vec();
    rrl::bad_cookie(&mut bad);
    let opt = wire::OPT_LEN + wire::OPTION_HEADER_LEN + crate::dns::cookie::CLIENT_LEN + crate::dns::cookie::SERVER_MAX;
    assert!(
        bad.len() <= data.len().max(slipped.len() + opt),
        "a BADCOOKIE reply grew past its OPT"
    );
}

/// The apex the transfer target's streams are read for: `example.test`.
pub const TRANSFER_APEX: &[u8] = b"\x07example\x04test\x00";

/// Arbitrary bytes as an AXFR stream (RFC 5936) for `example.test`: the first two octets
/// are the query's ID, then messages framed as over TCP (a two-octet length each). Checks
/// that a stream either fails or makes a zone whose serial is the one it announced, and
/// that nothing fed after the end is taken. `true` when a zone was made.
pub fn transfer_bytes(data: &[u8]) -> bool {
    let Some((id, mut rest)) = data.split_first_chunk::<2>() else {
        return false;
    };
    let id = u16::from_be_bytes(*id);
    ixfr_stream(id, rest);
    let mut t = crate::zone::transfer::AxfrIn::new(TRANSFER_APEX, id);
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (msg, tail) = tail.split_at(len);
        rest = tail;
        let done = t.is_done();
        match t.feed(msg) {
            Ok(()) => assert!(!done, "a message after the closing SOA was taken"),
            Err(_) => return false,
        }
    }
    match t.finish() {
        Ok(zone) => {
            let mut text = Vec::new();
            assert!(crate::zone::transfer::write_zone(&zone, &mut text).is_ok());
            assert!(!text.is_empty(), "a zone has its SOA");
            assert!(zone.soa().is_some(), "a transferred zone has its SOA");
            // Any transferred zone may be a catalog (RFC 9432): read as one, it lists members
            // or says why not.
            let _ = crate::zone::catalog::parse(&zone);
            // And a signed one: what a transfer brings is audited as it lands.
            let _ = crate::dnssec::audit::audit(&zone, 1_800_000_000);
            true
        }
        Err(_) => false,
    }
}

/// The same stream as an IXFR reply against a small zone of serial 1 (differences that
/// must match it, or the zone AXFR-style): whatever comes, it ends in a result or an error,
/// never a panic.
fn ixfr_stream(id: u16, mut rest: &[u8]) {
    static BASE: OnceLock<Arc<crate::zone::store::Zone>> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        let text = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n";
        let origin = crate::zone::name::parse_abs("example.test").unwrap_or_else(|e| panic!("{e}"));
        let z = crate::zone::zonefile::load_bytes(text.as_bytes(), Path::new("fuzz"), &origin).unwrap_or_else(|e| panic!("the fuzz base zone loads: {e}"));
        Arc::new(z)
    });
    let mut t = crate::zone::transfer::IxfrIn::new(base.clone(), id);
    while let Some((len, tail)) = rest.split_first_chunk::<2>() {
        let len = usize::from(u16::from_be_bytes(*len)).min(tail.len());
        let (msg, tail) = tail.split_at(len);
        rest = tail;
        if t.is_done() || t.feed(msg).is_err() {
            return;
        }
    }
    if t.is_done() {
        if let Ok(crate::zone::transfer::IxfrResult::Applied(z, diff)) = t.finish() {
            // The patched zone (a delta over the base) is whole: its SOA is the new one.
            assert_eq!(z.soa().map(|_| z.serial()), Some(diff.to.0));
            let mut text = Vec::new();
            assert!(crate::zone::transfer::write_zone(&z, &mut text).is_ok());
        }
    }
}

/// The key of the TSIG target: `tsig.fuzz.`, HMAC-SHA256.
fn tsig_keys() -> &'static (crate::dns::tsig::Keyring, crate::config::tsig::TsigKey) {
    static KEYS: OnceLock<(crate::dns::tsig::Keyring, crate::config::tsig::TsigKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let key = crate::config::tsig::TsigKey {
            name: crate::zone::name::parse_abs("tsig.fuzz").unwrap_or_else(|e| panic!("{e}")),
            algorithm: Some(domain::tsig::Algorithm::Sha256),
            secret: b"fuzzing secret, thirty-two bytes".to_vec(),
        };
        let cfg = crate::config::tsig::TsigConfig {
            pos: crate::config::Pos {
                file: Path::new("fuzz").into(),
                line: 1,
                col: 1,
            },
            zones: vec![],
            keys: vec![key.clone()],
            files: vec![],
            require: crate::config::tsig::Required::These(vec![]),
            require_opcode: crate::config::tsig::Required::These(vec![]),
        };
        (crate::dns::tsig::Keyring::new([&cfg]), key)
    })
}

/// Arbitrary bytes as a signed request (the server's check, and a signed reply to it when
/// it checks) and as a reply to a request ringdns signed (the client's check): errors, never
/// a panic.
pub fn tsig_bytes(data: &[u8]) {
    let (ring, key) = tsig_keys();
    if let Some(crate::dns::tsig::Checked::Signed(tx)) = crate::dns::tsig::check(ring, data) {
        let mut reply = data.to_vec();
        if reply.len() > 2 {
            reply[2] |= 0x80;
        }
        let _ = crate::dns::tsig::sign(tx, &mut reply, 512);
    }
    let _ = crate::dns::tsig::sequence(ring, data);
    if let Some(signer) = crate::dns::tsig::signer(key) {
        let q = wire::query(TRANSFER_APEX, domain::base::iana::Rtype::SOA, false);
        if let Some((_, mut client)) = crate::dns::tsig::sign_request(signer, &q) {
            let _ = client.check(data);
        }
    }
}

/// A request signed with the TSIG target's key: the seed of the `tsig` target.
pub fn tsig_seed() -> Vec<u8> {
    let (_, key) = tsig_keys();
    let q = wire::query(TRANSFER_APEX, domain::base::iana::Rtype::AXFR, false);
    crate::dns::tsig::signer(key)
        .and_then(|k| crate::dns::tsig::sign_request(k, &q))
        .map(|(signed, _)| signed)
        .unwrap_or(q)
}

/// A valid AXFR stream for [`transfer_bytes`]: ID, then two framed messages holding the
/// SOA, a few records, and the SOA again (the seed of the transfer target).
pub fn transfer_seed() -> Vec<u8> {
    let id = 0x4242u16;
    let soa = |m: &mut Vec<u8>| {
        m.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1, 0, 0, 1, 44]);
        let rdata = b"\x02ns\xC0\x0c\x05admin\xC0\x0c\x00\x00\x00\x07\x00\x00\x0e\x10\x00\x00\x02\x58\x00\x01\x51\x80\x00\x00\x00\x3c";
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    };
    let message = |records: &dyn Fn(&mut Vec<u8>) -> u16| {
        let mut m = id.to_be_bytes().to_vec();
        m.extend_from_slice(&[0x84, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        m.extend_from_slice(TRANSFER_APEX);
        m.extend_from_slice(&[0, 252, 0, 1]);
        let n = records(&mut m);
        wire::set_count(&mut m, 1, n);
        m
    };
    let first = message(&|m| {
        soa(m);
        m.extend_from_slice(&[0xC0, 12, 0, 2, 0, 1, 0, 0, 1, 44, 0, 2, 0xC0, 25]);
        m.extend_from_slice(b"\x03www\xC0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x0a");
        3
    });
    let second = message(&|m| {
        m.extend_from_slice(b"\x02ns\xC0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01");
        soa(m);
        2
    });
    let mut out = id.to_be_bytes().to_vec();
    for m in [first, second] {
        out.extend_from_slice(&(m.len() as u16).to_be_bytes());
        out.extend_from_slice(&m);
    }
    out
}

/// The zone the `update` target changes.
fn update_zone() -> &'static crate::zone::store::Zone {
    static ZONE: std::sync::OnceLock<crate::zone::store::Zone> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        let text = "$ORIGIN example.test.\n@ 300 IN SOA ns admin 1 60 60 600 60\n@ 300 IN NS ns\nns 300 IN A 192.0.2.1\nwww 300 IN CNAME ns\n_acme-challenge 60 IN TXT \"old\"\n";
        // A fixed, valid name and zone text: they always load.
        let origin = crate::zone::name::parse_abs("example.test").expect("a valid name");
        crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("fuzz"), &origin).expect("a valid zone")
    })
}

/// Arbitrary bytes as an RFC 2136 UPDATE (read, checked against a zone and applied for a
/// key granted every name and type), and as the text of an update log: an rcode or an
/// error, never a panic; a change that applies makes a zone whose serial grew.
pub fn update_bytes(data: &[u8]) {
    use crate::update::rfc2136::{GrantName, Grants};
    use domain::base::iana::Rtype;
    let zone = update_zone();
    let grants = Grants {
        types: vec![Rtype::TXT, Rtype::A, Rtype::AAAA, Rtype::CNAME, Rtype::NS, Rtype::MX],
        keys: vec![(
            b"\x01k\x00".as_slice().into(),
            vec![
                GrantName::Below(b"\x04test\x00".as_slice().into()),
                GrantName::Exact(zone.apex().into()),
            ],
        )],
    };
    if let Ok(u) = crate::update::rfc2136::parse(data) {
        if let Ok(Some(a)) = crate::update::rfc2136::apply(zone, &u, b"\x01k\x00", &grants) {
            assert!(crate::zone::refresh::serial_gt(a.zone.serial(), zone.serial()));
            let entry = crate::update::log::Entry {
                serial: a.zone.serial(),
                changes: a.changes,
            };
            let text = crate::update::log::encode(&entry);
            assert_eq!(
                crate::update::log::decode(&text).ok(),
                Some(vec![entry]),
                "the log reads back what it wrote"
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(entries) = crate::update::log::decode(text) {
            let changes = entries.into_iter().flat_map(|e| e.changes).collect();
            let _ = crate::update::rfc2136::apply_changes(zone, changes, None);
        }
    }
}

/// An UPDATE that deletes the zone's `_acme-challenge` TXT RRset and adds a value: the seed
/// of the `update` target.
pub fn update_seed() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 2, 0, 0];
    m.extend_from_slice(b"\x07example\x04test\x00\x00\x06\x00\x01");
    // Delete the RRset: class ANY, TTL 0, no data (RFC 2136 §2.5.2).
    m.extend_from_slice(b"\x0f_acme-challenge\xc0\x0c\x00\x10\x00\xff\x00\x00\x00\x00\x00\x00");
    // Add a value.
    m.extend_from_slice(b"\xc0\x1e\x00\x10\x00\x01\x00\x00\x00\x3c\x00\x06\x05token");
    m
}

/// Arbitrary bytes as acme-dns request bodies: the first octet picks `/register` or
/// `/update` (with a registration's own credentials, so the checks past the password run;
/// `SUB` in the body is its subdomain),
/// the rest is the body; the store stays readable whatever happens.
pub fn acme_dns_bytes(data: &[u8]) {
    use crate::update::acme_dns::Store;
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let mut n = 0x9e37_79b9u32;
    let mut random = |b: &mut [u8]| {
        for x in b {
            n ^= n << 13;
            n ^= n >> 17;
            n ^= n << 5;
            *x = n as u8;
        }
    };
    let mut store = Store::default();
    let client = std::net::IpAddr::from([192, 0, 2, 1]);
    if pick % 2 == 0 {
        let _ = store.register(body, "auth.example.test.", &mut random);
    } else {
        let made = store.register(b"", "auth.example.test.", &mut random);
        let v: serde_json::Value = serde_json::from_str(&made.body).unwrap_or_default();
        let (user, pass) = (v["username"].as_str(), v["password"].as_str());
        // `SUB` in the body stands for the registration's own subdomain.
        let body = match (std::str::from_utf8(body), v["subdomain"].as_str()) {
            (Ok(text), Some(sub)) => text.replace("SUB", sub).into_bytes(),
            _ => body.to_vec(),
        };
        if let Ok((sub, values, _)) = store.update(user, pass, client, &body) {
            store.set_values(&sub, values);
        }
    }
    assert_eq!(
        Store::decode(&store.encode()).ok(),
        Some(store),
        "the store reads back what it wrote"
    );
}
