//! An authoritative zone: nodes keyed by lowercase wire name, each with its RRsets, plus what
//! lookups need precomputed (delegation points, empty non-terminals, the negative TTL).

use std::collections::HashMap;

use domain::base::iana::Rtype;

use super::name::{NameMap, StoredName, display, is_in_zone, label_starts};
use super::rrset::{Rrset, push_rdata, rdata_at};

/// Largest RRset accepted at load (like other servers' max-records-per-type).
pub const MAX_RRSET_RECORDS: usize = 4096;
/// Longest CNAME chain followed inside a zone.
pub const MAX_CNAME_CHAIN: usize = 8;

/// A name's place in the index: its RRsets are `sets` entries from `first` in the zone's
/// set table. Eight octets, so an index slot (name and entry) is 40.
#[derive(Clone, Copy, Debug, Default)]
struct NodeEntry {
    first: u32,
    sets: u16,
    /// Offset within the key of the nearest delegation point strictly above the name; 0
    /// for none (a name is never strictly above itself).
    below_cut: u8,
    /// [`DELEGATION`] and [`DNAME_OWNER`].
    flags: u8,
}

/// The name has NS records and is not the apex: a zone cut.
const DELEGATION: u8 = 1;
/// The name owns a DNAME (RFC 6672): the lookup redirects the names below it.
const DNAME_OWNER: u8 = 2;
/// The name owns NSEC3 records (RFC 5155 §7.2.8: hashed owners are no names to ask about;
/// a query for one is answered as for a name that does not exist).
const NSEC3_OWNER: u8 = 4;

/// One RRset's place in the zone's record data.
#[derive(Clone, Copy, Debug)]
struct SetEntry {
    rtype: Rtype,
    count: u16,
    ttl: u32,
    start: u32,
    len: u32,
}

impl SetEntry {
    fn view<'z>(&self, data: &'z [u8]) -> Rrset<'z> {
        let start = self.start as usize;
        let records = data.get(start..start + self.len as usize).unwrap_or_default();
        Rrset::from_parts(self.rtype, self.ttl, self.count, records)
    }
}

/// The data at one name, borrowed from its zone.
#[derive(Clone, Copy, Debug)]
pub struct Node<'z> {
    sets: &'z [SetEntry],
    data: &'z [u8],
    below_cut: u8,
    flags: u8,
}

impl<'z> Node<'z> {
    /// The RRset of `rtype`, if any.
    pub fn rrset(&self, rtype: Rtype) -> Option<Rrset<'z>> {
        self.sets.iter().find(|s| s.rtype == rtype).map(|s| s.view(self.data))
    }

    /// All RRsets, in the order of their first record in the zone file (none for an empty
    /// non-terminal).
    pub fn rrsets(&self) -> impl Iterator<Item = Rrset<'z>> + 'z {
        let data = self.data;
        self.sets.iter().map(move |s| s.view(data))
    }

    /// True when the name owns records (it is not an empty non-terminal).
    pub fn has_data(&self) -> bool {
        !self.sets.is_empty()
    }

    /// True at a zone cut (NS below the apex).
    pub fn is_delegation(&self) -> bool {
        self.flags & DELEGATION != 0
    }

    /// True at a DNAME owner (RFC 6672).
    pub fn is_dname_owner(&self) -> bool {
        self.flags & DNAME_OWNER != 0
    }

    /// True at an NSEC3 owner, a name that queries do not see.
    pub fn is_nsec3_owner(&self) -> bool {
        self.flags & NSEC3_OWNER != 0
    }

    /// Offset of the delegation point above this node within its key.
    pub fn below_cut(&self) -> Option<usize> {
        (self.below_cut != 0).then_some(usize::from(self.below_cut))
    }
}

/// An immutable zone. Its records sit in two flat tables (RRsets, and their rdata) that the
/// name index points into: a few large allocations instead of two small ones per name,
/// which halves the memory a big zone touches while loading (page clearing was the larger
/// part of loading 1M names).
///
/// A zone changed by IXFR shares those tables with the version before it and carries the
/// changed names in a small [`Delta`] on top ([`Zone::patched`]): a change costs the names
/// it touches, not the zone, and the two versions do not double the memory.
#[derive(Debug)]
pub struct Zone {
    apex: Box<[u8]>,
    base: std::sync::Arc<Tables>,
    delta: Option<Delta>,
    serial: u32,
    /// TTL of negative answers: min(SOA TTL, SOA minimum) (RFC 2308 §3).
    negative_ttl: u32,
    records: usize,
    names: usize,
}

/// A frozen name index and the tables it points into.
#[derive(Debug)]
struct Tables {
    nodes: NameMap<NodeEntry>,
    sets: Box<[SetEntry]>,
    data: Box<[u8]>,
    /// The owners of NSEC records in canonical order (RFC 4034 §6.1): empty for a zone
    /// that is not signed with NSEC.
    nsec: Box<[StoredName]>,
    /// The NSEC3 chain of the apex NSEC3PARAM and its index (RFC 5155).
    nsec3: Option<Box<super::nsec3::Chain>>,
}

/// Names changed since the frozen tables: their new entries (pointing into the delta's own
/// tables), or `None` for a name that is gone.
#[derive(Clone, Debug, Default)]
struct Delta {
    nodes: NameMap<Option<NodeEntry>>,
    sets: Vec<SetEntry>,
    data: Vec<u8>,
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

