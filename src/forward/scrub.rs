//! Upstream replies, checked and scrubbed into a reply template (see [`crate::cache::template`]).
//!
//! Scrubbing keeps only what belongs to the question (the rules of resolvers' "scrubbers"):
//! answer records on the CNAME chain from the query name (at most [`MAX_CHAIN`] links, no
//! loops), authority records (SOA, NS, DS, NSEC*, RRSIG) owned by an ancestor of the chain's
//! last name, and additional A/AAAA for names that kept NS, MX or SRV records point to.
//! Everything else (out-of-bailiwick NS, glue, stray additional data) is dropped, so it is
//! neither cached nor passed on.

use domain::base::Message;
use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::message_builder::{MessageBuilder, StaticCompressor};
use domain::base::name::ParsedName;
use domain::dep::octseq::Parser;
use domain::rdata::AllRecordData;

use crate::cache::template::{Kind, Template};
use crate::dns::wire::{self, FLAGS1, HEADER_LEN, flags1, ttl_offsets};
use crate::zone::name::{NameKey, is_in_zone};

/// Longest CNAME chain accepted from an upstream; longer → SERVFAIL (README, Resolver frontend).
pub const MAX_CHAIN: usize = 11;
/// Most records accepted in one upstream reply (a bound on parsing work).
pub const MAX_RECORDS: usize = 1000;

/// Why an upstream reply is not used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// Not a well-formed reply.
    Malformed,
    /// More than [`MAX_RECORDS`] records.
    TooBig,
    /// A CNAME chain too long or looping.
    Chain,
}

