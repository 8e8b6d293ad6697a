//! Arbitrary bytes as a reply that ringdns rewrites (loadbalance, dns64).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringdns::fuzzing::reply_bytes(data));
