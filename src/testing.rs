//! Queries built octet by octet for unit tests, benches and fuzz seeds: one builder, so all of
//! them speak the same wire (the black-box tests keep their own, outside the crate).

use std::str::FromStr;

use domain::base::Name;
use domain::base::iana::Rtype;

use crate::dns::wire::{self, FLAGS1, FLAGS2, HEADER_LEN, flags1};

/// A query under construction: ID 0x1234, RD set, class IN, no EDNS.
#[derive(Clone, Debug)]
pub struct QueryBuilder {
    id: u16,
    flags: [u8; 2],
    name: Vec<u8>,
    qtype: u16,
    edns: Option<(u16, u8, u16, Vec<u8>)>,
    additional: (u16, Vec<u8>),
}

/// A query for `name` (presentation form, case kept) of type `qtype`.
pub fn query(name: &str, qtype: Rtype) -> QueryBuilder {
    let wire = if name == "." {
        vec![0]
    } else {
        Name::<Vec<u8>>::from_str(name.trim_end_matches('.'))
            .unwrap_or_else(|e| panic!("{name:?} is not a name: {e}"))
            .as_slice()
            .to_vec()
    };
    query_wire(&wire, qtype.to_int())
}

/// A query for the wire-format `name` (taken as is, even malformed) of type `qtype`.
pub fn query_wire(name: &[u8], qtype: u16) -> QueryBuilder {
    QueryBuilder {
        id: 0x1234,
        flags: [flags1::RD, 0],
        name: name.to_vec(),
        qtype,
        edns: None,
        additional: (0, Vec::new()),
    }
}

impl QueryBuilder {
    /// The message ID.
    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// Both flag octets of the header (opcode included), as they go on the wire.
    pub fn flags(mut self, first: u8, second: u8) -> Self {
        self.flags = [first, second];
        self
    }

    /// An OPT record with this UDP payload size (version 0, no flags, no options).
    pub fn edns(mut self, udp_size: u16) -> Self {
        self.edns = Some((udp_size, 0, 0, Vec::new()));
        self
    }

    /// Sets the DO bit of the OPT record.
    pub fn dnssec_ok(mut self) -> Self {
        if let Some(e) = self.edns.as_mut() {
            e.2 |= wire::OPT_DO;
        }
        self
    }

    /// Sets the EDNS version of the OPT record.
    pub fn edns_version(mut self, version: u8) -> Self {
        if let Some(e) = self.edns.as_mut() {
            e.1 = version;
        }
        self
    }

    /// Adds an option to the OPT record.
    pub fn option(mut self, code: u16, data: &[u8]) -> Self {
        if let Some(e) = self.edns.as_mut() {
            e.3.extend_from_slice(&code.to_be_bytes());
            e.3.extend_from_slice(&(data.len() as u16).to_be_bytes());
            e.3.extend_from_slice(data);
        }
        self
    }

    /// Raw records for the additional section (after the OPT, if any), counting as `count`.
    pub fn additional(mut self, count: u16, records: &[u8]) -> Self {
        self.additional.0 += count;
        self.additional.1.extend_from_slice(records);
        self
    }

    /// The message.
    pub fn wire(&self) -> Vec<u8> {
        let mut m = vec![0u8; HEADER_LEN];
        m[..2].copy_from_slice(&self.id.to_be_bytes());
        m[FLAGS1] = self.flags[0];
        m[FLAGS2] = self.flags[1];
        wire::set_count(&mut m, 0, 1);
        wire::set_count(&mut m, wire::AR, u16::from(self.edns.is_some()) + self.additional.0);
        m.extend_from_slice(&self.name);
        m.extend_from_slice(&self.qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        if let Some((size, version, flags, options)) = &self.edns {
            let at = wire::start_opt(&mut m, *size, 0, false);
            m[at - 3] = *version;
            m[at - 2..at].copy_from_slice(&flags.to_be_bytes());
            m.extend_from_slice(options);
            let rdlen = (m.len() - at - 2) as u16;
            m[at..at + 2].copy_from_slice(&rdlen.to_be_bytes());
        }
        m.extend_from_slice(&self.additional.1);
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wire_of_a_query() {
        let q = query("WwW.example.test", Rtype::AAAA)
            .edns(1232)
            .dnssec_ok()
            .option(10, &[1, 2])
            .wire();
        let mut want = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 1];
        want.extend_from_slice(b"\x03WwW\x07example\x04test\x00\x00\x1c\x00\x01");
        want.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0x80, 0, 0, 6, 0, 10, 0, 2, 1, 2]);
        assert_eq!(q, want);
        let plain = query(".", Rtype::NS).id(7).flags(0, 0x10).wire();
        assert_eq!(plain, vec![0, 7, 0, 0x10, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
    }
}
