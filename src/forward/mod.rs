//! Forwarding to upstream resolvers, on the shard that received the query: per-shard
//! upstream state (connections, failure counts), a per-shard cache, coalescing of identical
//! queries into one upstream query, and SERVFAIL with an Extended DNS Error (RFC 8914) when
//! no upstream answers within the client's budget.

pub mod scrub;
pub mod transport;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use futures_channel::oneshot;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

pub use crate::dns::plan::Plan;

use crate::cache::template::{self, Age, Client, Kind, Template, ede};
use crate::cache::{Cache, Key, Lookup};
use crate::config::{CacheConfig, ForwardConfig, Policy, Transport, UpstreamAddr};
use crate::dns::request::Request;
use crate::dns::wire;
use crate::meter::series::{CacheShard, UpstreamShard};
use crate::telemetry::stats::ShardStatsRef;
use crate::tls::certs::CertError;
use crate::zone::name::NameKey;
use transport::{Asked, DohConn, Fail, StreamConn};

/// The client's whole wait: SERVFAIL with EDE within 3 s (README, Resolver frontend).
pub const BUDGET: Duration = Duration::from_millis(2500);
/// The client's wait for `plan`: [`BUDGET`], or less with `cancel`.
fn budget(plan: &Plan) -> Duration {
    plan.budget.map_or(BUDGET, |b| b.min(BUDGET))
}

/// One try over UDP.
const UDP_TRY: Duration = Duration::from_millis(1000);
/// One try over a stream (connection set-up included).
const STREAM_TRY: Duration = Duration::from_millis(1500);
/// Rounds over the upstreams while they stay silent.
const MAX_ROUNDS: usize = 3;
/// Clients waiting on one upstream query; more get SERVFAIL (DNSBomb).
pub const MAX_WAITERS: usize = 64;
/// Upstream queries a shard keeps in flight when `max_concurrent` sets no other number
/// (CoreDNS: no limit). At the 2.5 s budget that is 4000 misses a second to silent
/// upstreams, and far more to answering ones; each waits with a few hundred octets.
pub const DEFAULT_MAX_CONCURRENT: usize = 10_000;

/// Builds the plan of a `forward`, reading the TLS files its DoT and DoH upstreams need
/// (CA and client certificate); no TLS configuration for upstreams that need none.
pub fn build_plan(cfg: &ForwardConfig, cache: Option<&CacheConfig>) -> Result<Plan, CertError> {
    let ca = cfg.tls_ca.as_deref();
    let client = cfg.tls_client.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
    let tls = |wanted: fn(&UpstreamAddr) -> bool, alpn: &[u8]| {
        cfg.to
            .iter()
            .any(wanted)
            .then(|| crate::tls::client::config(ca, client, &[alpn]))
            .transpose()
    };
    let dot = tls(|u| matches!(u, UpstreamAddr::Tls(_)), b"dot")?;
    let doh = tls(|u| matches!(u, UpstreamAddr::Https { .. }), b"h2")?;
    Ok(Plan::new(cfg, cache, dot, doh))
}

/// The state of one upstream on one shard.
#[derive(Default)]
struct Upstream {
    fails: Cell<u32>,
    down: Cell<bool>,
    probing: Cell<bool>,
    stream: RefCell<Option<Rc<StreamConn>>>,
    doh: RefCell<Option<Rc<DohConn>>>,
}

type Waiters = Rc<RefCell<Vec<oneshot::Sender<(Rc<Template>, Age)>>>>;
/// Renders TTLs as the upstream sent them.
const NOT_CACHED: Age = Age::Fresh { age: 0, lifetime: 0 };
/// A plan and a cache key: the identity of an upstream query for coalescing.
type InflightKey = (u64, Box<[u8]>);

/// Everything forwarding keeps on one shard.
#[derive(Default)]
pub struct ShardForward {
    rng: crate::dns::rng::Rng,
    upstreams: RefCell<HashMap<(u64, usize), Rc<Upstream>>>,
    caches: RefCell<HashMap<u64, Cache>>,
    inflight: RefCell<HashMap<InflightKey, Waiters>>,
    in_flight: Cell<usize>,
    rotation: Cell<usize>,
    stats: ShardStatsRef,
}

