//! Parsing and validating a query without copying it.
//!
//! Choices where the RFCs allow more than one (the README's table of choices):
//! - a malformed question (truncated label, label type 0x40/0x80, name over 255 octets, bad
//!   compression pointer) gets FORMERR with no question section, never silence;
//! - trailing bytes after the last record are a FORMERR;
//! - a message with QR=1 or shorter than a header is dropped.

use domain::base::iana::{Class, Opcode, Rtype};
use domain::base::name::ParsedName;
use domain::dep::octseq::Parser;

use crate::zone::name::NameKey;

pub use super::wire::HEADER_LEN;
use super::wire::{FLAGS1, FLAGS2, OPT_DO, flags1, flags2, option as opt_code, skip_record};

/// Why a datagram is dropped without a reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Shorter than a DNS header.
    Short,
    /// QR=1: a response; never answer one.
    Response,
    /// A datagram longer than the UDP loop accepts (`net::mmsg::MAX_QUERY`).
    Oversized,
    /// `acl` says drop.
    Policy,
    /// `rrl` says drop (UDP only).
    RateLimit,
}

/// The error a request earns before any zone is consulted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EarlyError {
    /// FORMERR.
    FormErr,
    /// NOTIMP: an opcode or query type we do not implement.
    NotImp,
    /// BADVERS: EDNS version above 0 (RFC 6891 §6.1.3).
    BadVers,
    /// No question, but a COOKIE: NOERROR with the server cookie (RFC 7873 §5.4).
    CookieOnly,
}

/// The TSIG record of a request (RFC 8945 §4.2), as much as an error reply echoes.
#[derive(Clone, Copy)]
pub struct Tsig<'a> {
    /// The key name (the record's owner).
    pub key: ParsedName<&'a [u8]>,
    /// The algorithm name.
    pub algorithm: ParsedName<&'a [u8]>,
    /// Time Signed (48-bit seconds) and Fudge, raw.
    pub time_and_fudge: &'a [u8],
}

/// The question.
#[derive(Clone, Copy)]
pub struct Question<'a> {
    /// The name as sent (case kept), parsed in place.
    pub name: ParsedName<&'a [u8]>,
    /// Lowercase wire form for lookups, in the caller's scratch key (so the request stays
    /// small to move: no 256-octet copies on the query path).
    pub key: &'a [u8],
    /// QTYPE.
    pub qtype: Rtype,
    /// QCLASS.
    pub qclass: Class,
}

/// What the OPT record asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size (values below 512 are read as 512, RFC 6891 §6.2.5).
    pub udp_size: u16,
    /// EDNS version.
    pub version: u8,
    /// DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The client sent edns-tcp-keepalive (RFC 7828).
    pub keepalive: bool,
    /// The client asked for NSID (RFC 5001).
    pub nsid: bool,
    /// The client sent a Padding option (RFC 7830): pad the reply over encrypted transports.
    pub padding: bool,
}

/// A parsed request, or as much of it as an error reply needs.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// Message ID.
    pub id: u16,
    /// Opcode.
    pub opcode: Opcode,
    /// RD (copied into the reply).
    pub rd: bool,
    /// CD (copied into the reply, RFC 4035 §3.1.6).
    pub cd: bool,
    /// The question, if one parsed.
    pub question: Option<Question<'a>>,
    /// EDNS, if a valid OPT was present.
    pub edns: Option<Edns>,
    /// The TSIG record, if the request is signed.
    pub tsig: Option<Tsig<'a>>,
    /// The NSID to put in the reply (RFC 5001): set when the client asked and its block
    /// has `nsid`.
    pub nsid: Option<&'a [u8]>,
    /// The COOKIE option's data (RFC 7873 §4: a length `cookie::well_formed` takes).
    pub cookie: Option<&'a [u8]>,
    /// What that cookie showed and the one the reply carries, once the client's address
    /// is known (`dns::answer`).
    pub cookie_reply: Option<super::cookie::Answered>,
}

