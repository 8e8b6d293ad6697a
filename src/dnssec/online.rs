//! Online signing, CoreDNS's `dnssec [ZONES] { key file KEY...; cache_capacity N }`: the
//! answers of a block's data sources (`file`, `auto`, `secondary`, `hosts`) signed as they
//! are written, with the block's keys.
//!
//! - Every authoritative RRset of every section gets an RRSIG per signing key (not the NS
//!   of a cut or glue, RFC 4035 §2.2); with keys of both kinds (SEP set and not) the DNSKEY
//!   RRset is signed by the key-signing keys and everything else by the others, as CoreDNS
//!   does; otherwise every key signs everything.
//! - Denial is by compact "black lies" (RFC 9824, CoreDNS's NSEC black lies): a name that
//!   does not exist gets NOERROR and an NSEC at that name whose next name is
//!   `\000.<name>` and whose types are RRSIG, NSEC and NXNAME; a type that does not exist,
//!   an NSEC at the name listing the types it has; a referral without DS, an NSEC at the
//!   cut listing NS, RRSIG and NSEC. Nothing is hashed, and no chain is needed.
//! - DNSKEY at a signed zone's apex is answered from the keys (CoreDNS: whatever the data
//!   says).
//! - Signatures last from three hours ago to eight days ahead and are made again two days
//!   before they expire; a per-shard [`SigCache`] keeps them, so a repeated answer costs a
//!   lookup, not a signature.

use std::cell::RefCell;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arrayvec::ArrayVec;
use domain::base::iana::{Rcode, Rtype};

use super::cache::SigCache;
use super::keys::SigningKey;
use super::sign::{Signee, Validity, rrsig, type_bitmap};
use crate::dns::pipeline::{Block, Handler};
use crate::dns::reply::Signatures;
use crate::dns::request::Question;
use crate::dns::resolve::{Owner, Part, Resolution};
use crate::zone::lookup::Found;
use crate::zone::name::{MAX_NAME_LEN, is_in_zone};
use crate::zone::rrset::{Rrset, push_rdata};

/// TTL of the DNSKEY RRset answered from the keys (CoreDNS's 3600).
pub const DNSKEY_TTL: u32 = 3600;
/// RFC 9824 §2: the pseudo-type that marks a name that does not exist.
const NXNAME: u16 = 128;

/// A block's `dnssec`.
pub struct Signer {
    /// The zones it signs (lowercase wire).
    pub zones: Vec<Box<[u8]>>,
    keys: Vec<Arc<SigningKey>>,
    /// Keys of both kinds: KSKs sign DNSKEY, the others the rest.
    split: bool,
    /// Signatures kept per shard.
    pub capacity: usize,
    /// The DNSKEY RRset's records.
    dnskeys: Box<[u8]>,
    dnskey_count: u16,
    seed: foldhash::fast::RandomState,
    /// Each shard's cache counts (registered when the shard makes its cache).
    counters: std::sync::Mutex<Vec<Arc<CacheCounters>>>,
}

/// One shard's cache counts, for `coredns_dnssec_cache_*`: written by that shard only.
#[derive(Debug, Default)]
pub struct CacheCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    entries: AtomicU64,
}

/// The counts of a signer's caches, summed over the shards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheTotals {
    /// Lookups that found fresh signatures.
    pub hits: u64,
    /// Lookups that did not.
    pub misses: u64,
    /// RRSIG RRsets held.
    pub entries: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys)
            .field("split", &self.split)
            .finish()
    }
}

impl Signer {
    /// The signer of `zones` with `keys` (at least one).
    pub fn new(zones: Vec<Box<[u8]>>, keys: Vec<Arc<SigningKey>>, capacity: usize) -> Signer {
        let split = keys.iter().any(|k| k.is_ksk()) && keys.iter().any(|k| !k.is_ksk());
        let mut dnskeys = Vec::new();
        for k in &keys {
            push_rdata(&mut dnskeys, &k.dnskey);
        }
        Signer {
            zones,
            dnskey_count: keys.len() as u16,
            keys,
            split,
            capacity: capacity.max(1),
            dnskeys: dnskeys.into(),
            seed: foldhash::fast::RandomState::default(),
            counters: Default::default(),
        }
    }

