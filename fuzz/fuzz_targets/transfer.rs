//! Arbitrary bytes as an incoming AXFR stream (the secondary's parser).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ringdns::fuzzing::transfer_bytes(data);
});
