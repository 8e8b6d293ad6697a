//! `rewrite` at run time: the query a block answers instead of the client's, and the reply
//! mapped back, as CoreDNS's plugin does (its README and `reverter.go` are the reference).
//!
//! Only blocks with rules pay for this: names are matched and rewritten as text (lowercase,
//! with the final dot, as CoreDNS's `state.Name()`), regexes run, and a reply that comes
//! back is rebuilt: the client's own question, names mapped back (owners, and with `value`
//! rules the names in CNAME, DNAME, NS, PTR, MX, SRV, NAPTR and SOA data), TTLs clamped,
//! the rcode replaced, within the client's size limit (TC=1 when it no longer fits).

use std::str::FromStr;

use domain::base::iana::Rtype;
use domain::base::message_builder::{MessageBuilder, StaticCompressor};
use domain::base::name::{Name, ParsedName, ToName};
use domain::base::rdata::{RecordData as RecordData_, UnknownRecordData};
use domain::base::{Message, Record, Ttl};
use domain::rdata::AllRecordData;

use super::request::Question;
use super::wire::{self, FLAGS2, HEADER_LEN, flags2};
use crate::config::rewrite::{Mapper, NameMatch, Revert, RewriteRule, RuleKind, expand};
use crate::zone::name::NameKey;

/// What a rewritten query keeps for its reply: the steps to undo, applied last first (as
/// CoreDNS runs its response rules in reverse), and the client's size limit.
#[derive(Clone, Debug, Default)]
pub struct Reverts {
    steps: Vec<Step>,
    /// The largest reply the client takes.
    pub limit: usize,
}

#[derive(Clone, Debug)]
enum Step {
    /// Owner names.
    Owner(Map),
    /// Names in record data.
    Value(Map),
    /// Every TTL into `min..=max`.
    Ttl(u32, u32),
    /// Rcode `from` becomes `to`.
    Rcode(u16, u16),
}

#[derive(Clone, Debug)]
enum Map {
    /// A rule's own `answer name|value` mapper.
    Rule(Mapper),
    /// `answer auto`: the name (or a name below it) the rule made gets back the one it
    /// replaced (CoreDNS's `remapStringRewriter`).
    Back { made: String, was: String },
}

impl Map {
    fn apply(&self, name: &str) -> Option<String> {
        match self {
            Map::Rule(m) => m.apply(name),
            Map::Back { made, was } => {
                if name == made {
                    return Some(was.clone());
                }
                let cut = name.len().checked_sub(made.len())?;
                (cut > 0 && name.as_bytes()[cut - 1] == b'.' && name[cut..] == *made)
                    .then(|| format!("{}{was}", &name[..cut]))
            }
        }
    }
}

/// What became of a query under a block's rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Rewritten {
    /// No rule applied: answer the query as it came.
    Unchanged,
    /// `Scratch::wire` holds the query to answer, `Scratch::reverts` what its reply needs.
    Changed,
    /// A rule made a name that is not a domain name: SERVFAIL, as CoreDNS answers.
    Invalid,
}

/// What a serving loop lends the rewrite of a query, reused from query to query.
pub struct Scratch {
    /// The rewritten query.
    pub wire: Vec<u8>,
    /// Its question's lowercase key.
    pub key: NameKey,
    /// What its reply needs.
    pub reverts: Reverts,
}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            wire: Vec::new(),
            key: NameKey::EMPTY,
            reverts: Reverts::default(),
        }
    }
}

