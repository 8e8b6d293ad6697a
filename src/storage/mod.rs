//! Certificate storage under `certpath`, safe for several ringdns instances sharing one
//! folder (an NFS export):
//!
//! ```text
//! certpath/                                  0700
//!   <ca-host>/account.json                   0600  ACME account credentials (one per CA)
//!   <ca-host>/<unit>/                        0700  one certificate (a set of names)
//!       current                              0644  "v<N>": the version in use
//!       v<N>/chain.pem  v<N>/key.pem (0600)  v<N>/meta.json
//!       lock                                 0644  held while ordering (see [`Lock`])
//! ```
//!
//! A new certificate is written into a fresh `v<N>` folder (temp file, fsync, rename for each
//! file, then fsync of the folder) and only then is `current` replaced the same way: a crash
//! at any point leaves `current` naming a complete, matching pair, old or new. The previous
//! version is kept; older ones are removed.

mod files;
pub mod lock;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use files::{ensure_private_dir, fs_now, write_atomic, write_atomic_with};
pub use lock::Lock;

/// A stored certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// PEM chain, leaf first, as the CA sent it.
    pub chain_pem: String,
    /// PEM private key.
    pub key_pem: String,
    /// Free-form metadata (JSON).
    pub meta: String,
    /// The version folder it came from.
    pub version: u64,
}

/// Errors of the storage layer, with the path concerned.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct StorageError {
    /// The file or folder.
    pub path: String,
    /// Why.
    #[source]
    pub source: io::Error,
}

fn err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError {
        path: path.display().to_string(),
        source,
    }
}

/// The storage root.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// A folder name from free text: letters, digits, `-`, `.`, `_` and `+` kept, the rest `_`.
pub fn folder_name(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("_{s}")
    } else {
        s
    }
}

impl Store {
    /// A store rooted at `root` (created, mode 0700).
    pub fn open(root: &Path) -> Result<Store, StorageError> {
        ensure_private_dir(root).map_err(err(root))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    /// A store at `root` without touching the disk (for computing paths).
    pub fn at(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of a CA (by the host and path of its directory URL).
    pub fn ca_dir(&self, directory_url: &str) -> PathBuf {
        let rest = directory_url.split_once("://").map_or(directory_url, |(_, r)| r);
        self.root.join(folder_name(rest.trim_end_matches('/')))
    }

    /// The folder of a certificate for `names` from the CA at `directory_url`.
    pub fn unit_dir(&self, directory_url: &str, names: &[String]) -> PathBuf {
        let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        sorted.dedup();
        let joined = sorted.join("+").replace('*', "wildcard");
        // Keep names readable but bounded: a long list is shortened with a digest.
        let name = if joined.len() > 100 {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            joined.hash(&mut h);
            format!("{}+{:016x}", &joined[..60], h.finish())
        } else {
            joined
        };
        self.ca_dir(directory_url).join(folder_name(&name))
    }

    /// Reads the current certificate of a unit. Key files readable by others are fixed to
    /// 0600 (and said once in the log).
    pub fn load(&self, unit: &Path) -> Result<Option<Stored>, StorageError> {
        let current = unit.join("current");
        let text = match fs::read_to_string(&current) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(&current)(e)),
        };
        let Some(version) = text.trim().strip_prefix('v').and_then(|v| v.parse::<u64>().ok()) else {
            return Err(StorageError {
                path: current.display().to_string(),
                source: io::Error::new(io::ErrorKind::InvalidData, format!("not a version: {text:?}")),
            });
        };
        let dir = unit.join(format!("v{version}"));
        let key_path = dir.join("key.pem");
        files::fix_private_mode(&key_path).map_err(err(&key_path))?;
        let read = |name: &str| {
            let p = dir.join(name);
            fs::read_to_string(&p).map_err(err(&p))
        };
        Ok(Some(Stored {
            chain_pem: read("chain.pem")?,
            key_pem: read("key.pem")?,
            meta: read("meta.json").unwrap_or_default(),
            version,
        }))
    }

    /// Writes a new version and makes it current. Returns the version number.
    pub fn save(&self, unit: &Path, chain_pem: &str, key_pem: &str, meta: &str) -> Result<u64, StorageError> {
        ensure_private_dir(unit).map_err(err(unit))?;
        let version = self.next_version(unit)?;
        let dir = unit.join(format!("v{version}"));
        ensure_private_dir(&dir).map_err(err(&dir))?;
        write_atomic(&dir.join("key.pem"), key_pem.as_bytes(), 0o600).map_err(err(&dir))?;
        failpoint("storage-after-key");
        if failpoint_is("storage-enospc") {
            return Err(err(&dir)(io::Error::from_raw_os_error(28)));
        }
        write_atomic(&dir.join("chain.pem"), chain_pem.as_bytes(), 0o644).map_err(err(&dir))?;
        write_atomic(&dir.join("meta.json"), meta.as_bytes(), 0o644).map_err(err(&dir))?;
        files::sync_dir(&dir).map_err(err(&dir))?;
        // The switch: one rename.
        write_atomic(&unit.join("current"), format!("v{version}\n").as_bytes(), 0o644).map_err(err(unit))?;
        self.prune(unit, version);
        Ok(version)
    }