    /// The node of `e`, an entry of the frozen tables.
    fn view(&self, e: &NodeEntry) -> Node<'_> {
        view(&self.base.sets, &self.base.data, e)
    }

    /// Where `key` stands in the delta: `Some(None)` for a name gone, `None` when the delta
    /// does not know it (the frozen tables say).
    #[inline]
    fn in_delta(&self, key: &[u8]) -> Option<Option<(&[u8], Node<'_>)>> {
        let d = self.delta.as_ref()?;
        let (k, slot) = d.nodes.get_key_value(key)?;
        Some(slot.as_ref().map(|e| (&**k, view(&d.sets, &d.data, e))))
    }

    /// The apex node.
    pub fn apex_node(&self) -> Option<Node<'_>> {
        self.node(&self.apex)
    }

    /// The apex SOA RRset.
    pub fn soa(&self) -> Option<Rrset<'_>> {
        self.apex_node().and_then(|n| n.rrset(Rtype::SOA))
    }

    /// The node at exactly `key` (lowercase wire), if the name exists (with data or as an
    /// empty non-terminal).
    #[inline]
    pub fn node(&self, key: &[u8]) -> Option<Node<'_>> {
        match &self.delta {
            // A zone no IXFR changed (most): the frozen tables alone.
            None => self.base.nodes.get(key).map(|e| self.view(e)),
            Some(_) => self.node_entry_patched(key).map(|(_, n)| n),
        }
    }

    /// The stored key and node at `key`.
    #[inline]
    pub fn node_entry(&self, key: &[u8]) -> Option<(&[u8], Node<'_>)> {
        match &self.delta {
            None => self.base.nodes.get_key_value(key).map(|(k, e)| (&**k, self.view(e))),
            Some(_) => self.node_entry_patched(key),
        }
    }

    /// [`Zone::node_entry`] of a zone with a delta: the delta first.
    fn node_entry_patched(&self, key: &[u8]) -> Option<(&[u8], Node<'_>)> {
        if let Some(found) = self.in_delta(key) {
            return found;
        }
        self.base.nodes.get_key_value(key).map(|(k, e)| (&**k, self.view(e)))
    }

    /// Every name of the zone (lowercase wire), empty non-terminals included, in no order.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        let delta = self.delta.as_ref();
        let frozen = self
            .base
            .nodes
            .keys()
            .filter(move |k| delta.is_none_or(|d| !d.nodes.contains_key(&***k)));
        let changed = delta
            .into_iter()
            .flat_map(|d| d.nodes.iter().filter(|(_, e)| e.is_some()).map(|(k, _)| k));
        frozen.chain(changed).map(|k| &**k)
    }

    /// Number of names (including empty non-terminals).
    pub fn name_count(&self) -> usize {
        self.names
    }

    /// The owners of the zone's NSEC records in canonical order.
    pub(crate) fn nsec_owners(&self) -> &[StoredName] {
        &self.base.nsec
    }

    /// The NSEC3 chain and its index, in a zone signed with NSEC3.
    pub(crate) fn nsec3_chain(&self) -> Option<&super::nsec3::Chain> {
        self.base.nsec3.as_deref()
    }

    /// Number of records.
    pub fn record_count(&self) -> usize {
        self.records
    }
}

/// One name's records after a change: all of them (what stayed and what came), in the
/// order their RRsets are to be kept.
#[derive(Clone, Debug, Default)]
pub struct NameChange {
    /// The name, lowercase wire.
    pub owner: Box<[u8]>,
    /// Its records: type, TTL, rdata (uncompressed wire).
    pub records: Vec<(Rtype, u32, Box<[u8]>)>,
}

impl Zone {
    /// This zone with each changed name's records replaced by `changes` (sorted by owner):
    /// [`patched`](Self::patched) when a delta carries them, otherwise built whole (every
    /// other name as it is).
    pub fn with_changes(&self, changes: &[NameChange]) -> Result<Zone, ZoneError> {
        if let Some(z) = self.patched(changes)? {
            return Ok(z);
        }
        let changed = |name: &[u8]| changes.binary_search_by(|c| (*c.owner).cmp(name)).is_ok();
        let mut b = ZoneBuilder::new(self.apex());
        b.reserve(self.name_count() + changes.len());
        // The apex first: its SOA opens the zone, as in a file.
        let apex_first = changes.iter().filter(|c| *c.owner == *self.apex());
        for c in apex_first.chain(changes.iter().filter(|c| *c.owner != *self.apex())) {
            for (rtype, ttl, rdata) in &c.records {
                b.add(&c.owner, *rtype, *ttl, rdata);
            }
        }
        for name in self.names().filter(|n| !changed(n)) {
            let Some(node) = self.node(name) else { continue };
            for set in node.rrsets() {
                for rdata in set.rdatas() {
                    b.add(name, set.rtype(), set.ttl(), rdata);
                }
            }
        }
        b.build().map(|(z, _)| z)
    }

