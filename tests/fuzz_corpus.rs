//! Replays the fuzz seed corpus (fuzz/corpus/) through the fuzz entry points on stable Rust.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        f(&std::fs::read(&path).unwrap());
        n += 1;
    }
    n
}

#[test]
fn answer_corpus() {
    assert!(replay("answer", ringdns::fuzzing::answer_bytes) >= 20);
}

#[test]
fn reply_corpus() {
    assert!(replay("reply", ringdns::fuzzing::reply_bytes) >= 3);
    // The replies ringdns itself gives to the answer seeds, and their mutations.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/answer");
    for entry in std::fs::read_dir(dir).unwrap() {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        if let Some(reply) = ringdns::fuzzing::answer_udp(&seed) {
            for i in 0..reply.len() {
                let mut m = reply.clone();
                m[i] ^= 0xff;
                ringdns::fuzzing::reply_bytes(&m);
            }
            ringdns::fuzzing::reply_bytes(&reply);
        }
    }
}

#[test]
fn corefile_corpus() {
    assert!(replay("corefile", ringdns::fuzzing::corefile_bytes) >= 4);
}

#[test]
fn answer_survives_mutations_of_the_seeds() {
    // A cheap stand-in for the fuzzer on stable: every seed with each byte flipped, and
    // every prefix of every seed.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/answer");
    for entry in std::fs::read_dir(dir).unwrap() {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        for i in 0..seed.len() {
            let mut m = seed.clone();
            m[i] ^= 0xff;
            ringdns::fuzzing::answer_bytes(&m);
            ringdns::fuzzing::answer_bytes(&seed[..i]);
        }
    }
}

#[test]
fn transfer_corpus() {
    // The seed is a whole, valid transfer: it makes a zone.
    let seed = ringdns::fuzzing::transfer_seed();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/transfer");
    assert_eq!(
        std::fs::read(dir.join("seed-axfr")).unwrap(),
        seed,
        "the committed seed is transfer_seed()"
    );
    assert!(ringdns::fuzzing::transfer_bytes(&seed), "the seed makes a zone");
    assert!(
        replay("transfer", |d| {
            ringdns::fuzzing::transfer_bytes(d);
        }) >= 1
    );
    // Every byte flipped, and every prefix.
    for i in 0..seed.len() {
        let mut m = seed.clone();
        m[i] ^= 0xff;
        ringdns::fuzzing::transfer_bytes(&m);
        assert!(
            !ringdns::fuzzing::transfer_bytes(&seed[..i]),
            "a cut stream makes no zone"
        );
    }
}

#[test]
fn tsig_corpus() {
    // The seed is a correctly signed request; its time is when it was made, so it checks or
    // gets BADTIME: either way no panic. Every byte flipped, and every prefix.
    let seed = ringdns::fuzzing::tsig_seed();
    assert!(seed.len() > 60, "the seed carries a TSIG");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/tsig");
    assert!(replay("tsig", ringdns::fuzzing::tsig_bytes) >= 1);
    assert!(dir.join("seed-signed-axfr").exists());
    for i in 0..seed.len() {
        let mut m = seed.clone();
        m[i] ^= 0xff;
        ringdns::fuzzing::tsig_bytes(&m);
        ringdns::fuzzing::tsig_bytes(&seed[..i]);
    }
    ringdns::fuzzing::tsig_bytes(&seed);
}

#[test]
fn update_corpus() {
    // The seed is a valid update: it changes the zone (checked inside update_bytes).
    let seed = ringdns::fuzzing::update_seed();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/update");
    assert_eq!(
        std::fs::read(dir.join("seed")).unwrap(),
        seed,
        "the committed seed is update_seed()"
    );
    let u = ringdns::update::rfc2136::parse(&seed).expect("the seed reads");
    assert_eq!(u.updates.len(), 2);
    assert!(replay("update", ringdns::fuzzing::update_bytes) >= 2);
    for i in 0..seed.len() {
        let mut m = seed.clone();
        m[i] ^= 0xff;
        ringdns::fuzzing::update_bytes(&m);
        ringdns::fuzzing::update_bytes(&seed[..i]);
    }
}

#[test]
fn acme_dns_corpus() {
    assert!(replay("acme_dns", ringdns::fuzzing::acme_dns_bytes) >= 2);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/acme_dns");
    for entry in std::fs::read_dir(dir).unwrap() {
        let seed = std::fs::read(entry.unwrap().path()).unwrap();
        for i in 0..seed.len() {
            let mut m = seed.clone();
            m[i] ^= 0xff;
            ringdns::fuzzing::acme_dns_bytes(&m);
            ringdns::fuzzing::acme_dns_bytes(&seed[..i]);
        }
    }
}