/// Result of parsing.
pub enum Parsed<'a> {
    /// Do not reply.
    Drop(DropReason),
    /// A well-formed standard query.
    Query(Request<'a>),
    /// Reply with this error.
    Error(Request<'a>, EarlyError),
}

/// Parses `wire` as a query; the question's lowercase key is built in `scratch`.
pub fn parse<'a>(wire: &'a [u8], scratch: &'a mut NameKey) -> Parsed<'a> {
    if wire.len() < HEADER_LEN {
        return Parsed::Drop(DropReason::Short);
    }
    if wire[FLAGS1] & flags1::QR != 0 {
        return Parsed::Drop(DropReason::Response);
    }
    let count = |i: usize| super::wire::count(wire, i);
    let (qd, an, ns, ar) = (count(0), count(1), count(2), count(3));
    let opcode = Opcode::from_int((wire[FLAGS1] >> flags1::OPCODE_SHIFT) & flags1::OPCODE_MASK);
    let mut req = Request {
        id: u16::from_be_bytes([wire[0], wire[1]]),
        opcode,
        rd: wire[FLAGS1] & flags1::RD != 0,
        cd: wire[FLAGS2] & flags2::CD != 0,
        question: None,
        edns: None,
        tsig: None,
        nsid: None,
        cookie: None,
        cookie_reply: None,
    };
    let mut parser = Parser::from_ref(wire);
    if parser.advance(HEADER_LEN).is_err() {
        return Parsed::Drop(DropReason::Short);
    }
    // RFC 9619: exactly one question (zero is only valid with a COOKIE, a later addition).
    // The first is parsed, for the reply to echo; others are skipped to reach the OPT, so
    // that even this FORMERR carries one (RFC 6891 §7).
    if qd >= 1 {
        match parse_question(&mut parser, scratch) {
            Some(q) => req.question = Some(q),
            None => return Parsed::Error(req, EarlyError::FormErr),
        }
    }
    if qd != 1 {
        req.question = None;
        for _ in 1..qd {
            if ParsedName::skip(&mut parser).is_err() || parser.advance(4).is_err() {
                return Parsed::Error(req, EarlyError::FormErr);
            }
        }
    }
    let records = walk(&mut parser, wire, an, ns, ar);
    req.edns = records.edns;
    req.cookie = records.cookie;
    match opcode {
        // NOTIFY (RFC 1996) is parsed as a query is: one question, the zone's SOA; the
        // block decides whether its source is a primary of the zone.
        // UPDATE (RFC 2136 §2.3) too: its zone section is the question (one, type SOA),
        // its prerequisites and updates the answer and authority sections, which the
        // block that takes updates reads (`update`); any other block refuses it.
        Opcode::QUERY | Opcode::NOTIFY | Opcode::UPDATE => {}
        _ => return Parsed::Error(req, EarlyError::NotImp),
    }
    if qd == 0 && !records.malformed && opcode == Opcode::QUERY && req.cookie.is_some() {
        return Parsed::Error(req, EarlyError::CookieOnly);
    }
    if qd != 1 || records.malformed {
        return Parsed::Error(req, EarlyError::FormErr);
    }
    if req.edns.is_some_and(|e| e.version > 0) {
        return Parsed::Error(req, EarlyError::BadVers);
    }
    // Signed: the block that takes the question checks it (`dns::tsig`), or answers BADKEY.
    req.tsig = records.tsig;
    Parsed::Query(req)
}

/// What the records after the question hold for the reply, and whether they are well formed.
struct Records<'a> {
    /// The first OPT (its payload size and DO bit, at least, even when it is malformed: every
    /// reply to a query with an OPT carries one, FORMERR included, RFC 6891 §7).
    edns: Option<Edns>,
    /// The TSIG, when it is the last record and well formed.
    tsig: Option<Tsig<'a>>,
    /// The OPT's COOKIE option data.
    cookie: Option<&'a [u8]>,
    /// FORMERR: counts beyond the records, an OPT out of place, two OPTs, an OPT owner other
    /// than the root or options that do not parse, a TSIG that is not last or malformed,
    /// bytes after the last record.
    malformed: bool,
}

