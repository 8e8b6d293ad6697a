//! An incoming AXFR (RFC 5936) as the messages of its TCP stream arrive: each is checked
//! (a reply to our query, NOERROR, records inside the zone, class IN) and its records are
//! added to a new zone, which is complete at the second SOA (§2.2). No I/O here: the
//! caller reads the stream and feeds the messages; a fuzz target feeds arbitrary ones.

use domain::base::Message;
use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::name::ParsedName;
use domain::base::rdata::ComposeRecordData;
use domain::rdata::AllRecordData;

use super::name::{NameKey, is_in_zone};
use super::store::{NameChange, Zone, ZoneBuilder, ZoneError, soa_fields};

/// Most records a transfer may bring (a 1M-name zone has a few million).
pub const MAX_RECORDS: usize = 20_000_000;

/// Why a transfer failed; the zone being served stays.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransferError {
    /// A message that does not parse.
    #[error("a message of the transfer does not parse")]
    Malformed,
    /// Not a reply to our query (QR, ID or opcode).
    #[error("a message that is not the reply to the transfer query")]
    NotOurs,
    /// The primary refused or failed (its rcode).
    #[error("the primary answered {0}")]
    Rcode(Rcode),
    /// TC over TCP means nothing good (RFC 5936 §2.2.1).
    #[error("a truncated message")]
    Truncated,
    /// The question is not the zone's AXFR.
    #[error("the reply is for another question")]
    Question,
    /// The first record is not the zone's SOA.
    #[error("the transfer does not start with the zone's SOA")]
    NoSoa,
    /// A record outside the zone (RFC 5936 §3.5: not to be served).
    #[error("record {0} is outside the zone")]
    Outside(String),
    /// A class other than IN.
    #[error("record {0} is not of class IN")]
    Class(String),
    /// Records after the closing SOA, or messages after it.
    #[error("records after the closing SOA")]
    AfterEnd,
    /// The closing SOA's serial differs from the opening one (the zone changed mid-way).
    #[error("the closing SOA has serial {closing}, the opening one {opening}")]
    Serial {
        /// The first SOA's serial.
        opening: u32,
        /// The last one's.
        closing: u32,
    },
    /// The stream ended before the closing SOA.
    #[error("the transfer stopped before its closing SOA")]
    Incomplete,
    /// More records than [`MAX_RECORDS`].
    #[error("more than {MAX_RECORDS} records")]
    TooLarge,
    /// The records do not make a zone.
    #[error("the records do not make a valid zone: {0}")]
    Zone(String),
}

/// `msg` as a message of the reply to our query `id`: QR, our ID, QUERY, NOERROR, no TC.
fn reply_to(msg: &[u8], id: u16) -> Result<Message<&[u8]>, TransferError> {
    let m = Message::from_octets(msg).map_err(|_| TransferError::Malformed)?;
    let h = m.header();
    if !h.qr() || h.id() != id || h.opcode() != Opcode::QUERY {
        return Err(TransferError::NotOurs);
    }
    if h.rcode() != Rcode::NOERROR {
        return Err(TransferError::Rcode(h.rcode()));
    }
    // TC over TCP means nothing good (RFC 5936 §2.2.1).
    if h.tc() {
        return Err(TransferError::Truncated);
    }
    Ok(m)
}

/// Each answer record of `m`: its owner (lowercase wire), type, TTL and rdata with its
/// names uncompressed; class IN only.
fn each_record(
    m: &Message<&[u8]>,
    mut f: impl FnMut(&[u8], Rtype, u32, Vec<u8>) -> Result<(), TransferError>,
) -> Result<(), TransferError> {
    for rr in m.answer().map_err(|_| TransferError::Malformed)? {
        let rec = rr
            .map_err(|_| TransferError::Malformed)?
            .into_record::<AllRecordData<_, ParsedName<_>>>()
            .map_err(|_| TransferError::Malformed)?
            .ok_or(TransferError::Malformed)?;
        let owner = NameKey::of(rec.owner());
        if rec.class() != Class::IN {
            return Err(TransferError::Class(crate::zone::name::display(owner.as_slice())));
        }
        let mut rdata = Vec::new();
        rec.data()
            .compose_rdata(&mut rdata)
            .map_err(|_| TransferError::Malformed)?;
        f(owner.as_slice(), rec.rtype(), rec.ttl().as_secs(), rdata)?;
    }
    Ok(())
}

