//! Which NSEC or NSEC3 records prove an answer's absence of data, added to the authority
//! section of a [`Resolution`] with their RRSIGs. Each function names the answer class of
//! RFC 4035 §3.1.3 and RFC 5155 §7.2 it serves; a zone with neither chain gets nothing.

use domain::base::iana::Rtype;

use crate::dns::resolve::{Owner, Part, Resolution};
use crate::zone::name::MAX_NAME_LEN;
use crate::zone::nsec3::Nsec3;
use crate::zone::store::{Node, Zone};

/// True when the zone has a chain to prove denials with.
pub fn is_signed(zone: &Zone) -> bool {
    zone.nsec3_chain().is_some() || !zone.nsec_owners().is_empty()
}

/// Name error (NXDOMAIN): RFC 4035 §3.1.3.2, the NSEC covering the name and the one
/// covering the wildcard that could have made it; RFC 5155 §7.2.1, the closest encloser
/// proof and the NSEC3 covering the wildcard at the closest encloser.
pub fn name_error<'r>(res: &mut Resolution<'r>, zone: &'r Zone, key: &[u8]) {
    if zone.nsec3_chain().is_some() {
        if let Some(encloser) = closest_encloser_proof(res, zone, key) {
            push_nsec3(res, zone.nsec3_wildcard(encloser));
        }
        return;
    }
    push_nsec(res, zone, key);
    push_nsec(res, zone, wildcard(&mut [0; MAX_NAME_LEN], zone.closest_encloser(key)));
}

/// No data at an existing name (or an empty non-terminal): RFC 4035 §3.1.3.1, its NSEC
/// (for an empty non-terminal, the one covering it); RFC 5155 §7.2.2, its NSEC3, and where
/// Opt-Out left it without one (§7.2.3: a DS query at an unsigned delegation; an empty
/// non-terminal above only such), the closest provable encloser proof.
pub fn no_data<'r>(res: &mut Resolution<'r>, zone: &'r Zone, key: &[u8]) {
    if zone.nsec3_chain().is_some() {
        match zone.nsec3_matching(key) {
            Some(m) => push_nsec3(res, Some(m)),
            None => {
                closest_encloser_proof(res, zone, key);
            }
        }
        return;
    }
    push_nsec(res, zone, key);
}

/// A referral to a child without DS (RFC 4035 §3.1.4: the NSEC at the cut shows NS and no
/// DS; RFC 5155 §7.2.7: the NSEC3 matching the cut, or under Opt-Out the closest provable
/// encloser proof with an Opt-Out NSEC3 covering the next closer name).
pub fn insecure_referral<'r>(res: &mut Resolution<'r>, zone: &'r Zone, cut: &[u8]) {
    no_data(res, zone, cut);
}

/// An answer synthesised from a wildcard (RFC 4035 §3.1.3.3: the NSEC covering the name;
/// RFC 5155 §7.2.6: the NSEC3 covering the next closer name; the wildcard's RRSIG labels
/// give the closest encloser).
pub fn wildcard_answer<'r>(res: &mut Resolution<'r>, zone: &'r Zone, key: &[u8]) {
    if zone.nsec3_chain().is_some() {
        let encloser = zone.closest_encloser(key);
        if let Some(next) = next_closer(key, encloser) {
            push_nsec3(res, zone.nsec3_for(next));
        }
        return;
    }
    push_nsec(res, zone, key);
}

/// No data at a wildcard that matched (RFC 4035 §3.1.3.4: the NSEC covering the name and
/// the wildcard's own; RFC 5155 §7.2.5: the closest encloser proof and the NSEC3 matching
/// the wildcard).
pub fn wildcard_no_data<'r>(res: &mut Resolution<'r>, zone: &'r Zone, key: &[u8]) {
    if zone.nsec3_chain().is_some() {
        let encloser = zone.closest_encloser(key);
        push_nsec3(res, zone.nsec3_matching(encloser));
        if let Some(next) = next_closer(key, encloser) {
            push_nsec3(res, zone.nsec3_for(next));
        }
        push_nsec3(res, zone.nsec3_wildcard(encloser));
        return;
    }
    push_nsec(res, zone, key);
    push_nsec(res, zone, wildcard(&mut [0; MAX_NAME_LEN], zone.closest_encloser(key)));
}

/// RFC 5155 §7.2.1: the NSEC3 matching the closest provable encloser of `key` and the one
/// covering the next closer name. Returns the encloser (for its wildcard).
fn closest_encloser_proof<'r, 'k>(res: &mut Resolution<'r>, zone: &'r Zone, key: &'k [u8]) -> Option<&'k [u8]> {
    let encloser = zone.nsec3_encloser(key)?;
    push_nsec3(res, Some(encloser.matching));
    push_nsec3(res, zone.nsec3_for(encloser.next_closer?));
    Some(encloser.name)
}

/// The name one label longer than `encloser` on the way to `key` (RFC 5155 §1.3).
fn next_closer<'k>(key: &'k [u8], encloser: &[u8]) -> Option<&'k [u8]> {
    let mut at = 0;
    loop {
        let rest = key.get(at..)?;
        let len = 1 + usize::from(*rest.first()?);
        if rest.len() - len == encloser.len() {
            return Some(rest);
        }
        if rest.len() <= encloser.len() {
            return None;
        }
        at += len;
    }
}

/// `*.<encloser>` in `buf`; the encloser itself when that would be too long.
fn wildcard<'b>(buf: &'b mut [u8; MAX_NAME_LEN], encloser: &'b [u8]) -> &'b [u8] {
    if encloser.len() + 2 > MAX_NAME_LEN {
        return encloser;
    }
    buf[..2].copy_from_slice(b"\x01*");
    buf[2..2 + encloser.len()].copy_from_slice(encloser);
    &buf[..2 + encloser.len()]
}

/// The NSEC matching or covering `key`, with its RRSIG.
fn push_nsec<'r>(res: &mut Resolution<'r>, zone: &'r Zone, key: &[u8]) {
    if let Some((owner, node)) = zone.nsec_covering(key) {
        push_once(res, owner, node, Rtype::NSEC);
    }
}

fn push_nsec3<'r>(res: &mut Resolution<'r>, n: Option<Nsec3<'r>>) {
    if let Some(n) = n {
        push_once(res, n.owner, n.node, Rtype::NSEC3);
    }
}

/// The `rtype` RRset at `owner` into the authority section, unless it is there already
/// (one record can prove two things: RFC 5155 §7.2.1's note on duplicates).
fn push_once<'r>(res: &mut Resolution<'r>, owner: &'r [u8], node: Node<'r>, rtype: Rtype) {
    let Some(set) = node.rrset(rtype) else {
        return;
    };
    let seen = res
        .authority
        .iter()
        .any(|p| p.set.rtype() == rtype && matches!(p.owner, Owner::Name(o) if o == owner));
    if !seen {
        res.authority.push(Part {
            owner: Owner::Name(owner),
            set,
            sigs: node.rrset(Rtype::RRSIG),
            ttl: set.ttl(),
            authoritative: true,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::{NameKey, parse_abs};

    fn key(s: &str) -> Vec<u8> {
        NameKey::of(&parse_abs(s).unwrap()).as_slice().to_vec()
    }

    #[test]
    fn the_next_closer_name() {
        let k = key("a.b.c.example");
        assert_eq!(next_closer(&k, &key("c.example")), Some(&key("b.c.example")[..]));
        assert_eq!(next_closer(&k, &key("b.c.example")), Some(&k[..]));
        assert_eq!(next_closer(&k, &k), None);
    }
}
