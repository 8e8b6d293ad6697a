//! `answer`: one query in, one reply (or nothing) out. Synchronous, no I/O, no allocation
//! once `out` has its 64 KiB capacity.

use domain::base::iana::{Class, Opcode, OptRcode, Rcode, Rtype};

use super::pipeline::Route;
use super::reply::{self, Made, MadeOwner, MadeReply, Written};
use super::request::{self, DropReason, EarlyError, Parsed, Question, Request};
use super::resolve::{self, Resolution, Synthesized};
use super::rewrite::{self, Reverts, Rewritten};
use super::template;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use arrayvec::ArrayVec;

use crate::config::{AclAction, Transport};
use crate::dns::plan::Plan;
pub use crate::meter::series::Plugin;
use crate::zone::challenge::ChallengeSet;
use crate::zone::name::NameKey;
use crate::zone::rrset::WireData;

/// Capacity to give reply buffers up front so replies never reallocate.
pub const REPLY_CAPACITY: usize = super::wire::MAX_STREAM_MESSAGE + 2;

/// Per-listener context of a query.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The listener's route (`None` while the snapshot lacks it: everything is REFUSED).
    pub route: Option<&'a Route>,
    /// The transport the query came over.
    pub transport: Transport,
    /// Published ACME challenge values, answered before zone data.
    pub challenges: Option<&'a ChallengeSet>,
    /// The client's address and port (for `whoami`), when the caller has them.
    pub client: Option<SocketAddr>,
}

/// What happened to a query.
// It lives on the stack for one query: boxing the forwarded request (the large variant)
// would allocate on the forwarder's cache-hit path, which allocates nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Outcome<'a> {
    /// Nothing to send.
    Drop(DropReason),
    /// The block forwards this query: the network layer asks its upstreams.
    Forward(Forwarding<'a>),
    /// A zone transfer (AXFR, or IXFR answered AXFR-style) over TCP or TLS: the network
    /// layer writes its messages ([`super::axfr::AxfrOut`]).
    Transfer {
        /// The route entry (zone and block) that transfers it.
        entry: usize,
        /// The zone.
        zone: &'a Arc<crate::zone::store::Zone>,
        /// The query's ID.
        id: u16,
    },
    /// An RFC 2136 update the block takes: the control thread applies it and the network
    /// layer sends the reply it holds with the rcode that comes back.
    Update(Box<super::update::UpdateAsk>),
    /// `out` holds a reply.
    Reply {
        /// Full response code.
        rcode: u16,
        /// TC set.
        truncated: bool,
        /// The route entry (zone and block) that answered, `None` when no block took it.
        entry: Option<usize>,
        /// What went wrong, for the block's `errors` log.
        error: Option<&'static str>,
        /// Who wrote the reply.
        plugin: Plugin,
        /// The question's type and DO, for the metrics.
        asked: Asked,
    },
}

/// What the metrics count of a query: its type (0 without a question) and DO.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Asked {
    /// QTYPE.
    pub qtype: u16,
    /// DO set in its OPT.
    pub dnssec_ok: bool,
    /// What its DNS Cookie showed, if it had one.
    pub cookie: Option<super::cookie::Verdict>,
}

impl Asked {
    /// The facts of a parsed request.
    pub fn of(req: &Request<'_>) -> Asked {
        Asked {
            qtype: req.question.map_or(0, |q| q.qtype.to_int()),
            dnssec_ok: req.edns.is_some_and(|e| e.dnssec_ok),
            cookie: req.cookie_reply.map(|c| c.verdict),
        }
    }
}

/// A query its block forwards, with what the core learned of it, so the forwarder neither
/// looks the plan up again nor parses the query again.
#[derive(Clone, Copy)]
pub struct Forwarding<'a> {
    /// The route entry (zone and block) that forwards it.
    pub entry: usize,
    /// The block's forward plan.
    pub plan: &'a Arc<Plan>,
    /// The parsed request: its question, RD and CD, and EDNS.
    pub request: Request<'a>,
    /// The query as the block answers it: the client's, or the one `rewrite` made.
    pub wire: &'a [u8],
    /// With `rewrite`: what the reply needs to become the client's.
    pub reverts: Option<&'a Reverts>,
}

impl std::fmt::Debug for Forwarding<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarding")
            .field("entry", &self.entry)
            .finish_non_exhaustive()
    }
}

/// What a serving loop lends each query it answers, reused from query to query: the
/// question's lowercase key (which the outcome may refer to) and the names DNAME synthesis
/// makes. Made once per loop, so that a query pays nothing to set it up.
pub struct Scratch {
    key: NameKey,
    names: Synthesized,
    rewrite: Option<Box<rewrite::Scratch>>,
}

