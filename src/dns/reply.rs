//! Writing replies into the shard's reused buffer with domain's message builder and a
//! fixed-size name compressor: no allocation once the buffer has grown to 64 KiB.

use domain::base::Name;
use domain::base::iana::OptionCode;
use domain::base::iana::{Class, OptRcode, Rcode, Rtype};
use domain::base::message_builder::{
    AdditionalBuilder, AnswerBuilder, AuthorityBuilder, MessageBuilder, PushError, StaticCompressor,
};
use domain::base::record::ComposeRecord;
use domain::dep::octseq::OctetsBuilder;

use super::request::{Question, Request};
use super::resolve::{Owner, Part, Parts, Resolution};
use super::wire::{self, OPT_LEN, OPTION_HEADER_LEN, PADDING_BLOCK, announced_payload, flags1, flags2};
use crate::config::Transport;
use crate::zone::rrset::{Rrset, WireData};

/// Buffer type of replies.
pub type Target = StaticCompressor<Vec<u8>>;

/// What was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Written {
    /// Full (extended) response code.
    pub rcode: u16,
    /// TC was set.
    pub truncated: bool,
}

/// The largest reply for this request on this transport.
fn size_limit(req: &Request<'_>, t: Transport) -> usize {
    wire::reply_limit(t, req.edns.map(|e| e.udp_size))
}

/// The edns-tcp-keepalive TIMEOUT to send: over TCP and DoT to a client that sent the
/// option (RFC 7828 §3.3.2).
fn keepalive(req: &Request<'_>, t: Transport) -> Option<u16> {
    req.edns.filter(|e| e.keepalive).and(wire::keepalive(t))
}

fn opt_space(req: &Request<'_>, t: Transport) -> usize {
    let nsid = req.nsid.map_or(0, |n| OPTION_HEADER_LEN + n.len());
    let cookie = req.cookie_reply.map_or(0, |c| OPTION_HEADER_LEN + c.reply.len());
    match req.edns {
        None => 0,
        Some(_) if keepalive(req, t).is_some() => OPT_LEN + OPTION_HEADER_LEN + 2 + nsid + cookie,
        Some(_) => OPT_LEN + nsid + cookie,
    }
}

/// Writes the reply for `res` into `out`. Falls back to an empty TC=1 reply when the
/// answer or authority (or required glue) does not fit.
pub fn write(req: &Request<'_>, q: &Question<'_>, res: &Resolution<'_>, t: Transport, out: &mut Vec<u8>) -> Written {
    if let Some(w) = write_address_answer(req, q, res, t, out) {
        return w;
    }
    if let Some(w) = write_negative(req, q, res, t, out) {
        return w;
    }
    write_general(req, q, res, t, &mut Stored, out)
}

/// Where the RRSIGs of a part come from (written when the query has DO=1).
pub trait Signatures {
    /// The RRSIG records to write after `p`, and the type covered they are to be filtered
    /// by (`None`: all of them).
    fn of<'s, 'p: 's>(&'s mut self, p: &Part<'p>, q: &Question<'_>) -> Option<(Rrset<'s>, Option<[u8; 2]>)>;
}

/// The signatures the zone holds (a pre-signed zone): the part's RRSIGs over its type.
pub struct Stored;

impl Signatures for Stored {
    fn of<'s, 'p: 's>(&'s mut self, p: &Part<'p>, _: &Question<'_>) -> Option<(Rrset<'s>, Option<[u8; 2]>)> {
        p.sigs.map(|s| (s, Some(p.set.rtype().to_int().to_be_bytes())))
    }
}

/// True when the OPT of the reply carries no option (keepalive over streams, padding over
/// encrypted transports and NSID add one).
fn plain_opt(req: &Request<'_>, t: Transport) -> bool {
    req.edns
        .is_none_or(|e| !(keepalive(req, t).is_some() || e.padding && t.is_encrypted() || req.nsid.is_some()))
}

/// Header (with the counts) and question of a directly written reply.
fn write_head(req: &Request<'_>, q: &Question<'_>, res: &Resolution<'_>, counts: [u16; 3], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&req.id.to_be_bytes());
    let opcode = req.opcode.to_int() << flags1::OPCODE_SHIFT;
    let aa = if res.aa { flags1::AA } else { 0 };
    out.push(flags1::QR | opcode | aa | if req.rd { flags1::RD } else { 0 });
    out.push(if req.cd { flags2::CD } else { 0 } | res.rcode.to_int());
    let arcount = u16::from(req.edns.is_some());
    for count in [1, counts[0], counts[1], counts[2] + arcount] {
        out.extend_from_slice(&count.to_be_bytes());
    }
    for label in q.name.iter() {
        out.push(label.as_slice().len() as u8);
        out.extend_from_slice(label.as_slice());
    }
    out.extend_from_slice(&q.qtype.to_int().to_be_bytes());
    out.extend_from_slice(&q.qclass.to_int().to_be_bytes());
}

