//! Loading and refreshing the data the Corefile names: zone files and hosts tables.
//!
//! Loads run on the control side (never on a shard). A reload that fails keeps the data
//! already loaded and says why; a zone file is only replaced when its SOA serial grows
//! (RFC 1982 serial arithmetic), as CoreDNS' `file` does.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use domain::base::Name;

use crate::config::{Config, ConfigError, HostsConfig, TlsConfig};
use crate::dns::balance::Weights;
use crate::tls::certs::{CertError, PairPem};
use crate::zone::hosts::Hosts;
use crate::zone::name::NameKey;
use crate::zone::store::Zone;
use crate::zone::zonefile::{self, LoadError};
use rustls::sign::CertifiedKey;

/// A zone file loaded for one origin.
pub struct FileEntry {
    /// The zone.
    pub zone: Arc<Zone>,
    path: PathBuf,
    origin: Name<Bytes>,
    stamp: Option<Stamp>,
    reload: Duration,
    next_check: Instant,
    /// The serial of the file itself (the zone's is larger once updates applied).
    file_serial: u32,
    /// With `update`: the applied updates, replayed over the file at every load.
    pub(super) log: Option<super::update::UpdateLog>,
}

/// A hosts table of one server block.
pub struct HostsEntry {
    /// The table.
    pub hosts: Arc<Hosts>,
    cfg: HostsConfig,
    stamp: Option<Stamp>,
    next_check: Instant,
}

/// The weight file of one block's `loadbalance weighted`.
pub struct WeightsEntry {
    /// The table.
    pub table: Arc<Weights>,
    path: PathBuf,
    reload: Duration,
    /// Digest of the bytes the table was read from (CoreDNS compares an MD5 of them).
    digest: Option<u64>,
    next_check: Instant,
}

/// Reads a weight file: its table and the digest of its bytes.
fn read_weights(path: &Path) -> Result<(Weights, u64), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let table = Weights::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((table, crate::tls::certs::digest(&[&bytes])))
}

/// A `secondary` zone's data: what the last transfer (or the copy on disk) brought.
#[derive(Clone, Default)]
pub struct SecondaryEntry {
    /// The zone, once there is one.
    pub zone: Option<Arc<Zone>>,
    /// No primary confirmed it within its SOA's expire: not served.
    pub expired: bool,
}

/// A `secondary` zone's copy on disk, if it loads (a copy that does not is logged and left
/// to the next transfer to replace).
fn secondary_from_disk(dir: &Path, apex: &[u8]) -> Option<Arc<Zone>> {
    let path = crate::control::secondary::zone_path(dir, apex);
    if !path.exists() {
        return None;
    }
    let origin = crate::zone::name::from_wire(apex);
    match zonefile::load(&path, &origin) {
        Ok(z) => {
            tracing::info!(file = %path.display(), serial = z.serial(), "secondary zone loaded from its copy on disk");
            Some(Arc::new(z))
        }
        Err(e) => {
            tracing::warn!(error = %e, "secondary zone: its copy on disk does not load; waiting for a transfer");
            None
        }
    }
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp {
    mtime: SystemTime,
    len: u64,
}

/// Digests of the content of the TLS files a `forward` reads (CA, client certificate and
/// key): a file copied in with its old size and timestamps is still a change.
fn forward_files(f: &crate::config::ForwardConfig) -> Vec<Option<u64>> {
    let client = f.tls_client.iter().flat_map(|(c, k)| [c, k]);
    f.tls_ca
        .iter()
        .chain(client)
        .map(|p| Some(crate::tls::certs::digest(&[&std::fs::read(p).ok()?])))
        .collect()
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        mtime: m.modified().ok()?,
        len: m.len(),
    })
}

/// A certificate and key pair from files (`tls CERT KEY`).
pub struct CertEntry {
    /// The pair, checked to match.
    pub pair: Arc<CertifiedKey>,
    /// [`PairPem::digest`] of the files the pair was made from.
    digest: u64,
    next_check: Instant,
}