/// Walks the answer, authority and additional sections.
fn walk<'a>(parser: &mut Parser<'a, [u8]>, wire: &'a [u8], an: u16, ns: u16, ar: u16) -> Records<'a> {
    let mut r = Records {
        edns: None,
        tsig: None,
        cookie: None,
        malformed: true,
    };
    // Answer and authority: walk them so counts and lengths are checked; OPT may not be there.
    for _ in 0..u32::from(an) + u32::from(ns) {
        match skip_record(parser) {
            Some(rtype) if rtype != Rtype::OPT => {}
            _ => return r,
        }
    }
    let mut ok = true;
    for i in 0..ar {
        let start = parser.pos();
        let Some(rtype) = skip_record(parser) else {
            return r;
        };
        if rtype == Rtype::TSIG {
            // RFC 8945 §5.1: the TSIG is the last record, or the message is a FORMERR.
            r.tsig = parse_tsig(wire, start).filter(|_| i + 1 == ar);
            ok &= r.tsig.is_some();
        } else if rtype == Rtype::OPT {
            let (edns, cookie, valid) = parse_opt(&wire[start..parser.pos()]);
            // RFC 6891 §6.1.1: at most one OPT, owner the root.
            ok &= valid && r.edns.is_none() && wire[start] == 0;
            if r.edns.is_none() {
                r.cookie = cookie;
            }
            r.edns.get_or_insert(edns);
        }
    }
    r.malformed = !ok || parser.remaining() != 0;
    r
}

/// Reads the TSIG record at `start` (already walked by `skip_record`): class ANY, TTL 0
/// (RFC 8945 §4.2) and RDATA whose fields fill its length exactly.
fn parse_tsig(wire: &[u8], start: usize) -> Option<Tsig<'_>> {
    let mut p = Parser::from_ref(wire);
    p.advance(start).ok()?;
    let key = ParsedName::parse_ref(&mut p).ok()?;
    p.advance(2).ok()?;
    let class = Class::from_int(p.parse_u16_be().ok()?);
    let ttl = p.parse_u32_be().ok()?;
    let rdlen = usize::from(p.parse_u16_be().ok()?);
    let end = p.pos() + rdlen;
    if class != Class::ANY || ttl != 0 {
        return None;
    }
    let algorithm = ParsedName::parse_ref(&mut p).ok()?;
    let time_and_fudge = p.parse_octets(8).ok()?;
    let mac_len = usize::from(p.parse_u16_be().ok()?);
    p.advance(mac_len + 4).ok()?; // MAC, Original ID, Error
    let other_len = usize::from(p.parse_u16_be().ok()?);
    p.advance(other_len).ok()?;
    (p.pos() == end).then_some(Tsig {
        key,
        algorithm,
        time_and_fudge,
    })
}

fn parse_question<'a>(parser: &mut Parser<'a, [u8]>, scratch: &'a mut NameKey) -> Option<Question<'a>> {
    let name = ParsedName::parse_ref(parser).ok()?;
    let qtype = Rtype::from_int(parser.parse_u16_be().ok()?);
    let qclass = Class::from_int(parser.parse_u16_be().ok()?);
    scratch.set(&name);
    let key: &'a NameKey = scratch;
    Some(Question {
        key: key.as_slice(),
        name,
        qtype,
        qclass,
    })
}

