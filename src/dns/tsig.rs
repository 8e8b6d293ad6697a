//! TSIG (RFC 8945) through domain's implementation: checking signed requests and signing
//! their replies (a server), signing the requests ringdns sends and checking what comes
//! back (a client). No I/O.
//!
//! Only signed messages come here: the unsigned query path never does. A signed reply is
//! rebuilt with domain's builder from the reply the fast writers made (the MAC covers the
//! exact octets sent, and domain appends its record to a builder), which allocates: signed
//! traffic is zone transfers, NOTIFY and the odd `dig -y`, not the UDP flood.

use std::collections::HashMap;
use std::sync::Arc;

use domain::base::iana::{Opcode, Rcode, Rtype};
use domain::base::message_builder::{AdditionalBuilder, MessageBuilder, StaticCompressor};
use domain::base::{Message, ParsedName, Record, ToName};
use domain::rdata::AllRecordData;
use domain::rdata::tsig::Time48;
use domain::tsig::{Algorithm, ClientSequence, Key, KeyName, ServerSequence, ServerTransaction};

use crate::config::tsig::{Required, TsigConfig, TsigKey};
use crate::dns::reply::TsigError;
use crate::zone::name::{NameKey, is_in_zone};
use domain::base::iana::TsigRcode;

/// Every algorithm a `secret` line (which names none) is accepted with.
const ALGORITHMS: [Algorithm; 4] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha384, Algorithm::Sha512];

/// The algorithm ringdns signs with when a key names none.
const DEFAULT_ALGORITHM: Algorithm = Algorithm::Sha256;

/// The keys of the server instance (CoreDNS: "secrets are global to the server instance",
/// whichever block's `tsig` defines them), by name and algorithm.
#[derive(Default)]
pub struct Keyring {
    keys: HashMap<(KeyName, Algorithm), Key>,
}

impl Keyring {
    /// Every key of every block; the first definition of a name and algorithm wins.
    pub fn new<'a>(configs: impl IntoIterator<Item = &'a TsigConfig>) -> Keyring {
        let mut keys = HashMap::new();
        for k in configs.into_iter().flat_map(|c| &c.keys) {
            let algorithms = match k.algorithm {
                Some(a) => vec![a],
                None => ALGORITHMS.to_vec(),
            };
            for a in algorithms {
                if let Some(key) = key(k, a) {
                    keys.entry((key.name().clone(), a)).or_insert(key);
                }
            }
        }
        Keyring { keys }
    }

    /// How many (name, algorithm) pairs it accepts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The key a block signs what it sends with: the first of its `tsig` (HMAC-SHA256 for a
/// `secret`, which names no algorithm).
pub fn signing_key(t: &TsigConfig) -> Option<TsigKey> {
    let k = t.keys.first()?;
    Some(TsigKey {
        algorithm: Some(k.algorithm.unwrap_or(DEFAULT_ALGORITHM)),
        ..k.clone()
    })
}

/// `k` ready to sign with (its algorithm, or HMAC-SHA256).
pub fn signer(k: &TsigKey) -> Option<Arc<Key>> {
    key(k, k.algorithm.unwrap_or(DEFAULT_ALGORITHM)).map(Arc::new)
}

fn key(k: &TsigKey, a: Algorithm) -> Option<Key> {
    let name: KeyName = k.name.try_to_name().ok()?;
    Key::new(a, &k.secret, name, None, None).ok()
}

/// A block's `tsig` at run time.
pub struct Policy {
    /// Its zones, lowercase wire.
    pub zones: Vec<Box<[u8]>>,
    /// The keys it checks against.
    pub keys: Arc<Keyring>,
    require: Required<Rtype>,
    require_opcode: Required<Opcode>,
}

impl Policy {
    /// The policy of `t`, checking against `keys`.
    pub fn new(t: &TsigConfig, keys: Arc<Keyring>) -> Policy {
        Policy {
            zones: t.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect(),
            keys,
            require: t.require.clone(),
            require_opcode: t.require_opcode.clone(),
        }
    }

    /// Whether a request for `key` is this policy's to check.
    pub fn covers(&self, key: &[u8]) -> bool {
        self.zones.iter().any(|z| is_in_zone(key, z))
    }

    /// Whether an unsigned request of `qtype` with `opcode` is refused.
    pub fn requires(&self, qtype: Rtype, opcode: Opcode) -> bool {
        self.require.includes(qtype) || self.require_opcode.includes(opcode)
    }
}

/// What checking a signed request found.
pub enum Checked {
    /// Signed by a known key: sign the reply with this (boxed: it holds the key).
    Signed(Box<ServerTransaction<Key>>),
    /// NOTAUTH with this error in an unsigned TSIG (RFC 8945 §5.3.2).
    Unsigned(TsigError),
    /// BADTIME (§5.2.3): this is the whole reply, signed.
    Reply(Vec<u8>),
    /// The TSIG does not parse or is not where it must be: FORMERR (§5.2).
    FormErr,
}

