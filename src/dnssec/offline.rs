//! Offline signing, CoreDNS's `sign`: a zone signed whole with NSEC into zone file text.
//! Nothing here does I/O; the caller reads the zone, says the time and writes the text.
//!
//! As CoreDNS's `sign` does: every key signs every RRset (keys are CSKs); DNSKEY, CDS and
//! CDNSKEY at the apex come from the keys (what the zone had of them, and of RRSIG, NSEC,
//! NSEC3 and NSEC3PARAM, is dropped); the SOA serial becomes the time of signing; NSEC
//! records take the TTL of negative answers (RFC 9077); signatures start three hours ago
//! less a jitter of up to 18 hours and end 32 days ahead plus up to 5. Unlike it, CDS is
//! SHA-256 only (RFC 8624 §3.3: SHA-1 DS must not be published).

use std::sync::Arc;

use domain::base::iana::Rtype;

use super::keys::SigningKey;
use super::sign::{Signee, Validity, rrsig, type_bitmap};
use crate::zone::name::display;
use crate::zone::nsec::canonical_cmp;
use crate::zone::rrset::Rrset;
use crate::zone::store::Zone;
use crate::zone::transfer::record_text;

/// Signatures last 32 days, plus the expiration jitter.
pub const LIFETIME: u64 = 32 * 86400;
/// Most expiration jitter: 5 days.
pub const EXPIRATION_JITTER: u64 = 5 * 86400;
/// Inception three hours back, less up to 18 hours of jitter.
pub const INCEPTION_BACK: u64 = 3 * 3600;
/// Most inception jitter.
pub const INCEPTION_JITTER: u64 = 18 * 3600;

/// DNSSEC types the signer makes, and drops from its input.
const MADE: [Rtype; 8] = [
    Rtype::RRSIG,
    Rtype::NSEC,
    Rtype::NSEC3,
    Rtype::NSEC3PARAM,
    Rtype::DNSKEY,
    Rtype::CDS,
    Rtype::CDNSKEY,
    Rtype::DS,
];

/// What signing made.
#[derive(Debug)]
pub struct Signed {
    /// The zone file text.
    pub text: String,
    /// The new SOA serial.
    pub serial: u32,
    /// The signatures' validity.
    pub validity: Validity,
    /// RRSIGs made.
    pub signatures: usize,
}

/// Why a zone could not be signed.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// A key failed to sign.
    #[error("key {0} failed to sign")]
    Key(String),
    /// The zone has no SOA.
    #[error("the zone has no SOA")]
    NoSoa,
}

/// One record to write: owner, type, TTL, rdata.
type Record = (Vec<u8>, Rtype, u32, Vec<u8>);

