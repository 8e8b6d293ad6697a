//! Response rate limiting (RRL): BIND's defence against reflection, with the syntax of
//! CoreDNS's `rrl` plugin (`config::rrl`). A UDP reply is counted against an account of
//! the client's prefix and what the reply is (its [`Category`]): an answer counts against
//! its name and type, NXDOMAIN and NODATA against the zone (the SOA owner in authority, so
//! a random-subdomain flood is one account), a referral against the delegation, every
//! other error against one account per prefix. Over the allowance a reply is dropped, and
//! every `slip`-th one is sent truncated and empty instead, so that a real client behind a
//! forged prefix retries over TCP (which RRL never limits).
//!
//! Accounts are token buckets kept as one timestamp each (GCRA, the cell rate algorithm):
//! credit accrues at the allowance up to one second's worth, a sent reply spends one, a
//! limited reply spends nothing. A flood above the allowance thus gets the allowance
//! answered each second and the rest dropped or slipped (Knot's behaviour; BIND's and the
//! CoreDNS plugin's accounts go up to `window` seconds into debt and answer none of a
//! sustained flood). `window` is how long an account is remembered after it last limited.
//!
//! The table is the shard's own, allocated once, set-associative, 4 ways: no lock and no
//! allocation per reply. SO_REUSEPORT sends every datagram of one source address and port
//! to one shard, so a source's accounts are exact; a forged prefix spread over many ports
//! is spread over the shards, each of which allows it the allowance.

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use super::wire::{self, HEADER_LEN, flags1};

/// What a reply is, for RRL (BIND's response types; CoreDNS's `responseType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Category {
    /// NOERROR with answers.
    Answer = 0,
    /// NOERROR without answers, not a referral.
    NoData = 1,
    /// NXDOMAIN without answers.
    NxDomain = 2,
    /// NOERROR with NS in authority and no answers: a delegation.
    Referral = 3,
    /// Any other rcode.
    Error = 4,
}

/// How many categories there are.
pub const CATEGORIES: usize = 5;
/// The account kind of `requests-per-second` (it counts requests, not replies).
const REQUESTS: u8 = CATEGORIES as u8;

/// A nanosecond of the limiter's clock.
pub type Nanos = u64;
/// One second of it.
pub const SECOND: Nanos = 1_000_000_000;

/// What one `rrl` directive allows, ready for the shards.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The zones it covers (lowercase wire).
    pub zones: Vec<Box<[u8]>>,
    /// Time between replies of each [`Category`] (1 s / allowance); 0 is no limit.
    pub interval: [Nanos; CATEGORIES],
    /// Time between requests of one prefix; 0 is no limit.
    pub request_interval: Nanos,
    /// How long a limited account is remembered.
    pub window: Nanos,
    /// Prefix lengths that make a client's account.
    pub ipv4_prefix: u8,
    /// See [`Limits::ipv4_prefix`].
    pub ipv6_prefix: u8,
    /// Every `slip`-th limited reply is sent truncated (0: none).
    pub slip: u8,
    /// Accounts kept per shard.
    pub table_size: usize,
    /// Count only: send every reply.
    pub report_only: bool,
}

impl Limits {
    /// Whether a reply to `qname` (lowercase wire) is limited here.
    pub fn covers(&self, qname: &[u8]) -> bool {
        self.zones.iter().any(|z| crate::zone::name::is_in_zone(qname, z))
    }
}

/// What to do with a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Within the allowance: send it.
    Send,
    /// Over it: send nothing.
    Drop,
    /// Over it, but this one slips: send it truncated and empty (or BADCOOKIE).
    Slip,
}

/// One account.
#[derive(Clone, Copy, Default)]
struct Account {
    /// The key's hash (0: an empty slot).
    key: u64,
    /// GCRA's theoretical arrival time: when the account holds a full second's credit.
    /// An account whose time is not after now holds all the credit it can.
    full_at: Nanos,
    /// When it last limited a reply (to forget it `window` after).
    limited_at: Nanos,
    /// Limited replies left until the next slips.
    slip_left: u8,
}

/// Ways per set.
const WAYS: usize = 4;

/// The accounts of one `rrl` directive on one shard.
pub struct Table {
    accounts: Box<[Account]>,
    /// Sets - 1 (a power of two less one).
    set_mask: usize,
    seed: foldhash::fast::RandomState,
}

