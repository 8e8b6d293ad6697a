//! The control thread: start-up, reloads (Corefile, zone files, hosts), signals and shutdown.
//! It publishes snapshots and hands sockets to shards; it never touches a shard socket.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

use super::build;
use super::data::{DataError, DataSet};
use super::tls::{AcmeCerts, TlsListeners};
use crate::acme;
use crate::config::{self, Config, ConfigError, LoadOptions, Transport};
use crate::dns::pipeline::ListenerKey;
use crate::net::conns::ConnLimits;
use crate::net::ctx::Shared;
use crate::net::socket;
use crate::shard::{self, Command, Driver, ShardHandle, Socket};
use crate::telemetry::metrics::Registry;
use crate::telemetry::probes::{ProbeAddrs, Probes, Readiness};
use crate::telemetry::stats::ShardStats;

/// How long open connections get to finish at shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Which driver to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverChoice {
    /// io_uring if the kernel allows it, else legacy.
    Auto,
    /// io_uring or fail.
    IoUring,
    /// epoll.
    Legacy,
}

/// Everything `run` needs from the command line.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The Corefile.
    pub conf: PathBuf,
    /// Shard threads.
    pub shards: usize,
    /// Driver choice.
    pub driver: DriverChoice,
    /// Pin shards to cores.
    pub pin: bool,
    /// Corefile reading options.
    pub load: LoadOptions,
    /// TCP connection limits.
    pub conn_limits: ConnLimits,
}

/// Why ringdns could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The Corefile.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A zone or hosts file.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A socket could not be bound.
    #[error("cannot listen on {listener}: {source}")]
    Bind {
        /// Which.
        listener: ListenerKey,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The ACME manager.
    #[error("ACME: {0}")]
    Acme(String),
    /// io_uring was required but is not available.
    #[error(
        "--driver io-uring: io_uring is not available on this kernel or is blocked (seccomp, sysctl kernel.io_uring_disabled); use --driver auto or legacy"
    )]
    NoIoUring,
    /// `loop` found a forwarding loop.
    #[error("{0}")]
    Loop(String),
    /// The `health`, `ready` or `prometheus` endpoint.
    #[error("{0}")]
    Probes(std::io::Error),
    /// The TLS configuration.
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// Threads or the control runtime.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// An `acme_dns` API that cannot start.
    #[error("{0}")]
    AcmeDns(String),
}