impl Scratch {
    /// Empty.
    pub const fn new() -> Self {
        Scratch {
            key: NameKey::EMPTY,
            names: Synthesized::new(),
            rewrite: None,
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// Answers `query` into `out`.
pub fn answer<'a>(ctx: &Ctx<'a>, query: &'a [u8], scratch: &'a mut Scratch, out: &mut Vec<u8>) -> Outcome<'a> {
    let Scratch { key, names, rewrite } = scratch;
    names.reset();
    let names: &'a Synthesized = names;
    let req = match request::parse(query, key) {
        Parsed::Drop(r) => return Outcome::Drop(r),
        Parsed::Error(mut req, e) => {
            cookie(&mut req, ctx);
            if e == EarlyError::NotImp && req.opcode != Opcode::QUERY {
                // RD and CD are defined for QUERY only (RFC 1035 §4.1.1, RFC 4035 §3.2.2):
                // a reply to an opcode we do not know does not claim them.
                req.rd = false;
                req.cd = false;
            }
            let rcode = match e {
                EarlyError::FormErr => OptRcode::FORMERR,
                EarlyError::NotImp => OptRcode::NOTIMP,
                EarlyError::BadVers => OptRcode::BADVERS,
                EarlyError::CookieOnly => OptRcode::NOERROR,
            };
            return error(&req, rcode, ctx, out);
        }
        Parsed::Query(mut req) => {
            cookie(&mut req, ctx);
            req
        }
    };
    let Some(q) = req.question else {
        return error(&req, OptRcode::FORMERR, ctx, out);
    };
    let chaos = ctx.route.is_some_and(Route::chaos);
    let reclass = ctx.route.is_some_and(Route::reclass);
    let transfer = matches!(q.qtype, Rtype::AXFR | Rtype::IXFR);
    if let Some(rcode) = refuse_class(q.qclass, chaos, reclass).or_else(|| refuse_type(q.qtype).filter(|_| !transfer)) {
        return error(&req, rcode, ctx, out);
    }
    let Some((entry, block)) = ctx.route.and_then(|r| r.entry_for(q.key)) else {
        return error(&req, OptRcode::REFUSED, ctx, out);
    };
    let r = Routed {
        block,
        entry,
        query,
        req,
        q,
        names,
        rewrite,
        signer: None,
    };
    if req.tsig.is_some() || block.plugins.tsig.is_some() {
        return signed(ctx, r, out);
    }
    answer_routed(ctx, r, out)
}

/// RFC 7873: the request's cookie checked against the client's address, and the one its
/// reply is to carry.
fn cookie(req: &mut Request<'_>, ctx: &Ctx<'_>) {
    let (Some(data), Some(client)) = (req.cookie, ctx.client) else {
        return;
    };
    let secrets = match ctx.route {
        Some(r) => r.cookie_secrets(),
        None => super::cookie::Secrets::process(),
    };
    let now = super::unix_seconds() as u32;
    req.cookie_reply = super::cookie::answer(data, client.ip().to_canonical(), now, secrets);
}

/// A request its block takes: the block and its route entry, the query and what parsing
/// made of it, and the borrows of a [`Scratch`] answering it uses.
struct Routed<'a> {
    block: &'a super::pipeline::Block,
    entry: usize,
    query: &'a [u8],
    req: Request<'a>,
    q: Question<'a>,
    names: &'a Synthesized,
    rewrite: &'a mut Option<Box<rewrite::Scratch>>,
    /// The key that signed the request, once its TSIG checked.
    signer: Option<NameKey>,
}

