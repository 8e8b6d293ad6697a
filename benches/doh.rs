//! DoH request decode, as a shard does it per GET request before answering: the `dns=`
//! parameter (base64url without padding, RFC 8484 §4.1) back to a DNS message, then the
//! message parsed and validated. TLS and HTTP/2 are left out; `tuning/bench` measures the
//! whole DoH path with h2load.
//!
//! `doh/get_decode`: the parameter to bytes. `doh/get_decode_parse`: the same plus
//! `request::parse`, for a plain query and for one with EDNS (OPT with DO and padding).

use std::hint::black_box;

use base64::Engine;
use criterion::{Criterion, criterion_group, criterion_main};
use domain::base::iana::Rtype;
use ringdns::dns::request::{self, Parsed};
use ringdns::net::doh::get_query;
use ringdns::zone::name::NameKey;

fn query_string(msg: &[u8]) -> String {
    format!("dns={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(msg))
}

fn decode(c: &mut Criterion) {
    // ID 0 (RFC 8484 §4.1); with EDNS: UDP size 1232, DO set, one Padding option of 8 octets.
    let plain = ringdns::testing::query("www.example.test", Rtype::A).id(0);
    let edns = plain.clone().edns(1232).dnssec_ok().option(12, &[0; 8]);
    let cases = [
        ("plain", query_string(&plain.wire())),
        ("edns", query_string(&edns.wire())),
    ];
    let mut g = c.benchmark_group("doh");
    for (label, qs) in &cases {
        g.bench_function(format!("get_decode/{label}"), |b| {
            b.iter(|| get_query(Some(black_box(qs.as_str()))).map(|m| m.len()))
        });
        g.bench_function(format!("get_decode_parse/{label}"), |b| {
            b.iter(|| {
                let msg = get_query(Some(black_box(qs.as_str()))).unwrap_or_default();
                let mut scratch = NameKey::EMPTY;
                matches!(request::parse(&msg, &mut scratch), Parsed::Query(r) if r.question.is_some())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