    /// This zone with each changed name's records replaced by `changes` (the apex's with
    /// the new SOA among them), sharing this version's frozen tables: the cost is the names
    /// changed, and a name emptied costs one pass over the names (to know whether it stays
    /// as an empty non-terminal). `Ok(None)` when the change is one a delta does not carry
    /// (a delegation or a DNAME added, removed or changed, a name at or below a cut or a
    /// DNAME) or the names changed since the tables were frozen would pass a sixteenth of
    /// the zone: the caller then builds the zone whole.
    pub fn patched(&self, changes: &[NameChange]) -> Result<Option<Zone>, ZoneError> {
        // A zone signed with NSEC or NSEC3 keeps its chain's index whole: it is built again.
        if !self.base.nsec.is_empty() || self.base.nsec3.is_some() {
            return Ok(None);
        }
        let mut delta = self.delta.clone().unwrap_or_default();
        if delta.nodes.len() + changes.len() > (self.base.nodes.len() / 16).max(64) {
            return Ok(None);
        }
        let frozen = &self.base;
        // What a name is in the zone being made: the delta first, then the frozen tables.
        fn entry(frozen: &Tables, delta: &Delta, key: &[u8]) -> Option<NodeEntry> {
            match delta.nodes.get(key) {
                Some(slot) => *slot,
                None => frozen.nodes.get(key).copied(),
            }
        }
        let (mut records, mut names) = (self.records as isize, self.names as isize);
        let mut emptied: Vec<&[u8]> = Vec::new();
        for c in changes {
            let owner = &*c.owner;
            if !is_in_zone(owner, &self.apex) {
                return Ok(None);
            }
            let old = self.node(owner);
            if let Some(n) = old {
                if n.below_cut().is_some() || n.is_delegation() || n.is_dname_owner() {
                    return Ok(None);
                }
                records -= n.rrsets().map(|s| s.len() as isize).sum::<isize>();
            }
            let has = |t: Rtype| c.records.iter().any(|r| r.0 == t);
            if (has(Rtype::NS) && owner != &*self.apex) || has(Rtype::DNAME) {
                return Ok(None);
            }
            let mut starts = [0u8; 128];
            let depth = label_starts(owner, &mut starts);
            if old.is_none() {
                // A new name: not below a cut or a DNAME (the whole build judges those).
                for &st in &starts[1..depth] {
                    let up = &owner[usize::from(st)..];
                    if up.len() < self.apex.len() {
                        break;
                    }
                    if entry(frozen, &delta, up).is_some_and(|e| e.flags != 0 || e.below_cut != 0) {
                        return Ok(None);
                    }
                }
            }
            if c.records.is_empty() {
                if old.is_some() {
                    emptied.push(owner);
                }
                continue;
            }
            let first = delta.sets.len();
            let mut types: Vec<Rtype> = Vec::new();
            for (t, _, _) in &c.records {
                if !types.contains(t) {
                    types.push(*t);
                }
            }
            for t in &types {
                let start = delta.data.len();
                let mut count = 0usize;
                let mut ttl = u32::MAX;
                let mut seen: Vec<&[u8]> = Vec::new();
                for (_, rttl, rdata) in c.records.iter().filter(|r| r.0 == *t) {
                    ttl = ttl.min(*rttl);
                    if !seen.contains(&&**rdata) {
                        seen.push(rdata);
                        push_rdata(&mut delta.data, rdata);
                        count += 1;
                    }
                }
                if count > MAX_RRSET_RECORDS {
                    return Err(ZoneError::TooBig(display(owner)));
                }
                let (Ok(start32), Ok(len)) = (u32::try_from(start), u32::try_from(delta.data.len() - start)) else {
                    return Err(ZoneError::TooLarge(display(&self.apex)));
                };
                records += count as isize;
                delta.sets.push(SetEntry {
                    rtype: *t,
                    count: count as u16,
                    ttl,
                    start: start32,
                    len,
                });
            }
            let sets = &delta.sets[first..];
            if let Some(cname) = sets.iter().find(|s| s.rtype == Rtype::CNAME) {
                if sets
                    .iter()
                    .any(|s| !matches!(s.rtype, Rtype::CNAME | Rtype::RRSIG | Rtype::NSEC))
                {
                    return Err(ZoneError::CnameAndOther(display(owner)));
                }
                if cname.count > 1 {
                    return Err(ZoneError::ManyCname(display(owner)));
                }
            }
            let Ok(count) = u16::try_from(types.len()) else {
                return Err(ZoneError::TooManyTypes(display(owner)));
            };
            delta.nodes.insert(
                owner.into(),
                Some(NodeEntry {
                    first: first as u32,
                    sets: count,
                    below_cut: 0,
                    flags: 0,
                }),
            );
            if old.is_none() {
                names += 1;
                // Its missing ancestors become empty non-terminals.
                for &st in &starts[1..depth] {
                    let up = &owner[usize::from(st)..];
                    if up.len() <= self.apex.len() || entry(frozen, &delta, up).is_some() {
                        break;
                    }
                    delta.nodes.insert(up.into(), Some(NodeEntry::default()));
                    names += 1;
                }
            }
        }
        if !emptied.is_empty() {
            names -= prune(frozen, &mut delta, &emptied, &self.apex) as isize;
        }
        let mut zone = Zone {
            apex: self.apex.clone(),
            base: frozen.clone(),
            delta: Some(delta),
            serial: 0,
            negative_ttl: 0,
            records: records.max(0) as usize,
            names: names.max(0) as usize,
        };
        let apex_text = display(&zone.apex);
        let soa = zone.soa().ok_or_else(|| ZoneError::NoSoa(apex_text.clone()))?;
        if soa.len() > 1 {
            return Err(ZoneError::ManySoa(apex_text));
        }
        let soa_rdata = soa.rdatas().next().unwrap_or_default();
        let (serial, minimum) = soa_fields(soa_rdata).ok_or(ZoneError::NoSoa(apex_text))?;
        (zone.serial, zone.negative_ttl) = (serial, soa.ttl().min(minimum));
        Ok(Some(zone))
    }
}

