//! Authoritative resolution: what goes in each section, as references into the snapshot.
//! Nothing here allocates; a reply is written from a [`Resolution`] by `dns::reply`.

use std::cell::{Cell, OnceCell};

use arrayvec::ArrayVec;

use domain::base::iana::{Rcode, Rtype};

use super::pipeline::{Block, FileHandler, Handler, HostsHandler};
use super::request::Question;
use std::sync::Arc;

use crate::config::Transport;
use crate::dns::plan::Plan;
use crate::dnssec::denial;
use crate::meter::series::Plugin;
use crate::zone::lookup::Found;
use crate::zone::name::{MAX_NAME_LEN, NameKey, is_in_zone};
use crate::zone::rrset::Rrset;
use crate::zone::store::{MAX_CNAME_CHAIN, Node, Zone};

/// Whose name a record carries.
#[derive(Clone, Copy, Debug)]
pub enum Owner<'r> {
    /// The query name, as sent (compresses to the question, keeping its case).
    Query,
    /// An uncompressed wire name held in the snapshot.
    Name(&'r [u8]),
}

/// One RRset to write, with the RRSIGs that may cover it.
#[derive(Clone, Copy, Debug)]
pub struct Part<'r> {
    /// Owner name.
    pub owner: Owner<'r>,
    /// The records.
    pub set: Rrset<'r>,
    /// The node's RRSIG RRset (records covering `set` are written when DO=1).
    pub sigs: Option<Rrset<'r>>,
    /// TTL to write.
    pub ttl: u32,
    /// The zone is authoritative for the RRset, so it is signed: not the NS of a cut, not
    /// glue (RFC 4035 §2.2).
    pub authoritative: bool,
}

/// Most RRsets in the answer or authority section: a full CNAME chain plus an ANY answer fit.
pub const MAX_PARTS: usize = 24;
/// Most RRsets in the additional section: the A and AAAA of 16 NS, MX or SRV targets.
pub const MAX_ADDITIONAL_PARTS: usize = 32;

/// A fixed-capacity list of parts (no allocation on the query path, and nothing written to
/// make an empty one: a Resolution is made per query, and initialising its sections' slots
/// cost more than some lookups).
#[derive(Clone)]
pub struct Parts<'r, const N: usize = MAX_PARTS> {
    items: ArrayVec<Part<'r>, N>,
}

impl<'r, const N: usize> Parts<'r, N> {
    /// Empty.
    pub const fn new() -> Self {
        Parts {
            items: ArrayVec::new_const(),
        }
    }

    /// Appends; returns false when full.
    pub fn push(&mut self, p: Part<'r>) -> bool {
        self.items.try_push(p).is_ok()
    }

    /// The parts in order.
    pub fn iter(&self) -> impl Iterator<Item = &Part<'r>> {
        self.items.iter()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Empties the list.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// Keeps the first `n` parts.
    pub fn truncate(&mut self, n: usize) {
        self.items.truncate(n);
    }

    /// The part, when there is exactly one.
    pub fn only(&self) -> Option<&Part<'r>> {
        match self.items.as_slice() {
            [p] => Some(p),
            _ => None,
        }
    }
}

impl<const N: usize> Default for Parts<'_, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Most names one answer synthesises from DNAMEs (RFC 6672 §3.2); a longer chain of DNAMEs
/// ends there, like a CNAME chain at its limit (the resolver continues from the last name).
pub const MAX_SYNTHESIZED: usize = 4;

/// The names that DNAME redirections make for one answer, each held as the rdata of its
/// synthesised CNAME (RFC 6672 §3.2), which is also the next name of the chain. The caller
/// owns it for as long as the [`Resolution`] that points into it, and reuses it from query
/// to query ([`Synthesized::reset`] empties only the slots a DNAME filled).
pub struct Synthesized {
    slots: [OnceCell<SynthName>; MAX_SYNTHESIZED],
    used: Cell<usize>,
}

/// One synthesised name, in the rdata layout of [`crate::zone::rrset::push_rdata`].
struct SynthName {
    rdata: [u8; 2 + MAX_NAME_LEN],
    len: usize,
}

impl SynthName {
    fn rdata(&self) -> &[u8] {
        &self.rdata[..self.len]
    }

    fn name(&self) -> &[u8] {
        &self.rdata[2..self.len]
    }
}

impl Synthesized {
    /// Empty.
    pub const fn new() -> Self {
        Synthesized {
            slots: [const { OnceCell::new() }; MAX_SYNTHESIZED],
            used: Cell::new(0),
        }
    }

    /// Empties it for the next answer.
    pub fn reset(&mut self) {
        for slot in &mut self.slots[..self.used.get()] {
            slot.take();
        }
        self.used.set(0);
    }

