//! Reply templates: what the cache stores and every forwarded reply is rendered from. A
//! template is an upstream reply without ID, client question case, OPT or truncation; the
//! client's ID, question case, EDNS and size limit are applied at render time and TTLs
//! counted down, all without allocating.

use domain::base::iana::Rtype;
use domain::base::name::ParsedName;
use domain::dep::octseq::Parser;

use crate::dns::wire::PADDING_BLOCK;
use crate::zone::name::NameKey;

/// The TTL of stale answers (RFC 8767 §4).
pub const STALE_TTL: u32 = 30;

/// What kind of answer a template holds, for caching (RFC 2308).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Data.
    Success,
    /// NXDOMAIN or NODATA.
    Denial,
    /// A failure (SERVFAIL, or no upstream answered).
    Failure,
}

/// A reply without ID, client question case, OPT or truncation.
#[derive(Clone, Debug)]
pub struct Template {
    /// The message: header (ID 0), lowercase question, records. No OPT.
    pub bytes: Box<[u8]>,
    /// Offsets of every record's TTL field and its original value.
    pub ttls: Box<[(u16, u32)]>,
    /// Smallest TTL (or the negative TTL of RFC 2308 §5 for denials).
    pub ttl: u32,
    /// Kind.
    pub kind: Kind,
    /// Extended rcode bits for the OPT, if the upstream set some.
    pub ext_rcode: u8,
    /// Extended DNS Error INFO-CODE to attach (RFC 8914).
    pub ede: Option<u16>,
}

/// Offsets and values of the TTL field of every record after the question.
pub fn ttl_offsets(msg: &[u8]) -> Option<Vec<(u16, u32)>> {
    let count = |i: usize| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]);
    let mut p = Parser::from_ref(msg);
    p.advance(12).ok()?;
    for _ in 0..count(0) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
    }
    let mut out = Vec::new();
    for _ in 0..u32::from(count(1)) + u32::from(count(2)) + u32::from(count(3)) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
        let at = u16::try_from(p.pos()).ok()?;
        let ttl = p.parse_u32_be().ok()?;
        let rdlen = usize::from(p.parse_u16_be().ok()?);
        p.advance(rdlen).ok()?;
        out.push((at, ttl));
    }
    Some(out)
}

/// A template that only says SERVFAIL, with an Extended DNS Error (RFC 8914) for clients
/// that speak EDNS.
pub fn failure(qname: &NameKey, qtype: Rtype, ede: u16) -> Template {
    let mut bytes = vec![0u8, 0, 0x80, 0x82, 0, 1, 0, 0, 0, 0, 0, 0];
    bytes.extend_from_slice(qname.as_slice());
    bytes.extend_from_slice(&qtype.to_int().to_be_bytes());
    bytes.extend_from_slice(&[0, 1]);
    Template {
        bytes: bytes.into_boxed_slice(),
        ttls: Box::new([]),
        ttl: 0,
        kind: Kind::Failure,
        ext_rcode: 0,
        ede: Some(ede),
    }
}

/// A template that says REFUSED (too many queries in flight).
pub fn refused(qname: &NameKey, qtype: Rtype) -> Template {
    let mut t = failure(qname, qtype, ede::NOT_READY);
    t.bytes[3] = 0x85;
    t.ede = None;
    t
}

/// EDE INFO-CODEs used (RFC 8914 §4).
pub mod ede {
    /// 14: Not Ready.
    pub const NOT_READY: u16 = 14;
    /// 3: Stale Answer.
    pub const STALE_ANSWER: u16 = 3;
    /// 22: No Reachable Authority.
    pub const NO_REACHABLE_AUTHORITY: u16 = 22;
    /// 23: Network Error.
    pub const NETWORK_ERROR: u16 = 23;
    /// 13: Cached Error.
    pub const CACHED_ERROR: u16 = 13;
}

/// The client side of a render.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    /// The client's query message.
    pub query: &'a [u8],
    /// Its EDNS payload and DO bit, if it sent OPT.
    pub edns: Option<(u16, bool)>,
    /// Reply size limit.
    pub limit: usize,
    /// Pad the reply (RFC 8467): the query asked for it over DoT or DoH.
    pub pad: bool,
}