/// Reads, loads and binds everything, then serves until SIGTERM or SIGINT.
pub fn run(opts: RunOptions) -> Result<(), RunError> {
    let cfg = config::load(&opts.conf, opts.load)?;
    // The probes answer from here on: `/health` while zones load, `/ready` once they have.
    let readiness = Arc::new(Readiness::default());
    let stats: Arc<[ShardStats]> = (0..opts.shards).map(|_| ShardStats::default()).collect();
    let metrics = Arc::new(Registry::new(stats.clone()));
    let probes = start_probes(&cfg, &readiness, &metrics)?;
    let signs = super::sign::sign_all(&cfg);
    let mut data = DataSet::load(&cfg, None)?;
    data.signs = signs;
    let units = acme::units(&cfg);
    let acme_certs = acme::preload(&units);
    let driver = match opts.driver {
        DriverChoice::Legacy => Driver::Legacy,
        DriverChoice::IoUring if shard::detect() == Driver::IoUring => Driver::IoUring,
        DriverChoice::IoUring => return Err(RunError::NoIoUring),
        DriverChoice::Auto => {
            let d = shard::detect();
            if d == Driver::Legacy {
                tracing::warn!(
                    "io_uring is not available (kernel, seccomp or kernel.io_uring_disabled); using the legacy epoll driver"
                );
            }
            d
        }
    };
    let listeners = build::listeners(&cfg);
    let mut tls = TlsListeners::default();
    tls.sync(&cfg, &data, &acme_certs, &listeners)?;
    let sockets = bind_all(&listeners, opts.shards)?;
    let (notified_tx, notified) = tokio::sync::mpsc::unbounded_channel();
    let (updates_tx, updates) = tokio::sync::mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        snapshot: ArcSwap::from_pointee(build::snapshot(&cfg, &data, &tls, 1, Some(&metrics))),
        challenges: ArcSwap::from_pointee(Default::default()),
        stats,
        conn_limits: opts.conn_limits,
        notified: notified_tx,
        updates: updates_tx,
    });
    let shards = shard::launch(opts.shards, driver, opts.pin, shared.clone())?;
    for (shard, socks) in shards.iter().zip(sockets) {
        shard.send(Command::Listen(socks));
    }
    // Plain DNS's UDP and TCP listeners of one address show as one dns:// name.
    let mut names: Vec<String> = Vec::new();
    for l in &listeners {
        let name = l.to_string();
        if !names.contains(&name) {
            names.push(name);
        }
    }
    readiness.set_ready();
    super::notify::ready();
    tracing::info!(shards = opts.shards, %driver, listeners = %names.join(" "), "ringdns ready");

    let fingerprint = config::fingerprint(&opts.conf).ok();
    let state = State {
        opts,
        cfg,
        data,
        tls,
        listeners: listeners.into_iter().collect(),
        generation: 1,
        fingerprint,
        shared,
        units,
        acme: None,
        acme_certs,
        readiness,
        probes,
        metrics,
        told: Default::default(),
        apis: Default::default(),
        refusals: Default::default(),
    };
    let mut state = state;
    state.told = super::notify_out::serials(&state.cfg, &state.data);
    state
        .metrics
        .set_certificates(certificates(&state.cfg, &state.data, &state.acme_certs));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let shared = state.shared.clone();
    let result = rt.block_on(control_loop(state, &shards, notified, updates));
    for s in &shards {
        s.send(Command::Shutdown { grace: SHUTDOWN_GRACE });
    }
    for s in shards {
        s.join();
    }
    let t = crate::telemetry::stats::totals(&shared.stats);
    tracing::info!(
        udp_answered = t.udp_answered,
        udp_dropped = t.udp_dropped,
        tcp_answered = t.tcp_answered,
        tcp_connections = t.tcp_accepted,
        tcp_refused = t.tcp_refused,
        tcp_timeouts = t.tcp_timeouts,
        connections_evicted = t.conn_evicted,
        tls_handshake_failures = t.tls_handshake_failures,
        doh_answered = t.doh_answered,
        upstream_queries = t.upstream_queries,
        cache_hits = t.cache_hits,
        coalesced = t.coalesced,
        "ringdns stopped"
    );
    result
}

/// The control thread's view of what is being served.
struct State {
    opts: RunOptions,
    cfg: Config,
    data: DataSet,
    tls: TlsListeners,
    listeners: BTreeSet<ListenerKey>,
    generation: u64,
    fingerprint: Option<u64>,
    shared: Arc<Shared>,
    /// Certificates kept by ACME.
    units: Vec<acme::UnitSpec>,
    /// Their tasks (created inside the control runtime).
    acme: Option<acme::Manager>,
    /// The certificates they have delivered.
    acme_certs: AcmeCerts,
    /// What `/ready` says.
    readiness: Arc<Readiness>,
    /// The `health`, `ready` and `prometheus` endpoints, if any.
    probes: Option<Probes>,
    /// Every series the `prometheus` endpoints render.
    metrics: Arc<Registry>,
    /// The serials the secondaries of each transferred zone were last told of (NOTIFY).
    told: super::notify_out::Told,
    /// The `acme_dns` APIs.
    apis: super::acme_dns::AcmeDnsApis,
    /// When a refused update was last logged, per source.
    refusals: super::update::RefusalLog,
}

impl State {
    /// `health`'s `lameduck`: `/ready` fails at once and queries are still answered for the
    /// longest lameduck configured, so that load balancers stop sending before sockets close.
    async fn lameduck(&self) {
        let Some(d) = self
            .cfg
            .health
            .iter()
            .map(|h| h.lameduck)
            .max()
            .filter(|d| !d.is_zero())
        else {
            return;
        };
        self.readiness.set_lameduck();
        tracing::info!(lameduck = ?d, "lameduck: /ready fails; still answering queries");
        tokio::time::sleep(d).await;
    }

