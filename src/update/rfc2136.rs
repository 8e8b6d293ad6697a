//! RFC 2136 UPDATE, no I/O: the message read into its zone, prerequisites and changes
//! (§2), the prerequisites checked against the zone (§3.2), the key's grant (§3.3), the
//! changes checked (§3.4.1) and applied to the touched names (§3.4.2), the serial bumped
//! (§3.6). Nothing is half-applied: the result is a whole new zone or an rcode.

use std::collections::BTreeMap;

use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::rdata::ComposeRecordData;
use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;

use crate::zone::diff::{Diff, Rec};
use crate::zone::name::{NameKey, is_in_zone};
use crate::zone::store::{NameChange, Zone, ZoneError};

/// One record of a prerequisite or update section: owner lowercase wire, rdata with its
/// names uncompressed (empty when RDLENGTH is 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// The owner.
    pub owner: Box<[u8]>,
    /// The type.
    pub rtype: Rtype,
    /// The class: the zone's (IN), ANY or NONE, which say what the record means.
    pub class: Class,
    /// The TTL.
    pub ttl: u32,
    /// The data.
    pub rdata: Box<[u8]>,
}

/// An UPDATE message read (RFC 2136 §2).
#[derive(Clone, Debug)]
pub struct Update {
    /// The zone section's name, lowercase wire.
    pub zone: Box<[u8]>,
    /// The prerequisite section (the answer section's place).
    pub prereqs: Vec<Rr>,
    /// The update section (the authority section's place).
    pub updates: Vec<Rr>,
}

/// One change as applied, and as the log of applied updates keeps it (a delete-name is
/// kept as the RRsets it deleted, so that replaying it deletes no more than it did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// Add a record (§2.5.1); an RRset takes the TTL of the record added last.
    Add(Rec),
    /// Delete an RRset (§2.5.2).
    DeleteRrset {
        /// The owner.
        owner: Box<[u8]>,
        /// The type.
        rtype: u16,
    },
    /// Delete one record (§2.5.4).
    DeleteRr {
        /// The owner.
        owner: Box<[u8]>,
        /// The type.
        rtype: u16,
        /// The data.
        rdata: Box<[u8]>,
    },
}

/// What a key may change (the `update` directive's grant, lowercase wire names).
#[derive(Clone, Debug, Default)]
pub struct Grants {
    /// The types any key may change.
    pub types: Vec<Rtype>,
    /// Per key name: the names it may change; empty means `_acme-challenge` names.
    pub keys: Vec<(Box<[u8]>, Vec<GrantName>)>,
}

/// A name a key may change, lowercase wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantName {
    /// This name.
    Exact(Box<[u8]>),
    /// Every name below this one.
    Below(Box<[u8]>),
}

/// The first label of the names an ACME client's DNS-01 challenge is at (RFC 8555 §8.4).
const ACME_LABEL: &[u8] = b"\x0f_acme-challenge";

impl Grants {
    /// Whether `key` may change records of `rtype` at `owner`.
    pub fn allows(&self, key: &[u8], owner: &[u8], rtype: Rtype) -> bool {
        if !self.types.contains(&rtype) {
            return false;
        }
        let Some((_, names)) = self.keys.iter().find(|(k, _)| **k == *key) else {
            return false;
        };
        if names.is_empty() {
            return owner.starts_with(ACME_LABEL);
        }
        names.iter().any(|n| match n {
            GrantName::Exact(n) => **n == *owner,
            GrantName::Below(n) => owner.len() > n.len() && is_in_zone(owner, n),
        })
    }
}

/// The meta-types no update may add or delete (RFC 2136 §3.4.1.2: "meta-TYPE").
fn is_meta(t: Rtype) -> bool {
    matches!(
        t,
        Rtype::ANY | Rtype::AXFR | Rtype::IXFR | Rtype::MAILA | Rtype::MAILB | Rtype::OPT | Rtype::TSIG
    )
}

