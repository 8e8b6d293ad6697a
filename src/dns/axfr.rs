//! An outgoing AXFR (RFC 5936): the zone's records in as many messages as they take, the
//! SOA first and last (§2.2), many records per message (§2.2.5: up to [`MESSAGE_TARGET`]
//! octets, compressed), the question in the first message. Written one message at a time,
//! so the connection's writer paces the transfer (a slow reader holds one message, not the
//! zone). No I/O here.

use std::sync::Arc;

use domain::base::iana::{Class, Rtype};
use domain::base::message_builder::{MessageBuilder, StaticCompressor};
use domain::base::name::Name;
use domain::base::rdata::UnknownRecordData;
use domain::base::{Record, Ttl};
use domain::tsig::{Key, ServerSequence};

use crate::zone::diff::{Journal, Rec};
use crate::zone::store::Zone;

/// How large a message grows before the next one starts (Knot: 64 KiB; 16 KiB keeps the
/// writer's queue short and still packs hundreds of records).
pub const MESSAGE_TARGET: usize = 16 * 1024;

/// Where a transfer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    /// The opening SOA is next.
    Start,
    /// Name `name`, RRset `set`, record `rec` is next.
    Body { name: usize, set: usize, rec: usize },
    /// The closing SOA is next.
    End,
    /// Everything is written.
    Done,
}

/// What every message of a transfer shares: the query's ID, its question (in the first
/// message only, RFC 5936 §2.2.1), and the TSIG that signs each (RFC 8945 §5.3.1).
struct Framing {
    /// The query's ID and its question as the client wrote it (name, type, class).
    id: u16,
    question: Vec<u8>,
    first: bool,
    /// Signs each message when the request was signed.
    signer: Option<ServerSequence<Key>>,
}

type Answer = domain::base::message_builder::AnswerBuilder<StaticCompressor<Vec<u8>>>;

impl Framing {
    fn new(id: u16, question: &[u8]) -> Self {
        Framing {
            id,
            question: question.to_vec(),
            first: true,
            signer: None,
        }
    }

    /// A message with its header (and question, the first time), in `out`'s buffer.
    fn start(&mut self, out: &mut Vec<u8>) -> Answer {
        out.clear();
        let mut target = std::mem::take(out);
        target.reserve(MESSAGE_TARGET + 512);
        let Ok(mut b) = MessageBuilder::from_target(StaticCompressor::new(target));
        {
            let h = b.header_mut();
            h.set_id(self.id);
            h.set_qr(true);
            h.set_aa(true);
        }
        if std::mem::take(&mut self.first) {
            let mut q = b.question();
            if let Some(question) = question_of(&self.question) {
                let _ = q.push(question);
            }
            q.answer()
        } else {
            b.answer()
        }
    }

    /// The message, signed when the request was; `false` when signing failed (the transfer
    /// stops).
    fn finish(&mut self, a: Answer, out: &mut Vec<u8>) -> bool {
        let mut add = a.additional();
        let mut ok = true;
        if let Some(seq) = &mut self.signer {
            // A message always has room for its TSIG: it stops growing at MESSAGE_TARGET.
            ok = crate::dns::tsig::sign_next(seq, &mut add);
        }
        *out = add.finish().into_target();
        ok
    }
}

/// The messages of one transfer.
pub struct AxfrOut {
    zone: Arc<Zone>,
    /// Every name of the zone, the apex first.
    names: Vec<Box<[u8]>>,
    stage: Stage,
    framing: Framing,
}

impl AxfrOut {
    /// The transfer of `zone` for the query with `id` and `question` (the question's octets:
    /// name, QTYPE, QCLASS).
    pub fn new(zone: Arc<Zone>, id: u16, question: &[u8]) -> Self {
        let apex: Box<[u8]> = zone.apex().into();
        let mut names: Vec<Box<[u8]>> = zone.names().filter(|n| **n != *apex).map(Box::from).collect();
        names.insert(0, apex);
        AxfrOut {
            zone,
            names,
            stage: Stage::Start,
            framing: Framing::new(id, question),
        }
    }

