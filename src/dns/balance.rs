//! `loadbalance`: the addresses of each A and AAAA RRset in a reply are put in a random
//! order (`round_robin`: a uniform shuffle, as CoreDNS's), or one drawn by its weight is put
//! first (`weighted`); `prefer`'s prefixes then come first, in their order; MX RRsets of
//! the answer are shuffled too (`round_robin`).
//!
//! Addresses are reordered in the finished message in place, the same for authoritative and
//! forwarded replies: within a run of A (or AAAA) records with one owner, only the rdata
//! moves (fixed length, no names inside), so owners, TTLs and any compression pointer stay
//! valid. No allocation and no system call per reply (random bytes come in blocks): a run
//! longer than [`MAX_SHUFFLED`] is rotated instead. An MX record holds a name other records
//! may point into, so a reply with an MX RRset of two or more is rebuilt (it allocates).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arrayvec::ArrayVec;
use domain::base::ParsedName;
use domain::base::iana::Rtype;
use domain::dep::octseq::Parser;

use super::rng::Rng;
use super::wire::{self, HEADER_LEN};
use crate::zone::name::NameKey;

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

/// What a block's `loadbalance` does.
#[derive(Debug, Default)]
pub struct Balance {
    /// `weighted`: the weight file's table; `None`: `round_robin`.
    pub weights: Option<Arc<Weights>>,
    /// `prefer`: prefixes whose addresses come first, in this order.
    pub prefer: Vec<(IpAddr, u8)>,
}

/// A weight file: per owner (lowercase wire), the weights (1 to 255) of its addresses;
/// an address not listed weighs 1.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Weights(pub HashMap<Box<[u8]>, Vec<(IpAddr, u8)>>);

impl Weights {
    /// Reads CoreDNS's weight file format: `#` comments, a name alone on a line, then
    /// `ADDRESS WEIGHT` lines for it. The error names the line.
    pub fn parse(text: &str) -> Result<Weights, String> {
        let mut map: HashMap<Box<[u8]>, Vec<(IpAddr, u8)>> = HashMap::new();
        let mut current: Option<Box<[u8]>> = None;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            let n = i + 1;
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.split_whitespace().collect::<Vec<_>>().as_slice() {
                [name] => {
                    if name.parse::<IpAddr>().is_ok() {
                        return Err(format!("line {n}: {name:?} is an address without a weight"));
                    }
                    let key = crate::zone::name::parse_abs(name).map_err(|e| format!("line {n}: {e}"))?;
                    let key: Box<[u8]> = NameKey::of(&key).as_slice().into();
                    map.entry(key.clone()).or_default();
                    current = Some(key);
                }
                [ip, weight] => {
                    let ip: IpAddr = ip
                        .parse()
                        .map_err(|_| format!("line {n}: {ip:?} is not an IP address"))?;
                    let w = weight
                        .parse::<u8>()
                        .ok()
                        .filter(|w| *w > 0)
                        .ok_or_else(|| format!("line {n}: weight {weight:?} is not in 1..=255"))?;
                    let Some(name) = &current else {
                        return Err(format!("line {n}: an address before any domain name"));
                    };
                    map.entry(name.clone()).or_default().push((ip, w));
                }
                _ => return Err(format!("line {n}: expected a domain name or ADDRESS WEIGHT: {line:?}")),
            }
        }
        Ok(Weights(map))
    }
}

/// Applies the block's `loadbalance` to a finished reply. A message that does not parse is
/// left as it is.
pub fn balance(msg: &mut Vec<u8>, b: &Balance) {
    match &b.weights {
        None => {
            shuffle_addresses(msg);
            shuffle_mx(msg);
        }
        Some(w) => {
            let _ = top_by_weight(msg, w);
        }
    }
    if !b.prefer.is_empty() {
        let _ = prefer(msg, &b.prefer);
    }
}

/// Shuffles the addresses of every A and AAAA RRset in the answer and additional sections
/// of `msg`. A message that does not parse is left as it is.
pub fn shuffle_addresses(msg: &mut [u8]) {
    let _ = shuffle(msg);
}

/// Consecutive records of one owner and type, by where their rdata is.
struct Run<'m> {
    owner: ParsedName<&'m [u8]>,
    /// Where the owner of the first record starts.
    owner_at: u16,
    rtype: Rtype,
    /// Offsets of the first [`MAX_SHUFFLED`] rdatas.
    rdatas: ArrayVec<u16, MAX_SHUFFLED>,
    /// Their common length.
    len: usize,
    /// Records in the run (more than `rdatas` holds when it is long).
    total: usize,
}