    /// Holds the lowercase name `prefix` + `suffix` (wire; at most 255 octets, checked by the
    /// caller); `None` when every slot is used.
    fn push(&self, prefix: &[u8], suffix: &[u8]) -> Option<&SynthName> {
        let i = self.used.get();
        let slot = self.slots.get(i)?;
        self.used.set(i + 1);
        let len = prefix.len() + suffix.len();
        let mut rdata = [0u8; 2 + MAX_NAME_LEN];
        rdata[..2].copy_from_slice(&(len as u16).to_be_bytes());
        rdata[2..2 + prefix.len()].copy_from_slice(prefix);
        rdata[2 + prefix.len()..2 + len].copy_from_slice(suffix);
        // Label lengths are below 64, so ASCII lowercasing leaves them be.
        rdata[2..2 + len].make_ascii_lowercase();
        Some(slot.get_or_init(|| SynthName { rdata, len: 2 + len }))
    }
}

impl Default for Synthesized {
    fn default() -> Self {
        Self::new()
    }
}

/// The content of an authoritative reply. The caller owns it and the resolver fills it in
/// place: it is a few kilobytes, and moving it through return values cost more than the
/// lookup itself.
pub struct Resolution<'r> {
    /// Response code.
    pub rcode: Rcode,
    /// AA bit.
    pub aa: bool,
    /// Answer section.
    pub answer: Parts<'r>,
    /// Authority section.
    pub authority: Parts<'r>,
    /// Additional section: addresses of NS, MX and SRV targets (RFC 1034 §4.3.2 step 6).
    pub additional: Parts<'r, MAX_ADDITIONAL_PARTS>,
    /// The glue is required (a referral): if it does not fit, the reply is truncated
    /// (RFC 9471 §3).
    pub glue_required: bool,
}

impl<'r> Resolution<'r> {
    /// Empty, to be filled in.
    pub const fn new() -> Self {
        Resolution {
            rcode: Rcode::NOERROR,
            aa: true,
            answer: Parts::new(),
            authority: Parts::new(),
            additional: Parts::new(),
            glue_required: false,
        }
    }

    /// `minimal`: a positive answer without authority and additional records (CoreDNS's
    /// plugin: only NOERROR with answers; referrals, NODATA and errors keep theirs).
    pub fn minimize(&mut self) {
        if self.rcode == Rcode::NOERROR && !self.answer.is_empty() {
            self.authority.clear();
            self.additional.clear();
        }
    }

    /// Starts over with `rcode` and `aa`.
    fn reset(&mut self, rcode: Rcode, aa: bool) {
        self.rcode = rcode;
        self.aa = aa;
        self.answer.clear();
        self.authority.clear();
        self.additional.clear();
        self.glue_required = false;
    }
}

impl Default for Resolution<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// An authoritative answer of one RRset at the query name and nothing else: the ACME
/// challenge values, the DNSKEY RRset of an online signer.
pub fn single_answer<'r>(set: Rrset<'r>, res: &mut Resolution<'r>) {
    res.reset(Rcode::NOERROR, true);
    res.answer.push(Part {
        owner: Owner::Query,
        set,
        sigs: None,
        ttl: set.ttl(),
        authoritative: true,
    });
}

/// Runs the block's handlers in order; `None` when none of them claims the name.
pub fn resolve<'b: 'r, 'r>(
    block: &'b Block,
    q: &'r Question<'_>,
    transport: Transport,
    dnssec_ok: bool,
    synth: &'r Synthesized,
    res: &mut Resolution<'r>,
) -> Option<Step<'b>> {
    for h in &block.handlers {
        let claimed = match h {
            Handler::Hosts(h) => hosts(h, q, transport, res).then_some(Plugin::Hosts),
            Handler::File(f) => file(f, q, transport, dnssec_ok, synth, res).then_some(Plugin::File),
            Handler::Forward(p) => {
                if p.forwards(q.key) {
                    return Some(Step::Forward(p));
                }
                None
            }
            Handler::Unavailable(u) => {
                // The longest zone that holds the name, as for the others.
                let hit = u
                    .zones
                    .iter()
                    .filter(|(z, _)| is_in_zone(q.key, z))
                    .max_by_key(|(z, _)| z.len());
                if let Some((_, ede)) = hit {
                    return Some(Step::Unavailable(*ede));
                }
                None
            }
        };
        if let Some(plugin) = claimed {
            return Some(Step::Answer(plugin));
        }
    }
    None
}

