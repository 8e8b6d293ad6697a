//! The answer function per query class, signed answers (NSEC, NSEC3), and zone lookups at
//! 1k, 100k and 1M names.
//! No sockets: this is the CPU cost of parse + lookup + reply.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::base::iana::Rtype;
use ringdns::config::Transport;
use ringdns::dns::answer::REPLY_CAPACITY;
use ringdns::dns::pipeline::{Block, FileHandler, Handler, Route, RouteEntry};
use ringdns::dns::{Ctx, Outcome, Scratch, answer};
use ringdns::zone::name::{NameKey, parse_abs};
use ringdns::zone::store::{Zone, ZoneBuilder};
use ringdns::zone::zonefile;

fn query(name: &str, qtype: Rtype, edns: bool) -> Vec<u8> {
    let q = ringdns::testing::query(name, qtype);
    if edns { q.edns(1232).wire() } else { q.wire() }
}

/// Answers as a serving loop does (its scratch reused from query to query); whether a reply
/// was written.
fn replied(ctx: &Ctx<'_>, q: &[u8], scratch: &mut Scratch, out: &mut Vec<u8>) -> bool {
    matches!(answer(ctx, q, scratch, out), Outcome::Reply { .. })
}

/// A UDP query's context on `route`, from no particular client.
fn udp(route: &Route) -> Ctx<'_> {
    Ctx {
        route: Some(route),
        transport: Transport::Udp,
        challenges: None,
        client: None,
    }
}

fn route_for(zone: Zone) -> Route {
    route_with(zone, Default::default())
}

fn route_with(zone: Zone, plugins: ringdns::dns::pipeline::BlockPlugins) -> Route {
    let apex: Box<[u8]> = zone.apex().into();
    let block = Arc::new(Block {
        index: 0,
        label: "bench".into(),
        handlers: vec![Handler::File(FileHandler {
            zones: vec![Arc::new(zone)],
            fallthrough: None,
        })],
        log: Vec::new(),
        errors: false,
        plugins,
    });
    Route::new(
        vec![RouteEntry {
            zone: apex,
            block,
            series: None,
        }],
        None,
        None,
    )
}

fn classes(c: &mut Criterion) {
    let origin = parse_abs("example.test").unwrap();
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/example.test.zone")).unwrap();
    let zone = zonefile::load_bytes(&text, Path::new("example.test.zone"), &origin).unwrap();
    let route = route_for(zone);
    let ctx = udp(&route);
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    let mut scratch = Scratch::new();
    let mut g = c.benchmark_group("answer");
    for (label, q) in [
        ("hit", query("www.example.test", Rtype::A, true)),
        ("nxdomain", query("nope.example.test", Rtype::A, true)),
        ("nodata", query("www.example.test", Rtype::TXT, true)),
        ("cname", query("chain1.example.test", Rtype::A, true)),
        ("wildcard", query("x.wild.example.test", Rtype::A, true)),
        ("referral", query("host.sub.example.test", Rtype::A, true)),
        ("truncated", query("big.example.test", Rtype::TXT, false)),
        ("refused", query("www.other.org", Rtype::A, false)),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| replied(&ctx, black_box(&q), &mut scratch, &mut out))
        });
    }
    // A client cookie (RFC 7873): the server cookie made for the client's address (one
    // SipHash-2-4) and written with the reply.
    let from_client = Ctx {
        client: Some("192.0.2.1:5353".parse().unwrap()),
        ..ctx
    };
    let with_cookie = ringdns::testing::query("www.example.test", Rtype::A)
        .edns(1232)
        .option(10, &[0x24, 0x64, 0xc4, 0xab, 0xcf, 0x10, 0xc9, 0x57])
        .wire();
    g.bench_function("hit-cookie", |b| {
        b.iter(|| replied(&from_client, black_box(&with_cookie), &mut scratch, &mut out))
    });
    g.finish();
}