    /// Hands the current certificates to the TLS listeners' resolvers.
    fn sync_tls(&mut self) {
        let listeners: Vec<ListenerKey> = self.listeners.iter().copied().collect();
        if let Err(e) = self.tls.sync(&self.cfg, &self.data, &self.acme_certs, &listeners) {
            tracing::error!(error = %e, "TLS configuration failed; keeping the previous one");
        }
        self.metrics
            .set_certificates(certificates(&self.cfg, &self.data, &self.acme_certs));
        self.apis
            .set_certificates(all_certificates(&self.cfg, &self.data, &self.acme_certs));
    }

    /// Starts and stops the `acme_dns` APIs the configuration names (inside the runtime).
    fn sync_apis(&mut self) -> Result<(), RunError> {
        self.apis
            .sync(&self.cfg, &self.shared.updates)
            .map_err(RunError::AcmeDns)?;
        self.apis
            .set_certificates(all_certificates(&self.cfg, &self.data, &self.acme_certs));
        Ok(())
    }

    /// Tells `/ready` which secondary zones have no data to serve.
    fn secondaries_ready(&self) {
        let mut lines = String::new();
        let mut ids: Vec<_> = self.data.secondaries.iter().collect();
        ids.sort_by(|a, b| a.0.cmp(b.0));
        for ((_, apex), e) in ids {
            let zone = crate::zone::name::display(apex);
            match (&e.zone, e.expired) {
                (None, _) => lines.push_str(&format!("secondary zone {zone}: not transferred yet\n")),
                (Some(_), true) => lines.push_str(&format!("secondary zone {zone}: expired\n")),
                _ => {}
            }
        }
        self.readiness.set_waiting(lines);
    }

    fn publish(&mut self) {
        self.generation += 1;
        let snap = build::snapshot(&self.cfg, &self.data, &self.tls, self.generation, Some(&self.metrics));
        self.shared.snapshot.store(Arc::new(snap));
        // Secondaries of the zones that changed hear of it (RFC 1996).
        super::notify_out::changes(&self.cfg, &self.data, &mut self.told);
    }
}

