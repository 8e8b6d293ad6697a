//! `secondary` zones on the control thread: one task per zone asks its primaries for the
//! SOA when [`Refresh`] says so, pulls the zone by AXFR over TCP when the serial grew (or
//! there is none), keeps the transfer on disk (an atomic write, like certificates) and hands
//! the new zone to the control loop, which publishes a snapshot. The shards never wait on any
//! of it: they serve the last zone until the new one is whole.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::base::Message;
use domain::base::iana::{Rcode, Rtype};
use domain::base::name::ParsedName;
use domain::rdata::AllRecordData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::config::tsig::TsigKey;
use crate::config::{Config, Primary, SecondaryConfig, SecondaryTls};
use crate::dns::tsig::Client;
use crate::dns::wire;
use crate::zone::name::{NameKey, display};
use crate::zone::refresh::{Refresh, Timers};
use crate::zone::store::Zone;
use crate::zone::transfer::{AxfrIn, IxfrIn, IxfrResult, TransferError};
use domain::tsig::Key;

/// Identifies a secondary zone: the folder it is kept in and its apex (lowercase wire).
pub type SecondaryId = (PathBuf, Box<[u8]>);

/// What a zone's task tells the control loop.
#[derive(Debug)]
pub enum Event {
    /// A transfer completed (the copy on disk is written).
    Loaded {
        /// Which zone.
        id: SecondaryId,
        /// The new data.
        zone: Arc<Zone>,
        /// What changed from the data before, for the zone's journal.
        diff: Option<crate::zone::diff::Diff>,
    },
    /// The data is past its expiry: it is no longer to be served.
    Expired {
        /// Which zone.
        id: SecondaryId,
    },
    /// A primary confirmed the data again after it had expired: it is served again.
    Confirmed {
        /// Which zone.
        id: SecondaryId,
    },
}

/// How long an SOA query over UDP waits, and a TCP connection is given to open.
const SOA_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a transfer may go without a message.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a whole transfer may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(600);
/// Jitter added to refresh (CoreDNS: 5 s) and to retry (2 s).
const REFRESH_JITTER: Duration = Duration::from_secs(5);
const RETRY_JITTER: Duration = Duration::from_secs(2);

/// One zone's settings, as its task runs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The zone's identity.
    pub id: SecondaryId,
    /// The primaries, in order.
    pub from: Vec<Primary>,
    /// How `tls://` primaries are checked.
    pub tls: Option<SecondaryTls>,
    /// The key its block's `tsig` signs requests with (its first).
    pub key: Option<TsigKey>,
    /// A `transfer` lists it: each transfer's difference is computed for its journal.
    pub journal: bool,
}

impl Spec {
    /// The zone's file in its folder.
    pub fn path(&self) -> PathBuf {
        zone_path(&self.id.0, &self.id.1)
    }
}

/// `<dir>/<zone>.zone`, the zone's name in presentation form (`root` for the root zone,
/// `/` of RFC 2317 names written `%2F`).
pub fn zone_path(dir: &Path, apex: &[u8]) -> PathBuf {
    zone_file(dir, apex, "zone")
}

/// `DIR/<zone>.<ext>`: the file a zone keeps something in (the root zone is `root`, a `/`
/// of an RFC 2317 name is `%2F`).
pub fn zone_file(dir: &Path, apex: &[u8], ext: &str) -> PathBuf {
    let name = display(apex);
    let name = name.trim_end_matches('.');
    let name = if name.is_empty() { "root" } else { name };
    dir.join(format!("{}.{ext}", name.replace('/', "%2F")))
}

/// Every secondary zone of `cfg`, each once, and the catalog `members` served.
pub fn specs(cfg: &Config, members: &crate::control::catalog::Members) -> Vec<Spec> {
    let journaled = crate::control::data::journaled(cfg);
    let mut out: Vec<Spec> = specs_of(cfg, members);
    for s in &mut out {
        s.journal = journaled.contains(&s.id.1);
    }
    out
}