/// A transfer in progress.
pub struct AxfrIn {
    apex: Box<[u8]>,
    id: u16,
    builder: ZoneBuilder,
    /// The opening SOA's serial, once seen.
    serial: Option<u32>,
    records: usize,
    done: bool,
}

impl AxfrIn {
    /// A transfer of the zone `apex` (lowercase wire) asked with message ID `id`.
    pub fn new(apex: &[u8], id: u16) -> Self {
        AxfrIn {
            apex: apex.into(),
            id,
            builder: ZoneBuilder::new(apex),
            serial: None,
            records: 0,
            done: false,
        }
    }

    /// Whether the closing SOA arrived.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes one message of the stream.
    pub fn feed(&mut self, msg: &[u8]) -> Result<(), TransferError> {
        if self.done {
            return Err(TransferError::AfterEnd);
        }
        let m = reply_to(msg, self.id)?;
        // The first message echoes the question; later ones may (RFC 5936 §2.2.1).
        for q in m.question() {
            let q = q.map_err(|_| TransferError::Malformed)?;
            // An IXFR answered AXFR-style keeps its IXFR question.
            if NameKey::of(&q.qname()).as_slice() != &*self.apex || !matches!(q.qtype(), Rtype::AXFR | Rtype::IXFR) {
                return Err(TransferError::Question);
            }
        }
        each_record(&m, |owner, rtype, ttl, rdata| self.take(owner, rtype, ttl, &rdata))
    }

    /// Takes one record (owner lowercase wire, rdata uncompressed) of the stream.
    fn take(&mut self, owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]) -> Result<(), TransferError> {
        if self.done {
            return Err(TransferError::AfterEnd);
        }
        if !is_in_zone(owner, &self.apex) {
            return Err(TransferError::Outside(crate::zone::name::display(owner)));
        }
        let apex_soa = rtype == Rtype::SOA && owner == &*self.apex;
        match self.serial {
            None if apex_soa => {
                let (serial, _) = soa_fields(rdata).ok_or(TransferError::Malformed)?;
                self.serial = Some(serial);
            }
            None => return Err(TransferError::NoSoa),
            Some(opening) if apex_soa => {
                let (closing, _) = soa_fields(rdata).ok_or(TransferError::Malformed)?;
                if closing != opening {
                    return Err(TransferError::Serial { opening, closing });
                }
                self.done = true;
                return Ok(());
            }
            Some(_) => {}
        }
        self.records += 1;
        if self.records > MAX_RECORDS {
            return Err(TransferError::TooLarge);
        }
        self.builder.add(owner, rtype, ttl, rdata);
        Ok(())
    }

    /// The zone, once the closing SOA arrived.
    pub fn finish(self) -> Result<Zone, TransferError> {
        if !self.done {
            return Err(TransferError::Incomplete);
        }
        let (zone, _notes) = self
            .builder
            .build()
            .map_err(|e: ZoneError| TransferError::Zone(e.to_string()))?;
        Ok(zone)
    }
}

/// A record's identity for IXFR: owner (lowercase wire), type, rdata (RFC 1995 §4: TTLs do
/// not tell records apart).
type RecordKey = (Box<[u8]>, Rtype, Box<[u8]>);

/// What an IXFR reply (RFC 1995 §4) turned out to be.
pub enum IxfrResult {
    /// The primary has nothing newer (its reply is our SOA alone).
    Current,
    /// The zone after the differences, and the differences (for our own journal).
    Applied(Zone, crate::zone::diff::Diff),
    /// The primary sent the whole zone instead (AXFR-style).
    Whole(Zone),
}