/// Builds the template of an upstream reply to the question (`qname` lowercase wire).
/// `bailiwick`: the `forward` FROM zone; authority records above it are dropped.
pub fn scrub(
    reply: &[u8],
    qname: &NameKey,
    qtype: Rtype,
    dnssec_ok: bool,
    bailiwick: &[u8],
) -> Result<Template, Reject> {
    let msg = Message::from_octets(reply).map_err(|_| Reject::Malformed)?;
    let h = msg.header();
    let counts = msg.header_counts();
    let total = usize::from(counts.ancount()) + usize::from(counts.nscount()) + usize::from(counts.arcount());
    if total > MAX_RECORDS {
        return Err(Reject::TooBig);
    }
    let rcode = msg.opt_rcode();
    // The chain of names the answer may hold.
    let mut chain: Vec<NameKey> = vec![*qname];
    let answer = msg.answer().map_err(|_| Reject::Malformed)?;
    let mut records = Vec::new();
    for r in answer {
        let r = r.map_err(|_| Reject::Malformed)?;
        records.push(r);
    }
    while let Some(last) = chain.last().copied() {
        let next = records.iter().find_map(|r| {
            if r.rtype() != Rtype::CNAME || NameKey::of(&r.owner()).as_slice() != last.as_slice() {
                return None;
            }
            let rec = r.to_record::<domain::rdata::Cname<ParsedName<&[u8]>>>().ok()??;
            Some(NameKey::of(rec.data().cname()))
        });
        let Some(next) = next else { break };
        if qtype == Rtype::CNAME {
            break;
        }
        if chain.iter().any(|k| k.as_slice() == next.as_slice()) || chain.len() > MAX_CHAIN {
            return Err(Reject::Chain);
        }
        chain.push(next);
    }
    let end = chain.last().copied().unwrap_or(*qname);

    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(reply.len() + 64)))
        .map_err(|_| Reject::Malformed)?;
    {
        let hd = b.header_mut();
        hd.set_qr(true);
        hd.set_opcode(h.opcode());
        // RFC 1035 §4.1.1: recursion is available here, whatever the upstream said.
        hd.set_ra(true);
        hd.set_ad(h.ad() && dnssec_ok);
        hd.set_rcode(rcode.rcode());
    }
    let mut qb = b.question();
    let qn = domain::base::Name::from_slice(qname.as_slice()).map_err(|_| Reject::Malformed)?;
    qb.push((qn, qtype, Class::IN)).map_err(|_| Reject::Malformed)?;
    let mut ans = qb.answer();
    let mut min_ttl = u32::MAX;
    let mut targets: Vec<NameKey> = Vec::new();
    // NODATA unless the last name of the chain has data of the asked type.
    let mut answered = false;
    // A DNAME (RFC 6672 §3.2) above a name of the chain explains the CNAME synthesised from
    // it; it is kept with its RRSIG, so that a validator behind us can check the chain.
    let dname_above_chain = |owner: &NameKey| {
        is_in_zone(owner.as_slice(), bailiwick)
            && chain
                .iter()
                .any(|k| k.as_slice() != owner.as_slice() && is_in_zone(k.as_slice(), owner.as_slice()))
    };
    let mut dname_owners: Vec<NameKey> = Vec::new();
    for r in records.iter().filter(|r| r.rtype() == Rtype::DNAME) {
        let owner = NameKey::of(&r.owner());
        if dname_above_chain(&owner) && !dname_owners.iter().any(|d| d.as_slice() == owner.as_slice()) {
            dname_owners.push(owner);
        }
    }
    for r in &records {
        let owner = NameKey::of(&r.owner());
        let t = r.rtype();
        let on_chain = chain.iter().any(|k| k.as_slice() == owner.as_slice());
        let dname_owner = dname_owners.iter().any(|d| d.as_slice() == owner.as_slice());
        let keep = on_chain
            && (t == Rtype::CNAME || t == qtype || qtype == Rtype::ANY || (t == Rtype::RRSIG && dnssec_ok))
            || dname_owner && (t == Rtype::DNAME || (t == Rtype::RRSIG && dnssec_ok));
        if !keep {
            continue;
        }
        if (t == qtype || qtype == Rtype::ANY) && owner.as_slice() == end.as_slice() {
            answered = true;
        }
        let rec = r
            .to_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
            .map_err(|_| Reject::Malformed)?
            .ok_or(Reject::Malformed)?;
        collect_targets(rec.data(), &mut targets);
        min_ttl = min_ttl.min(rec.ttl().as_secs());
        ans.push(rec).map_err(|_| Reject::Malformed)?;
    }
    let mut auth = ans.authority();
    let mut negative_ttl = None;
    let authority = msg.authority().map_err(|_| Reject::Malformed)?;
    for r in authority {
        let r = r.map_err(|_| Reject::Malformed)?;
        let owner = NameKey::of(&r.owner());
        let t = r.rtype();
        let ancestor = is_in_zone(end.as_slice(), owner.as_slice()) && is_in_zone(owner.as_slice(), bailiwick);
        let nsec3_of_ancestor = t == Rtype::NSEC3 && parent_is_ancestor(owner.as_slice(), end.as_slice());
        let allowed = matches!(t, Rtype::SOA | Rtype::NS | Rtype::DS) && ancestor
            || matches!(t, Rtype::NSEC | Rtype::RRSIG)
                && dnssec_ok
                && (ancestor || is_in_zone(owner.as_slice(), apex_of(&chain)))
            || nsec3_of_ancestor && dnssec_ok;
        if !allowed {
            continue;
        }
        let rec = r
            .to_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
            .map_err(|_| Reject::Malformed)?
            .ok_or(Reject::Malformed)?;
        if let AllRecordData::Soa(soa) = rec.data() {
            // RFC 2308 §5: negative answers live min(SOA TTL, SOA MINIMUM).
            negative_ttl = Some(rec.ttl().as_secs().min(soa.minimum().as_secs()));
        }
        collect_targets(rec.data(), &mut targets);
        min_ttl = min_ttl.min(rec.ttl().as_secs());
        auth.push(rec).map_err(|_| Reject::Malformed)?;
    }
    let mut add = auth.additional();
    let additional = msg.additional().map_err(|_| Reject::Malformed)?;
    for r in additional {
        let r = r.map_err(|_| Reject::Malformed)?;
        if !matches!(r.rtype(), Rtype::A | Rtype::AAAA) {
            continue;
        }
        let owner = NameKey::of(&r.owner());
        if !targets.iter().any(|t| t.as_slice() == owner.as_slice()) {
            continue;
        }
        let rec = r
            .to_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>()
            .map_err(|_| Reject::Malformed)?
            .ok_or(Reject::Malformed)?;
        min_ttl = min_ttl.min(rec.ttl().as_secs());
        add.push(rec).map_err(|_| Reject::Malformed)?;
    }
    let bytes = add.finish().into_target();
    let kind = match rcode.rcode() {
        Rcode::NXDOMAIN => Kind::Denial,
        Rcode::NOERROR if !answered => Kind::Denial,
        Rcode::NOERROR => Kind::Success,
        _ => Kind::Failure,
    };
    let ttl = match kind {
        Kind::Denial => negative_ttl.unwrap_or(0),
        _ if min_ttl == u32::MAX => 0,
        _ => min_ttl,
    };
    let mut ttls = ttl_offsets(&bytes).ok_or(Reject::Malformed)?;
    if kind == Kind::Denial {
        // RFC 2308 §3, §5: the SOA (and proofs) of a negative answer live as long as it.
        for (_, t) in ttls.iter_mut() {
            *t = (*t).min(ttl);
        }
    }
    Ok(Template {
        bytes: bytes.into_boxed_slice(),
        ttls: ttls.into_boxed_slice(),
        ttl,
        kind,
        ext_rcode: rcode.ext(),
        ede: None,
    })
}