/// Checks the TSIG of `query` (RFC 8945 §5.2). `None` when it carries none.
pub fn check(keys: &Keyring, query: &[u8]) -> Option<Checked> {
    let mut msg = Message::from_octets(query.to_vec()).ok()?;
    let e = match ServerTransaction::request(&keys.keys, &mut msg, Time48::now()) {
        Ok(Some(tx)) => return Some(Checked::Signed(Box::new(tx))),
        Ok(None) => return None,
        Err(e) => e,
    };
    let built = || {
        let original = Message::from_octets(query).ok()?;
        let b = MessageBuilder::from_target(StaticCompressor::new(Vec::new())).ok()?;
        e.clone().build_message(&original, b).ok()
    };
    Some(match e.error() {
        TsigRcode::BADKEY => Checked::Unsigned(TsigError::BadKey),
        TsigRcode::BADTRUNC => Checked::Unsigned(TsigError::BadTrunc),
        TsigRcode::BADTIME => Checked::Reply(built()?.finish().into_target()),
        // domain 0.12 reports a MAC that does not verify as error FORMERR in a TSIG; a
        // real FORMERR has no TSIG. RFC 8945 §5.2.3 says BADSIG.
        _ if built()?.counts().arcount() > 0 => Checked::Unsigned(TsigError::BadSig),
        _ => Checked::FormErr,
    })
}

/// The signer of a zone transfer's messages (RFC 8945 §5.3.1), when `query` is correctly
/// signed.
pub fn sequence(keys: &Keyring, query: &[u8]) -> Option<ServerSequence<Key>> {
    let mut msg = Message::from_octets(query.to_vec()).ok()?;
    ServerSequence::request(&keys.keys, &mut msg, Time48::now())
        .ok()
        .flatten()
}

/// Signs the reply in `out` for `tx`. If the signed reply would not fit in `limit` octets
/// it goes out as an empty TC=1 reply, signed (RFC 8945 §5.3: a truncated response is
/// signed, and the client comes back over TCP). `false` when the reply does not parse
/// (it always does: our own writers made it).
pub fn sign(tx: Box<ServerTransaction<Key>>, out: &mut Vec<u8>, limit: usize) -> bool {
    let overhead = tsig_len(tx.key());
    let Some(mut b) = rebuild(out, out.len() + overhead > limit) else {
        return false;
    };
    if tx.answer(&mut b, Time48::now()).is_err() {
        return false;
    }
    *out = b.finish().into_target();
    true
}

/// Signs the message of a transfer in `b` as the next of `seq`.
pub fn sign_next<T: domain::base::wire::Composer>(seq: &mut ServerSequence<Key>, b: &mut AdditionalBuilder<T>) -> bool {
    seq.answer(b, Time48::now()).is_ok()
}

/// Signs `query` (a request ringdns sends: SOA, AXFR, IXFR, NOTIFY) with `key`: the signed
/// message and the state that checks the replies.
pub fn sign_request(key: Arc<Key>, query: &[u8]) -> Option<(Vec<u8>, Client)> {
    let mut b = rebuild(query, false)?;
    let seq = ClientSequence::request(key, &mut b, Time48::now()).ok()?;
    Some((b.finish().into_target(), Client { seq }))
}

/// Checks the replies to a request ringdns signed.
#[derive(Clone)]
pub struct Client {
    seq: ClientSequence<Arc<Key>>,
}

impl Client {
    /// Checks the next message of the reply (RFC 8945 §5.3.1: the first and the last must
    /// be signed, at most 99 in between may not be).
    pub fn check(&mut self, msg: &[u8]) -> Result<(), String> {
        let mut m = Message::from_octets(msg.to_vec()).map_err(|_| "a reply that does not parse".to_string())?;
        self.seq
            .answer(&mut m, Time48::now())
            .map_err(|e| format!("TSIG: {e} (rcode {})", rcode_of(msg)))
    }

    /// Checks that the last message was signed.
    pub fn done(self) -> Result<(), String> {
        self.seq.done().map_err(|e| format!("TSIG: {e}"))
    }
}

fn rcode_of(msg: &[u8]) -> Rcode {
    Message::from_octets(msg).map_or(Rcode::FORMERR, |m| m.header().rcode())
}

/// The octets a key's TSIG record takes.
fn tsig_len(key: &Key) -> usize {
    usize::from(key.compose_len())
}

