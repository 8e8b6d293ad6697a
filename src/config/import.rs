//! The files an `import` names: a path, or a pattern matched as CoreDNS matches it (Go's
//! `filepath.Glob`: `*`, `?` and `[...]` within one path element; `**` is the same as `*`,
//! never a walk through subfolders). The work is bounded: one import reads at most
//! [`MAX_FILES`] files and looks at most at [`MAX_ENTRIES`] folder entries, so a pattern
//! such as `/*/*/*/x.conf` or a folder of symlink loops ends with a clear error. Only
//! regular files of at most [`MAX_FILE_BYTES`] are read (never `/dev/zero` or a FIFO).

use std::path::{Component, Path, PathBuf};

/// Files one import may pull in.
pub const MAX_FILES: usize = 1000;
/// Folder entries one import pattern may look at.
pub const MAX_ENTRIES: usize = 100_000;
/// Octets of one imported file (an import is Corefile text, not data).
pub const MAX_FILE_BYTES: u64 = 4 << 20;

/// The files `pattern` matches, sorted by name. `Ok(empty)` when nothing matches.
pub fn expand(pattern: &Path) -> Result<Vec<PathBuf>, String> {
    let mut current = vec![PathBuf::new()];
    let mut seen = 0usize;
    for part in pattern.components() {
        let text = match part {
            Component::Normal(t) => t.to_string_lossy(),
            other => {
                for p in &mut current {
                    p.push(other.as_os_str());
                }
                continue;
            }
        };
        if !text.contains(['*', '?', '[']) {
            for p in &mut current {
                p.push(part.as_os_str());
            }
            continue;
        }
        let element = collapse_stars(&text);
        let matcher = glob::Pattern::new(&element).map_err(|e| format!("bad pattern element {element:?}: {e}"))?;
        let mut next = Vec::new();
        for dir in &current {
            let folder = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // A folder that cannot be read matches nothing, as in Go.
            let Ok(entries) = std::fs::read_dir(folder) else {
                continue;
            };
            for entry in entries.flatten() {
                seen += 1;
                if seen > MAX_ENTRIES {
                    return Err(format!(
                        "the pattern looks at more than {MAX_ENTRIES} folder entries; name the files more narrowly"
                    ));
                }
                if matcher.matches(&entry.file_name().to_string_lossy()) {
                    next.push(dir.join(entry.file_name()));
                }
            }
        }
        next.sort();
        current = next;
    }
    let mut files: Vec<PathBuf> = current.into_iter().filter(|p| p.is_file()).collect();
    if files.len() > MAX_FILES {
        return Err(format!(
            "the pattern matches {} files, more than the {MAX_FILES} one import may read",
            files.len()
        ));
    }
    files.sort();
    Ok(files)
}

/// The text of an imported file, at most [`MAX_FILE_BYTES`] of it.
pub fn read(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(text)
}

/// `**` (any run of stars) means `*`, as in Go's `filepath.Match`.
fn collapse_stars(element: &str) -> String {
    let mut out = String::with_capacity(element.len());
    for c in element.chars() {
        if !(c == '*' && out.ends_with('*')) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ringdns-import-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn double_star_is_one_element() {
        let d = scratch("star");
        std::fs::create_dir_all(d.join("a/b")).unwrap();
        std::fs::write(d.join("a/x.conf"), "").unwrap();
        std::fs::write(d.join("a/b/x.conf"), "").unwrap();
        std::fs::write(d.join("y.conf"), "").unwrap();
        assert_eq!(expand(&d.join("**/x.conf")).unwrap(), vec![d.join("a/x.conf")]);
        assert_eq!(expand(&d.join("*.conf")).unwrap(), vec![d.join("y.conf")]);
        assert_eq!(expand(&d.join("?/*/x.conf")).unwrap(), vec![d.join("a/b/x.conf")]);
        assert!(expand(&d.join("none/*.conf")).unwrap().is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn symlink_loops_end() {
        let d = scratch("loop");
        std::os::unix::fs::symlink(&d, d.join("self")).unwrap();
        std::os::unix::fs::symlink(d.join("b"), d.join("a")).unwrap();
        std::os::unix::fs::symlink(d.join("a"), d.join("b")).unwrap();
        std::fs::write(d.join("x.conf"), "").unwrap();
        let found = expand(&d.join("**/**/**/x.conf")).unwrap();
        assert_eq!(found, vec![d.join("self/self/self/x.conf")]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn too_many_files_is_an_error() {
        let d = scratch("many");
        for i in 0..=MAX_FILES {
            std::fs::write(d.join(format!("{i}.conf")), "").unwrap();
        }
        let err = expand(&d.join("*.conf")).unwrap_err();
        assert!(err.contains("more than the 1000"), "{err}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
