//! What is missing or wrong in a signed zone, found once at load: RRsets without an RRSIG,
//! signatures expired or not yet valid, a broken NSEC or NSEC3 chain, RRSIGs with no
//! DNSKEY to check them by, a chain the server cannot use.
//!
//! ringdns serves such a zone anyway, with a warning naming the first broken record of each
//! kind: a validating resolver turns the broken answers into SERVFAIL whether the zone is
//! served or refused, while refusing it would fail the non-validating clients too (and every
//! answer that still validates). [`audit`] is pure (the caller says what time it is);
//! [`warn`] reads the clock and logs.

use std::cmp::Ordering;
use std::fmt;

use domain::base::iana::Rtype;

use crate::zone::name::display;
use crate::zone::nsec::canonical_cmp;
use crate::zone::store::Zone;

/// One kind of problem, the first record that shows it, and how many show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub kind: Kind,
    /// The first record found with it: owner and type.
    pub first: String,
    /// How many records have it.
    pub count: usize,
}

/// The kinds of [`Finding`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An authoritative RRset with no RRSIG over it (RFC 4035 §2.2).
    Unsigned,
    /// An RRSIG past its expiration (RFC 4034 §3.1.5).
    Expired,
    /// An RRSIG before its inception.
    NotYetValid,
    /// An NSEC whose next name is not the next owner in canonical order (RFC 4034 §4.1.1).
    NsecChain,
    /// An NSEC3 whose next hashed owner is not the next hash of the chain (RFC 5155 §3.1.7).
    Nsec3Chain,
    /// RRSIGs but no DNSKEY at the apex: nothing can validate them.
    NoDnskey,
    /// NSEC3 records without an NSEC3PARAM of SHA-1 and flags 0, or with more iterations
    /// than answers are hashed for: no NSEC3 proof is served.
    Nsec3Unusable,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Unsigned => "RRsets without an RRSIG",
            Kind::Expired => "signatures expired",
            Kind::NotYetValid => "signatures not yet valid",
            Kind::NsecChain => "NSEC chain broken",
            Kind::Nsec3Chain => "NSEC3 chain broken",
            Kind::NoDnskey => "RRSIGs without a DNSKEY at the apex",
            Kind::Nsec3Unusable => "NSEC3 records without a usable NSEC3PARAM (SHA-1, flags 0, at most 150 iterations): no NSEC3 proofs served",
        })
    }
}

/// The findings of a zone, at most one per kind; empty for a zone that is not signed (no
/// RRSIG, NSEC or NSEC3 at all) or signed without fault. `now` is seconds since the epoch.
pub fn audit(zone: &Zone, now: u64) -> Vec<Finding> {
    // A zone signed at all signs its apex; the others (most) cost no walk.
    let apex_signed = zone.apex_node().is_some_and(|a| {
        [Rtype::RRSIG, Rtype::DNSKEY, Rtype::NSEC, Rtype::NSEC3PARAM]
            .iter()
            .any(|t| a.rrset(*t).is_some())
    });
    if !apex_signed && zone.nsec_owners().is_empty() {
        return Vec::new();
    }
    let mut out = Findings::default();
    let mut signed = false;
    let mut hashed = false;
    let now = now as u32; // RFC 4034 §3.1.5: compared in serial number arithmetic.
    for name in zone.names() {
        let Some(node) = zone.node(name) else { continue };
        let sigs = node.rrset(Rtype::RRSIG);
        signed |= sigs.is_some() || node.rrset(Rtype::NSEC).is_some();
        hashed |= node.rrset(Rtype::NSEC3).is_some();
        if let Some(sigs) = sigs {
            for rd in sigs.rdatas() {
                let word = |at: usize| rd.get(at..at + 4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]));
                let (Some(expiration), Some(inception)) = (word(8), word(12)) else {
                    continue;
                };
                let covered = rd.get(..2).map_or(0, |c| u16::from_be_bytes([c[0], c[1]]));
                let what = || format!("{} RRSIG {}", display(name), Rtype::from_int(covered));
                if serial_lt(expiration, now) {
                    out.add(Kind::Expired, what);
                } else if serial_lt(now, inception) {
                    out.add(Kind::NotYetValid, what);
                }
            }
        }
        // Data at or below a cut is not signed, but for the parent's DS and NSEC (§2.2).
        if node.below_cut().is_some() {
            continue;
        }
        for set in node.rrsets() {
            let t = set.rtype();
            if t == Rtype::RRSIG || node.is_delegation() && !matches!(t, Rtype::DS | Rtype::NSEC) {
                continue;
            }
            let covered = t.to_int().to_be_bytes();
            if !sigs.is_some_and(|s| s.rdatas().any(|r| r.get(..2) == Some(&covered[..]))) {
                out.add(Kind::Unsigned, || format!("{} {t}", display(name)));
            }
        }
    }
    if !signed && !hashed {
        return Vec::new();
    }
    let apex = zone.apex_node();
    if signed && apex.and_then(|a| a.rrset(Rtype::DNSKEY)).is_none() {
        out.add(Kind::NoDnskey, || display(zone.apex()));
    }
    nsec_chain(zone, &mut out);
    if hashed {
        match zone.nsec3_chain() {
            Some(chain) => {
                if let Some(owner) = chain.first_broken_link(zone) {
                    out.add(Kind::Nsec3Chain, || format!("{} NSEC3", display(owner)));
                }
            }
            None => out.add(Kind::Nsec3Unusable, || display(zone.apex())),
        }
    }
    out.0
}