/// `tsig` (RFC 8945 §5.2): a block without it answers a signed request BADKEY; with it, an
/// unsigned request of a type or opcode it requires is REFUSED, a signed one is checked and
/// its reply signed. A signed request the block would forward is REFUSED (signed): the
/// upstream could not sign its answer with our key, and an unsigned one is worthless to
/// a client that signed.
fn signed<'a>(ctx: &Ctx<'a>, r: Routed<'a>, out: &mut Vec<u8>) -> Outcome<'a> {
    let (block, entry, query, req, q) = (r.block, r.entry, r.query, r.req, r.q);
    let by = Some((entry, Plugin::Tsig));
    let policy = block.plugins.tsig.as_ref().filter(|p| p.covers(q.key));
    // An update is checked against every key of the server, with or without a `tsig` here.
    let update_keys = (req.opcode == Opcode::UPDATE)
        .then_some(block.plugins.update.as_ref())
        .flatten()
        .map(|u| &u.keys);
    let Some(keys) = policy.map(|p| &p.keys).or(update_keys) else {
        if req.tsig.is_some() {
            let w = reply::write_tsig_error(&req, reply::TsigError::BadKey, ctx.transport, out);
            return written(
                w,
                &req,
                by,
                Some("tsig: a signed request to a block without tsig (NOTAUTH, BADKEY)"),
            );
        }
        return answer_routed(ctx, r, out);
    };
    if req.tsig.is_none() {
        if policy.is_some_and(|p| p.requires(q.qtype, req.opcode)) {
            let w = reply::write_error(&req, OptRcode::REFUSED, ctx.transport, out);
            return written(
                w,
                &req,
                by,
                Some("tsig: an unsigned request the block requires signed (REFUSED)"),
            );
        }
        return answer_routed(ctx, r, out);
    }
    let tx = match super::tsig::check(keys, query) {
        Some(super::tsig::Checked::Signed(tx)) => tx,
        Some(super::tsig::Checked::Unsigned(e)) => {
            let w = reply::write_tsig_error(&req, e, ctx.transport, out);
            return written(w, &req, by, Some("tsig: the request's TSIG does not check (NOTAUTH)"));
        }
        Some(super::tsig::Checked::Reply(reply)) => {
            out.clear();
            out.extend_from_slice(&reply);
            let why = Some("tsig: the request's time is outside its fudge (NOTAUTH, BADTIME)");
            return replied(out, Some(entry), Plugin::Tsig, Asked::of(&req), why);
        }
        Some(super::tsig::Checked::FormErr) | None => {
            let w = reply::write_error(&req, OptRcode::FORMERR, ctx.transport, out);
            return written(w, &req, by, None);
        }
    };
    let limit = super::wire::reply_limit(ctx.transport, req.edns.map(|e| e.udp_size));
    let r = Routed {
        signer: Some(NameKey::of(tx.key().name())),
        ..r
    };
    let outcome = match answer_routed(ctx, r, out) {
        Outcome::Forward(_) => {
            let w = reply::write_error(&req, OptRcode::REFUSED, ctx.transport, out);
            written(w, &req, by, Some("tsig: a signed query the block forwards (REFUSED)"))
        }
        o => o,
    };
    match outcome {
        Outcome::Reply {
            entry,
            error,
            plugin,
            asked,
            ..
        } => {
            if !super::tsig::sign(tx, out, limit) {
                return Outcome::Drop(DropReason::Policy);
            }
            replied(out, entry, plugin, asked, error)
        }
        // The reply to an update is signed once the control thread has given its rcode.
        Outcome::Update(mut u) => {
            u.tx = Some(tx);
            Outcome::Update(u)
        }
        // A transfer is signed message by message by whoever writes it (`net::serve`).
        o => o,
    }
}

/// The outcome of the reply in `out`, rcode and TC read back from it.
fn replied(
    out: &[u8],
    entry: Option<usize>,
    plugin: Plugin,
    asked: Asked,
    error: Option<&'static str>,
) -> Outcome<'static> {
    let (rcode, truncated) = super::wire::rcode_and_tc(out);
    Outcome::Reply {
        rcode,
        truncated,
        entry,
        error,
        plugin,
        asked,
    }
}

