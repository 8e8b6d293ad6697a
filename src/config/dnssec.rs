//! CoreDNS's `dnssec` (its README is the reference): online signing of the block's answers.
//!
//! ```text
//! dnssec [ZONES...] {
//!     key file KEY...
//!     cache_capacity CAPACITY
//! }
//! ```
//!
//! A KEY is a base name `K<zone>+<alg>+<tag>` or either of its files (`.key`, `.private`),
//! relative to `root` when the block has one. `key aws_secretsmanager` is refused (it needs
//! AWS). Keys are read when the Corefile is, so a missing or unusable one names its line.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use domain::base::Name;

use super::args::{check_inside_block, err, zone_list};
use super::error::{ConfigError, Pos};
use super::model::ServerBlock;
use super::syntax::Line;
use crate::dnssec::keys::SigningKey;

/// CoreDNS's default `cache_capacity`.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// One `dnssec` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnssecConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zones it signs (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// Its keys as written, with where.
    pub key_files: Vec<(PathBuf, Pos)>,
    /// The keys, read once the block's `root` is known.
    pub keys: Vec<LoadedKey>,
    /// `cache_capacity`: signatures kept per shard.
    pub cache_capacity: usize,
}

/// A key read from its files.
#[derive(Clone, Debug)]
pub struct LoadedKey(pub Arc<SigningKey>);

impl PartialEq for LoadedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.path == other.0.path && self.0.dnskey == other.0.dnskey
    }
}

impl Eq for LoadedKey {}

/// Reads a `dnssec` line.
pub(super) fn dnssec(block: &ServerBlock, line: &Line) -> Result<DnssecConfig, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let mut d = DnssecConfig {
        pos: line.pos().clone(),
        zones,
        key_files: Vec::new(),
        keys: Vec::new(),
        cache_capacity: DEFAULT_CAPACITY,
    };
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "key" => match o.args.split_first() {
                Some((kind, files)) if kind.text == "file" && !files.is_empty() => {
                    d.key_files
                        .extend(files.iter().map(|f| (PathBuf::from(&f.text), f.pos.clone())));
                }
                Some((kind, _)) if kind.text == "aws_secretsmanager" => {
                    return Err(err(
                        kind,
                        "dnssec: key aws_secretsmanager is not available in ringdns; use key file",
                    ));
                }
                _ => return Err(err(&o.name, "dnssec: key file KEY...")),
            },
            "cache_capacity" => {
                let [n] = o.args.as_slice() else {
                    return Err(err(&o.name, "dnssec: cache_capacity CAPACITY"));
                };
                d.cache_capacity = match n.text.parse::<usize>() {
                    Ok(c) if c > 0 => c,
                    _ => return Err(err(n, "dnssec: cache_capacity must be a positive number")),
                };
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown dnssec option {other:?} (accepted: key, cache_capacity)"),
                ));
            }
        }
    }
    if d.key_files.is_empty() {
        return Err(err(&line.name, "dnssec needs a key: dnssec { key file KEY }"));
    }
    Ok(d)
}

/// Reads the keys of `d` (their paths already made absolute by `root`).
pub(super) fn read_keys(d: &mut DnssecConfig) -> Result<(), ConfigError> {
    for (path, pos) in &d.key_files {
        let key = SigningKey::read(path).map_err(|e| ConfigError::At {
            pos: pos.clone(),
            msg: format!("dnssec key: {e}"),
        })?;
        d.keys.push(LoadedKey(Arc::new(key)));
    }
    Ok(())
}