/// Logs the findings of `zone` (loaded from `source`, a file or a primary) as warnings.
pub fn warn(zone: &Zone, source: &dyn fmt::Display) {
    let now = crate::dns::unix_seconds();
    let name = display(zone.apex());
    for f in audit(zone, now) {
        tracing::warn!(zone = %name, from = %source, first = %f.first, count = f.count, "signed zone served as it is: {}", f.kind);
    }
}

/// RFC 1982 §3.2: `a` is before `b`.
fn serial_lt(a: u32, b: u32) -> bool {
    a != b && b.wrapping_sub(a) < 1 << 31
}

/// Each NSEC's next name is the next owner in canonical order, the last's the apex.
fn nsec_chain(zone: &Zone, out: &mut Findings) {
    let owners = zone.nsec_owners();
    for (i, owner) in owners.iter().enumerate() {
        let want: &[u8] = owners.get(i + 1).map_or(zone.apex(), |n| n);
        let next = zone
            .node(owner)
            .and_then(|n| n.rrset(Rtype::NSEC))
            .and_then(|s| s.rdatas().next())
            .and_then(|rd| rd.get(..name_len(rd)?))
            .map(|n| n.to_ascii_lowercase());
        if next.is_none_or(|n| canonical_cmp(&n, want) != Ordering::Equal) {
            out.add(Kind::NsecChain, || format!("{} NSEC", display(owner)));
        }
    }
}

/// The length of the uncompressed wire name at the start of `wire`.
fn name_len(wire: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let len = usize::from(*wire.get(at)?);
        at += 1 + len;
        if len == 0 {
            return Some(at);
        }
    }
}

/// At most one finding per kind, in the order found.
#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, kind: Kind, first: impl FnOnce() -> String) {
        match self.0.iter_mut().find(|f| f.kind == kind) {
            Some(f) => f.count += 1,
            None => self.0.push(Finding {
                kind,
                first: first(),
                count: 1,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::parse_abs;

    fn zone(text: &str) -> Zone {
        crate::zone::zonefile::load_bytes(
            text.as_bytes(),
            std::path::Path::new("z"),
            &parse_abs("example").unwrap(),
        )
        .unwrap()
    }

    const HEAD: &str = "$ORIGIN example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\n";
    /// An RRSIG over `t`, valid from 2020 to 2030.
    fn sig(owner: &str, t: &str) -> String {
        format!("{owner} RRSIG {t} 13 1 300 20300101000000 20200101000000 1 example. AAAA\n")
    }
    /// 2026-12-02.
    const NOW: u64 = 1_796_180_000;

    #[test]
    fn an_unsigned_zone_has_nothing_to_say() {
        assert!(audit(&zone(&format!("{HEAD}ns A 192.0.2.1\n")), NOW).is_empty());
    }

    #[test]
    fn each_fault_is_named_by_its_first_record() {
        let mut text = format!("{HEAD}ns A 192.0.2.1\n@ NSEC ns NS SOA RRSIG NSEC\nns NSEC www A RRSIG NSEC\n");
        for (o, t) in [("@", "SOA"), ("@", "NS"), ("@", "NSEC"), ("ns", "NSEC")] {
            text.push_str(&sig(o, t));
        }
        text.push_str("ns RRSIG A 13 2 300 20210101000000 20200101000000 1 example. AAAA\n");
        let found = audit(&zone(&text), NOW);
        let kinds: Vec<(Kind, &str, usize)> = found.iter().map(|f| (f.kind, f.first.as_str(), f.count)).collect();
        assert!(kinds.contains(&(Kind::Expired, "ns.example. RRSIG A", 1)), "{kinds:?}");
        assert!(kinds.contains(&(Kind::NoDnskey, "example.", 1)), "{kinds:?}");
        // ns's NSEC names www, which is no owner: the last NSEC must point at the apex.
        assert!(kinds.contains(&(Kind::NsecChain, "ns.example. NSEC", 1)), "{kinds:?}");
        assert!(
            !kinds.iter().any(|k| k.0 == Kind::Unsigned),
            "the expired RRSIG still covers A: {kinds:?}"
        );
    }

    #[test]
    fn unsigned_rrsets_but_not_glue_or_the_cut_ns() {
        let mut text = format!(
            "{HEAD}ns A 192.0.2.1\n@ DNSKEY 257 3 13 AAAA\nsub NS ns.sub\nns.sub A 192.0.2.2\nwww A 192.0.2.3\n"
        );
        for (o, t) in [("@", "SOA"), ("@", "NS"), ("@", "DNSKEY"), ("ns", "A")] {
            text.push_str(&sig(o, t));
        }
        let found = audit(&zone(&text), NOW);
        assert_eq!(
            found,
            vec![Finding {
                kind: Kind::Unsigned,
                first: "www.example. A".into(),
                count: 1
            }]
        );
    }

    #[test]
    fn serial_arithmetic_wraps() {
        assert!(serial_lt(1, 2) && !serial_lt(2, 1) && !serial_lt(5, 5));
        assert!(serial_lt(u32::MAX, 3), "2106 wraps to a small number");
    }
}
