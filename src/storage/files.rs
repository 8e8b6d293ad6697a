//! File operations that survive crashes: write to a temporary file, fsync, rename over the
//! target, fsync the folder.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Creates `dir` (and parents) with mode 0700, or tightens an existing one to 0700.
pub fn ensure_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let meta = fs::metadata(dir)?;
    if meta.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Replaces `path` with `data` atomically: a reader sees the old content or the new, never a
/// mix, even across a crash.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_atomic_with(path, mode, |w| w.write_all(data))
}

/// Replaces `path` atomically with what `write` writes (buffered), as [`write_atomic`] does:
/// for content too large to hold in memory first.
pub fn write_atomic_with(
    path: &Path,
    mode: u32,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        let mut w = io::BufWriter::with_capacity(256 * 1024, f);
        write(&mut w)?;
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// fsync of a folder, so a rename in it is durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// The current time as the file system of `dir` sees it (the mtime of a file written now).
/// Ages of lock and member files are measured against it, not against this machine's
/// clock: a skewed local clock, or an NFS server with another clock, cannot make a live
/// holder look dead or a dead one look alive.
pub fn fs_now(dir: &Path) -> io::Result<std::time::SystemTime> {
    let probe = dir.join(format!(".clock.{}", std::process::id()));
    fs::write(&probe, b"")?;
    let t = fs::metadata(&probe)?.modified();
    let _ = fs::remove_file(&probe);
    t
}

/// Key files must not be readable by others: fix a group/other-readable mode to 0600.
pub fn fix_private_mode(path: &Path) -> io::Result<()> {
    let meta = fs::metadata(path)?;
    if meta.permissions().mode() & 0o077 != 0 {
        tracing::warn!(file = %path.display(), mode = format!("{:o}", meta.permissions().mode() & 0o777), "private key file was readable by others; setting mode 0600");
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}
