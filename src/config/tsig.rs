//! CoreDNS's `tsig` (its README is the reference):
//!
//! ```text
//! tsig [ZONES...] {
//!     secret NAME KEY
//!     secrets FILE
//!     require [QTYPE...|all|none]
//!     require_opcode [OPCODE...|all|none]
//! }
//! ```
//!
//! A `secret` names no algorithm (CoreDNS takes any for it): ringdns accepts HMAC-SHA1,
//! SHA256, SHA384 and SHA512 with it. `secrets FILE` reads BIND's `key "NAME" { algorithm
//! A; secret "B64"; };` (what `tsig-keygen` writes) and Knot's `key: - id: NAME algorithm:
//! A secret: B64` (what `keymgr -t` writes); a key there is accepted with its algorithm
//! only. HMAC-MD5 is refused (RFC 8945 §6: deprecated), and so is a secret that is not
//! base64 or is empty.

use std::path::{Path, PathBuf};

use base64::Engine;
use bytes::Bytes;
use domain::base::Name;
use domain::base::iana::{Opcode, Rtype};
use domain::tsig::Algorithm;

use super::args::{check_inside_block, err, zone_list};
use super::error::{ConfigError, Pos};
use super::model::ServerBlock;
use super::syntax::Line;
use crate::zone::name::parse_abs;

/// One `tsig` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zones it signs and checks (the block's when none is given).
    pub zones: Vec<Name<Bytes>>,
    /// Its keys, in the order written (`secrets` files read where they stand); the first
    /// signs what the block sends (transfer requests, NOTIFY).
    pub keys: Vec<TsigKey>,
    /// `secrets FILE`s, read once the block's `root` is known.
    pub files: Vec<(PathBuf, Pos)>,
    /// Query types that must come signed.
    pub require: Required<Rtype>,
    /// Opcodes that must come signed.
    pub require_opcode: Required<Opcode>,
}

/// A shared secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsigKey {
    /// The key's name.
    pub name: Name<Bytes>,
    /// Its algorithm; `None` (a `secret` line) accepts every one ringdns has.
    pub algorithm: Option<Algorithm>,
    /// The secret's octets.
    pub secret: Vec<u8>,
}

/// What `require` or `require_opcode` asks to be signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Required<T> {
    /// `all`.
    All,
    /// The listed ones (empty: `none`, the default).
    These(Vec<T>),
}

impl<T: PartialEq> Required<T> {
    /// Whether `x` must be signed.
    pub fn includes(&self, x: T) -> bool {
        match self {
            Required::All => true,
            Required::These(v) => v.contains(&x),
        }
    }
}

/// Reads a `tsig` line.
pub(super) fn tsig(block: &ServerBlock, line: &Line) -> Result<TsigConfig, ConfigError> {
    let zones = if line.args.is_empty() {
        block.zones()
    } else {
        let z = zone_list(&line.args)?;
        check_inside_block(block, &line.args, &z)?;
        z
    };
    let mut t = TsigConfig {
        pos: line.pos().clone(),
        zones,
        keys: Vec::new(),
        files: Vec::new(),
        require: Required::These(Vec::new()),
        require_opcode: Required::These(Vec::new()),
    };
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "secret" => {
                let [name, key] = o.args.as_slice() else {
                    return Err(err(&o.name, "tsig: secret NAME KEY (KEY in base64)"));
                };
                let name = parse_abs(&name.text).map_err(|e| err(name, format!("tsig secret: {e}")))?;
                let secret = secret(&key.text).map_err(|e| err(key, format!("tsig secret: {e}")))?;
                t.keys.push(TsigKey {
                    name,
                    algorithm: None,
                    secret,
                });
            }
            "secrets" => {
                let [file] = o.args.as_slice() else {
                    return Err(err(&o.name, "tsig: secrets FILE"));
                };
                t.files.push((PathBuf::from(&file.text), file.pos.clone()));
            }
            "require" => t.require = required(o, "query type", |s| s.parse::<Rtype>().ok())?,
            "require_opcode" => t.require_opcode = required(o, "opcode", opcode)?,
            other => {
                return Err(err(
                    &o.name,
                    format!("unknown tsig option {other:?} (accepted: secret, secrets, require, require_opcode)"),
                ));
            }
        }
    }
    if t.keys.is_empty() && t.files.is_empty() {
        return Err(err(
            &line.name,
            "tsig needs a key: tsig { secret NAME KEY } or { secrets FILE }",
        ));
    }
    Ok(t)
}

