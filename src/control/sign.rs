//! The schedule of `sign`: each zone's signed file is made when it is missing, when its
//! SOA signature was made more than 6 days ago or expires within 14 (CoreDNS's rules,
//! looked at on load and every 5 hours), when the zone file is newer than it (every
//! minute: a ringdns addition, so an edit is served signed without a signal) or when the
//! keys changed. Signing runs where the data loads (a blocking thread).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use domain::base::Name;
use domain::base::iana::Rtype;

use crate::config::sign::SignConfig;
use crate::dnssec::keys::SigningKey;
use crate::dnssec::offline;
use crate::zone::zonefile;

/// How often the signatures of a signed zone are looked at (CoreDNS: every 5 hours).
pub const DEEP_CHECK: Duration = Duration::from_secs(5 * 3600);
/// How often the zone file's time is compared with the signed file's (`file`'s default
/// reload interval).
pub const CHECK: Duration = Duration::from_secs(60);
/// Signed again when the last signing is this old...
const RESIGN_AFTER: u64 = 6 * 86400;
/// ...or the signatures expire this soon.
const EXPIRES_WITHIN: u64 = 14 * 86400;

/// One zone that a `sign` keeps signed.
pub struct SignEntry {
    /// The zone file.
    pub dbfile: PathBuf,
    /// The zone.
    pub origin: Name<Bytes>,
    /// Its keys.
    pub keys: Vec<Arc<SigningKey>>,
    /// The signed file.
    pub out: PathBuf,
    /// When to compare the files' times again.
    pub next_check: Instant,
    /// When to read the signed file's signatures again.
    next_deep: Instant,
}

impl SignEntry {
    /// The entries of a `sign` directive, due for both checks at `now`.
    pub fn of(s: &SignConfig, now: Instant) -> Vec<SignEntry> {
        s.keys
            .iter()
            .map(|(zone, keys)| SignEntry {
                dbfile: s.dbfile.clone(),
                origin: zone.clone(),
                keys: keys.iter().map(|k| k.0.clone()).collect(),
                out: s.signed_path(zone),
                next_check: now,
                next_deep: now,
            })
            .collect()
    }

    /// Signs the zone if it is due; true when a new signed file was written. Failures are
    /// logged (the signed file that exists stays served).
    pub fn ensure(&mut self, now: Instant) -> bool {
        self.next_check = now + CHECK;
        let deep = now >= self.next_deep;
        if deep {
            self.next_deep = now + DEEP_CHECK;
        }
        let wall = crate::dns::unix_seconds();
        let Some(why) = self.due(wall, deep) else {
            return false;
        };
        let started = Instant::now();
        match self.sign(wall) {
            Ok(signed) => {
                tracing::info!(
                    zone = %self.origin,
                    file = %self.out.display(),
                    serial = signed.serial,
                    signatures = signed.signatures,
                    keys = %self.keys.iter().map(|k| k.tag.to_string()).collect::<Vec<_>>().join(","),
                    elapsed = ?started.elapsed(),
                    why,
                    "zone signed"
                );
                true
            }
            Err(e) => {
                tracing::error!(zone = %self.origin, dbfile = %self.dbfile.display(), error = %e, "signing failed; the signed file stays as it was");
                false
            }
        }
    }