/// How often certificate files are checked for a change.
pub const CERT_CHECK: Duration = Duration::from_secs(5);

/// Identifies a zone file entry: the file and the origin it is loaded as.
pub type FileId = (PathBuf, Box<[u8]>);

/// All data of a configuration.
#[derive(Default)]
pub struct DataSet {
    /// Zone files by (path, origin).
    pub files: HashMap<FileId, FileEntry>,
    /// Hosts tables by server block index.
    pub hosts: HashMap<usize, HostsEntry>,
    /// `loadbalance weighted` tables by server block index.
    pub weights: HashMap<usize, WeightsEntry>,
    /// `secondary` zones by (folder, apex).
    pub secondaries: HashMap<crate::control::secondary::SecondaryId, SecondaryEntry>,
    /// Certificate pairs by (certificate file, key file).
    pub certs: HashMap<(PathBuf, PathBuf), CertEntry>,
    /// Forwarding plans by server block index, with digests of the TLS files they read.
    pub plans: HashMap<usize, (Arc<crate::dns::plan::Plan>, Vec<Option<u64>>)>,
    /// What each consumed catalog zone (RFC 9432) last listed, by its secondary id.
    pub catalogs: HashMap<crate::control::secondary::SecondaryId, crate::zone::catalog::Catalog>,
    /// The catalog member zones served (each also has its entry in `secondaries`).
    pub members: crate::control::catalog::Members,
    /// The recent differences of each zone a `transfer` lists, by apex (IXFR out).
    pub journals: HashMap<Box<[u8]>, Arc<crate::zone::diff::Journal>>,
    /// The zones that keep a journal: those a `transfer` lists.
    journaled: Vec<Box<[u8]>>,
    /// `dnssec` signers by server block index: made once per configuration, so the
    /// shards' signature caches live as long as it does.
    pub signers: HashMap<usize, Arc<crate::dnssec::online::Signer>>,
    /// The zones `sign` keeps signed (filled by the caller of [`DataSet::load`], which
    /// signs before loading).
    pub signs: Vec<super::sign::SignEntry>,
}

/// The zones a `transfer` lists (lowercase wire): they keep a journal of differences.
pub fn journaled(cfg: &Config) -> Vec<Box<[u8]>> {
    let mut out: Vec<Box<[u8]>> = cfg
        .blocks
        .iter()
        .flat_map(|b| &b.transfers)
        .flat_map(|t| t.zones.iter().map(|z| NameKey::of(z).as_slice().into()))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// What a refresh changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Zone or hosts data (a new snapshot is needed).
    pub data: bool,
    /// Certificates (the TLS resolvers need the new pairs).
    pub certs: bool,
}

/// A load failure of anything the Corefile names.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A zone file.
    #[error("{where_}: file: {source}")]
    Zone {
        /// The `file` directive.
        where_: crate::config::Pos,
        /// Why.
        #[source]
        source: LoadError,
    },
    /// A hosts file or entry.
    #[error(transparent)]
    Hosts(#[from] ConfigError),
    /// A `loadbalance weighted` file.
    #[error("{where_}: loadbalance: {why}")]
    Weights {
        /// The server block.
        where_: crate::config::Pos,
        /// Why.
        why: String,
    },
    /// A certificate or key file.
    #[error("{where_}: tls: {source}")]
    Cert {
        /// The `tls` directive.
        where_: crate::config::Pos,
        /// Why.
        #[source]
        source: Box<CertError>,
    },
    /// The log of applied updates of a zone does not read.
    #[error("{where_}: update: {why}")]
    UpdateLog {
        /// The `update` directive.
        where_: crate::config::Pos,
        /// Why (the file and line).
        why: String,
    },
}