/// The client side of a render. The largest reply a client gets: 65535 octets over streams;
/// over UDP its EDNS payload size within 512..=1232 (the DNS flag day 2020 default), or 512
/// without EDNS (RFC 1035 §4.2.1). Padded over DoT and DoH when the query was (RFC 8467).
fn client<'a>(query: &'a [u8], q: &'a Query, via: Transport, nsid: Option<&'a [u8]>) -> Client<'a> {
    Client {
        query,
        edns: q.edns,
        limit: crate::dns::wire::reply_limit(via, q.edns.map(|(size, _)| size)),
        pad: q.padding && via.is_encrypted(),
        nsid: nsid.filter(|_| q.nsid),
        cookie: q.cookie.as_ref(),
    }
}

/// The cache outcome of a forwarded query.
pub enum Cached {
    /// The reply is in `out`; refresh the entry in the background when `refresh`.
    Hit {
        /// Start a background refresh.
        refresh: bool,
    },
    /// Go upstream.
    Miss,
}

/// A forwarded query as the core parsed it: the facts forwarding needs, owned so that they
/// can wait for the upstreams with the query.
///
/// Two queries share a cache entry, and an upstream query, only when every answer would be
/// the same for both: the key is the name, type, DO and CD (RFC 4035 §3.2.2), and what goes
/// upstream is built from those alone ([`Query::upstream_message`]: no client option, so no
/// ECS that would tailor an answer to one client's subnet). The EDNS payload size only
/// decides truncation, at render time. RD=0 queries are relayed, never cached or
/// coalesced (RFC 1034 §4.3.1: one client's flags must not change what others get).
pub struct Query {
    key: NameKey,
    qtype: Rtype,
    cache_key: Key,
    edns: Option<(u16, bool)>,
    padding: bool,
    /// The client asked for NSID (RFC 5001).
    nsid: bool,
    /// The COOKIE its reply carries (RFC 7873), made by the core for the client.
    cookie: Option<[u8; crate::dns::cookie::REPLY_LEN]>,
    rd: bool,
    cd: bool,
}

impl Query {
    /// The facts of a parsed request; `None` without a question (the core forwards none).
    pub fn of(req: &Request<'_>) -> Option<Query> {
        let q = req.question?;
        let dnssec_ok = req.edns.is_some_and(|e| e.dnssec_ok);
        let key = NameKey::from_wire(q.key);
        Some(Query {
            cache_key: Key::new(&key, q.qtype, dnssec_ok, req.cd),
            key,
            qtype: q.qtype,
            edns: req.edns.map(|e| (e.udp_size, e.dnssec_ok)),
            padding: req.edns.is_some_and(|e| e.padding),
            nsid: req.edns.is_some_and(|e| e.nsid),
            cookie: req.cookie_reply.map(|c| c.reply),
            rd: req.rd,
            cd: req.cd,
        })
    }

    fn dnssec_ok(&self) -> bool {
        self.edns.is_some_and(|(_, d)| d)
    }

    /// The message asked upstream (ID 0, stamped per exchange): RD and CD as the client set
    /// them, the question in lowercase, and an OPT of our own (payload 1232, DO as the
    /// client's) carrying none of the client's options.
    fn upstream_message(&self) -> Vec<u8> {
        let mut m = wire::query(self.key.as_slice(), self.qtype, self.rd);
        m[wire::FLAGS2] = if self.cd { wire::flags2::CD } else { 0 };
        let at = wire::start_opt(&mut m, wire::MAX_UDP_PAYLOAD, 0, self.dnssec_ok());
        wire::end_opt(&mut m, at);
        m
    }
}

impl ShardForward {
    /// Forwarding state of the shard counting into `stats`.
    pub fn new(stats: ShardStatsRef) -> Self {
        ShardForward {
            stats,
            ..Default::default()
        }
    }

