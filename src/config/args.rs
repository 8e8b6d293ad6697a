//! Helpers that read the arguments of a directive line, shared by every directive's parser.

use bytes::Bytes;
use domain::base::Name;

use super::error::ConfigError;
use super::lexer::Token;
use super::model::ServerBlock;
use super::syntax::Line;
use crate::zone::name::parse_abs;

pub(super) fn err(tok: &Token, msg: impl Into<String>) -> ConfigError {
    ConfigError::at(&tok.pos, msg)
}

pub(super) fn no_args(line: &Line) -> Result<(), ConfigError> {
    match line.args.first() {
        Some(a) => Err(err(a, format!("{} takes no arguments", line.name.text))),
        None => Ok(()),
    }
}

pub(super) fn no_block(line: &Line) -> Result<(), ConfigError> {
    if line.block.is_some() {
        return Err(err(&line.name, format!("{} takes no {{ }} block", line.name.text)));
    }
    Ok(())
}

pub(super) fn one_arg<'a>(line: &'a Line, what: &str) -> Result<&'a Token, ConfigError> {
    match line.args.as_slice() {
        [a] => Ok(a),
        [] => Err(err(&line.name, format!("{} needs {what}", line.name.text))),
        [_, extra, ..] => Err(err(extra, format!("{} takes only {what}", line.name.text))),
    }
}

pub(super) fn zone_list(tokens: &[Token]) -> Result<Vec<Name<Bytes>>, ConfigError> {
    tokens
        .iter()
        .map(|t| {
            if t.text == "." {
                Ok(Name::root_bytes())
            } else {
                parse_abs(&t.text).map_err(|e| err(t, e))
            }
        })
        .collect()
}

/// Zones named by a plugin must lie inside one of the block's zones, or contain one (as
/// CoreDNS reads it: `dn42 { forward . ... }` forwards every query that reaches the block;
/// `sub.example.org { file db.example.org example.org }` serves what reaches the block from
/// the file's zone). A zone unrelated to every block zone could never be asked: an error.
pub(super) fn check_inside_block(
    block: &ServerBlock,
    tokens: &[Token],
    zones: &[Name<Bytes>],
) -> Result<(), ConfigError> {
    for (t, z) in tokens.iter().zip(zones) {
        let ok = block.keys.iter().any(|k| z.ends_with(&k.zone) || k.zone.ends_with(z));
        if !ok {
            return Err(err(
                t,
                format!(
                    "zone {:?} is neither inside nor above any zone of server block {:?}",
                    t.text,
                    block.label()
                ),
            ));
        }
    }
    Ok(())
}