/// The OPT of a directly written reply: root owner, payload size, extended rcode 0,
/// version 0, DO echoed, no option but the client's COOKIE (RFC 7873) when it sent one.
fn write_plain_opt(req: &Request<'_>, out: &mut Vec<u8>) {
    if let Some(e) = req.edns {
        // Counted in ARCOUNT by `write_head`.
        let rdlen_at = wire::start_opt(out, announced_payload(e.udp_size), 0, e.dnssec_ok);
        if let Some(c) = req.cookie_reply {
            wire::push_option(out, wire::option::COOKIE, &c.reply);
            let rdlen = (out.len() - rdlen_at - 2) as u16;
            out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
    }
}

/// The length of [`write_plain_opt`]'s OPT.
fn plain_opt_len(req: &Request<'_>) -> usize {
    req.edns.map_or(0, |_| {
        OPT_LEN + req.cookie_reply.map_or(0, |c| OPTION_HEADER_LEN + c.reply.len())
    })
}

fn question_len(q: &Question<'_>) -> usize {
    q.name.iter().map(|l| 1 + l.as_slice().len()).sum::<usize>() + 4
}

/// The most common reply, written directly: NOERROR with one A or AAAA RRset at the query
/// name and nothing else but an OPT without options (but a COOKIE). None of it compresses beyond the
/// owner's pointer to the question, so the general builder's work (about 0.1 µs a query
/// under perf, 2% of a UDP query's CPU) buys nothing here. `None` for anything else, which
/// the general writer handles; a test checks that both write the same octets.
fn write_address_answer(
    req: &Request<'_>,
    q: &Question<'_>,
    res: &Resolution<'_>,
    t: Transport,
    out: &mut Vec<u8>,
) -> Option<Written> {
    let part = res.answer.only()?;
    if res.rcode != Rcode::NOERROR
        || !res.authority.is_empty()
        || !res.additional.is_empty()
        || !matches!(part.owner, Owner::Query)
        || !matches!(part.set.rtype(), Rtype::A | Rtype::AAAA)
        || part.sigs.is_some() && req.edns.is_some_and(|e| e.dnssec_ok)
        || !plain_opt(req, t)
    {
        return None;
    }
    let rdata_len: usize = part.set.rdatas().map(|r| 12 + r.len()).sum();
    let size = 12 + question_len(q) + rdata_len + plain_opt_len(req);
    if size > size_limit(req, t) {
        return None;
    }
    write_head(req, q, res, [part.set.len() as u16, 0, 0], out);
    let rtype = part.set.rtype().to_int().to_be_bytes();
    for rdata in part.set.rdatas() {
        // Owner: a pointer to the question's name at offset 12 (RFC 1035 §4.1.4).
        out.extend_from_slice(&[0xC0, 12, rtype[0], rtype[1], 0, 1]);
        out.extend_from_slice(&part.ttl.to_be_bytes());
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(rdata);
    }
    write_plain_opt(req, out);
    Some(Written {
        rcode: 0,
        truncated: false,
    })
}

/// The other common reply, written directly: NODATA or NXDOMAIN with the zone's SOA in the
/// authority section (RFC 2308 §2) and an OPT without options (but a COOKIE). The general builder spent
/// most of such a reply comparing names for compression; this compresses the same way
/// (see [`Names`]), so a test checks that both write the same octets.
fn write_negative(
    req: &Request<'_>,
    q: &Question<'_>,
    res: &Resolution<'_>,
    t: Transport,
    out: &mut Vec<u8>,
) -> Option<Written> {
    let part = res.authority.only()?;
    let Owner::Name(apex) = part.owner else {
        return None;
    };
    if !matches!(res.rcode, Rcode::NOERROR | Rcode::NXDOMAIN)
        || !res.answer.is_empty()
        || !res.additional.is_empty()
        || part.set.rtype() != Rtype::SOA
        || part.set.len() != 1
        || part.sigs.is_some() && req.edns.is_some_and(|e| e.dnssec_ok)
        || !plain_opt(req, t)
    {
        return None;
    }
    let rdata = part.set.rdatas().next()?;
    let (mname, rest) = split_name(rdata)?;
    let (rname, fixed) = split_name(rest)?;
    // The longest it can be, uncompressed; a reply near the limit takes the general path.
    let size = 12 + question_len(q) + apex.len() + 10 + rdata.len() + plain_opt_len(req);
    if size > size_limit(req, t) {
        return None;
    }
    write_head(req, q, res, [0, 1, 0], out);
    let mut names = Names::default();
    names.write(out, q.key, true);
    names.write(out, apex, false);
    out.extend_from_slice(&[0, 6, 0, 1]);
    out.extend_from_slice(&part.ttl.to_be_bytes());
    let rdlen_at = out.len();
    out.extend_from_slice(&[0, 0]);
    names.write(out, mname, false);
    names.write(out, rname, false);
    out.extend_from_slice(fixed);
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    write_plain_opt(req, out);
    Some(Written {
        rcode: u16::from(res.rcode.to_int()),
        truncated: false,
    })
}

/// An uncompressed wire name at the start of `data`, and what follows it.
fn split_name(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut pos = 0;
    loop {
        let len = usize::from(*data.get(pos)?);
        if len > 63 {
            return None;
        }
        pos += 1 + len;
        if len == 0 {
            return data.get(pos..).map(|rest| (&data[..pos], rest));
        }
    }
}

/// Name compression as domain's `StaticCompressor` does it, so the direct writer and the
/// general one agree octet for octet: every suffix written in full is remembered (at most
/// 24, at offsets below 0x4000); a name is written label by label until its remainder
/// equals, ignoring ASCII case (RFC 1035 §2.3.3), a remembered suffix, which a pointer
/// then replaces (RFC 1035 §4.1.4). Once the list is full the rest goes uncompressed.
#[derive(Default)]
struct Names<'a> {
    known: [(u16, &'a [u8]); 24],
    len: usize,
}

impl<'a> Names<'a> {
    /// Writes `name` (uncompressed wire) at the end of `out`. The question's own octets are
    /// already there when `written` is true: only its suffixes are remembered.
    fn write(&mut self, out: &mut Vec<u8>, name: &'a [u8], written: bool) {
        let mut pos = if written { 12 } else { out.len() };
        let mut rest = name;
        while rest.len() > 1 {
            let found = self.known[..self.len]
                .iter()
                .find(|(_, k)| k.len() == rest.len() && k.eq_ignore_ascii_case(rest));
            if let Some(&(at, _)) = found {
                if !written {
                    out.extend_from_slice(&(0xC000 | at).to_be_bytes());
                }
                return;
            }
            let label = 1 + usize::from(rest[0]);
            if self.len == self.known.len() || pos >= 0x4000 {
                if !written {
                    out.extend_from_slice(rest);
                }
                return;
            }
            self.known[self.len] = (pos as u16, rest);
            self.len += 1;
            if !written {
                out.extend_from_slice(&rest[..label]);
            }
            pos += label;
            rest = &rest[label..];
        }
        if !written {
            out.push(0);
        }
    }
}

/// Writes the reply for `res` with the RRSIGs `sigs` gives (the general writer: [`write`]
/// with the zone's own RRSIGs when no direct writer fits, online signing with its own).
pub fn write_general(
    req: &Request<'_>,
    q: &Question<'_>,
    res: &Resolution<'_>,
    t: Transport,
    sigs: &mut dyn Signatures,
    out: &mut Vec<u8>,
) -> Written {
    let limit = size_limit(req, t);
    let body_limit = limit - opt_space(req, t);
    let ext = OptRcode::from_rcode(res.rcode);
    let attempt = (|| -> Result<AdditionalBuilder<Target>, (PushError, Target)> {
        let mut ans = start(req, Some(q), std::mem::take(out), body_limit).map_err(|(e, m)| (e, m.finish()))?;
        ans.header_mut().set_aa(res.aa);
        ans.header_mut().set_rcode(res.rcode);
        if let Err(e) = push_parts(&mut ans, &res.answer, q, req, sigs) {
            return Err((e, ans.finish()));
        }
        let mut auth = ans.authority();
        if let Err(e) = push_parts(&mut auth, &res.authority, q, req, sigs) {
            return Err((e, auth.finish()));
        }
        let mut add = auth.additional();
        if res.glue_required {
            if let Err(e) = push_parts(&mut add, &res.additional, q, req, sigs) {
                return Err((e, add.finish()));
            }
        } else {
            push_whole_parts(&mut add, &res.additional, q, req, sigs, body_limit);
        }
        Ok(add)
    })();
    match attempt {
        Ok(add) => finish(add, req, t, ext, false, limit, out),
        Err((_, target)) => {
            // RFC 2181 §9 / RFC 6891 §7: did not fit, so TC=1 with empty sections (and OPT).
            let mut msg = match start(req, Some(q), target, body_limit) {
                Ok(m) => m,
                Err((_, m)) => m,
            };
            msg.header_mut().set_aa(res.aa);
            msg.header_mut().set_rcode(res.rcode);
            msg.header_mut().set_tc(true);
            finish(msg.authority().additional(), req, t, ext, true, limit, out)
        }
    }
}

/// Writes an error reply: header, the question if it parsed, and OPT if EDNS was valid.
pub fn write_error(req: &Request<'_>, rcode: OptRcode, t: Transport, out: &mut Vec<u8>) -> Written {
    let limit = size_limit(req, t);
    let body_limit = limit - opt_space(req, t);
    let q = req.question;
    let msg = match start(req, q.as_ref(), std::mem::take(out), body_limit) {
        Ok(m) => m,
        // A question that does not fit even alone: send the header only.
        Err((_, m)) => m,
    };
    let mut msg = msg;
    msg.header_mut().set_rcode(rcode.rcode());
    finish(msg.authority().additional(), req, t, rcode, false, limit, out)
}

/// A record made for one query rather than taken from zone data (`chaos`, `whoami`,
/// `any`, `template`).
#[derive(Clone, Copy, Debug)]
pub struct Made<'a> {
    /// Its owner.
    pub owner: MadeOwner<'a>,
    /// The record's class (the query's: CH for chaos).
    pub class: Class,
    /// TTL.
    pub ttl: u32,
    /// Type and rdata.
    pub data: WireData<'a>,
}

/// The owner of a [`Made`] record.
#[derive(Clone, Copy, Debug)]
pub enum MadeOwner<'a> {
    /// The query name, as the client wrote it.
    Query,
    /// One wire label before the query name (`_udp` for whoami's SRV).
    Below(&'a [u8]),
    /// A name of its own (wire).
    Name(&'a [u8]),
}

/// A reply of [`Made`] records.
#[derive(Clone, Copy, Debug)]
pub struct MadeReply<'a> {
    /// AA.
    pub aa: bool,
    /// Response code.
    pub rcode: Rcode,
    /// Answer section (TC when it does not all fit).
    pub answer: &'a [Made<'a>],
    /// Authority section (TC when it does not all fit).
    pub authority: &'a [Made<'a>],
    /// Additional section (dropped when it does not fit, RFC 2181 §9).
    pub additional: &'a [Made<'a>],
    /// An Extended DNS Error for the OPT.
    pub ede: Option<u16>,
}