/// `wire` rebuilt with domain's builder, ready for the additional section's last record:
/// every record of it again, or (with `truncate`) the header and question alone, TC set.
fn rebuild(wire: &[u8], truncate: bool) -> Option<AdditionalBuilder<StaticCompressor<Vec<u8>>>> {
    let m = Message::from_octets(wire).ok()?;
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(wire.len() + 128))).ok()?;
    *b.header_mut() = m.header();
    let mut q = b.question();
    for question in m.question() {
        q.push(question.ok()?).ok()?;
    }
    if truncate {
        let mut a = q.additional();
        a.header_mut().set_tc(true);
        return Some(a);
    }
    let mut a = q.answer();
    let mut sections = m.answer().ok()?;
    for rr in &mut sections {
        a.push(record(rr.ok()?)?).ok()?;
    }
    let mut auth = a.authority();
    let mut sections = sections.next_section().ok()??;
    for rr in &mut sections {
        auth.push(record(rr.ok()?)?).ok()?;
    }
    let mut add = auth.additional();
    for rr in sections.next_section().ok()?? {
        add.push(record(rr.ok()?)?).ok()?;
    }
    Some(add)
}

type Parsed<'a> = Record<ParsedName<&'a [u8]>, AllRecordData<&'a [u8], ParsedName<&'a [u8]>>>;

fn record<'a>(rr: domain::base::ParsedRecord<'a, &'a [u8]>) -> Option<Parsed<'a>> {
    rr.into_record::<AllRecordData<_, _>>().ok()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tsig::TsigKey;
    use crate::zone::name::parse_abs;

    fn keyring(name: &str, secret: &[u8], algorithm: Option<Algorithm>) -> Keyring {
        let cfg = TsigConfig {
            pos: crate::config::Pos {
                file: std::path::Path::new("Corefile").into(),
                line: 1,
                col: 1,
            },
            zones: vec![parse_abs("example.test").unwrap()],
            keys: vec![TsigKey {
                name: parse_abs(name).unwrap(),
                algorithm,
                secret: secret.to_vec(),
            }],
            files: vec![],
            require: Required::These(vec![]),
            require_opcode: Required::These(vec![]),
        };
        Keyring::new([&cfg])
    }

    fn query() -> Vec<u8> {
        let apex = NameKey::of(&parse_abs("example.test").unwrap());
        crate::dns::wire::query(apex.as_slice(), Rtype::SOA, false)
    }

    #[test]
    fn a_signed_request_checks_and_its_reply_verifies() {
        let ring = keyring("k1", b"0123456789abcdef", None);
        assert_eq!(ring.len(), 4, "a secret line takes every algorithm");
        let key = Arc::new(ring.keys[&(parse_abs("k1").unwrap().try_to_name().unwrap(), Algorithm::Sha512)].clone());
        let (signed, mut client) = sign_request(key, &query()).unwrap();
        let Some(Checked::Signed(tx)) = check(&ring, &signed) else {
            panic!("a correctly signed request");
        };
        // The reply: the query turned around, as the fast writers would make it.
        let mut reply = query();
        reply[2] |= 0x80;
        assert!(sign(tx, &mut reply, 65535));
        client.check(&reply).unwrap();
        client.done().unwrap();
    }

    #[test]
    fn unknown_keys_and_bad_macs_are_rejected() {
        let ring = keyring("k1", b"0123456789abcdef", Some(Algorithm::Sha256));
        let other = keyring("k1", b"another secret!!", Some(Algorithm::Sha256));
        let key = Arc::new(other.keys.values().next().unwrap().clone());
        let (signed, _) = sign_request(key, &query()).unwrap();
        assert!(
            matches!(check(&ring, &signed), Some(Checked::Unsigned(TsigError::BadSig))),
            "a bad MAC"
        );
        assert!(check(&ring, &query()).is_none(), "unsigned");
        let stranger = keyring("k2", b"0123456789abcdef", Some(Algorithm::Sha256));
        let key = Arc::new(stranger.keys.values().next().unwrap().clone());
        let (signed, _) = sign_request(key, &query()).unwrap();
        assert!(
            matches!(check(&ring, &signed), Some(Checked::Unsigned(TsigError::BadKey))),
            "unknown key"
        );
    }

    #[test]
    fn a_reply_too_long_for_the_client_goes_out_truncated_and_signed() {
        let ring = keyring("k1", b"0123456789abcdef", Some(Algorithm::Sha256));
        let key = Arc::new(ring.keys.values().next().unwrap().clone());
        let (signed, mut client) = sign_request(key, &query()).unwrap();
        let Some(Checked::Signed(tx)) = check(&ring, &signed) else {
            panic!("signed");
        };
        let mut reply = query();
        reply[2] |= 0x80;
        let len = reply.len();
        assert!(sign(tx, &mut reply, len + 20));
        let m = Message::from_octets(&reply[..]).unwrap();
        assert!(m.header().tc());
        client.check(&reply).unwrap();
    }
}