/// Answers a request its block takes (after `tsig`).
fn answer_routed<'a>(ctx: &Ctx<'a>, r: Routed<'a>, out: &mut Vec<u8>) -> Outcome<'a> {
    let Routed {
        block,
        entry,
        query,
        req,
        q,
        names,
        rewrite,
        signer,
    } = r;
    let plugins = &block.plugins;
    if req.opcode == Opcode::UPDATE {
        return super::update::take(
            &req,
            q.key,
            plugins,
            (entry, signer.as_ref()),
            query,
            ctx.transport,
            out,
        );
    }
    if req.opcode == Opcode::NOTIFY {
        return notify(&req, &q, plugins, entry, ctx, out);
    }
    if matches!(q.qtype, Rtype::AXFR | Rtype::IXFR) {
        return zone_transfer(&req, &q, block, entry, ctx, out);
    }
    let mut req = req;
    if let Some(rd) = plugins.header.and_then(|h| h.query[2]) {
        // `header { query set|clear rd }`: the block and its upstreams see this RD (AA and
        // RA mean nothing in a query).
        req.rd = rd;
    }
    if let (Some(id), Some(true)) = (&plugins.nsid, req.edns.map(|e| e.nsid)) {
        // RFC 5001 §2.3: only to a client that asked.
        req.nsid = Some(id);
    }
    if let (Some(max), Some(e)) = (plugins.bufsize, req.edns.as_mut()) {
        // `bufsize`: the requester is taken to offer at most `max` (it only ever lowers it).
        e.udp_size = e.udp_size.min(max);
    }
    if let Some(probe) = &plugins.loop_probe {
        probe.observe(q.key, q.qtype);
    }
    if let (Some(prefix), Class::IN) = (plugins.local, q.qclass) {
        if let Some(w) = super::local::answer(&req, &q, prefix, ctx.transport, out) {
            return written(w, &req, Some((entry, Plugin::Local)), None);
        }
    }
    if !plugins.acl.is_empty() {
        let by = Some((entry, Plugin::Acl));
        match plugins.acl_action(q.key, q.qtype, ctx.client.map(|c| c.ip())) {
            Some(AclAction::Block) => {
                let w = reply::write_refusal(&req, OptRcode::REFUSED, EDE_BLOCKED, ctx.transport, out);
                return written(w, &req, by, None);
            }
            Some(AclAction::Filter) => {
                let w = reply::write_refusal(&req, OptRcode::NOERROR, EDE_FILTERED, ctx.transport, out);
                return written(w, &req, by, None);
            }
            Some(AclAction::Drop) => return Outcome::Drop(DropReason::Policy),
            Some(AclAction::Allow) | None => {}
        }
    }
    if q.qclass == Class::CH && plugins.chaos.is_some() {
        // `chaos` answers class CH (refuse_class let it through for it); the block's class
        // check refuses it otherwise.
        let found = plugins.chaos.as_ref().and_then(|c| c.lookup(q.key));
        return match found.filter(|_| q.qtype == Rtype::TXT) {
            Some(txts) => {
                let mut made: ArrayVec<Made<'_>, MAX_MADE> = ArrayVec::new();
                for rdata in txts.iter().take(MAX_MADE) {
                    made.push(Made {
                        owner: MadeOwner::Query,
                        class: Class::CH,
                        ttl: 0,
                        data: WireData {
                            rtype: Rtype::TXT,
                            data: rdata,
                        },
                    });
                }
                let m = MadeReply {
                    aa: false,
                    rcode: Rcode::NOERROR,
                    answer: &made,
                    authority: &[],
                    additional: &[],
                    ede: None,
                };
                let w = reply::write_made(&req, &q, &m, ctx.transport, out);
                written(w, &req, Some((entry, Plugin::Chaos)), None)
            }
            None => written(
                reply::write_error(&req, OptRcode::REFUSED, ctx.transport, out),
                &req,
                Some((entry, Plugin::Server)),
                None,
            ),
        };
    }
    // DNS-01 values (RFC 8555 §8.4) go first, on listeners whose zones hold the name.
    if let Some(set) = ctx.challenges.and_then(|c| c.lookup(q.key)) {
        if matches!(q.qtype, Rtype::TXT | Rtype::ANY) {
            let mut res = Resolution::new();
            resolve::single_answer(set, &mut res);
            let by = Some((entry, Plugin::Tls));
            return written(write(&req, &q, &res, ctx, out), &req, by, None);
        }
    }
    if plugins.rewrites.is_empty() {
        return answer_block(ctx, block, entry, query, req, q, names, out);
    }
    // `rewrite`: the block answers the query its rules make, and its reply is mapped back
    // to the client's question.
    let limit = super::wire::reply_limit(ctx.transport, req.edns.map(|e| e.udp_size));
    let rw: &'a mut rewrite::Scratch = rewrite.get_or_insert_with(Default::default);
    match rewrite::request(&plugins.rewrites, query, &q, limit, rw) {
        Rewritten::Unchanged => answer_block(ctx, block, entry, query, req, q, names, out),
        Rewritten::Invalid => {
            let w = reply::write_error(&req, OptRcode::SERVFAIL, ctx.transport, out);
            written(
                w,
                &req,
                Some((entry, Plugin::Server)),
                Some("rewrite: the rewritten name is not a domain name (SERVFAIL)"),
            )
        }
        Rewritten::Changed => {
            let rewrite::Scratch { wire, key, reverts } = rw;
            let (wire, reverts): (&'a [u8], &'a Reverts) = (wire, reverts);
            let Parsed::Query(mut made) = request::parse(wire, key) else {
                let w = reply::write_error(&req, OptRcode::SERVFAIL, ctx.transport, out);
                return written(
                    w,
                    &req,
                    Some((entry, Plugin::Server)),
                    Some("rewrite: the rewritten query does not parse (SERVFAIL)"),
                );
            };
            // What the plugins before `rewrite` decided for the client's query holds.
            made.rd = req.rd;
            made.nsid = req.nsid;
            made.edns = req.edns;
            let Some(mq) = made.question else {
                return error(&req, OptRcode::SERVFAIL, ctx, out);
            };
            match answer_block(ctx, block, entry, wire, made, mq, names, out) {
                Outcome::Forward(f) => Outcome::Forward(Forwarding {
                    reverts: Some(reverts),
                    ..f
                }),
                Outcome::Drop(r) => Outcome::Drop(r),
                // answer_block refuses transfers (the client's query is the one transferred).
                // Updates are taken before `rewrite`: none comes back from here.
                t @ (Outcome::Transfer { .. } | Outcome::Update(_)) => t,
                Outcome::Reply {
                    entry, error, plugin, ..
                } => {
                    rewrite::respond(reverts, query, out);
                    let (rcode, truncated) = super::wire::rcode_and_tc(out);
                    Outcome::Reply {
                        rcode,
                        truncated,
                        entry,
                        error,
                        plugin,
                        asked: Asked::of(&req),
                    }
                }
            }
        }
    }
}