fn specs_of(cfg: &Config, members: &crate::control::catalog::Members) -> Vec<Spec> {
    let mut out: Vec<Spec> = Vec::new();
    for b in &cfg.blocks {
        let key = b.tsig.as_ref().and_then(crate::dns::tsig::signing_key);
        for s in &b.secondaries {
            for z in &s.zones {
                let spec = spec(s, z, key.clone());
                if !out.iter().any(|o| o.id == spec.id) {
                    out.push(spec);
                }
            }
        }
    }
    // A member is transferred as its catalog is: same primaries, TLS, key and folder.
    let mut members: Vec<_> = members.iter().collect();
    members.sort_by(|a, b| a.0.cmp(b.0));
    for (apex, m) in members {
        let Some((_, bi, s)) = crate::control::catalog::consumed(cfg).find(|c| c.0 == m.catalog) else {
            continue;
        };
        let key = cfg.blocks[bi].tsig.as_ref().and_then(crate::dns::tsig::signing_key);
        let mut spec = spec(s, &crate::zone::name::from_wire(apex), key);
        spec.id = crate::control::catalog::member_id(m, apex);
        if !out.iter().any(|o| o.id == spec.id) {
            out.push(spec);
        }
    }
    out
}

fn spec(s: &SecondaryConfig, zone: &domain::base::Name<bytes::Bytes>, key: Option<TsigKey>) -> Spec {
    Spec {
        id: (s.directory.clone(), NameKey::of(zone).as_slice().into()),
        from: s.from.clone(),
        tls: s.tls.clone(),
        key,
        journal: false,
    }
}

/// The tasks of the secondary zones.
pub struct Manager {
    events: mpsc::UnboundedSender<Event>,
    tasks: HashMap<SecondaryId, (Spec, Arc<tokio::sync::Notify>, tokio::task::JoinHandle<()>)>,
}

impl Manager {
    /// Tasks that report to `events`.
    pub fn new(events: mpsc::UnboundedSender<Event>) -> Self {
        Manager {
            events,
            tasks: HashMap::new(),
        }
    }

    /// Makes the tasks match `specs`; `loaded` gives the data each zone serves now (from
    /// disk or an earlier transfer), so a new task starts from it.
    pub fn sync(&mut self, specs: &[Spec], loaded: impl Fn(&SecondaryId) -> Option<Arc<Zone>>) {
        let mut next = HashMap::new();
        for s in specs {
            match self.tasks.remove(&s.id) {
                Some(t) if t.0 == *s => {
                    next.insert(s.id.clone(), t);
                }
                old => {
                    if let Some((_, _, h)) = old {
                        h.abort();
                    }
                    let now = Instant::now();
                    let current = loaded(&s.id);
                    let refresh = match &current {
                        Some(z) => Refresh::from_disk(now, z.serial(), timers_of(z)),
                        None => Refresh::empty(now),
                    };
                    let notify = Arc::new(tokio::sync::Notify::new());
                    let task = run(s.clone(), refresh, current, notify.clone(), self.events.clone());
                    next.insert(s.id.clone(), (s.clone(), notify, tokio::spawn(task)));
                }
            }
        }
        for (_, (_, _, h)) in self.tasks.drain() {
            h.abort();
        }
        self.tasks = next;
    }

    /// A NOTIFY for `apex` came from `from`: the zone it names is checked at once when
    /// `from` is one of its primaries. `false` when no zone of ours has it as a primary.
    pub fn notified(&self, apex: &[u8], from: std::net::IpAddr) -> bool {
        let mut any = false;
        for (spec, notify, _) in self.tasks.values() {
            if *spec.id.1 == *apex && spec.from.iter().any(|p| p.addr.ip() == from) {
                notify.notify_one();
                any = true;
            }
        }
        any
    }
}

/// A random message ID (RFC 5452 §9.2).
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_be_bytes(b)
}