/// Reads an OPT record (walked by `skip_record`): `rr` starts at its owner octet. Its
/// COOKIE, and whether its options parse; when they do not, only the payload size,
/// version and DO are kept.
fn parse_opt(rr: &[u8]) -> (Edns, Option<&[u8]>, bool) {
    // owner(1) type(2) class=udp size(2) ttl=ext rcode(1) version(1) flags(2) rdlen(2)
    let field = |i: usize| rr.get(i).copied().unwrap_or(0);
    let mut edns = Edns {
        udp_size: u16::from_be_bytes([field(3), field(4)]).max(512),
        version: field(6),
        dnssec_ok: u16::from_be_bytes([field(7), field(8)]) & OPT_DO != 0,
        keepalive: false,
        nsid: false,
        padding: false,
    };
    let basic = edns;
    let mut cookie = None;
    let mut opts = rr.get(11..).unwrap_or_default();
    while !opts.is_empty() {
        let Some(header) = opts.get(..4) else {
            return (basic, None, false);
        };
        let code = u16::from_be_bytes([header[0], header[1]]);
        let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let Some(data) = opts.get(4..4 + len) else {
            return (basic, None, false);
        };
        match code {
            opt_code::NSID => edns.nsid = true,
            // RFC 7828 §3.2.1: a query's keepalive option carries no TIMEOUT.
            opt_code::TCP_KEEPALIVE if len != 0 => return (basic, None, false),
            opt_code::TCP_KEEPALIVE => edns.keepalive = true,
            opt_code::CLIENT_SUBNET if check_client_subnet(data).is_none() => return (basic, None, false),
            opt_code::PADDING => edns.padding = true,
            // RFC 7873 §5.2.2: a client cookie, and a server cookie of 8 to 32 octets.
            opt_code::COOKIE if !super::cookie::well_formed(len) || cookie.is_some() => return (basic, None, false),
            opt_code::COOKIE => cookie = Some(data),
            // Unknown options are ignored (RFC 6891 §6.1.2) and never echoed.
            _ => {}
        }
        opts = &opts[4 + len..];
    }
    (edns, cookie, true)
}

