//! Wire details every reader and writer of DNS messages shares: the header's layout and
//! flag bits (RFC 1035 §4.1.1), message size limits, EDNS option codes, writing an OPT
//! record (RFC 6891 §6.1.2) with its options and block padding (RFC 8467), and walking the
//! records of a message. Named here once, so no other module writes a magic number.

use std::time::Duration;

use domain::base::iana::Rtype;
use domain::base::name::ParsedName;
use domain::dep::octseq::Parser;

use crate::config::Transport;

/// Header length (RFC 1035 §4.1.1).
pub const HEADER_LEN: usize = 12;
/// Offset of the header's first flag octet (QR, opcode, AA, TC, RD).
pub const FLAGS1: usize = 2;
/// Offset of the header's second flag octet (RA, Z, AD, CD, rcode).
pub const FLAGS2: usize = 3;
/// Offset of QDCOUNT; ANCOUNT, NSCOUNT and ARCOUNT follow, two octets each.
pub const COUNTS: usize = 4;

/// Bits of [`FLAGS1`].
pub mod flags1 {
    /// QR: a response.
    pub const QR: u8 = 0x80;
    /// The opcode's position.
    pub const OPCODE_SHIFT: u8 = 3;
    /// The opcode, once shifted.
    pub const OPCODE_MASK: u8 = 0x0F;
    /// AA: authoritative answer.
    pub const AA: u8 = 0x04;
    /// TC: truncated.
    pub const TC: u8 = 0x02;
    /// RD: recursion desired.
    pub const RD: u8 = 0x01;
}

/// Bits of [`FLAGS2`].
pub mod flags2 {
    /// RA: recursion available.
    pub const RA: u8 = 0x80;
    /// AD: authentic data (RFC 4035 §3.2.3).
    pub const AD: u8 = 0x20;
    /// CD: checking disabled (RFC 4035 §3.2.2).
    pub const CD: u8 = 0x10;
    /// The low four bits of the rcode.
    pub const RCODE_MASK: u8 = 0x0F;
}

/// Record count `i` of the header (0 QD, 1 AN, 2 NS, 3 AR).
#[inline]
pub fn count(msg: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([msg[COUNTS + 2 * i], msg[COUNTS + 2 * i + 1]])
}

/// Sets record count `i` of the header.
#[inline]
pub fn set_count(msg: &mut [u8], i: usize, n: u16) {
    msg[COUNTS + 2 * i..COUNTS + 2 * i + 2].copy_from_slice(&n.to_be_bytes());
}

/// Index of ARCOUNT for [`count`] and [`set_count`].
pub const AR: usize = 3;

/// The header's rcode (four bits) and TC of a reply; SERVFAIL for a message too short.
pub fn rcode_and_tc(msg: &[u8]) -> (u16, bool) {
    match (msg.get(FLAGS1), msg.get(FLAGS2)) {
        (Some(f1), Some(f2)) => (u16::from(f2 & flags2::RCODE_MASK), f1 & flags1::TC != 0),
        _ => (u16::from(domain::base::iana::Rcode::SERVFAIL.to_int()), false),
    }
}

/// Largest UDP payload we send (the DNS flag day 2020 value).
pub const MAX_UDP_PAYLOAD: u16 = 1232;
/// Reply size limit without EDNS, and the least EDNS payload size (RFC 1035 §4.2.1,
/// RFC 6891 §6.2.5).
pub const PLAIN_UDP_PAYLOAD: u16 = 512;
/// Largest DNS message over a stream (2-byte length prefix, RFC 1035 §4.2.2).
pub const MAX_STREAM_MESSAGE: usize = 65535;

/// The largest reply for a query over `t` whose OPT announced `edns_payload`.
#[inline]
pub fn reply_limit(t: Transport, edns_payload: Option<u16>) -> usize {
    match (t.is_stream(), edns_payload) {
        (true, _) => MAX_STREAM_MESSAGE,
        (false, None) => usize::from(PLAIN_UDP_PAYLOAD),
        (false, Some(p)) => usize::from(announced_payload(p)),
    }
}

/// The payload size our OPT announces: the client's, within 512..=1232.
#[inline]
pub fn announced_payload(client: u16) -> u16 {
    client.clamp(PLAIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD)
}

/// Idle time allowed between messages on TCP and DoT, and the edns-tcp-keepalive TIMEOUT
/// announced there (RFC 7828 §3.3.2).
pub const STREAM_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// The edns-tcp-keepalive TIMEOUT (100 ms units) announced over `t`: over TCP and DoT only
/// (DoH has HTTP's own connection management).
#[inline]
pub fn keepalive(t: Transport) -> Option<u16> {
    matches!(t, Transport::Tcp | Transport::Tls).then_some((STREAM_IDLE_TIMEOUT.as_millis() / 100) as u16)
}

/// EDNS option codes (IANA "DNS EDNS0 Option Codes").
pub mod option {
    /// NSID (RFC 5001).
    pub const NSID: u16 = 3;
    /// Client subnet (RFC 7871).
    pub const CLIENT_SUBNET: u16 = 8;
    /// COOKIE (RFC 7873).
    pub const COOKIE: u16 = 10;
    /// edns-tcp-keepalive (RFC 7828).
    pub const TCP_KEEPALIVE: u16 = 11;
    /// Padding (RFC 7830).
    pub const PADDING: u16 = 12;
    /// Extended DNS Error (RFC 8914).
    pub const EDE: u16 = 15;
}

/// Octets of an OPT record without options: root owner, type, class, TTL, rdlen.
pub const OPT_LEN: usize = 11;
/// Octets of an option's code and length.
pub const OPTION_HEADER_LEN: usize = 4;
/// The DO bit of the OPT TTL's flags (RFC 3225).
pub const OPT_DO: u16 = 0x8000;
/// Replies are padded to a multiple of this (RFC 8467 §4.1, the recommended policy).
pub const PADDING_BLOCK: usize = 468;