/// A zone's task: check, transfer, keep, report; forever.
async fn run(
    spec: Spec,
    mut refresh: Refresh,
    mut current: Option<Arc<Zone>>,
    notify: Arc<tokio::sync::Notify>,
    events: mpsc::UnboundedSender<Event>,
) {
    let zone = display(&spec.id.1);
    let (keeper, versions) = tokio::sync::watch::channel(None);
    tokio::spawn(keep_on_disk(spec.clone(), versions));
    let mut expired = false;
    let mut failing = false;
    loop {
        let now = Instant::now();
        let wake = refresh.next().max(now);
        let until = refresh.expires().filter(|e| *e > now).map_or(wake, |e| e.min(wake));
        tokio::select! {
            _ = tokio::time::sleep_until(until.into()) => {}
            _ = notify.notified() => refresh.notified(Instant::now()),
        }
        let now = Instant::now();
        if refresh.expired(now) && !expired {
            tracing::error!(%zone, "secondary zone expired: no primary confirmed it within the SOA's expire; answering SERVFAIL");
            let _ = events.send(Event::Expired { id: spec.id.clone() });
            expired = true;
        }
        if refresh.next() > now {
            continue;
        }
        let checked = check(&spec, current.clone()).await;
        if checked.is_ok() && std::mem::take(&mut failing) {
            tracing::info!(%zone, "secondary zone: a primary answers again");
        }
        match checked {
            Ok(Checked::Current(serial)) => {
                refresh.soa(now, serial, jitter(REFRESH_JITTER));
                tracing::debug!(%zone, serial, "secondary zone is current");
                if std::mem::take(&mut expired) {
                    tracing::info!(%zone, serial, "secondary zone confirmed again; serving it");
                    let _ = events.send(Event::Confirmed { id: spec.id.clone() });
                }
            }
            Ok(Checked::Transferred {
                zone: z,
                diff,
                from,
                how,
            }) => {
                let serial = z.serial();
                let timers = timers_of(&z);
                tracing::info!(%zone, serial, primary = %from, records = z.record_count(), how, "secondary zone transferred");
                refresh.transferred(Instant::now(), serial, timers, jitter(REFRESH_JITTER));
                expired = false;
                let z: Arc<Zone> = Arc::new(*z);
                // What a signed zone lacks, logged off the control thread (it walks the zone).
                let (audited, primary) = (z.clone(), from);
                tokio::task::spawn_blocking(move || crate::dnssec::audit::warn(&audited, &primary));
                // The difference for the journal: the IXFR's own, or (after a whole
                // transfer) computed off the control thread: a large zone takes a while.
                let diff = match (diff, &current, spec.journal) {
                    (_, _, false) => None,
                    (Some(d), _, true) => Some(d),
                    (None, Some(old), true) => {
                        let (old, new) = (old.clone(), z.clone());
                        tokio::task::spawn_blocking(move || crate::zone::diff::between(&old, &new))
                            .await
                            .ok()
                            .flatten()
                    }
                    (None, None, true) => None,
                };
                current = Some(z.clone());
                let _ = events.send(Event::Loaded {
                    id: spec.id.clone(),
                    zone: z.clone(),
                    diff,
                });
                // The copy on disk, written beside (writing a large zone takes longer than
                // changing it): the next NOTIFY does not wait for it.
                let _ = keeper.send(Some(z));
            }
            Err(why) => {
                // Once per streak of failures: a primary that stays away is not a log flood.
                if !std::mem::replace(&mut failing, true) {
                    tracing::warn!(%zone, %why, "secondary zone: no primary could be checked or transferred; serving what we have and retrying at the SOA's retry");
                } else {
                    tracing::debug!(%zone, %why, "secondary zone: still failing");
                }
                refresh.failed(Instant::now(), jitter(RETRY_JITTER));
                continue;
            }
        }
    }
}

/// Up to `max` of random delay.
fn jitter(max: Duration) -> Duration {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    max.mul_f64(f64::from(u32::from_be_bytes(b)) / f64::from(u32::MAX))
}