/// Writes a reply of records made for the query.
pub fn write_made(req: &Request<'_>, q: &Question<'_>, m: &MadeReply<'_>, t: Transport, out: &mut Vec<u8>) -> Written {
    let limit = size_limit(req, t);
    let ede_len = m.ede.map_or(0, |_| OPTION_HEADER_LEN + 2);
    let body_limit = limit - opt_space(req, t) - ede_len;
    let (mut msg, mut truncated) = match start(req, Some(q), std::mem::take(out), body_limit) {
        Ok(m) => (m, false),
        Err((_, m)) => (m, true),
    };
    msg.header_mut().set_aa(m.aa);
    msg.header_mut().set_rcode(m.rcode);
    for r in m.answer {
        if truncated || push_made(&mut msg, r, q).is_err() {
            truncated = true;
            break;
        }
    }
    let mut auth = msg.authority();
    for r in m.authority {
        if truncated || push_made(&mut auth, r, q).is_err() {
            truncated = true;
            break;
        }
    }
    let mut add = auth.additional();
    for r in m.additional {
        if truncated || push_made(&mut add, r, q).is_err() {
            break;
        }
    }
    add.header_mut().set_tc(truncated);
    let rcode = OptRcode::from_rcode(m.rcode);
    finish_with(add, req, t, (rcode, m.ede), truncated, limit, out)
}