/// The block's answer from `rewrite` on: templates, `any`, the data sources, the forwarder,
/// `whoami`. `query` and `req` are the query as the block sees it.
#[allow(clippy::too_many_arguments)]
fn answer_block<'a>(
    ctx: &Ctx<'a>,
    block: &'a super::pipeline::Block,
    entry: usize,
    query: &'a [u8],
    req: Request<'a>,
    q: Question<'a>,
    names: &'a Synthesized,
    out: &mut Vec<u8>,
) -> Outcome<'a> {
    let plugins = &block.plugins;
    if let Some(rcode) = refuse_type(q.qtype) {
        return error(&req, rcode, ctx, out);
    }
    if q.qclass != Class::IN {
        // Only `chaos` answers class CH, and it came before; `rewrite` may have made others.
        let w = reply::write_error(&req, OptRcode::REFUSED, ctx.transport, out);
        return written(w, &req, Some((entry, Plugin::Server)), None);
    }
    // CoreDNS's `dnssec` comes before `template` and the data: DNSKEY at a signed apex is
    // the keys', whoever serves the rest of the zone.
    if let Some(signer) = plugins
        .dnssec
        .as_ref()
        .filter(|s| q.qtype == Rtype::DNSKEY && s.zone_of(q.key) == Some(q.key))
    {
        let mut lie = crate::dnssec::online::Lie::new();
        let mut res = Resolution::new();
        let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
        crate::dnssec::online::prepare(signer, block, &q, dnssec_ok, &mut res, &mut lie);
        let w = write_online(signer, &req, &q, &res, ctx, out);
        return written(w, &req, Some((entry, Plugin::Dnssec)), None);
    }
    for t in &plugins.templates {
        match t.answer(&q, ctx.client) {
            template::Step::Next => {}
            template::Step::Fail(_) => {
                let w = reply::write_error(&req, OptRcode::SERVFAIL, ctx.transport, out);
                return written(
                    w,
                    &req,
                    Some((entry, Plugin::Template)),
                    Some("template: no regex matched or a record did not render (SERVFAIL)"),
                );
            }
            template::Step::Reply(r) => {
                let online = plugins
                    .dnssec
                    .as_ref()
                    .filter(|s| r.ede.is_none() && s.zone_of(q.key).is_some());
                let w = match online {
                    Some(signer) => write_rendered_online(signer, block, &req, &q, &r, ctx, out),
                    None => write_rendered(&req, &q, &r, ctx.transport, out),
                };
                return written(w, &req, Some((entry, Plugin::Template)), None);
            }
        }
    }
    if plugins.any && q.qtype == Rtype::ANY {
        // RFC 8482 §4.2: one synthesised HINFO instead of everything at the name.
        let hinfo = Made {
            owner: MadeOwner::Query,
            class: Class::IN,
            ttl: ANY_HINFO_TTL,
            data: WireData {
                rtype: Rtype::HINFO,
                data: ANY_HINFO,
            },
        };
        let m = MadeReply {
            aa: true,
            rcode: Rcode::NOERROR,
            answer: &[hinfo],
            authority: &[],
            additional: &[],
            ede: None,
        };
        let w = reply::write_made(&req, &q, &m, ctx.transport, out);
        return written(w, &req, Some((entry, Plugin::Any)), None);
    }
    let transport = ctx.transport;
    let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
    // The NSEC of a black lie, when the block signs online (declared before the resolution
    // that may point into it).
    let mut lie;
    let mut res = Resolution::new();
    match resolve::resolve(block, &q, transport, dnssec_ok, names, &mut res) {
        Some(resolve::Step::Answer(plugin)) => {
            if plugins.minimal {
                res.minimize();
            }
            let w = match &plugins.dnssec {
                Some(signer) => {
                    lie = crate::dnssec::online::Lie::new();
                    crate::dnssec::online::prepare(signer, block, &q, dnssec_ok, &mut res, &mut lie);
                    write_online(signer, &req, &q, &res, ctx, out)
                }
                None => write(&req, &q, &res, ctx, out),
            };
            written(w, &req, Some((entry, plugin)), None)
        }
        Some(resolve::Step::Unavailable(ede)) => {
            let w = reply::write_refusal(&req, OptRcode::SERVFAIL, ede, ctx.transport, out);
            written(
                w,
                &req,
                Some((entry, Plugin::File)),
                Some("secondary zone without data: not transferred yet or expired (SERVFAIL)"),
            )
        }
        Some(resolve::Step::Forward(plan)) => Outcome::Forward(Forwarding {
            entry,
            plan,
            request: req,
            wire: query,
            reverts: None,
        }),
        None if plugins.whoami => match ctx.client {
            Some(client) => {
                let w = whoami(&req, &q, client, ctx.transport, out);
                written(w, &req, Some((entry, Plugin::Whoami)), None)
            }
            None => error(&req, OptRcode::REFUSED, ctx, out),
        },
        // No handler of the block claims the name: we are not authoritative for it.
        None => written(
            reply::write_error(&req, OptRcode::REFUSED, ctx.transport, out),
            &req,
            Some((entry, Plugin::Server)),
            Some("no plugin of the server block serves this name (REFUSED)"),
        ),
    }
}

