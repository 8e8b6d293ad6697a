//! Loading: a Corefile, and zone files of 1k and 100k names through the zone file parser.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ringdns::config::{self, LoadOptions};
use ringdns::zone::name::parse_abs;
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
    g.finish();
}

criterion_group!(benches, loads);
criterion_main!(benches);
