//! CoreDNS's `sign` (its README is the reference): zone files signed into files that
//! `file` serves.
//!
//! ```text
//! sign DBFILE [ZONES...] {
//!     key file|directory KEY...|DIR...
//!     directory DIR
//! }
//! ```
//!
//! `key directory DIR` (which CoreDNS lists as not implemented) takes every
//! `K<zone>.+<alg>+<tag>` pair in DIR for each zone. DBFILE, keys and DIR are relative to
//! `root`. The signed zone goes to `DIR/db.<zone>.signed` (DIR defaults to CoreDNS's
//! `/var/lib/coredns`). Keys are read with the Corefile, so a bad one names its line.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use domain::base::Name;

use super::args::{check_inside_block, err, zone_list};
use super::dnssec::LoadedKey;
use super::error::{ConfigError, Pos};
use super::model::ServerBlock;
use super::syntax::Line;
use crate::dnssec::keys::SigningKey;

/// CoreDNS's default output directory.
pub const DEFAULT_DIRECTORY: &str = "/var/lib/coredns";

/// One `sign` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zone file to sign.
    pub dbfile: PathBuf,
    /// The zones of it to sign (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// `key file` names, with where.
    pub key_files: Vec<(PathBuf, Pos)>,
    /// `key directory` folders, with where.
    pub key_dirs: Vec<(PathBuf, Pos)>,
    /// `directory`: where the signed zones go.
    pub directory: PathBuf,
    /// The keys of each zone, read once the block's `root` is known.
    pub keys: Vec<(Name<Bytes>, Vec<LoadedKey>)>,
}

impl SignConfig {
    /// Where the signed copy of `zone` goes: `DIR/db.<zone>.signed`.
    pub fn signed_path(&self, zone: &Name<Bytes>) -> PathBuf {
        self.directory.join(format!("db.{zone}.signed"))
    }
}

/// Reads a `sign` line.
pub(super) fn sign(block: &ServerBlock, line: &Line) -> Result<SignConfig, ConfigError> {
    let Some((dbfile, zones)) = line.args.split_first() else {
        return Err(err(&line.name, "sign DBFILE [ZONES...] { key file KEY... }"));
    };
    let zones = if zones.is_empty() {
        block.zones()
    } else {
        let z = zone_list(zones)?;
        check_inside_block(block, zones, &z)?;
        z
    };
    let mut s = SignConfig {
        pos: line.pos().clone(),
        dbfile: PathBuf::from(&dbfile.text),
        zones,
        key_files: Vec::new(),
        key_dirs: Vec::new(),
        directory: PathBuf::from(DEFAULT_DIRECTORY),
        keys: Vec::new(),
    };
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "key" => match o.args.split_first() {
                Some((kind, names)) if !names.is_empty() && (kind.text == "file" || kind.text == "directory") => {
                    let into = if kind.text == "file" {
                        &mut s.key_files
                    } else {
                        &mut s.key_dirs
                    };
                    into.extend(names.iter().map(|n| (PathBuf::from(&n.text), n.pos.clone())));
                }
                _ => return Err(err(&o.name, "sign: key file KEY... or key directory DIR...")),
            },
            "directory" => {
                let [dir] = o.args.as_slice() else {
                    return Err(err(&o.name, "sign: directory DIR"));
                };
                s.directory = PathBuf::from(&dir.text);
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown sign option {other:?} (accepted: key, directory)"),
                ));
            }
        }
    }
    if s.key_files.is_empty() && s.key_dirs.is_empty() {
        return Err(err(&line.name, "sign needs a key: sign DBFILE { key file KEY }"));
    }
    Ok(s)
}

/// Reads the keys of `s` for each of its zones (paths already made absolute by `root`).
pub(super) fn read_keys(s: &mut SignConfig) -> Result<(), ConfigError> {
    let read = |path: &std::path::Path, pos: &Pos| {
        SigningKey::read(path)
            .map(|k| LoadedKey(Arc::new(k)))
            .map_err(|e| ConfigError::At {
                pos: pos.clone(),
                msg: format!("sign key: {e}"),
            })
    };
    let files = s
        .key_files
        .iter()
        .map(|(p, pos)| read(p, pos))
        .collect::<Result<Vec<_>, _>>()?;
    s.keys.clear();
    for zone in &s.zones {
        let mut keys = files.clone();
        // BIND's names: K<zone>.+<alg>+<tag>.key (the root zone is "K.+...").
        let prefix = format!("K{}.+", zone.to_string().trim_end_matches('.'));
        for (dir, pos) in &s.key_dirs {
            let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::At {
                pos: pos.clone(),
                msg: format!("sign key directory {}: {e}", dir.display()),
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                        n.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()) && n.ends_with(".key")
                    })
                })
                .collect();
            found.sort();
            for p in found {
                keys.push(read(&p, pos)?);
            }
        }
        if keys.is_empty() {
            return Err(ConfigError::At {
                pos: s.pos.clone(),
                msg: format!("sign: no key for {zone}. in the key directories"),
            });
        }
        s.keys.push((zone.clone(), keys));
    }
    Ok(())
}