    /// Writes the next message into `out`; `false` once the transfer is whole.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> bool {
        if self.stage == Stage::Done {
            return false;
        }
        let mut a = self.framing.start(out);
        let soa = self.zone.soa();
        let apex = Name::<&[u8]>::from_octets(self.zone.apex()).ok();
        let mut pushed = 0usize;
        loop {
            let (owner, rtype, ttl, rdata, next) = match self.stage {
                Stage::Done => break,
                Stage::Start | Stage::End => {
                    let (Some(set), Some(owner)) = (soa, apex.clone()) else {
                        self.stage = Stage::Done;
                        break;
                    };
                    let Some(rdata) = set.rdatas().next() else {
                        self.stage = Stage::Done;
                        break;
                    };
                    let next = if self.stage == Stage::Start {
                        Stage::Body {
                            name: 0,
                            set: 0,
                            rec: 0,
                        }
                    } else {
                        Stage::Done
                    };
                    (owner, Rtype::SOA, set.ttl(), rdata, next)
                }
                Stage::Body { name, set, rec } => {
                    let Some(key) = self.names.get(name) else {
                        self.stage = Stage::End;
                        continue;
                    };
                    let Some(node) = self.zone.node(key) else {
                        self.stage = Stage::Body {
                            name: name + 1,
                            set: 0,
                            rec: 0,
                        };
                        continue;
                    };
                    let Some(rrset) = node.rrsets().nth(set) else {
                        self.stage = Stage::Body {
                            name: name + 1,
                            set: 0,
                            rec: 0,
                        };
                        continue;
                    };
                    if name == 0 && rrset.rtype() == Rtype::SOA {
                        // The apex SOA opens and closes the transfer only.
                        self.stage = Stage::Body {
                            name,
                            set: set + 1,
                            rec: 0,
                        };
                        continue;
                    }
                    let Some(rdata) = rrset.rdatas().nth(rec) else {
                        self.stage = Stage::Body {
                            name,
                            set: set + 1,
                            rec: 0,
                        };
                        continue;
                    };
                    let Ok(owner) = Name::<&[u8]>::from_octets(key) else {
                        self.stage = Stage::Body {
                            name: name + 1,
                            set: 0,
                            rec: 0,
                        };
                        continue;
                    };
                    (
                        owner,
                        rrset.rtype(),
                        rrset.ttl(),
                        rdata,
                        Stage::Body {
                            name,
                            set,
                            rec: rec + 1,
                        },
                    )
                }
            };
            let Ok(data) = UnknownRecordData::from_octets(rtype, rdata) else {
                self.stage = next;
                continue;
            };
            if pushed > 0 && a.as_builder().as_slice().len() >= MESSAGE_TARGET {
                break;
            }
            if a.push(Record::new(owner, Class::IN, Ttl::from_secs(ttl), data))
                .is_err()
            {
                // Only a full message refuses a record: it goes into the next one.
                break;
            }
            pushed += 1;
            self.stage = next;
        }
        if !self.framing.finish(a, out) {
            self.stage = Stage::Done;
        }
        true
    }
}

/// An incremental transfer (RFC 1995 §4): the current SOA; then for each difference the
/// old SOA, its deletions, the new SOA, its additions; the current SOA again. With no
/// difference (the client is current) the SOA alone.
pub struct IxfrOut {
    records: Vec<Rec>,
    next: usize,
    framing: Framing,
}

impl IxfrOut {
    /// The answer to an IXFR from `serial` for `zone`, from its `journal`: `None` when the
    /// journal does not reach back to `serial` (the caller sends the whole zone).
    pub fn plan(zone: &Zone, journal: Option<&Journal>, serial: u32, id: u16, question: &[u8]) -> Option<IxfrOut> {
        let soa = zone.soa()?;
        let current = Rec {
            owner: zone.apex().into(),
            rtype: Rtype::SOA.to_int(),
            ttl: soa.ttl(),
            rdata: soa.rdatas().next()?.into(),
        };
        let mut records = vec![current.clone()];
        if serial != zone.serial() {
            for d in journal?.since(serial, zone.serial())? {
                records.push(d.from.1.clone());
                records.extend(d.deleted.iter().cloned());
                records.push(d.to.1.clone());
                records.extend(d.added.iter().cloned());
            }
            records.push(current);
        }
        Some(IxfrOut {
            records,
            next: 0,
            framing: Framing::new(id, question),
        })
    }

    /// Writes the next message into `out`; `false` once the transfer is whole.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> bool {
        if self.next >= self.records.len() {
            return false;
        }
        let mut a = self.framing.start(out);
        let mut pushed = 0usize;
        while let Some(r) = self.records.get(self.next) {
            if pushed > 0 && a.as_builder().as_slice().len() >= MESSAGE_TARGET {
                break;
            }
            let (Ok(owner), Ok(data)) = (
                Name::<&[u8]>::from_octets(&r.owner[..]),
                UnknownRecordData::from_octets(Rtype::from_int(r.rtype), &r.rdata[..]),
            ) else {
                self.next += 1;
                continue;
            };
            if a.push(Record::new(owner, Class::IN, Ttl::from_secs(r.ttl), data))
                .is_err()
            {
                break;
            }
            pushed += 1;
            self.next += 1;
        }
        if !self.framing.finish(a, out) {
            self.next = self.records.len();
        }
        true
    }
}

/// An outgoing transfer, whole or incremental.
pub enum TransferOut {
    /// AXFR, or IXFR answered AXFR-style.
    Axfr(AxfrOut),
    /// IXFR from the journal.
    Ixfr(IxfrOut),
}

impl TransferOut {
    /// Signs every message with `signer` (the request's TSIG checked out).
    pub fn signed(mut self, signer: ServerSequence<Key>) -> Self {
        match &mut self {
            TransferOut::Axfr(a) => a.framing.signer = Some(signer),
            TransferOut::Ixfr(i) => i.framing.signer = Some(signer),
        }
        self
    }