/// Reads an UPDATE message. FORMERR for what RFC 2136 §3.1.1 and §2 call malformed; the
/// TSIG (already checked) and any OPT in the additional section are skipped.
pub fn parse(msg: &[u8]) -> Result<Update, Rcode> {
    let m = Message::from_octets(msg).map_err(|_| Rcode::FORMERR)?;
    if m.header().opcode() != Opcode::UPDATE {
        return Err(Rcode::FORMERR);
    }
    // §3.1.1: exactly one zone, of type SOA.
    if m.header_counts().qdcount() != 1 {
        return Err(Rcode::FORMERR);
    }
    let zone = m.sole_question().map_err(|_| Rcode::FORMERR)?;
    if zone.qtype() != Rtype::SOA {
        return Err(Rcode::FORMERR);
    }
    // ringdns serves class IN only: a zone of another class is not ours.
    if zone.qclass() != Class::IN {
        return Err(Rcode::NOTAUTH);
    }
    let read = |section: domain::base::message::RecordSection<'_, &[u8]>| -> Result<Vec<Rr>, Rcode> {
        let mut out = Vec::new();
        for rr in section {
            let rr = rr.map_err(|_| Rcode::FORMERR)?;
            let (owner, rtype, class, ttl) = (NameKey::of(&rr.owner()), rr.rtype(), rr.class(), rr.ttl().as_secs());
            let rdata: Box<[u8]> = if rr.rdlen() == 0 {
                Box::default()
            } else {
                let rec = rr
                    .into_record::<AllRecordData<_, ParsedName<_>>>()
                    .map_err(|_| Rcode::FORMERR)?
                    .ok_or(Rcode::FORMERR)?;
                let mut v = Vec::new();
                rec.data().compose_rdata(&mut v).map_err(|_| Rcode::FORMERR)?;
                v.into()
            };
            out.push(Rr {
                owner: owner.as_slice().into(),
                rtype,
                class,
                ttl,
                rdata,
            });
        }
        Ok(out)
    };
    let prereqs = read(m.answer().map_err(|_| Rcode::FORMERR)?)?;
    let updates = read(m.authority().map_err(|_| Rcode::FORMERR)?)?;
    Ok(Update {
        zone: NameKey::of(&zone.qname()).as_slice().into(),
        prereqs,
        updates,
    })
}

/// One record of a name: type, TTL, data (as [`NameChange`] holds them).
type NameRecord = (Rtype, u32, Box<[u8]>);

/// The records of the names an update touches, as they will be: taken from the zone when
/// first touched, then changed in place.
struct Working<'z> {
    zone: &'z Zone,
    names: BTreeMap<Box<[u8]>, Vec<NameRecord>>,
}

impl<'z> Working<'z> {
    fn new(zone: &'z Zone) -> Self {
        Working {
            zone,
            names: BTreeMap::new(),
        }
    }