/// Names emptied by a change stay as empty non-terminals when data lies below them, and go
/// otherwise; so do their ancestors that were empty non-terminals. One pass over the names
/// with data finds what lies below. Returns how many names went.
fn prune(frozen: &Tables, delta: &mut Delta, emptied: &[&[u8]], apex: &[u8]) -> usize {
    let has_data = |e: &NodeEntry| e.sets > 0;
    let current = |delta: &Delta, key: &[u8]| match delta.nodes.get(key) {
        Some(slot) => *slot,
        None => frozen.nodes.get(key).copied(),
    };
    // The emptied names, and every ancestor of them that holds no data.
    let mut candidates: std::collections::HashSet<Box<[u8]>> = std::collections::HashSet::new();
    for name in emptied {
        candidates.insert((*name).into());
        let mut starts = [0u8; 128];
        let n = label_starts(name, &mut starts);
        for &st in &starts[1..n] {
            let up = &name[usize::from(st)..];
            if up.len() <= apex.len() || current(delta, up).is_none_or(|e| has_data(&e)) {
                break;
            }
            candidates.insert(up.into());
        }
    }
    for name in emptied {
        delta.nodes.insert((*name).into(), Some(NodeEntry::default()));
    }
    let mut needed: std::collections::HashSet<&[u8]> = std::collections::HashSet::new();
    let mut mark = |key: &[u8]| {
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        for &st in &starts[1..n] {
            let up = &key[usize::from(st)..];
            if up.len() <= apex.len() {
                break;
            }
            if let Some(c) = candidates.get(up) {
                needed.insert(&**c);
            }
        }
    };
    for (k, e) in &frozen.nodes {
        if has_data(e) && !delta.nodes.contains_key(&**k) {
            mark(k);
        }
    }
    for (k, e) in &delta.nodes {
        if e.as_ref().is_some_and(has_data) {
            mark(k);
        }
    }
    let gone: Vec<Box<[u8]>> = candidates.iter().filter(|c| !needed.contains(&***c)).cloned().collect();
    for g in &gone {
        if frozen.nodes.contains_key(&**g) {
            delta.nodes.insert((&**g).into(), None);
        } else {
            delta.nodes.remove(&**g);
        }
    }
    gone.len()
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
    /// More than one DNAME at a name (RFC 6672 §2.4).
    #[error("{0} has more than one DNAME record")]
    ManyDname(String),
    /// Data below a DNAME owner, which the DNAME hides (RFC 6672 §2.4): "name (DNAME at owner)".
    #[error("{0}; a DNAME owner can have no names below it")]
    BelowDname(String),
    /// An RRset over the size cap.
    #[error("an RRset at {0} has more than {MAX_RRSET_RECORDS} records")]
    TooBig(String),
    /// Delegations whose name servers are only reachable through each other.
    #[error("cyclic NS dependency: the delegations {0} name servers only inside each other, without glue")]
    NsCycle(String),
    /// More RRsets at one name than a node counts.
    #[error("{0} has more than 65535 record types")]
    TooManyTypes(String),
    /// More record data than the zone's 32-bit offsets reach.
    #[error("zone {0} holds more than 4 GiB of record data")]
    TooLarge(String),
}

/// A record as read, before the records are grouped into RRsets.
#[derive(Clone, Copy)]
struct Staged {
    /// Which name (the order of first appearance).
    node: u32,
    rtype: Rtype,
    ttl: u32,
    /// Where its rdata (with its length) starts in the builder's data; increases in file
    /// order.
    start: u32,
}

/// What loading skipped or adjusted, for the operator's log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BuildNotes {
    /// Records outside the zone, skipped.
    pub out_of_zone: usize,
    /// RRsets whose records had different TTLs (RFC 2181 §5.2: the lowest is used).
    pub ttl_mismatches: usize,
}

/// Collects records, then checks them and freezes them into a [`Zone`]. Records are kept in
/// file order in flat tables and grouped into RRsets once, by `build`.
pub struct ZoneBuilder {
    apex: Box<[u8]>,
    /// While building, a node's `first` is its number in order of first appearance.
    nodes: NameMap<NodeEntry>,
    staged: Vec<Staged>,
    data: Vec<u8>,
    /// The previous record's owner and node (files list a name's records together), in a
    /// buffer reused from record to record.
    last_owner: Vec<u8>,
    last_node: Option<u32>,
    out_of_zone: usize,
    too_large: bool,
}

impl ZoneBuilder {
    /// A builder for the zone at `apex` (lowercase wire).
    pub fn new(apex: &[u8]) -> Self {
        ZoneBuilder {
            apex: apex.into(),
            nodes: NameMap::default(),
            staged: Vec::new(),
            data: Vec::new(),
            last_owner: Vec::new(),
            last_node: None,
            out_of_zone: 0,
            too_large: false,
        }
    }

    /// Makes room for `names` more names.
    pub fn reserve(&mut self, names: usize) {
        self.nodes.reserve(names);
        self.staged.reserve(names);
    }

