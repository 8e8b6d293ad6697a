//! An authoritative zone: nodes keyed by lowercase wire name, each with its RRsets, plus what
//! lookups need precomputed (delegation points, empty non-terminals, the negative TTL).

use std::collections::HashMap;

use domain::base::iana::Rtype;

use super::name::{display, is_in_zone, label_starts};
use super::rrset::Rrset;

/// The hasher of the name index: fast, and the keys are the operator's, not an attacker's.
pub type NameMap<V> = HashMap<StoredName, V, foldhash::fast::FixedState>;

/// Names up to this many wire octets are held inside the index's slot.
const INLINE_NAME: usize = 30;

/// A name as a key of the index. Most names are short and sit inside the hash table's slot,
/// so a lookup confirms its match in the cache line it already loaded instead of following
/// a pointer to a separate allocation (under load, with the kernel evicting our lines between
/// queries, that miss was the costliest part of a lookup). Longer names are boxed.
#[derive(Clone, Debug)]
pub enum StoredName {
    /// Length and octets.
    Inline(u8, [u8; INLINE_NAME]),
    /// A longer name.
    Boxed(Box<[u8]>),
}

impl From<&[u8]> for StoredName {
    fn from(wire: &[u8]) -> Self {
        if wire.len() <= INLINE_NAME {
            let mut buf = [0; INLINE_NAME];
            buf[..wire.len()].copy_from_slice(wire);
            StoredName::Inline(wire.len() as u8, buf)
        } else {
            StoredName::Boxed(wire.into())
        }
    }
}