fn push_made<S: Section>(s: &mut S, r: &Made<'_>, q: &Question<'_>) -> Result<(), PushError> {
    let mut owner = arrayvec::ArrayVec::<u8, 255>::new();
    match r.owner {
        MadeOwner::Query => return s.push_rr((&q.name, r.class, r.ttl, r.data)),
        MadeOwner::Below(label) => {
            // label + the query name, lowercase (q.key is its wire form); at most 255 octets.
            if owner.try_extend_from_slice(label).is_err() || owner.try_extend_from_slice(q.key).is_err() {
                return Ok(());
            }
        }
        MadeOwner::Name(wire) => {
            if owner.try_extend_from_slice(wire).is_err() {
                return Ok(());
            }
        }
    }
    match Name::from_slice(owner.as_slice()) {
        Ok(name) => s.push_rr((name, r.class, r.ttl, r.data)),
        Err(_) => Ok(()),
    }
}

/// An empty reply with `rcode` and an Extended DNS Error (RFC 8914) for clients that sent
/// an OPT: what `acl` answers (REFUSED with Blocked, NOERROR with Filtered).
pub fn write_refusal(req: &Request<'_>, rcode: OptRcode, ede: u16, t: Transport, out: &mut Vec<u8>) -> Written {
    let limit = size_limit(req, t);
    let body_limit = limit - opt_space(req, t) - OPTION_HEADER_LEN - 2;
    let mut msg = match start(req, req.question.as_ref(), std::mem::take(out), body_limit) {
        Ok(m) => m,
        Err((_, m)) => m,
    };
    msg.header_mut().set_rcode(rcode.rcode());
    finish_with(
        msg.authority().additional(),
        req,
        t,
        (rcode, Some(ede)),
        false,
        limit,
        out,
    )
}

/// TSIG errors (RFC 8945 §5.2, IANA "TSIG/TKEY RR Error").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum TsigError {
    /// The MAC does not verify (§5.2.3).
    BadSig = 16,
    /// A key we do not have (§5.2.1).
    BadKey = 17,
    /// A MAC truncated below what the key allows (§5.2.4).
    BadTrunc = 22,
}

