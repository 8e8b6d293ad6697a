//! Reply templates: what the cache stores and every forwarded reply is rendered from. A
//! template is an upstream reply without ID, client question case, OPT or truncation; the
//! client's ID, question case, EDNS and size limit are applied at render time and TTLs
//! counted down, all without allocating.

use domain::base::iana::{Class, Rcode, Rtype};

use crate::dns::wire::{self, FLAGS1, FLAGS2, HEADER_LEN, OPT_LEN, OPTION_HEADER_LEN, flags1, flags2};
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

/// A template that only says SERVFAIL, with an Extended DNS Error (RFC 8914) for clients
/// that speak EDNS.
pub fn failure(qname: &NameKey, qtype: Rtype, ede: u16) -> Template {
    let mut bytes = vec![0u8; HEADER_LEN];
    bytes[FLAGS1] = flags1::QR;
    bytes[FLAGS2] = flags2::RA | Rcode::SERVFAIL.to_int();
    wire::set_count(&mut bytes, 0, 1);
    bytes.extend_from_slice(qname.as_slice());
    bytes.extend_from_slice(&qtype.to_int().to_be_bytes());
    bytes.extend_from_slice(&Class::IN.to_int().to_be_bytes());
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
    t.bytes[FLAGS2] = flags2::RA | Rcode::REFUSED.to_int();
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
    /// The NSID to put in the OPT (RFC 5001): the client asked and the block has `nsid`.
    pub nsid: Option<&'a [u8]>,
    /// The COOKIE to put in the OPT (RFC 7873): the client's and our server cookie.
    pub cookie: Option<&'a [u8; crate::dns::cookie::REPLY_LEN]>,
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
    out[..2].copy_from_slice(&c.query[..2]);
    out[FLAGS1] = (out[FLAGS1] & !flags1::RD) | (c.query[FLAGS1] & flags1::RD);
    out[FLAGS2] = (out[FLAGS2] & !flags2::CD) | (c.query[FLAGS2] & flags2::CD);
    let qlen = wire::question_len(&t.bytes);
    if c.query.len() >= HEADER_LEN + qlen && qlen > 0 {
        out[HEADER_LEN..HEADER_LEN + qlen].copy_from_slice(&c.query[HEADER_LEN..HEADER_LEN + qlen]);
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
    let ede_len = OPTION_HEADER_LEN + 2;
    let nsid = c.nsid.filter(|n| n.len() <= 512);
    let nsid_len = nsid.map_or(0, |n| OPTION_HEADER_LEN + n.len());
    let cookie_len = c.cookie.map_or(0, |k| OPTION_HEADER_LEN + k.len());
    let opt_len = c
        .edns
        .map_or(0, |_| OPT_LEN + nsid_len + cookie_len + ede.map_or(0, |_| ede_len));
    if out.len() + opt_len > c.limit {
        // Does not fit: TC=1 and empty sections (RFC 2181 §9).
        out.truncate(HEADER_LEN + qlen);
        out[FLAGS1] |= flags1::TC;
        for i in 1..4 {
            wire::set_count(out, i, 0);
        }
    }
    if let Some((payload, dnssec_ok)) = c.edns {
        let at = wire::start_opt(out, wire::announced_payload(payload), t.ext_rcode, dnssec_ok);
        if let Some(k) = c.cookie {
            wire::push_option(out, wire::option::COOKIE, k);
        }
        if let Some(n) = nsid {
            wire::push_option(out, wire::option::NSID, n);
        }
        if let Some(code) = ede {
            wire::push_option(out, wire::option::EDE, &code.to_be_bytes());
        }
        // Block-length padding (RFC 8467 §4.1), never beyond the client's limit.
        let fixed = out.len() + OPTION_HEADER_LEN;
        if c.pad && fixed <= c.limit {
            wire::push_padding(out, wire::padding_len(fixed, c.limit));
        }
        wire::end_opt(out, at);
    }
}
