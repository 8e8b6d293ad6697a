//! Property tests of the query path: random well-formed and mangled queries.

mod support;

use domain::base::iana::Rtype;
use proptest::prelude::*;

fn label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9-]{1,20}"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes: no panic, and a reply (if any) is a response within the transport limits.
    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        ringdns::fuzzing::answer_bytes(&data);
    }

    /// A well-formed query under the test zones is answered with its ID and its question
    /// echoed byte for byte, whatever the case of the name.
    #[test]
    fn question_echoed(labels in proptest::collection::vec(label(), 0..4), zone in prop_oneof![Just("example.test"), Just("EXAMPLE.test"), Just("hosts.TEST")], id in any::<u16>(), qtype in prop_oneof![Just(Rtype::A), Just(Rtype::AAAA), Just(Rtype::TXT), Just(Rtype::ANY), Just(Rtype::NS)]) {
        let mut name = labels.join(".");
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(zone);
        let wire = support::q(&name, qtype).id(id).wire();
        let reply = ringdns::fuzzing::answer_udp(&wire).expect("a reply");
        let r = support::Reply::parse(&reply);
        prop_assert_eq!(r.id(), id);
        prop_assert_eq!(r.question_wire(), support::name_wire(&name));
        prop_assert!(r.rcode() == 0 || r.rcode() == 3, "rcode {}", r.rcode());
        prop_assert!(r.aa() || !r.authority().is_empty(), "authoritative, or a referral");
    }
}