/// Reads the `secrets` files of `t` (their paths already made absolute by `root`).
pub(super) fn read_files(t: &mut TsigConfig) -> Result<(), ConfigError> {
    for (path, pos) in std::mem::take(&mut t.files) {
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfigError::at(&pos, format!("tsig secrets {}: {e}", path.display())))?;
        let keys = key_file(&text).map_err(|(line, e)| {
            let at = Pos {
                file: Path::new(&path).into(),
                line,
                col: 1,
            };
            ConfigError::at(&at, format!("tsig secrets: {e}"))
        })?;
        if keys.is_empty() {
            return Err(ConfigError::at(
                &pos,
                format!("tsig secrets {}: no key in the file", path.display()),
            ));
        }
        t.keys.extend(keys);
    }
    Ok(())
}

fn required<T>(o: &Line, what: &str, parse: impl Fn(&str) -> Option<T>) -> Result<Required<T>, ConfigError> {
    match o.args.as_slice() {
        [a] if a.text.eq_ignore_ascii_case("all") => Ok(Required::All),
        [a] if a.text.eq_ignore_ascii_case("none") => Ok(Required::These(Vec::new())),
        args => args
            .iter()
            .map(|a| {
                parse(&a.text.to_ascii_uppercase())
                    .ok_or_else(|| err(a, format!("tsig {}: {:?} is not a {what}", o.name.text, a.text)))
            })
            .collect::<Result<_, _>>()
            .map(Required::These),
    }
}

/// The opcodes `require_opcode` names (CoreDNS: miekg/dns's names).
fn opcode(s: &str) -> Option<Opcode> {
    Some(match s {
        "QUERY" => Opcode::QUERY,
        "IQUERY" => Opcode::IQUERY,
        "STATUS" => Opcode::STATUS,
        "NOTIFY" => Opcode::NOTIFY,
        "UPDATE" => Opcode::UPDATE,
        _ => return None,
    })
}

pub(super) fn secret(b64: &str) -> Result<Vec<u8>, String> {
    let s = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the key is not base64 ({e})"))?;
    if s.is_empty() {
        return Err("the key is empty".into());
    }
    Ok(s)
}

pub(super) fn algorithm(name: &str) -> Result<Algorithm, String> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.starts_with("hmac-md5") {
        return Err("hmac-md5 is refused (RFC 8945 §6); use hmac-sha256".into());
    }
    name.parse::<Algorithm>()
        .map_err(|_| format!("unknown algorithm {name:?} (accepted: hmac-sha1, hmac-sha256, hmac-sha384, hmac-sha512)"))
}

/// The keys of a BIND or Knot key file; an error says on which line.
fn key_file(text: &str) -> Result<Vec<TsigKey>, (usize, String)> {
    let knot = text.lines().any(|l| l.trim_start().starts_with("key:"));
    if knot { knot_keys(text) } else { bind_keys(text) }
}

/// Knot's `key:` section: `- id: NAME`, `algorithm: A`, `secret: B64`.
fn knot_keys(text: &str) -> Result<Vec<TsigKey>, (usize, String)> {
    struct Partial {
        line: usize,
        name: String,
        algorithm: Option<String>,
        secret: Option<String>,
    }
    let mut parts: Vec<Partial> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let line = line.strip_prefix('-').map_or(line, str::trim);
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "id" => parts.push(Partial {
                line: i + 1,
                name: v,
                algorithm: None,
                secret: None,
            }),
            "algorithm" => match parts.last_mut() {
                Some(p) => p.algorithm = Some(v),
                None => return Err((i + 1, "algorithm before any id".into())),
            },
            "secret" => match parts.last_mut() {
                Some(p) => p.secret = Some(v),
                None => return Err((i + 1, "secret before any id".into())),
            },
            _ => {}
        }
    }
    parts
        .into_iter()
        .map(|p| {
            let at = |e: String| (p.line, format!("key {:?}: {e}", p.name));
            let alg = algorithm(p.algorithm.as_deref().ok_or_else(|| at("no algorithm".into()))?).map_err(at)?;
            let secret = secret(p.secret.as_deref().ok_or_else(|| at("no secret".into()))?).map_err(at)?;
            Ok(TsigKey {
                name: parse_abs(&p.name).map_err(at)?,
                algorithm: Some(alg),
                secret,
            })
        })
        .collect()
}

