//! An RFC 2136 UPDATE on a shard: the block must take updates for the zone and the request
//! must be signed by a key of the server (its TSIG checked by `answer`); then the message
//! goes to the control thread, which checks the key's grant, applies it to every shard's
//! data at once and says the rcode, and the network layer sends the reply that waited
//! here, signed with the request's key. No I/O.

use domain::base::iana::Rtype;
use domain::tsig::{Key, ServerTransaction};

use super::answer::{Asked, Outcome, Plugin};
use super::pipeline::BlockPlugins as Plugins;
use super::reply;
use super::request::Request;
use crate::config::Transport;
use crate::zone::name::NameKey;
use domain::base::iana::OptRcode;

/// An update on its way to the control thread.
#[derive(Debug)]
pub struct UpdateAsk {
    /// The route entry (zone and block) that took it.
    pub entry: usize,
    /// The zone, lowercase wire.
    pub zone: Box<[u8]>,
    /// The request as it came.
    pub message: Vec<u8>,
    /// The name of the key that signed it, lowercase wire.
    pub key: Box<[u8]>,
    /// The signature's transaction, to sign the reply with.
    pub tx: Option<Box<ServerTransaction<Key>>>,
    /// The reply, NOERROR: the rcode the control thread gives goes into its header.
    pub reply: Vec<u8>,
    /// The largest reply the client takes.
    pub limit: usize,
    /// For the metrics.
    pub asked: Asked,
}

/// The offset and mask of RCODE in the header's second flags octet (RFC 1035 §4.1.1).
const RCODE_OCTET: usize = 3;
const RCODE_MASK: u8 = 0x0f;

impl UpdateAsk {
    /// The reply with `rcode` (RFC 2136's rcodes all fit the header's four bits), signed
    /// when the request was; `None` when signing fails.
    pub fn reply(self, rcode: domain::base::iana::Rcode) -> Option<Vec<u8>> {
        let mut out = self.reply;
        let octet = out.get_mut(RCODE_OCTET)?;
        *octet = (*octet & !RCODE_MASK) | (rcode.to_int() & RCODE_MASK);
        if let Some(tx) = self.tx {
            if !super::tsig::sign(tx, &mut out, self.limit) {
                return None;
            }
        }
        Some(out)
    }
}

/// The block's outcome of an UPDATE for the zone in `zone` (the zone section's name):
/// taken when it has `update` for exactly that zone and `signer` is the key that signed
/// it; REFUSED otherwise (RFC 2136 §3.3: updates are a privilege; an unsigned one never is).
pub fn take<'a>(
    req: &Request<'_>,
    zone: &[u8],
    plugins: &Plugins,
    (entry, signer): (usize, Option<&NameKey>),
    query: &[u8],
    t: Transport,
    out: &mut Vec<u8>,
) -> Outcome<'a> {
    let ours = plugins
        .update
        .as_ref()
        .is_some_and(|u| u.zones.iter().any(|z| **z == *zone));
    let asked = Asked {
        qtype: Rtype::SOA.to_int(),
        ..Asked::of(req)
    };
    let refused = |why, out: &mut Vec<u8>| {
        let _ = reply::write_error(req, OptRcode::REFUSED, t, out);
        let (rcode, truncated) = super::wire::rcode_and_tc(out);
        Outcome::Reply {
            rcode,
            truncated,
            entry: Some(entry),
            error: Some(why),
            plugin: Plugin::Update,
            asked,
        }
    };
    if !ours {
        return refused("update: the block takes no updates for this zone (REFUSED)", out);
    }
    let Some(signer) = signer else {
        return refused("update: an unsigned update (REFUSED)", out);
    };
    let _ = reply::write_error(req, OptRcode::NOERROR, t, out);
    Outcome::Update(Box::new(UpdateAsk {
        entry,
        zone: zone.into(),
        message: query.to_vec(),
        key: signer.as_slice().into(),
        tx: None,
        reply: std::mem::take(out),
        limit: super::wire::reply_limit(t, req.edns.map(|e| e.udp_size)),
        asked,
    }))
}