    /// Why the zone is to be signed now, if it is; `deep` reads the signed file's
    /// signatures and keys too.
    fn due(&self, now: u64, deep: bool) -> Option<String> {
        let Ok(signed_at) = std::fs::metadata(&self.out).and_then(|m| m.modified()) else {
            return Some("no signed file yet".into());
        };
        if modified(&self.dbfile).is_some_and(|m| m > signed_at) {
            return Some("the zone file changed".into());
        }
        if !deep {
            return None;
        }
        let zone = match zonefile::load(&self.out, &self.origin) {
            Ok(z) => z,
            Err(e) => return Some(format!("the signed file does not load: {e}")),
        };
        let Some((inception, expiration)) = offline::soa_signature(&zone) else {
            return Some("the signed file has no SOA signature".into());
        };
        let keys: Vec<&[u8]> = zone
            .apex_node()
            .and_then(|a| a.rrset(Rtype::DNSKEY))
            .map(|s| s.rdatas().collect())
            .unwrap_or_default();
        if keys.len() != self.keys.len() || !self.keys.iter().all(|k| keys.contains(&&*k.dnskey)) {
            return Some("the keys changed".into());
        }
        // Serial number arithmetic (RFC 4034 §3.1.5) around `now`.
        let age = (now as u32).wrapping_sub(inception) as i32;
        let left = expiration.wrapping_sub(now as u32) as i32;
        if i64::from(age) > RESIGN_AFTER as i64 {
            return Some(format!("signed {} days ago", age / 86400));
        }
        if i64::from(left) < EXPIRES_WITHIN as i64 {
            return Some(format!("signatures expire in {} days", left / 86400));
        }
        None
    }

    fn sign(&self, now: u64) -> Result<offline::Signed, String> {
        let zone = zonefile::load(&self.dbfile, &self.origin).map_err(|e| e.to_string())?;
        let mut jitter = [0u8; 16];
        let _ = getrandom::fill(&mut jitter);
        let jitter = [
            u64::from_le_bytes(jitter[..8].try_into().unwrap_or_default()),
            u64::from_le_bytes(jitter[8..].try_into().unwrap_or_default()),
        ];
        let signed = offline::sign(&zone, &self.keys, now, jitter).map_err(|e| e.to_string())?;
        if let Some(dir) = self.out.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        crate::storage::write_atomic(&self.out, signed.text.as_bytes(), 0o644)
            .map_err(|e| format!("{}: {e}", self.out.display()))?;
        Ok(signed)
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The zones every `sign` of `cfg` keeps signed, each signed now if it is due: run before
/// the data loads, so that `file` finds the signed zones.
pub fn sign_all(cfg: &crate::config::Config) -> Vec<SignEntry> {
    let now = Instant::now();
    let mut entries: Vec<SignEntry> = cfg
        .blocks
        .iter()
        .flat_map(|b| &b.signs)
        .flat_map(|s| SignEntry::of(s, now))
        .collect();
    for e in &mut entries {
        e.ensure(now);
    }
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Signs when there is no signed file, not again while it is fresh, again when the
    /// zone file is newer, and again at a deep check once the keys differ.
    #[test]
    fn signs_when_due_and_only_then() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
        let dir = std::env::temp_dir().join(format!("ringdns-sign-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let dbfile = dir.join("db");
        std::fs::copy(data.join("example.test.zone"), &dbfile).unwrap();
        let key = Arc::new(SigningKey::read(&data.join("Kexample.test.+013+33970")).unwrap());
        let now = Instant::now();
        let mut e = SignEntry {
            dbfile: dbfile.clone(),
            origin: crate::zone::name::parse_abs("example.test").unwrap(),
            keys: vec![key.clone()],
            out: dir.join("out/db.example.test.signed"),
            next_check: now,
            next_deep: now,
        };
        assert!(e.ensure(now), "no signed file yet");
        assert!(e.out.exists());
        e.next_deep = now;
        assert!(!e.ensure(now), "fresh");
        std::thread::sleep(Duration::from_millis(20));
        let text = std::fs::read_to_string(&dbfile).unwrap() + "added A 192.0.2.99\n";
        std::fs::write(&dbfile, text).unwrap();
        assert!(e.ensure(now), "the zone file is newer");
        assert!(std::fs::read_to_string(&e.out).unwrap().contains("added.example.test."));
        e.keys = vec![key.clone(), key];
        assert!(!e.ensure(now), "the keys are looked at only at a deep check");
        e.next_deep = now;
        assert!(e.ensure(now), "the keys changed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
