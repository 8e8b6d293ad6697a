//! `local`: names that must never leave the host (RFC 6761 §6.3 `localhost`, RFC 6303's
//! `0.`, `127.` and `255.in-addr.arpa`) answered here, as CoreDNS's plugin answers them:
//! `localhost.` and names below it are 127.0.0.1 and ::1, `1.0.0.127.in-addr.arpa` is
//! `localhost.`, the zones' apexes have an SOA and NS, everything else in them is NXDOMAIN.
//! With `localhost_prefix on` (CoreDNS's default), `localhost.<anything>` is localhost too.
//! Replies are not authoritative, as CoreDNS's.

use domain::base::iana::{Class, Rcode, Rtype};

use super::reply::{self, Made, MadeOwner, MadeReply, Written};
use super::request::{Question, Request};
use crate::config::Transport;
use crate::zone::name::is_in_zone;
use crate::zone::rrset::WireData;

const LOCALHOST: &[u8] = b"\x09localhost\x00";
const ZONES: [&[u8]; 4] = [
    LOCALHOST,
    b"\x010\x07in-addr\x04arpa\x00",
    b"\x03127\x07in-addr\x04arpa\x00",
    b"\x03255\x07in-addr\x04arpa\x00",
];
const LOOPBACK_PTR: &[u8] = b"\x011\x010\x010\x03127\x07in-addr\x04arpa\x00";
/// TTL of every record (CoreDNS: a week).
const TTL: u32 = 604_800;
/// SOA `localhost. root.localhost. 1 0 0 0 604800`.
const SOA: &[u8] = b"\x09localhost\x00\x04root\x09localhost\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x3a\x80";

fn record(owner: MadeOwner<'static>, rtype: Rtype, data: &'static [u8]) -> Made<'static> {
    Made {
        owner,
        class: Class::IN,
        ttl: TTL,
        data: WireData { rtype, data },
    }
}

/// The reply for `q` if `local` answers it (`prefix`: `localhost_prefix on`).
pub fn answer(req: &Request<'_>, q: &Question<'_>, prefix: bool, t: Transport, out: &mut Vec<u8>) -> Option<Written> {
    let key = q.key;
    let below_localhost = key.len() > LOCALHOST.len() && key.ends_with(LOCALHOST);
    let legacy = prefix && key.len() > LOCALHOST.len() && key.starts_with(&LOCALHOST[..10]);
    let a = record(MadeOwner::Query, Rtype::A, &[127, 0, 0, 1]);
    let aaaa = record(
        MadeOwner::Query,
        Rtype::AAAA,
        &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    let soa_here = record(MadeOwner::Query, Rtype::SOA, SOA);
    // (answer, authority, rcode), one record at most in each.
    let (answer, authority, rcode) = if below_localhost || legacy {
        match q.qtype {
            Rtype::A => (Some(a), None, Rcode::NOERROR),
            Rtype::AAAA => (Some(aaaa), None, Rcode::NOERROR),
            _ => (None, Some(soa_here), Rcode::NOERROR),
        }
    } else {
        let zone = ZONES.into_iter().find(|z| is_in_zone(key, z))?;
        let soa_zone = record(MadeOwner::Name(zone), Rtype::SOA, SOA);
        if key == zone {
            match q.qtype {
                Rtype::A if zone == LOCALHOST => (Some(a), None, Rcode::NOERROR),
                Rtype::AAAA if zone == LOCALHOST => (Some(aaaa), None, Rcode::NOERROR),
                Rtype::SOA => (Some(soa_here), None, Rcode::NOERROR),
                Rtype::NS => (
                    Some(record(MadeOwner::Query, Rtype::NS, LOCALHOST)),
                    None,
                    Rcode::NOERROR,
                ),
                _ => (None, Some(soa_here), Rcode::NOERROR),
            }
        } else if key == LOOPBACK_PTR {
            match q.qtype {
                Rtype::PTR => (
                    Some(record(MadeOwner::Query, Rtype::PTR, LOCALHOST)),
                    None,
                    Rcode::NOERROR,
                ),
                _ => (None, Some(soa_zone), Rcode::NOERROR),
            }
        } else {
            (None, Some(soa_zone), Rcode::NXDOMAIN)
        }
    };
    let m = MadeReply {
        aa: false,
        rcode,
        answer: answer.as_slice(),
        authority: authority.as_slice(),
        additional: &[],
        ede: None,
    };
    Some(reply::write_made(req, q, &m, t, out))
}