/// Where an incoming IXFR stands.
enum IxfrStage {
    /// Nothing read yet.
    Start,
    /// The first SOA (the new serial) read; the second record tells which form follows.
    First(u32, Vec<u8>),
    /// Differences: deleting (after an old SOA) or adding (after a new SOA).
    Diff { deleting: bool },
    /// The whole zone, AXFR-style.
    Whole(Box<AxfrIn>),
    /// The closing SOA read.
    Done,
}

/// An incoming IXFR: our zone and the differences as they arrive. Deletions must match
/// records we have (RFC 1995 §4: otherwise the copies differ and only an AXFR can tell);
/// the result is a new zone built from ours with the changes, so queries keep the old one
/// until it is whole.
pub struct IxfrIn {
    apex: Box<[u8]>,
    id: u16,
    ours: u32,
    stage: IxfrStage,
    /// Records of `base` the differences deleted (or replaced), and the owners they are at:
    /// only names in `touched` are checked against `deleted` when the new zone is built.
    deleted: std::collections::HashSet<RecordKey>,
    touched: std::collections::HashSet<Box<[u8]>>,
    /// Records the differences added, with their TTLs.
    added: std::collections::HashMap<RecordKey, u32>,
    base: std::sync::Arc<Zone>,
    /// The newest SOA seen (the zone's SOA once done): serial, rdata, TTL.
    new_soa: Option<(u32, Vec<u8>, u32)>,
    /// The serial the reply opened with: the version it ends at.
    target: Option<u32>,
}

impl IxfrIn {
    /// An IXFR of `base` (our zone) asked with ID `id`.
    pub fn new(base: std::sync::Arc<Zone>, id: u16) -> Self {
        IxfrIn {
            apex: base.apex().into(),
            id,
            ours: base.serial(),
            stage: IxfrStage::Start,
            deleted: Default::default(),
            touched: Default::default(),
            added: Default::default(),
            base,
            new_soa: None,
            target: None,
        }
    }

    /// Whether the reply is complete.
    pub fn is_done(&self) -> bool {
        match &self.stage {
            IxfrStage::Done => true,
            IxfrStage::Whole(a) => a.is_done(),
            // A lone SOA no newer than ours: nothing follows (§4).
            IxfrStage::First(serial, _) => !crate::zone::refresh::serial_gt(*serial, self.ours),
            _ => false,
        }
    }

    /// Takes one message of the reply.
    pub fn feed(&mut self, msg: &[u8]) -> Result<(), TransferError> {
        if let IxfrStage::Whole(a) = &mut self.stage {
            return a.feed(msg);
        }
        if matches!(self.stage, IxfrStage::Done) {
            return Err(TransferError::AfterEnd);
        }
        let m = reply_to(msg, self.id)?;
        each_record(&m, |owner, rtype, ttl, rdata| {
            if !is_in_zone(owner, &self.apex) {
                return Err(TransferError::Outside(crate::zone::name::display(owner)));
            }
            let soa = (rtype == Rtype::SOA && owner == &*self.apex)
                .then(|| soa_fields(&rdata).map(|(s, _)| s))
                .flatten();
            self.step(owner, rtype, ttl, rdata, soa)
        })
    }