    fn cache<R>(&self, plan: &Plan, f: impl FnOnce(&mut Cache) -> R) -> R {
        let mut caches = self.caches.borrow_mut();
        if !caches.contains_key(&plan.id) && caches.len() >= 16 {
            // Plans of older configurations: drop their caches.
            caches.clear();
        }
        let c = caches
            .entry(plan.id)
            .or_insert_with(|| plan.cache.as_ref().map_or_else(Cache::failures_only, Cache::new));
        let out = f(c);
        if let Some(m) = self.cache_metrics(plan) {
            let (success, denial) = c.sizes();
            m.entries_success.set(success as u64);
            m.entries_denial.set(denial as u64);
        }
        out
    }

    /// This shard's counts of the plan's cache, when it is counted.
    #[inline]
    fn cache_metrics<'p>(&self, plan: &'p Plan) -> Option<&'p CacheShard> {
        let m = plan.metrics()?.cache.as_deref()?;
        Some(m.shard(self.stats.id()))
    }

    /// This shard's counts of upstream `i` of the plan, when it is counted.
    fn upstream_metrics<'p>(&self, plan: &'p Plan, i: usize) -> Option<&'p UpstreamShard> {
        Some(plan.metrics()?.upstreams.get(i)?.shard(self.stats.id()))
    }

    /// Serves the query from the cache into `out` if it can.
    /// `via`: how the client's query came.
    /// `nsid`: the block's, for a client that asked (RFC 5001).
    pub fn cached(
        &self,
        plan: &Plan,
        q: &Query,
        query: &[u8],
        (via, nsid): (Transport, Option<&[u8]>),
        out: &mut Vec<u8>,
    ) -> Cached {
        // RD=0 is never answered from the cache: that would let anyone see what others
        // asked (Unbound and Knot Resolver refuse such snooping too).
        if !q.rd {
            return Cached::Miss;
        }
        let found = self.cache(plan, |c| c.get(q.cache_key.as_slice(), Instant::now()));
        let client = client(query, q, via, nsid);
        let m = self.cache_metrics(plan);
        if let Some(m) = m {
            m.requests.incr();
        }
        let hit = |kind: Kind| {
            self.stats.cache_hits.incr();
            if let Some(m) = m {
                let by_kind = if kind == Kind::Success {
                    &m.hits_success
                } else {
                    &m.hits_denial
                };
                by_kind.incr();
            }
        };
        match found {
            Lookup::Fresh {
                template,
                age,
                lifetime,
                prefetch,
            } => {
                let extra = (template.kind == Kind::Failure).then_some(ede::CACHED_ERROR);
                template::render(&template, &client, Age::Fresh { age, lifetime }, extra, out);
                hit(template.kind);
                if let (Some(m), true) = (m, prefetch) {
                    m.prefetch.incr();
                }
                Cached::Hit { refresh: prefetch }
            }
            Lookup::Stale { template, refresh } => {
                template::render(&template, &client, Age::Stale, Some(ede::STALE_ANSWER), out);
                hit(template.kind);
                if let Some(m) = m {
                    m.served_stale.incr();
                }
                Cached::Hit { refresh }
            }
            Lookup::Miss => {
                if let Some(m) = m {
                    m.misses.incr();
                }
                Cached::Miss
            }
        }
    }

    /// Writes the ID for a query to `addr` into `msg`: random, or 0 for DoH (RFC 8484 §4.1,
    /// HTTP caches key on the message).
    fn stamp(&self, addr: &UpstreamAddr, msg: &mut [u8]) -> u16 {
        let id = if matches!(addr, UpstreamAddr::Https { .. }) {
            0
        } else {
            self.rng.u16()
        };
        msg[0..2].copy_from_slice(&id.to_be_bytes());
        id
    }

    fn upstream(&self, plan: &Plan, i: usize) -> Rc<Upstream> {
        let mut ups = self.upstreams.borrow_mut();
        if !ups.contains_key(&(plan.id, i)) && ups.len() >= 256 {
            // Mostly upstreams of older configurations: close their connections.
            ups.clear();
        }
        ups.entry((plan.id, i)).or_default().clone()
    }

    /// Upstream indices in the order to try: the policy's, with upstreams that are down
    /// last (tried only when the others fail).
    fn order(&self, plan: &Plan) -> Vec<usize> {
        let n = plan.cfg.to.len();
        let mut idx: Vec<usize> = (0..n).collect();
        match plan.cfg.policy {
            Policy::Random => {
                for i in (1..n).rev() {
                    idx.swap(i, self.rng.below(i + 1));
                }
            }
            Policy::RoundRobin => {
                let start = self.rotation.get();
                self.rotation.set(start.wrapping_add(1));
                idx.rotate_left(start % n.max(1));
            }
            Policy::Sequential => {}
        }
        idx.sort_by_key(|&i| self.upstream(plan, i).down.get());
        idx
    }
}

