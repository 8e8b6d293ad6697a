//! Arbitrary bytes as a Corefile.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringdns::fuzzing::corefile_bytes(data));