    fn step(
        &mut self,
        owner: &[u8],
        rtype: Rtype,
        ttl: u32,
        rdata: Vec<u8>,
        soa: Option<u32>,
    ) -> Result<(), TransferError> {
        let stage = std::mem::replace(&mut self.stage, IxfrStage::Done);
        self.stage = match stage {
            IxfrStage::Start => {
                let serial = soa.ok_or(TransferError::NoSoa)?;
                self.new_soa = Some((serial, rdata.clone(), ttl));
                self.target = Some(serial);
                IxfrStage::First(serial, rdata)
            }
            IxfrStage::First(_, first) => {
                if soa == Some(self.ours) {
                    // Incremental: this SOA opens the first deletions.
                    self.remove(owner, rtype, &rdata)?;
                    IxfrStage::Diff { deleting: true }
                } else {
                    // AXFR-style: the zone, the first SOA already read.
                    let mut a = AxfrIn::new(&self.apex, self.id);
                    let apex = self.apex.clone();
                    a.take(&apex, Rtype::SOA, self.new_soa.as_ref().map_or(0, |s| s.2), &first)?;
                    a.take(owner, rtype, ttl, &rdata)?;
                    IxfrStage::Whole(Box::new(a))
                }
            }
            IxfrStage::Diff { deleting } => match (soa, deleting) {
                // The SOA ending deletions is the version they lead to: additions follow.
                (Some(s), true) => {
                    self.new_soa = Some((s, rdata, ttl));
                    IxfrStage::Diff { deleting: false }
                }
                (Some(s), false) if self.new_soa.as_ref().is_some_and(|n| n.0 == s) && Some(s) == self.target => {
                    IxfrStage::Done
                }
                (Some(_), false) => {
                    // The old SOA of the next difference: its deletions follow.
                    self.remove(owner, rtype, &rdata)?;
                    IxfrStage::Diff { deleting: true }
                }
                (None, true) => {
                    self.remove(owner, rtype, &rdata)?;
                    IxfrStage::Diff { deleting: true }
                }
                (None, false) => {
                    if self.added.len() >= MAX_RECORDS {
                        return Err(TransferError::TooLarge);
                    }
                    let key: RecordKey = (owner.into(), rtype, rdata.into());
                    // An addition of a record we have replaces it (its TTL may differ).
                    if self.base_has(&key) {
                        self.touched.insert(key.0.clone());
                        self.deleted.insert(key.clone());
                    }
                    self.added.insert(key, ttl);
                    IxfrStage::Diff { deleting: false }
                }
            },
            // The rest of the message that turned out AXFR-style.
            IxfrStage::Whole(mut a) => {
                a.take(owner, rtype, ttl, &rdata)?;
                IxfrStage::Whole(a)
            }
            IxfrStage::Done => return Err(TransferError::AfterEnd),
        };
        Ok(())
    }

    /// Whether `base` has the record.
    fn base_has(&self, (owner, rtype, rdata): &RecordKey) -> bool {
        self.base
            .node(owner)
            .and_then(|n| n.rrset(*rtype))
            .is_some_and(|set| set.rdatas().any(|d| d == &**rdata))
    }

    fn remove(&mut self, owner: &[u8], rtype: Rtype, rdata: &[u8]) -> Result<(), TransferError> {
        if rtype == Rtype::SOA {
            // The old SOA leaves with its version; the newest one is the zone's.
            return Ok(());
        }
        let key: RecordKey = (owner.into(), rtype, rdata.into());
        if self.added.remove(&key).is_some() {
            return Ok(());
        }
        if self.base_has(&key) && !self.deleted.contains(&key) {
            self.touched.insert(key.0.clone());
            self.deleted.insert(key);
            return Ok(());
        }
        Err(TransferError::Zone(format!(
            "a deletion of a record we do not have at {}",
            crate::zone::name::display(owner)
        )))
    }