/// How old the template is.
#[derive(Clone, Copy, Debug)]
pub enum Age {
    /// Fresh: `age` seconds since it was stored for `lifetime` seconds (the TTL after the
    /// cache's bounds; 0 when not cached). Each record shows max(its TTL, lifetime) − age, so
    /// no record expires before the cached reply does.
    Fresh {
        /// Seconds since it was stored.
        age: u32,
        /// Seconds it is cached for.
        lifetime: u32,
    },
    /// Expired and served stale (RFC 8767).
    Stale,
}

/// Renders `t` for a client into `out` (no allocation once `out` has its capacity).
pub fn render(t: &Template, c: &Client<'_>, age: Age, extra_ede: Option<u16>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&t.bytes);
    // Client ID, RD and CD; the question exactly as the client wrote it (same length: the
    // same name, uncompressed).
    out[0] = c.query[0];
    out[1] = c.query[1];
    out[2] = (out[2] & !0x01) | (c.query[2] & 0x01);
    out[3] = (out[3] & !0x10) | (c.query[3] & 0x10);
    let qlen = question_len(&t.bytes);
    if c.query.len() >= 12 + qlen && qlen > 0 {
        out[12..12 + qlen].copy_from_slice(&c.query[12..12 + qlen]);
    }
    for &(off, orig) in t.ttls.iter() {
        let ttl = match age {
            Age::Fresh { age, lifetime } => orig.max(lifetime).saturating_sub(age),
            Age::Stale => STALE_TTL,
        };
        let o = usize::from(off);
        out[o..o + 4].copy_from_slice(&ttl.to_be_bytes());
    }
    let ede = extra_ede.or(t.ede);
    let opt_len = c.edns.map_or(0, |_| 11 + ede.map_or(0, |_| 6));
    if out.len() + opt_len > c.limit {
        // Does not fit: TC=1 and empty sections (RFC 2181 §9).
        out.truncate(12 + qlen);
        out[2] |= 0x02;
        out[6..12].fill(0);
    }
    if let Some((payload, dnssec_ok)) = c.edns {
        out.push(0);
        out.extend_from_slice(&41u16.to_be_bytes());
        out.extend_from_slice(&payload.clamp(512, 1232).to_be_bytes());
        out.push(t.ext_rcode);
        out.push(0);
        out.extend_from_slice(&(if dnssec_ok { 0x8000u16 } else { 0 }).to_be_bytes());
        let rdlen_at = out.len();
        out.extend_from_slice(&[0, 0]);
        if let Some(code) = ede {
            out.extend_from_slice(&15u16.to_be_bytes());
            out.extend_from_slice(&2u16.to_be_bytes());
            out.extend_from_slice(&code.to_be_bytes());
        }
        if c.pad {
            // Block-length padding (RFC 8467 §4.1), never beyond the client's limit.
            let fixed = out.len() + 4;
            let want = (PADDING_BLOCK - fixed % PADDING_BLOCK) % PADDING_BLOCK;
            let n = want.min(c.limit.saturating_sub(fixed));
            if fixed <= c.limit {
                out.extend_from_slice(&12u16.to_be_bytes());
                out.extend_from_slice(&(n as u16).to_be_bytes());
                out.resize(out.len() + n, 0);
            }
        }
        let rdlen = (out.len() - rdlen_at - 2) as u16;
        out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        let ar = u16::from_be_bytes([out[10], out[11]]).saturating_add(1);
        out[10..12].copy_from_slice(&ar.to_be_bytes());
    }
}

/// Length of the (single, uncompressed) question of a template.
fn question_len(msg: &[u8]) -> usize {
    let mut pos = 12;
    while let Some(&l) = msg.get(pos) {
        pos += 1 + usize::from(l);
        if l == 0 {
            break;
        }
    }
    (pos + 4).saturating_sub(12).min(msg.len().saturating_sub(12))
}