impl DataSet {
    /// Loads everything `cfg` names. Zone files unchanged on disk since `previous` loaded
    /// them are reused without parsing.
    pub fn load(cfg: &Config, previous: Option<&DataSet>) -> Result<DataSet, DataError> {
        let now = Instant::now();
        let mut set = DataSet {
            journaled: journaled(cfg),
            ..DataSet::default()
        };
        if let Some(p) = previous {
            set.journals = p.journals.clone();
            set.journals.retain(|apex, _| set.journaled.contains(apex));
        }
        for (bi, block) in cfg.blocks.iter().enumerate() {
            if let Some(d) = &block.dnssec {
                let zones = d.zones.iter().map(|z| NameKey::of(z).as_slice().into()).collect();
                let keys = d.keys.iter().map(|k| k.0.clone()).collect();
                set.signers.insert(
                    bi,
                    Arc::new(crate::dnssec::online::Signer::new(zones, keys, d.cache_capacity)),
                );
            }
            for f in &block.files {
                for origin in &f.zones {
                    let id: FileId = (f.path.clone(), NameKey::of(origin).as_slice().into());
                    if set.files.contains_key(&id) {
                        continue;
                    }
                    let current = stamp(&f.path);
                    let updated = block.update_log_dir(origin);
                    let reused = previous
                        .and_then(|p| p.files.get(&id))
                        .filter(|old| old.stamp.is_some() && old.stamp == current)
                        .filter(|old| old.log.is_some() == updated.is_some());
                    let (zone, file_serial, log) = match reused {
                        Some(old) => (old.zone.clone(), old.file_serial, old.log.clone()),
                        None => {
                            let zone = zonefile::load(&f.path, origin).map_err(|source| DataError::Zone {
                                where_: f.pos.clone(),
                                source,
                            })?;
                            let file_serial = zone.serial();
                            let log = match updated {
                                Some((dir, pos)) => {
                                    Some(super::update::UpdateLog::open(dir, &id.1).map_err(|why| {
                                        DataError::UpdateLog {
                                            where_: pos.clone(),
                                            why,
                                        }
                                    })?)
                                }
                                None => None,
                            };
                            let zone = match &log {
                                Some(l) => l.replay(zone),
                                None => zone,
                            };
                            (Arc::new(zone), file_serial, log)
                        }
                    };
                    set.files.insert(
                        id,
                        FileEntry {
                            zone,
                            path: f.path.clone(),
                            origin: origin.clone(),
                            stamp: current,
                            reload: f.reload,
                            next_check: now + f.reload,
                            file_serial,
                            log,
                        },
                    );
                }
            }
            for sec in &block.secondaries {
                for origin in &sec.zones {
                    let id = (sec.directory.clone(), NameKey::of(origin).as_slice().into());
                    if set.secondaries.contains_key(&id) {
                        continue;
                    }
                    let entry = match previous.and_then(|p| p.secondaries.get(&id)) {
                        Some(old) => old.clone(),
                        None => SecondaryEntry {
                            zone: secondary_from_disk(&id.0, &id.1),
                            expired: false,
                        },
                    };
                    set.secondaries.insert(id, entry);
                }
            }
            if let Some(TlsConfig::Files { cert, key, .. }) = &block.tls {
                if let std::collections::hash_map::Entry::Vacant(slot) = set.certs.entry((cert.clone(), key.clone())) {
                    let err = |e| DataError::Cert {
                        where_: block.pos.clone(),
                        source: Box::new(e),
                    };
                    let pem = PairPem::read(cert, key).map_err(err)?;
                    slot.insert(CertEntry {
                        pair: pem.pair(cert, key).map_err(err)?,
                        digest: pem.digest(),
                        next_check: now + CERT_CHECK,
                    });
                }
            }
            if let Some(f) = &block.forward {
                // An unchanged forward keeps its plan, and so its caches and connections.
                let files = forward_files(f);
                let kept = previous
                    .and_then(|p| p.plans.get(&bi))
                    .filter(|(p, st)| {
                        p.cfg == *f
                            && p.cache.as_ref() == block.cache.as_ref()
                            && p.budget == block.cancel
                            && *st == files
                    })
                    .cloned();
                let plan = match kept {
                    Some(kept) => kept,
                    None => {
                        let mut plan =
                            crate::forward::build_plan(f, block.cache.as_ref()).map_err(|e| DataError::Cert {
                                where_: f.pos.clone(),
                                source: Box::new(e),
                            })?;
                        plan.budget = block.cancel;
                        (Arc::new(plan), files)
                    }
                };
                set.plans.insert(bi, plan);
            }
            if let Some((path, reload)) = block.loadbalance.as_ref().and_then(|l| l.weighted.as_ref()) {
                let (table, digest) = match read_weights(path) {
                    Ok((t, d)) => (t, Some(d)),
                    // CoreDNS: a file that cannot be read is retried when it is reloaded.
                    Err(why) if !reload.is_zero() && !path.exists() => {
                        tracing::warn!(%why, "loadbalance: weight file missing; every address weighs 1 until it appears");
                        (Weights::default(), None)
                    }
                    Err(why) => {
                        return Err(DataError::Weights {
                            where_: block.pos.clone(),
                            why,
                        });
                    }
                };
                set.weights.insert(
                    bi,
                    WeightsEntry {
                        table: Arc::new(table),
                        path: path.clone(),
                        reload: *reload,
                        digest,
                        next_check: now + *reload,
                    },
                );
            }
            if let Some(h) = &block.hosts {
                let st = stamp(&h.file);
                let hosts = Arc::new(Hosts::load(h)?);
                set.hosts.insert(
                    bi,
                    HostsEntry {
                        hosts,
                        cfg: h.clone(),
                        stamp: st,
                        next_check: now + h.reload,
                    },
                );
            }
        }
        // Catalogs: their members as the copies on disk (or the last transfers) list them,
        // ownership carried over from before.
        if let Some(p) = previous {
            set.members = p.members.clone();
            for (apex, m) in &p.members {
                let id = crate::control::catalog::member_id(m, apex);
                if let Some(e) = p.secondaries.get(&id) {
                    set.secondaries.entry(id).or_insert_with(|| e.clone());
                }
            }
        }
        let catalogs: Vec<_> = crate::control::catalog::consumed(cfg).map(|(id, _, _)| id).collect();
        for id in catalogs {
            if let Some(zone) = set.secondaries.get(&id).and_then(|e| e.zone.clone()) {
                set.read_catalog(&id, &zone);
            }
        }
        set.sync_members(cfg);
        Ok(set)
    }