impl Table {
    /// A table of at least `size` accounts (one set at least), allocated now.
    pub fn new(size: usize) -> Table {
        let sets = size.div_ceil(WAYS).max(1).next_power_of_two();
        Table {
            accounts: vec![Account::default(); sets * WAYS].into_boxed_slice(),
            set_mask: sets - 1,
            seed: foldhash::fast::RandomState::default(),
        }
    }

    /// Counts a reply (or with [`Table::request`], a request) on account `key`, limited to
    /// one per `interval` with a second's burst, at time `now`.
    fn spend(&mut self, key: u64, interval: Nanos, limits: &Limits, now: Nanos) -> Verdict {
        let key = key.max(1);
        let set = (key as usize & self.set_mask) * WAYS;
        let ways = &mut self.accounts[set..set + WAYS];
        let found = match ways.iter().position(|a| a.key == key) {
            Some(i) => i,
            None => {
                // A slot that is empty or holds all its credit loses nothing when reused;
                // otherwise the one nearest to that.
                let i = ways
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, a)| if a.key == 0 { 0 } else { a.full_at.max(1) })
                    .map_or(0, |(i, _)| i);
                ways[i] = Account {
                    key,
                    full_at: 0,
                    limited_at: 0,
                    slip_left: limits.slip,
                };
                i
            }
        };
        let a = &mut ways[found];
        if a.limited_at != 0 && now.saturating_sub(a.limited_at) > limits.window {
            // Quiet for a window: forgotten, as a new account.
            a.slip_left = limits.slip;
            a.limited_at = 0;
        }
        // GCRA: the reply is within the allowance unless the account's credit would fall
        // below zero, i.e. its full time lies more than a second (less one reply) ahead.
        let start = a.full_at.max(now);
        if start + interval <= now + SECOND {
            a.full_at = start + interval;
            return Verdict::Send;
        }
        a.limited_at = now.max(1);
        if limits.slip == 0 {
            return Verdict::Drop;
        }
        a.slip_left = a.slip_left.saturating_sub(1);
        if a.slip_left == 0 {
            a.slip_left = limits.slip;
            Verdict::Slip
        } else {
            Verdict::Drop
        }
    }

    /// `requests-per-second`: counts `query` of `client` when it asks for a name in the
    /// directive's zones; over the allowance it is dropped unanswered (there is no reply
    /// to slip).
    pub fn request(&mut self, limits: &Limits, client: IpAddr, query: &[u8], now: Nanos) -> Verdict {
        if limits.request_interval == 0 {
            return Verdict::Send;
        }
        let mut qname = ReadName::new();
        if read_name(query, HEADER_LEN, &mut qname).is_none() || !limits.covers(qname.as_slice()) {
            return Verdict::Send;
        }
        let mut h = self.seed.build_hasher();
        prefix(&mut h, limits, client);
        h.write_u8(REQUESTS);
        match self.spend(h.finish(), limits.request_interval, limits, now) {
            Verdict::Send => Verdict::Send,
            _ => Verdict::Drop,
        }
    }

    /// Counts `reply` (a whole message written for `client`) against its account. Replies
    /// outside the directive's zones, of a category it does not limit, or that cannot be
    /// read, are sent.
    pub fn reply(&mut self, limits: &Limits, client: IpAddr, reply: &[u8], now: Nanos) -> Verdict {
        let Some(seen) = classify(reply) else {
            return Verdict::Send;
        };
        let interval = limits.interval[seen.category as usize];
        if interval == 0 || !limits.covers(seen.qname.as_slice()) {
            return Verdict::Send;
        }
        let mut h = self.seed.build_hasher();
        prefix(&mut h, limits, client);
        h.write_u8(seen.category as u8);
        match seen.category {
            // Per BIND: identical answers are one name and type.
            Category::Answer => {
                h.write_u16(seen.qtype);
                h.write(seen.qname.as_slice());
            }
            // The zone (or delegation) in authority, whatever the name and type asked.
            Category::NoData | Category::NxDomain | Category::Referral => h.write(seen.authority.as_slice()),
            // Errors are one account per prefix.
            Category::Error => {}
        }
        self.spend(h.finish(), interval, limits, now)
    }
}

/// Feeds the client's prefix to `h`.
fn prefix(h: &mut impl Hasher, limits: &Limits, client: IpAddr) {
    match client.to_canonical() {
        IpAddr::V4(a) => {
            let bits = u32::from(a) & mask32(limits.ipv4_prefix);
            h.write_u8(4);
            h.write_u32(bits);
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a) & mask128(limits.ipv6_prefix);
            h.write_u8(6);
            h.write_u128(bits);
        }
    }
}