    /// The result, once the reply is complete.
    pub fn finish(self) -> Result<IxfrResult, TransferError> {
        match self.stage {
            IxfrStage::First(serial, _) if !crate::zone::refresh::serial_gt(serial, self.ours) => {
                Ok(IxfrResult::Current)
            }
            IxfrStage::Whole(a) => a.finish().map(IxfrResult::Whole),
            IxfrStage::Done => {
                let diff = self.diff().ok_or(TransferError::NoSoa)?;
                // The names changed, on top of our zone's tables; or, when that cannot carry
                // the change, the zone built whole.
                let changes = self.changes();
                match self.base.patched(&changes) {
                    Ok(Some(zone)) => return Ok(IxfrResult::Applied(zone, diff)),
                    Ok(None) => {}
                    Err(e) => return Err(TransferError::Zone(e.to_string())),
                }
                let (_, soa, soa_ttl) = self.new_soa.ok_or(TransferError::NoSoa)?;
                let mut b = ZoneBuilder::new(&self.apex);
                let mut add = |owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]| b.add(owner, rtype, ttl, rdata);
                add(&self.apex, Rtype::SOA, soa_ttl, &soa);
                // Our zone's records but those deleted, then those added: a pass over the
                // zone, with the small change sets consulted only at the names they touch.
                for name in self.base.names() {
                    let Some(node) = self.base.node(name) else { continue };
                    let touched = self.touched.contains(name);
                    for set in node.rrsets() {
                        if set.rtype() == Rtype::SOA && name == &*self.apex {
                            continue;
                        }
                        for rdata in set.rdatas() {
                            if touched && self.deleted.contains(&(name.into(), set.rtype(), rdata.into())) {
                                continue;
                            }
                            add(name, set.rtype(), set.ttl(), rdata);
                        }
                    }
                }
                for ((owner, rtype, rdata), ttl) in &self.added {
                    add(owner, *rtype, *ttl, rdata);
                }
                let (zone, _) = b.build().map_err(|e| TransferError::Zone(e.to_string()))?;
                Ok(IxfrResult::Applied(zone, diff))
            }
            _ => Err(TransferError::Incomplete),
        }
    }

    /// Every changed name's records after the differences: ours but those deleted, then
    /// those added; the apex with the new SOA first.
    fn changes(&self) -> Vec<NameChange> {
        let mut owners: Vec<&[u8]> = self.touched.iter().map(|o| &**o).collect();
        owners.extend(self.added.keys().map(|k| &*k.0));
        owners.push(&self.apex);
        owners.sort();
        owners.dedup();
        let mut added: Vec<(&RecordKey, u32)> = self.added.iter().map(|(k, t)| (k, *t)).collect();
        added.sort();
        owners
            .into_iter()
            .map(|owner| {
                let mut records = Vec::new();
                if owner == &*self.apex {
                    if let Some((_, soa, ttl)) = &self.new_soa {
                        records.push((Rtype::SOA, *ttl, soa.as_slice().into()));
                    }
                }
                if let Some(node) = self.base.node(owner) {
                    for set in node.rrsets() {
                        if set.rtype() == Rtype::SOA && owner == &*self.apex {
                            continue;
                        }
                        for rdata in set.rdatas() {
                            if !self.deleted.contains(&(owner.into(), set.rtype(), rdata.into())) {
                                records.push((set.rtype(), set.ttl(), rdata.into()));
                            }
                        }
                    }
                }
                for ((_, rtype, rdata), ttl) in added.iter().filter(|(k, _)| &*k.0 == owner) {
                    records.push((*rtype, *ttl, rdata.clone()));
                }
                NameChange {
                    owner: owner.into(),
                    records,
                }
            })
            .collect()
    }

    /// The differences as our journal keeps them: our SOA and what went, the new SOA and
    /// what came.
    fn diff(&self) -> Option<crate::zone::diff::Diff> {
        use crate::zone::diff::{Diff, Rec};
        let old = self.base.soa()?;
        let (serial, soa, ttl) = self.new_soa.as_ref()?;
        let rec = |owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]| Rec {
            owner: owner.into(),
            rtype: rtype.to_int(),
            ttl,
            rdata: rdata.into(),
        };
        let ttl_of = |(owner, rtype, _): &RecordKey| {
            self.base
                .node(owner)
                .and_then(|n| n.rrset(*rtype))
                .map_or(0, |s| s.ttl())
        };
        let mut deleted: Vec<Rec> = self.deleted.iter().map(|k| rec(&k.0, k.1, ttl_of(k), &k.2)).collect();
        let mut added: Vec<Rec> = self.added.iter().map(|(k, t)| rec(&k.0, k.1, *t, &k.2)).collect();
        deleted.sort();
        added.sort();
        Some(Diff {
            from: (self.ours, rec(&self.apex, Rtype::SOA, old.ttl(), old.rdatas().next()?)),
            to: (*serial, rec(&self.apex, Rtype::SOA, *ttl, soa)),
            deleted,
            added,
        })
    }
}

/// Writes `zone` in presentation form, one record a line, the apex SOA first: the copy a
/// secondary keeps on disk.
pub fn write_zone(zone: &Zone, w: &mut dyn std::io::Write) -> std::io::Result<()> {
    let apex = zone.apex();
    if let Some(soa) = zone.soa() {
        for rdata in soa.rdatas() {
            w.write_all(record_text(apex, Rtype::SOA, soa.ttl(), rdata).as_bytes())?;
        }
    }
    // In the index's order: the file is read back whole, in any order.
    let names = zone.names();
    for name in names {
        let Some(node) = zone.node(name) else { continue };
        for set in node.rrsets() {
            if set.rtype() == Rtype::SOA && name == apex {
                continue;
            }
            for rdata in set.rdatas() {
                w.write_all(record_text(name, set.rtype(), set.ttl(), rdata).as_bytes())?;
            }
        }
    }
    Ok(())
}