fn write(req: &Request<'_>, q: &Question<'_>, res: &Resolution<'_>, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> Written {
    reply::write(req, q, res, ctx.transport, out)
}

/// Writes `res` with the signatures of `signer` (this shard's cache, or signed now) when
/// the query has DO=1.
fn write_online(
    signer: &Arc<crate::dnssec::online::Signer>,
    req: &Request<'_>,
    q: &Question<'_>,
    res: &Resolution<'_>,
    ctx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> Written {
    if !req.edns.is_some_and(|e| e.dnssec_ok) {
        return write(req, q, res, ctx, out);
    }
    let now = super::unix_seconds();
    crate::dnssec::online::with_cache(signer, |cache| {
        let mut sigs = crate::dnssec::online::Online::new(signer, cache, now);
        reply::write_general(req, q, res, ctx.transport, &mut sigs, out)
    })
}

/// NOTIFY (RFC 1996 §4.7): for a `secondary` zone of the block, from one of its primaries,
/// NOERROR with AA and the question (the network layer then has the zone checked at once);
/// from anyone else, or for another name, REFUSED.
fn notify(
    req: &Request<'_>,
    q: &Question<'_>,
    plugins: &super::pipeline::BlockPlugins,
    entry: usize,
    ctx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> Outcome<'static> {
    let from = ctx.client.map(|c| c.ip().to_canonical());
    let ours = plugins
        .primaries
        .iter()
        .any(|(apex, ips)| **apex == *q.key && from.is_some_and(|f| ips.iter().any(|ip| ip.to_canonical() == f)));
    if !ours || q.qclass != Class::IN {
        let w = reply::write_error(req, OptRcode::REFUSED, ctx.transport, out);
        return written(
            w,
            req,
            Some((entry, Plugin::Server)),
            Some("NOTIFY from a source that is not a primary of a secondary zone here (REFUSED)"),
        );
    }
    let w = reply::write_made(req, q, &authoritative(&[]), ctx.transport, out);
    written(w, req, Some((entry, Plugin::Secondary)), None)
}

/// An authoritative NOERROR reply with `answer` alone.
fn authoritative<'m>(answer: &'m [Made<'m>]) -> MadeReply<'m> {
    MadeReply {
        aa: true,
        rcode: Rcode::NOERROR,
        answer,
        authority: &[],
        additional: &[],
        ede: None,
    }
}

/// AXFR and IXFR (RFC 5936, RFC 1995) of a zone the block serves, for a client its
/// `transfer` admits: over TCP and TLS the whole zone (IXFR too, AXFR-style: RFC 1995 §4
/// lets a server send the whole zone); an IXFR over UDP gets the SOA alone, which tells the
/// client to come over TCP (§4); everything else REFUSED.
fn zone_transfer<'a>(
    req: &Request<'_>,
    q: &Question<'_>,
    block: &'a super::pipeline::Block,
    entry: usize,
    ctx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> Outcome<'a> {
    let from = ctx.client.map(|c| c.ip());
    let admitted = block
        .plugins
        .transfers
        .iter()
        .any(|(zone, to)| **zone == *q.key && from.is_some_and(|ip| to.iter().any(|p| p.admits(ip))));
    let zone = block.handlers.iter().find_map(|h| match h {
        super::pipeline::Handler::File(f) => f.zone_at(q.key),
        _ => None,
    });
    let refused = |out: &mut Vec<u8>, why| {
        let w = reply::write_error(req, OptRcode::REFUSED, ctx.transport, out);
        written(w, req, Some((entry, Plugin::Server)), Some(why))
    };
    let (Some(zone), true, Class::IN) = (zone, admitted, q.qclass) else {
        return refused(
            out,
            "zone transfer refused: not a zone of the block, or the client is not in its transfer to (REFUSED)",
        );
    };
    match (ctx.transport, q.qtype) {
        (Transport::Tcp | Transport::Tls, _) => Outcome::Transfer {
            entry,
            zone,
            id: req.id,
        },
        (Transport::Udp, Rtype::IXFR) => {
            let Some((soa, rdata)) = zone.soa().and_then(|s| Some((s, s.rdatas().next()?))) else {
                return refused(out, "zone transfer: the zone has no SOA (REFUSED)");
            };
            let made = [Made {
                owner: MadeOwner::Query,
                class: Class::IN,
                ttl: soa.ttl(),
                data: WireData {
                    rtype: Rtype::SOA,
                    data: rdata,
                },
            }];
            let w = reply::write_made(req, q, &authoritative(&made), ctx.transport, out);
            written(w, req, Some((entry, Plugin::File)), None)
        }
        _ => refused(out, "AXFR over UDP or DoH (REFUSED: transfers go over TCP or TLS)"),
    }
}

/// A reply the server writes before any block takes the query.
fn error(req: &Request<'_>, rcode: OptRcode, ctx: &Ctx<'_>, out: &mut Vec<u8>) -> Outcome<'static> {
    written(reply::write_error(req, rcode, ctx.transport, out), req, None, None)
}