/// A zone's SOA timers (an hour each when its SOA cannot be read).
pub fn timers_of(z: &Zone) -> Timers {
    let (refresh, retry, expire) = z
        .soa()
        .and_then(|s| s.rdatas().next())
        .and_then(crate::zone::store::soa_timers)
        .unwrap_or((3600, 3600, 3600));
    Timers::from_soa(refresh, retry, expire)
}

enum Checked {
    /// The primary has this serial, not newer than ours.
    Current(u32),
    /// A newer zone, by `how` ("AXFR", "IXFR", or "IXFR, AXFR-style").
    Transferred {
        zone: Box<Zone>,
        /// An IXFR's differences.
        diff: Option<crate::zone::diff::Diff>,
        from: SocketAddr,
        how: &'static str,
    },
}

/// Asks each primary in turn: its SOA, then the zone when it is newer than `ours`.
async fn check(spec: &Spec, current: Option<Arc<Zone>>) -> Result<Checked, String> {
    let ours = current.as_ref().map(|z| z.serial());
    let mut why = Vec::new();
    let key = spec.key.as_ref().and_then(crate::dns::tsig::signer);
    let key = key.as_ref();
    let tls = match (&spec.tls, spec.from.iter().any(|p| p.tls)) {
        (Some(t), true) => match Xot::new(t) {
            Ok(x) => Some(x),
            Err(e) => {
                why.push(format!("tls: {e}"));
                None
            }
        },
        _ => None,
    };
    for primary in &spec.from {
        let p = primary.addr;
        let via = match (primary.tls, &tls) {
            (false, _) => Via::Plain,
            (true, Some(x)) => Via::Tls(x),
            (true, None) => continue,
        };
        let serial = match soa_serial(p, &spec.id.1, via, key).await {
            Ok(s) => s,
            Err(e) => {
                why.push(format!("{p}: SOA: {e}"));
                continue;
            }
        };
        if ours.is_some_and(|o| !crate::zone::refresh::serial_gt(serial, o)) {
            return Ok(Checked::Current(serial));
        }
        // IXFR first when there is a zone to apply it to (RFC 1995), AXFR when it fails.
        if let Some(base) = &current {
            match tokio::time::timeout(TRANSFER_TIMEOUT, ixfr(p, base.clone(), via, key)).await {
                Ok(Ok(IxfrResult::Current)) => return Ok(Checked::Current(base.serial())),
                Ok(Ok(IxfrResult::Applied(zone, diff))) => {
                    return Ok(Checked::Transferred {
                        zone: Box::new(zone),
                        diff: Some(diff),
                        from: p,
                        how: "IXFR",
                    });
                }
                Ok(Ok(IxfrResult::Whole(zone))) => {
                    return Ok(Checked::Transferred {
                        zone: Box::new(zone),
                        diff: None,
                        from: p,
                        how: "IXFR, AXFR-style",
                    });
                }
                Ok(Err(e)) => tracing::debug!(primary = %p, error = %e, "IXFR failed; asking AXFR"),
                Err(_) => tracing::debug!(primary = %p, "IXFR took too long; asking AXFR"),
            }
        }
        match tokio::time::timeout(TRANSFER_TIMEOUT, axfr(p, &spec.id.1, via, key)).await {
            Ok(Ok(zone)) => {
                return Ok(Checked::Transferred {
                    zone: Box::new(zone),
                    diff: None,
                    from: p,
                    how: "AXFR",
                });
            }
            Ok(Err(e)) => why.push(format!("{p}: AXFR: {e}")),
            Err(_) => why.push(format!("{p}: AXFR: took over {TRANSFER_TIMEOUT:?}")),
        }
    }
    Err(why.join("; "))
}