impl std::ops::Deref for StoredName {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            StoredName::Inline(len, buf) => &buf[..usize::from(*len)],
            StoredName::Boxed(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for StoredName {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for StoredName {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for StoredName {}

impl std::hash::Hash for StoredName {
    // The same as the octets' own hash, as `Borrow<[u8]>` requires.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

/// Largest RRset accepted at load (like other servers' max-records-per-type).
pub const MAX_RRSET_RECORDS: usize = 4096;
/// Longest CNAME chain followed inside a zone.
pub const MAX_CNAME_CHAIN: usize = 8;

/// The data at one name.
#[derive(Debug, Default)]
pub struct Node {
    rrsets: Box<[Rrset]>,
    /// Offset within this node's key of the nearest delegation point strictly above it.
    below_cut: Option<u8>,
    /// The node has NS records and is not the apex: a zone cut.
    delegation: bool,
}

impl Node {
    /// The RRset of `rtype`, if any.
    pub fn rrset(&self, rtype: Rtype) -> Option<&Rrset> {
        self.rrsets.iter().find(|s| s.rtype() == rtype)
    }

    /// All RRsets (empty for an empty non-terminal).
    pub fn rrsets(&self) -> &[Rrset] {
        &self.rrsets
    }

    /// True at a zone cut (NS below the apex).
    pub fn is_delegation(&self) -> bool {
        self.delegation
    }

    /// Offset of the delegation point above this node within its key.
    pub fn below_cut(&self) -> Option<usize> {
        self.below_cut.map(usize::from)
    }
}

/// An immutable zone.
#[derive(Debug)]
pub struct Zone {
    apex: Box<[u8]>,
    nodes: NameMap<Node>,
    serial: u32,
    /// TTL of negative answers: min(SOA TTL, SOA minimum) (RFC 2308 §3).
    negative_ttl: u32,
    records: usize,
}

impl Zone {
    /// The apex as a lowercase wire name.
    pub fn apex(&self) -> &[u8] {
        &self.apex
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        self.serial
    }

    /// The TTL of negative answers (RFC 2308 §3).
    pub fn negative_ttl(&self) -> u32 {
        self.negative_ttl
    }

    /// The apex node.
    pub fn apex_node(&self) -> Option<&Node> {
        self.nodes.get(&*self.apex)
    }

    /// The apex SOA RRset.
    pub fn soa(&self) -> Option<&Rrset> {
        self.apex_node().and_then(|n| n.rrset(Rtype::SOA))
    }

    /// The node at exactly `key` (lowercase wire), if the name exists (with data or as an
    /// empty non-terminal).
    pub fn node(&self, key: &[u8]) -> Option<&Node> {
        self.nodes.get(key)
    }

    /// The stored key and node at `key`.
    pub fn node_entry(&self, key: &[u8]) -> Option<(&[u8], &Node)> {
        self.nodes.get_key_value(key).map(|(k, n)| (&**k, n))
    }

    /// Number of names (including empty non-terminals).
    pub fn name_count(&self) -> usize {
        self.nodes.len()
    }

    /// Number of records.
    pub fn record_count(&self) -> usize {
        self.records
    }
}

/// Why a zone cannot be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ZoneError {
    /// No SOA at the apex.
    #[error("no SOA record at the apex {0}")]
    NoSoa(String),
    /// More than one SOA at the apex.
    #[error("more than one SOA record at the apex {0}")]
    ManySoa(String),
    /// CNAME beside other data (RFC 1034 §3.6.2, RFC 2181 §10.1).
    #[error("{0} has a CNAME and other data; a CNAME must be the only data at its name")]
    CnameAndOther(String),
    /// More than one CNAME at a name.
    #[error("{0} has more than one CNAME record")]
    ManyCname(String),
    /// An RRset over the size cap.
    #[error("an RRset at {0} has more than {MAX_RRSET_RECORDS} records")]
    TooBig(String),
    /// Delegations whose name servers are only reachable through each other.
    #[error("cyclic NS dependency: the delegations {0} name servers only inside each other, without glue")]
    NsCycle(String),
}

/// Collects records, then checks them and freezes them into a [`Zone`]. Records go straight
/// into the zone's own name map, so loading holds one copy of the data.
pub struct ZoneBuilder {
    apex: Box<[u8]>,
    nodes: NameMap<Node>,
    records: usize,
    /// Records outside the zone, skipped.
    pub out_of_zone: usize,
    /// RRsets whose records had different TTLs (RFC 2181 §5.2: the lowest is used).
    pub ttl_mismatches: usize,
}

impl ZoneBuilder {
    /// A builder for the zone at `apex` (lowercase wire).
    pub fn new(apex: &[u8]) -> Self {
        ZoneBuilder {
            apex: apex.into(),
            nodes: NameMap::default(),
            records: 0,
            out_of_zone: 0,
            ttl_mismatches: 0,
        }
    }

    /// Makes room for `names` more names.
    pub fn reserve(&mut self, names: usize) {
        self.nodes.reserve(names);
    }

    /// Adds one record. `owner` must be lowercase wire. Duplicates are merged (RFC 2181 §5).
    pub fn add(&mut self, owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]) {
        if !is_in_zone(owner, &self.apex) {
            self.out_of_zone += 1;
            return;
        }
        let node = match self.nodes.get_mut(owner) {
            Some(node) => node,
            None => self.nodes.entry(owner.into()).or_default(),
        };
        match node.rrsets.iter_mut().find(|s| s.rtype() == rtype) {
            Some(set) => {
                if set.merge_ttl(ttl) {
                    self.ttl_mismatches += 1;
                }
                if set.add(rdata) {
                    self.records += 1;
                }
            }
            None => {
                let mut sets = std::mem::take(&mut node.rrsets).into_vec();
                sets.push(Rrset::new(rtype, ttl, [rdata]));
                node.rrsets = sets.into_boxed_slice();
                self.records += 1;
            }
        }
    }

    /// Checks the data and builds the zone.
    pub fn build(mut self) -> Result<Zone, ZoneError> {
        let apex_text = display(&self.apex);
        let soa = self
            .nodes
            .get(&*self.apex)
            .and_then(|n| n.rrset(Rtype::SOA))
            .ok_or_else(|| ZoneError::NoSoa(apex_text.clone()))?;
        if soa.len() > 1 {
            return Err(ZoneError::ManySoa(apex_text));
        }
        let soa_rdata = soa.rdatas().next().unwrap_or_default();
        let (serial, minimum) = soa_fields(soa_rdata).ok_or_else(|| ZoneError::NoSoa(apex_text.clone()))?;
        let negative_ttl = soa.ttl().min(minimum);
        for (owner, node) in self.nodes.iter_mut() {
            let sets = &node.rrsets;
            let has_cname = sets.iter().any(|s| s.rtype() == Rtype::CNAME);
            let other = sets
                .iter()
                .any(|s| !matches!(s.rtype(), Rtype::CNAME | Rtype::RRSIG | Rtype::NSEC));
            if has_cname && other {
                return Err(ZoneError::CnameAndOther(display(owner)));
            }
            for set in sets.iter() {
                if set.rtype() == Rtype::CNAME && set.len() > 1 {
                    return Err(ZoneError::ManyCname(display(owner)));
                }
                if set.len() > MAX_RRSET_RECORDS {
                    return Err(ZoneError::TooBig(display(owner)));
                }
            }
            node.delegation = **owner != *self.apex && sets.iter().any(|s| s.rtype() == Rtype::NS);
        }
        add_empty_non_terminals(&mut self.nodes, &self.apex);
        mark_below_cuts(&mut self.nodes, &self.apex);
        check_ns_cycles(&self.nodes)?;
        self.nodes.shrink_to_fit();
        Ok(Zone {
            apex: self.apex,
            nodes: self.nodes,
            serial,
            negative_ttl,
            records: self.records,
        })
    }
}

/// Serial and minimum from SOA wire rdata.
pub fn soa_fields(rdata: &[u8]) -> Option<(u32, u32)> {
    let mut pos = 0;
    for _ in 0..2 {
        loop {
            let len = usize::from(*rdata.get(pos)?);
            pos += 1 + len;
            if len == 0 {
                break;
            }
        }
    }
    let fields = rdata.get(pos..pos + 20)?;
    let word = |i: usize| u32::from_be_bytes([fields[i], fields[i + 1], fields[i + 2], fields[i + 3]]);
    Some((word(0), word(16)))
}

/// Every ancestor of a name, down from the apex, exists (RFC 4592 §2.2.2: empty non-terminals
/// are names that own no data but have descendants).
fn add_empty_non_terminals(nodes: &mut NameMap<Node>, apex: &[u8]) {
    let mut missing: Vec<StoredName> = Vec::new();
    for key in nodes.keys() {
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        for &s in &starts[1..n] {
            let suffix = &key[usize::from(s)..];
            if suffix.len() <= apex.len() || nodes.contains_key(suffix) {
                break;
            }
            missing.push(suffix.into());
        }
    }
    for key in missing {
        nodes.entry(key).or_default();
    }
}

/// Records for each node the nearest delegation point strictly above it.
fn mark_below_cuts(nodes: &mut NameMap<Node>, apex: &[u8]) {
    let cuts: std::collections::HashSet<StoredName> = nodes
        .iter()
        .filter(|(_, n)| n.delegation)
        .map(|(k, _)| k.clone())
        .collect();
    if cuts.is_empty() {
        return;
    }
    for (key, node) in nodes.iter_mut() {
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        // From the apex downwards the first cut wins: data below it is occluded.
        for &s in starts[1..n].iter().rev() {
            let suffix = &key[usize::from(s)..];
            if suffix.len() <= apex.len() {
                continue;
            }
            if cuts.contains(suffix) {
                node.below_cut = Some(s);
                break;
            }
        }
    }
}

/// Rejects delegations that can only be reached through each other: delegation A names a
/// server below delegation B without glue, and B names one below A without glue.
fn check_ns_cycles(nodes: &NameMap<Node>) -> Result<(), ZoneError> {
    let cuts: Vec<&[u8]> = nodes.iter().filter(|(_, n)| n.delegation).map(|(k, _)| &**k).collect();
    if cuts.len() < 2 {
        return Ok(());
    }
    let index: HashMap<&[u8], usize> = cuts.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    // Edges: cut index → cut indices whose subtree holds a glue-less server of it.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); cuts.len()];
    for (i, cut) in cuts.iter().enumerate() {
        let Some(ns) = nodes.get(*cut).and_then(|n| n.rrset(Rtype::NS)) else {
            continue;
        };
        for target in ns.rdatas() {
            let target = super::name::NameKey::of(&match domain::base::Name::from_slice(target) {
                Ok(n) => n,
                Err(_) => continue,
            });
            let t = target.as_slice();
            let has_glue = nodes
                .get(t)
                .is_some_and(|n| n.rrset(Rtype::A).is_some() || n.rrset(Rtype::AAAA).is_some());
            if has_glue {
                continue;
            }
            let mut starts = [0u8; 128];
            let n = label_starts(t, &mut starts);
            for &st in &starts[..n] {
                if let Some(&j) = index.get(&t[usize::from(st)..]) {
                    if j != i {
                        edges[i].push(j);
                    }
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(i: usize, edges: &[Vec<usize>], state: &mut [u8], path: &mut Vec<usize>) -> Option<Vec<usize>> {
        state[i] = 1;
        path.push(i);
        for &j in &edges[i] {
            if state[j] == 1 {
                let from = path.iter().position(|&p| p == j).unwrap_or(0);
                return Some(path[from..].to_vec());
            }
            if state[j] == 0 {
                if let Some(c) = visit(j, edges, state, path) {
                    return Some(c);
                }
            }
        }
        path.pop();
        state[i] = 2;
        None
    }
    let mut state = vec![0u8; cuts.len()];
    for i in 0..cuts.len() {
        if state[i] == 0 {
            if let Some(cycle) = visit(i, &edges, &mut state, &mut Vec::new()) {
                let names: Vec<String> = cycle.iter().map(|&c| display(cuts[c])).collect();
                return Err(ZoneError::NsCycle(names.join(" and ")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::{NameKey, parse_abs};

    fn key(n: &str) -> NameKey {
        NameKey::of(&parse_abs(n).unwrap())
    }

    /// Names on both sides of the inline limit are found, by their own octets only.
    #[test]
    fn inline_and_boxed_names_are_found() {
        let apex = key("example.test");
        let soa = [&[1, b'a', 0, 1, b'b', 0][..], &[0; 20][..]].concat();
        let mut b = ZoneBuilder::new(apex.as_slice());
        b.add(apex.as_slice(), Rtype::SOA, 60, &soa);
        // Wire lengths 30 (the most held inline), 31 and 31 (boxed).
        let names = [
            "abcdefghijklmno.example.test",
            "abcdefghijklmnop.example.test",
            "a.b.c.d.e.f.g.h.example.test",
        ];
        for n in names {
            b.add(key(n).as_slice(), Rtype::A, 60, &[192, 0, 2, 1]);
        }
        let z = b.build().unwrap();
        assert_eq!(key(names[0]).as_slice().len(), INLINE_NAME);
        assert!(key(names[1]).as_slice().len() > INLINE_NAME);
        for n in names {
            let (stored, node) = z.node_entry(key(n).as_slice()).unwrap();
            assert_eq!(stored, key(n).as_slice());
            assert!(node.rrset(Rtype::A).is_some());
        }
        assert!(z.node(key("abcdefghijklmnq.example.test").as_slice()).is_none());
        assert!(matches!(
            StoredName::from(key(names[0]).as_slice()),
            StoredName::Inline(30, _)
        ));
        assert!(matches!(
            StoredName::from(key(names[1]).as_slice()),
            StoredName::Boxed(_)
        ));
    }
}