/// Applies `rules` to the question `q` of `query`; on a change the query to answer is built
/// in `s.wire` (the client's header, EDNS and everything after the question kept).
pub fn request(rules: &[RewriteRule], query: &[u8], q: &Question<'_>, limit: usize, s: &mut Scratch) -> Rewritten {
    let mut name = crate::zone::name::display(q.key);
    let (mut qtype, mut qclass) = (q.qtype, q.qclass);
    s.reverts.steps.clear();
    s.reverts.limit = limit;
    let mut applied = false;
    for rule in rules {
        let done = match &rule.kind {
            RuleKind::Name {
                matcher,
                to,
                auto,
                answers,
            } => match renamed(matcher, to, &name) {
                Some(made) => {
                    if *auto {
                        let back = Map::Back {
                            made: made.clone(),
                            was: name.clone(),
                        };
                        s.reverts.steps.push(Step::Owner(back.clone()));
                        s.reverts.steps.push(Step::Value(back));
                    }
                    s.reverts.steps.extend(answers.iter().map(|a| match a {
                        Revert::Owner(m) => Step::Owner(Map::Rule(m.clone())),
                        Revert::Value(m) => Step::Value(Map::Rule(m.clone())),
                    }));
                    name = made;
                    true
                }
                None => false,
            },
            RuleKind::Type { from, to } => {
                let hit = qtype == *from;
                if hit {
                    qtype = *to;
                }
                hit
            }
            RuleKind::Class { from, to } => {
                let hit = qclass == *from;
                if hit {
                    qclass = *to;
                }
                hit
            }
            RuleKind::Ttl { matcher, min, max } => {
                let hit = matcher.matches(&name);
                if hit {
                    s.reverts.steps.push(Step::Ttl(*min, *max));
                }
                hit
            }
            RuleKind::Rcode { matcher, from, to } => {
                let hit = matcher.matches(&name);
                if hit {
                    s.reverts.steps.push(Step::Rcode(*from, *to));
                }
                hit
            }
        };
        applied |= done;
        if done && rule.stop {
            break;
        }
    }
    if !applied {
        return Rewritten::Unchanged;
    }
    let Ok(new) = Name::<Vec<u8>>::from_str(&name) else {
        return Rewritten::Invalid;
    };
    // The parser took the question uncompressed, so it ends at HEADER_LEN + question_len.
    let end = HEADER_LEN + wire::question_len(query);
    s.wire.clear();
    s.wire.extend_from_slice(&query[..HEADER_LEN]);
    s.wire.extend_from_slice(new.as_slice());
    s.wire.extend_from_slice(&qtype.to_int().to_be_bytes());
    s.wire.extend_from_slice(&qclass.to_int().to_be_bytes());
    s.wire.extend_from_slice(&query[end.min(query.len())..]);
    Rewritten::Changed
}

/// The name a name rule makes of `name`, when it matches.
fn renamed(m: &NameMatch, to: &str, name: &str) -> Option<String> {
    match m {
        NameMatch::Exact(from) => (name == from).then(|| to.to_string()),
        NameMatch::Prefix(p) => name.strip_prefix(p.as_str()).map(|rest| format!("{to}{rest}")),
        NameMatch::Suffix(x) => name.strip_suffix(x.as_str()).map(|rest| format!("{rest}{to}")),
        NameMatch::Substring(x) => name.contains(x.as_str()).then(|| name.replace(x.as_str(), to)),
        NameMatch::Regex(re) => re.captures(name).map(|c| expand(to, &c)),
    }
}

/// The reply to the client's `query` rebuilt from the `reply` to the rewritten one. A reply
/// that does not parse is left as it is (the block's writers made it, so that is a bug
/// elsewhere, not the client's).
pub fn respond(r: &Reverts, query: &[u8], reply: &mut Vec<u8>) {
    if let Some(made) = rebuild(r, query, reply) {
        *reply = made;
    }
}