    /// A consumed catalog zone has new data: its members are read (RFC 9432) and the
    /// members served follow. `true` when the members served changed.
    pub fn catalog_loaded(&mut self, cfg: &Config, id: &crate::control::secondary::SecondaryId, zone: &Zone) -> bool {
        self.read_catalog(id, zone);
        self.sync_members(cfg)
    }

    fn read_catalog(&mut self, id: &crate::control::secondary::SecondaryId, zone: &Zone) {
        let name = crate::zone::name::display(&id.1);
        match crate::zone::catalog::parse(zone) {
            Ok(c) => {
                for m in &c.ignored {
                    tracing::warn!(catalog = %name, member = %m, "catalog member ignored: its node has more than one PTR, or the zone is listed twice (RFC 9432 §4.1)");
                }
                tracing::debug!(catalog = %name, serial = zone.serial(), members = c.members.len(), "catalog zone read");
                self.catalogs.insert(id.clone(), c);
            }
            Err(e) => {
                tracing::error!(catalog = %name, serial = zone.serial(), error = %e, "catalog zone not applied; its member zones stay as they were");
            }
        }
    }

    /// Makes the member zones served match what the catalogs list: entries for new members
    /// (their copy on disk, if any), none for members gone (their copy deleted, RFC 9432
    /// §5.3), a fresh one for a member whose unique ID changed (§5.5: reset). `true` when
    /// anything changed.
    pub fn sync_members(&mut self, cfg: &Config) -> bool {
        use crate::control::catalog::{assign, member_id};
        let (next, notes) = assign(cfg, &self.catalogs, &self.members);
        if next == self.members {
            return false;
        }
        for n in &notes {
            tracing::warn!("{n}");
        }
        for (apex, old) in &self.members {
            let kept = next.get(apex).filter(|n| n.catalog == old.catalog && n.id == old.id);
            if kept.is_some() {
                continue;
            }
            let id = member_id(old, apex);
            let reset = next.contains_key(apex);
            // A member moved by coo to a catalog with the same folder and unique ID keeps its
            // data (§5.6); anything else starts over.
            let moved_whole = next
                .get(apex)
                .is_some_and(|n| n.id == old.id && n.catalog.0 == old.catalog.0);
            if moved_whole {
                continue;
            }
            self.secondaries.remove(&id);
            let _ = std::fs::remove_file(crate::control::secondary::zone_path(&id.0, &id.1));
            let zone = crate::zone::name::display(apex);
            let catalog = crate::zone::name::display(&old.catalog.1);
            if reset {
                tracing::info!(%zone, %catalog, "catalog member zone reset: its unique ID or catalog changed (RFC 9432 §5.5)");
            } else {
                tracing::info!(%zone, %catalog, "catalog member zone removed");
            }
        }
        for (apex, m) in &next {
            let id = member_id(m, apex);
            if self.secondaries.contains_key(&id) {
                continue;
            }
            tracing::info!(zone = %crate::zone::name::display(apex), catalog = %crate::zone::name::display(&m.catalog.1), "catalog member zone added");
            let entry = SecondaryEntry {
                zone: secondary_from_disk(&id.0, &id.1),
                expired: false,
            };
            self.secondaries.insert(id, entry);
        }
        self.members = next;
        true
    }

