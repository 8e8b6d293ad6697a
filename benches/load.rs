//! Loading: a Corefile, and zone files of 1k and 100k names through the zone file parser;
//! a 10-name IXFR applied to the 100k zone (`Zone::patched`, the delta over the frozen
//! tables) beside it, and lookups in a patched zone against the frozen one.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use domain::base::iana::Rtype;
use ringdns::config::{self, LoadOptions};
use ringdns::zone::name::{NameKey, parse_abs};
use ringdns::zone::store::NameChange;
use ringdns::zone::zonefile;

fn zone_text(n: usize) -> String {
    let mut z = String::from(
        "$ORIGIN bench.test.\n$TTL 3600\n@ SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ NS ns1\nns1 A 192.0.2.1\n",
    );
    for i in 0..n {
        z.push_str(&format!(
            "h{i} A 10.{}.{}.{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255
        ));
    }
    z
}

fn loads(c: &mut Criterion) {
    let mut g = c.benchmark_group("load");
    g.sample_size(10);
    let corefile = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/Corefile")).unwrap();
    g.bench_function("corefile/example", |b| {
        b.iter(|| config::parse(black_box(&corefile), Path::new("Corefile"), LoadOptions::default()).unwrap())
    });
    let origin = parse_abs("bench.test").unwrap();
    for n in [1_000usize, 100_000] {
        let text = zone_text(n);
        g.bench_function(format!("zonefile/{n}"), |b| {
            b.iter(|| zonefile::load_bytes(black_box(text.as_bytes()), Path::new("bench.zone"), &origin).unwrap())
        });
    }
    // 10 names changed (new addresses) and the SOA, on the 100k zone.
    let base = zonefile::load_bytes(zone_text(100_000).as_bytes(), Path::new("bench.zone"), &origin).unwrap();
    let key = |s: &str| NameKey::of(&parse_abs(s).unwrap()).as_slice().into();
    let soa = base.soa().unwrap();
    let mut soa_rdata = soa.rdatas().next().unwrap().to_vec();
    let at = soa_rdata.len() - 20;
    soa_rdata[at..at + 4].copy_from_slice(&2u32.to_be_bytes());
    let mut changes = vec![NameChange {
        owner: key("bench.test"),
        records: vec![
            (Rtype::SOA, 3600, soa_rdata.into()),
            (
                Rtype::NS,
                3600,
                NameKey::of(&parse_abs("ns1.bench.test").unwrap()).as_slice().into(),
            ),
        ],
    }];
    for i in 0..10 {
        changes.push(NameChange {
            owner: key(&format!("h{}.bench.test", i * 9000)),
            records: vec![(Rtype::A, 3600, vec![192, 0, 2, i as u8].into())],
        });
    }
    g.bench_function("ixfr/10-names-of-100000", |b| {
        b.iter(|| base.patched(black_box(&changes)).unwrap().unwrap())
    });
    // The same with one name deleted: a pass over the names tells whether it stays as an
    // empty non-terminal.
    let mut removing = changes.clone();
    removing.push(NameChange {
        owner: key("h5.bench.test"),
        records: vec![],
    });
    g.bench_function("ixfr/10-names-1-deleted-of-100000", |b| {
        b.iter(|| base.patched(black_box(&removing)).unwrap().unwrap())
    });
    g.finish();
    let patched = base.patched(&changes).unwrap().unwrap();
    let names: Vec<Box<[u8]>> = (0..64).map(|i| key(&format!("h{}.bench.test", i * 1500))).collect();
    let mut l = c.benchmark_group("lookup");
    for (label, z) in [("frozen", &base), ("patched", &patched)] {
        l.bench_function(format!("{label}/64-names"), |b| {
            b.iter(|| {
                for n in &names {
                    black_box(z.find(black_box(n), Rtype::A));
                }
            })
        });
    }
    l.finish();
}

criterion_group!(benches, loads);
criterion_main!(benches);