/// Resolves a query through the block's upstreams (coalescing identical queries) and
/// renders the client's reply. A client over TCP, DoT or DoH is forwarded over TCP unless
/// `prefer_udp`.
pub async fn resolve(
    fwd: Rc<ShardForward>,
    plan: Arc<Plan>,
    q: Query,
    ask_query: &[u8],
    (via, nsid): (Transport, Option<&[u8]>),
) -> Vec<u8> {
    let client = client(ask_query, &q, via, nsid);
    let mut out = Vec::with_capacity(512);
    if !q.rd {
        // Relayed for this client alone: not coalesced, not cached, the upstream's answer
        // (a REFUSED included) as it gave it.
        let t = upstream(&fwd, &plan, &q, via.is_stream()).await;
        template::render(&t, &client, NOT_CACHED, None, &mut out);
        return out;
    }
    let inflight_key = (plan.id, Box::<[u8]>::from(q.cache_key.as_slice()));
    let existing = fwd.inflight.borrow().get(&inflight_key).cloned();
    if let Some(waiters) = existing {
        // Someone asks upstream already: wait for that answer (within our own budget).
        if waiters.borrow().len() >= MAX_WAITERS {
            template::render(
                &template::failure(&q.key, q.qtype, ede::NOT_READY),
                &client,
                NOT_CACHED,
                None,
                &mut out,
            );
            return out;
        }
        let (tx, rx) = oneshot::channel();
        waiters.borrow_mut().push(tx);
        fwd.stats.coalesced.incr();
        let (t, age) = match monoio::time::timeout(budget(&plan), rx).await {
            Ok(Ok(answer)) => answer,
            _ => (
                Rc::new(template::failure(&q.key, q.qtype, ede::NO_REACHABLE_AUTHORITY)),
                NOT_CACHED,
            ),
        };
        template::render(&t, &client, age, None, &mut out);
        return out;
    }
    // CoreDNS's max_concurrent: REFUSED at once beyond it. Without one, a bound all the
    // same, so that a flood of names the cache lacks cannot hold memory without end.
    let max = match plan.cfg.max_concurrent {
        0 => DEFAULT_MAX_CONCURRENT,
        m => m,
    };
    if fwd.in_flight.get() >= max {
        fwd.stats.shed[1].incr();
        template::render(&template::refused(&q.key, q.qtype), &client, NOT_CACHED, None, &mut out);
        return out;
    }
    let waiters: Waiters = Rc::default();
    fwd.inflight.borrow_mut().insert(inflight_key.clone(), waiters.clone());
    let t = Rc::new(upstream(&fwd, &plan, &q, via.is_stream()).await);
    fwd.inflight.borrow_mut().remove(&inflight_key);
    let lifetime = if t.kind == Kind::Failure || plan.caches(q.key.as_slice()) {
        fwd.cache(&plan, |c| c.put(q.cache_key.as_slice(), (*t).clone(), Instant::now()))
    } else {
        0
    };
    let age = Age::Fresh { age: 0, lifetime };
    // Late waiters have already given up (their receivers are gone): nothing is sent to them.
    for w in waiters.borrow_mut().drain(..) {
        let _ = w.send((t.clone(), age));
    }
    template::render(&t, &client, age, None, &mut out);
    out
}

/// Refreshes a cache entry in the background (prefetch, serve-stale).
pub async fn refresh(fwd: Rc<ShardForward>, plan: Arc<Plan>, q: Query) {
    let t = upstream(&fwd, &plan, &q, false).await;
    fwd.cache(&plan, |c| {
        if t.kind == Kind::Failure {
            c.refresh_done(q.cache_key.as_slice());
        } else {
            c.put(q.cache_key.as_slice(), t, Instant::now());
        }
    });
}