    /// Re-reads files whose reload interval has passed and that changed on disk. Problems
    /// are logged; old data keeps serving.
    pub fn refresh(&mut self, now: Instant) -> Refreshed {
        let mut changed = false;
        let mut certs = false;
        // Zones signed again are loaded again at once, whatever their `reload`.
        let resigned: Vec<PathBuf> = self
            .signs
            .iter_mut()
            .filter(|e| now >= e.next_check)
            .filter_map(|e| e.ensure(now).then(|| e.out.clone()))
            .collect();
        for ((cert, key), entry) in self.certs.iter_mut() {
            if now < entry.next_check {
                continue;
            }
            entry.next_check = now + CERT_CHECK;
            // Read once: the digest and the pair come from the same bytes.
            let loaded = PairPem::read(cert, key).and_then(|pem| {
                if pem.digest() == entry.digest {
                    return Ok(None);
                }
                Ok(Some((pem.pair(cert, key)?, pem.digest())))
            });
            match loaded {
                Ok(None) => {}
                Ok(Some((pair, digest))) => {
                    tracing::info!(cert = %cert.display(), "certificate reloaded");
                    entry.pair = pair;
                    entry.digest = digest;
                    certs = true;
                }
                // A new certificate with the old key (mid-copy) fails here and is retried at
                // the next check.
                Err(e) => {
                    tracing::warn!(error = %e, "certificate reload failed; serving the previous one")
                }
            }
        }
        for entry in self.files.values_mut() {
            let forced = resigned.contains(&entry.path);
            if !forced && (entry.reload.is_zero() || now < entry.next_check) {
                continue;
            }
            entry.next_check = now + entry.reload;
            let old = entry.zone.clone();
            if refresh_file(entry) {
                changed = true;
                if self.journaled.iter().any(|a| **a == *old.apex()) {
                    if let Some(d) = crate::zone::diff::between(&old, &entry.zone) {
                        journal(&mut self.journals, d, &entry.zone);
                    }
                }
            }
        }
        for entry in self.hosts.values_mut() {
            if entry.cfg.reload.is_zero() || now < entry.next_check {
                continue;
            }
            entry.next_check = now + entry.cfg.reload;
            let st = stamp(&entry.cfg.file);
            if st == entry.stamp {
                continue;
            }
            match Hosts::load(&entry.cfg) {
                Ok(h) => {
                    tracing::info!(file = %entry.cfg.file.display(), entries = h.entry_count(), "hosts file reloaded");
                    entry.hosts = Arc::new(h);
                    entry.stamp = st;
                    changed = true;
                }
                Err(e) => {
                    tracing::error!(error = %e, "hosts reload failed; keeping the previous entries")
                }
            }
        }
        for entry in self.weights.values_mut() {
            if entry.reload.is_zero() || now < entry.next_check {
                continue;
            }
            entry.next_check = now + entry.reload;
            match read_weights(&entry.path) {
                Ok((_, d)) if Some(d) == entry.digest => {}
                Ok((table, d)) => {
                    tracing::info!(file = %entry.path.display(), names = table.0.len(), "weight file reloaded");
                    entry.table = Arc::new(table);
                    entry.digest = Some(d);
                    changed = true;
                }
                Err(why) => tracing::error!(%why, "weight file reload failed; keeping the previous weights"),
            }
        }
        Refreshed { data: changed, certs }
    }