    /// The counts of its caches, summed over the shards.
    pub fn cache_totals(&self) -> CacheTotals {
        let counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        counters.iter().fold(CacheTotals::default(), |t, c| CacheTotals {
            hits: t.hits + c.hits.load(Ordering::Relaxed),
            misses: t.misses + c.misses.load(Ordering::Relaxed),
            entries: t.entries + c.entries.load(Ordering::Relaxed),
        })
    }

    /// The longest of its zones that holds `key`.
    pub fn zone_of(&self, key: &[u8]) -> Option<&[u8]> {
        self.zones
            .iter()
            .filter(|z| is_in_zone(key, z))
            .max_by_key(|z| z.len())
            .map(|z| &**z)
    }

    /// The DNSKEY RRset of its keys.
    pub fn dnskeys(&self) -> Rrset<'_> {
        Rrset::from_parts(Rtype::DNSKEY, DNSKEY_TTL, self.dnskey_count, &self.dnskeys)
    }

    /// The keys that sign an RRset of `rtype`.
    fn signing(&self, rtype: Rtype) -> impl Iterator<Item = &SigningKey> {
        let ksk = rtype == Rtype::DNSKEY;
        self.keys
            .iter()
            .map(|k| &**k)
            .filter(move |k| !self.split || k.is_ksk() == ksk)
    }

    /// The cache key of an RRset's signatures.
    fn cache_key(&self, apex: &[u8], owner: &[u8], set: &Rrset<'_>, ttl: u32) -> u64 {
        let mut h = self.seed.build_hasher();
        h.write(apex);
        h.write(owner);
        h.write_u16(set.rtype().to_int());
        h.write_u32(ttl);
        for rd in set.rdatas() {
            h.write(rd);
        }
        h.finish()
    }
}

thread_local! {
    /// Each shard thread's caches, one per signer of the snapshot it serves (and of the
    /// ones it served, until they are dropped): no lock, nothing shared.
    static CACHES: RefCell<Vec<ShardCache>> = const { RefCell::new(Vec::new()) };
}

/// A shard's cache of one signer, and where its counts are published.
struct ShardCache {
    signer: Weak<Signer>,
    cache: SigCache,
    counters: Arc<CacheCounters>,
}

/// Runs `f` with this thread's cache of `signer`, made on first use (the one time this
/// takes the signer's lock, to register the cache's counts).
pub fn with_cache<R>(signer: &Arc<Signer>, f: impl FnOnce(&mut SigCache) -> R) -> R {
    CACHES.with(|caches| {
        let mut caches = caches.borrow_mut();
        let at = match caches
            .iter()
            .position(|c| std::ptr::eq(c.signer.as_ptr(), Arc::as_ptr(signer)))
        {
            Some(at) => at,
            None => {
                // A reload made a new signer: the old ones' caches go with them.
                caches.retain(|c| c.signer.strong_count() > 0);
                let counters = Arc::new(CacheCounters::default());
                signer
                    .counters
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(counters.clone());
                caches.push(ShardCache {
                    signer: Arc::downgrade(signer),
                    cache: SigCache::new(signer.capacity),
                    counters,
                });
                caches.len() - 1
            }
        };
        let c = &mut caches[at];
        let r = f(&mut c.cache);
        c.counters.hits.store(c.cache.hits, Ordering::Relaxed);
        c.counters.misses.store(c.cache.misses, Ordering::Relaxed);
        c.counters.entries.store(c.cache.entries, Ordering::Relaxed);
        r
    })
}

/// The RRSIGs of each part, from the cache or signed now.
pub struct Online<'a> {
    signer: &'a Signer,
    cache: &'a mut SigCache,
    validity: Validity,
    now: u32,
}

impl<'a> Online<'a> {
    /// Signing at `now` (seconds since the epoch).
    pub fn new(signer: &'a Signer, cache: &'a mut SigCache, now: u64) -> Online<'a> {
        Online {
            signer,
            cache,
            validity: Validity::from(now),
            now: now as u32,
        }
    }
}

