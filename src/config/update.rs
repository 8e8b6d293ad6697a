//! `update`, a ringdns directive (CoreDNS has none): dynamic updates (RFC 2136) of the
//! block's `file` zones, signed with TSIG keys of a `tsig` directive, as ACME clients'
//! `rfc2136` providers (lego, certbot, acme.sh, cert-manager) and `nsupdate` send them.
//!
//! ```text
//! update [ZONES...] {
//!     key NAME [NAMES...]
//!     allow_types TYPE...
//!     directory DIR
//! }
//! ```
//!
//! Each `key` (repeatable) lets the TSIG key NAME change the NAMES given: a name is itself
//! only, `*.NAME` every name below NAME. Without NAMES a key may change only
//! `_acme-challenge` names (`_acme-challenge.<any name of the zone>`), what an ACME client
//! needs and nothing more. `allow_types` (default TXT) are the types any key may change.
//! Applied updates are kept in `DIR/<zone>.updates` (default: the folder of `secondary`),
//! replayed over the zone file at every load. A key must be defined by a `tsig` somewhere
//! in the Corefile (checked once the whole Corefile is read).

use std::path::PathBuf;
use std::str::FromStr;

use bytes::Bytes;
use domain::base::Name;
use domain::base::iana::Rtype;

use super::args::{check_inside_block, err, one_arg, zone_list};
use super::error::{ConfigError, Pos};
use super::model::ServerBlock;
use super::syntax::Line;
use crate::zone::name::parse_abs;

/// One `update` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpdateConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zones it takes updates for (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// What each key may change.
    pub grants: Vec<Grant>,
    /// The types any key may change.
    pub types: Vec<Rtype>,
    /// Where applied updates are kept.
    pub directory: PathBuf,
}

/// The names one key may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The TSIG key's name.
    pub key: Name<Bytes>,
    /// Where the key option is (for the check that a `tsig` defines it).
    pub pos: Pos,
    /// The names; empty: `_acme-challenge` names only.
    pub names: Vec<GrantName>,
}

/// A name a key may change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantName {
    /// This name.
    Exact(Name<Bytes>),
    /// Every name below this one (`*.NAME`), not itself.
    Below(Name<Bytes>),
}

/// Reads an `update` line.
pub(super) fn update(block: &ServerBlock, line: &Line) -> Result<UpdateConfig, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let (mut grants, mut types) = (Vec::new(), None);
    let mut directory = crate::storage::default_zone_root();
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "key" => {
                let Some((key, names)) = o.args.split_first() else {
                    return Err(err(&o.name, "update: key NAME [NAMES...]"));
                };
                let key_name = parse_abs(&key.text).map_err(|e| err(key, e))?;
                if grants.iter().any(|g: &Grant| g.key == key_name) {
                    return Err(err(key, format!("update: key {} is named twice", key.text)));
                }
                let names = names
                    .iter()
                    .map(|t| match t.text.strip_prefix("*.") {
                        Some(rest) => parse_abs(rest).map(GrantName::Below).map_err(|e| err(t, e)),
                        None => parse_abs(&t.text).map(GrantName::Exact).map_err(|e| err(t, e)),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                grants.push(Grant {
                    key: key_name,
                    pos: o.pos().clone(),
                    names,
                });
            }
            "allow_types" => {
                if o.args.is_empty() {
                    return Err(err(&o.name, "update: allow_types TYPE..."));
                }
                let mut list = Vec::new();
                for t in &o.args {
                    let rtype = Rtype::from_str(&t.text.to_ascii_uppercase())
                        .map_err(|_| err(t, format!("update: unknown record type {:?}", t.text)))?;
                    if matches!(
                        rtype,
                        Rtype::SOA | Rtype::ANY | Rtype::AXFR | Rtype::IXFR | Rtype::OPT | Rtype::TSIG
                    ) {
                        return Err(err(
                            t,
                            format!(
                                "update: {} cannot be changed by an update here (the serial is ringdns's to keep)",
                                t.text
                            ),
                        ));
                    }
                    list.push(rtype);
                }
                types = Some(list);
            }
            "directory" => directory = PathBuf::from(&one_arg(o, "a folder")?.text),
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown update option {other:?} (accepted: key, allow_types, directory)"),
                ));
            }
        }
    }
    if grants.is_empty() {
        return Err(err(&line.name, "update needs a key: update { key NAME [NAMES...] }"));
    }
    Ok(UpdateConfig {
        pos: line.pos().clone(),
        zones,
        grants,
        types: types.unwrap_or_else(|| vec![Rtype::TXT]),
        directory,
    })
}