/// Answers with DO=1 from the zones of tests/data signed by dnssec-signzone with NSEC and
/// with NSEC3 (salt, no extra iterations): the signed hit against the same zone without DO,
/// and the denials (NSEC3 hashes the next closer name of an NXDOMAIN per query).
fn signed(c: &mut Criterion) {
    let mut g = c.benchmark_group("signed");
    for z in ["nsec.test", "nsec3.test"] {
        let origin = parse_abs(z).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/data/{z}.signed"));
        let zone = zonefile::load_bytes(&std::fs::read(&path).unwrap(), &path, &origin).unwrap();
        let route = route_for(zone);
        let ctx = udp(&route);
        let mut out = Vec::with_capacity(REPLY_CAPACITY);
        let mut scratch = Scratch::new();
        let signed = |name: &str, t: Rtype| {
            ringdns::testing::query(&format!("{name}.{z}"), t)
                .edns(1232)
                .dnssec_ok()
                .wire()
        };
        for (label, q) in [
            ("hit-plain", query(&format!("www.{z}"), Rtype::A, true)),
            ("hit", signed("www", Rtype::A)),
            ("nxdomain", signed("nope", Rtype::A)),
            ("nodata", signed("www", Rtype::TXT)),
            ("wildcard", signed("x.wild", Rtype::TXT)),
            ("referral", signed("www.sub", Rtype::A)),
        ] {
            g.bench_function(format!("{z}/{label}"), |b| {
                b.iter(|| replied(&ctx, black_box(&q), &mut scratch, &mut out))
            });
        }
    }
    // What the index saves: one NSEC3 hash (RFC 5155 §5) of a 20-octet name, the work a
    // lookup without it would do once per ancestor tried and again for the wildcard.
    let params = ringdns::zone::nsec3::Params {
        iterations: 0,
        salt: vec![0xaa, 0xbb, 0xcc, 0xdd].into(),
    };
    let name = NameKey::of(&parse_abs("nope.nsec3.test").unwrap());
    g.bench_function("nsec3-hash", |b| b.iter(|| params.hash(black_box(name.as_slice()))));
    g.finish();
}

/// Online signing (`dnssec`, the ECDSA P-256 key of tests/data) of the unsigned test zone:
/// answers whose signatures the shard's cache holds, and denials of names never asked
/// before, each a new black lie to sign.
fn online(c: &mut Criterion) {
    let origin = parse_abs("example.test").unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let text = std::fs::read(dir.join("example.test.zone")).unwrap();
    let zone = zonefile::load_bytes(&text, Path::new("example.test.zone"), &origin).unwrap();
    let key = ringdns::dnssec::keys::SigningKey::read(&dir.join("Kexample.test.+013+33970")).unwrap();
    let signer = Arc::new(ringdns::dnssec::online::Signer::new(
        vec![zone.apex().into()],
        vec![Arc::new(key)],
        100_000,
    ));
    let route = route_with(
        zone,
        ringdns::dns::pipeline::BlockPlugins {
            dnssec: Some(signer),
            ..Default::default()
        },
    );
    let ctx = udp(&route);
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    let mut scratch = Scratch::new();
    let signed = |name: &str, t: Rtype| ringdns::testing::query(name, t).edns(1232).dnssec_ok().wire();
    let mut g = c.benchmark_group("online");
    for (label, q) in [
        ("hit", signed("www.example.test", Rtype::A)),
        ("nodata-hit", signed("www.example.test", Rtype::TXT)),
        ("nxdomain-hit", signed("nope.example.test", Rtype::A)),
    ] {
        g.bench_function(label, |b| {
            b.iter(|| replied(&ctx, black_box(&q), &mut scratch, &mut out))
        });
    }
    let mut n = 0u64;
    g.bench_function("nxdomain-miss", |b| {
        b.iter(|| {
            n += 1;
            let q = signed(&format!("nx{n}.example.test"), Rtype::A);
            replied(&ctx, black_box(&q), &mut scratch, &mut out)
        })
    });
    g.finish();
}

/// A zone of `n` names `hN.bench.test` with one A each.
fn synthetic(n: usize) -> Zone {
    let origin = parse_abs("bench.test").unwrap();
    let apex = NameKey::of(&origin);
    let mut b = ZoneBuilder::new(apex.as_slice());
    let soa = {
        let mut rd = Vec::new();
        rd.extend_from_slice(b"\x02ns\x05bench\x04test\x00\x0ahostmaster\x05bench\x04test\x00");
        for v in [1u32, 7200, 3600, 1209600, 300] {
            rd.extend_from_slice(&v.to_be_bytes());
        }
        rd
    };
    b.add(apex.as_slice(), Rtype::SOA, 3600, &soa);
    for i in 0..n {
        let name = parse_abs(&format!("h{i}.bench.test")).unwrap();
        b.add(NameKey::of(&name).as_slice(), Rtype::A, 3600, &(i as u32).to_be_bytes());
    }
    b.build().unwrap().0
}

