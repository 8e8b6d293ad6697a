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
use super::store::{Zone, ZoneBuilder, ZoneError, soa_fields};

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

/// A transfer in progress.
pub struct AxfrIn {
    apex: Box<[u8]>,
    id: u16,
    builder: ZoneBuilder,
    /// The opening SOA's serial, once seen.
    serial: Option<u32>,
    records: usize,
    done: bool,
    /// The zone in presentation form, as it is kept on disk.
    text: String,
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
            text: String::new(),
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
        let m = Message::from_octets(msg).map_err(|_| TransferError::Malformed)?;
        let h = m.header();
        if !h.qr() || h.id() != self.id || h.opcode() != Opcode::QUERY {
            return Err(TransferError::NotOurs);
        }
        if h.rcode() != Rcode::NOERROR {
            return Err(TransferError::Rcode(h.rcode()));
        }
        if h.tc() {
            return Err(TransferError::Truncated);
        }
        // The first message echoes the question; later ones may (RFC 5936 §2.2.1).
        for q in m.question() {
            let q = q.map_err(|_| TransferError::Malformed)?;
            if NameKey::of(&q.qname()).as_slice() != &*self.apex || q.qtype() != Rtype::AXFR {
                return Err(TransferError::Question);
            }
        }
        for rr in m.answer().map_err(|_| TransferError::Malformed)? {
            let rr = rr.map_err(|_| TransferError::Malformed)?;
            if self.done {
                return Err(TransferError::AfterEnd);
            }
            let rec = rr
                .into_record::<AllRecordData<_, ParsedName<_>>>()
                .map_err(|_| TransferError::Malformed)?
                .ok_or(TransferError::Malformed)?;
            let owner = NameKey::of(rec.owner());
            let shown = || crate::zone::name::display(owner.as_slice());
            if !is_in_zone(owner.as_slice(), &self.apex) {
                return Err(TransferError::Outside(shown()));
            }
            if rec.class() != Class::IN {
                return Err(TransferError::Class(shown()));
            }
            let rtype = rec.rtype();
            let mut rdata = Vec::new();
            rec.data()
                .compose_rdata(&mut rdata)
                .map_err(|_| TransferError::Malformed)?;
            let apex_soa = rtype == Rtype::SOA && owner.as_slice() == &*self.apex;
            match self.serial {
                None if apex_soa => {
                    let (serial, _) = soa_fields(&rdata).ok_or(TransferError::Malformed)?;
                    self.serial = Some(serial);
                }
                None => return Err(TransferError::NoSoa),
                Some(opening) if apex_soa => {
                    let (closing, _) = soa_fields(&rdata).ok_or(TransferError::Malformed)?;
                    if closing != opening {
                        return Err(TransferError::Serial { opening, closing });
                    }
                    self.done = true;
                    continue;
                }
                Some(_) => {}
            }
            self.records += 1;
            if self.records > MAX_RECORDS {
                return Err(TransferError::TooLarge);
            }
            self.builder.add(owner.as_slice(), rtype, rec.ttl().as_secs(), &rdata);
            use std::fmt::Write;
            let _ = writeln!(
                self.text,
                "{} {} IN {} {}",
                shown(),
                rec.ttl().as_secs(),
                rtype,
                rec.data()
            );
        }
        Ok(())
    }

    /// The zone, once the closing SOA arrived, and its presentation text (one record a
    /// line, the SOA first), to be kept on disk.
    pub fn finish(self) -> Result<(Zone, String), TransferError> {
        if !self.done {
            return Err(TransferError::Incomplete);
        }
        let (zone, _notes) = self
            .builder
            .build()
            .map_err(|e: ZoneError| TransferError::Zone(e.to_string()))?;
        Ok((zone, self.text))
    }
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
        let (zone, text) = t.finish().unwrap();
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
}
