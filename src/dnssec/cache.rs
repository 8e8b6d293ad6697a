//! The signatures of online signing, kept per shard (`cache_capacity` entries, CoreDNS's
//! default 10000): a set-associative table keyed by a 64-bit hash of what was signed, with
//! a per-process random seed so no one can aim queries at one entry. A hit reads the slot
//! in place (no allocation); a miss signs into the evicted slot's buffer, which keeps its
//! capacity from one signature to the next.

/// Ways per set: the entries a key may sit in.
const WAYS: usize = 4;
/// A signature is signed again when it would expire within two days (CoreDNS: eight days
/// of validity, refreshed after six).
pub const REFRESH_BEFORE: u32 = 2 * 86400;

/// One cached RRSIG RRset.
#[derive(Default)]
struct Slot {
    key: u64,
    /// Expiration of its signatures (0: empty).
    expiration: u32,
    /// When it was last used, in lookups of this cache (the least recent way is evicted).
    used: u64,
    /// Number of RRSIG records.
    count: u16,
    /// The records' rdatas, each after its length.
    records: Vec<u8>,
}

/// A shard's signature cache.
pub struct SigCache {
    slots: Box<[Slot]>,
    /// Sets minus one (their number is a power of two).
    mask: usize,
    clock: u64,
    /// Lookups that found a fresh entry, and those that did not.
    pub hits: u64,
    /// Misses.
    pub misses: u64,
    /// Slots in use.
    pub entries: u64,
}

impl SigCache {
    /// Room for at least `capacity` RRSIG RRsets.
    pub fn new(capacity: usize) -> SigCache {
        let sets = capacity.div_ceil(WAYS).max(1).next_power_of_two();
        SigCache {
            slots: (0..sets * WAYS).map(|_| Slot::default()).collect(),
            mask: sets - 1,
            clock: 0,
            hits: 0,
            misses: 0,
            entries: 0,
        }
    }

    /// Entries it holds at most.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn set(&self, key: u64) -> std::ops::Range<usize> {
        let at = (key as usize & self.mask) * WAYS;
        at..at + WAYS
    }

    /// The slot holding `key` with signatures valid beyond `now` + [`REFRESH_BEFORE`].
    pub fn find(&mut self, key: u64, now: u32) -> Option<usize> {
        self.clock += 1;
        let clock = self.clock;
        let range = self.set(key);
        let hit = self.slots[range.clone()].iter_mut().position(|s| {
            s.key == key && s.expiration != 0 && s.expiration.wrapping_sub(now) as i32 > REFRESH_BEFORE as i32
        });
        match hit {
            Some(i) => {
                self.hits += 1;
                self.slots[range.start + i].used = clock;
                Some(range.start + i)
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// Fills a slot for `key` (its own, else an empty one, else the least recently used of
    /// its set) with what `fill` appends; `None`, and the slot left empty, when it fails.
    pub fn insert(
        &mut self,
        key: u64,
        expiration: u32,
        fill: impl FnOnce(&mut Vec<u8>) -> Option<u16>,
    ) -> Option<usize> {
        let range = self.set(key);
        let ways = &self.slots[range.clone()];
        let i = ways
            .iter()
            .position(|s| s.key == key || s.expiration == 0)
            .unwrap_or_else(|| (0..WAYS).min_by_key(|&w| ways[w].used).unwrap_or_default());
        let slot = &mut self.slots[range.start + i];
        slot.records.clear();
        if slot.expiration != 0 {
            slot.expiration = 0;
            self.entries -= 1;
        }
        let count = fill(&mut slot.records)?;
        self.entries += 1;
        slot.key = key;
        slot.count = count;
        slot.expiration = expiration.max(1);
        slot.used = self.clock;
        Some(range.start + i)
    }

    /// The records of a slot [`SigCache::find`] or [`SigCache::insert`] gave: count and
    /// packed rdatas.
    pub fn records(&self, slot: usize) -> (u16, &[u8]) {
        let s = &self.slots[slot];
        (s.count, &s.records)
    }

    /// Entries in use.
    pub fn len(&self) -> usize {
        self.entries as usize
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(v: u8) -> impl FnOnce(&mut Vec<u8>) -> Option<u16> {
        move |out| {
            out.extend_from_slice(&[0, 1, v]);
            Some(1)
        }
    }

    #[test]
    fn hits_refreshes_and_eviction() {
        let mut c = SigCache::new(4);
        let now = 1_000_000;
        assert!(c.find(7, now).is_none());
        let s = c.insert(7, now + 8 * 86400, fill(1)).unwrap();
        assert_eq!(c.records(s), (1, &[0, 1, 1][..]));
        assert_eq!(c.find(7, now), Some(s));
        // Six days on, two are left: signed again.
        assert!(c.find(7, now + 6 * 86400 + 1).is_none());
        // The four ways of one set (capacity 4 is one set): the least recent goes.
        for k in [8u64, 9, 10] {
            c.insert(k, now + 8 * 86400, fill(k as u8)).unwrap();
        }
        c.find(7, now).unwrap();
        c.insert(11, now + 8 * 86400, fill(11)).unwrap();
        assert!(c.find(8, now).is_none(), "8 was the least recently used");
        assert!(c.find(7, now).is_some());
        assert_eq!((c.hits, c.len()), (3, 4));
        // A failed signing leaves nothing behind.
        assert!(c.insert(12, now + 8 * 86400, |_| None).is_none());
        assert_eq!(c.len(), 3);
    }
}