/// The primary's SOA serial for `apex`: over UDP, then over TCP when UDP is truncated,
/// refused or unanswered (Knot answers catalog zones' SOA only over TCP).
async fn soa_serial(primary: SocketAddr, apex: &[u8], via: Via<'_>, key: Option<&Arc<Key>>) -> Result<u32, String> {
    let mut q = wire::query(apex, Rtype::SOA, false);
    let id = random_id();
    q[0..2].copy_from_slice(&id.to_be_bytes());
    let (q, client) = signed(q, key)?;
    if let Via::Tls(x) = via {
        // XoT: the SOA over the same TLS as the transfer (RFC 9103 §5: no plain text).
        return soa_over_stream(primary, &q, apex, Via::Tls(x), client).await;
    }
    let mut udp_client = client.clone();
    let udp = async {
        let bind: SocketAddr = if primary.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }
            .parse()
            .unwrap_or(primary);
        let s = tokio::net::UdpSocket::bind(bind).await.map_err(|e| e.to_string())?;
        s.connect(primary).await.map_err(|e| e.to_string())?;
        s.send(&q).await.map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = s.recv(&mut buf).await.map_err(|e| e.to_string())?;
            // Other datagrams on the connected socket are not ours: wait for ours.
            if n >= 2 && buf[..2] == id.to_be_bytes() {
                if let Some(c) = &mut udp_client {
                    c.check(&buf[..n])?;
                }
                return soa_in(&buf[..n], apex);
            }
        }
    };
    // Truncated, refused, unanswered: over TCP then.
    if let Ok(Ok(Some(serial))) = tokio::time::timeout(SOA_TIMEOUT, udp).await {
        return Ok(serial);
    }
    soa_over_stream(primary, &q, apex, Via::Plain, client).await
}

/// The SOA query `q` over TCP or TLS.
async fn soa_over_stream(
    primary: SocketAddr,
    q: &[u8],
    apex: &[u8],
    via: Via<'_>,
    client: Option<Client>,
) -> Result<u32, String> {
    let ask = async {
        let mut s = open(primary, via).await?;
        let mut serial = None;
        exchange(&mut *s, q, client, |m| {
            serial = soa_in(m, apex)?;
            Ok(true)
        })
        .await?;
        serial.ok_or_else(|| "no SOA in the reply".to_string())
    };
    tokio::time::timeout(SOA_TIMEOUT * 2, ask)
        .await
        .map_err(|_| "no answer over TCP or TLS".to_string())?
}

/// The serial of the apex SOA in a reply's answer; `None` when truncated (ask over TCP);
/// an error for any rcode but NOERROR.
fn soa_in(reply: &[u8], apex: &[u8]) -> Result<Option<u32>, String> {
    let m = Message::from_octets(reply).map_err(|_| "a reply that does not parse".to_string())?;
    if m.header().tc() {
        return Ok(None);
    }
    if m.header().rcode() != Rcode::NOERROR {
        return Err(format!("the primary answered {}", m.header().rcode()));
    }
    for rr in m
        .answer()
        .map_err(|_| "a reply that does not parse".to_string())?
        .flatten()
    {
        if let Ok(Some(rec)) = rr.into_record::<AllRecordData<_, ParsedName<_>>>() {
            if let AllRecordData::Soa(soa) = rec.data() {
                if NameKey::of(rec.owner()).as_slice() == apex {
                    return Ok(Some(soa.serial().into_int()));
                }
            }
        }
    }
    Err("the reply has no SOA for the zone (is it a primary for it?)".into())
}

async fn send_framed<S: tokio::io::AsyncWrite + Unpin>(s: &mut S, msg: &[u8]) -> Result<(), String> {
    let mut framed = (msg.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    s.write_all(&framed).await.map_err(|e| e.to_string())?;
    s.flush().await.map_err(|e| e.to_string())
}

async fn read_framed<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await.map_err(|e| e.to_string())?;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut msg).await.map_err(|e| e.to_string())?;
    Ok(msg)
}

