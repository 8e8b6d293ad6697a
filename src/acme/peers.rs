//! Challenges shared by instances that keep one certificate in one storage folder.
//!
//! Every instance registers itself under `<unit>/members/<holder>` and refreshes that file
//! while it runs. The instance that orders writes the values to `<unit>/challenge.json`;
//! every instance (itself included) serves them and writes `<unit>/acks/<holder>` with the
//! challenge generation it serves. The orderer tells the CA to validate only once every
//! live member has acknowledged: whichever instance the CA asks, it gets the values.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::storage::write_atomic;

/// How often a member refreshes its registration.
pub const MEMBER_HEARTBEAT: Duration = Duration::from_secs(10);
/// A member not seen for this long is gone.
pub const MEMBER_GONE: Duration = Duration::from_secs(30);

/// The challenge of a running order, as written to storage.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Posted {
    /// Unique per order attempt.
    pub generation: u64,
    /// (challenge name in presentation form, TXT value).
    pub values: Vec<(String, String)>,
}

impl Posted {
    fn to_json(&self) -> String {
        let values: Vec<serde_json::Value> = self.values.iter().map(|(n, v)| serde_json::json!([n, v])).collect();
        serde_json::json!({ "generation": self.generation, "values": values }).to_string()
    }

    fn from_json(text: &str) -> Option<Posted> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let generation = v.get("generation")?.as_u64()?;
        let values = v
            .get("values")?
            .as_array()?
            .iter()
            .filter_map(|p| Some((p.get(0)?.as_str()?.to_string(), p.get(1)?.as_str()?.to_string())))
            .collect();
        Some(Posted { generation, values })
    }
}

/// One instance's view of a unit folder.
#[derive(Clone, Debug)]
pub struct Peers {
    dir: PathBuf,
    holder: String,
}

fn file_name(holder: &str) -> String {
    crate::storage::folder_name(holder)
}

impl Peers {
    /// The shared files of `dir` for this instance (`holder`).
    pub fn new(dir: &Path, holder: &str) -> Peers {
        Peers {
            dir: dir.to_path_buf(),
            holder: holder.to_string(),
        }
    }

    /// Registers or refreshes this instance as a member.
    pub fn register(&self) -> io::Result<()> {
        let members = self.dir.join("members");
        crate::storage::ensure_private_dir(&members)?;
        fs::write(members.join(file_name(&self.holder)), self.holder.as_bytes())
    }

    /// Removes this instance's registration and acknowledgement.
    pub fn leave(&self) {
        let _ = fs::remove_file(self.dir.join("members").join(file_name(&self.holder)));
        let _ = fs::remove_file(self.dir.join("acks").join(file_name(&self.holder)));
    }

    /// Members seen within [`MEMBER_GONE`].
    pub fn live_members(&self) -> Vec<String> {
        let members = self.dir.join("members");
        let Ok(rd) = fs::read_dir(&members) else {
            return Vec::new();
        };
        let Ok(now) = crate::storage::fs_now(&members) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok())
            .filter(|e| {
                e.metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or(Duration::ZERO) < MEMBER_GONE)
            })
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect()
    }

    /// Writes the challenge of a running order.
    pub fn post(&self, posted: &Posted) -> io::Result<()> {
        write_atomic(&self.dir.join("challenge.json"), posted.to_json().as_bytes(), 0o644)
    }

    /// Removes the challenge when the order is over.
    pub fn withdraw(&self, generation: u64) {
        if self.read().is_some_and(|p| p.generation == generation) {
            let _ = fs::remove_file(self.dir.join("challenge.json"));
        }
    }

    /// The posted challenge, if any (with its file's modification time for cheap polling).
    pub fn read(&self) -> Option<Posted> {
        fs::read_to_string(self.dir.join("challenge.json"))
            .ok()
            .and_then(|t| Posted::from_json(&t))
    }

    /// The modification time of the challenge file (`None` when there is none).
    pub fn stamp(&self) -> Option<SystemTime> {
        fs::metadata(self.dir.join("challenge.json"))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Records that this instance serves `generation`.
    pub fn ack(&self, generation: u64) -> io::Result<()> {
        let acks = self.dir.join("acks");
        crate::storage::ensure_private_dir(&acks)?;
        write_atomic(
            &acks.join(file_name(&self.holder)),
            generation.to_string().as_bytes(),
            0o644,
        )
    }

    /// The live members that have not acknowledged `generation` yet.
    pub fn missing_acks(&self, generation: u64) -> Vec<String> {
        let acks: HashMap<String, u64> = fs::read_dir(self.dir.join("acks"))
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let name = e.file_name().to_str()?.to_string();
                        let g = fs::read_to_string(e.path()).ok()?.trim().parse().ok()?;
                        Some((name, g))
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.live_members()
            .into_iter()
            .filter(|m| acks.get(m).is_none_or(|g| *g != generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_ack_and_membership() {
        let dir = std::env::temp_dir().join(format!("ringdns-shared-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let a = Peers::new(&dir, "host/1/a");
        let b = Peers::new(&dir, "host/2/b");
        a.register().unwrap();
        b.register().unwrap();
        let posted = Posted {
            generation: 7,
            values: vec![("_acme-challenge.example.test.".into(), "abc".into())],
        };
        a.post(&posted).unwrap();
        assert_eq!(b.read(), Some(posted.clone()));
        assert_eq!(a.missing_acks(7).len(), 2);
        a.ack(7).unwrap();
        assert_eq!(a.missing_acks(7), vec![file_name("host/2/b")]);
        b.ack(7).unwrap();
        assert!(a.missing_acks(7).is_empty());
        b.leave();
        assert_eq!(a.live_members(), vec![file_name("host/1/a")]);
        a.withdraw(7);
        assert!(a.read().is_none());
        fs::remove_dir_all(&dir).unwrap();
    }
}