fn mask32(len: u8) -> u32 {
    match len {
        0 => 0,
        l if l >= 32 => u32::MAX,
        l => u32::MAX << (32 - l),
    }
}

fn mask128(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - l),
    }
}

/// A name read from a message: lowercase, uncompressed (not zeroed first: most names are
/// short).
pub struct ReadName(arrayvec::ArrayVec<u8, 255>);

impl ReadName {
    const fn new() -> Self {
        ReadName(arrayvec::ArrayVec::new_const())
    }

    /// The name's wire form.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

/// What RRL reads of a reply.
pub struct Seen {
    /// Its category.
    pub category: Category,
    /// The question's type.
    pub qtype: u16,
    /// The question's name.
    pub qname: ReadName,
    /// The first authority record's owner, for the categories keyed by it.
    pub authority: ReadName,
}

/// Compression pointers followed at most in one name.
const MAX_POINTERS: usize = 16;

/// Reads the name at `at` of `msg` into `out` (lowercase, pointers followed), returning
/// where the name ends in the message.
fn read_name(msg: &[u8], mut at: usize, out: &mut ReadName) -> Option<usize> {
    out.0.clear();
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at)?;
        match len & 0xC0 {
            0x00 => {
                let label = msg.get(at..at + 1 + usize::from(len))?;
                let from = out.0.len();
                out.0.try_extend_from_slice(label).ok()?;
                out.0[from + 1..].make_ascii_lowercase();
                at += label.len();
                if len == 0 {
                    return Some(end.unwrap_or(at));
                }
            }
            0xC0 => {
                let lo = *msg.get(at + 1)?;
                end.get_or_insert(at + 2);
                jumps += 1;
                if jumps > MAX_POINTERS {
                    return None;
                }
                at = usize::from(u16::from_be_bytes([len & 0x3F, lo]));
            }
            _ => return None,
        }
    }
}

/// What kind of reply `msg` is, with the names its account is keyed by; `None` when it
/// has no question or cannot be read.
pub fn classify(msg: &[u8]) -> Option<Seen> {
    if msg.len() < HEADER_LEN || wire::count(msg, 0) != 1 {
        return None;
    }
    let mut seen = Seen {
        category: Category::Error,
        qtype: 0,
        qname: ReadName::new(),
        authority: ReadName::new(),
    };
    let after = read_name(msg, HEADER_LEN, &mut seen.qname)?;
    let q = msg.get(after..after + 4)?;
    seen.qtype = u16::from_be_bytes([q[0], q[1]]);
    let rcode = msg[wire::FLAGS2] & wire::flags2::RCODE_MASK;
    let (answers, authority) = (wire::count(msg, 1), wire::count(msg, 2));
    seen.category = match rcode {
        0 | 3 if answers > 0 => Category::Answer,
        0 | 3 => {
            // Without answers, authority follows the question.
            let ns = if authority > 0 {
                let end = read_name(msg, after + 4, &mut seen.authority)?;
                msg.get(end..end + 2).map(|t| u16::from_be_bytes([t[0], t[1]]))
            } else {
                None
            };
            match (rcode, ns) {
                (3, _) => Category::NxDomain,
                (_, Some(t)) if t == domain::base::iana::Rtype::NS.to_int() => Category::Referral,
                _ => Category::NoData,
            }
        }
        _ => Category::Error,
    };
    Some(seen)
}

/// Turns the reply in `out` into the slipped one (RFC 5358's advice, BIND's slip): the
/// header and question with TC set and every section emptied, so the client asks again
/// over TCP. Its OPT goes too: a slipped reply stays no larger than the query.
pub fn slip(out: &mut Vec<u8>) {
    if out.len() < HEADER_LEN {
        return;
    }
    let end = HEADER_LEN + wire::question_len(out);
    out.truncate(end.min(out.len()));
    out[wire::FLAGS1] |= flags1::TC;
    for section in 1..=3 {
        wire::set_count(out, section, 0);
    }
}

/// BADCOOKIE (RFC 7873 §8): 23, of which the OPT holds the upper eight bits.
const BADCOOKIE: u16 = 23;

