//! `dns64` (RFC 6147): an AAAA query whose answer has no AAAA (NODATA, or an error other
//! than NXDOMAIN, §5.1.2-5.1.3) is asked again for A, and the A records come back as AAAA
//! inside the configured prefix (RFC 6052 §2.2). What is decided here and written here works
//! on whole messages; asking again is the network layer's (it may go upstream).
//!
//! As CoreDNS: the synthesised TTL is the smaller of the A record's and of the SOA's in the
//! AAAA reply (600 when it has none, §5.1.7); other answer records (CNAMEs) and the A
//! reply's authority and additional sections pass unchanged (§5.3.2, §5.3.3). Unlike
//! CoreDNS, the A lookup's rcode is kept (CoreDNS always says NOERROR).

use std::net::Ipv6Addr;

use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::{Message, MessageBuilder, ParsedName, Record, StaticCompressor};
use domain::rdata::{Aaaa, AllRecordData};

use super::wire::{self, HEADER_LEN};

pub use crate::config::Dns64Config as Dns64;

/// The IPv6 address for `v4` inside `prefix/len` (RFC 6052 §2.2: bits 64-71 stay zero).
pub fn embed(prefix: Ipv6Addr, len: u8, v4: [u8; 4]) -> Ipv6Addr {
    let mut out = prefix.octets();
    let mut i = usize::from(len / 8);
    for b in v4 {
        if i == 8 {
            out[8] = 0;
            i = 9;
        }
        out[i] = b;
        i += 1;
    }
    for o in out.iter_mut().skip(i) {
        *o = 0;
    }
    if len < 96 {
        out[8] = 0;
    }
    Ipv6Addr::from(out)
}

/// Whether the AAAA `reply` calls for synthesis: not NXDOMAIN, and no AAAA in its answer
/// unless `translate_all`.
pub fn needed(reply: &[u8], translate_all: bool) -> bool {
    let Ok(msg) = Message::from_octets(reply) else {
        return false;
    };
    if msg.header().rcode() == Rcode::NXDOMAIN {
        return false;
    }
    if translate_all {
        return true;
    }
    let Ok(answer) = msg.answer() else { return false };
    !answer.flatten().any(|r| r.rtype() == Rtype::AAAA)
}

/// The client's AAAA query asked for A instead (same ID, flags, name and OPT).
pub fn a_query(query: &[u8]) -> Option<Vec<u8>> {
    // The parser took the query, so its question name is uncompressed.
    let at = HEADER_LEN + wire::question_len(query).checked_sub(4)?;
    let mut q = query.to_vec();
    q.get_mut(at..at + 2)?.copy_from_slice(&Rtype::A.to_int().to_be_bytes());
    Some(q)
}

/// The AAAA reply made from the A reply `a` (to the query asked for A) and the original AAAA
/// reply `aaaa`, within `limit` octets (TC and an empty answer when it does not fit). `None`
/// when `a` does not parse: the AAAA reply stands then.
pub fn synthesize(cfg: &Dns64, aaaa: &[u8], a: &[u8], limit: usize) -> Option<Vec<u8>> {
    let orig = Message::from_octets(aaaa).ok()?;
    let soa_ttl = orig
        .authority()
        .ok()?
        .flatten()
        .find(|r| r.rtype() == Rtype::SOA)
        .map_or(600, |r| r.ttl().as_secs());
    let msg = Message::from_octets(a).ok()?;
    let question = msg.first_question()?;
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(512))).ok()?;
    b.set_push_limit(limit);
    *b.header_mut() = msg.header();
    let mut qb = b.question();
    qb.push((question.qname(), Rtype::AAAA, question.qclass())).ok()?;
    let mut ans = qb.answer();
    let mut truncated = msg.header().tc();
    for rr in msg.answer().ok()?.flatten() {
        let Ok(Some(rec)) = rr.into_record::<AllRecordData<_, ParsedName<_>>>() else {
            continue;
        };
        let pushed = match rec.data() {
            AllRecordData::A(v4) => {
                let ttl = rec.ttl().as_secs().min(soa_ttl);
                let v6 = embed(cfg.prefix.0, cfg.prefix.1, v4.addr().octets());
                ans.push(Record::new(
                    rec.owner(),
                    Class::IN,
                    domain::base::Ttl::from_secs(ttl),
                    Aaaa::new(v6),
                ))
            }
            _ => ans.push(&rec),
        };
        if pushed.is_err() {
            truncated = true;
            break;
        }
    }
    let mut auth = ans.authority();
    let mut add;
    if truncated {
        auth.header_mut().set_tc(true);
        add = auth.additional();
    } else {
        for rr in msg.authority().ok()?.flatten() {
            if let Ok(Some(rec)) = rr.into_record::<AllRecordData<_, ParsedName<_>>>() {
                let _ = auth.push(&rec);
            }
        }
        add = auth.additional();
    }
    // The A reply's additional section, its OPT included (the client's EDNS answered).
    for rr in msg.additional().ok()?.flatten() {
        if let Ok(Some(rec)) = rr.into_record::<AllRecordData<_, ParsedName<_>>>() {
            let _ = add.push(&rec);
        }
    }
    let out = add.finish().into_target();
    (out.len() >= HEADER_LEN && wire::count(&out, 0) == 1).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeds_as_rfc_6052_says() {
        // RFC 6052 §2.4's table, for 192.0.2.33.
        let v4 = [192, 0, 2, 33];
        for (prefix, len, want) in [
            ("2001:db8::", 32, "2001:db8:c000:221::"),
            ("2001:db8:100::", 40, "2001:db8:1c0:2:21::"),
            ("2001:db8:122::", 48, "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::", 56, "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::", 64, "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::", 96, "2001:db8:122:344::c000:221"),
            ("64:ff9b::", 96, "64:ff9b::c000:221"),
        ] {
            assert_eq!(
                embed(prefix.parse().unwrap(), len, v4),
                want.parse::<Ipv6Addr>().unwrap(),
                "/{len}"
            );
        }
    }
}