/// What a block does with a query.
#[derive(Clone, Copy)]
pub enum Step<'r> {
    /// Answer from local data, now in the [`Resolution`], written by this plugin.
    Answer(Plugin),
    /// Ask the upstreams of this plan (asynchronous: the network layer takes over).
    Forward(&'r Arc<Plan>),
    /// The zone has no data to serve: SERVFAIL with this Extended DNS Error.
    Unavailable(u16),
}

fn file<'r>(
    f: &'r FileHandler,
    q: &'r Question<'_>,
    transport: Transport,
    dnssec_ok: bool,
    synth: &'r Synthesized,
    res: &mut Resolution<'r>,
) -> bool {
    let Some(zone) = f.zone_for(q.key) else {
        return false;
    };
    in_zone(zone, q, transport, dnssec_ok, synth, res);
    // `fallthrough`: an NXDOMAIN is the next plugin's to answer.
    !(res.rcode == Rcode::NXDOMAIN && f.falls_through(q.key))
}

/// RFC 1034 §4.3.2 inside one zone: step 3, following CNAMEs that stay in it, then step 6,
/// the additional section.
pub fn in_zone<'r>(
    zone: &'r Zone,
    q: &'r Question<'_>,
    transport: Transport,
    dnssec_ok: bool,
    synth: &'r Synthesized,
    res: &mut Resolution<'r>,
) {
    res.reset(Rcode::NOERROR, true);
    sections(zone, q, transport, dnssec_ok, synth, res);
    add_targets(zone, dnssec_ok, res);
}

/// Additional-section processing (RFC 1034 §4.3.2 step 6): the A and AAAA RRsets of the
/// names in NS, MX and SRV records of the answer and authority, when the zone holds them;
/// with DO=1 their RRSIGs, unless they are glue (data at or below a cut is not signed,
/// RFC 4035 §2.2).
fn add_targets<'r>(zone: &'r Zone, dnssec_ok: bool, res: &mut Resolution<'r>) {
    let Resolution {
        answer,
        authority,
        additional,
        ..
    } = res;
    for p in answer.iter().chain(authority.iter()) {
        // Where the target name starts in the rdata; it runs to the end.
        let offset = match p.set.rtype() {
            Rtype::NS => 0,
            Rtype::MX => 2,
            Rtype::SRV => 6,
            _ => continue,
        };
        for rd in p.set.rdatas() {
            let Some(target) = rd.get(offset..) else {
                continue;
            };
            let Ok(name) = domain::base::Name::from_slice(target) else {
                continue;
            };
            let Some(node) = zone.node(NameKey::of(name).as_slice()) else {
                continue;
            };
            let authoritative = node.below_cut().is_none() && !node.is_delegation();
            for t in [Rtype::A, Rtype::AAAA] {
                if let Some(set) = node.rrset(t) {
                    additional.push(Part {
                        owner: Owner::Name(target),
                        set,
                        sigs: if dnssec_ok && authoritative {
                            node.rrset(Rtype::RRSIG)
                        } else {
                            None
                        },
                        ttl: set.ttl(),
                        authoritative,
                    });
                }
            }
        }
    }
}