/// A run of addresses found, to reorder once the message is read.
struct Found {
    owner_at: u16,
    rdatas: ArrayVec<u16, MAX_SHUFFLED>,
    len: usize,
    total: usize,
}

/// The runs of one message (at most this many are reordered).
type Runs = ArrayVec<Found, 8>;

fn shuffle(msg: &mut [u8]) -> Option<()> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    for f in &find_runs(msg)? {
        if f.total > f.rdatas.len() {
            // Too many to shuffle without allocating: rotate the first MAX_SHUFFLED.
            rotate(msg, &f.rdatas, f.len, below(f.rdatas.len()));
        } else {
            for i in (1..f.rdatas.len()).rev() {
                let j = below(i + 1);
                swap(msg, usize::from(f.rdatas[i]), usize::from(f.rdatas[j]), f.len);
            }
        }
    }
    Some(())
}

/// The address in the rdata at `at` of length `len` (4 or 16).
fn address(msg: &[u8], at: u16, len: usize) -> Option<IpAddr> {
    let d = msg.get(usize::from(at)..usize::from(at) + len)?;
    Some(match len {
        4 => IpAddr::from(<[u8; 4]>::try_from(d).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(d).ok()?),
        _ => return None,
    })
}

/// `weighted`: in each run, one address drawn by its weight (CoreDNS's: the owner's entry
/// in the file, 1 for addresses it does not list) is swapped to the first place.
fn top_by_weight(msg: &mut [u8], w: &Weights) -> Option<()> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    for f in &find_runs(msg)? {
        let mut p = Parser::from_ref(&*msg);
        p.advance(usize::from(f.owner_at)).ok()?;
        let owner = NameKey::of(&ParsedName::parse(&mut p).ok()?);
        let listed = w.0.get(owner.as_slice()).map_or(&[][..], Vec::as_slice);
        let weight = |at: u16| {
            address(msg, at, f.len)
                .and_then(|ip| listed.iter().find(|(a, _)| *a == ip))
                .map_or(1, |(_, w)| usize::from(*w))
        };
        let sum: usize = f.rdatas.iter().map(|&at| weight(at)).sum();
        let mut v = below(sum.max(1));
        let mut top = 0;
        for (i, &at) in f.rdatas.iter().enumerate() {
            let wi = weight(at);
            if v < wi {
                top = i;
                break;
            }
            v -= wi;
        }
        swap(msg, usize::from(f.rdatas[0]), usize::from(f.rdatas[top]), f.len);
    }
    Some(())
}

/// `prefer`: in each run, addresses in the first prefix come first, then those in the
/// second, and so on, the others last; the order within each group is kept.
fn prefer(msg: &mut [u8], prefixes: &[(IpAddr, u8)]) -> Option<()> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    for f in &find_runs(msg)? {
        let mut items: ArrayVec<(usize, [u8; 16]), MAX_SHUFFLED> = ArrayVec::new();
        for &at in &f.rdatas {
            let ip = address(msg, at, f.len)?;
            let rank = prefixes
                .iter()
                .position(|&(net, len)| crate::config::in_prefix(ip, net, len))
                .unwrap_or(prefixes.len());
            let mut data = [0u8; 16];
            data[..f.len].copy_from_slice(&msg[usize::from(at)..usize::from(at) + f.len]);
            items.push((rank, data));
        }
        // A stable sort by rank, in place (at most MAX_SHUFFLED items).
        for i in 1..items.len() {
            let mut j = i;
            while j > 0 && items[j - 1].0 > items[j].0 {
                items.swap(j - 1, j);
                j -= 1;
            }
        }
        for (&at, (_, data)) in f.rdatas.iter().zip(&items) {
            msg[usize::from(at)..usize::from(at) + f.len].copy_from_slice(&data[..f.len]);
        }
    }
    Some(())
}

/// Shuffles each MX RRset of two or more in the answer section by rebuilding the message
/// (its names may be pointed into); a message that would grow is left as it is.
fn shuffle_mx(msg: &mut Vec<u8>) {
    if has_mx_run(msg) != Some(true) {
        return;
    }
    if let Some(made) = rebuild_with_mx_shuffled(msg) {
        *msg = made;
    }
}

/// Whether the answer holds two MX records of one owner in a row (read without allocating,
/// so replies without one pay no more than this scan).
fn has_mx_run(msg: &[u8]) -> Option<bool> {
    let mut p = Parser::from_ref(msg);
    p.advance(HEADER_LEN).ok()?;
    for _ in 0..wire::count(msg, 0) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
    }
    let mut last: Option<ParsedName<&[u8]>> = None;
    for _ in 0..wire::count(msg, 1) {
        let owner = ParsedName::parse(&mut p).ok()?;
        let rtype = Rtype::from_int(p.parse_u16_be().ok()?);
        p.advance(6).ok()?;
        let len = usize::from(p.parse_u16_be().ok()?);
        p.advance(len).ok()?;
        if rtype != Rtype::MX {
            last = None;
            continue;
        }
        if last.as_ref().is_some_and(|l| *l == owner) {
            return Some(true);
        }
        last = Some(owner);
    }
    Some(false)
}