/// Counts a query in flight for `max_concurrent`.
struct InFlight(Rc<ShardForward>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.set(self.0.in_flight.get().saturating_sub(1));
    }
}

/// Tries upstreams in order within [`BUDGET`]; SERVFAIL with EDE when none answers usefully.
async fn upstream(fwd: &Rc<ShardForward>, plan: &Arc<Plan>, q: &Query, client_stream: bool) -> Template {
    fwd.in_flight.set(fwd.in_flight.get() + 1);
    let _guard = InFlight(fwd.clone());
    let deadline = Instant::now() + budget(plan);
    let mut msg = q.upstream_message();
    let mut last_failure: Option<Template> = None;
    let mut network_error = false;
    let order = fwd.order(plan);
    // Upstreams that stay silent are asked again while the budget lasts (a lost datagram is
    // not a failure); one that answers SERVFAIL or REFUSED is not.
    for _round in 0..MAX_ROUNDS {
        let mut silent = false;
        for &i in &order {
            if Instant::now() >= deadline {
                break;
            }
            let up = fwd.upstream(plan, i);
            let addr = &plan.cfg.to[i];
            let id = fwd.stamp(addr, &mut msg);
            let asked = Asked {
                msg: &msg,
                id,
                qname: &q.key,
                qtype: q.qtype,
            };
            fwd.stats.upstream_queries.incr();
            let t0 = Instant::now();
            let result = exchange(plan, &up, addr, asked, client_stream, deadline).await;
            if let Some(m) = fwd.upstream_metrics(plan, i) {
                match &result {
                    Ok(reply) => {
                        let rcode = reply.get(wire::FLAGS2).map_or(0, |b| b & wire::flags2::RCODE_MASK);
                        m.answered(u16::from(rcode), t0.elapsed().as_nanos() as u64);
                    }
                    Err(_) => m.failures.incr(),
                }
            }
            match result {
                Ok(reply) => match scrub::scrub(&reply, &q.key, q.qtype, q.dnssec_ok(), &plan.from) {
                    // A relayed RD=0 query gets the upstream's own answer, refusals too.
                    Ok(t) if t.kind == Kind::Failure && !q.rd => return t,
                    Ok(t) if t.kind == Kind::Failure => {
                        // SERVFAIL, REFUSED...: the next upstream may do better.
                        up.fails.set(0);
                        last_failure = Some(t);
                    }
                    Ok(t) => {
                        up.fails.set(0);
                        up.down.set(false);
                        return t;
                    }
                    Err(scrub::Reject::Chain) => {
                        return template::failure(&q.key, q.qtype, ede::NO_REACHABLE_AUTHORITY);
                    }
                    Err(_) => failed(fwd, plan, i, &up),
                },
                Err(e) => {
                    tracing::debug!(upstream = ?addr, error = ?e, "upstream exchange failed");
                    network_error |= matches!(e, Fail::Net(_));
                    silent |= matches!(e, Fail::Timeout);
                    failed(fwd, plan, i, &up);
                }
            }
        }
        if !silent || Instant::now() >= deadline {
            break;
        }
    }
    // Every upstream refused, failed or stayed silent: SERVFAIL (an upstream's REFUSED is
    // about us as its client, not an answer for ours), with the upstream's EDE if it gave one.
    let code = match last_failure.and_then(|t| t.ede) {
        Some(code) => code,
        None if network_error => ede::NETWORK_ERROR,
        None => ede::NO_REACHABLE_AUTHORITY,
    };
    template::failure(&q.key, q.qtype, code)
}

/// Records a failure; an upstream failing `max_fails` times in a row is down until a health
/// check gets an answer.
fn failed(fwd: &Rc<ShardForward>, plan: &Arc<Plan>, i: usize, up: &Rc<Upstream>) {
    up.fails.set(up.fails.get() + 1);
    let max = plan.cfg.max_fails;
    if max == 0 || up.fails.get() < max || up.down.get() {
        return;
    }
    up.down.set(true);
    tracing::warn!(upstream = ?plan.cfg.to[i], "upstream down after {max} failures");
    if plan.cfg.health_check.is_zero() || up.probing.get() {
        return;
    }
    up.probing.set(true);
    monoio::spawn(probe(fwd.clone(), plan.clone(), i, up.clone()));
}