fn lookups(c: &mut Criterion) {
    let mut g = c.benchmark_group("lookup");
    g.sample_size(20);
    for n in [1_000usize, 100_000, 1_000_000] {
        let route = route_for(synthetic(n));
        let ctx = udp(&route);
        let queries: Vec<Vec<u8>> = (0..1024)
            .map(|i| query(&format!("h{}.bench.test", (i * 7919) % n), Rtype::A, true))
            .collect();
        let mut out = Vec::with_capacity(REPLY_CAPACITY);
        let mut scratch = Scratch::new();
        let mut i = 0;
        g.bench_function(format!("hit/{n}"), |b| {
            b.iter(|| {
                i = (i + 1) & 1023;
                replied(&ctx, black_box(&queries[i]), &mut scratch, &mut out)
            })
        });
    }
    g.finish();
}

/// What `prometheus` adds to each answered UDP query: the per-shard counts of its zone (the
/// clock is read once per batch, not per query).
fn metrics(c: &mut Criterion) {
    let series = ringdns::meter::series::Sharded::<ringdns::meter::series::ZoneShard>::new(String::new(), 1);
    let shard = series.shard(0);
    let mut a = ringdns::meter::series::Answered {
        stream: false,
        ipv6: false,
        qtype: 1,
        dnssec_ok: false,
        rcode: 0,
        plugin: ringdns::meter::series::Plugin::File,
        query_len: 40,
        reply_len: 80,
        nanos: 0,
    };
    c.bench_function("metrics/record", |b| {
        b.iter(|| {
            a.qtype = black_box(1);
            a.nanos = black_box(40_000);
            shard.record(black_box(&a));
        })
    });
}

/// `rrl`'s response stage per reply, nothing limited: read the reply, hash its account,
/// spend its credit (the cost each UDP answer pays in a block with `rrl`), over 10k clients'
/// accounts; and the slip a limited reply gets.
fn rate_limit(c: &mut Criterion) {
    use ringdns::dns::rrl::{self, Limits, SECOND, Table};
    let origin = parse_abs("example.test").unwrap();
    let text = std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/example.test.zone")).unwrap();
    let zone = zonefile::load_bytes(&text, Path::new("example.test.zone"), &origin).unwrap();
    let route = route_for(zone);
    let ctx = udp(&route);
    let limits = Limits {
        zones: vec![Box::from(&b"\0"[..])],
        interval: [SECOND / 10_000_000; rrl::CATEGORIES],
        request_interval: 0,
        window: 15 * SECOND,
        ipv4_prefix: 24,
        ipv6_prefix: 56,
        slip: 2,
        table_size: 100_000,
        report_only: false,
    };
    let mut table = Table::new(limits.table_size);
    let mut g = c.benchmark_group("rrl");
    for (label, q) in [
        ("answer", query("www.example.test", Rtype::A, true)),
        ("nxdomain", query("nope.example.test", Rtype::A, true)),
    ] {
        let mut out = Vec::with_capacity(REPLY_CAPACITY);
        let mut scratch = Scratch::new();
        assert!(replied(&ctx, &q, &mut scratch, &mut out));
        let mut now = SECOND;
        let mut client = 0u32;
        g.bench_function(label, |b| {
            b.iter(|| {
                now += 1_000;
                client = (client + 1) % 10_000;
                let ip = std::net::IpAddr::from((0xC612_0000u32 + (client << 8)).to_be_bytes());
                black_box(table.reply(&limits, ip, black_box(&out), now))
            })
        });
    }
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    let mut scratch = Scratch::new();
    let q = query("www.example.test", Rtype::A, true);
    assert!(replied(&ctx, &q, &mut scratch, &mut out));
    let reply = out.clone();
    g.bench_function("slip", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(&reply);
            rrl::slip(black_box(&mut out));
        })
    });
    g.finish();
}

criterion_group!(benches, classes, signed, online, lookups, metrics, rate_limit);
criterion_main!(benches);