    /// Adds one record. `owner` must be lowercase wire. Duplicates are merged by `build`
    /// (RFC 2181 §5).
    pub fn add(&mut self, owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]) {
        if !is_in_zone(owner, &self.apex) {
            self.out_of_zone += 1;
            return;
        }
        let Ok(start) = u32::try_from(self.data.len()) else {
            self.too_large = true;
            return;
        };
        let node = match self.last_node {
            Some(node) if self.last_owner == owner => node,
            _ => {
                let next = self.nodes.len() as u32;
                let node = match self.nodes.get(owner) {
                    Some(e) => e.first,
                    None => {
                        self.nodes.insert(
                            owner.into(),
                            NodeEntry {
                                first: next,
                                ..NodeEntry::default()
                            },
                        );
                        next
                    }
                };
                self.last_owner.clear();
                self.last_owner.extend_from_slice(owner);
                self.last_node = Some(node);
                node
            }
        };
        push_rdata(&mut self.data, rdata);
        self.staged.push(Staged {
            node,
            rtype,
            ttl,
            start,
        });
    }

    /// Groups the records into RRsets, checks the data and builds the zone.
    pub fn build(self) -> Result<(Zone, BuildNotes), ZoneError> {
        let ZoneBuilder {
            apex,
            mut nodes,
            mut staged,
            data,
            out_of_zone,
            too_large,
            ..
        } = self;
        let apex_text = display(&apex);
        if too_large || u32::try_from(data.len()).is_err() {
            return Err(ZoneError::TooLarge(apex_text));
        }
        let mut notes = BuildNotes {
            out_of_zone,
            ttl_mismatches: 0,
        };
        let layout = Layout::of(&mut staged, &data, nodes.len(), &mut notes).map_err(|(node, error)| {
            let owner = nodes.iter().find(|(_, e)| e.first == node).map(|(k, _)| display(k));
            error(owner.unwrap_or_default())
        })?;
        drop(staged);
        drop(data);
        for e in nodes.values_mut() {
            (e.first, e.sets) = layout.ranges[e.first as usize];
        }
        let mut zone = Zone {
            apex,
            base: std::sync::Arc::new(Tables {
                nodes,
                sets: layout.sets.into_boxed_slice(),
                data: layout.data.into_boxed_slice(),
                nsec: Box::default(),
                nsec3: None,
            }),
            delta: None,
            // Both from the SOA, read through the zone just below.
            serial: 0,
            negative_ttl: 0,
            records: layout.records,
            names: 0,
        };
        let soa = zone.soa().ok_or_else(|| ZoneError::NoSoa(apex_text.clone()))?;
        if soa.len() > 1 {
            return Err(ZoneError::ManySoa(apex_text));
        }
        let soa_rdata = soa.rdatas().next().unwrap_or_default();
        let (serial, minimum) = soa_fields(soa_rdata).ok_or_else(|| ZoneError::NoSoa(apex_text.clone()))?;
        (zone.serial, zone.negative_ttl) = (serial, soa.ttl().min(minimum));
        let (mut cuts, mut dnames, mut nsec, mut hashed) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (owner, e) in zone.base.nodes.iter() {
            let node = zone.view(e);
            if node.rrset(Rtype::NSEC).is_some() {
                nsec.push(owner.clone());
            }
            if node.rrset(Rtype::NSEC3).is_some() {
                hashed.push(owner.clone());
            }
            if let Some(cname) = node.rrset(Rtype::CNAME) {
                if node
                    .rrsets()
                    .any(|s| !matches!(s.rtype(), Rtype::CNAME | Rtype::RRSIG | Rtype::NSEC))
                {
                    return Err(ZoneError::CnameAndOther(display(owner)));
                }
                if cname.len() > 1 {
                    return Err(ZoneError::ManyCname(display(owner)));
                }
            }
            if **owner != *zone.apex && node.rrset(Rtype::NS).is_some() {
                cuts.push(owner.clone());
            }
            match node.rrset(Rtype::DNAME) {
                Some(d) if d.len() > 1 => return Err(ZoneError::ManyDname(display(owner))),
                Some(_) => dnames.push(owner.clone()),
                None => {}
            }
        }
        // The tables were made just above: nobody else holds them yet.
        if let Some(t) = std::sync::Arc::get_mut(&mut zone.base) {
            for (names, flag) in [(&cuts, DELEGATION), (&dnames, DNAME_OWNER), (&hashed, NSEC3_OWNER)] {
                for name in names {
                    if let Some(e) = t.nodes.get_mut(&**name) {
                        e.flags |= flag;
                    }
                }
            }
        }
        check_below_dnames(&zone, &dnames)?;
        if let Some(t) = std::sync::Arc::get_mut(&mut zone.base) {
            add_empty_non_terminals(&mut t.nodes, &zone.apex);
            mark_below_cuts(&mut t.nodes, &zone.apex, &cuts);
            t.nodes.shrink_to_fit();
            nsec.sort_unstable_by(|a: &StoredName, b| super::nsec::canonical_cmp(a, b));
            t.nsec = nsec.into_boxed_slice();
        }
        if !hashed.is_empty() {
            // The names a query can reach: not a hashed owner, not data below a cut.
            let askable = zone
                .base
                .nodes
                .iter()
                .filter(|(_, e)| e.flags & NSEC3_OWNER == 0 && e.below_cut == 0);
            let chain = super::nsec3::Chain::build(&zone, askable.map(|(k, _)| k)).map(Box::new);
            if let Some(t) = std::sync::Arc::get_mut(&mut zone.base) {
                t.nsec3 = chain;
            }
        }
        zone.names = zone.base.nodes.len();
        check_ns_cycles(&zone, &cuts)?;
        Ok((zone, notes))
    }
}

/// The node of `e` in the tables `sets` and `data`.
fn view<'z>(sets: &'z [SetEntry], data: &'z [u8], e: &NodeEntry) -> Node<'z> {
    let first = e.first as usize;
    Node {
        sets: sets.get(first..first + usize::from(e.sets)).unwrap_or_default(),
        data,
        below_cut: e.below_cut,
        flags: e.flags,
    }
}

/// A [`ZoneError`] waiting for the name it is about.
type NamedError = fn(String) -> ZoneError;

/// The records grouped into RRsets: the zone's set table and record data, and each node's
/// range of sets (by node number).
struct Layout {
    sets: Vec<SetEntry>,
    data: Vec<u8>,
    ranges: Vec<(u32, u16)>,
    records: usize,
}