/// Asks a down upstream every `health_check` until it answers.
async fn probe(fwd: Rc<ShardForward>, plan: Arc<Plan>, i: usize, up: Rc<Upstream>) {
    let name = NameKey::of(&plan.cfg.health_domain);
    let mut msg = wire::query(name.as_slice(), Rtype::NS, !plan.cfg.health_no_rec);
    loop {
        monoio::time::sleep(plan.cfg.health_check).await;
        let addr = &plan.cfg.to[i];
        let id = fwd.stamp(addr, &mut msg);
        let asked = Asked {
            msg: &msg,
            id,
            qname: &name,
            qtype: Rtype::NS,
        };
        let answered = exchange(&plan, &up, addr, asked, false, Instant::now() + Duration::from_secs(1))
            .await
            .is_ok();
        if !answered {
            if let Some(m) = fwd.upstream_metrics(&plan, i) {
                m.healthcheck_failures.incr();
            }
        }
        if answered {
            up.down.set(false);
            up.fails.set(0);
            up.probing.set(false);
            tracing::info!(upstream = ?addr, "upstream back up");
            return;
        }
        if Rc::strong_count(&up) == 1 {
            // The configuration dropped this upstream.
            return;
        }
    }
}

/// One exchange with one upstream over the transport its address and options call for.
async fn exchange(
    plan: &Plan,
    up: &Upstream,
    addr: &UpstreamAddr,
    q: Asked<'_>,
    client_stream: bool,
    deadline: Instant,
) -> Result<Vec<u8>, Fail> {
    let left = deadline.saturating_duration_since(Instant::now());
    match addr {
        UpstreamAddr::Dns(a) => {
            let tcp = plan.cfg.force_tcp || (client_stream && !plan.cfg.prefer_udp);
            if !tcp {
                match transport::udp(*a, q, left.min(UDP_TRY)).await {
                    Err(Fail::Truncated) => {}
                    other => return other,
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            stream(plan, up, *a, None, q, left.min(STREAM_TRY)).await
        }
        UpstreamAddr::Tls(a) => {
            let tls = match (&plan.dot, plan.sni(addr)) {
                (Some(c), Some(n)) => Some((c.clone(), n)),
                _ => {
                    return Err(Fail::Net(std::io::Error::other(
                        "no TLS configuration for a tls:// upstream",
                    )));
                }
            };
            stream(plan, up, *a, tls, q, left.min(STREAM_TRY)).await
        }
        UpstreamAddr::Https { addr: a, host, path } => {
            let (Some(cfg), Some(name)) = (&plan.doh, plan.sni(addr)) else {
                return Err(Fail::Net(std::io::Error::other(
                    "no TLS configuration for an https:// upstream",
                )));
            };
            let existing = up.doh.borrow().clone().filter(|c| c.alive());
            let conn = match existing {
                Some(c) => c,
                None => {
                    let c = DohConn::connect(*a, cfg.clone(), name, left.min(STREAM_TRY)).await?;
                    *up.doh.borrow_mut() = Some(c.clone());
                    c
                }
            };
            let left = deadline.saturating_duration_since(Instant::now());
            conn.exchange(host, path, q, left.min(STREAM_TRY)).await
        }
    }
}

async fn stream(
    plan: &Plan,
    up: &Upstream,
    a: std::net::SocketAddr,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    q: Asked<'_>,
    timeout: Duration,
) -> Result<Vec<u8>, Fail> {
    let existing = up.stream.borrow().clone().filter(|c| c.alive() && !c.id_taken(q.id));
    let conn = match existing {
        Some(c) => c,
        None => {
            let c = StreamConn::connect(a, tls, plan.cfg.expire, timeout).await?;
            *up.stream.borrow_mut() = Some(c.clone());
            c
        }
    };
    conn.exchange(q, timeout).await
}