/// BIND's `key "NAME" { algorithm A; secret "B64"; };`, with `#`, `//` and `/* */`
/// comments.
fn bind_keys(text: &str) -> Result<Vec<TsigKey>, (usize, String)> {
    let tokens = bind_tokens(text);
    let mut keys = Vec::new();
    let mut i = 0;
    let expect = |i: usize, want: &str| -> Result<(), (usize, String)> {
        match tokens.get(i) {
            Some((_, t)) if t == want => Ok(()),
            Some((l, t)) => Err((*l, format!("expected {want:?}, found {t:?}"))),
            None => Err((
                tokens.last().map_or(1, |t| t.0),
                format!("expected {want:?} at the end"),
            )),
        }
    };
    while i < tokens.len() {
        let (line, word) = &tokens[i];
        if word != "key" {
            return Err((*line, format!("expected a key statement, found {word:?}")));
        }
        let Some((_, name)) = tokens.get(i + 1) else {
            return Err((*line, "key without a name".into()));
        };
        let at = |e: String| (*line, format!("key {name:?}: {e}"));
        expect(i + 2, "{")?;
        i += 3;
        let (mut alg, mut sec) = (None, None);
        while i < tokens.len() && tokens[i].1 != "}" {
            let (l, field) = &tokens[i];
            let value = tokens.get(i + 1).map(|t| t.1.clone()).unwrap_or_default();
            match field.as_str() {
                "algorithm" => alg = Some(value),
                "secret" => sec = Some(value),
                other => return Err((*l, format!("unknown key field {other:?} (accepted: algorithm, secret)"))),
            }
            expect(i + 2, ";")?;
            i += 3;
        }
        expect(i, "}")?;
        i += 1;
        if tokens.get(i).is_some_and(|t| t.1 == ";") {
            i += 1;
        }
        // BIND's default algorithm is HMAC-SHA256 (tsig-keygen's too).
        let algorithm = algorithm(alg.as_deref().unwrap_or("hmac-sha256")).map_err(at)?;
        let secret = secret(&sec.ok_or_else(|| at("no secret".into()))?).map_err(at)?;
        keys.push(TsigKey {
            name: parse_abs(name).map_err(at)?,
            algorithm: Some(algorithm),
            secret,
        });
    }
    Ok(keys)
}

/// Words, quoted strings (unquoted), `{`, `}` and `;` of a BIND file, each with its line.
fn bind_tokens(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            c if c.is_whitespace() => {}
            '#' => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'/') => while chars.next_if(|&c| c != '\n').is_some() {},
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if c == '\n' {
                        line += 1;
                    }
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
            }
            '{' | '}' | ';' => out.push((line, c.to_string())),
            '"' => {
                let s: String = chars.by_ref().take_while(|&c| c != '"').collect();
                line += s.matches('\n').count();
                out.push((line, s));
            }
            c => {
                let mut s = c.to_string();
                while let Some(c) = chars.next_if(|c| !c.is_whitespace() && !"{};\"".contains(*c)) {
                    s.push(c);
                }
                out.push((line, s));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const B64: &str = "NoTCJU+DMqFWywaPyxSijrDEA/eC3nK0xi3AMEZuPVk=";

    #[test]
    fn bind_files_as_tsig_keygen_writes_them() {
        let text = format!(
            "# made by tsig-keygen\nkey \"xfr.example.\" {{\n\talgorithm hmac-sha512;\n\tsecret \"{B64}\";\n}};\n/* two */ key other {{ secret \"{B64}\"; }};\n"
        );
        let keys = key_file(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].algorithm, Some(Algorithm::Sha512));
        assert_eq!(keys[0].name.to_string(), "xfr.example");
        assert_eq!(keys[1].algorithm, Some(Algorithm::Sha256), "BIND's default");
        assert_eq!(keys[1].secret.len(), 32);
    }

    #[test]
    fn knot_files_as_keymgr_writes_them() {
        let text = format!("# hmac-sha256:k1:{B64}\nkey:\n  - id: k1\n    algorithm: hmac-sha256\n    secret: {B64}\n");
        let keys = key_file(&text).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].name.to_string(), "k1");
        assert_eq!(keys[0].algorithm, Some(Algorithm::Sha256));
    }

    #[test]
    fn bad_key_files_name_the_line() {
        let md5 = format!("\n\nkey \"k\" {{ algorithm hmac-md5; secret \"{B64}\"; }};");
        let (line, e) = key_file(&md5).unwrap_err();
        assert_eq!(line, 3);
        assert!(e.contains("hmac-md5 is refused"), "{e}");
        let (line, e) = key_file("key \"k\" {\n secret \"not base64!\";\n};").unwrap_err();
        assert_eq!(line, 1);
        assert!(e.contains("base64"), "{e}");
        let (_, e) = key_file("key \"k\" { secret \"a\" }").unwrap_err();
        assert!(e.contains("expected \";\""), "{e}");
        let (line, e) = key_file("key:\n - id: k\n   algorithm: hmac-sha256\n").unwrap_err();
        assert_eq!(line, 2);
        assert!(e.contains("no secret"), "{e}");
    }
}