/// The Padding option's data length that makes a message of `len` octets (the option's own
/// header included) a multiple of [`PADDING_BLOCK`], never beyond `limit`.
#[inline]
pub fn padding_len(len: usize, limit: usize) -> usize {
    let want = (PADDING_BLOCK - len % PADDING_BLOCK) % PADDING_BLOCK;
    want.min(limit.saturating_sub(len))
}

/// Appends the fixed part of an OPT record (root owner, payload size, extended rcode,
/// version 0, DO) and returns where its RDLENGTH sits, for [`push_option`] and [`end_opt`].
#[inline]
pub fn start_opt(out: &mut Vec<u8>, payload: u16, ext_rcode: u8, dnssec_ok: bool) -> usize {
    let p = payload.to_be_bytes();
    let f = if dnssec_ok { OPT_DO } else { 0 }.to_be_bytes();
    out.extend_from_slice(&[0, 0, 41, p[0], p[1], ext_rcode, 0, f[0], f[1], 0, 0]);
    out.len() - 2
}

/// Appends an option to the OPT record being written.
#[inline]
pub fn push_option(out: &mut Vec<u8>, code: u16, data: &[u8]) {
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}

/// Appends a Padding option of `n` zero octets.
#[inline]
pub fn push_padding(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&option::PADDING.to_be_bytes());
    out.extend_from_slice(&(n as u16).to_be_bytes());
    out.resize(out.len() + n, 0);
}

/// Ends the OPT record whose RDLENGTH is at `rdlen_at` and counts it in ARCOUNT.
#[inline]
pub fn end_opt(out: &mut [u8], rdlen_at: usize) {
    let rdlen = (out.len() - rdlen_at - 2) as u16;
    out[rdlen_at..rdlen_at + 2].copy_from_slice(&rdlen.to_be_bytes());
    let ar = count(out, AR).saturating_add(1);
    set_count(out, AR, ar);
}

/// A query for `name` (lowercase wire) of `qtype` in class IN, ID 0 (to be stamped), RD as
/// given: the messages ringdns sends itself (upstream queries, health checks, loop probes).
pub fn query(name: &[u8], qtype: Rtype, rd: bool) -> Vec<u8> {
    let mut m = vec![0u8; HEADER_LEN];
    m[FLAGS1] = if rd { flags1::RD } else { 0 };
    set_count(&mut m, 0, 1);
    m.extend_from_slice(name);
    m.extend_from_slice(&qtype.to_int().to_be_bytes());
    m.extend_from_slice(&domain::base::iana::Class::IN.to_int().to_be_bytes());
    m
}

/// Skips one resource record and returns its type; `None` if it runs past the message.
#[inline]
pub fn skip_record(parser: &mut Parser<'_, [u8]>) -> Option<Rtype> {
    ParsedName::skip(parser).ok()?;
    let rtype = Rtype::from_int(parser.parse_u16_be().ok()?);
    parser.advance(6).ok()?;
    let rdlen = usize::from(parser.parse_u16_be().ok()?);
    parser.advance(rdlen).ok()?;
    Some(rtype)
}

/// Length of the first question of a message whose question name is uncompressed (as in
/// templates and queries we build), 0 when there is none.
pub fn question_len(msg: &[u8]) -> usize {
    let mut pos = HEADER_LEN;
    while let Some(&l) = msg.get(pos) {
        pos += 1 + usize::from(l);
        if l == 0 {
            break;
        }
    }
    (pos + 4)
        .saturating_sub(HEADER_LEN)
        .min(msg.len().saturating_sub(HEADER_LEN))
}

/// Offsets and values of the TTL field of every record after the question section.
pub fn ttl_offsets(msg: &[u8]) -> Option<Vec<(u16, u32)>> {
    if msg.len() < HEADER_LEN {
        return None;
    }
    let mut p = Parser::from_ref(msg);
    p.advance(HEADER_LEN).ok()?;
    for _ in 0..count(msg, 0) {
        ParsedName::skip(&mut p).ok()?;
        p.advance(4).ok()?;
    }
    let records = u32::from(count(msg, 1)) + u32::from(count(msg, 2)) + u32::from(count(msg, 3));
    let mut out = Vec::new();
    for _ in 0..records {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_fills_blocks_within_the_limit() {
        assert_eq!(padding_len(468, 65535), 0);
        assert_eq!(padding_len(100, 65535), 368);
        assert_eq!(padding_len(469, 65535), 467);
        assert_eq!(padding_len(100, 200), 100, "never past the limit");
        assert_eq!(padding_len(300, 200), 0);
    }

    #[test]
    fn opt_records_count_themselves() {
        let mut m = vec![0u8; HEADER_LEN];
        let at = start_opt(&mut m, 1232, 0, true);
        push_option(&mut m, option::EDE, &22u16.to_be_bytes());
        end_opt(&mut m, at);
        assert_eq!(count(&m, AR), 1);
        assert_eq!(
            &m[HEADER_LEN..],
            &[0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 6, 0, 15, 0, 2, 0, 22]
        );
    }

    #[test]
    fn limits_by_transport() {
        assert_eq!(reply_limit(Transport::Udp, None), 512);
        assert_eq!(reply_limit(Transport::Udp, Some(100)), 512);
        assert_eq!(reply_limit(Transport::Udp, Some(4096)), 1232);
        assert_eq!(reply_limit(Transport::Tls, None), 65535);
        assert_eq!(keepalive(Transport::Tcp), Some(100));
        assert_eq!(keepalive(Transport::Https), None);
        assert_eq!(keepalive(Transport::Udp), None);
    }
}