async fn control_loop(
    mut state: State,
    shards: &[ShardHandle],
    mut notified: tokio::sync::mpsc::UnboundedReceiver<crate::net::ctx::Notified>,
    mut updates: tokio::sync::mpsc::UnboundedReceiver<crate::net::ctx::UpdateRequest>,
) -> Result<(), RunError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut next_conf_check = state
        .cfg
        .check_every()
        .map(|(every, jitter)| Instant::now() + with_jitter(every, jitter));
    let (events_tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let mut manager = acme::Manager::new(
        state.shared.clone(),
        shards.iter().map(ShardHandle::sender).collect(),
        events_tx,
    );
    if let Err(e) = manager.sync(&state.units) {
        tracing::error!(error = %e, "ACME cannot start; TLS listeners that need its certificates stay without one");
    }
    state.acme = Some(manager);
    state.sync_apis()?;
    super::notify::spawn_watchdog();
    let (loops_tx, mut loops) = tokio::sync::mpsc::unbounded_channel();
    super::loops::spawn(&state.cfg, &loops_tx);
    let (zones_tx, mut zone_events) = tokio::sync::mpsc::unbounded_channel();
    let mut secondaries = super::secondary::Manager::new(zones_tx);
    sync_secondaries(&mut secondaries, &state);
    loop {
        let far = Instant::now() + Duration::from_secs(3600);
        let data_at = state.data.next_check().unwrap_or(far);
        let conf_at = next_conf_check.unwrap_or(far);
        tokio::select! {
            Some(event) = events.recv() => {
                match event {
                    acme::Event::Certificate { unit, key } => {
                        state.acme_certs.insert(unit, key);
                        state.sync_tls();
                    }
                    acme::Event::Order(result) => state.metrics.order(result),
                }
            }
            Some(found) = loops.recv() => return Err(RunError::Loop(found)),
            Some((apex, from)) = notified.recv() => {
                if !secondaries.notified(&apex, from) {
                    tracing::debug!(zone = %crate::zone::name::display(&apex), %from, "NOTIFY for a zone that has no such primary (its configuration changed)");
                }
            }
            Some(req) = updates.recv() => {
                // Applied and published before the reply goes: the client's next query, on
                // any shard, sees it.
                let (rcode, changed) = super::update::handle(&state.cfg, &mut state.data, &req, &mut state.refusals);
                if changed {
                    state.publish();
                }
                let _ = req.done.send(rcode);
            }
            Some(event) = zone_events.recv() => {
                use super::secondary::Event;
                let (id, zone, expired) = match event {
                    Event::Loaded { id, zone, diff } => {
                        if let Some(d) = diff {
                            state.data.journal(d, &zone);
                        }
                        (id, Some(zone), false)
                    }
                    Event::Expired { id } => (id, None, true),
                    Event::Confirmed { id } => (id, None, false),
                };
                if let Some(e) = state.data.secondaries.get_mut(&id) {
                    if zone.is_some() {
                        e.zone = zone.clone();
                    }
                    e.expired = expired;
                    let catalog = zone.filter(|_| super::catalog::is_catalog(&state.cfg, &id));
                    if let Some(z) = catalog {
                        // A catalog's new members start (and old ones stop) with it.
                        if state.data.catalog_loaded(&state.cfg, &id, &z) {
                            sync_secondaries(&mut secondaries, &state);
                        }
                    }
                    state.publish();
                    state.secondaries_ready();
                }
            }
            _ = hup.recv() => {
                state = reload_blocking(state, shards, "SIGHUP").await;
                if let Err(e) = state.sync_apis() {
                    tracing::error!(error = %e, "acme_dns API not started");
                }
                super::loops::spawn(&state.cfg, &loops_tx);
                sync_secondaries(&mut secondaries, &state);
            }
            _ = term.recv() => {
                super::notify::stopping();
                tracing::info!("SIGTERM: shutting down");
                state.lameduck().await;
                return Ok(());
            }
            _ = int.recv() => {
                super::notify::stopping();
                tracing::info!("SIGINT: shutting down");
                state.lameduck().await;
                return Ok(());
            }
            _ = tokio::time::sleep_until(data_at.into()) => {
                let (s, ()) = blocking(state, |s| {
                    let r = s.data.refresh(Instant::now());
                    if r.certs {
                        s.sync_tls();
                    }
                    if r.data {
                        s.publish();
                    }
                })
                .await;
                state = s;
            }
            _ = tokio::time::sleep_until(conf_at.into()) => {
                if let Some((every, jitter)) = state.cfg.check_every() {
                    next_conf_check = Some(Instant::now() + with_jitter(every, jitter));
                }
                let current = config::fingerprint(&state.opts.conf).ok();
                if current.is_some() && current != state.fingerprint {
                    state = reload_blocking(state, shards, "Corefile changed").await;
                    if let Err(e) = state.sync_apis() {
                        tracing::error!(error = %e, "acme_dns API not started");
                    }
                    super::loops::spawn(&state.cfg, &loops_tx);
                    sync_secondaries(&mut secondaries, &state);
                    next_conf_check = state
                        .cfg
                        .check_every()
                        .map(|(every, jitter)| Instant::now() + with_jitter(every, jitter));
                }
            }
        }
    }
}

/// Starts and stops the tasks of the configuration's secondary zones; a zone with data
/// (from disk or an earlier transfer) starts from its serial and timers.
fn sync_secondaries(m: &mut super::secondary::Manager, state: &State) {
    m.sync(&super::secondary::specs(&state.cfg, &state.data.members), |id| {
        state.data.secondaries.get(id)?.zone.clone()
    });
    state.secondaries_ready();
}