/// A connection to a primary: TCP, or TLS over it.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// Opens a connection to `primary`, with TLS for a `tls://` one.
async fn open(primary: SocketAddr, via: Via<'_>) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::time::timeout(SOA_TIMEOUT, tokio::net::TcpStream::connect(primary))
        .await
        .map_err(|_| "the connection did not open".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(match via {
        Via::Plain => Box::new(tcp),
        Via::Tls(x) => Box::new(x.handshake(tcp).await?),
    })
}

/// Sends `query` and hands each message of the reply to `feed` until it says the transfer
/// is whole; with `client` (the query was signed) each message's TSIG is checked first.
async fn exchange(
    s: &mut dyn Stream,
    query: &[u8],
    mut client: Option<Client>,
    mut feed: impl FnMut(&[u8]) -> Result<bool, String>,
) -> Result<(), String> {
    let mut s = s;
    send_framed(&mut s, query).await?;
    loop {
        let msg = tokio::time::timeout(MESSAGE_TIMEOUT, read_framed(&mut s))
            .await
            .map_err(|_| format!("no message for {MESSAGE_TIMEOUT:?}"))?
            .map_err(|e| format!("the transfer stopped before its closing SOA: {e}"))?;
        if let Some(c) = &mut client {
            c.check(&msg)?;
        }
        if feed(&msg)? {
            return client.map_or(Ok(()), Client::done);
        }
    }
}

/// `q` signed with `key` when there is one, and what checks its replies.
fn signed(q: Vec<u8>, key: Option<&Arc<Key>>) -> Result<(Vec<u8>, Option<Client>), String> {
    match key {
        None => Ok((q, None)),
        Some(k) => {
            let (q, c) = crate::dns::tsig::sign_request(k.clone(), &q).ok_or("the request could not be signed")?;
            Ok((q, Some(c)))
        }
    }
}

/// The zone by AXFR from `primary` (RFC 5936), over TCP or TLS.
async fn axfr(primary: SocketAddr, apex: &[u8], via: Via<'_>, key: Option<&Arc<Key>>) -> Result<Zone, String> {
    let mut s = open(primary, via).await?;
    let id = random_id();
    let mut q = wire::query(apex, Rtype::AXFR, false);
    q[0..2].copy_from_slice(&id.to_be_bytes());
    let (q, client) = signed(q, key)?;
    pull(&mut *s, &q, client, AxfrIn::new(apex, id)).await
}

/// The changes since `base` by IXFR from `primary` (RFC 1995), over TCP or TLS: the query
/// carries our SOA in its authority section (§3).
async fn ixfr(
    primary: SocketAddr,
    base: Arc<Zone>,
    via: Via<'_>,
    key: Option<&Arc<Key>>,
) -> Result<IxfrResult, String> {
    let mut s = open(primary, via).await?;
    let id = random_id();
    let mut q = wire::query(base.apex(), Rtype::IXFR, false);
    q[0..2].copy_from_slice(&id.to_be_bytes());
    let soa = base.soa().ok_or("our zone has no SOA")?;
    let rdata = soa.rdatas().next().ok_or("our zone has no SOA")?;
    // Our SOA: the owner points at the question's name (offset 12).
    q.extend_from_slice(&[0xC0, wire::HEADER_LEN as u8]);
    q.extend_from_slice(&Rtype::SOA.to_int().to_be_bytes());
    q.extend_from_slice(&domain::base::iana::Class::IN.to_int().to_be_bytes());
    q.extend_from_slice(&soa.ttl().to_be_bytes());
    q.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    q.extend_from_slice(rdata);
    wire::set_count(&mut q, 2, 1);
    let (q, client) = signed(q, key)?;
    pull(&mut *s, &q, client, IxfrIn::new(base, id)).await
}

/// A transfer being read: AXFR or IXFR.
trait Incoming: Send + 'static {
    type Out: Send + 'static;
    fn feed(&mut self, msg: &[u8]) -> Result<(), TransferError>;
    fn is_done(&self) -> bool;
    fn finish(self) -> Result<Self::Out, TransferError>;
}

impl Incoming for AxfrIn {
    type Out = Zone;
    fn feed(&mut self, msg: &[u8]) -> Result<(), TransferError> {
        AxfrIn::feed(self, msg)
    }
    fn is_done(&self) -> bool {
        AxfrIn::is_done(self)
    }
    fn finish(self) -> Result<Self::Out, TransferError> {
        AxfrIn::finish(self)
    }
}