fn rebuild(r: &Reverts, query: &[u8], reply: &[u8]) -> Option<Vec<u8>> {
    let msg = Message::from_octets(reply).ok()?;
    let client = Message::from_octets(query).ok()?;
    let question = client.first_question()?;
    let opt = msg.opt();
    // Rcode rules act on the whole rcode: the header's four bits and the OPT's upper eight.
    let mut rcode = u16::from(reply[FLAGS2] & flags2::RCODE_MASK)
        | opt.as_ref().map_or(0, |o| u16::from(o.rcode(msg.header()).ext()) << 4);
    for s in r.steps.iter().rev() {
        if let Step::Rcode(from, to) = *s {
            if rcode == from {
                rcode = to;
            }
        }
    }
    let mut b = MessageBuilder::from_target(StaticCompressor::new(Vec::with_capacity(reply.len() + 64))).ok()?;
    *b.header_mut() = msg.header();
    b.header_mut()
        .set_rcode(domain::base::iana::Rcode::masked_from_int((rcode & 0x0F) as u8));
    // Room for the OPT, which goes whatever else does not fit.
    let opt_room = opt.as_ref().map_or(0, |o| wire::OPT_LEN + o.as_record().data().len());
    b.set_push_limit(r.limit.saturating_sub(opt_room));
    let mut qb = b.question();
    qb.push(question).ok()?;
    let mut truncated = msg.header().tc();
    let mut ans = qb.answer();
    for rr in msg.answer().ok()?.flatten() {
        if !truncated && push(r, rr, |x| ans.push(x)).is_err() {
            truncated = true;
        }
    }
    let mut auth = ans.authority();
    for rr in msg.authority().ok()?.flatten() {
        if !truncated && push(r, rr, |x| auth.push(x)).is_err() {
            truncated = true;
        }
    }
    if truncated {
        auth.header_mut().set_tc(true);
    }
    let mut add = auth.additional();
    let mut opt_record = None;
    for rr in msg.additional().ok()?.flatten() {
        if rr.rtype() == Rtype::OPT {
            opt_record = Some(rr);
            continue;
        }
        // Additional records that do not fit are left out (RFC 2181 §9: no TC for them).
        if !truncated {
            let _ = push(r, rr, |x| add.push(x));
        }
    }
    if let Some(rr) = opt_record {
        add.set_push_limit(r.limit);
        let rec = rr.into_record::<AllRecordData<_, ParsedName<_>>>().ok()??;
        // The OPT's TTL field: extended rcode, version, DO and the other flags (RFC 6891 §6.1.3).
        let bits = (rec.ttl().as_secs() & 0x00FF_FFFF) | (u32::from(rcode >> 4) << 24);
        add.push(Record::new(rec.owner(), rec.class(), Ttl::from_secs(bits), rec.data()))
            .ok()?;
    }
    Some(add.finish().into_target())
}

type Parsed<'a> = domain::base::ParsedRecord<'a, &'a [u8]>;

/// Pushes one record with its owner, data and TTL rewritten by the steps (last first).
fn push<E>(
    r: &Reverts,
    rr: Parsed<'_>,
    mut push: impl FnMut(Record<Name<Vec<u8>>, RecordData<'_>>) -> Result<(), E>,
) -> Result<(), E> {
    let Ok(Some(rec)) = rr.into_record::<AllRecordData<_, ParsedName<_>>>() else {
        // Record data that does not parse stays out, as CoreDNS's unpacking would drop it.
        return Ok(());
    };
    let owner_wire: Name<Vec<u8>> = rec.owner().to_name();
    let mut owner = text(&owner_wire);
    let mut changed_owner = false;
    let mut value = value_name(rec.data()).map(|n| text(&n));
    let mut changed_value = false;
    let mut ttl = rec.ttl().as_secs();
    for s in r.steps.iter().rev() {
        match s {
            Step::Owner(m) => {
                if let Some(new) = m.apply(&owner) {
                    changed_owner |= new != owner;
                    owner = new;
                }
            }
            Step::Value(m) => {
                if let Some(v) = value.as_mut() {
                    if let Some(new) = m.apply(v) {
                        changed_value |= new != *v;
                        *v = new;
                    }
                }
            }
            Step::Ttl(min, max) => ttl = ttl.clamp(*min, *max),
            Step::Rcode(..) => {}
        }
    }
    let owner = if changed_owner {
        Name::<Vec<u8>>::from_str(&owner).unwrap_or(owner_wire)
    } else {
        owner_wire
    };
    let data = match (
        changed_value,
        value.as_deref().and_then(|v| Name::<Vec<u8>>::from_str(v).ok()),
    ) {
        (true, Some(new)) => with_value(rec.data(), &new).map_or(RecordData::Kept(rec.data()), RecordData::Made),
        _ => RecordData::Kept(rec.data()),
    };
    push(Record::new(owner, rec.class(), Ttl::from_secs(ttl), data))
}

type Data<'a> = AllRecordData<&'a [u8], ParsedName<&'a [u8]>>;

/// A record's data: as it came, or remade with a new name in it.
enum RecordData<'a> {
    Kept(&'a Data<'a>),
    Made(UnknownRecordData<Vec<u8>>),
}