/// RFC 1034 §4.3.2 step 3 inside one zone, following CNAMEs and DNAMEs (RFC 6672 §3.2)
/// that stay in it; CNAMEs and DNAMEs count against one chain limit.
fn sections<'r>(
    zone: &'r Zone,
    q: &'r Question<'_>,
    transport: Transport,
    dnssec_ok: bool,
    synth: &'r Synthesized,
    res: &mut Resolution<'r>,
) {
    let mut key: &[u8] = q.key;
    // A CNAME target's key, built only when a chain is followed.
    let mut target_key: Option<NameKey> = None;
    let mut owner = Owner::Query;
    let sigs_of = |n: Node<'r>| {
        if dnssec_ok { n.rrset(Rtype::RRSIG) } else { None }
    };
    for hop in 0..=MAX_CNAME_CHAIN {
        let mut wildcard = false;
        let node = match zone.find(key, q.qtype) {
            Found::Name(node) => node,
            Found::Wildcard(node) => {
                // RFC 4035 §3.1.3.3: a wildcard answer carries the proof that the name itself
                // does not exist.
                wildcard = true;
                if dnssec_ok {
                    denial::wildcard_answer(res, zone, key);
                }
                node
            }
            Found::Referral { cut, node } => {
                // RFC 1034 §4.3.2 step 3b: a referral, the child's NS in authority. Reached
                // through a CNAME, the reply stays authoritative for the chain it holds.
                if hop == 0 {
                    res.aa = false;
                }
                push_referral(res, zone, cut, node, dnssec_ok);
                return;
            }
            Found::Dname {
                owner: dname_owner,
                node,
            } => {
                // RFC 6672 §3.2: the DNAME, then a CNAME from the name to the name with the
                // DNAME owner replaced by its target (TTL of the DNAME), then the new name.
                let Some(dname) = node.rrset(Rtype::DNAME) else {
                    return;
                };
                res.answer.push(Part {
                    owner: Owner::Name(dname_owner),
                    set: dname,
                    sigs: sigs_of(node),
                    ttl: dname.ttl(),
                    authoritative: true,
                });
                let Some(target) = dname.rdatas().next() else {
                    return;
                };
                let prefix = &key[..key.len() - dname_owner.len()];
                if prefix.len() + target.len() > MAX_NAME_LEN {
                    // §2.2: the new name would be too long.
                    res.rcode = Rcode::YXDOMAIN;
                    return;
                }
                let Some(name) = synth.push(prefix, target) else {
                    return;
                };
                res.answer.push(Part {
                    owner,
                    set: Rrset::from_parts(Rtype::CNAME, dname.ttl(), 1, name.rdata()),
                    sigs: None,
                    ttl: dname.ttl(),
                    authoritative: true,
                });
                if q.qtype == Rtype::CNAME || !is_in_zone(name.name(), zone.apex()) {
                    return;
                }
                key = name.name();
                owner = Owner::Name(name.name());
                continue;
            }
            Found::NxDomain => {
                // RFC 6604 §3: the rcode describes the last name of the chain.
                res.rcode = Rcode::NXDOMAIN;
                push_soa(res, zone, dnssec_ok);
                if dnssec_ok {
                    denial::name_error(res, zone, key);
                }
                return;
            }
        };
        if let Some(cname) = node.rrset(Rtype::CNAME) {
            if q.qtype != Rtype::CNAME && q.qtype != Rtype::ANY {
                res.answer.push(Part {
                    owner,
                    set: cname,
                    sigs: sigs_of(node),
                    ttl: cname.ttl(),
                    authoritative: true,
                });
                let Some(target) = cname.rdatas().next() else {
                    return;
                };
                let Ok(target_name) = domain::base::Name::from_slice(target) else {
                    return;
                };
                let next = target_key.insert(NameKey::of(target_name)).as_slice();
                if !is_in_zone(next, zone.apex()) {
                    return;
                }
                key = next;
                owner = Owner::Name(target);
                continue;
            }
        }
        if q.qtype == Rtype::ANY {
            // RFC 8482 §4.2: over UDP one RRset is enough; TCP gets them all.
            for set in node.rrsets().filter(|s| s.rtype() != Rtype::RRSIG) {
                res.answer.push(Part {
                    owner,
                    set,
                    sigs: sigs_of(node),
                    ttl: set.ttl(),
                    authoritative: true,
                });
                if !transport.is_stream() {
                    break;
                }
            }
        } else if let Some(set) = node.rrset(q.qtype) {
            res.answer.push(Part {
                owner,
                set,
                sigs: sigs_of(node),
                ttl: set.ttl(),
                authoritative: true,
            });
        }
        if res.answer.is_empty() || (hop > 0 && !answers_type(node, q.qtype)) {
            // NODATA (RFC 2308 §2.2), also at the end of a CNAME chain.
            push_soa(res, zone, dnssec_ok);
            if dnssec_ok {
                if wildcard {
                    denial::wildcard_no_data(res, zone, key);
                } else {
                    denial::no_data(res, zone, key);
                }
            }
        }
        return;
    }
    // The chain is longer than we follow: give what we have (the resolver continues).
}

/// The child's NS at `cut` and, from a signed zone with DO=1, its DS with the RRSIG or the
/// proof that it has none (RFC 4035 §3.1.4: an unsigned zone's DS proves nothing; its
/// referral is NS and glue). The glue is required: without it the reply is truncated (RFC
/// 9471 §3).
fn push_referral<'r>(res: &mut Resolution<'r>, zone: &'r Zone, cut: &'r [u8], node: Node<'r>, dnssec_ok: bool) {
    let Some(ns) = node.rrset(Rtype::NS) else {
        return;
    };
    res.authority.push(Part {
        owner: Owner::Name(cut),
        set: ns,
        sigs: None,
        ttl: ns.ttl(),
        // The child's (RFC 4035 §2.2).
        authoritative: false,
    });
    let sigs = node.rrset(Rtype::RRSIG).filter(|s| dnssec_ok && covers(*s, Rtype::DS));
    if let (Some(ds), Some(sigs)) = (node.rrset(Rtype::DS), sigs) {
        res.authority.push(Part {
            owner: Owner::Name(cut),
            set: ds,
            sigs: Some(sigs),
            ttl: ds.ttl(),
            authoritative: true,
        });
    } else if dnssec_ok && denial::is_signed(zone) {
        denial::insecure_referral(res, zone, cut);
    }
    res.glue_required = true;
}