/// Runs `f` on a blocking thread (zone parsing can take seconds), handing the state there and
/// back.
async fn blocking<T: Send + 'static>(state: State, f: impl FnOnce(&mut State) -> T + Send + 'static) -> (State, T) {
    let task = tokio::task::spawn_blocking(move || {
        let mut s = state;
        let r = f(&mut s);
        (s, r)
    });
    match task.await {
        Ok(x) => x,
        // A panic in a load is a bug; there is no state left to serve from.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn reload_blocking(state: State, shards: &[ShardHandle], why: &'static str) -> State {
    super::notify::reloading();
    let s = reload(state, shards, why).await;
    // Serving again: the new configuration, or the old one if the reload failed.
    super::notify::ready();
    s
}

async fn reload(state: State, shards: &[ShardHandle], why: &'static str) -> State {
    // Shard handles stay on the control thread: the blocking part loads and binds, and the
    // commands are sent here.
    let (mut s, prepared) = blocking(state, move |s| prepare_reload(s)).await;
    match prepared {
        Ok(p) => {
            if let Err(e) = s.apply_reload(p, shards, why) {
                s.metrics.reload_failed();
                tracing::error!(reason = why, error = %e, "reload failed; the previous configuration keeps serving");
            }
        }
        Err(e) => {
            s.metrics.reload_failed();
            tracing::error!(reason = why, error = %e, "reload failed; the previous configuration keeps serving")
        }
    }
    s
}

/// A configuration read and loaded, not yet switched to.
struct Prepared {
    cfg: Config,
    data: DataSet,
}

fn prepare_reload(s: &State) -> Result<Prepared, RunError> {
    let cfg = config::load(&s.opts.conf, s.opts.load)?;
    let signs = super::sign::sign_all(&cfg);
    let mut data = DataSet::load(&cfg, Some(&s.data))?;
    data.signs = signs;
    Ok(Prepared { cfg, data })
}

impl State {
    fn apply_reload(&mut self, p: Prepared, shards: &[ShardHandle], why: &str) -> Result<(), RunError> {
        let units = acme::units(&p.cfg);
        if let Some(m) = self.acme.as_mut() {
            m.sync(&units).map_err(|e| RunError::Acme(e.to_string()))?;
        }
        self.acme_certs.retain(|id, _| units.iter().any(|u| u.id == *id));
        for (id, key) in acme::preload(&units) {
            self.acme_certs.entry(id).or_insert(key);
        }
        self.units = units;
        let wanted_list = build::listeners(&p.cfg);
        let wanted: BTreeSet<ListenerKey> = wanted_list.iter().copied().collect();
        let added: Vec<ListenerKey> = wanted.difference(&self.listeners).copied().collect();
        let removed: Vec<ListenerKey> = self.listeners.difference(&wanted).copied().collect();
        let sockets = bind_all(&added, shards.len())?;
        self.tls.sync(&p.cfg, &p.data, &self.acme_certs, &wanted_list)?;
        let probes_same = match &self.probes {
            Some(pr) => pr.serves(&probe_addrs(&p.cfg)),
            None => probe_addrs(&p.cfg).is_empty(),
        };
        if !probes_same {
            // The old endpoints let go of their addresses before the new ones bind them.
            self.probes = None;
            self.probes = start_probes(&p.cfg, &self.readiness, &self.metrics).unwrap_or_else(|e| {
                tracing::error!(error = %e, "health/ready/prometheus endpoints cannot start; serving without them");
                None
            });
        }
        self.cfg = p.cfg;
        self.data = p.data;
        self.listeners = wanted;
        self.metrics
            .set_certificates(certificates(&self.cfg, &self.data, &self.acme_certs));
        self.fingerprint = config::fingerprint(&self.opts.conf).ok();
        self.publish();
        for (shard, socks) in shards.iter().zip(sockets) {
            if !socks.is_empty() {
                shard.send(Command::Listen(socks));
            }
            if !removed.is_empty() {
                shard.send(Command::Close(removed.clone()));
            }
        }
        tracing::info!(
            reason = why,
            added = added.len(),
            removed = removed.len(),
            generation = self.generation,
            "configuration reloaded"
        );
        Ok(())
    }
}

/// Every certificate the blocks serve, for `ringdns_certificate_not_after_seconds`.
fn certificates(cfg: &Config, data: &DataSet, acme_certs: &AcmeCerts) -> Vec<(String, &'static str, u64)> {
    let mut out: Vec<(String, &'static str, u64)> = Vec::new();
    for b in &cfg.blocks {
        let (pair, source) = match &b.tls {
            Some(config::TlsConfig::Files { cert, key, .. }) => (data.cert(cert, key), "file"),
            Some(config::TlsConfig::Acme(a)) => (acme_certs.get(&acme::unit_of(a).id).cloned(), "acme"),
            None => continue,
        };
        let Some(info) = pair.and_then(|p| p.cert.first().and_then(|c| crate::acme::cert::info(c).ok())) else {
            continue;
        };
        let at = info
            .not_after
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let row = (info.names.join(","), source, at);
        if !out.contains(&row) {
            out.push(row);
        }
    }
    out
}

fn probe_addrs(cfg: &Config) -> ProbeAddrs {
    ProbeAddrs {
        health: cfg.health.iter().map(|h| h.addr).collect(),
        ready: cfg.ready.clone(),
        metrics: cfg.metrics.clone(),
    }
}

/// Starts the `health`, `ready` and `prometheus` endpoints the configuration names, if any.
fn start_probes(cfg: &Config, readiness: &Arc<Readiness>, metrics: &Arc<Registry>) -> Result<Option<Probes>, RunError> {
    let addrs = probe_addrs(cfg);
    if addrs.is_empty() {
        return Ok(None);
    }
    Probes::start(&addrs, readiness.clone(), metrics.clone())
        .map(Some)
        .map_err(RunError::Probes)
}

fn with_jitter(interval: Duration, jitter: Duration) -> Duration {
    if jitter.is_zero() {
        return interval;
    }
    // Spread a fleet's reloads; the nanoseconds of the clock are random enough for this.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    interval + jitter.mul_f64(f64::from(nanos) / 1e9)
}

/// Binds one UDP socket or TCP listener per shard for each listener (plain DNS has one of
/// each per address): per shard, the list of (listener, socket) pairs.
fn bind_all(keys: &[ListenerKey], shards: usize) -> Result<Vec<Vec<(ListenerKey, Socket)>>, RunError> {
    let mut per_shard: Vec<Vec<(ListenerKey, Socket)>> = (0..shards).map(|_| Vec::new()).collect();
    for key in keys {
        for socks in per_shard.iter_mut() {
            let sock = match key.transport {
                Transport::Udp => socket::udp(key.addr).map(Socket::Udp),
                Transport::Tcp | Transport::Tls | Transport::Https => socket::tcp(key.addr).map(Socket::Tcp),
            };
            match sock {
                Ok(sock) => socks.push((*key, sock)),
                // A default `::` listener on a host without IPv6 is skipped, not fatal.
                Err(e) if key.addr.ip().is_unspecified() && key.addr.is_ipv6() && e.raw_os_error() == Some(97) => {
                    tracing::warn!(listener = %key, "IPv6 is not available; not listening on ::");
                    break;
                }
                Err(source) => {
                    return Err(RunError::Bind { listener: *key, source });
                }
            }
        }
    }
    Ok(per_shard)
}

/// Every certificate the server has (the `acme_dns` APIs answer with the one the client's
/// SNI names, the first one otherwise).
fn all_certificates(cfg: &Config, data: &DataSet, acme_certs: &AcmeCerts) -> Vec<Arc<rustls::sign::CertifiedKey>> {
    let mut out: Vec<Arc<rustls::sign::CertifiedKey>> = Vec::new();
    for b in &cfg.blocks {
        let pair = match &b.tls {
            Some(crate::config::TlsConfig::Files { cert, key, .. }) => data.cert(cert, key),
            Some(crate::config::TlsConfig::Acme(a)) => acme_certs.get(&crate::acme::unit_of(a).id).cloned(),
            None => None,
        };
        if let Some(p) = pair.filter(|p| !out.iter().any(|o| Arc::ptr_eq(o, p))) {
            out.push(p);
        }
    }
    out
}