/// The unsigned error reply to a signed request (RFC 8945 §5.2.1 to §5.2.4, §5.3.2):
/// NOTAUTH, and a TSIG without MAC (same key and algorithm names, the request's Time
/// Signed and Fudge, the error) after the OPT. Without room for the TSIG within the size
/// limit the reply goes without it.
pub fn write_tsig_error(req: &Request<'_>, error: TsigError, t: Transport, out: &mut Vec<u8>) -> Written {
    let written = write_error(req, OptRcode::NOTAUTH, t, out);
    let Some(tsig) = req.tsig else {
        return written;
    };
    let name_len = |n: &domain::base::ParsedName<&[u8]>| n.iter().map(|l| 1 + l.as_slice().len()).sum::<usize>();
    let rdlen = name_len(&tsig.algorithm) + tsig.time_and_fudge.len() + 8;
    if out.len() + name_len(&tsig.key) + 10 + rdlen > size_limit(req, t) {
        return written;
    }
    let push_name = |out: &mut Vec<u8>, n: &domain::base::ParsedName<&[u8]>| {
        for label in n.iter() {
            out.push(label.as_slice().len() as u8);
            out.extend_from_slice(label.as_slice());
        }
    };
    push_name(out, &tsig.key);
    out.extend_from_slice(&Rtype::TSIG.to_int().to_be_bytes());
    out.extend_from_slice(&Class::ANY.to_int().to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&(rdlen as u16).to_be_bytes());
    push_name(out, &tsig.algorithm);
    out.extend_from_slice(tsig.time_and_fudge);
    out.extend_from_slice(&0u16.to_be_bytes()); // MAC size
    out.extend_from_slice(&req.id.to_be_bytes()); // Original ID
    out.extend_from_slice(&(error as u16).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // Other Len
    let arcount = u16::from_be_bytes([out[10], out[11]]) + 1;
    out[10..12].copy_from_slice(&arcount.to_be_bytes());
    written
}

type Started = AnswerBuilder<Target>;

/// Header and question, ready for the answer section. On failure (a question too large for
/// the limit) the builder holds the header only.
fn start(
    req: &Request<'_>,
    q: Option<&Question<'_>>,
    buf: impl Into<StartBuf>,
    body_limit: usize,
) -> Result<Started, (PushError, Started)> {
    let target = match buf.into() {
        StartBuf::Vec(v) => StaticCompressor::new(v),
        StartBuf::Target(t) => t,
    };
    // Appending to a Vec cannot fail: its error type is uninhabited.
    let Ok(mut msg) = MessageBuilder::from_target(target);
    msg.set_push_limit(body_limit.saturating_add(1));
    let h = msg.header_mut();
    h.set_id(req.id);
    h.set_qr(true);
    h.set_opcode(req.opcode);
    h.set_rd(req.rd);
    h.set_cd(req.cd);
    let mut qb = msg.question();
    let Some(q) = q else { return Ok(qb.answer()) };
    match qb.push((&q.name, q.qtype, q.qclass)) {
        Ok(()) => Ok(qb.answer()),
        Err(e) => Err((e, qb.answer())),
    }
}

/// Either a fresh vector or a target taken back from an earlier attempt.
enum StartBuf {
    Vec(Vec<u8>),
    Target(Target),
}

impl From<Vec<u8>> for StartBuf {
    fn from(v: Vec<u8>) -> Self {
        StartBuf::Vec(v)
    }
}

impl From<Target> for StartBuf {
    fn from(t: Target) -> Self {
        StartBuf::Target(t)
    }
}

/// Adds OPT (RFC 6891 §6.1.1: payload size, extended rcode, version 0, DO echoed, no other
/// flags; keepalive over streams when asked) and hands the buffer back.
fn finish(
    add: AdditionalBuilder<Target>,
    req: &Request<'_>,
    t: Transport,
    rcode: OptRcode,
    truncated: bool,
    limit: usize,
    out: &mut Vec<u8>,
) -> Written {
    finish_with(add, req, t, (rcode, None), truncated, limit, out)
}

/// [`finish`] with an Extended DNS Error (RFC 8914) in the OPT, when the query had one.
fn finish_with(
    mut add: AdditionalBuilder<Target>,
    req: &Request<'_>,
    t: Transport,
    (rcode, ede): (OptRcode, Option<u16>),
    truncated: bool,
    limit: usize,
    out: &mut Vec<u8>,
) -> Written {
    if let Some(e) = req.edns {
        add.set_push_limit(limit.saturating_add(1));
        let keepalive = keepalive(req, t);
        let payload = announced_payload(e.udp_size);
        // RFC 8467 block-length padding, only over encrypted transports and only when asked;
        // never beyond the size limit.
        let nsid = req.nsid.filter(|n| n.len() <= usize::from(u16::MAX));
        let cookie = req.cookie_reply.map(|c| c.reply);
        let pad = if e.padding && t.is_encrypted() {
            let keepalive_len = keepalive.map_or(0, |_| OPTION_HEADER_LEN + 2);
            let nsid_len = nsid.map_or(0, |n| OPTION_HEADER_LEN + n.len());
            let cookie_len = cookie.map_or(0, |c| OPTION_HEADER_LEN + c.len());
            let fixed = add.as_slice().len() + OPT_LEN + keepalive_len + nsid_len + cookie_len + OPTION_HEADER_LEN;
            Some(wire::padding_len(fixed, limit))
        } else {
            None
        };
        // The space was reserved by the push limit, so this fits.
        let _ = add.opt(|opt| {
            opt.set_udp_payload_size(payload);
            opt.set_version(0);
            opt.set_dnssec_ok(e.dnssec_ok);
            opt.set_rcode(rcode);
            if let Some(timeout) = keepalive {
                opt.push_raw_option(OptionCode::from_int(wire::option::TCP_KEEPALIVE), 2, |tgt| {
                    tgt.append_slice(&timeout.to_be_bytes())
                })?;
            }
            if let Some(c) = &cookie {
                opt.push_raw_option(OptionCode::from_int(wire::option::COOKIE), c.len() as u16, |tgt| {
                    tgt.append_slice(c)
                })?;
            }
            if let Some(n) = nsid {
                opt.push_raw_option(OptionCode::from_int(wire::option::NSID), n.len() as u16, |tgt| {
                    tgt.append_slice(n)
                })?;
            }
            if let Some(code) = ede {
                opt.push_raw_option(OptionCode::from_int(wire::option::EDE), 2, |tgt| {
                    tgt.append_slice(&code.to_be_bytes())
                })?;
            }
            if let Some(n) = pad {
                const ZEROS: [u8; PADDING_BLOCK] = [0; PADDING_BLOCK];
                opt.push_raw_option(OptionCode::from_int(wire::option::PADDING), n as u16, |tgt| {
                    tgt.append_slice(&ZEROS[..n])
                })?;
            }
            Ok(())
        });
    }
    *out = add.finish().into_target();
    Written {
        rcode: rcode.to_int(),
        truncated,
    }
}

/// The sections share one push method under different builder types.
trait Section {
    fn push_rr(&mut self, rec: impl ComposeRecord) -> Result<(), PushError>;
}

impl Section for AnswerBuilder<Target> {
    fn push_rr(&mut self, rec: impl ComposeRecord) -> Result<(), PushError> {
        self.push(rec)
    }
}

impl Section for AuthorityBuilder<Target> {
    fn push_rr(&mut self, rec: impl ComposeRecord) -> Result<(), PushError> {
        self.push(rec)
    }
}

impl Section for AdditionalBuilder<Target> {
    fn push_rr(&mut self, rec: impl ComposeRecord) -> Result<(), PushError> {
        self.push(rec)
    }
}

fn push_record<S: Section>(
    s: &mut S,
    owner: Owner<'_>,
    q: &Question<'_>,
    ttl: u32,
    data: WireData<'_>,
) -> Result<(), PushError> {
    match owner {
        Owner::Query => s.push_rr((&q.name, Class::IN, ttl, data)),
        Owner::Name(wire) => match Name::from_slice(wire) {
            Ok(name) => s.push_rr((name, Class::IN, ttl, data)),
            // Snapshot names are valid; skip the record rather than write garbage.
            Err(_) => Ok(()),
        },
    }
}

fn push_parts<S: Section, const N: usize>(
    s: &mut S,
    parts: &Parts<'_, N>,
    q: &Question<'_>,
    req: &Request<'_>,
    sigs: &mut dyn Signatures,
) -> Result<(), PushError> {
    let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
    for p in parts.iter() {
        push_set(s, p, q)?;
        if dnssec_ok {
            if let Some(rrsigs) = sigs.of(p, q) {
                push_sigs(s, p, q, rrsigs)?;
            }
        }
    }
    Ok(())
}

/// Optional data (the additional section of an answer): each part goes in whole, with its
/// RRSIGs, or not at all, so no RRset is split from its signatures or cut short (RFC 2181
/// §9, RFC 4035 §3.1.1). A part goes in when its size without compression fits.
fn push_whole_parts<const N: usize>(
    s: &mut AdditionalBuilder<Target>,
    parts: &Parts<'_, N>,
    q: &Question<'_>,
    req: &Request<'_>,
    sigs: &mut dyn Signatures,
    body_limit: usize,
) {
    let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
    for p in parts.iter() {
        let owner = match p.owner {
            Owner::Query => q.key.len(),
            Owner::Name(w) => w.len(),
        };
        let size = |set: &Rrset<'_>, covered: Option<[u8; 2]>| -> usize {
            set.rdatas()
                .filter(|r| covered.is_none_or(|c| r.get(..2) == Some(&c[..])))
                .map(|r| owner + RR_FIXED_LEN + r.len())
                .sum()
        };
        let rrsigs = if dnssec_ok { sigs.of(p, q) } else { None };
        let need = size(&p.set, None) + rrsigs.map_or(0, |(set, covered)| size(&set, covered));
        if s.as_slice().len() + need > body_limit {
            continue;
        }
        // It fits uncompressed, so neither push can fail.
        let _ = push_set(s, p, q);
        if let Some(rrsigs) = rrsigs {
            let _ = push_sigs(s, p, q, rrsigs);
        }
    }
}