/// Whether an RRSIG RRset has a signature over `rtype` (the type covered is the first two
/// rdata octets, RFC 4034 §3.1).
fn covers(sigs: Rrset<'_>, rtype: Rtype) -> bool {
    let covered = rtype.to_int().to_be_bytes();
    sigs.rdatas().any(|r| r.get(..2) == Some(&covered[..]))
}

fn answers_type(node: Node<'_>, qtype: Rtype) -> bool {
    qtype == Rtype::ANY && node.has_data() || node.rrset(qtype).is_some()
}

/// The SOA for a negative answer, TTL min(SOA TTL, MINIMUM) (RFC 2308 §3).
fn push_soa<'r>(res: &mut Resolution<'r>, zone: &'r Zone, dnssec_ok: bool) {
    if let (Some(soa), Some(apex)) = (zone.soa(), zone.apex_node()) {
        res.authority.push(Part {
            owner: Owner::Name(zone.apex()),
            set: soa,
            sigs: if dnssec_ok { apex.rrset(Rtype::RRSIG) } else { None },
            ttl: zone.negative_ttl(),
            authoritative: true,
        });
    }
}

/// CoreDNS' hosts semantics: names in the hosts zones answer A/AAAA; PTR for synthesised
/// reverse names; a name without entries is NXDOMAIN unless `fallthrough` covers it; a
/// PTR query outside the hosts zones is only claimed when the address is known.
fn hosts<'r>(h: &'r HostsHandler, q: &'r Question<'_>, transport: Transport, res: &mut Resolution<'r>) -> bool {
    let key = q.key;
    let in_zones = h.zones.iter().any(|z| is_in_zone(key, z));
    let table = &*h.table;
    if let Some(ptr) = table.reverse(key) {
        res.reset(Rcode::NOERROR, true);
        if matches!(q.qtype, Rtype::PTR | Rtype::ANY) {
            res.answer.push(Part {
                owner: Owner::Query,
                set: ptr,
                sigs: None,
                ttl: ptr.ttl(),
                authoritative: true,
            });
        } else if let Some((origin, soa)) = table.origin_of(key) {
            res.authority.push(soa_part(origin, soa, table.ttl()));
        }
        return true;
    }
    if !in_zones {
        return false;
    }
    let node = table.forward(key);
    let apex = table.apex(key);
    let exists = node.is_some() || apex.is_some() || table.is_empty_non_terminal(key);
    // Without entries of its own a name falls through when asked to (the next plugin may hold
    // the zone's own data, apex included); otherwise it is NXDOMAIN unless it exists as the
    // apex or an empty non-terminal (RFC 4592 §2.2.2, RFC 8020 §2): NODATA.
    if node.is_none() && h.falls_through(key) {
        return false;
    }
    if !exists {
        res.reset(Rcode::NXDOMAIN, true);
        if let Some((origin, soa)) = table.origin_of(key) {
            res.authority.push(soa_part(origin, soa, table.ttl()));
        }
        return true;
    }
    res.reset(Rcode::NOERROR, true);
    let answer = |res: &mut Resolution<'r>, set: Rrset<'r>| {
        res.answer.push(Part {
            owner: Owner::Query,
            set,
            sigs: None,
            ttl: set.ttl(),
            authoritative: true,
        })
    };
    let any = q.qtype == Rtype::ANY;
    if let Some(n) = node {
        for t in [Rtype::A, Rtype::AAAA] {
            if q.qtype == t || any {
                if let Some(set) = n.rrset(t) {
                    answer(res, set);
                }
            }
        }
    }
    if let Some((soa, ns)) = apex {
        if q.qtype == Rtype::SOA || any {
            answer(res, soa);
        }
        if q.qtype == Rtype::NS || any {
            answer(res, ns);
        }
    }
    if any && !transport.is_stream() {
        // RFC 8482 §4.2: over UDP one RRset is enough; TCP gets them all.
        res.answer.truncate(1);
    }
    if res.answer.is_empty() {
        if let Some((origin, soa)) = table.origin_of(key) {
            res.authority.push(soa_part(origin, soa, table.ttl()));
        }
    }
    true
}

fn soa_part<'r>(origin: &'r [u8], soa: Rrset<'r>, ttl: u32) -> Part<'r> {
    Part {
        owner: Owner::Name(origin),
        set: soa,
        sigs: None,
        ttl,
        authoritative: true,
    }
}