    /// The records at `owner` now (a copy taken from the zone when first asked).
    fn at(&mut self, owner: &[u8]) -> &mut Vec<(Rtype, u32, Box<[u8]>)> {
        let zone = self.zone;
        self.names.entry(owner.into()).or_insert_with(|| {
            zone.node(owner)
                .map(|n| {
                    n.rrsets()
                        .flat_map(|s| {
                            s.rdatas()
                                .map(move |r| (s.rtype(), s.ttl(), r.into()))
                                .collect::<Vec<_>>()
                        })
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// Applies one change (RFC 2136 §3.4.2); the apex's SOA and its last NS stay (§3.4.2.3,
    /// §3.4.2.4). Whether anything changed.
    fn apply(&mut self, c: &Change) -> bool {
        let apex: Box<[u8]> = self.zone.apex().into();
        match c {
            Change::Add(r) => {
                let rtype = Rtype::from_int(r.rtype);
                let set = self.at(&r.owner);
                // §3.4.2.2: a CNAME does not join other data, nor other data a CNAME.
                let cname = set.iter().any(|x| x.0 == Rtype::CNAME);
                let other = set.iter().any(|x| x.0 != Rtype::CNAME);
                if (rtype == Rtype::CNAME && other) || (rtype != Rtype::CNAME && cname) {
                    return false;
                }
                if rtype == Rtype::CNAME {
                    // A CNAME replaces the one there (§3.4.2.2).
                    set.retain(|x| x.0 != Rtype::CNAME);
                }
                let had = set.iter().any(|x| x.0 == rtype && x.2 == r.rdata && x.1 == r.ttl);
                if had {
                    return false;
                }
                // One TTL per RRset (RFC 2181 §5.2): the record added last gives it.
                for x in set.iter_mut().filter(|x| x.0 == rtype) {
                    x.1 = r.ttl;
                }
                if !set.iter().any(|x| x.0 == rtype && x.2 == r.rdata) {
                    set.push((rtype, r.ttl, r.rdata.clone()));
                }
                true
            }
            Change::DeleteRrset { owner, rtype } => {
                let rtype = Rtype::from_int(*rtype);
                if **owner == *apex && matches!(rtype, Rtype::SOA | Rtype::NS) {
                    return false;
                }
                let set = self.at(owner);
                let before = set.len();
                set.retain(|x| x.0 != rtype);
                set.len() != before
            }
            Change::DeleteRr { owner, rtype, rdata } => {
                let rtype = Rtype::from_int(*rtype);
                let is_apex = **owner == *apex;
                let set = self.at(owner);
                if is_apex && rtype == Rtype::SOA {
                    return false;
                }
                if is_apex && rtype == Rtype::NS && set.iter().filter(|x| x.0 == Rtype::NS).count() <= 1 {
                    return false;
                }
                let before = set.len();
                set.retain(|x| !(x.0 == rtype && x.2 == *rdata));
                set.len() != before
            }
        }
    }
}

/// What an applied update made.
pub struct Applied {
    /// The zone after it, its serial one more.
    pub zone: Zone,
    /// The difference, for the zone's journal (IXFR out).
    pub diff: Diff,
    /// The changes that took effect, for the log of applied updates.
    pub changes: Vec<Change>,
}

/// Why an update did not apply.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The rcode to answer with.
    Rcode(Rcode),
    /// The changes would not make a valid zone (answered SERVFAIL).
    Zone(String),
}

impl From<Rcode> for Refusal {
    fn from(r: Rcode) -> Self {
        Refusal::Rcode(r)
    }
}

/// Checks and applies `u` to `zone` for `key` (the TSIG key's name, lowercase wire).
/// `Ok(None)`: the prerequisites held but nothing changed (NOERROR, the serial stays,
/// §3.6).
pub fn apply(zone: &Zone, u: &Update, key: &[u8], grants: &Grants) -> Result<Option<Applied>, Refusal> {
    let apex = zone.apex();
    if *u.zone != *apex {
        return Err(Rcode::NOTAUTH.into());
    }
    prerequisites(zone, &u.prereqs)?;
    let changes = changes(zone, &u.updates, key, grants)?;
    apply_changes(zone, changes, None)
}

/// Applies changes already checked (a live update's, or the log's when the zone file is
/// loaded again), the serial set to one more than the zone's, or to `serial` when given
/// and newer. `None` when nothing changed.
pub fn apply_changes(zone: &Zone, changes: Vec<Change>, serial: Option<u32>) -> Result<Option<Applied>, Refusal> {
    let mut w = Working::new(zone);
    // The apex is always among the names changed: its SOA's serial does.
    w.at(zone.apex());
    let mut took = Vec::new();
    for c in changes {
        if w.apply(&c) {
            took.push(c);
        }
    }
    if took.is_empty() {
        return Ok(None);
    }
    let old_soa = zone.soa().and_then(|s| Some((s.ttl(), s.rdatas().next()?.to_vec())));
    let Some((soa_ttl, old_rdata)) = old_soa else {
        return Err(Refusal::Zone("the zone has no SOA".into()));
    };
    let next = zone.serial().wrapping_add(1);
    let serial = serial
        .filter(|s| crate::zone::refresh::serial_gt(*s, zone.serial()))
        .unwrap_or(next);
    let mut new_rdata = old_rdata.clone();
    let Some(at) = new_rdata.len().checked_sub(20) else {
        return Err(Refusal::Zone("the zone's SOA is malformed".into()));
    };
    new_rdata[at..at + 4].copy_from_slice(&serial.to_be_bytes());
    let apex: Box<[u8]> = zone.apex().into();
    let rec = |owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]| Rec {
        owner: owner.into(),
        rtype: rtype.to_int(),
        ttl,
        rdata: rdata.into(),
    };
    let (mut deleted, mut added) = (Vec::new(), Vec::new());
    let mut name_changes = Vec::new();
    for (owner, now) in &w.names {
        let mut records: Vec<(Rtype, u32, Box<[u8]>)> = Vec::new();
        if **owner == *apex {
            records.push((Rtype::SOA, soa_ttl, new_rdata.clone().into()));
        }
        let was: Vec<Rec> = zone
            .node(owner)
            .map(|n| {
                n.rrsets()
                    .flat_map(|s| {
                        s.rdatas()
                            .map(move |r| rec(owner, s.rtype(), s.ttl(), r))
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .unwrap_or_default();
        let is: Vec<Rec> = now.iter().map(|(t, ttl, r)| rec(owner, *t, *ttl, r)).collect();
        let soa = |r: &Rec| r.rtype == Rtype::SOA.to_int() && **owner == *apex;
        deleted.extend(was.iter().filter(|r| !soa(r) && !is.contains(r)).cloned());
        added.extend(is.iter().filter(|r| !soa(r) && !was.contains(r)).cloned());
        records.extend(
            now.iter()
                .filter(|(t, _, _)| !(*t == Rtype::SOA && **owner == *apex))
                .cloned(),
        );
        name_changes.push(NameChange {
            owner: owner.clone(),
            records,
        });
    }
    let new = zone
        .with_changes(&name_changes)
        .map_err(|e: ZoneError| Refusal::Zone(e.to_string()))?;
    deleted.sort();
    added.sort();
    let diff = Diff {
        from: (zone.serial(), rec(&apex, Rtype::SOA, soa_ttl, &old_rdata)),
        to: (serial, rec(&apex, Rtype::SOA, soa_ttl, &new_rdata)),
        deleted,
        added,
    };
    Ok(Some(Applied {
        zone: new,
        diff,
        changes: took,
    }))
}

/// RFC 2136 §3.2: every prerequisite holds, or the rcode that says which does not.
fn prerequisites(zone: &Zone, prereqs: &[Rr]) -> Result<(), Rcode> {
    let apex = zone.apex();
    // §3.2.3: value-dependent prerequisites, gathered per RRset and compared whole.
    type RrsetKey = (Box<[u8]>, u16);
    let mut wanted: BTreeMap<RrsetKey, Vec<Box<[u8]>>> = BTreeMap::new();
    for p in prereqs {
        if p.ttl != 0 {
            return Err(Rcode::FORMERR);
        }
        if !is_in_zone(&p.owner, apex) {
            return Err(Rcode::NOTZONE);
        }
        let node = zone.node(&p.owner).filter(|n| n.has_data());
        let set = |t: Rtype| node.as_ref().and_then(|n| n.rrset(t));
        match p.class {
            Class::ANY => {
                if !p.rdata.is_empty() {
                    return Err(Rcode::FORMERR);
                }
                // §2.4.4 name is in use; §2.4.1 RRset exists (value independent).
                if p.rtype == Rtype::ANY {
                    if node.is_none() {
                        return Err(Rcode::NXDOMAIN);
                    }
                } else if set(p.rtype).is_none() {
                    return Err(Rcode::NXRRSET);
                }
            }
            Class::NONE => {
                if !p.rdata.is_empty() {
                    return Err(Rcode::FORMERR);
                }
                // §2.4.5 name is not in use; §2.4.3 RRset does not exist.
                if p.rtype == Rtype::ANY {
                    if node.is_some() {
                        return Err(Rcode::YXDOMAIN);
                    }
                } else if set(p.rtype).is_some() {
                    return Err(Rcode::YXRRSET);
                }
            }
            Class::IN => {
                if is_meta(p.rtype) {
                    return Err(Rcode::FORMERR);
                }
                wanted
                    .entry((p.owner.clone(), p.rtype.to_int()))
                    .or_default()
                    .push(p.rdata.clone());
            }
            _ => return Err(Rcode::FORMERR),
        }
    }
    for ((owner, rtype), mut want) in wanted {
        let mut have: Vec<Box<[u8]>> = zone
            .node(&owner)
            .and_then(|n| n.rrset(Rtype::from_int(rtype)))
            .map(|s| s.rdatas().map(Into::into).collect())
            .unwrap_or_default();
        want.sort();
        want.dedup();
        have.sort();
        if want != have {
            return Err(Rcode::NXRRSET);
        }
    }
    Ok(())
}

/// RFC 2136 §3.3 and §3.4.1: the update section checked against the key's grant and the
/// rules of the section, as the changes to apply.
fn changes(zone: &Zone, updates: &[Rr], key: &[u8], grants: &Grants) -> Result<Vec<Change>, Rcode> {
    let apex = zone.apex();
    let mut out = Vec::with_capacity(updates.len());
    // §3.4.1 first (FORMERR and NOTZONE are about the message), then the grant.
    for u in updates {
        if !is_in_zone(&u.owner, apex) {
            return Err(Rcode::NOTZONE);
        }
        let ok = match u.class {
            Class::IN => !is_meta(u.rtype),
            Class::ANY => {
                u.ttl == 0
                    && u.rdata.is_empty()
                    && !matches!(u.rtype, Rtype::AXFR | Rtype::IXFR | Rtype::MAILA | Rtype::MAILB)
            }
            Class::NONE => u.ttl == 0 && !is_meta(u.rtype),
            _ => false,
        };
        if !ok {
            return Err(Rcode::FORMERR);
        }
    }
    for u in updates {
        if u.class == Class::ANY && u.rtype == Rtype::ANY {
            // §2.5.3 delete a name: of the RRsets there, those the key may delete (a key
            // granted TXT deletes the TXT, not the name's other data).
            // Kept as one deletion per granted type, so that records added earlier in the
            // same message go too (§3.4.2: in order) and a replay deletes no more.
            if !grants.types.iter().any(|t| grants.allows(key, &u.owner, *t)) {
                return Err(Rcode::REFUSED);
            }
            for t in grants.types.iter().filter(|t| grants.allows(key, &u.owner, **t)) {
                out.push(Change::DeleteRrset {
                    owner: u.owner.clone(),
                    rtype: t.to_int(),
                });
            }
            continue;
        }
        if !grants.allows(key, &u.owner, u.rtype) {
            return Err(Rcode::REFUSED);
        }
        out.push(match u.class {
            Class::IN => Change::Add(Rec {
                owner: u.owner.clone(),
                rtype: u.rtype.to_int(),
                ttl: u.ttl,
                rdata: u.rdata.clone(),
            }),
            Class::ANY => Change::DeleteRrset {
                owner: u.owner.clone(),
                rtype: u.rtype.to_int(),
            },
            _ => Change::DeleteRr {
                owner: u.owner.clone(),
                rtype: u.rtype.to_int(),
                rdata: u.rdata.clone(),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::parse_abs;
    use domain::base::rdata::UnknownRecordData;
    use domain::base::{MessageBuilder, Name, Record, Ttl};

    const ZONE: &str = "$ORIGIN example.test.\n@ 300 IN SOA ns1 admin 7 60 60 600 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\nhost 300 IN A 192.0.2.2\nhost 300 IN TXT \"keep\"\n";

    fn zone() -> Zone {
        crate::zone::zonefile::load_bytes(
            ZONE.as_bytes(),
            std::path::Path::new("t"),
            &parse_abs("example.test").unwrap(),
        )
        .unwrap()
    }

    fn key(n: &str) -> Box<[u8]> {
        NameKey::of(&parse_abs(n).unwrap()).as_slice().into()
    }

    type R<'a> = (&'a str, Class, Rtype, u32, &'a [u8]);

    fn message(zone: &str, prereqs: &[R<'_>], updates: &[R<'_>]) -> Vec<u8> {
        let mut b = MessageBuilder::new_vec();
        b.header_mut().set_opcode(Opcode::UPDATE);
        let mut q = b.question();
        q.push((Name::<Vec<u8>>::from_str(zone).unwrap(), Rtype::SOA, Class::IN))
            .unwrap();
        let rec = |(o, c, t, ttl, d): &R<'_>| {
            Record::new(
                Name::<Vec<u8>>::from_str(o).unwrap(),
                *c,
                Ttl::from_secs(*ttl),
                UnknownRecordData::from_octets(*t, d.to_vec()).unwrap(),
            )
        };
        let mut a = q.answer();
        for p in prereqs {
            a.push(rec(p)).unwrap();
        }
        let mut n = a.authority();
        for u in updates {
            n.push(rec(u)).unwrap();
        }
        n.finish()
    }
    use std::str::FromStr;

    fn grants(names: Vec<GrantName>) -> Grants {
        Grants {
            types: vec![Rtype::TXT],
            keys: vec![(key("k1"), names)],
        }
    }

    fn txt(z: &Zone, name: &str) -> Vec<Vec<u8>> {
        z.node(&key(name))
            .and_then(|n| n.rrset(Rtype::TXT))
            .map(|s| s.rdatas().map(|r| r.to_vec()).collect())
            .unwrap_or_default()
    }

    const ACME: &str = "_acme-challenge.host.example.test.";

    #[test]
    fn lego_deletes_the_rrset_and_adds_certbot_adds_and_deletes_one() {
        let z = zone();
        let g = grants(vec![]);
        // lego: delete the RRset, add the value.
        let m = message(
            "example.test.",
            &[],
            &[
                (ACME, Class::ANY, Rtype::TXT, 0, b""),
                (ACME, Class::IN, Rtype::TXT, 120, b"\x05token"),
            ],
        );
        let a = apply(&z, &parse(&m).unwrap(), &key("k1"), &g).unwrap().unwrap();
        assert_eq!(txt(&a.zone, ACME), vec![b"\x05token".to_vec()]);
        assert_eq!(a.zone.serial(), 8, "the serial grows by one (§3.6)");
        assert_eq!(
            (a.diff.from.0, a.diff.to.0, a.diff.added.len(), a.diff.deleted.len()),
            (7, 8, 1, 0)
        );
        // certbot: a second value beside it, then deletes one.
        let m = message(
            "example.test.",
            &[],
            &[(ACME, Class::IN, Rtype::TXT, 120, b"\x06token2")],
        );
        let b = apply(&a.zone, &parse(&m).unwrap(), &key("k1"), &g).unwrap().unwrap();
        assert_eq!(txt(&b.zone, ACME).len(), 2);
        let m = message(
            "example.test.",
            &[],
            &[(ACME, Class::NONE, Rtype::TXT, 0, b"\x05token")],
        );
        let c = apply(&b.zone, &parse(&m).unwrap(), &key("k1"), &g).unwrap().unwrap();
        assert_eq!(txt(&c.zone, ACME), vec![b"\x06token2".to_vec()]);
        // acme.sh: deletes the whole name; the name's other data stays out of reach.
        let m = message("example.test.", &[], &[(ACME, Class::ANY, Rtype::ANY, 0, b"")]);
        let d = apply(&c.zone, &parse(&m).unwrap(), &key("k1"), &g).unwrap().unwrap();
        assert!(txt(&d.zone, ACME).is_empty());
        assert_eq!(d.zone.serial(), 11);
        // Nothing left to delete: NOERROR, no new serial.
        assert!(apply(&d.zone, &parse(&m).unwrap(), &key("k1"), &g).unwrap().is_none());
        // The other names are untouched.
        assert_eq!(txt(&d.zone, "host.example.test"), vec![b"\x04keep".to_vec()]);
    }

    #[test]
    fn grants_refuse_other_names_types_and_keys_whole() {
        let z = zone();
        let g = grants(vec![]);
        let refused = |updates: &[R<'_>], k: &str| {
            apply(
                &z,
                &parse(&message("example.test.", &[], updates)).unwrap(),
                &key(k),
                &g,
            )
            .err()
        };
        let add = (ACME, Class::IN, Rtype::TXT, 60, b"\x01a".as_slice());
        assert_eq!(
            refused(&[add], "k2"),
            Some(Refusal::Rcode(Rcode::REFUSED)),
            "unknown key"
        );
        let other = ("host.example.test.", Class::IN, Rtype::TXT, 60, b"\x01a".as_slice());
        // One change out of the grant refuses the whole message: nothing half-applied.
        assert_eq!(refused(&[add, other], "k1"), Some(Refusal::Rcode(Rcode::REFUSED)));
        let a = (ACME, Class::IN, Rtype::A, 60, [192, 0, 2, 9].as_slice());
        assert_eq!(
            refused(&[a], "k1"),
            Some(Refusal::Rcode(Rcode::REFUSED)),
            "a type not allowed"
        );
        // Named grants: exact and below.
        let g = grants(vec![
            GrantName::Exact(key("host.example.test")),
            GrantName::Below(key("dyn.example.test")),
        ]);
        let ok = |o: &str| g.allows(&key("k1"), &key(o), Rtype::TXT);
        assert!(ok("host.example.test") && ok("a.dyn.example.test") && ok("b.a.dyn.example.test"));
        assert!(!ok("dyn.example.test") && !ok("x.host.example.test") && !ok(ACME));
        // The default grant is _acme-challenge names only.
        let d = grants(vec![]);
        assert!(d.allows(&key("k1"), &key("_acme-challenge.example.test"), Rtype::TXT));
        assert!(!d.allows(&key("k1"), &key("x._acme-challenge.example.test"), Rtype::TXT));
    }

    #[test]
    fn prerequisites_say_which_one_failed() {
        let z = zone();
        let g = grants(vec![]);
        let add = (ACME, Class::IN, Rtype::TXT, 60, b"\x01a".as_slice());
        let with = |p: R<'_>| {
            apply(
                &z,
                &parse(&message("example.test.", &[p], &[add])).unwrap(),
                &key("k1"),
                &g,
            )
        };
        let rcode = |p: R<'_>| match with(p) {
            Err(Refusal::Rcode(r)) => Some(r),
            Err(e) => panic!("{e:?}"),
            Ok(_) => None,
        };
        let host = "host.example.test.";
        assert_eq!(rcode((host, Class::ANY, Rtype::ANY, 0, b"")), None, "name in use");
        assert_eq!(
            rcode(("nx.example.test.", Class::ANY, Rtype::ANY, 0, b"")),
            Some(Rcode::NXDOMAIN)
        );
        assert_eq!(rcode((host, Class::ANY, Rtype::MX, 0, b"")), Some(Rcode::NXRRSET));
        assert_eq!(rcode((host, Class::NONE, Rtype::ANY, 0, b"")), Some(Rcode::YXDOMAIN));
        assert_eq!(rcode((host, Class::NONE, Rtype::A, 0, b"")), Some(Rcode::YXRRSET));
        assert_eq!(rcode((host, Class::NONE, Rtype::MX, 0, b"")), None);
        assert_eq!(
            rcode((host, Class::IN, Rtype::A, 0, &[192, 0, 2, 2])),
            None,
            "value-dependent, equal"
        );
        assert_eq!(
            rcode((host, Class::IN, Rtype::A, 0, &[192, 0, 2, 3])),
            Some(Rcode::NXRRSET)
        );
        assert_eq!(
            rcode((host, Class::ANY, Rtype::A, 5, b"")),
            Some(Rcode::FORMERR),
            "TTL not 0"
        );
        assert_eq!(
            rcode(("a.other.test.", Class::ANY, Rtype::ANY, 0, b"")),
            Some(Rcode::NOTZONE)
        );
        // certbot asks the SOA first; the zone section must be the zone.
        let m = message("host.example.test.", &[], &[add]);
        assert_eq!(
            apply(&z, &parse(&m).unwrap(), &key("k1"), &g).err(),
            Some(Refusal::Rcode(Rcode::NOTAUTH))
        );
    }

    #[test]
    fn malformed_updates_are_formerr() {
        let z = zone();
        let g = grants(vec![]);
        let bad = |u: R<'_>| {
            apply(
                &z,
                &parse(&message("example.test.", &[], &[u])).unwrap(),
                &key("k1"),
                &g,
            )
            .err()
        };
        assert_eq!(
            bad((ACME, Class::IN, Rtype::ANY, 0, b"")),
            Some(Refusal::Rcode(Rcode::FORMERR))
        );
        assert_eq!(
            bad((ACME, Class::ANY, Rtype::TXT, 60, b"")),
            Some(Refusal::Rcode(Rcode::FORMERR))
        );
        assert_eq!(
            bad((ACME, Class::CH, Rtype::TXT, 0, b"")),
            Some(Refusal::Rcode(Rcode::FORMERR))
        );
        assert_eq!(
            bad(("x.other.test.", Class::IN, Rtype::TXT, 0, b"\x01a")),
            Some(Refusal::Rcode(Rcode::NOTZONE))
        );
        // Not one zone of type SOA.
        let mut m = message("example.test.", &[], &[]);
        m[5] = 2;
        assert_eq!(parse(&m).err(), Some(Rcode::FORMERR));
        let mut m = message("example.test.", &[], &[]);
        let at = m.len() - 4;
        m[at + 1] = 1;
        assert_eq!(parse(&m).err(), Some(Rcode::FORMERR), "zone type A");
        assert!(parse(&m[..m.len() - 3]).is_err());
    }

    #[test]
    fn the_log_replays_over_the_zone_file() {
        let z = zone();
        let g = grants(vec![]);
        let m = message("example.test.", &[], &[(ACME, Class::IN, Rtype::TXT, 60, b"\x01a")]);
        let a = apply(&z, &parse(&m).unwrap(), &key("k1"), &g).unwrap().unwrap();
        let entry = super::super::log::Entry {
            serial: a.zone.serial(),
            changes: a.changes.clone(),
        };
        // The file loaded again: the logged changes and serial come back.
        let again = apply_changes(&zone(), entry.changes.clone(), Some(entry.serial))
            .unwrap()
            .unwrap();
        assert_eq!(txt(&again.zone, ACME), vec![b"\x01a".to_vec()]);
        assert_eq!(again.zone.serial(), 8);
        // Compacted, the same.
        let c = super::super::log::compact(&a.zone, &[entry]);
        let folded = apply_changes(&zone(), c.changes, Some(c.serial)).unwrap().unwrap();
        assert_eq!(txt(&folded.zone, ACME), vec![b"\x01a".to_vec()]);
    }
}
