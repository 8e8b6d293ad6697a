//! Arbitrary bytes as a DNS query, over UDP and TCP limits.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringdns::fuzzing::answer_bytes(data));