impl RecordData_ for RecordData<'_> {
    fn rtype(&self) -> Rtype {
        match self {
            RecordData::Kept(d) => RecordData_::rtype(*d),
            RecordData::Made(d) => d.rtype(),
        }
    }
}

impl domain::base::rdata::ComposeRecordData for RecordData<'_> {
    fn rdlen(&self, compress: bool) -> Option<u16> {
        match self {
            RecordData::Kept(d) => d.rdlen(compress),
            RecordData::Made(d) => d.rdlen(compress),
        }
    }

    fn compose_rdata<Target: domain::base::wire::Composer + ?Sized>(
        &self,
        target: &mut Target,
    ) -> Result<(), Target::AppendError> {
        match self {
            RecordData::Kept(d) => d.compose_rdata(target),
            RecordData::Made(d) => d.compose_rdata(target),
        }
    }

    fn compose_canonical_rdata<Target: domain::base::wire::Composer + ?Sized>(
        &self,
        target: &mut Target,
    ) -> Result<(), Target::AppendError> {
        match self {
            RecordData::Kept(d) => d.compose_canonical_rdata(target),
            RecordData::Made(d) => d.compose_canonical_rdata(target),
        }
    }
}

/// The lowercase presentation form of a name, with its final dot.
fn text<N: ToName + ?Sized>(n: &N) -> String {
    let lower = crate::zone::name::lowercase(n);
    crate::zone::name::display(lower.as_slice())
}

/// The name in record data that `answer value` rewrites (CoreDNS's list).
fn value_name(d: &Data<'_>) -> Option<Name<Vec<u8>>> {
    Some(match d {
        AllRecordData::Cname(x) => x.cname().to_name(),
        AllRecordData::Dname(x) => x.dname().to_name(),
        AllRecordData::Ns(x) => x.nsdname().to_name(),
        AllRecordData::Ptr(x) => x.ptrdname().to_name(),
        AllRecordData::Mx(x) => x.exchange().to_name(),
        AllRecordData::Srv(x) => x.target().to_name(),
        AllRecordData::Naptr(x) => x.replacement().to_name(),
        AllRecordData::Soa(x) => x.mname().to_name(),
        _ => return None,
    })
}

/// `d` with `new` in place of its value name, names written uncompressed.
fn with_value(d: &Data<'_>, new: &Name<Vec<u8>>) -> Option<UnknownRecordData<Vec<u8>>> {
    let n = new.as_slice();
    let mut out = Vec::with_capacity(n.len() + 24);
    match d {
        AllRecordData::Cname(_) | AllRecordData::Dname(_) | AllRecordData::Ns(_) | AllRecordData::Ptr(_) => {
            out.extend_from_slice(n)
        }
        AllRecordData::Mx(x) => {
            out.extend_from_slice(&x.preference().to_be_bytes());
            out.extend_from_slice(n);
        }
        AllRecordData::Srv(x) => {
            for v in [x.priority(), x.weight(), x.port()] {
                out.extend_from_slice(&v.to_be_bytes());
            }
            out.extend_from_slice(n);
        }
        AllRecordData::Naptr(x) => {
            out.extend_from_slice(&x.order().to_be_bytes());
            out.extend_from_slice(&x.preference().to_be_bytes());
            for c in [x.flags(), x.services(), x.regexp()] {
                out.push(c.len() as u8);
                out.extend_from_slice(c.as_slice());
            }
            out.extend_from_slice(n);
        }
        AllRecordData::Soa(x) => {
            out.extend_from_slice(n);
            let rname: Name<Vec<u8>> = x.rname().to_name();
            out.extend_from_slice(rname.as_slice());
            for v in [
                x.serial().into_int(),
                x.refresh().as_secs(),
                x.retry().as_secs(),
                x.expire().as_secs(),
                x.minimum().as_secs(),
            ] {
                out.extend_from_slice(&v.to_be_bytes());
            }
        }
        _ => return None,
    }
    UnknownRecordData::from_octets(RecordData_::rtype(d), out).ok()
}