/// Type, class, TTL and rdata length of a resource record (RFC 1035 §4.1.3).
const RR_FIXED_LEN: usize = 10;

fn push_set<S: Section>(s: &mut S, p: &Part<'_>, q: &Question<'_>) -> Result<(), PushError> {
    for data in p.set.records() {
        push_record(s, p.owner, q, p.ttl, data)?;
    }
    Ok(())
}

/// The RRSIGs of a part (those of its type covered, when filtered), with the TTL the part
/// is written with (RFC 4034 §3: an RRSIG's TTL is its RRset's; the zone keeps a name's
/// RRSIGs as one set, whose TTL is the lowest of them).
fn push_sigs<S: Section>(
    s: &mut S,
    p: &Part<'_>,
    q: &Question<'_>,
    (rrsigs, covered): (Rrset<'_>, Option<[u8; 2]>),
) -> Result<(), PushError> {
    for data in rrsigs
        .records()
        .filter(|d| covered.is_none_or(|c| d.data.get(..2) == Some(&c[..])))
    {
        push_record(s, p.owner, q, p.ttl, data)?;
    }
    Ok(())
}

/// The smallest TTL of the answer and authority records of a reply: the freshness lifetime
/// of a DoH response (RFC 8484 §5.1). `None` when there are no such records.
pub fn min_ttl(reply: &[u8]) -> Option<u32> {
    use domain::base::name::ParsedName;
    use domain::dep::octseq::Parser;
    if reply.len() < 12 {
        return None;
    }
    let count = |i: usize| u16::from_be_bytes([reply[4 + 2 * i], reply[5 + 2 * i]]);
    let mut p = Parser::from_ref(reply);
    p.advance(12).ok()?;
    for _ in 0..count(0) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
    }
    let mut min: Option<u32> = None;
    for _ in 0..u32::from(count(1)) + u32::from(count(2)) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
        let ttl = p.parse_u32_be().ok()?;
        let rdlen = usize::from(p.parse_u16_be().ok()?);
        p.advance(rdlen).ok()?;
        min = Some(min.map_or(ttl, |m| m.min(ttl)));
    }
    min
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::dns::request::{self, Parsed};
    use crate::dns::resolve::in_zone;
    use crate::zone::name::{NameKey, parse_abs};
    use crate::zone::store::Zone;
    use crate::zone::zonefile::load_bytes;

    const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n\
        @ SOA ns1 host 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n\
        a A 192.0.2.1\nv6 AAAA 2001:db8::1\nmulti A 192.0.2.1\nmulti A 192.0.2.2\nmulti A 192.0.2.3\n\
        *.wild A 192.0.2.9\nsigned A 192.0.2.7\n\
        signed RRSIG A 13 3 300 20300101000000 20200101000000 12345 example.test. AAAA\n";

    fn zone() -> Zone {
        zone_from(ZONE)
    }

    /// The zone with its SOA line replaced by `soa`.
    fn zone_with_soa(soa: &str) -> Zone {
        zone_from(&ZONE.replace("@ SOA ns1 host 1 7200 3600 1209600 60", soa))
    }

    fn zone_from(base: &str) -> Zone {
        let mut text = base.to_string();
        for i in 0..60 {
            text.push_str(&format!("big A 10.0.0.{i}\n"));
        }
        load_bytes(
            text.as_bytes(),
            Path::new("test.zone"),
            &parse_abs("example.test").unwrap(),
        )
        .unwrap()
    }

    /// An OPT: payload size, DO, and options as (code, length) pairs of zeros.
    type Opt = Option<(u16, bool, &'static [(u16, u16)])>;

    /// A query for `name` (labels as given, case kept) with an optional OPT.
    fn query(name: &str, qtype: u16, opt: Opt) -> Vec<u8> {
        let mut b = crate::testing::query(name, Rtype::from_int(qtype)).flags(flags1::RD, flags2::CD);
        if let Some((size, dnssec_ok, options)) = opt {
            b = b.edns(size);
            if dnssec_ok {
                b = b.dnssec_ok();
            }
            for (code, len) in options {
                b = b.option(*code, &vec![0; usize::from(*len)]);
            }
        }
        b.wire()
    }

    /// The direct writers and the general one write the same octets wherever a direct one
    /// answers, and they do answer the plain cases (else this test would prove nothing): A
    /// and AAAA hits, and NODATA and NXDOMAIN under SOAs whose names compress against the
    /// question in different ways, in other case, or not at all, and under question names
    /// with more suffixes than the compressor remembers.
    #[test]
    fn direct_writers_match_the_general_writer() {
        let zones = [
            zone(),
            zone_with_soa("@ SOA NS1.Example.TEST. Host.Other.Test. 1 7200 3600 1209600 60"),
            zone_with_soa("@ SOA a.b.example.test. x.b.example.test. 1 7200 3600 1209600 60"),
            zone_with_soa("@ SOA ns.elsewhere. . 1 7200 3600 1209600 60"),
        ];
        // TCP announces a keepalive; HTTPS pads and announces none.
        let transports = [Transport::Udp, Transport::Tcp, Transport::Https];
        let opts: [Opt; 7] = [
            None,
            Some((512, false, &[])),
            Some((4096, true, &[])),
            Some((1232, false, &[(wire::option::TCP_KEEPALIVE, 0)])),
            Some((1232, false, &[(wire::option::PADDING, 8)])),
            Some((100, true, &[])),
            Some((1232, false, &[(wire::option::COOKIE, 8)])),
        ];
        let names = [
            "a",
            "A.Example.TEST",
            "v6",
            "multi",
            "x.wild",
            "signed",
            "big",
            "nx",
            "NX.b",
            "ns1",
            // The zone's apex is the 24th suffix, the last one remembered; then none is.
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w",
            "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.nx",
        ];
        let (mut addresses, mut negatives) = (0, 0);
        for z in &zones {
            for t in transports {
                for opt in opts {
                    for name in names {
                        for qtype in [1u16, 28, 15] {
                            let wire = query(&format!("{name}.example.test"), qtype, opt);
                            let mut scratch = NameKey::EMPTY;
                            let Parsed::Query(mut req) = request::parse(&wire, &mut scratch) else {
                                panic!("query for {name} does not parse");
                            };
                            // What the core makes of a client cookie from 192.0.2.1.
                            req.cookie_reply = req.cookie.and_then(|c| {
                                let secrets = crate::dns::cookie::Secrets {
                                    current: [3; 16],
                                    previous: None,
                                };
                                crate::dns::cookie::answer(c, [192, 0, 2, 1].into(), 1_800_000_000, &secrets)
                            });
                            let q = req.question.unwrap();
                            let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
                            let synth = crate::dns::resolve::Synthesized::new();
                            let mut res = Resolution::new();
                            in_zone(z, &q, t, dnssec_ok, &synth, &mut res);
                            let mut general = Vec::new();
                            let expected = write_general(&req, &q, &res, t, &mut Stored, &mut general);
                            let case = format!("{name} {qtype} {opt:?} {t:?}");
                            let mut fast = Vec::new();
                            if let Some(w) = write_address_answer(&req, &q, &res, t, &mut fast) {
                                addresses += 1;
                                assert_eq!((w, &fast), (expected, &general), "address: {case}");
                            }
                            if let Some(w) = write_negative(&req, &q, &res, t, &mut fast) {
                                negatives += 1;
                                assert_eq!((w, &fast), (expected, &general), "negative: {case}");
                            }
                        }
                    }
                }
            }
        }
        // Per zone, transport and OPT that needs no option in the reply: A/AAAA hits at a,
        // A.Example.TEST, v6, multi, x.wild and signed (unless DO=1); NODATA and NXDOMAIN
        // for the rest.
        assert!(addresses >= 360, "the address writer answered only {addresses} cases");
        assert!(negatives >= 600, "the negative writer answered only {negatives} cases");
    }

    /// Additional data that does not all fit goes in part by part: no RRset is split from
    /// its RRSIG or cut short.
    #[test]
    fn additional_rrsets_stay_whole_with_their_signatures() {
        let sig = "A".repeat(120);
        let mut text = String::from(
            "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 host 1 7200 3600 1209600 60\n@ NS ns1\nns1 A 192.0.2.53\n",
        );
        for i in 0..12 {
            text.push_str(&format!(
                "@ MX {i} mx{i}\nmx{i} A 192.0.2.{i}\nmx{i} A 198.51.100.{i}\n"
            ));
            text.push_str(&format!(
                "mx{i} RRSIG A 13 3 300 20300101000000 20200101000000 12345 example.test. {sig}\n"
            ));
        }
        let z = load_bytes(text.as_bytes(), Path::new("t"), &parse_abs("example.test").unwrap()).unwrap();
        let wire = query("example.test", 15, Some((1232, true, &[])));
        let mut scratch = NameKey::EMPTY;
        let Parsed::Query(req) = request::parse(&wire, &mut scratch) else {
            panic!("query");
        };
        let q = req.question.unwrap();
        let synth = crate::dns::resolve::Synthesized::new();
        let mut res = Resolution::new();
        in_zone(&z, &q, Transport::Udp, true, &synth, &mut res);
        let mut out = Vec::new();
        write(&req, &q, &res, Transport::Udp, &mut out);
        let msg = domain::base::Message::from_octets(&out[..]).unwrap();
        assert!(!msg.header().tc() && out.len() <= 1232);
        assert_eq!(msg.header_counts().ancount(), 12);
        let mut per_owner: std::collections::HashMap<String, (usize, usize)> = Default::default();
        for rr in msg.additional().unwrap() {
            let rr = rr.unwrap();
            let e = per_owner.entry(rr.owner().to_string()).or_default();
            match rr.rtype() {
                Rtype::A => e.0 += 1,
                Rtype::RRSIG => e.1 += 1,
                _ => {}
            }
        }
        per_owner.remove("");
        assert!(
            !per_owner.is_empty() && per_owner.len() < 12,
            "some fit, not all: {per_owner:?}"
        );
        assert!(per_owner.values().all(|&c| c == (2, 1)), "{per_owner:?}");
    }
}