/// The outcome of a written reply; `by` is the route entry and who in its block wrote it.
fn written(
    w: Written,
    req: &Request<'_>,
    by: Option<(usize, Plugin)>,
    error: Option<&'static str>,
) -> Outcome<'static> {
    Outcome::Reply {
        rcode: w.rcode,
        truncated: w.truncated,
        entry: by.map(|(e, _)| e),
        error,
        plugin: by.map_or(Plugin::Server, |(_, p)| p),
        asked: Asked::of(req),
    }
}

/// Extended DNS Errors of `acl` (RFC 8914 §4.16, §4.18).
const EDE_BLOCKED: u16 = 15;
const EDE_FILTERED: u16 = 17;

/// Records `chaos` answers at most (its authors).
const MAX_MADE: usize = 32;
/// RFC 8482 §4.2's HINFO: CPU "RFC8482", OS "" in the RFC; CoreDNS's text, which its users
/// see, is kept.
const ANY_HINFO: &[u8] = b"\x0dANY obsoleted\x0cSee RFC 8482";
/// The HINFO's TTL (CoreDNS: 8482).
const ANY_HINFO_TTL: u32 = 8482;

/// A template's reply, authoritative.
fn write_rendered(
    req: &Request<'_>,
    q: &Question<'_>,
    r: &template::Rendered,
    t: Transport,
    out: &mut Vec<u8>,
) -> Written {
    fn made(recs: &[crate::zone::zonefile::ParsedRecord]) -> Vec<Made<'_>> {
        recs.iter()
            .map(|p| Made {
                owner: MadeOwner::Name(&p.owner),
                class: p.class,
                ttl: p.ttl,
                data: WireData {
                    rtype: p.rtype,
                    data: &p.rdata,
                },
            })
            .collect()
    }
    let [answer, authority, additional] = &r.sections;
    let (answer, authority, additional) = (made(answer), made(authority), made(additional));
    let m = MadeReply {
        aa: true,
        rcode: r.rcode,
        answer: &answer,
        authority: &authority,
        additional: &additional,
        ede: r.ede,
    };
    reply::write_made(req, q, &m, t, out)
}

/// One RRset of a template's reply: its section, owner, type, TTL and records.
struct RenderedSet<'a> {
    section: usize,
    owner: &'a [u8],
    rtype: Rtype,
    ttl: u32,
    records: Vec<u8>,
    count: u16,
}

