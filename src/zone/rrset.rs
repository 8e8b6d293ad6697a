//! Resource record sets in a compact layout: the rdata of every record in uncompressed wire
//! form, each prefixed by its 16-bit length, in one run of octets.

use domain::base::iana::Rtype;
use domain::base::name::ParsedName;
use domain::base::rdata::{ComposeRecordData, RecordData};
use domain::base::wire::Composer;
use domain::dep::octseq::Parser;

/// Appends one record's rdata to `data` in the RRset layout (16-bit length, then the
/// rdata, cut at 65535 octets).
pub fn push_rdata(data: &mut Vec<u8>, rdata: &[u8]) {
    let len = u16::try_from(rdata.len()).unwrap_or(u16::MAX);
    data.extend_from_slice(&len.to_be_bytes());
    data.extend_from_slice(&rdata[..usize::from(len)]);
}

/// The rdata at `start` of data in the [`push_rdata`] layout (empty past the end).
pub fn rdata_at(data: &[u8], start: usize) -> &[u8] {
    let len = match data.get(start..start + 2) {
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return &[],
    };
    data.get(start + 2..start + 2 + len).unwrap_or_default()
}

/// An RRset as answers read it: one owner (held by whoever holds the set), one type, one
/// TTL, the rdata of every record in uncompressed wire form, each prefixed by its 16-bit
/// length. It borrows its records from a zone's data or from an [`RrsetBuf`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rrset<'a> {
    rtype: Rtype,
    count: u16,
    ttl: u32,
    data: &'a [u8],
}

impl<'a> Rrset<'a> {
    /// A set over `data` in the layout of [`push_rdata`], holding `count` records.
    pub fn from_parts(rtype: Rtype, ttl: u32, count: u16, data: &'a [u8]) -> Self {
        Rrset {
            rtype,
            count,
            ttl,
            data,
        }
    }

    /// The record type.
    pub fn rtype(&self) -> Rtype {
        self.rtype
    }

    /// The TTL.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// How many records.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// True when there are no records.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The rdata of each record.
    pub fn rdatas(&self) -> RdataIter<'a> {
        RdataIter { rest: self.data }
    }

    /// Each record's data, ready to compose into a message.
    pub fn records(&self) -> impl Iterator<Item = WireData<'a>> + 'a {
        let rtype = self.rtype;
        self.rdatas().map(move |data| WireData { rtype, data })
    }
}

/// An RRset that owns its records: for data built outside a zone (hosts tables, challenge
/// values).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RrsetBuf {
    rtype: Rtype,
    count: u16,
    ttl: u32,
    data: Box<[u8]>,
}

impl RrsetBuf {
    /// Builds an RRset from wire rdata (each uncompressed, at most 65535 octets).
    pub fn new<'a>(rtype: Rtype, ttl: u32, rdatas: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut data = Vec::new();
        let mut count = 0u16;
        for rd in rdatas {
            push_rdata(&mut data, rd);
            count = count.saturating_add(1);
        }
        RrsetBuf {
            rtype,
            count,
            ttl,
            data: data.into_boxed_slice(),
        }
    }

    /// The set, to answer from.
    pub fn get(&self) -> Rrset<'_> {
        Rrset::from_parts(self.rtype, self.ttl, self.count, &self.data)
    }
}

/// Iterator over the rdata of an RRset.
pub struct RdataIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RdataIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_be_bytes([self.rest[0], self.rest[1]]));
        let end = (2 + len).min(self.rest.len());
        let rd = &self.rest[2..end];
        self.rest = &self.rest[end..];
        Some(rd)
    }
}

/// One record's data in wire form; composes with name compression where RFC 3597 §4
/// allows it (the RFC 1035 types whose rdata holds names: NS, CNAME, PTR, MX, SOA).
#[derive(Clone, Copy, Debug)]
pub struct WireData<'a> {
    /// The type.
    pub rtype: Rtype,
    /// Uncompressed rdata.
    pub data: &'a [u8],
}

impl WireData<'_> {
    /// Offset of the first compressible name and how many names follow it, if any.
    fn names(&self) -> Option<(usize, usize)> {
        match self.rtype {
            Rtype::NS | Rtype::CNAME | Rtype::PTR => Some((0, 1)),
            Rtype::MX => Some((2, 1)),
            Rtype::SOA => Some((0, 2)),
            _ => None,
        }
    }
}

impl RecordData for WireData<'_> {
    fn rtype(&self) -> Rtype {
        self.rtype
    }
}

impl ComposeRecordData for WireData<'_> {
    fn rdlen(&self, compress: bool) -> Option<u16> {
        if compress && self.names().is_some() {
            None
        } else {
            u16::try_from(self.data.len()).ok()
        }
    }

    fn compose_rdata<Target: Composer + ?Sized>(&self, target: &mut Target) -> Result<(), Target::AppendError> {
        let Some((start, count)) = self.names() else {
            return target.append_slice(self.data);
        };
        target.append_slice(&self.data[..start.min(self.data.len())])?;
        let mut parser = Parser::from_ref(self.data);
        if parser.advance(start).is_err() {
            return target.append_slice(&self.data[start.min(self.data.len())..]);
        }
        for _ in 0..count {
            let before = parser.pos();
            match ParsedName::parse(&mut parser) {
                Ok(name) => target.append_compressed_name(&name)?,
                // Stored data was composed by us and is valid; should it not parse, the
                // uncompressed remainder is still correct wire format.
                Err(_) => return target.append_slice(&self.data[before..]),
            }
        }
        target.append_slice(&self.data[parser.pos()..])
    }

    fn compose_canonical_rdata<Target: Composer + ?Sized>(
        &self,
        target: &mut Target,
    ) -> Result<(), Target::AppendError> {
        target.append_slice(self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rdatas_round_trip() {
        let buf = RrsetBuf::new(Rtype::A, 300, [&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]);
        let set = buf.get();
        assert_eq!(set.len(), 2);
        let all: Vec<_> = set.rdatas().collect();
        assert_eq!(all, vec![&[192, 0, 2, 1][..], &[192, 0, 2, 2][..]]);
        assert_eq!(set.records().next().unwrap().rdlen(true), Some(4));
    }

    #[test]
    fn compressible_types_report_unknown_length() {
        let ns = WireData {
            rtype: Rtype::NS,
            data: b"\x02ns\x00",
        };
        assert_eq!(ns.rdlen(true), None);
        assert_eq!(ns.rdlen(false), Some(4));
        let mut out = Vec::new();
        ns.compose_rdata(&mut out).unwrap();
        assert_eq!(out, b"\x02ns\x00");
    }
}