/// RFC 7871 §6/§7.1.1: FAMILY, SOURCE PREFIX-LENGTH within the family, SCOPE 0 in queries,
/// ADDRESS no longer than the prefix needs and no bits set beyond it.
fn check_client_subnet(data: &[u8]) -> Option<()> {
    if data.len() < 4 {
        return None;
    }
    let family = u16::from_be_bytes([data[0], data[1]]);
    let (source, scope) = (data[2], data[3]);
    let max_bits = match family {
        1 => 32,
        2 => 128,
        _ => return None,
    };
    if source > max_bits || scope != 0 {
        return None;
    }
    let addr = &data[4..];
    if addr.len() != usize::from(source).div_ceil(8) {
        return None;
    }
    if source % 8 != 0 {
        let last = addr.last()?;
        let mask = 0xFFu8 >> (source % 8);
        if last & mask != 0 {
            return None;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `name` type `qtype` with a raw additional section of `arcount` records.
    pub(crate) fn query(name: &[u8], qtype: u16, arcount: u16, additional: &[u8]) -> Vec<u8> {
        crate::testing::query_wire(name, qtype)
            .flags(0x01, 0)
            .additional(arcount, additional)
            .wire()
    }

    fn opt(udp: u16, version: u8, flags: u16, options: &[u8]) -> Vec<u8> {
        let mut o = vec![0, 0, 41];
        o.extend_from_slice(&udp.to_be_bytes());
        o.extend_from_slice(&[0, version]);
        o.extend_from_slice(&flags.to_be_bytes());
        o.extend_from_slice(&(options.len() as u16).to_be_bytes());
        o.extend_from_slice(options);
        o
    }

    fn verdict(wire: &[u8]) -> Result<Option<Edns>, String> {
        let mut scratch = NameKey::EMPTY;
        match parse(wire, &mut scratch) {
            Parsed::Drop(r) => Err(format!("drop {r:?}")),
            Parsed::Query(r) => Ok(r.edns),
            Parsed::Error(_, e) => Err(format!("{e:?}")),
        }
    }

    const NAME: &[u8] = b"\x03www\x07example\x04test\x00";

    #[test]
    fn plain_and_edns_queries() {
        assert_eq!(verdict(&query(NAME, 1, 0, &[])), Ok(None));
        let e = verdict(&query(NAME, 1, 1, &opt(100, 0, 0x8000, &[]))).unwrap().unwrap();
        assert_eq!((e.udp_size, e.dnssec_ok), (512, true));
        let e = verdict(&query(
            NAME,
            1,
            1,
            &opt(4096, 0, 0, &[0, 11, 0, 0, 0, 3, 0, 0, 0xFF, 0xFE, 0, 1, 9]),
        ))
        .unwrap()
        .unwrap();
        assert!(e.keepalive && e.nsid);
    }

    #[test]
    fn short_and_responses_are_dropped() {
        assert_eq!(verdict(&[]), Err("drop Short".into()));
        assert_eq!(verdict(&[0; 11]), Err("drop Short".into()));
        let mut r = query(NAME, 1, 0, &[]);
        r[2] |= 0x80;
        assert_eq!(verdict(&r), Err("drop Response".into()));
    }

    #[test]
    fn malformed_sections_are_formerr() {
        let form = Err("FormErr".to_string());
        // QDCOUNT 0 and 2.
        let mut q = query(NAME, 1, 0, &[]);
        q[5] = 0;
        assert_eq!(verdict(&q), form);
        q[5] = 2;
        assert_eq!(verdict(&q), form);
        // ARCOUNT larger than the records present.
        assert_eq!(verdict(&query(NAME, 1, 1, &[])), form);
        // RDLENGTH past the end.
        let mut o = opt(1232, 0, 0, &[]);
        o[10] = 50;
        assert_eq!(verdict(&query(NAME, 1, 1, &o)), form);
        // Two OPT records; OPT owner not root.
        let two = [opt(1232, 0, 0, &[]), opt(1232, 0, 0, &[])].concat();
        assert_eq!(verdict(&query(NAME, 1, 2, &two)), form);
        let mut owned = vec![1, b'a', 0];
        owned.extend_from_slice(&opt(1232, 0, 0, &[])[1..]);
        assert_eq!(verdict(&query(NAME, 1, 1, &owned)), form);
        // Truncated option.
        assert_eq!(verdict(&query(NAME, 1, 1, &opt(1232, 0, 0, &[0, 10, 0, 8, 1]))), form);
        // Keepalive with a value in a query.
        assert_eq!(
            verdict(&query(NAME, 1, 1, &opt(1232, 0, 0, &[0, 11, 0, 2, 0, 1]))),
            form
        );
        // Trailing garbage.
        assert_eq!(verdict(&[query(NAME, 1, 0, &[]), vec![0]].concat()), form);
        // OPT in the answer section.
        let mut q = query(NAME, 1, 0, &opt(1232, 0, 0, &[]));
        q[7] = 1;
        assert_eq!(verdict(&q), form);
    }

    #[test]
    fn bad_names_are_formerr() {
        let form = Err("FormErr".to_string());
        for name in [
            &b"\x03www\x07exa"[..], // truncated mid-label
            b"\x40abc\x00",         // label type 0x40
            b"\x80abc\x00",         // label type 0x80
            b"\xc0\x0c",            // pointer to itself
            b"\xc0\x20",            // pointer forward / past end
        ] {
            let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
            q.extend_from_slice(name);
            q.extend_from_slice(&[0, 1, 0, 1]);
            assert_eq!(verdict(&q), form, "{name:?}");
        }
        // 128 labels is longer than 255 octets.
        let mut long = Vec::new();
        for _ in 0..128 {
            long.extend_from_slice(b"\x01a");
        }
        long.push(0);
        assert_eq!(verdict(&query(&long, 1, 0, &[])), form);
        // 127 labels of one octet is exactly 255: legal.
        let mut ok = Vec::new();
        for _ in 0..127 {
            ok.extend_from_slice(b"\x01a");
        }
        ok.push(0);
        assert_eq!(verdict(&query(&ok, 1, 0, &[])), Ok(None));
    }

    #[test]
    fn two_pointer_cycle_is_formerr() {
        // Question name at 12 points to 14, which points back to 12.
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&[0xc0, 14, 0xc0, 12, 0, 1, 0, 1]);
        assert!(verdict(&q).is_err());
    }

    #[test]
    fn opcodes_and_versions() {
        let mut q = query(NAME, 1, 0, &[]);
        q[2] = 3 << 3;
        assert_eq!(verdict(&q), Err("NotImp".into()));
        q[2] = 15 << 3;
        assert_eq!(verdict(&q), Err("NotImp".into()));
        // NOTIFY and UPDATE parse as a query does (the block decides on them).
        q[2] = 4 << 3;
        assert_eq!(verdict(&q), Ok(None));
        q[2] = 5 << 3;
        assert_eq!(verdict(&q), Ok(None));
        assert_eq!(
            verdict(&query(NAME, 1, 1, &opt(1232, 1, 0, &[]))),
            Err("BadVers".into())
        );
    }

    /// A TSIG record: key `k.`, hmac-sha256, a 32-octet MAC (RFC 8945 §4.2).
    fn tsig(class: u16) -> Vec<u8> {
        let mut rdata = b"\x0bhmac-sha256\x00".to_vec();
        rdata.extend_from_slice(&[0, 0, 0x5f, 0, 0, 0, 1, 44]); // time signed, fudge 300
        rdata.extend_from_slice(&32u16.to_be_bytes());
        rdata.extend_from_slice(&[7; 32]);
        rdata.extend_from_slice(&[0x12, 0x34, 0, 0, 0, 0]); // original ID, error, other len
        let mut rr = b"\x01k\x00".to_vec();
        rr.extend_from_slice(&250u16.to_be_bytes());
        rr.extend_from_slice(&class.to_be_bytes());
        rr.extend_from_slice(&[0, 0, 0, 0]);
        rr.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        rr.extend_from_slice(&rdata);
        rr
    }

    #[test]
    fn tsig_must_be_last_and_well_formed() {
        // A well-formed TSIG is kept for the block to check (RFC 8945 §5.2).
        let signed = query(NAME, 1, 2, &[opt(1232, 0, 0, &[]), tsig(255)].concat());
        let mut scratch = NameKey::EMPTY;
        let Parsed::Query(req) = parse(&signed, &mut scratch) else {
            panic!("a query");
        };
        let t = req.tsig.expect("the TSIG is kept for the reply");
        assert_eq!(t.key.to_string(), "k");
        assert_eq!(t.algorithm.to_string(), "hmac-sha256");
        assert_eq!(t.time_and_fudge, &[0, 0, 0x5f, 0, 0, 0, 1, 44]);
        assert!(req.edns.is_some(), "the reply keeps its OPT");
        // §5.1: a TSIG that is not the last record is a FORMERR.
        let early = query(NAME, 1, 2, &[tsig(255), opt(1232, 0, 0, &[])].concat());
        assert_eq!(verdict(&early), Err("FormErr".into()));
        // §4.2: class ANY; RDATA fields that do not fill RDLENGTH.
        assert_eq!(verdict(&query(NAME, 1, 1, &tsig(1))), Err("FormErr".into()));
        let mut long = tsig(255);
        long.push(0);
        let rdlen = u16::from_be_bytes([long[11], long[12]]);
        long[11..13].copy_from_slice(&(rdlen + 1).to_be_bytes());
        assert_eq!(verdict(&query(NAME, 1, 1, &long)), Err("FormErr".into()));
    }

    #[test]
    fn client_subnet_checks() {
        assert!(check_client_subnet(&[0, 1, 24, 0, 192, 0, 2]).is_some());
        assert!(check_client_subnet(&[0, 1, 33, 0, 1, 2, 3, 4, 5]).is_none());
        assert!(check_client_subnet(&[0, 2, 129, 0]).is_none());
        assert!(check_client_subnet(&[0, 1, 20, 0, 192, 0, 0x2F]).is_none());
        assert!(check_client_subnet(&[0, 1, 24, 1, 192, 0, 2]).is_none());
        assert!(check_client_subnet(&[0, 1, 0, 0]).is_some());
    }
}