impl Signatures for Online<'_> {
    fn of<'s, 'p: 's>(&'s mut self, p: &Part<'p>, q: &Question<'_>) -> Option<(Rrset<'s>, Option<[u8; 2]>)> {
        if !p.authoritative || p.set.rtype() == Rtype::RRSIG {
            return None;
        }
        let mut buf = [0u8; MAX_NAME_LEN];
        let owner: &[u8] = match p.owner {
            Owner::Query => q.key,
            Owner::Name(w) => {
                let o = buf.get_mut(..w.len())?;
                o.copy_from_slice(w);
                o.make_ascii_lowercase();
                o
            }
        };
        let apex = self.signer.zone_of(owner)?;
        let key = self.signer.cache_key(apex, owner, &p.set, p.ttl);
        let slot = match self.cache.find(key, self.now) {
            Some(slot) => slot,
            None => {
                let (signer, validity) = (self.signer, self.validity);
                let rdatas: ArrayVec<&[u8], 64> = p.set.rdatas().take(64).collect();
                let signee = Signee {
                    owner,
                    rtype: p.set.rtype(),
                    ttl: p.ttl,
                    rdatas: &rdatas,
                };
                self.cache.insert(key, validity.expiration, |out| {
                    let mut n = 0u16;
                    for k in signer.signing(signee.rtype) {
                        if rrsig(k, apex, &signee, validity, out) {
                            n += 1;
                        }
                    }
                    (n > 0).then_some(n)
                })?
            }
        };
        let (count, records) = self.cache.records(slot);
        Some((Rrset::from_parts(Rtype::RRSIG, p.ttl, count, records), None))
    }
}

/// Room for the one NSEC a black lie adds: its rdata (next name and type bitmap) after its
/// length.
pub struct Lie {
    buf: [u8; 2 + MAX_NAME_LEN + BITMAP_MAX],
    len: usize,
}

/// The bitmap of at most a few windows (what a name's types need in practice; more are cut).
const BITMAP_MAX: usize = 4 * 34;

impl Lie {
    /// Empty.
    pub const fn new() -> Lie {
        Lie {
            buf: [0; 2 + MAX_NAME_LEN + BITMAP_MAX],
            len: 0,
        }
    }
}

impl Default for Lie {
    fn default() -> Self {
        Self::new()
    }
}

/// Reshapes an answer of a signed zone before it is written: DNSKEY at the apex from the
/// keys; with DO=1, the black lie of a denial.
pub fn prepare<'r>(
    signer: &'r Signer,
    block: &'r Block,
    q: &'r Question<'_>,
    dnssec_ok: bool,
    res: &mut Resolution<'r>,
    lie: &'r mut Lie,
) {
    let Some(apex) = signer.zone_of(q.key) else {
        return;
    };
    if q.qtype == Rtype::DNSKEY && *q.key == *apex {
        crate::dns::resolve::single_answer(signer.dnskeys(), res);
        return;
    }
    if !dnssec_ok {
        return;
    }
    if res.glue_required {
        // A referral: the DS is signed with the rest; without one, an NSEC at the cut shows
        // NS and no DS.
        let Some(cut) = res.authority.iter().find_map(|p| match (p.owner, p.set.rtype()) {
            (Owner::Name(cut), Rtype::NS) => Some(cut),
            _ => None,
        }) else {
            return;
        };
        if res.authority.iter().any(|p| p.set.rtype() == Rtype::DS) {
            return;
        }
        let ttl = res.authority.iter().next().map_or(DNSKEY_TTL, |p| p.ttl);
        if let Some(set) = lie_at(lie, cut, &[Rtype::NS.to_int()], ttl) {
            res.authority.push(Part {
                owner: Owner::Name(cut),
                set,
                sigs: None,
                ttl,
                authoritative: true,
            });
        }
        return;
    }
    // A denial carries the zone's SOA: RFC 2308 §3.
    let Some(soa_ttl) = res
        .authority
        .iter()
        .find(|p| p.set.rtype() == Rtype::SOA)
        .map(|p| p.ttl)
    else {
        return;
    };
    let exists = res.rcode != Rcode::NXDOMAIN;
    if res.rcode != Rcode::NOERROR && exists {
        return;
    }
    // The name denied: the last of a CNAME chain (as the zone holds it), or the query name.
    let last_cname = res
        .answer
        .iter()
        .last()
        .filter(|p| p.set.rtype() == Rtype::CNAME)
        .map(|p| p.set.rdatas().next());
    let (owner, wire): (Owner<'r>, &'r [u8]) = match last_cname {
        None => (Owner::Query, q.key),
        Some(Some(target)) if target.len() <= MAX_NAME_LEN => (Owner::Name(target), target),
        Some(_) => return,
    };
    let mut name_buf = [0u8; MAX_NAME_LEN];
    let name = &mut name_buf[..wire.len()];
    name.copy_from_slice(wire);
    name.make_ascii_lowercase();
    let name: &[u8] = name;
    if !is_in_zone(name, apex) {
        return;
    }
    let mut types: ArrayVec<u16, 64> = ArrayVec::new();
    if exists {
        types_at(block, name, &mut types);
        if *name == *apex {
            let _ = types.try_push(Rtype::DNSKEY.to_int());
        }
    } else {
        // RFC 9824 §3.1: NOERROR, and the NSEC says the name does not exist.
        res.rcode = Rcode::NOERROR;
        types.push(NXNAME);
    }
    if let Some(set) = lie_at(lie, name, &types, soa_ttl) {
        res.authority.push(Part {
            owner,
            set,
            sigs: None,
            ttl: soa_ttl,
            authoritative: true,
        });
    }
}