/// One record as a zone file line (the rdata in its type's presentation form, or RFC 3597's
/// generic one when it does not parse).
pub fn record_text(owner: &[u8], rtype: Rtype, ttl: u32, rdata: &[u8]) -> String {
    use domain::base::rdata::ParseRecordData;
    let mut p = domain::dep::octseq::Parser::from_ref(rdata);
    let data = match AllRecordData::<&[u8], ParsedName<&[u8]>>::parse_rdata(rtype, &mut p) {
        Ok(Some(d)) if p.remaining() == 0 => d.to_string(),
        _ => format!(
            "\\# {} {}",
            rdata.len(),
            rdata.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    };
    format!("{} {ttl} IN {rtype} {data}\n", crate::zone::name::display(owner))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply message with `id` holding `records` (presentation form) in its answer.
    fn reply(id: u16, question: bool, records: &[&str]) -> Vec<u8> {
        use domain::base::message_builder::MessageBuilder;
        let origin = domain::base::Name::root_bytes();
        let mut b = MessageBuilder::new_vec();
        b.header_mut().set_id(id);
        b.header_mut().set_qr(true);
        let mut q = b.question();
        if question {
            q.push((crate::zone::name::parse_abs("example.test").unwrap(), Rtype::AXFR))
                .unwrap();
        }
        let mut a = q.answer();
        for r in records {
            let p = crate::zone::zonefile::parse_record(r, &origin).unwrap();
            let owner = crate::zone::name::from_wire(&p.owner);
            let data = domain::base::rdata::UnknownRecordData::from_octets(p.rtype, p.rdata.clone()).unwrap();
            a.push((owner, p.class, p.ttl, data)).unwrap();
        }
        a.finish()
    }

    const SOA: &str = "example.test. 300 IN SOA ns.example.test. admin.example.test. 7 3600 600 86400 60";

    #[test]
    fn a_transfer_in_two_messages_makes_the_zone() {
        let mut t = AxfrIn::new(
            NameKey::of(&crate::zone::name::parse_abs("example.test").unwrap()).as_slice(),
            9,
        );
        t.feed(&reply(
            9,
            true,
            &[
                SOA,
                "example.test. 300 IN NS ns.example.test.",
                "ns.example.test. 300 IN A 192.0.2.1",
            ],
        ))
        .unwrap();
        assert!(!t.is_done());
        t.feed(&reply(9, false, &["www.example.test. 60 IN A 192.0.2.2", SOA]))
            .unwrap();
        assert!(t.is_done());
        let zone = t.finish().unwrap();
        let text = text_of(&zone);
        assert_eq!(zone.serial(), 7);
        assert_eq!(zone.record_count(), 4);
        assert!(
            text.starts_with("example.test. 300 IN SOA ns.example.test. admin.example.test. 7 3600 600 86400 60\n"),
            "{text}"
        );
        assert!(text.contains("www.example.test. 60 IN A 192.0.2.2\n"), "{text}");
    }

    #[test]
    fn bad_streams_are_refused() {
        let apex = NameKey::of(&crate::zone::name::parse_abs("example.test").unwrap())
            .as_slice()
            .to_vec();
        let case = |msgs: Vec<Vec<u8>>| {
            let mut t = AxfrIn::new(&apex, 9);
            for m in msgs {
                t.feed(&m)?;
            }
            t.finish().map(|_| ())
        };
        let a = "www.example.test. 60 IN A 192.0.2.2";
        assert_eq!(case(vec![reply(8, true, &[SOA, a, SOA])]), Err(TransferError::NotOurs));
        assert_eq!(case(vec![reply(9, true, &[a, SOA])]), Err(TransferError::NoSoa));
        assert_eq!(case(vec![reply(9, true, &[SOA, a])]), Err(TransferError::Incomplete));
        assert!(matches!(
            case(vec![reply(9, true, &[SOA, "www.other.test. 60 IN A 192.0.2.2", SOA])]),
            Err(TransferError::Outside(_))
        ));
        assert_eq!(case(vec![reply(9, true, &[SOA, SOA, a])]), Err(TransferError::AfterEnd));
        assert_eq!(
            case(vec![
                reply(9, true, &[SOA]),
                reply(9, false, &[SOA.replace(" 7 ", " 8 ").as_str()])
            ]),
            Err(TransferError::Serial { opening: 7, closing: 8 })
        );
        let mut refused = reply(9, true, &[]);
        refused[3] |= Rcode::REFUSED.to_int();
        assert_eq!(case(vec![refused]), Err(TransferError::Rcode(Rcode::REFUSED)));
        assert_eq!(case(vec![vec![1, 2, 3]]), Err(TransferError::Malformed));
    }

    fn text_of(z: &Zone) -> String {
        let mut out = Vec::new();
        write_zone(z, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn base() -> std::sync::Arc<Zone> {
        let text = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\n";
        let origin = crate::zone::name::parse_abs("example.test").unwrap();
        std::sync::Arc::new(
            crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap(),
        )
    }

    fn soa(serial: u32) -> String {
        format!("example.test. 300 IN SOA ns.example.test. admin.example.test. {serial} 3600 600 86400 60")
    }

    fn ixfr(msgs: &[Vec<u8>]) -> Result<IxfrResult, TransferError> {
        let mut t = IxfrIn::new(base(), 9);
        for m in msgs {
            t.feed(m)?;
        }
        assert!(t.is_done());
        t.finish()
    }

    #[test]
    fn ixfr_differences_apply_in_order() {
        let (s1, s2, s3) = (soa(1), soa(2), soa(3));
        let w10 = "www.example.test. 300 IN A 192.0.2.10";
        let w20 = "www.example.test. 300 IN A 192.0.2.20";
        let w30 = "www.example.test. 300 IN A 192.0.2.30";
        let new = "new.example.test. 60 IN TXT \"hello\"";
        let msgs = [
            reply(9, false, &[&s3, &s1, w10, &s2, w20]),
            reply(9, false, &[&s2, w20, &s3, w30, new, &s3]),
        ];
        let Ok(IxfrResult::Applied(z, diff)) = ixfr(&msgs) else {
            panic!("not applied")
        };
        let text = text_of(&z);
        assert_eq!((z.serial(), z.record_count(), z.name_count()), (3, 5, 4));
        // The differences from 1 to 3, for our own journal: the .10 went, .30 and the TXT came.
        assert_eq!(
            (diff.from.0, diff.to.0, diff.deleted.len(), diff.added.len()),
            (1, 3, 1, 2)
        );
        assert!(
            text.contains("www.example.test. 300 IN A 192.0.2.30\n") && !text.contains("192.0.2.10"),
            "{text}"
        );
        assert!(text.contains("new.example.test. 60 IN TXT \"hello\""), "{text}");
        // Nothing newer: our SOA alone.
        assert!(matches!(ixfr(&[reply(9, false, &[&s1])]), Ok(IxfrResult::Current)));
        // AXFR-style: the whole zone after the first SOA.
        let whole = ixfr(&[reply(
            9,
            false,
            &[
                &s3,
                "example.test. 300 IN NS ns.example.test.",
                "ns.example.test. 300 IN A 192.0.2.1",
                &s3,
            ],
        )]);
        assert!(
            matches!(whole, Ok(IxfrResult::Whole(ref z)) if z.serial() == 3 && z.record_count() == 3),
            "{:?}",
            whole.as_ref().err()
        );
        // A deletion of a record we do not have: the copies differ.
        let mut t = IxfrIn::new(base(), 9);
        let bad = t.feed(&reply(9, false, &[&s2, &s1, w30]));
        assert!(matches!(bad, Err(TransferError::Zone(_))), "{bad:?}");
    }
}