/// A template's reply in a block that signs online: its records grouped into RRsets (one
/// per owner and type in each section) and written as the data sources' answers are, so
/// they are signed and their denials get black lies. (An EDE reply is written unsigned.)
fn write_rendered_online(
    signer: &Arc<crate::dnssec::online::Signer>,
    block: &super::pipeline::Block,
    req: &Request<'_>,
    q: &Question<'_>,
    r: &template::Rendered,
    ctx: &Ctx<'_>,
    out: &mut Vec<u8>,
) -> Written {
    let mut sets: Vec<RenderedSet<'_>> = Vec::new();
    for (section, records) in r.sections.iter().enumerate() {
        for rec in records {
            let same =
                |s: &&mut RenderedSet<'_>| s.section == section && s.owner == &*rec.owner && s.rtype == rec.rtype;
            match sets.iter_mut().find(same) {
                Some(s) => {
                    crate::zone::rrset::push_rdata(&mut s.records, &rec.rdata);
                    s.ttl = s.ttl.min(rec.ttl);
                    s.count += 1;
                }
                None => {
                    let mut records = Vec::new();
                    crate::zone::rrset::push_rdata(&mut records, &rec.rdata);
                    sets.push(RenderedSet {
                        section,
                        owner: &rec.owner,
                        rtype: rec.rtype,
                        ttl: rec.ttl,
                        records,
                        count: 1,
                    });
                }
            }
        }
    }
    let mut lie = crate::dnssec::online::Lie::new();
    let mut res = Resolution::new();
    res.rcode = r.rcode;
    for set in &sets {
        let part = resolve::Part {
            owner: if set.owner == q.key {
                resolve::Owner::Query
            } else {
                resolve::Owner::Name(set.owner)
            },
            set: crate::zone::rrset::Rrset::from_parts(set.rtype, set.ttl, set.count, &set.records),
            sigs: None,
            ttl: set.ttl,
            authoritative: true,
        };
        let _ = match set.section {
            0 => res.answer.push(part),
            1 => res.authority.push(part),
            _ => res.additional.push(part),
        };
    }
    let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
    crate::dnssec::online::prepare(signer, block, q, dnssec_ok, &mut res, &mut lie);
    write_online(signer, req, q, &res, ctx, out)
}

/// `whoami`: an empty answer with the client's address (A or AAAA at the query name) and
/// port (SRV at `_udp.` or `_tcp.` before it) in the additional section, as CoreDNS writes.
fn whoami(req: &Request<'_>, q: &Question<'_>, client: SocketAddr, t: Transport, out: &mut Vec<u8>) -> Written {
    let ip = client.ip().to_canonical();
    let (v4, v6);
    let addr = match ip {
        IpAddr::V4(a) => {
            v4 = a.octets();
            WireData {
                rtype: Rtype::A,
                data: &v4,
            }
        }
        IpAddr::V6(a) => {
            v6 = a.octets();
            WireData {
                rtype: Rtype::AAAA,
                data: &v6,
            }
        }
    };
    // SRV: priority 0, weight 0, the port, target the root.
    let mut srv = [0u8; 7];
    srv[4..6].copy_from_slice(&client.port().to_be_bytes());
    let label: &[u8] = if t == Transport::Udp { b"\x04_udp" } else { b"\x04_tcp" };
    let records = [
        Made {
            owner: MadeOwner::Query,
            class: q.qclass,
            ttl: 0,
            data: addr,
        },
        Made {
            owner: MadeOwner::Below(label),
            class: q.qclass,
            ttl: 0,
            data: WireData {
                rtype: Rtype::SRV,
                data: &srv,
            },
        },
    ];
    let m = MadeReply {
        aa: true,
        rcode: Rcode::NOERROR,
        answer: &[],
        authority: &[],
        additional: &records,
        ede: None,
    };
    reply::write_made(req, q, &m, t, out)
}

/// Classes answered with a fixed rcode (choices documented in the README): CH is REFUSED
/// unless a block of the listener has `chaos`; HS and other classes REFUSED (we serve IN
/// only) unless a block's `rewrite` changes classes; class ANY or NONE: NOTIMP.
fn refuse_class(qclass: Class, chaos: bool, reclass: bool) -> Option<OptRcode> {
    match qclass {
        Class::IN => None,
        Class::CH if chaos => None,
        Class::ANY | Class::NONE => Some(OptRcode::NOTIMP),
        _ if reclass => None,
        _ => Some(OptRcode::REFUSED),
    }
}

/// Types answered with a fixed rcode:
/// - QTYPE 0, OPT, TSIG, TKEY (meta-types that cannot be queried, RFC 6895 §3.1): FORMERR;
/// - MAILA, MAILB (obsolete, RFC 883): NOTIMP;
/// - AXFR, IXFR: REFUSED (no transfer is configured; never a transfer over UDP).
fn refuse_type(qtype: Rtype) -> Option<OptRcode> {
    match qtype {
        Rtype::OPT | Rtype::TSIG | Rtype::TKEY => Some(OptRcode::FORMERR),
        t if t.to_int() == 0 => Some(OptRcode::FORMERR),
        Rtype::MAILA | Rtype::MAILB => Some(OptRcode::NOTIMP),
        Rtype::AXFR | Rtype::IXFR => Some(OptRcode::REFUSED),
        _ => None,
    }
}