/// The types `key` owns in the block's data (a wildcard's when it is made from one), and
/// those its templates answer there (listing a type that is not there is safe: a query
/// for it gets its own denial; leaving out one that is would deny it).
fn types_at(block: &Block, key: &[u8], out: &mut ArrayVec<u16, 64>) {
    for t in &block.plugins.templates {
        if let Some(qtype) = t.qtype_at(key) {
            let _ = out.try_push(qtype.to_int());
        }
    }
    for h in &block.handlers {
        match h {
            Handler::File(f) => {
                if let Some(zone) = f.zone_for(key) {
                    if let Found::Name(node) | Found::Wildcard(node) = zone.find(key, Rtype::DS) {
                        for set in node.rrsets() {
                            let _ = out.try_push(set.rtype().to_int());
                        }
                    }
                    return;
                }
            }
            Handler::Hosts(h) => {
                if let Some(n) = h.table.forward(key) {
                    for t in [Rtype::A, Rtype::AAAA] {
                        if n.rrset(t).is_some() {
                            let _ = out.try_push(t.to_int());
                        }
                    }
                }
                if h.table.apex(key).is_some() {
                    let _ = out.try_extend_from_slice(&[Rtype::SOA.to_int(), Rtype::NS.to_int()]);
                }
                if h.zones.iter().any(|z| is_in_zone(key, z)) {
                    return;
                }
            }
            _ => {}
        }
    }
}

/// The NSEC of a black lie at `owner` (lowercase wire): next name `\000.<owner>` (nothing
/// sorts between them, RFC 4034 §6.1), the given types and RRSIG and NSEC.
fn lie_at<'l>(lie: &'l mut Lie, owner: &[u8], types: &[u16], ttl: u32) -> Option<Rrset<'l>> {
    let next_len = 2 + owner.len();
    if next_len > MAX_NAME_LEN {
        return None;
    }
    let mut all: ArrayVec<u16, 68> = types.iter().copied().collect();
    all.extend([Rtype::RRSIG.to_int(), Rtype::NSEC.to_int()]);
    all.sort_unstable();
    let mut n = 0;
    for i in 0..all.len() {
        if i == 0 || all[i] != all[n - 1] {
            all[n] = all[i];
            n += 1;
        }
    }
    all.truncate(n);
    let buf = &mut lie.buf;
    let mut at = 2;
    buf[at..at + 2].copy_from_slice(b"\x01\x00");
    buf[at + 2..at + next_len].copy_from_slice(owner);
    at += next_len;
    at += type_bitmap(&all, &mut buf[at..]);
    buf[..2].copy_from_slice(&((at - 2) as u16).to_be_bytes());
    lie.len = at;
    Some(Rrset::from_parts(Rtype::NSEC, ttl, 1, &lie.buf[..lie.len]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_black_lie_names_its_successor_and_its_types() {
        let mut lie = Lie::new();
        let set = lie_at(&mut lie, b"\x01x\x07example\x00", &[NXNAME], 60).unwrap();
        let rd = set.rdatas().next().unwrap();
        // \000.x.example. then window 0 with RRSIG (46), NSEC (47) and NXNAME (128).
        let mut want = b"\x01\x00\x01x\x07example\x00\x00\x11".to_vec();
        let mut bits = [0u8; 17];
        bits[5] = 0x03;
        bits[16] = 0x80;
        want.extend_from_slice(&bits);
        assert_eq!(rd, &want[..]);
        let set = lie_at(&mut lie, b"\x00", &[Rtype::CAA.to_int()], 60).unwrap();
        let rd = set.rdatas().next().unwrap();
        assert_eq!(&rd[..3], b"\x01\x00\x00");
        assert_eq!(&rd[rd.len() - 3..], b"\x01\x01\x40", "CAA (257) in window 1");
    }
}