    /// Writes the next message into `out`; `false` once the transfer is whole.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> bool {
        match self {
            TransferOut::Axfr(a) => a.next_message(out),
            TransferOut::Ixfr(i) => i.next_message(out),
        }
    }
}

/// The serial of the SOA in an IXFR query's authority section (RFC 1995 §3).
pub fn client_serial(query: &[u8]) -> Option<u32> {
    let m = domain::base::Message::from_octets(query).ok()?;
    let rr = m.authority().ok()?.next()?.ok()?;
    let rec = rr
        .into_record::<domain::rdata::Soa<domain::base::ParsedName<_>>>()
        .ok()??;
    Some(rec.data().serial().into_int())
}

/// The question's name, type and class from its octets.
fn question_of(q: &[u8]) -> Option<(Name<&[u8]>, Rtype, Class)> {
    let name = Name::<&[u8]>::from_octets(q.get(..q.len().checked_sub(4)?)?).ok()?;
    let t = q.len() - 4;
    Some((
        name,
        Rtype::from_int(u16::from_be_bytes([q[t], q[t + 1]])),
        Class::from_int(u16::from_be_bytes([q[t + 2], q[t + 3]])),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::NameKey;
    use crate::zone::transfer::AxfrIn;

    fn zone(extra: usize) -> Zone {
        let mut text = String::from(
            "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 5 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n",
        );
        for i in 0..extra {
            text.push_str(&format!("h{i} A 192.0.2.{}\nh{i} TXT \"host {i}\"\n", i % 250));
        }
        let origin = crate::zone::name::parse_abs("example.test").unwrap();
        crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap()
    }

    /// An IXFR from the journal, read back by the secondary's own IXFR parser on top of the
    /// old version, makes the new one; a current client gets the SOA alone.
    #[test]
    fn an_ixfr_out_reads_back_as_the_new_zone() {
        use crate::zone::transfer::{IxfrIn, IxfrResult};
        let v = |serial: u32, extra: usize| {
            let mut text = format!(
                "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin {serial} 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\n"
            );
            for i in 0..extra {
                // A few records change from version to version, most stay.
                let v = if i % 500 == 0 { serial } else { 0 };
                text.push_str(&format!("h{i} A 192.0.2.{}\nh{i} TXT \"host {i} v{v}\"\n", i % 250));
            }
            let origin = crate::zone::name::parse_abs("example.test").unwrap();
            Arc::new(crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap())
        };
        let (a, b, c) = (v(5, 3000), v(6, 3001), v(7, 2990));
        let mut j = crate::zone::diff::Journal::default();
        j.push(crate::zone::diff::between(&a, &b).unwrap(), b.record_count());
        j.push(crate::zone::diff::between(&b, &c).unwrap(), c.record_count());
        let apex = NameKey::of(&crate::zone::name::parse_abs("example.test").unwrap());
        let mut question = apex.as_slice().to_vec();
        question.extend_from_slice(&[0, 251, 0, 1]);
        let mut out = IxfrOut::plan(&c, Some(&j), 5, 9, &question).expect("the journal reaches serial 5");
        let mut back = IxfrIn::new(a.clone(), 9);
        let mut msg = Vec::new();
        while out.next_message(&mut msg) {
            back.feed(&msg).unwrap();
        }
        assert!(back.is_done());
        let IxfrResult::Applied(z, _) = back.finish().unwrap() else {
            panic!("incremental");
        };
        assert_eq!(
            (z.serial(), z.record_count(), z.name_count()),
            (c.serial(), c.record_count(), c.name_count())
        );
        assert!(
            IxfrOut::plan(&c, Some(&j), 4, 9, &question).is_none(),
            "older than the journal"
        );
        let mut current = IxfrOut::plan(&c, None, 7, 9, &question).unwrap();
        assert!(current.next_message(&mut msg) && !current.next_message(&mut msg));
    }

    /// What goes out comes back in through the secondary's own parser, whole.
    #[test]
    fn a_transfer_out_reads_back_as_the_same_zone() {
        for extra in [0, 3, 2000] {
            let z = zone(extra);
            let apex = NameKey::of(&crate::zone::name::parse_abs("example.test").unwrap());
            let mut question = apex.as_slice().to_vec();
            question.extend_from_slice(&[0, 252, 0, 1]);
            let mut out = AxfrOut::new(Arc::new(zone(extra)), 77, &question);
            let mut back = AxfrIn::new(apex.as_slice(), 77);
            let mut msg = Vec::new();
            let mut messages = 0;
            while out.next_message(&mut msg) {
                assert!(msg.len() <= 65535);
                back.feed(&msg).unwrap();
                messages += 1;
            }
            assert!(back.is_done());
            let z2 = back.finish().unwrap();
            assert_eq!(
                (z2.serial(), z2.record_count(), z2.name_count()),
                (z.serial(), z.record_count(), z.name_count()),
                "{extra}"
            );
            if extra == 2000 {
                assert!(messages > 1 && messages < 20, "{messages} messages");
            }
        }
    }
}