impl Incoming for IxfrIn {
    type Out = IxfrResult;
    fn feed(&mut self, msg: &[u8]) -> Result<(), TransferError> {
        IxfrIn::feed(self, msg)
    }
    fn is_done(&self) -> bool {
        IxfrIn::is_done(self)
    }
    fn finish(self) -> Result<Self::Out, TransferError> {
        IxfrIn::finish(self)
    }
}

/// Sends `query`, reads the transfer into `t` and builds its result (a large zone takes a
/// while to build: not on the control loop's thread).
async fn pull<T: Incoming>(
    s: &mut dyn Stream,
    query: &[u8],
    client: Option<Client>,
    mut t: T,
) -> Result<T::Out, String> {
    exchange(s, query, client, |m| {
        t.feed(m).map_err(|e| e.to_string())?;
        Ok(t.is_done())
    })
    .await?;
    tokio::task::spawn_blocking(move || t.finish())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// How a primary is reached.
#[derive(Clone, Copy)]
enum Via<'a> {
    /// UDP and TCP.
    Plain,
    /// TLS (XoT, RFC 9103), checked as `x` says.
    Tls(&'a Xot),
}

/// The TLS client of `tls://` primaries: ALPN "dot" (RFC 9103 §7.1), the certificate
/// checked against `tls_servername`.
struct Xot {
    connector: tokio_rustls::TlsConnector,
    name: rustls_pki_types::ServerName<'static>,
}

impl Xot {
    fn new(t: &SecondaryTls) -> Result<Xot, String> {
        let client = t.client.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        let cfg = crate::tls::client::config(t.ca.as_deref(), client, &[b"dot"]).map_err(|e| e.to_string())?;
        let name = rustls_pki_types::ServerName::try_from(t.servername.clone()).map_err(|e| e.to_string())?;
        Ok(Xot {
            connector: tokio_rustls::TlsConnector::from(cfg),
            name,
        })
    }

    async fn handshake(
        &self,
        tcp: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
        tokio::time::timeout(SOA_TIMEOUT, self.connector.connect(self.name.clone(), tcp))
            .await
            .map_err(|_| "the TLS handshake did not finish".to_string())?
            .map_err(|e| format!("TLS: {e}"))
    }
}

/// Writes each version of the zone sent to `versions` to its file, the newest when several
/// came during a write, one write at a time; ends when the zone's task does.
async fn keep_on_disk(spec: Spec, mut versions: tokio::sync::watch::Receiver<Option<Arc<Zone>>>) {
    while versions.changed().await.is_ok() {
        let Some(z) = versions.borrow_and_update().clone() else {
            continue;
        };
        let s = spec.clone();
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || keep(&s, &z)).await {
            let zone = display(&spec.id.1);
            tracing::warn!(%zone, error = %e, "secondary zone transferred but not kept on disk");
        }
    }
}

/// Writes the transferred zone to its file, atomically.
fn keep(spec: &Spec, zone: &Zone) -> std::io::Result<()> {
    std::fs::create_dir_all(&spec.id.0)?;
    crate::storage::write_atomic_with(&spec.path(), 0o644, |w| crate::zone::transfer::write_zone(zone, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zone_files_are_named_after_their_zone() {
        let key = |n: &str| {
            NameKey::of(&crate::zone::name::parse_abs(n).unwrap())
                .as_slice()
                .to_vec()
        };
        let d = Path::new("/z");
        assert_eq!(zone_path(d, &key("Example.ORG")), Path::new("/z/example.org.zone"));
        assert_eq!(
            zone_path(d, &key("0/26.2.0.192.in-addr.arpa")),
            Path::new("/z/0%2F26.2.0.192.in-addr.arpa.zone")
        );
        assert_eq!(zone_path(d, &[0]), Path::new("/z/root.zone"));
    }
}