fn rebuild_with_mx_shuffled(msg: &[u8]) -> Option<Vec<u8>> {
    use domain::base::Message;
    use domain::base::message_builder::{MessageBuilder, StaticCompressor};
    use domain::rdata::AllRecordData;
    let m = Message::from_octets(msg).ok()?;
    let answer: Vec<_> = m.answer().ok()?.collect::<Result<_, _>>().ok()?;
    // The order of the answer: runs of MX with one owner shuffled, the rest in place.
    let mut order: Vec<usize> = (0..answer.len()).collect();
    let mut shuffled = false;
    let mut i = 0;
    while i < answer.len() {
        let mut j = i + 1;
        if answer[i].rtype() == Rtype::MX {
            while j < answer.len() && answer[j].rtype() == Rtype::MX && answer[j].owner() == answer[i].owner() {
                j += 1;
            }
        }
        if j - i > 1 {
            for k in (1..j - i).rev() {
                order.swap(i + k, i + below(k + 1));
            }
            shuffled = true;
        }
        i = j;
    }
    if !shuffled {
        return None;
    }
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(msg.len()))).ok()?;
    *b.header_mut() = m.header();
    let mut qb = b.question();
    for q in m.question() {
        qb.push(q.ok()?).ok()?;
    }
    let mut ans = qb.answer();
    for &k in &order {
        let rec = answer[k]
            .clone()
            .into_record::<AllRecordData<_, ParsedName<_>>>()
            .ok()??;
        ans.push(rec).ok()?;
    }
    let mut auth = ans.authority();
    for rr in m.authority().ok()? {
        auth.push(rr.ok()?.into_record::<AllRecordData<_, ParsedName<_>>>().ok()??)
            .ok()?;
    }
    let mut add = auth.additional();
    for rr in m.additional().ok()? {
        add.push(rr.ok()?.into_record::<AllRecordData<_, ParsedName<_>>>().ok()??)
            .ok()?;
    }
    let out = add.finish().into_target();
    (out.len() <= msg.len()).then_some(out)
}

/// The runs of two or more A or AAAA records of one owner in the answer and additional
/// sections (the authority section holds no addresses to balance).
fn find_runs(msg: &[u8]) -> Option<Runs> {
    let mut found = Runs::new();
    let keep = |run: Option<Run<'_>>, found: &mut Runs| {
        if let Some(r) = run.filter(|r| r.rdatas.len() > 1) {
            let _ = found.try_push(Found {
                owner_at: r.owner_at,
                rdatas: r.rdatas,
                len: r.len,
                total: r.total,
            });
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
            let owner_at = u16::try_from(p.pos()).ok()?;
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
            let fits = matches!((rtype, len), (Rtype::A, 4) | (Rtype::AAAA, 16));
            if section != 2 && fits {
                let mut rdatas = ArrayVec::new();
                rdatas.push(at);
                run = Some(Run {
                    owner,
                    owner_at,
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
    fn weight_files_as_coredns_reads_them() {
        let w = Weights::parse("# c\n\nwww.example.com\n100.64.1.1 3\n100.64.1.2 1\nother.test.\n::1 255\n").unwrap();
        let key = |n: &str| -> Box<[u8]> { NameKey::of(&crate::zone::name::parse_abs(n).unwrap()).as_slice().into() };
        assert_eq!(
            w.0[&key("www.example.com")],
            [("100.64.1.1".parse().unwrap(), 3), ("100.64.1.2".parse().unwrap(), 1)]
        );
        assert_eq!(w.0[&key("other.test")], [("::1".parse().unwrap(), 255)]);
        for (bad, want) in [
            ("10.0.0.1 3\n", "line 1: an address before any domain name"),
            (
                "a.test\n10.0.0.1\n",
                "line 2: \"10.0.0.1\" is an address without a weight",
            ),
            ("a.test\n10.0.0.1 0\n", "line 2: weight \"0\""),
            ("a.test\n10.0.0.1 256\n", "line 2: weight \"256\""),
            ("a.test\nfoo 3\n", "line 2: \"foo\" is not an IP address"),
            ("a.test\n1 2 3\n", "line 2: expected"),
        ] {
            let e = Weights::parse(bad).unwrap_err();
            assert!(e.contains(want), "{bad:?}: {e}");
        }
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