/// The closest name of the chain's zone we can tell: the owner of the last chain link.
fn apex_of(chain: &[NameKey]) -> &[u8] {
    chain.last().map(|k| k.as_slice()).unwrap_or(&[0])
}

fn parent_is_ancestor(owner: &[u8], name: &[u8]) -> bool {
    let Some(&len) = owner.first() else { return false };
    let parent = owner.get(1 + usize::from(len)..).unwrap_or(&[0]);
    is_in_zone(name, parent)
}

/// Names whose addresses may follow in the additional section.
fn collect_targets(data: &AllRecordData<&[u8], ParsedName<&[u8]>>, out: &mut Vec<NameKey>) {
    let name = match data {
        AllRecordData::Ns(ns) => NameKey::of(ns.nsdname()),
        AllRecordData::Mx(mx) => NameKey::of(mx.exchange()),
        AllRecordData::Srv(srv) => NameKey::of(srv.target()),
        _ => return,
    };
    if !out.iter().any(|n| n.as_slice() == name.as_slice()) {
        out.push(name);
    }
}

/// Whether a reply from an upstream answers our question: QR set, same ID, same question
/// (name case-insensitive, type, class). Others are ignored while we keep waiting.
pub fn matches(reply: &[u8], id: u16, qname: &NameKey, qtype: Rtype) -> bool {
    if reply.len() < HEADER_LEN || reply[FLAGS1] & flags1::QR == 0 || u16::from_be_bytes([reply[0], reply[1]]) != id {
        return false;
    }
    if wire::count(reply, 0) != 1 {
        return false;
    }
    let mut p = Parser::from_ref(reply);
    if p.advance(HEADER_LEN).is_err() {
        return false;
    }
    let Ok(name) = ParsedName::parse_ref(&mut p) else {
        return false;
    };
    let (Ok(t), Ok(c)) = (p.parse_u16_be(), p.parse_u16_be()) else {
        return false;
    };
    NameKey::of(&name).as_slice() == qname.as_slice() && t == qtype.to_int() && c == Class::IN.to_int()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::template::*;
    use crate::zone::name::parse_abs;
    use domain::base::MessageBuilder;

    pub(super) fn key(n: &str) -> NameKey {
        NameKey::of(&parse_abs(n).unwrap())
    }

    pub(super) fn reply(
        records: &[(&str, Rtype, u32, &str)],
        authority: &[(&str, Rtype, u32, &str)],
        additional: &[(&str, Rtype, u32, &str)],
        rcode: Rcode,
    ) -> Vec<u8> {
        use std::str::FromStr;
        let text = |rs: &[(&str, Rtype, u32, &str)]| -> Vec<domain::zonefile::inplace::ScannedRecord> {
            rs.iter()
                .map(|(o, t, ttl, d)| {
                    let zone = format!("{o}. {ttl} IN {t} {d}\n");
                    let mut zf = domain::zonefile::inplace::Zonefile::from(zone.as_str());
                    zf.set_origin(domain::base::Name::root_bytes());
                    match zf.next_entry().unwrap().unwrap() {
                        domain::zonefile::inplace::Entry::Record(r) => r,
                        _ => unreachable!(),
                    }
                })
                .collect()
        };
        let mut b = MessageBuilder::new_vec();
        b.header_mut().set_id(7);
        b.header_mut().set_qr(true);
        b.header_mut().set_rcode(rcode);
        let mut q = b.question();
        q.push((
            domain::base::Name::<Vec<u8>>::from_str("www.example.test").unwrap(),
            Rtype::A,
        ))
        .unwrap();
        let mut a = q.answer();
        for r in text(records) {
            a.push(r).unwrap();
        }
        let mut au = a.authority();
        for r in text(authority) {
            au.push(r).unwrap();
        }
        let mut ad = au.additional();
        for r in text(additional) {
            ad.push(r).unwrap();
        }
        ad.finish()
    }

    #[test]
    fn keeps_the_chain_drops_the_rest() {
        let r = reply(
            &[
                ("www.example.test", Rtype::CNAME, 300, "web.example.test."),
                ("web.example.test", Rtype::A, 60, "192.0.2.1"),
                ("evil.example.org", Rtype::A, 9999, "203.0.113.66"),
            ],
            &[
                ("example.test", Rtype::NS, 3600, "ns1.example.test."),
                ("org", Rtype::NS, 3600, "ns.evil.org."),
            ],
            &[
                ("ns1.example.test", Rtype::A, 3600, "192.0.2.53"),
                ("ns.evil.org", Rtype::A, 3600, "203.0.113.1"),
            ],
            Rcode::NOERROR,
        );
        let t = scrub(&r, &key("www.example.test"), Rtype::A, false, &[0]).unwrap();
        assert_eq!(t.kind, Kind::Success);
        assert_eq!(t.ttl, 60);
        let m = Message::from_octets(&t.bytes[..]).unwrap();
        let c = m.header_counts();
        assert_eq!(
            (c.ancount(), c.nscount(), c.arcount()),
            (2, 1, 1),
            "no evil answer, no out-of-bailiwick NS or glue"
        );
        // Render for a client with case in its name and EDNS: TTLs counted down, OPT added.
        let client = crate::testing::query("WwW.example.test", Rtype::A).edns(4096).wire();
        let mut out = Vec::with_capacity(1024);
        render(
            &t,
            &Client {
                query: &client,
                edns: Some((4096, false)),
                limit: 1232,
                pad: false,
                nsid: None,
                cookie: None,
            },
            Age::Fresh { age: 10, lifetime: 60 },
            None,
            &mut out,
        );
        assert_eq!(&out[12..16], b"\x03WwW");
        let m = Message::from_octets(&out[..]).unwrap();
        assert_eq!(m.header().id(), 0x1234);
        let ttls: Vec<u32> = m.answer().unwrap().map(|r| r.unwrap().ttl().as_secs()).collect();
        assert_eq!(ttls, vec![290, 50]);
        assert_eq!(m.opt().unwrap().udp_payload_size(), 1232);
    }

    #[test]
    fn negative_ttl_and_limits() {
        let r = reply(
            &[],
            &[(
                "example.test",
                Rtype::SOA,
                3600,
                "ns1.example.test. h.example.test. 1 2 3 4 120",
            )],
            &[],
            Rcode::NXDOMAIN,
        );
        let t = scrub(&r, &key("www.example.test"), Rtype::A, false, &[0]).unwrap();
        assert_eq!((t.kind, t.ttl), (Kind::Denial, 120));
        // A chain of 13 CNAMEs is refused.
        let mut chain = Vec::new();
        let names: Vec<String> = (0..14)
            .map(|i| {
                if i == 0 {
                    "www.example.test".to_string()
                } else {
                    format!("c{i}.example.test")
                }
            })
            .collect();
        for i in 0..13 {
            chain.push((names[i].as_str(), Rtype::CNAME, 60, format!("{}.", names[i + 1])));
        }
        let recs: Vec<(&str, Rtype, u32, &str)> =
            chain.iter().map(|(o, t, ttl, d)| (*o, *t, *ttl, d.as_str())).collect();
        let rejected = |recs: &[(&str, Rtype, u32, &str)]| {
            let r = reply(recs, &[], &[], Rcode::NOERROR);
            scrub(&r, &key("www.example.test"), Rtype::A, false, &[0]).unwrap_err()
        };
        assert_eq!(rejected(&recs), Reject::Chain);
        // A loop too.
        let looped = [
            ("www.example.test", Rtype::CNAME, 60, "a.example.test."),
            ("a.example.test", Rtype::CNAME, 60, "www.example.test."),
        ];
        assert_eq!(rejected(&looped), Reject::Chain);
    }

    /// Issue 11 B.1: the DNAME above the chain and its RRSIG are kept (they explain the
    /// synthesised CNAME, RFC 6672 §3.2); a DNAME elsewhere is not.
    #[test]
    fn keeps_the_dname_that_explains_the_chain() {
        let sig = |covered: &str| format!("{covered} 13 3 300 20300101000000 20200101000000 1 example.test. c2ln");
        let r = reply(
            &[
                ("example.test", Rtype::DNAME, 300, "example.net."),
                ("example.test", Rtype::RRSIG, 300, &sig("DNAME")),
                ("www.example.test", Rtype::CNAME, 300, "www.example.net."),
                ("www.example.net", Rtype::A, 60, "192.0.2.1"),
                ("other.test", Rtype::DNAME, 300, "evil.org."),
            ],
            &[],
            &[],
            Rcode::NOERROR,
        );
        let types = |t: &Template| -> Vec<Rtype> {
            let m = Message::from_octets(&t.bytes[..]).unwrap();
            m.answer().unwrap().map(|r| r.unwrap().rtype()).collect()
        };
        let with_do = scrub(&r, &key("www.example.test"), Rtype::A, true, &[0]).unwrap();
        assert_eq!(
            types(&with_do),
            vec![Rtype::DNAME, Rtype::RRSIG, Rtype::CNAME, Rtype::A]
        );
        assert_eq!(with_do.kind, Kind::Success);
        let without = scrub(&r, &key("www.example.test"), Rtype::A, false, &[0]).unwrap();
        assert_eq!(types(&without), vec![Rtype::DNAME, Rtype::CNAME, Rtype::A]);
        // Outside the forward's FROM zone the DNAME is not ours to pass on.
        let bailiwick = key("www.example.test");
        let narrow = scrub(&r, &key("www.example.test"), Rtype::A, false, bailiwick.as_slice()).unwrap();
        assert_eq!(types(&narrow), vec![Rtype::CNAME, Rtype::A]);
    }

    #[test]
    fn matching_replies_only() {
        let r = reply(
            &[("www.example.test", Rtype::A, 60, "192.0.2.1")],
            &[],
            &[],
            Rcode::NOERROR,
        );
        assert!(matches(&r, 7, &key("www.example.test"), Rtype::A));
        assert!(!matches(&r, 8, &key("www.example.test"), Rtype::A), "ID");
        assert!(!matches(&r, 7, &key("other.example.test"), Rtype::A), "question");
        assert!(!matches(&r, 7, &key("www.example.test"), Rtype::AAAA), "type");
        assert!(!matches(&r[..10], 7, &key("www.example.test"), Rtype::A), "garbage");
    }

    #[test]
    fn truncates_to_the_client_limit() {
        let many: Vec<(&str, Rtype, u32, String)> = (0..60)
            .map(|i| ("www.example.test", Rtype::A, 60, format!("192.0.2.{i}")))
            .collect();
        let recs: Vec<(&str, Rtype, u32, &str)> =
            many.iter().map(|(o, t, ttl, d)| (*o, *t, *ttl, d.as_str())).collect();
        let t = scrub(
            &reply(&recs, &[], &[], Rcode::NOERROR),
            &key("www.example.test"),
            Rtype::A,
            false,
            &[0],
        )
        .unwrap();
        let client = crate::testing::query("www.example.test", Rtype::A).wire();
        let mut out = Vec::new();
        render(
            &t,
            &Client {
                query: &client,
                edns: None,
                limit: 512,
                pad: false,
                nsid: None,
                cookie: None,
            },
            Age::Fresh { age: 0, lifetime: 0 },
            None,
            &mut out,
        );
        assert!(out.len() <= 512 && out[2] & 0x02 != 0);
        assert_eq!(&out[6..12], &[0; 6]);
        render(
            &t,
            &Client {
                query: &client,
                edns: None,
                limit: 65535,
                pad: false,
                nsid: None,
                cookie: None,
            },
            Age::Stale,
            Some(ede::STALE_ANSWER),
            &mut out,
        );
        let m = Message::from_octets(&out[..]).unwrap();
        assert_eq!(m.answer().unwrap().count(), 60);
        assert!(m.answer().unwrap().all(|r| r.unwrap().ttl().as_secs() == STALE_TTL));
    }
}

