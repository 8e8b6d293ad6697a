//! Arbitrary bytes as an RFC 2136 UPDATE applied to a zone, and as an update log.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ringdns::fuzzing::update_bytes(data);
});
