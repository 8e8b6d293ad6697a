//! Finding the data for a query name inside one zone (RFC 1034 §4.3.2 steps 3a-3c, wildcards
//! per RFC 4592).

use domain::base::iana::Rtype;

use super::name::{MAX_NAME_LEN, label_starts};
use super::store::{Node, Zone};

/// What a zone holds for a name.
#[derive(Debug)]
pub enum Found<'z> {
    /// The name exists (possibly as an empty non-terminal).
    Name(Node<'z>),
    /// The name does not exist but `*.<closest encloser>` does (RFC 4592 §3.3.1).
    Wildcard(Node<'z>),
    /// The name lies at or below a zone cut: refer to the child (RFC 1034 §4.3.2 step 3b).
    Referral {
        /// The cut's name (lowercase wire, held by the zone).
        cut: &'z [u8],
        /// The cut's node, holding the NS RRset.
        node: Node<'z>,
    },
    /// The name lies below a DNAME owner: redirect it (RFC 6672 §3.2; nothing else exists
    /// below a DNAME owner, §2.4, which the zone loader enforces).
    Dname {
        /// The DNAME's owner (lowercase wire, held by the zone).
        owner: &'z [u8],
        /// Its node, holding the DNAME RRset (and its RRSIG).
        node: Node<'z>,
    },
    /// No such name (RFC 8020: nothing exists below it either).
    NxDomain,
}

impl Zone {
    /// Looks up `key` (lowercase wire, inside this zone) for `qtype`.
    pub fn find<'z>(&'z self, key: &[u8], qtype: Rtype) -> Found<'z> {
        if let Some((stored, node)) = self.node_entry(key).filter(|(_, n)| !n.is_nsec3_owner()) {
            if let Some(off) = node.below_cut() {
                return self.referral(&key[off..]);
            }
            // DS belongs to the parent side of the cut (RFC 4035 §3.1.4.1).
            if node.is_delegation() && qtype != Rtype::DS {
                return Found::Referral { cut: stored, node };
            }
            return Found::Name(node);
        }
        // The closest encloser: the longest existing ancestor.
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        for &s in &starts[1..n] {
            let suffix = &key[usize::from(s)..];
            if suffix.len() < self.apex().len() {
                break;
            }
            let Some((stored, enc)) = self.node_entry(suffix).filter(|(_, n)| !n.is_nsec3_owner()) else {
                continue;
            };
            if let Some(off) = enc.below_cut() {
                return self.referral(&suffix[off..]);
            }
            if enc.is_delegation() {
                return Found::Referral { cut: stored, node: enc };
            }
            if enc.is_dname_owner() {
                return Found::Dname {
                    owner: stored,
                    node: enc,
                };
            }
            return match self.wildcard_below(suffix) {
                Some(w) => Found::Wildcard(w),
                None => Found::NxDomain,
            };
        }
        Found::NxDomain
    }

    fn referral(&self, cut: &[u8]) -> Found<'_> {
        match self.node_entry(cut) {
            Some((cut, node)) => Found::Referral { cut, node },
            None => Found::NxDomain,
        }
    }

    /// The node `*.<encloser>`, if it exists.
    fn wildcard_below(&self, encloser: &[u8]) -> Option<Node<'_>> {
        if encloser.len() + 2 > MAX_NAME_LEN {
            return None;
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        buf[0] = 1;
        buf[1] = b'*';
        buf[2..2 + encloser.len()].copy_from_slice(encloser);
        self.node(&buf[..2 + encloser.len()])
    }
}