    fn versions(&self, unit: &Path) -> Vec<u64> {
        let Ok(rd) = fs::read_dir(unit) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_prefix('v'))
                    .and_then(|v| v.parse().ok())
            })
            .collect()
    }

    fn next_version(&self, unit: &Path) -> Result<u64, StorageError> {
        Ok(self.versions(unit).into_iter().max().unwrap_or(0) + 1)
    }

    /// Removes versions older than the one before `current`.
    fn prune(&self, unit: &Path, current: u64) {
        for v in self.versions(unit) {
            if v + 1 < current {
                let _ = fs::remove_dir_all(unit.join(format!("v{v}")));
            }
        }
    }

    /// The stored account credentials (JSON) for a CA.
    pub fn load_account(&self, directory_url: &str) -> Result<Option<String>, StorageError> {
        let p = self.ca_dir(directory_url).join("account.json");
        files::fix_private_mode(&p)
            .or_else(|e| {
                if e.kind() == io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(err(&p))?;
        match fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(err(&p)(e)),
        }
    }

    /// Stores account credentials for a CA (mode 0600).
    pub fn save_account(&self, directory_url: &str, json: &str) -> Result<(), StorageError> {
        let dir = self.ca_dir(directory_url);
        ensure_private_dir(&dir).map_err(err(&dir))?;
        let p = dir.join("account.json");
        write_atomic(&p, json.as_bytes(), 0o600).map_err(err(&p))
    }
}

/// Fault injection for crash tests: when `RINGDNS_FAILPOINT` names this point, the process
/// aborts here, as a power cut would stop it.
fn failpoint(name: &str) {
    if failpoint_is(name) {
        tracing::error!(failpoint = name, "RINGDNS_FAILPOINT: aborting");
        std::process::abort();
    }
}

/// Whether `RINGDNS_FAILPOINT` names `name` (fault injection for tests: `storage-after-key`
/// aborts after a new key is written, `storage-enospc` fails the rest as a full disk would).
fn failpoint_is(name: &str) -> bool {
    std::env::var("RINGDNS_FAILPOINT").is_ok_and(|v| v == name)
}

/// The default storage folder: `$RINGDNS_CERTPATH`, else `/var/lib/ringdns/certs` for root,
/// else `$XDG_DATA_HOME/ringdns/certs` (or `~/.local/share/ringdns/certs`).
pub fn default_root() -> PathBuf {
    data_home("RINGDNS_CERTPATH", "certs")
}

/// Where `secondary` zones are kept by default: `$RINGDNS_ZONEPATH`, else
/// `/var/lib/ringdns/zones` for root, else `$XDG_DATA_HOME/ringdns/zones` or
/// `~/.local/share/ringdns/zones`.
pub fn default_zone_root() -> PathBuf {
    data_home("RINGDNS_ZONEPATH", "zones")
}

/// `$var`, or `leaf` in ringdns's data folder (the system's for root, the user's otherwise).
fn data_home(var: &str, leaf: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let uid = fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1);
    if uid == 0 {
        return PathBuf::from("/var/lib/ringdns").join(leaf);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("ringdns").join(leaf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringdns-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn save_load_versions_and_modes() {
        let root = tmp("save");
        let store = Store::open(&root).unwrap();
        assert_eq!(mode(&root), 0o700);
        let unit = store.unit_dir("https://127.0.0.1:14000/dir", &["b.test".into(), "*.a.test".into()]);
        assert!(
            unit.ends_with("127.0.0.1_14000_dir/wildcard.a.test+b.test"),
            "{}",
            unit.display()
        );
        assert_eq!(store.load(&unit).unwrap(), None);
        for i in 1..=4u64 {
            let v = store
                .save(&unit, &format!("chain{i}"), &format!("key{i}"), "{}")
                .unwrap();
            assert_eq!(v, i);
            let s = store.load(&unit).unwrap().unwrap();
            assert_eq!(
                (s.chain_pem.as_str(), s.key_pem.as_str(), s.version),
                (format!("chain{i}").as_str(), format!("key{i}").as_str(), i)
            );
        }
        assert_eq!(mode(&unit), 0o700);
        assert_eq!(mode(&unit.join("v4/key.pem")), 0o600);
        // Only the current and the previous version are kept.
        assert!(!unit.join("v2").exists() && unit.join("v3").exists());
        // A key made readable by others is fixed.
        fs::set_permissions(unit.join("v4/key.pem"), fs::Permissions::from_mode(0o644)).unwrap();
        store.load(&unit).unwrap();
        assert_eq!(mode(&unit.join("v4/key.pem")), 0o600);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_half_written_version_is_never_current() {
        let root = tmp("crash");
        let store = Store::open(&root).unwrap();
        let unit = store.unit_dir("https://ca/dir", &["x.test".into()]);
        store.save(&unit, "chain1", "key1", "{}").unwrap();
        // A crash after writing the key of version 2 but before its chain and the switch.
        let v2 = unit.join("v2");
        fs::create_dir_all(&v2).unwrap();
        fs::write(v2.join("key.pem"), "key2").unwrap();
        let s = store.load(&unit).unwrap().unwrap();
        assert_eq!((s.chain_pem.as_str(), s.key_pem.as_str()), ("chain1", "key1"));
        // The next save does not reuse the broken folder's number.
        assert_eq!(store.save(&unit, "chain3", "key3", "{}").unwrap(), 3);
        assert_eq!(store.load(&unit).unwrap().unwrap().key_pem, "key3");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn accounts_per_ca() {
        let root = tmp("acct");
        let store = Store::open(&root).unwrap();
        assert_eq!(store.load_account("https://ca.one/dir").unwrap(), None);
        store.save_account("https://ca.one/dir", "{\"id\":1}").unwrap();
        assert_eq!(
            store.load_account("https://ca.one/dir").unwrap().as_deref(),
            Some("{\"id\":1}")
        );
        assert_eq!(store.load_account("https://ca.two/dir").unwrap(), None);
        assert_eq!(mode(&store.ca_dir("https://ca.one/dir").join("account.json")), 0o600);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn folder_names_are_safe() {
        assert_eq!(folder_name("a/b:c"), "a_b_c");
        assert_eq!(folder_name(".."), "_..");
        assert_eq!(folder_name(""), "_");
    }
}