/// The template renderer writes OPT, EDE, padding, TTLs and truncation by hand; this checks
/// it octet for octet against domain's message builder fed the same records, the way
/// `dns::reply` checks its direct writers against the general one.
#[cfg(test)]
mod render_guard {
    use domain::base::iana::{OptRcode, Rcode, Rtype};
    use domain::base::message_builder::{MessageBuilder, StaticCompressor};
    use domain::base::{Message, ParsedName};
    use domain::rdata::AllRecordData;

    use super::scrub;
    use super::tests::{key, reply};
    use crate::cache::template::{Age, Client, STALE_TTL, Template, ede, failure, render};
    use crate::dns::wire::{self, OPTION_HEADER_LEN};

    type Rec<'a> = domain::base::Record<ParsedName<&'a [u8]>, AllRecordData<&'a [u8], ParsedName<&'a [u8]>>>;

    /// The records of a section, each with the TTL `ttl_of` makes of the template's next
    /// original TTL (a denial's are capped to its negative TTL, RFC 2308 §5).
    fn records<'a>(
        section: domain::base::message::RecordSection<'a, &'a [u8]>,
        origs: &mut dyn Iterator<Item = u32>,
        ttl_of: &dyn Fn(u32) -> u32,
    ) -> Vec<Rec<'a>> {
        section
            .map(|r| {
                let mut r = r
                    .unwrap()
                    .into_record::<AllRecordData<_, ParsedName<_>>>()
                    .unwrap()
                    .unwrap();
                r.set_ttl(domain::base::Ttl::from_secs(ttl_of(origs.next().unwrap())));
                r
            })
            .collect()
    }

    /// What `render` must produce, built with domain's builder.
    fn expected(t: &Template, c: &Client<'_>, age: Age, extra_ede: Option<u16>) -> Vec<u8> {
        let tm = Message::from_octets(&t.bytes[..]).unwrap();
        let cq = Message::from_octets(c.query).unwrap();
        let question = cq.first_question().unwrap();
        let ttl_of = |orig: u32| match age {
            Age::Fresh { age, lifetime } => orig.max(lifetime).saturating_sub(age),
            Age::Stale => STALE_TTL,
        };
        let ede = extra_ede.or(t.ede);
        let build = |full: bool| {
            let mut origs = t.ttls.iter().map(|&(_, ttl)| ttl);
            let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).unwrap();
            *b.header_mut() = tm.header();
            b.header_mut().set_id(cq.header().id());
            b.header_mut().set_rd(cq.header().rd());
            b.header_mut().set_cd(cq.header().cd());
            b.header_mut().set_tc(!full);
            let mut qb = b.question();
            qb.push(question).unwrap();
            let mut a = qb.answer();
            if full {
                for r in records(tm.answer().unwrap(), &mut origs, &ttl_of) {
                    a.push(r).unwrap();
                }
            }
            let mut au = a.authority();
            if full {
                for r in records(tm.authority().unwrap(), &mut origs, &ttl_of) {
                    au.push(r).unwrap();
                }
            }
            let mut ad = au.additional();
            if full {
                for r in records(tm.additional().unwrap(), &mut origs, &ttl_of) {
                    ad.push(r).unwrap();
                }
            }
            if let Some((payload, dnssec_ok)) = c.edns {
                let header_rcode = tm.header().rcode();
                let fixed = ad.as_slice().len()
                    + wire::OPT_LEN
                    + ede.map_or(0, |_| OPTION_HEADER_LEN + 2)
                    + c.cookie.map_or(0, |k| OPTION_HEADER_LEN + k.len());
                ad.opt(|o| {
                    o.set_udp_payload_size(wire::announced_payload(payload));
                    o.set_rcode(OptRcode::from_parts(header_rcode, t.ext_rcode));
                    o.set_dnssec_ok(dnssec_ok);
                    if let Some(k) = c.cookie {
                        o.push_raw_option(
                            domain::base::iana::OptionCode::from_int(wire::option::COOKIE),
                            k.len() as u16,
                            |tg| domain::dep::octseq::OctetsBuilder::append_slice(tg, k),
                        )?;
                    }
                    if let Some(code) = ede {
                        o.push_raw_option(domain::base::iana::OptionCode::from_int(wire::option::EDE), 2, |tg| {
                            domain::dep::octseq::OctetsBuilder::append_slice(tg, &code.to_be_bytes())
                        })?;
                    }
                    let with_pad = fixed + OPTION_HEADER_LEN;
                    if c.pad && with_pad <= c.limit {
                        let n = wire::padding_len(with_pad, c.limit);
                        o.push_raw_option(
                            domain::base::iana::OptionCode::from_int(wire::option::PADDING),
                            n as u16,
                            |tg| domain::dep::octseq::OctetsBuilder::append_slice(tg, &vec![0; n]),
                        )?;
                    }
                    Ok(())
                })
                .unwrap();
            }
            ad.finish().into_target()
        };
        let opt_len = c.edns.map_or(0, |_| {
            wire::OPT_LEN
                + ede.map_or(0, |_| OPTION_HEADER_LEN + 2)
                + c.cookie.map_or(0, |k| OPTION_HEADER_LEN + k.len())
        });
        if t.bytes.len() + opt_len > c.limit {
            build(false)
        } else {
            build(true)
        }
    }

    #[test]
    fn render_matches_domains_builder() {
        let chain = reply(
            &[
                ("www.example.test", Rtype::CNAME, 300, "web.example.test."),
                ("web.example.test", Rtype::A, 60, "192.0.2.1"),
                ("web.example.test", Rtype::A, 60, "192.0.2.2"),
            ],
            &[("example.test", Rtype::NS, 3600, "ns1.example.test.")],
            &[("ns1.example.test", Rtype::A, 3600, "192.0.2.53")],
            Rcode::NOERROR,
        );
        let denial = reply(
            &[],
            &[(
                "example.test",
                Rtype::SOA,
                3600,
                "ns1.example.test. host.example.test. 1 2 3 4 60",
            )],
            &[],
            Rcode::NXDOMAIN,
        );
        let name = key("www.example.test");
        let templates = [
            scrub(&chain, &name, Rtype::A, false, &[0]).unwrap(),
            scrub(&denial, &name, Rtype::A, true, &[0]).unwrap(),
            failure(&name, Rtype::A, ede::NO_REACHABLE_AUTHORITY),
        ];
        let mut cases = 0;
        let mut truncated = 0;
        for t in &templates {
            for qname in [
                &b"\x03www\x07example\x04test\x00"[..],
                b"\x03WwW\x07ExAmple\x04TEST\x00",
            ] {
                for (rd, cd) in [(true, false), (false, true)] {
                    let mut query = crate::testing::query_wire(qname, 1).wire();
                    query[wire::FLAGS1] = if rd { wire::flags1::RD } else { 0 };
                    query[wire::FLAGS2] = if cd { wire::flags2::CD } else { 0 };
                    for edns in [None, Some((4096, false)), Some((1232, true)), Some((100, false))] {
                        for (limit, pad) in [(512, false), (1232, false), (65535, true), (1232, true), (60, false)] {
                            for age in [
                                Age::Fresh { age: 10, lifetime: 0 },
                                Age::Fresh { age: 5, lifetime: 600 },
                                Age::Stale,
                            ] {
                                for extra in [None, Some(ede::STALE_ANSWER)] {
                                    let c = Client {
                                        query: &query,
                                        edns,
                                        limit,
                                        pad,
                                        nsid: None,
                                        cookie: None,
                                    };
                                    let mut got = Vec::with_capacity(65536);
                                    render(t, &c, age, extra, &mut got);
                                    let want = expected(t, &c, age, extra);
                                    assert_eq!(got, want, "{:?} {edns:?} {limit} {pad} {age:?} {extra:?}", t.kind);
                                    cases += 1;
                                    truncated += usize::from(got[wire::FLAGS1] & wire::flags1::TC != 0);
                                }
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(cases, 3 * 2 * 2 * 4 * 5 * 3 * 2);
        assert!(
            truncated > 0 && truncated < cases,
            "both paths: {truncated} of {cases} truncated"
        );
    }
}
