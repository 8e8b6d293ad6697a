//! Differences between versions of a zone, kept as a bounded journal so that IXFR (RFC 1995)
//! can send a secondary what changed since its serial instead of the whole zone. No I/O.
//!
//! A difference is computed between two snapshots (a zone file reloaded with a larger
//! serial, a zone transferred in): every record of the old version that the new one lacks is
//! deleted, every record of the new one that the old lacks is added (a TTL change is a
//! deletion and an addition, as IXFR carries it). The apex SOA is each side's first record.

use std::collections::VecDeque;
use std::sync::Arc;

use domain::base::iana::Rtype;

use super::store::Zone;

/// How many differences a zone's journal keeps.
pub const JOURNAL_DEPTH: usize = 64;

/// One record: owner (lowercase wire), type, TTL, rdata (uncompressed wire).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rec {
    /// The owner.
    pub owner: Box<[u8]>,
    /// The type.
    pub rtype: u16,
    /// The TTL.
    pub ttl: u32,
    /// The data.
    pub rdata: Box<[u8]>,
}

/// What changed from one serial to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diff {
    /// The old version's serial and apex SOA.
    pub from: (u32, Rec),
    /// The new version's serial and apex SOA.
    pub to: (u32, Rec),
    /// Records deleted (without the old SOA).
    pub deleted: Vec<Rec>,
    /// Records added (without the new SOA).
    pub added: Vec<Rec>,
}

impl Diff {
    /// How many records it carries, SOAs included.
    pub fn len(&self) -> usize {
        2 + self.deleted.len() + self.added.len()
    }

    /// Never: a difference has its two SOAs.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// The difference from `old` to `new` (both of the same apex), or `None` when either has no
/// SOA.
pub fn between(old: &Zone, new: &Zone) -> Option<Diff> {
    let apex = new.apex();
    let from = (old.serial(), apex_soa(old)?);
    let to = (new.serial(), apex_soa(new)?);
    let (mut deleted, mut added) = (Vec::new(), Vec::new());
    for name in old.names() {
        let mut was = records(old, name);
        let mut now = records(new, name);
        was.sort();
        now.sort();
        deleted.extend(was.iter().filter(|r| now.binary_search(r).is_err()).cloned());
        added.extend(now.iter().filter(|r| was.binary_search(r).is_err()).cloned());
    }
    for name in new.names().filter(|n| old.node(n).is_none()) {
        added.extend(records(new, name));
    }
    let soa = Rtype::SOA.to_int();
    let not_soa = |r: &Rec| !(r.rtype == soa && *r.owner == *apex);
    deleted.retain(not_soa);
    added.retain(not_soa);
    Some(Diff {
        from,
        to,
        deleted,
        added,
    })
}

fn apex_soa(z: &Zone) -> Option<Rec> {
    let set = z.soa()?;
    Some(Rec {
        owner: z.apex().into(),
        rtype: Rtype::SOA.to_int(),
        ttl: set.ttl(),
        rdata: set.rdatas().next()?.into(),
    })
}

fn records(z: &Zone, name: &[u8]) -> Vec<Rec> {
    let Some(node) = z.node(name) else {
        return Vec::new();
    };
    node.rrsets()
        .flat_map(|set| {
            set.rdatas().map(move |rdata| Rec {
                owner: name.into(),
                rtype: set.rtype().to_int(),
                ttl: set.ttl(),
                rdata: rdata.into(),
            })
        })
        .collect()
}

/// A zone's recent differences, oldest first, each following the one before.
#[derive(Clone, Debug, Default)]
pub struct Journal {
    diffs: VecDeque<Arc<Diff>>,
}

impl Journal {
    /// Adds the newest difference. One that does not follow the last (a serial that jumped
    /// or went back: the zone was replaced some other way) starts the journal over. The
    /// oldest go once there are more than [`JOURNAL_DEPTH`], or once the journal holds
    /// more records than `zone_records` (an AXFR is then no larger than the IXFR).
    pub fn push(&mut self, d: Diff, zone_records: usize) {
        if self.diffs.back().is_some_and(|last| last.to.0 != d.from.0) {
            self.diffs.clear();
        }
        self.diffs.push_back(Arc::new(d));
        while self.diffs.len() > JOURNAL_DEPTH
            || (self.diffs.len() > 1 && self.diffs.iter().map(|d| d.len()).sum::<usize>() > zone_records.max(1))
        {
            self.diffs.pop_front();
        }
    }

    /// The differences from `serial` to `current`, in order, when the journal reaches back
    /// that far.
    pub fn since(&self, serial: u32, current: u32) -> Option<Vec<Arc<Diff>>> {
        let start = self.diffs.iter().position(|d| d.from.0 == serial)?;
        let chain: Vec<Arc<Diff>> = self.diffs.iter().skip(start).cloned().collect();
        (chain.last()?.to.0 == current).then_some(chain)
    }

    /// How many differences it holds.
    pub fn len(&self) -> usize {
        self.diffs.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.diffs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(serial: u32, body: &str) -> Zone {
        let text =
            format!("$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin {serial} 3600 600 86400 60\n@ NS ns\n{body}");
        let origin = crate::zone::name::parse_abs("example.test").unwrap();
        crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap()
    }

    #[test]
    fn what_changed_and_nothing_else() {
        let a = zone(
            1,
            "www A 192.0.2.1\nwww A 192.0.2.2\nmail A 192.0.2.25\ngone TXT \"x\"\n",
        );
        let b = zone(
            2,
            "www A 192.0.2.1\nwww A 192.0.2.3\nmail 60 A 192.0.2.25\nnew TXT \"y\"\n",
        );
        let d = between(&a, &b).unwrap();
        assert_eq!((d.from.0, d.to.0), (1, 2));
        let show = |v: &[Rec]| {
            let mut v: Vec<String> = v
                .iter()
                .map(|r| format!("{} {} {}", crate::zone::name::display(&r.owner), r.rtype, r.ttl))
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            show(&d.deleted),
            [
                "gone.example.test. 16 300",
                "mail.example.test. 1 300",
                "www.example.test. 1 300"
            ]
        );
        assert_eq!(
            show(&d.added),
            [
                "mail.example.test. 1 60",
                "new.example.test. 16 300",
                "www.example.test. 1 300"
            ]
        );
    }

    #[test]
    fn the_journal_chains_and_forgets() {
        let zones: Vec<Zone> = (1..=4).map(|s| zone(s, &format!("www A 192.0.2.{s}\n"))).collect();
        let mut j = Journal::default();
        for w in zones.windows(2) {
            j.push(between(&w[0], &w[1]).unwrap(), 1000);
        }
        assert_eq!(j.since(1, 4).map(|c| c.len()), Some(3));
        assert_eq!(j.since(3, 4).map(|c| c.len()), Some(1));
        assert!(j.since(4, 4).is_none() && j.since(0, 4).is_none());
        assert!(j.since(1, 5).is_none(), "not up to the current serial");
        // Bounded by the zone's size: small zone, only the newest stays.
        let mut small = Journal::default();
        for w in zones.windows(2) {
            small.push(between(&w[0], &w[1]).unwrap(), 4);
        }
        assert_eq!(small.len(), 1);
        // A difference that does not follow starts over.
        j.push(between(&zones[0], &zones[1]).unwrap(), 1000);
        assert_eq!(j.len(), 1);
    }
}
