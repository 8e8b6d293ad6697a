//! An ordering lock shared by instances over a (possibly network) file system.
//!
//! The lock is a file created with `O_EXCL` holding the holder's id. The holder rewrites it
//! every [`HEARTBEAT`]; a lock not rewritten for [`STALE_AFTER`] (twice the heartbeat) is
//! taken over: its holder died. Takeover renames the stale file away (one rename wins) and
//! creates a new one. A holder that finds another id in the file on its next heartbeat has
//! lost the lock and stops.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a holder proves it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(15);
/// When a lock counts as abandoned.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// A held lock. Dropping it releases it.
#[derive(Debug)]
pub struct Lock {
    path: PathBuf,
    holder: String,
}

/// A holder on this host whose process is gone can be taken over at once.
fn holder_is_dead(holder: &str) -> bool {
    let mut parts = holder.split('/');
    let (Some(host), Some(pid)) = (parts.next(), parts.next()) else {
        return false;
    };
    let here = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    host == here.trim()
        && pid
            .parse::<u32>()
            .is_ok_and(|p| !Path::new(&format!("/proc/{p}")).exists())
}

/// Whether the lock at `path` would be taken over now (stale or its holder gone).
pub fn is_abandoned(path: &Path, stale_after: Duration) -> bool {
    let Ok(mtime) = fs::metadata(path).and_then(|m| m.modified()) else {
        return false;
    };
    let Ok(now) = super::fs_now(path.parent().unwrap_or(Path::new("."))) else {
        return false;
    };
    let age = now.duration_since(mtime).unwrap_or(Duration::ZERO);
    age >= stale_after
        || holder_is_dead(
            fs::read_to_string(path)
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or(""),
        )
}

/// This process's holder id: host, pid and a random part.
pub fn holder_id() -> String {
    let host = fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}/{}/{nanos:08x}", host.trim(), std::process::id())
}

impl Lock {
    /// Takes the lock at `path` if it is free or stale (`stale_after` old).
    pub fn try_acquire(path: &Path, holder: &str, stale_after: Duration) -> io::Result<Option<Lock>> {
        match Self::create(path, holder) {
            Ok(l) => return Ok(Some(l)),
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => {}
        }
        let now = super::fs_now(path.parent().unwrap_or(Path::new(".")))?;
        let age = match fs::metadata(path).and_then(|m| m.modified()) {
            Ok(mtime) => now.duration_since(mtime).unwrap_or(Duration::ZERO),
            // Released in between: try once more.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Self::create(path, holder).map(Some).or(Ok(None));
            }
            Err(e) => return Err(e),
        };
        let previous = fs::read_to_string(path).unwrap_or_default();
        if age < stale_after && !holder_is_dead(previous.lines().next().unwrap_or("")) {
            return Ok(None);
        }
        tracing::warn!(lock = %path.display(), holder = previous.lines().next().unwrap_or("?"), age_s = age.as_secs(), "taking over a stale certificate lock");
        let aside = path.with_extension(format!("stale.{}", holder.replace('/', "_")));
        match fs::rename(path, &aside) {
            Ok(()) => {
                let _ = fs::remove_file(&aside);
                Self::create(path, holder).map(Some).or(Ok(None))
            }
            // Someone else took it over first.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn create(path: &Path, holder: &str) -> io::Result<Lock> {
        let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
        writeln!(f, "{holder}")?;
        f.sync_all()?;
        Ok(Lock {
            path: path.to_path_buf(),
            holder: holder.to_string(),
        })
    }

    /// Proves liveness; fails if another instance has taken the lock over.
    pub fn heartbeat(&self) -> io::Result<()> {
        let content = fs::read_to_string(&self.path)?;
        if content.lines().next() != Some(self.holder.as_str()) {
            return Err(io::Error::other("the lock was taken over by another instance"));
        }
        let mut f = OpenOptions::new().write(true).truncate(true).open(&self.path)?;
        writeln!(f, "{}", self.holder)?;
        f.sync_all()
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if fs::read_to_string(&self.path).is_ok_and(|c| c.lines().next() == Some(self.holder.as_str())) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_then_released() {
        let dir = std::env::temp_dir().join(format!("ringdns-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let p = dir.join("lock");
        let a = Lock::try_acquire(&p, "a", STALE_AFTER).unwrap().expect("free");
        assert!(Lock::try_acquire(&p, "b", STALE_AFTER).unwrap().is_none(), "held");
        a.heartbeat().unwrap();
        drop(a);
        let b = Lock::try_acquire(&p, "b", STALE_AFTER).unwrap().expect("released");
        // A stale lock (no heartbeat for longer than the limit) is taken over...
        std::thread::sleep(Duration::from_millis(30));
        let c = Lock::try_acquire(&p, "c", Duration::from_millis(10))
            .unwrap()
            .expect("stale");
        // ...and its old holder learns it on the next heartbeat, and does not remove it.
        assert!(!is_abandoned(&p, STALE_AFTER));
        assert!(b.heartbeat().is_err());
        drop(b);
        assert!(p.exists());
        c.heartbeat().unwrap();
        drop(c);
        assert!(!p.exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
