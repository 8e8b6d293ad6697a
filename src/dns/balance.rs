//! `loadbalance round_robin`: the addresses of each A and AAAA RRset in a reply are put in a
//! random order (a uniform shuffle, as CoreDNS's), so that clients taking the first spread
//! over all of them.
//!
//! The shuffle works on the finished message in place, the same for authoritative and
//! forwarded replies: within a run of A (or AAAA) records with one owner, only the rdata
//! moves (fixed length, no names inside), so owners, TTLs and any compression pointer stay
//! valid. No allocation and no system call per reply (random bytes come in blocks): a run longer than [`MAX_SHUFFLED`] is rotated instead.

use arrayvec::ArrayVec;
use domain::base::ParsedName;
use domain::base::iana::Rtype;
use domain::dep::octseq::Parser;

use super::rng::Rng;
use super::wire::{self, HEADER_LEN};

/// Records of one RRset shuffled fully; beyond, the set is rotated by a random offset.
pub const MAX_SHUFFLED: usize = 64;

thread_local! {
    /// The shard's random bytes (each shard is one thread), as for upstream query IDs.
    static RNG: Rng = Rng::default();
}

/// A number below `n`.
fn below(n: usize) -> usize {
    RNG.with(|r| r.below(n))
}

/// Shuffles the addresses of every A and AAAA RRset in the answer and additional sections
/// of `msg`. A message that does not parse is left as it is.
pub fn shuffle_addresses(msg: &mut [u8]) {
    let _ = shuffle(msg);
}

/// Consecutive records of one owner and type, by where their rdata is.
struct Run<'m> {
    owner: ParsedName<&'m [u8]>,
    rtype: Rtype,
    /// Offsets of the first [`MAX_SHUFFLED`] rdatas.
    rdatas: ArrayVec<u16, MAX_SHUFFLED>,
    /// Their common length.
    len: usize,
    /// Records in the run (more than `rdatas` holds when it is long).
    total: usize,
}

/// Runs of addresses found, to reorder once the message is read.
type Found = ArrayVec<(ArrayVec<u16, MAX_SHUFFLED>, usize, usize), 8>;

fn shuffle(msg: &mut [u8]) -> Option<()> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let found = find_runs(msg)?;
    for (rdatas, len, total) in &found {
        if *total > rdatas.len() {
            // Too many to shuffle without allocating: rotate the first MAX_SHUFFLED.
            rotate(msg, rdatas, *len, below(rdatas.len()));
        } else {
            for i in (1..rdatas.len()).rev() {
                let j = below(i + 1);
                swap(msg, usize::from(rdatas[i]), usize::from(rdatas[j]), *len);
            }
        }
    }
    Some(())
}

/// The runs of two or more A or AAAA records of one owner in the answer and additional
/// sections (the authority section holds no addresses to balance).
fn find_runs(msg: &[u8]) -> Option<Found> {
    let mut found = Found::new();
    let keep = |run: Option<Run<'_>>, found: &mut Found| {
        if let Some(r) = run.filter(|r| r.rdatas.len() > 1) {
            let _ = found.try_push((r.rdatas, r.len, r.total));
        }
    };
    let mut p = Parser::from_ref(msg);
    p.advance(HEADER_LEN).ok()?;
    for _ in 0..wire::count(msg, 0) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
    }
    for section in 1..4 {
        let mut run: Option<Run<'_>> = None;
        for _ in 0..wire::count(msg, section) {
            let owner = ParsedName::parse(&mut p).ok()?;
            let rtype = Rtype::from_int(p.parse_u16_be().ok()?);
            p.advance(6).ok()?;
            let len = usize::from(p.parse_u16_be().ok()?);
            let at = u16::try_from(p.pos()).ok()?;
            p.advance(len).ok()?;
            if let Some(r) = run
                .as_mut()
                .filter(|r| r.rtype == rtype && r.len == len && r.owner == owner)
            {
                let _ = r.rdatas.try_push(at);
                r.total += 1;
                continue;
            }
            keep(run.take(), &mut found);
            if section != 2 && matches!(rtype, Rtype::A | Rtype::AAAA) {
                let mut rdatas = ArrayVec::new();
                rdatas.push(at);
                run = Some(Run {
                    owner,
                    rtype,
                    rdatas,
                    len,
                    total: 1,
                });
            }
        }
        keep(run, &mut found);
    }
    Some(found)
}

fn swap(msg: &mut [u8], a: usize, b: usize, len: usize) {
    if a == b {
        return;
    }
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    let (left, right) = msg.split_at_mut(hi);
    left[lo..lo + len].swap_with_slice(&mut right[..len]);
}

fn rotate(msg: &mut [u8], offs: &[u16], len: usize, by: usize) {
    for _ in 0..by {
        for w in offs.windows(2) {
            swap(msg, usize::from(w[0]), usize::from(w[1]), len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply for a.test A with `n` addresses 10.0.0.1.. at a pointer to the question.
    fn reply(n: u8) -> Vec<u8> {
        let mut m = vec![0u8; HEADER_LEN];
        wire::set_count(&mut m, 0, 1);
        wire::set_count(&mut m, 1, u16::from(n));
        m.extend_from_slice(b"\x01a\x04test\x00\x00\x01\x00\x01");
        for i in 1..=n {
            m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, i]);
        }
        m
    }

    fn addresses(m: &[u8]) -> Vec<u8> {
        m[HEADER_LEN + 12..].chunks(16).map(|r| r[15]).collect()
    }

    #[test]
    fn every_order_comes_up_and_nothing_else_changes() {
        let before = reply(3);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..600 {
            let mut m = before.clone();
            shuffle_addresses(&mut m);
            let mut a = addresses(&m);
            seen.insert(a.clone());
            a.sort();
            assert_eq!(a, vec![1, 2, 3]);
            // Owners and TTLs stay where they were.
            let records = |v: &[u8]| {
                v[HEADER_LEN + 12..]
                    .chunks(16)
                    .map(|r| r[..12].to_vec())
                    .collect::<Vec<_>>()
            };
            assert_eq!(records(&m), records(&before));
            assert_eq!(m[..HEADER_LEN + 12], before[..HEADER_LEN + 12]);
        }
        assert_eq!(seen.len(), 6, "all 3! orders: {seen:?}");
    }

    #[test]
    fn long_sets_rotate_and_broken_messages_stay() {
        let before = reply(100);
        let mut m = before.clone();
        shuffle_addresses(&mut m);
        let mut a = addresses(&m);
        a.sort();
        assert_eq!(a, (1..=100).collect::<Vec<u8>>());
        let mut short = before[..40].to_vec();
        let copy = short.clone();
        shuffle_addresses(&mut short);
        assert_eq!(short, copy);
    }
}
