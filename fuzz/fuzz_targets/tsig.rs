//! Arbitrary bytes as a TSIG-signed request (checked, and its reply signed) and as the reply
//! to a request ringdns signed.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ringdns::fuzzing::tsig_bytes(data);
});
