//! `cookies { secret HEX; previous HEX; secret_file FILE }`, a ringdns directive (CoreDNS
//! has none): the server secret of DNS Cookies (RFC 7873, RFC 9018), 16 octets in hex, the
//! same on every node of a fleet so that each takes the cookies the others made; `previous`
//! is still accepted while a new secret rolls out. `secret_file` reads the secret from a
//! file (its first word), relative to the working directory, so it need not sit in the
//! Corefile. Without `cookies` the process makes a random secret at start. The secret is the
//! server's, not a block's: every block that says `cookies` must say the same.

use std::path::PathBuf;

use super::args::err;
use super::error::{ConfigError, Pos};
use super::syntax::Line;

/// One `cookies` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CookiesConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The secret cookies are made and checked with.
    pub current: [u8; 16],
    /// The one before it, still taken.
    pub previous: Option<[u8; 16]>,
}

/// Reads a `cookies` line.
pub(super) fn cookies(line: &Line) -> Result<CookiesConfig, ConfigError> {
    if let Some(a) = line.args.first() {
        return Err(err(a, "cookies takes no arguments: cookies { secret HEX }"));
    }
    let (mut current, mut previous) = (None, None);
    for o in line.block.iter().flatten() {
        let [value] = o.args.as_slice() else {
            return Err(err(&o.name, format!("cookies: {} takes one value", o.name.text)));
        };
        let hex = match o.name.text.as_str() {
            "secret" | "previous" => value.text.clone(),
            "secret_file" => {
                let path = PathBuf::from(&value.text);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| err(value, format!("cookies secret_file {}: {e}", path.display())))?;
                text.split_whitespace().next().unwrap_or_default().to_string()
            }
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown cookies option {other:?} (accepted: secret, secret_file, previous)"),
                ));
            }
        };
        let secret = parse_secret(&hex).ok_or_else(|| {
            err(
                value,
                "cookies: a secret is 16 octets in hex (32 hex digits), as RFC 9018 §4.4 asks",
            )
        })?;
        if o.name.text == "previous" {
            previous = Some(secret);
        } else {
            current = Some(secret);
        }
    }
    let Some(current) = current else {
        return Err(err(
            &line.name,
            "cookies needs a secret: cookies { secret HEX } or { secret_file FILE }",
        ));
    };
    Ok(CookiesConfig {
        pos: line.pos().clone(),
        current,
        previous,
    })
}

fn parse_secret(hex: &str) -> Option<[u8; 16]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in bytes.chunks(2).enumerate() {
        out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(out)
}