impl Layout {
    /// On error, the node number and the error to name it in.
    fn of(
        staged: &mut [Staged],
        data: &[u8],
        names: usize,
        notes: &mut BuildNotes,
    ) -> Result<Layout, (u32, NamedError)> {
        // By name, then file order. Files usually list a name's records together, and then
        // this is one pass that finds nothing to do.
        if !staged.is_sorted_by_key(|s| s.node) {
            staged.sort_unstable_by_key(|s| (s.node, s.start));
        }
        let mut out = Layout {
            sets: Vec::with_capacity(staged.len()),
            data: Vec::with_capacity(data.len()),
            ranges: vec![(0, 0); names],
            records: 0,
        };
        // (first record's position in the file, start, end) of each type's run at a name.
        let mut groups: Vec<(u32, usize, usize)> = Vec::new();
        let mut rest = &mut staged[..];
        while let Some(first) = rest.first() {
            let node = first.node;
            let len = rest.iter().position(|s| s.node != node).unwrap_or(rest.len());
            let (run, tail) = rest.split_at_mut(len);
            rest = tail;
            if !run.is_sorted_by_key(|s| s.rtype.to_int()) {
                run.sort_unstable_by_key(|s| (s.rtype.to_int(), s.start));
            }
            groups.clear();
            let mut i = 0;
            while i < run.len() {
                let n = run[i..]
                    .iter()
                    .position(|s| s.rtype != run[i].rtype)
                    .unwrap_or(run.len() - i);
                groups.push((run[i].start, i, i + n));
                i += n;
            }
            // A name's RRsets keep the order of the file (ANY over UDP answers the first).
            groups.sort_unstable_by_key(|g| g.0);
            let first_set = out.sets.len() as u32;
            for &(_, lo, hi) in &groups {
                if !out.push_set(&run[lo..hi], data, notes) {
                    return Err((node, ZoneError::TooBig));
                }
            }
            let count = out.sets.len() as u32 - first_set;
            let Ok(count) = u16::try_from(count) else {
                return Err((node, ZoneError::TooManyTypes));
            };
            if let Some(r) = out.ranges.get_mut(node as usize) {
                *r = (first_set, count);
            }
        }
        Ok(out)
    }

    /// One RRset from its records (same name and type, in file order): duplicates merged
    /// (RFC 2181 §5), the lowest TTL for all (RFC 2181 §5.2). False when it is too big.
    fn push_set(&mut self, records: &[Staged], data: &[u8], notes: &mut BuildNotes) -> bool {
        let rdata = |s: &Staged| rdata_at(data, s.start as usize);
        let start = self.data.len();
        let mut count = 0usize;
        let mut seen: Option<std::collections::HashSet<&[u8]>> = None;
        for (i, s) in records.iter().enumerate() {
            let rd = rdata(s);
            let duplicate = match &mut seen {
                Some(set) => !set.insert(rd),
                None if records.len() > 16 => {
                    seen = Some(records[..i].iter().map(rdata).collect());
                    seen.as_mut().is_some_and(|set| !set.insert(rd))
                }
                None => records[..i].iter().any(|p| rdata(p) == rd),
            };
            if !duplicate {
                push_rdata(&mut self.data, rd);
                count += 1;
            }
        }
        if count > MAX_RRSET_RECORDS {
            return false;
        }
        let ttl = records.iter().map(|s| s.ttl).min().unwrap_or_default();
        // A name's RRSIGs are one set here, each written with the TTL of the RRset it
        // covers (RFC 4034 §3): theirs differ by design.
        if records[0].rtype != Rtype::RRSIG && records.iter().any(|s| s.ttl != ttl) {
            notes.ttl_mismatches += 1;
        }
        self.records += count;
        self.sets.push(SetEntry {
            rtype: records[0].rtype,
            count: count as u16,
            ttl,
            start: start as u32,
            len: (self.data.len() - start) as u32,
        });
        true
    }
}

/// Serial and minimum from SOA wire rdata.
pub fn soa_fields(rdata: &[u8]) -> Option<(u32, u32)> {
    let w = soa_words(rdata)?;
    Some((w[0], w[4]))
}

/// REFRESH, RETRY and EXPIRE of an SOA's rdata (uncompressed).
pub fn soa_timers(rdata: &[u8]) -> Option<(u32, u32, u32)> {
    let w = soa_words(rdata)?;
    Some((w[1], w[2], w[3]))
}

/// SERIAL, REFRESH, RETRY, EXPIRE and MINIMUM of an SOA's rdata (uncompressed).
fn soa_words(rdata: &[u8]) -> Option<[u32; 5]> {
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
    Some([word(0), word(4), word(8), word(12), word(16)])
}

/// Every ancestor of a name, down from the apex, exists (RFC 4592 §2.2.2: empty non-terminals
/// are names that own no data but have descendants).
/// RFC 6672 §2.4: no name below a DNAME owner (the DNAME redirects every name there).
fn check_below_dnames(zone: &Zone, dnames: &[StoredName]) -> Result<(), ZoneError> {
    if dnames.is_empty() {
        return Ok(());
    }
    let owners: std::collections::HashSet<&[u8]> = dnames.iter().map(|d| &**d).collect();
    for name in zone.names() {
        let mut starts = [0u8; 128];
        let n = label_starts(name, &mut starts);
        for &s in &starts[1..n] {
            let ancestor = &name[usize::from(s)..];
            if ancestor.len() < zone.apex.len() {
                break;
            }
            if owners.contains(ancestor) {
                let what = format!("{} lies below the DNAME at {}", display(name), display(ancestor));
                return Err(ZoneError::BelowDname(what));
            }
        }
    }
    Ok(())
}

fn add_empty_non_terminals(nodes: &mut NameMap<NodeEntry>, apex: &[u8]) {
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
fn mark_below_cuts(nodes: &mut NameMap<NodeEntry>, apex: &[u8], cuts: &[StoredName]) {
    if cuts.is_empty() {
        return;
    }
    let cuts: std::collections::HashSet<&[u8]> = cuts.iter().map(|c| &**c).collect();
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
                node.below_cut = s;
                break;
            }
        }
    }
}