    /// When the next file check is due.
    pub fn next_check(&self) -> Option<Instant> {
        let files = self
            .files
            .values()
            .filter(|e| !e.reload.is_zero())
            .map(|e| e.next_check);
        let certs = self.certs.values().map(|e| e.next_check);
        let hosts = self
            .hosts
            .values()
            .filter(|e| !e.cfg.reload.is_zero())
            .map(|e| e.next_check);
        let weights = self
            .weights
            .values()
            .filter(|e| !e.reload.is_zero())
            .map(|e| e.next_check);
        let signs = self.signs.iter().map(|e| e.next_check);
        files.chain(hosts).chain(certs).chain(weights).chain(signs).min()
    }

    /// The certificate pair loaded from `cert` and `key`.
    pub fn cert(&self, cert: &Path, key: &Path) -> Option<Arc<CertifiedKey>> {
        self.certs
            .get(&(cert.to_path_buf(), key.to_path_buf()))
            .map(|e| e.pair.clone())
    }

    /// The zone loaded from `path` for `origin`.
    pub fn zone(&self, path: &Path, origin: &Name<Bytes>) -> Option<Arc<Zone>> {
        let id: FileId = (path.to_path_buf(), NameKey::of(origin).as_slice().into());
        self.files.get(&id).map(|e| e.zone.clone())
    }
}

/// Adds `d`, the difference that made `zone`, to its journal.
fn journal(
    journals: &mut HashMap<Box<[u8]>, Arc<crate::zone::diff::Journal>>,
    d: crate::zone::diff::Diff,
    zone: &Zone,
) {
    let j = journals.entry(zone.apex().into()).or_default();
    Arc::make_mut(j).push(d, zone.record_count());
}

impl DataSet {
    /// A secondary zone brought `d` (computed beside its transfer): into its journal.
    pub fn journal(&mut self, d: crate::zone::diff::Diff, zone: &Zone) {
        if self.journaled.iter().any(|a| **a == *zone.apex()) {
            journal(&mut self.journals, d, zone);
        }
    }
}

fn refresh_file(entry: &mut FileEntry) -> bool {
    let st = stamp(&entry.path);
    if st.is_none() || st == entry.stamp {
        return false;
    }
    match zonefile::load(&entry.path, &entry.origin) {
        Ok(zone) => {
            // The file's serial against the file's before (updates move the zone's on).
            let (old, new) = (entry.file_serial, zone.serial());
            entry.stamp = st;
            if serial_gt(new, old) {
                tracing::info!(file = %entry.path.display(), zone = %entry.origin, old, new, "zone reloaded");
                entry.file_serial = new;
                let zone = match &entry.log {
                    Some(l) => l.replay(zone),
                    None => zone,
                };
                entry.zone = Arc::new(zone);
                true
            } else {
                tracing::warn!(file = %entry.path.display(), zone = %entry.origin, old, new, "zone file changed but its SOA serial did not grow; keeping serial {old}");
                false
            }
        }
        Err(e) => {
            // Keep the stamp as it was so a fixed file is noticed on the next check.
            tracing::error!(error = %e, "zone reload failed; serving the previous version");
            false
        }
    }
}

pub use crate::zone::refresh::serial_gt;
