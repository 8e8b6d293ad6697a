//! Making RRSIGs (RFC 4034 §3.1.8.1): the RRSIG rdata without its signature, then the
//! RRset in canonical form and order (§6.2, §6.3; RFC 6840 §5.1), signed by a key.

use domain::base::iana::Rtype;

use super::keys::SigningKey;

/// The validity of the signatures made now.
#[derive(Clone, Copy, Debug)]
pub struct Validity {
    /// Inception, seconds since the epoch (mod 2^32, RFC 4034 §3.1.5).
    pub inception: u32,
    /// Expiration.
    pub expiration: u32,
}

impl Validity {
    /// CoreDNS's window: from three hours ago (clocks that lag, daylight saving time) to
    /// eight days from now.
    pub fn from(now: u64) -> Validity {
        Validity {
            inception: now.saturating_sub(3 * 3600) as u32,
            expiration: (now + 8 * 86400) as u32,
        }
    }
}

/// One RRset to sign: its owner (lowercase wire), type, TTL (the original TTL of the
/// RRSIG) and rdatas.
pub struct Signee<'a> {
    /// Owner, lowercase wire.
    pub owner: &'a [u8],
    /// Type.
    pub rtype: Rtype,
    /// TTL.
    pub ttl: u32,
    /// The records' rdata, uncompressed.
    pub rdatas: &'a [&'a [u8]],
}

/// Appends the RRSIG rdata by `key` over `rrset` for the zone `signer` (lowercase wire) to
/// `out` as a length and the rdata. False when the key failed (nothing appended).
pub fn rrsig(key: &SigningKey, signer: &[u8], rrset: &Signee<'_>, validity: Validity, out: &mut Vec<u8>) -> bool {
    let mut rdata = Vec::with_capacity(18 + signer.len() + 512);
    rdata.extend_from_slice(&rrset.rtype.to_int().to_be_bytes());
    rdata.push(key.algorithm);
    rdata.push(labels(rrset.owner));
    rdata.extend_from_slice(&rrset.ttl.to_be_bytes());
    rdata.extend_from_slice(&validity.expiration.to_be_bytes());
    rdata.extend_from_slice(&validity.inception.to_be_bytes());
    rdata.extend_from_slice(&key.tag.to_be_bytes());
    rdata.extend_from_slice(signer);
    let mut data = rdata.clone();
    let mut records: Vec<Vec<u8>> = rrset.rdatas.iter().map(|r| canonical_rdata(rrset.rtype, r)).collect();
    records.sort_unstable();
    records.dedup();
    for r in &records {
        data.extend_from_slice(rrset.owner);
        data.extend_from_slice(&rrset.rtype.to_int().to_be_bytes());
        data.extend_from_slice(&1u16.to_be_bytes()); // class IN
        data.extend_from_slice(&rrset.ttl.to_be_bytes());
        data.extend_from_slice(&(r.len() as u16).to_be_bytes());
        data.extend_from_slice(r);
    }
    if !key.sign(&data, &mut rdata) {
        return false;
    }
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    true
}

/// The type bitmap of NSEC (RFC 4034 §4.1.2) for `types`, sorted and without repeats,
/// into `out`: per window of 256 types that has one, its number, its length and its bits.
/// Returns the length written; windows that do not fit are left out.
pub fn type_bitmap(types: &[u16], out: &mut [u8]) -> usize {
    let (mut i, mut at) = (0, 0);
    while i < types.len() {
        let window = types[i] >> 8;
        let mut bits = [0u8; 32];
        let mut used = 0;
        while i < types.len() && types[i] >> 8 == window {
            let low = usize::from(types[i] & 0xff);
            bits[low / 8] |= 0x80 >> (low % 8);
            used = used.max(low / 8 + 1);
            i += 1;
        }
        let Some(dst) = out.get_mut(at..at + 2 + used) else {
            break;
        };
        dst[0] = window as u8;
        dst[1] = used as u8;
        dst[2..].copy_from_slice(&bits[..used]);
        at += 2 + used;
    }
    at
}

/// The labels field (RFC 4034 §3.1.3): the owner's labels, not counting the root or a
/// leading wildcard label.
pub fn labels(owner: &[u8]) -> u8 {
    let (mut n, mut at) = (0u8, 0usize);
    while let Some(&len) = owner.get(at) {
        if len == 0 {
            break;
        }
        n += 1;
        at += 1 + usize::from(len);
    }
    if owner.starts_with(b"\x01*") {
        n -= 1;
    }
    n
}

/// RFC 4034 §6.2 item 3 (without NSEC, RFC 6840 §5.1): the names inside the rdata of
/// these types are lowercased; other rdata stays as it is.
fn canonical_rdata(rtype: Rtype, rdata: &[u8]) -> Vec<u8> {
    let mut out = rdata.to_vec();
    // Where the names start, and how many follow one another from there.
    let (start, names) = match rtype {
        Rtype::NS | Rtype::CNAME | Rtype::PTR | Rtype::DNAME => (0, 1),
        Rtype::MX | Rtype::AFSDB | Rtype::RT | Rtype::KX => (2, 1),
        Rtype::SRV => (6, 1),
        Rtype::SOA | Rtype::MINFO | Rtype::RP => (0, 2),
        Rtype::PX => (2, 2),
        Rtype::RRSIG => (18, 1),
        Rtype::NAPTR => match naptr_replacement(rdata) {
            Some(at) => (at, 1),
            None => return out,
        },
        _ => return out,
    };
    let mut at = start;
    for _ in 0..names {
        while let Some(&len) = out.get(at) {
            let end = (at + 1 + usize::from(len)).min(out.len());
            out[at + 1..end].make_ascii_lowercase();
            at = end;
            if len == 0 {
                break;
            }
        }
    }
    out
}

/// Where NAPTR's replacement name starts: after order, preference and three strings.
fn naptr_replacement(rdata: &[u8]) -> Option<usize> {
    let mut at = 4;
    for _ in 0..3 {
        at += 1 + usize::from(*rdata.get(at)?);
    }
    Some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_skip_the_root_and_a_wildcard() {
        assert_eq!(labels(b"\x03www\x07example\x00"), 2);
        assert_eq!(labels(b"\x01*\x07example\x00"), 1);
        assert_eq!(labels(b"\x00"), 0);
    }

    #[test]
    fn names_in_rdata_are_lowercased_for_the_listed_types_only() {
        assert_eq!(
            canonical_rdata(Rtype::MX, b"\x00\x0a\x04MAIL\x02Ex\x00"),
            b"\x00\x0a\x04mail\x02ex\x00"
        );
        assert_eq!(canonical_rdata(Rtype::TXT, b"\x02AB"), b"\x02AB");
        assert_eq!(
            canonical_rdata(Rtype::NSEC, b"\x01A\x00\x00\x01\x40"),
            b"\x01A\x00\x00\x01\x40"
        );
    }
}
