//! Denial of existence in pre-signed zones (RFC 4035 §3.1.3): the NSEC records that prove a
//! name or a type absent, found through an index of the zone's NSEC owners in canonical
//! order (RFC 4034 §6.1), built once at load. No I/O, no allocation per lookup.

use std::cmp::Ordering;

use domain::base::iana::Rtype;

use super::name::label_starts;
use super::store::{Node, Zone};

/// RFC 4034 §6.1: two lowercase wire names in canonical order, label by label from the
/// root, each label as an octet string (a shorter one first when it is a prefix).
pub fn canonical_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut sa, mut sb) = ([0u8; 128], [0u8; 128]);
    let (na, nb) = (label_starts(a, &mut sa), label_starts(b, &mut sb));
    fn label(w: &[u8], s: u8) -> &[u8] {
        let s = usize::from(s);
        let len = usize::from(w.get(s).copied().unwrap_or(0));
        w.get(s + 1..s + 1 + len).unwrap_or_default()
    }
    // Label starts run leftmost first; the root (length 0) has no start of its own.
    let (mut i, mut j) = (na, nb);
    while i > 0 && j > 0 {
        i -= 1;
        j -= 1;
        match label(a, sa[i]).cmp(label(b, sb[j])) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    i.cmp(&j)
}

impl Zone {
    /// The NSEC whose owner is `key` or the nearest before it in canonical order: the one
    /// that matches or covers `key` (the last covers what sorts before the first: §4.1.1).
    /// `None` in a zone without NSEC.
    pub fn nsec_covering(&self, key: &[u8]) -> Option<(&[u8], Node<'_>)> {
        let owners = self.nsec_owners();
        let last = owners.len().checked_sub(1)?;
        let at = match owners.binary_search_by(|o| canonical_cmp(o, key)) {
            Ok(i) => i,
            Err(0) => last,
            Err(i) => i - 1,
        };
        let owner = &*owners[at];
        self.node(owner)
            .filter(|n| n.rrset(Rtype::NSEC).is_some())
            .map(|n| (owner, n))
    }

    /// The closest encloser of `key` (RFC 5155 §1.3, RFC 4592 §3.3.1): its longest ancestor
    /// (or itself) that exists in the zone; the apex at worst.
    pub fn closest_encloser<'k>(&self, key: &'k [u8]) -> &'k [u8] {
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        for &s in &starts[..n] {
            let suffix = &key[usize::from(s)..];
            if suffix.len() <= self.apex().len() || self.node(suffix).is_some_and(|n| !n.is_nsec3_owner()) {
                return suffix;
            }
        }
        &key[key.len().saturating_sub(self.apex().len())..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::{NameKey, parse_abs};

    fn key(s: &str) -> Vec<u8> {
        NameKey::of(&parse_abs(s).unwrap()).as_slice().to_vec()
    }

    /// The example of RFC 4034 §6.1, in order.
    #[test]
    fn canonical_order_as_rfc_4034_lists_it() {
        let names = [
            "example",
            "a.example",
            "yljkjljk.a.example",
            "Z.a.example",
            "zABC.a.EXAMPLE",
            "z.example",
            "\\001.z.example",
            "*.z.example",
            "\\200.z.example",
        ];
        for w in names.windows(2) {
            assert_eq!(
                canonical_cmp(&key(w[0]), &key(w[1])),
                Ordering::Less,
                "{} < {}",
                w[0],
                w[1]
            );
            assert_eq!(canonical_cmp(&key(w[1]), &key(w[0])), Ordering::Greater);
        }
        assert_eq!(canonical_cmp(&key("a.example"), &key("A.EXAMPLE")), Ordering::Equal);
    }

    #[test]
    fn the_covering_nsec_and_the_closest_encloser() {
        let text = "$ORIGIN example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n@ NSEC a NS SOA NSEC\na A 192.0.2.1\na NSEC c.b A NSEC\nc.b A 192.0.2.2\nc.b NSEC example. A NSEC\n";
        let origin = parse_abs("example").unwrap();
        let z = crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap();
        let owner = |q: &str| z.nsec_covering(&key(q)).map(|(o, _)| crate::zone::name::display(o));
        assert_eq!(owner("a.example").as_deref(), Some("a.example."), "a match");
        assert_eq!(owner("aa.example").as_deref(), Some("a.example."));
        assert_eq!(
            owner("b.example").as_deref(),
            Some("a.example."),
            "an empty non-terminal"
        );
        assert_eq!(owner("d.example").as_deref(), Some("c.b.example."), "after the last");
        assert_eq!(owner("x.a.example").as_deref(), Some("a.example."));
        assert_eq!(z.closest_encloser(&key("x.y.a.example")), &key("a.example")[..]);
        assert_eq!(z.closest_encloser(&key("q.b.example")), &key("b.example")[..]);
        assert_eq!(z.closest_encloser(&key("nope.example")), &key("example")[..]);
    }
}
