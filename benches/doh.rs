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
use ringdns::dns::request::{self, Parsed};
use ringdns::net::doh::get_query;
use ringdns::zone::name::NameKey;

/// `www.example.test. A` with the given additional section (ID 0, RD, as RFC 8484 asks).
fn message(additional: &[u8]) -> Vec<u8> {
    let arcount = u8::from(!additional.is_empty());
    let mut m = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, arcount];
    m.extend_from_slice(b"\x03www\x07example\x04test\x00\x00\x01\x00\x01");
    m.extend_from_slice(additional);
    m
}

fn query_string(msg: &[u8]) -> String {
    format!("dns={}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(msg))
}

fn decode(c: &mut Criterion) {
    // OPT: root owner, UDP size 1232, DO set, one Padding option of 8 octets.
    let opt = [
        0, 0, 41, 4, 208, 0, 0, 128, 0, 0, 12, 0, 12, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    let cases = [
        ("plain", query_string(&message(&[]))),
        ("edns", query_string(&message(&opt))),
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