/// RFC 7873 §5.2.3, §5.2.4: a request with a client cookie (alone, or with a server cookie
/// that did not check) that rate limiting would refuse is answered BADCOOKIE with a fresh
/// server cookie instead of a truncated reply: the client asks again over UDP with that
/// cookie, which exempts it. `out` holds the reply that was to be sent, whose OPT carries
/// the cookie the core made; without one (no OPT, no COOKIE) this is [`slip`].
pub fn bad_cookie(out: &mut Vec<u8>) {
    let Some((payload, dnssec_ok, cookie)) = reply_cookie(out) else {
        return slip(out);
    };
    slip(out);
    out[wire::FLAGS1] &= !flags1::TC;
    out[wire::FLAGS2] = (out[wire::FLAGS2] & !wire::flags2::RCODE_MASK) | (BADCOOKIE & 0x0F) as u8;
    let at = wire::start_opt(out, payload, (BADCOOKIE >> 4) as u8, dnssec_ok);
    wire::push_option(out, wire::option::COOKIE, &cookie);
    wire::end_opt(out, at);
}

/// A COOKIE option's data.
type CookieData = arrayvec::ArrayVec<u8, { super::cookie::CLIENT_LEN + super::cookie::SERVER_MAX }>;

/// The OPT of a reply: its payload size, DO, and its COOKIE option.
fn reply_cookie(msg: &[u8]) -> Option<(u16, bool, CookieData)> {
    let mut p = domain::dep::octseq::Parser::from_ref(msg);
    p.advance(HEADER_LEN + wire::question_len(msg)).ok()?;
    for _ in 0..u32::from(wire::count(msg, 1)) + u32::from(wire::count(msg, 2)) {
        wire::skip_record(&mut p)?;
    }
    for _ in 0..wire::count(msg, wire::AR) {
        let start = p.pos();
        let rtype = wire::skip_record(&mut p)?;
        if rtype != domain::base::iana::Rtype::OPT {
            continue;
        }
        // Root owner (one octet), TYPE, CLASS = payload, TTL = ext rcode, version, flags.
        let rr = msg.get(start..p.pos())?;
        let payload = u16::from_be_bytes([rr[3], rr[4]]);
        let dnssec_ok = u16::from_be_bytes([rr[7], rr[8]]) & wire::OPT_DO != 0;
        let mut options = rr.get(wire::OPT_LEN..)?;
        while options.len() >= wire::OPTION_HEADER_LEN {
            let code = u16::from_be_bytes([options[0], options[1]]);
            let len = usize::from(u16::from_be_bytes([options[2], options[3]]));
            let data = options.get(wire::OPTION_HEADER_LEN..wire::OPTION_HEADER_LEN + len)?;
            if code == wire::option::COOKIE && super::cookie::well_formed(len) {
                let c = CookieData::try_from(data).ok()?;
                return Some((payload, dnssec_ok, c));
            }
            options = &options[wire::OPTION_HEADER_LEN + len..];
        }
        return None;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::base::iana::Rtype;

    fn limits(per_second: u32, slip: u8) -> Limits {
        let i = SECOND / u64::from(per_second);
        Limits {
            zones: vec![b"\0".to_vec().into()],
            interval: [i; CATEGORIES],
            request_interval: 0,
            window: 15 * SECOND,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            slip,
            table_size: 1000,
            report_only: false,
        }
    }

    /// A reply of `rcode` to `name` A with `answers` answers and, when `ns` is given, one
    /// authority record of that type owned by the zone (a pointer to the question's tail).
    fn reply(name: &[u8], rcode: u8, answers: u8, ns: Option<Rtype>) -> Vec<u8> {
        let mut m = vec![0, 1, 0x84, rcode, 0, 1, 0, answers, 0, u8::from(ns.is_some()), 0, 0];
        m.extend_from_slice(name);
        m.extend_from_slice(&[0, 1, 0, 1]);
        for _ in 0..answers {
            m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        }
        if let Some(t) = ns {
            // The owner: the question name past its first label.
            let first = usize::from(name[0]) + 1;
            m.extend_from_slice(&[0xC0, 12 + first as u8]);
            m.extend_from_slice(&t.to_int().to_be_bytes());
            m.extend_from_slice(&[0, 1, 0, 0, 0, 60, 0, 0]);
        }
        m
    }

    const WWW: &[u8] = b"\x03www\x07example\x04test\0";
    const NOPE: &[u8] = b"\x04nOpE\x07example\x04test\0";

    #[test]
    fn categories_and_their_names() {
        let s = classify(&reply(WWW, 0, 1, None)).unwrap();
        assert_eq!((s.category, s.qtype), (Category::Answer, 1));
        assert_eq!(s.qname.as_slice(), WWW);
        let s = classify(&reply(NOPE, 3, 0, Some(Rtype::SOA))).unwrap();
        assert_eq!(s.category, Category::NxDomain);
        assert_eq!(s.qname.as_slice(), b"\x04nope\x07example\x04test\0", "lowercased");
        assert_eq!(s.authority.as_slice(), b"\x07example\x04test\0");
        let s = classify(&reply(WWW, 0, 0, Some(Rtype::SOA))).unwrap();
        assert_eq!(s.category, Category::NoData);
        let s = classify(&reply(WWW, 0, 0, Some(Rtype::NS))).unwrap();
        assert_eq!(s.category, Category::Referral);
        assert_eq!(classify(&reply(WWW, 2, 0, None)).unwrap().category, Category::Error);
        assert_eq!(classify(&reply(WWW, 5, 0, None)).unwrap().category, Category::Error);
        // No question, a truncated one, a pointer loop: not classified.
        assert!(classify(&[0; 12]).is_none());
        assert!(classify(&reply(WWW, 0, 1, None)[..20]).is_none());
        let mut looped = reply(WWW, 3, 0, Some(Rtype::SOA));
        let at = looped.len() - 12;
        looped[at..at + 2].copy_from_slice(&[0xC0, at as u8]);
        assert!(classify(&looped).is_none());
    }

    #[test]
    fn a_flood_gets_the_allowance_and_every_slipth_limited_reply_slips() {
        let l = limits(10, 2);
        let mut t = Table::new(l.table_size);
        let client: IpAddr = "198.18.0.7".parse().unwrap();
        let r = reply(WWW, 0, 1, None);
        let mut sent = [0usize; 3];
        // 100 replies a second for 3 s.
        for i in 0..300u64 {
            let v = t.reply(&l, client, &r, 1_000 * SECOND + i * SECOND / 100);
            sent[v as usize] += 1;
        }
        // A second's burst, then ten a second.
        assert!((29..=41).contains(&sent[Verdict::Send as usize]), "{sent:?}");
        let limited = 300 - sent[Verdict::Send as usize];
        assert_eq!(sent[Verdict::Slip as usize], limited / 2, "{sent:?}");
    }

    #[test]
    fn accounts_are_per_prefix_name_and_category() {
        let l = limits(1, 0);
        let mut t = Table::new(l.table_size);
        let now = 5 * SECOND;
        let a: IpAddr = "198.18.0.7".parse().unwrap();
        let same_prefix: IpAddr = "198.18.0.200".parse().unwrap();
        let other: IpAddr = "198.18.1.7".parse().unwrap();
        let www = reply(WWW, 0, 1, None);
        assert_eq!(t.reply(&l, a, &www, now), Verdict::Send);
        assert_eq!(t.reply(&l, same_prefix, &www, now), Verdict::Drop);
        assert_eq!(t.reply(&l, other, &www, now), Verdict::Send);
        // Another name is another account; another NXDOMAIN in the zone is not.
        assert_eq!(
            t.reply(&l, a, &reply(b"\x01x\x04test\0", 0, 1, None), now),
            Verdict::Send
        );
        let nx = |n: &[u8]| reply(n, 3, 0, Some(Rtype::SOA));
        assert_eq!(t.reply(&l, a, &nx(NOPE), now), Verdict::Send);
        assert_eq!(
            t.reply(&l, a, &nx(b"\x05other\x07example\x04test\0"), now),
            Verdict::Drop
        );
        // Errors share one account whatever the name.
        assert_eq!(t.reply(&l, a, &reply(WWW, 2, 0, None), now), Verdict::Send);
        assert_eq!(t.reply(&l, a, &reply(NOPE, 5, 0, None), now), Verdict::Drop);
        // A second later the credit is back.
        assert_eq!(t.reply(&l, a, &www, now + SECOND), Verdict::Send);
        // IPv6 by /56.
        let v6: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let v6_same: IpAddr = "2001:db8:0:ff::2".parse().unwrap();
        assert_eq!(t.reply(&l, v6, &www, now), Verdict::Send);
        assert_eq!(t.reply(&l, v6_same, &www, now), Verdict::Drop);
    }

    #[test]
    fn unlimited_categories_and_other_zones_pass() {
        let mut l = limits(1, 0);
        l.interval[Category::Answer as usize] = 0;
        l.zones = vec![b"\x07example\x04test\0".to_vec().into()];
        let mut t = Table::new(8);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..10 {
            assert_eq!(t.reply(&l, a, &reply(WWW, 0, 1, None), SECOND), Verdict::Send);
            assert_eq!(
                t.reply(&l, a, &reply(b"\x01x\x04else\0", 2, 0, None), SECOND),
                Verdict::Send
            );
        }
        assert_eq!(t.reply(&l, a, &reply(WWW, 2, 0, None), SECOND), Verdict::Send);
        assert_eq!(t.reply(&l, a, &reply(WWW, 2, 0, None), SECOND), Verdict::Drop);
    }

    #[test]
    fn requests_are_one_account_per_prefix() {
        let mut l = limits(1, 1);
        l.request_interval = SECOND / 2;
        let mut t = Table::new(8);
        l.zones = vec![b"\x07example\x04test\0".to_vec().into()];
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let q = wire::query(WWW, Rtype::A, false);
        assert_eq!(t.request(&l, a, &q, SECOND), Verdict::Send);
        assert_eq!(t.request(&l, a, &q, SECOND), Verdict::Send);
        // Over the allowance a request is dropped, never slipped.
        assert_eq!(t.request(&l, a, &q, SECOND), Verdict::Drop);
        assert_eq!(t.request(&l, a, &q, SECOND), Verdict::Drop);
        // Names outside the zones are not counted.
        let other = wire::query(b"\x01x\x04else\0", Rtype::A, false);
        assert_eq!(t.request(&l, a, &other, SECOND), Verdict::Send);
    }

    #[test]
    fn a_full_set_reuses_the_account_nearest_to_full_credit() {
        let l = limits(1, 0);
        // One set of four.
        let mut t = Table::new(1);
        let now = 10 * SECOND;
        let r = reply(WWW, 0, 1, None);
        for i in 0..4u8 {
            let c = IpAddr::from([10, 0, i, 1]);
            assert_eq!(t.reply(&l, c, &r, now + u64::from(i)), Verdict::Send);
        }
        // A fifth client takes the oldest account's slot; the others stay limited.
        assert_eq!(t.reply(&l, IpAddr::from([10, 0, 9, 1]), &r, now + 10), Verdict::Send);
        assert_eq!(t.reply(&l, IpAddr::from([10, 0, 3, 1]), &r, now + 11), Verdict::Drop);
    }

    #[test]
    fn bad_cookie_keeps_the_question_and_the_cookie() {
        let mut r = reply(WWW, 0, 1, None);
        let at = wire::start_opt(&mut r, 1232, 0, true);
        let cookie: Vec<u8> = (0..24).collect();
        wire::push_option(&mut r, wire::option::COOKIE, &cookie);
        wire::push_option(&mut r, wire::option::NSID, b"edge");
        wire::end_opt(&mut r, at);
        bad_cookie(&mut r);
        let m = domain::base::Message::from_octets(r.as_slice()).unwrap();
        assert_eq!(m.opt_rcode().to_int(), BADCOOKIE);
        assert_eq!((m.header().tc(), wire::count(&r, 1), wire::count(&r, 3)), (false, 0, 1));
        let opt = m.opt().unwrap();
        assert!(opt.dnssec_ok() && opt.udp_payload_size() == 1232);
        let options: Vec<_> = opt.opt().iter::<domain::base::opt::AllOptData<_, _>>().collect();
        assert_eq!(options.len(), 1, "only the cookie stays");
        assert!(r.ends_with(&cookie));
        // Without a cookie to send back it is a plain slip.
        let mut plain = reply(WWW, 0, 1, None);
        bad_cookie(&mut plain);
        assert_ne!(plain[wire::FLAGS1] & flags1::TC, 0);
    }

    #[test]
    fn slipping_empties_the_reply_and_sets_tc() {
        let mut r = reply(NOPE, 3, 0, Some(Rtype::SOA));
        slip(&mut r);
        assert_eq!(r.len(), HEADER_LEN + NOPE.len() + 4);
        assert_ne!(r[wire::FLAGS1] & flags1::TC, 0);
        assert_eq!((wire::count(&r, 1), wire::count(&r, 2), wire::count(&r, 3)), (0, 0, 0));
        assert_eq!(r[wire::FLAGS2] & wire::flags2::RCODE_MASK, 3, "the rcode stays");
    }
}