/// Rejects delegations that can only be reached through each other: delegation A names a
/// server below delegation B without glue, and B names one below A without glue.
fn check_ns_cycles(zone: &Zone, cuts: &[StoredName]) -> Result<(), ZoneError> {
    let cuts: Vec<&[u8]> = cuts.iter().map(|c| &**c).collect();
    if cuts.len() < 2 {
        return Ok(());
    }
    let index: HashMap<&[u8], usize> = cuts.iter().enumerate().map(|(i, c)| (*c, i)).collect();
    // Edges: cut index → cut indices whose subtree holds a glue-less server of it.
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); cuts.len()];
    for (i, cut) in cuts.iter().enumerate() {
        let Some(ns) = zone.node(cut).and_then(|n| n.rrset(Rtype::NS)) else {
            continue;
        };
        for target in ns.rdatas() {
            let target = super::name::NameKey::of(&match domain::base::Name::from_slice(target) {
                Ok(n) => n,
                Err(_) => continue,
            });
            let t = target.as_slice();
            let has_glue = zone
                .node(t)
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
    use crate::zone::name::{INLINE_NAME, NameKey, parse_abs};

    fn key(n: &str) -> NameKey {
        NameKey::of(&parse_abs(n).unwrap())
    }

    /// RFC 6672 §2.4: a DNAME owner has no names below it and one DNAME only.
    #[test]
    fn data_below_a_dname_is_refused() {
        let apex = key("example.test");
        let soa = [&[1, b'a', 0, 1, b'b', 0][..], &[0; 20][..]].concat();
        let build = |extra: &[(&str, Rtype, &[u8])]| {
            let mut b = ZoneBuilder::new(apex.as_slice());
            b.add(apex.as_slice(), Rtype::SOA, 60, &soa);
            b.add(
                key("old.example.test").as_slice(),
                Rtype::DNAME,
                60,
                key("new.example.test").as_slice(),
            );
            for (n, t, rd) in extra {
                b.add(key(n).as_slice(), *t, 60, rd);
            }
            b.build().map(|_| ())
        };
        assert_eq!(build(&[("www.new.example.test", Rtype::A, &[192, 0, 2, 1])]), Ok(()));
        assert_eq!(
            build(&[("www.old.example.test", Rtype::A, &[192, 0, 2, 1])]),
            Err(ZoneError::BelowDname(
                "www.old.example.test. lies below the DNAME at old.example.test.".into()
            ))
        );
        assert_eq!(
            build(&[("old.example.test", Rtype::DNAME, key("other.example.test").as_slice())]),
            Err(ZoneError::ManyDname("old.example.test.".into()))
        );
        assert!(matches!(
            build(&[("old.example.test", Rtype::CNAME, key("www.example.test").as_slice())]),
            Err(ZoneError::CnameAndOther(_))
        ));
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
        let (z, _) = b.build().unwrap();
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

    /// Records of a name spread over the file still make one RRset per type, in the order
    /// each type first appeared; duplicates merge and the lowest TTL wins.
    #[test]
    fn scattered_records_group_into_rrsets() {
        let apex = key("example.test");
        let soa = [&[1, b'a', 0, 1, b'b', 0][..], &[0; 20][..]].concat();
        let (a, b, mx) = (key("a.example.test"), key("b.example.test"), key("m.example.test"));
        let mut bl = ZoneBuilder::new(apex.as_slice());
        bl.add(a.as_slice(), Rtype::TXT, 60, b"\x01t");
        bl.add(apex.as_slice(), Rtype::SOA, 60, &soa);
        bl.add(a.as_slice(), Rtype::A, 60, &[192, 0, 2, 1]);
        bl.add(b.as_slice(), Rtype::A, 60, &[192, 0, 2, 9]);
        bl.add(a.as_slice(), Rtype::A, 30, &[192, 0, 2, 2]);
        bl.add(a.as_slice(), Rtype::TXT, 60, b"\x01t");
        bl.add(a.as_slice(), Rtype::A, 60, &[192, 0, 2, 1]);
        // A set past the small-set path, every record twice.
        for round in 0..2u32 {
            for i in 0..40u8 {
                bl.add(mx.as_slice(), Rtype::A, 60 + round, &[10, 0, 0, i]);
            }
        }
        let (z, notes) = bl.build().unwrap();
        assert_eq!(notes.ttl_mismatches, 2);
        let node = z.node(a.as_slice()).unwrap();
        let types: Vec<Rtype> = node.rrsets().map(|s| s.rtype()).collect();
        assert_eq!(types, [Rtype::TXT, Rtype::A]);
        let set = node.rrset(Rtype::A).unwrap();
        assert_eq!(set.ttl(), 30);
        let rdatas: Vec<&[u8]> = set.rdatas().collect();
        assert_eq!(rdatas, [&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]);
        assert_eq!(node.rrset(Rtype::TXT).unwrap().len(), 1);
        let b_set = z.node(b.as_slice()).unwrap().rrset(Rtype::A).unwrap();
        assert_eq!(b_set.rdatas().collect::<Vec<_>>(), [&[192, 0, 2, 9][..]]);
        let m_set = z.node(mx.as_slice()).unwrap().rrset(Rtype::A).unwrap();
        assert_eq!(m_set.len(), 40);
        assert!(m_set.rdatas().enumerate().all(|(i, r)| r == [10, 0, 0, i as u8]));
        assert_eq!(z.record_count(), 1 + 2 + 1 + 1 + 40);
    }

    #[test]
    fn oversized_rrsets_are_named() {
        let apex = key("example.test");
        let soa = [&[1, b'a', 0, 1, b'b', 0][..], &[0; 20][..]].concat();
        let big = key("big.example.test");
        let mut bl = ZoneBuilder::new(apex.as_slice());
        bl.add(apex.as_slice(), Rtype::SOA, 60, &soa);
        for i in 0..=MAX_RRSET_RECORDS as u32 {
            bl.add(
                big.as_slice(),
                Rtype::TXT,
                60,
                &[&[4][..], &i.to_be_bytes()[..]].concat(),
            );
        }
        let err = bl.build().unwrap_err();
        assert_eq!(err, ZoneError::TooBig("big.example.test.".into()));
    }

    /// A zone patched with a change answers exactly as the same zone built whole: the
    /// same names (empty non-terminals made and dropped), records, counts.
    #[test]
    fn a_patched_zone_is_the_zone_built_whole() {
        let load = |body: &str, serial: u32| {
            let text = format!(
                "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin {serial} 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n{body}"
            );
            let origin = crate::zone::name::parse_abs("example.test").unwrap();
            crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap()
        };
        let mut filler = String::new();
        for i in 0..2000 {
            filler.push_str(&format!("h{i} A 192.0.2.{}\n", i % 250));
        }
        let old_body = format!(
            "{filler}a.b.c TXT \"deep\"\nx.y TXT \"x\"\nx.y A 192.0.2.9\nz.y TXT \"z\"\nkeep.gone A 192.0.2.7\ngone A 192.0.2.8\nwww CNAME h1\nsub NS ns.other.\n"
        );
        // Deep name removed (its ENTs go), one child of y removed (y stays), a name with a
        // child emptied (it stays an ENT), a new deep name (ENTs made), a TTL changed, a
        // CNAME retargeted.
        let new_body = format!(
            "{filler}x.y TXT \"x\"\nkeep.gone A 192.0.2.7\nn1.n2.n3 AAAA 2001:db8::1\nwww 60 CNAME h2\nsub NS ns.other.\n"
        );
        let (old, whole) = (load(&old_body, 1), load(&new_body, 2));
        let mut names: Vec<&[u8]> = old.names().chain(whole.names()).collect();
        names.sort();
        names.dedup();
        let records = |z: &Zone, n: &[u8]| -> Vec<(Rtype, u32, Box<[u8]>)> {
            let mut v: Vec<_> = z
                .node(n)
                .map(|node| {
                    node.rrsets()
                        .flat_map(|s| s.rdatas().map(move |r| (s.rtype(), s.ttl(), r.into())))
                        .collect()
                })
                .unwrap_or_default();
            v.sort_by(|a: &(Rtype, u32, Box<[u8]>), b| (a.0.to_int(), a.1, &a.2).cmp(&(b.0.to_int(), b.1, &b.2)));
            v
        };
        let changes: Vec<NameChange> = names
            .iter()
            .filter(|n| records(&old, n) != records(&whole, n))
            .map(|n| NameChange {
                owner: (*n).into(),
                records: records(&whole, n),
            })
            .collect();
        let patched = old.patched(&changes).unwrap().expect("a delta carries this change");
        let mut got: Vec<&[u8]> = patched.names().collect();
        let mut want: Vec<&[u8]> = whole.names().collect();
        got.sort();
        want.sort();
        assert_eq!(
            got.iter().map(|n| display(n)).collect::<Vec<_>>(),
            want.iter().map(|n| display(n)).collect::<Vec<_>>()
        );
        for n in &want {
            assert_eq!(records(&patched, n), records(&whole, n), "{}", display(n));
        }
        assert_eq!(
            (
                patched.serial(),
                patched.record_count(),
                patched.name_count(),
                patched.negative_ttl()
            ),
            (
                whole.serial(),
                whole.record_count(),
                whole.name_count(),
                whole.negative_ttl()
            )
        );
        // Lookups agree too: the removed deep name is NXDOMAIN, the emptied parent NODATA.
        for q in [
            "a.b.c",
            "b.c",
            "c",
            "gone",
            "keep.gone",
            "n2.n3",
            "n1.n2.n3",
            "z.y",
            "y",
            "www",
        ] {
            let key =
                crate::zone::name::NameKey::of(&crate::zone::name::parse_abs(&format!("{q}.example.test")).unwrap());
            let summary = |z: &Zone| {
                use crate::zone::lookup::Found;
                let sets = |n: &Node<'_>| {
                    n.rrsets()
                        .map(|s| (s.rtype(), s.ttl(), s.rdatas().count()))
                        .collect::<Vec<_>>()
                };
                match z.find(key.as_slice(), Rtype::A) {
                    Found::Name(n) => format!("name {:?}", sets(&n)),
                    Found::Wildcard(n) => format!("wildcard {:?}", sets(&n)),
                    Found::Referral { cut, .. } => format!("referral {}", display(cut)),
                    Found::Dname { owner, .. } => format!("dname {}", display(owner)),
                    Found::NxDomain => "nxdomain".into(),
                }
            };
            assert_eq!(summary(&patched), summary(&whole), "{q}");
        }
        // A change at or below a delegation is left to a whole build.
        let glue = [NameChange {
            owner: crate::zone::name::NameKey::of(&crate::zone::name::parse_abs("ns.sub.example.test").unwrap())
                .as_slice()
                .into(),
            records: vec![(Rtype::A, 300, vec![192, 0, 2, 53].into())],
        }];
        assert!(old.patched(&glue).unwrap().is_none());
    }
}