/// Signs `zone` with `keys` at `now` (seconds since the epoch); `jitter` are two random
/// numbers that spread the validity (inception, expiration).
pub fn sign(zone: &Zone, keys: &[Arc<SigningKey>], now: u64, jitter: [u64; 2]) -> Result<Signed, SignError> {
    let apex = zone.apex();
    let soa = zone.soa().ok_or(SignError::NoSoa)?;
    let soa_ttl = soa.ttl();
    let negative_ttl = zone.negative_ttl();
    let serial = now as u32;
    let validity = Validity {
        inception: now.saturating_sub(INCEPTION_BACK + jitter[0] % INCEPTION_JITTER) as u32,
        expiration: (now + LIFETIME + jitter[1] % EXPIRATION_JITTER) as u32,
    };
    // The authoritative names with data, in canonical order (RFC 4034 §6.1): those the
    // NSEC chain links; data below a cut (glue) is written unsigned after them.
    let mut names: Vec<&[u8]> = Vec::new();
    let mut glue: Vec<&[u8]> = Vec::new();
    for name in zone.names() {
        let Some(node) = zone.node(name) else { continue };
        if node.is_nsec3_owner()
            || !node
                .rrsets()
                .any(|s| !MADE.contains(&s.rtype()) || s.rtype() == Rtype::DS)
        {
            continue;
        }
        if node.below_cut().is_some() {
            glue.push(name);
        } else {
            names.push(name);
        }
    }
    names.sort_unstable_by(|a, b| canonical_cmp(a, b));
    let mut out = String::new();
    let mut signatures = 0;
    let mut emit = |records: &[Record], sign: bool, out: &mut String| -> Result<(), SignError> {
        let Some((owner, rtype, ttl, _)) = records.first() else {
            return Ok(());
        };
        for (o, t, ttl, rd) in records {
            out.push_str(&record_text(o, *t, *ttl, rd));
        }
        if !sign {
            return Ok(());
        }
        let rdatas: Vec<&[u8]> = records.iter().map(|r| &r.3[..]).collect();
        let signee = Signee {
            owner,
            rtype: *rtype,
            ttl: *ttl,
            rdatas: &rdatas,
        };
        for k in keys {
            let mut packed = Vec::new();
            if !rrsig(k, apex, &signee, validity, &mut packed) {
                return Err(SignError::Key(k.path.display().to_string()));
            }
            out.push_str(&record_text(owner, Rtype::RRSIG, *ttl, &packed[2..]));
            signatures += 1;
        }
        Ok(())
    };
    for (i, name) in names.iter().enumerate() {
        let Some(node) = zone.node(name) else { continue };
        let at_apex = *name == apex;
        let cut = node.is_delegation();
        let mut types: Vec<u16> = vec![Rtype::RRSIG.to_int(), Rtype::NSEC.to_int()];
        let mut sets: Vec<(Vec<Record>, bool)> = Vec::new();
        for set in node.rrsets() {
            let t = set.rtype();
            // A DS is the parent's, at a cut (kept); anywhere else the signer makes them.
            if MADE.contains(&t) && !(t == Rtype::DS && cut) {
                continue;
            }
            types.push(t.to_int());
            let ttl = if t == Rtype::SOA { soa_ttl } else { set.ttl() };
            let records = set
                .rdatas()
                .map(|rd| {
                    let rd = if t == Rtype::SOA {
                        with_serial(rd, serial)
                    } else {
                        rd.to_vec()
                    };
                    (name.to_vec(), t, ttl, rd)
                })
                .collect();
            // RFC 4035 §2.2: at a cut only the DS (and the NSEC) are signed.
            sets.push((records, !cut || t == Rtype::DS));
        }
        if at_apex {
            for (t, rdatas) in apex_key_sets(apex, keys) {
                types.push(t.to_int());
                sets.push((
                    rdatas.into_iter().map(|rd| (name.to_vec(), t, soa_ttl, rd)).collect(),
                    true,
                ));
            }
        }
        // The SOA first.
        sets.sort_by_key(|(r, _)| r.first().is_none_or(|r| r.1 != Rtype::SOA));
        let next = names.get(i + 1).copied().unwrap_or(apex);
        let nsec = vec![(name.to_vec(), Rtype::NSEC, negative_ttl, nsec_rdata(next, &mut types))];
        for (records, signed) in &sets {
            emit(records, *signed, &mut out)?;
        }
        emit(&nsec, true, &mut out)?;
    }
    for name in glue {
        let Some(node) = zone.node(name) else { continue };
        for set in node.rrsets().filter(|s| !MADE.contains(&s.rtype())) {
            let records: Vec<Record> = set
                .rdatas()
                .map(|rd| (name.to_vec(), set.rtype(), set.ttl(), rd.to_vec()))
                .collect();
            emit(&records, false, &mut out)?;
        }
    }
    let tags: Vec<String> = keys.iter().map(|k| k.tag.to_string()).collect();
    let head = format!(
        "; {} signed by ringdns with key tags {}, serial {serial}\n",
        display(apex),
        tags.join(", ")
    );
    Ok(Signed {
        text: head + &out,
        serial,
        validity,
        signatures,
    })
}

/// An SOA rdata with another serial (the 20 octets after the two names: serial first).
fn with_serial(rdata: &[u8], serial: u32) -> Vec<u8> {
    let mut rd = rdata.to_vec();
    if let Some(at) = rd.len().checked_sub(20) {
        rd[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    }
    rd
}

/// DNSKEY, CDS (SHA-256, RFC 4509) and CDNSKEY of the keys (RFC 7344).
fn apex_key_sets(apex: &[u8], keys: &[Arc<SigningKey>]) -> [(Rtype, Vec<Vec<u8>>); 3] {
    let dnskeys: Vec<Vec<u8>> = keys.iter().map(|k| k.dnskey.to_vec()).collect();
    let cds = keys
        .iter()
        .map(|k| {
            let mut data = apex.to_vec();
            data.extend_from_slice(&k.dnskey);
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &data);
            let mut rd = k.tag.to_be_bytes().to_vec();
            rd.extend_from_slice(&[k.algorithm, DIGEST_SHA256]);
            rd.extend_from_slice(digest.as_ref());
            rd
        })
        .collect();
    [
        (Rtype::DNSKEY, dnskeys.clone()),
        (Rtype::CDS, cds),
        (Rtype::CDNSKEY, dnskeys),
    ]
}

/// The DS digest type of SHA-256 (RFC 4509).
const DIGEST_SHA256: u8 = 2;

/// NSEC rdata: the next owner, then the type bitmap of `types`.
fn nsec_rdata(next: &[u8], types: &mut Vec<u16>) -> Vec<u8> {
    types.sort_unstable();
    types.dedup();
    let mut rd = next.to_vec();
    let at = rd.len();
    rd.resize(at + 34 * 256, 0);
    let len = type_bitmap(types, &mut rd[at..]);
    rd.truncate(at + len);
    rd
}

/// The inception and expiration of the SOA's first RRSIG in a signed zone.
pub fn soa_signature(zone: &Zone) -> Option<(u32, u32)> {
    let sigs: Rrset<'_> = zone.apex_node()?.rrset(Rtype::RRSIG)?;
    sigs.rdatas()
        .find(|rd| rd.get(..2) == Some(&Rtype::SOA.to_int().to_be_bytes()[..]))
        .and_then(|rd| {
            let word = |at: usize| rd.get(at..at + 4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
            Some((word(12)?, word(8)?))
        })
}
