//! RFC 2136 updates on the control thread: the key's grant checked and the update applied
//! to the zone file's data (`update::rfc2136`), written to the zone's log of applied updates
//! before it is served (an acknowledged update survives a crash), then served by every
//! shard with the next snapshot, journaled for IXFR and announced by NOTIFY as any other
//! new version of the zone. The log is replayed over the zone file whenever it is loaded.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use domain::base::iana::{Rcode, Rtype};

use crate::config::Config;
use crate::config::update::{GrantName as CfgGrantName, UpdateConfig};
use crate::net::ctx::{UpdateRequest, UpdateWhat};
use crate::update::log::{self, Entry};
use crate::update::rfc2136::{self, Change, GrantName, Grants, Refusal};
use crate::zone::name::{NameKey, display};
use crate::zone::store::Zone;

/// The log of applied updates of one zone, on disk and in memory.
#[derive(Clone, Debug)]
pub struct UpdateLog {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// Where the log of zone `apex` is kept in `dir`.
pub fn log_path(dir: &Path, apex: &[u8]) -> PathBuf {
    super::secondary::zone_file(dir, apex, "updates")
}

impl UpdateLog {
    /// The log of `apex` in `dir`: empty when there is none yet; an error (naming the file
    /// and line) when it cannot be read.
    pub fn open(dir: &Path, apex: &[u8]) -> Result<UpdateLog, String> {
        let path = log_path(dir, apex);
        let entries = match std::fs::read_to_string(&path) {
            Ok(text) => log::decode(&text).map_err(|e| format!("{}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(UpdateLog { path, entries })
    }

    /// `zone`, just loaded from its file, with every logged change applied in order and the
    /// serial of the last (or one more than the file's, when the file's is newer).
    pub fn replay(&self, zone: Zone) -> Zone {
        let Some(last) = self.entries.last() else {
            return zone;
        };
        let changes = self.entries.iter().flat_map(|e| e.changes.iter().cloned()).collect();
        match rfc2136::apply_changes(&zone, changes, Some(last.serial)) {
            Ok(Some(a)) => {
                tracing::info!(log = %self.path.display(), serial = a.zone.serial(), updates = self.entries.len(), "zone file loaded with its updates");
                a.zone
            }
            Ok(None) => zone,
            Err(e) => {
                tracing::error!(log = %self.path.display(), error = ?e, "the zone's updates do not apply to its file; serving the file alone");
                zone
            }
        }
    }

    /// Adds `entry` (what made `zone`) to the log on disk, synced before it returns; a log
    /// grown past [`log::COMPACT_AFTER`] changes is rewritten as one entry first.
    pub fn append(&mut self, entry: Entry, zone: &Zone) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        self.entries.push(entry);
        let changes: usize = self.entries.iter().map(|e| e.changes.len()).sum();
        if changes > log::COMPACT_AFTER {
            let folded = log::compact(zone, &self.entries);
            let text = format!("{HEADER}{}", log::encode(&folded));
            crate::storage::write_atomic(&self.path, text.as_bytes(), 0o644)?;
            self.entries = vec![folded];
            return Ok(());
        }
        let new = !self.path.exists();
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        if new {
            f.write_all(HEADER.as_bytes())?;
        }
        let last = self.entries.last().map(log::encode).unwrap_or_default();
        f.write_all(last.as_bytes())?;
        f.sync_data()
    }
}

/// The first line of a log file.
const HEADER: &str = "; ringdns: RFC 2136 updates applied to this zone, replayed over its zone file at every load\n";

/// The grants of an `update` directive, lowercase wire.
pub fn grants(u: &UpdateConfig) -> Grants {
    let wire = |n: &domain::base::Name<bytes::Bytes>| Box::<[u8]>::from(NameKey::of(n).as_slice());
    Grants {
        types: u.types.clone(),
        keys: u
            .grants
            .iter()
            .map(|g| {
                let names = g
                    .names
                    .iter()
                    .map(|n| match n {
                        CfgGrantName::Exact(n) => GrantName::Exact(wire(n)),
                        CfgGrantName::Below(n) => GrantName::Below(wire(n)),
                    })
                    .collect();
                (wire(&g.key), names)
            })
            .collect(),
    }
}

/// When a refused change was last logged, per source: at most once a minute each
/// (ROBUSTNESS: a flood of bad updates does not flood the log).
#[derive(Debug, Default)]
pub struct RefusalLog {
    last: std::collections::HashMap<std::net::IpAddr, std::time::Instant>,
}

impl RefusalLog {
    /// Whether a refusal from `from` is to be logged now.
    pub fn due(&mut self, from: std::net::IpAddr) -> bool {
        let now = std::time::Instant::now();
        if self
            .last
            .get(&from)
            .is_some_and(|t| now.duration_since(*t) < std::time::Duration::from_secs(60))
        {
            return false;
        }
        if self.last.len() >= 4096 {
            self.last.clear();
        }
        self.last.insert(from, now);
        true
    }
}

/// Applies `req` to the data: its rcode, and whether the zone changed (a new snapshot is
/// then due). Refusals are logged at most once a minute per source (`refusals`).
pub fn handle(
    cfg: &Config,
    data: &mut super::data::DataSet,
    req: &UpdateRequest,
    refusals: &mut RefusalLog,
) -> (Rcode, bool) {
    let zone_name = display(&req.zone);
    let (who, from) = match &req.what {
        UpdateWhat::Message { key, .. } => (format!("key {}", display(key)), req.from),
        UpdateWhat::Values { .. } => ("acme_dns".to_string(), req.from),
    };
    let mut refuse = |rcode: Rcode, why: &str| {
        if refusals.due(from) {
            tracing::warn!(zone = %zone_name, by = %who, %from, %rcode, "update refused: {why} (logged once a minute per source)");
        }
        (rcode, false)
    };
    let in_zone = |z: &domain::base::Name<bytes::Bytes>| *NameKey::of(z).as_slice() == *req.zone;
    // The first block that takes this kind of change for the zone and has a file for it.
    let found = cfg.blocks.iter().find_map(|b| {
        let grants = match &req.what {
            UpdateWhat::Message { .. } => Some(grants(b.update.as_ref().filter(|u| u.zones.iter().any(in_zone))?)),
            UpdateWhat::Values { .. } => {
                b.acme_dns.iter().find(|a| in_zone(&a.zone))?;
                None
            }
        };
        let file = b.files.iter().find(|f| f.zones.iter().any(in_zone))?;
        Some((grants, file.path.clone()))
    });
    let Some((grants, path)) = found else {
        return refuse(Rcode::REFUSED, "the zone is not a file zone that takes updates");
    };
    let Some(entry) = data.files.get_mut(&(path, req.zone.clone())) else {
        return refuse(Rcode::SERVFAIL, "the zone is not loaded");
    };
    // A zone signed offline would serve stale signatures over the changed data.
    if entry.zone.apex_node().is_some_and(|n| n.rrset(Rtype::RRSIG).is_some()) {
        return refuse(
            Rcode::REFUSED,
            "the zone file is signed (its signatures would not cover the change)",
        );
    }
    let result = match (&req.what, grants) {
        (UpdateWhat::Message { message, key }, Some(grants)) => match rfc2136::parse(message) {
            Ok(u) => rfc2136::apply(&entry.zone, &u, key, &grants),
            Err(rcode) => return refuse(rcode, "the message is malformed"),
        },
        (UpdateWhat::Values { owner, values }, _) => {
            rfc2136::apply_changes(&entry.zone, value_changes(owner, values), None)
        }
        (UpdateWhat::Message { .. }, None) => return refuse(Rcode::REFUSED, "no update grants"),
    };
    let applied = match result {
        Ok(Some(a)) => a,
        Ok(None) => {
            tracing::info!(zone = %zone_name, by = %who, %from, "update: nothing to change");
            return (Rcode::NOERROR, false);
        }
        Err(Refusal::Rcode(rcode)) => {
            let why = match rcode {
                Rcode::REFUSED => "outside the key's grant",
                Rcode::NOTZONE => "a name outside the zone",
                Rcode::FORMERR => "a malformed update section",
                _ => "a prerequisite does not hold",
            };
            return refuse(rcode, why);
        }
        Err(Refusal::Zone(e)) => return refuse(Rcode::SERVFAIL, &format!("the result is not a valid zone: {e}")),
    };
    let Some(log) = entry.log.as_mut() else {
        return refuse(Rcode::SERVFAIL, "the zone has no update log");
    };
    let logged = Entry {
        serial: applied.zone.serial(),
        changes: applied.changes,
    };
    if let Err(e) = log.append(logged, &applied.zone) {
        tracing::error!(zone = %zone_name, error = %e, "update: the log cannot be written; not applied");
        return (Rcode::SERVFAIL, false);
    }
    let serial = applied.zone.serial();
    let zone = Arc::new(applied.zone);
    entry.zone = zone.clone();
    data.journal(applied.diff, &zone);
    tracing::info!(zone = %zone_name, by = %who, %from, serial, "update applied");
    (Rcode::NOERROR, true)
}

/// The TTL of acme-dns's TXT records (its `dns.go` answers with 1).
pub const ACME_DNS_TTL: u32 = 1;

/// An acme-dns name's TXT RRset replaced by `values` (each one character-string).
fn value_changes(owner: &[u8], values: &[String]) -> Vec<Change> {
    let txt = Rtype::TXT.to_int();
    let mut out = vec![Change::DeleteRrset {
        owner: owner.into(),
        rtype: txt,
    }];
    for v in values {
        let bytes = &v.as_bytes()[..v.len().min(255)];
        let mut rdata = Vec::with_capacity(1 + bytes.len());
        rdata.push(bytes.len() as u8);
        rdata.extend_from_slice(bytes);
        out.push(Change::Add(crate::zone::diff::Rec {
            owner: owner.into(),
            rtype: txt,
            ttl: ACME_DNS_TTL,
            rdata: rdata.into(),
        }));
    }
    out
}
