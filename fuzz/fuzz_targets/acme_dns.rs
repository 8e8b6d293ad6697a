//! Arbitrary bytes as acme-dns API request bodies (/register and /update).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ringdns::fuzzing::acme_dns_bytes(data);
});
