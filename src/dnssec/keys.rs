//! DNSSEC signing keys from the files BIND's `dnssec-keygen` writes (and Knot's `keymgr`
//! exports): `K<zone>+<alg>+<tag>.key`, the public DNSKEY record, and `.private`, the
//! private key in BIND's "Private-key-format: v1.x" text. ECDSA P-256 and P-384 (RFC 6605),
//! Ed25519 (RFC 8080) and RSA/SHA-256 (RFC 5702), signed through aws-lc-rs.

use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;

/// DNSSEC algorithm numbers (RFC 8624 §3.1) of the keys we sign with.
pub mod alg {
    /// RSA/SHA-256.
    pub const RSASHA256: u8 = 8;
    /// ECDSA P-256 with SHA-256.
    pub const ECDSAP256SHA256: u8 = 13;
    /// ECDSA P-384 with SHA-384.
    pub const ECDSAP384SHA384: u8 = 14;
    /// Ed25519.
    pub const ED25519: u8 = 15;
}

/// DNSKEY flags: Zone Key (RFC 4034 §2.1.1).
const ZONE_KEY: u16 = 0x0100;
/// DNSKEY flags: Secure Entry Point, set on key-signing keys.
pub const SEP: u16 = 0x0001;
/// The DNSKEY protocol field, always 3 (RFC 4034 §2.1.2).
const PROTOCOL: u8 = 3;

/// A key that signs.
pub struct SigningKey {
    /// The DNSKEY rdata: flags, protocol, algorithm, public key.
    pub dnskey: Box<[u8]>,
    /// Its key tag (RFC 4034 Appendix B).
    pub tag: u16,
    /// Its algorithm.
    pub algorithm: u8,
    /// Where it was read from, for messages.
    pub path: PathBuf,
    pair: Pair,
}

enum Pair {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SigningKey({}, alg {}, tag {})",
            self.path.display(),
            self.algorithm,
            self.tag
        )
    }
}

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file is not what BIND writes.
    #[error("{}: {what}", path.display())]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
}

impl SigningKey {
    /// True for a key-signing key (SEP set).
    pub fn is_ksk(&self) -> bool {
        self.flags() & SEP != 0
    }

    /// The DNSKEY flags.
    pub fn flags(&self) -> u16 {
        u16::from_be_bytes([self.dnskey[0], self.dnskey[1]])
    }

    /// Reads the pair named by `name`: a base name `K<zone>+<alg>+<tag>`, or either of its
    /// two files (CoreDNS's `key file` accepts all three).
    pub fn read(name: &Path) -> Result<SigningKey, KeyError> {
        let text = name.to_string_lossy();
        let base = text
            .strip_suffix(".key")
            .or_else(|| text.strip_suffix(".private"))
            .unwrap_or(&text)
            .to_string();
        let (public, private) = (
            PathBuf::from(format!("{base}.key")),
            PathBuf::from(format!("{base}.private")),
        );
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|source| KeyError::Read { path: p.into(), source });
        let (pub_text, priv_text) = (read(&public)?, read(&private)?);
        Self::parse(&pub_text, &priv_text, &public, &private)
    }

    /// The pair from the texts of its two files (named for messages).
    pub fn parse(public_text: &str, private_text: &str, public: &Path, private: &Path) -> Result<SigningKey, KeyError> {
        let dnskey = parse_public(public_text).map_err(|what| KeyError::Format {
            path: public.into(),
            what,
        })?;
        let pair = parse_private(private_text, &dnskey).map_err(|what| KeyError::Format {
            path: private.into(),
            what,
        })?;
        Ok(SigningKey {
            tag: key_tag(&dnskey),
            algorithm: dnskey[3],
            dnskey: dnskey.into(),
            path: public.into(),
            pair,
        })
    }

    /// Signs `data`, appending the signature in its DNSSEC form to `out` (ECDSA: r and s of
    /// fixed length, RFC 6605 §4; Ed25519: RFC 8080 §4; RSA: PKCS #1 v1.5, RFC 5702 §3).
    pub fn sign(&self, data: &[u8], out: &mut Vec<u8>) -> bool {
        let rng = SystemRandom::new();
        match &self.pair {
            Pair::Ecdsa(k) => match k.sign(&rng, data) {
                Ok(sig) => out.extend_from_slice(sig.as_ref()),
                Err(_) => return false,
            },
            Pair::Ed25519(k) => out.extend_from_slice(k.sign(data).as_ref()),
            Pair::Rsa(k) => {
                let at = out.len();
                out.resize(at + k.public_modulus_len(), 0);
                if k.sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut out[at..])
                    .is_err()
                {
                    out.truncate(at);
                    return false;
                }
            }
        }
        true
    }
}

/// The DNSKEY rdata of a `.key` file: the record after its comments, `OWNER [TTL] [IN]
/// DNSKEY FLAGS 3 ALG BASE64...`.
fn parse_public(text: &str) -> Result<Vec<u8>, String> {
    let line = text
        .lines()
        .map(|l| l.split(';').next().unwrap_or_default())
        .find(|l| l.split_whitespace().any(|t| t.eq_ignore_ascii_case("DNSKEY")))
        .ok_or("no DNSKEY record")?;
    let fields: Vec<&str> = line.split_whitespace().collect();
    let at = fields
        .iter()
        .position(|t| t.eq_ignore_ascii_case("DNSKEY"))
        .unwrap_or_default();
    let [flags, protocol, algorithm, key @ ..] = &fields[at + 1..] else {
        return Err("a DNSKEY needs flags, protocol, algorithm and key".into());
    };
    let flags: u16 = flags.parse().map_err(|_| format!("flags {flags:?}"))?;
    if flags & ZONE_KEY == 0 {
        return Err("not a zone key (flags without 256)".into());
    }
    if *protocol != "3" {
        return Err(format!("protocol {protocol}, not 3"));
    }
    let algorithm: u8 = algorithm.parse().map_err(|_| format!("algorithm {algorithm:?}"))?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(key.concat())
        .map_err(|e| format!("public key: {e}"))?;
    let mut rdata = flags.to_be_bytes().to_vec();
    rdata.extend_from_slice(&[PROTOCOL, algorithm]);
    rdata.extend_from_slice(&key);
    Ok(rdata)
}

/// The key pair of a `.private` file, checked against its public half.
fn parse_private(text: &str, dnskey: &[u8]) -> Result<Pair, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let v = text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .ok_or_else(|| format!("no {name}"))?;
        base64::engine::general_purpose::STANDARD
            .decode(v.trim())
            .map_err(|e| format!("{name}: {e}"))
    };
    let algorithm: u8 = text
        .lines()
        .find_map(|l| l.strip_prefix("Algorithm:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or("no Algorithm")?;
    let public = &dnskey[4..];
    if algorithm != dnskey[3] {
        return Err(format!("algorithm {algorithm}, the .key says {}", dnskey[3]));
    }
    let rejected = |e: aws_lc_rs::error::KeyRejected| format!("the key pair does not hold: {e}");
    match algorithm {
        alg::ECDSAP256SHA256 | alg::ECDSAP384SHA384 => {
            let a = if algorithm == alg::ECDSAP256SHA256 {
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            // RFC 6605 §4: the public key is x | y; SEC 1 puts 0x04 before them.
            let mut point = vec![0x04];
            point.extend_from_slice(public);
            EcdsaKeyPair::from_private_key_and_public_key(a, &field("PrivateKey")?, &point)
                .map(Pair::Ecdsa)
                .map_err(rejected)
        }
        alg::ED25519 => Ed25519KeyPair::from_seed_and_public_key(&field("PrivateKey")?, public)
            .map(Pair::Ed25519)
            .map_err(rejected),
        alg::RSASHA256 => {
            let parts = [
                "Modulus",
                "PublicExponent",
                "PrivateExponent",
                "Prime1",
                "Prime2",
                "Exponent1",
                "Exponent2",
                "Coefficient",
            ]
            .map(field);
            let mut ints = vec![vec![0u8]]; // version 0 (RFC 8017 §A.1.2)
            for p in parts {
                ints.push(p?);
            }
            let pair = RsaKeyPair::from_der(&rsa_private_key_der(&ints)).map_err(rejected)?;
            if rsa_public(pair.public_key().as_ref()).as_deref() != Some(public) {
                return Err("the private key is not the .key's".into());
            }
            Ok(Pair::Rsa(pair))
        }
        other => Err(format!(
            "algorithm {other} is not one ringdns signs with (8 RSASHA256, 13 ECDSAP256SHA256, 14 ECDSAP384SHA384, 15 ED25519)"
        )),
    }
}

/// RFC 8017 §A.1.2 RSAPrivateKey in DER: a SEQUENCE of the INTEGERs, in order.
fn rsa_private_key_der(ints: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in ints {
        let trimmed = match i.iter().position(|&b| b != 0) {
            Some(at) => &i[at..],
            None => &[0u8][..],
        };
        body.push(0x02); // INTEGER
        let pad = trimmed[0] & 0x80 != 0;
        der_len(&mut body, trimmed.len() + usize::from(pad));
        if pad {
            body.push(0);
        }
        body.extend_from_slice(trimmed);
    }
    let mut out = vec![0x30]; // SEQUENCE
    der_len(&mut out, body.len());
    out.extend_from_slice(&body);
    out
}

fn der_len(out: &mut Vec<u8>, len: usize) {
    match len {
        0..0x80 => out.push(len as u8),
        0x80..0x100 => out.extend_from_slice(&[0x81, len as u8]),
        _ => out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]),
    }
}

/// The DNSKEY form (RFC 3110 §2) of an RSAPublicKey in DER: exponent length, exponent,
/// modulus.
fn rsa_public(der: &[u8]) -> Option<Vec<u8>> {
    fn take(d: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, d) = d.split_first()?;
        if t != tag {
            return None;
        }
        let (&l, mut d) = d.split_first()?;
        let len = if l < 0x80 {
            usize::from(l)
        } else {
            let n = usize::from(l & 0x7f);
            let (bytes, rest) = d.split_at_checked(n)?;
            d = rest;
            bytes.iter().fold(0usize, |a, &b| a << 8 | usize::from(b))
        };
        d.split_at_checked(len)
    }
    let (seq, _) = take(der, 0x30)?;
    let (n, rest) = take(seq, 0x02)?;
    let (e, _) = take(rest, 0x02)?;
    let strip = |x: &[u8]| x.iter().position(|&b| b != 0).map_or(&[][..], |at| &x[at..]).to_vec();
    let (n, e) = (strip(n), strip(e));
    let mut out = Vec::new();
    match u8::try_from(e.len()) {
        Ok(l) => out.push(l),
        Err(_) => {
            out.push(0);
            out.extend_from_slice(&(e.len() as u16).to_be_bytes());
        }
    }
    out.extend_from_slice(&e);
    out.extend_from_slice(&n);
    Some(out)
}

/// RFC 4034 Appendix B: the key tag of a DNSKEY rdata.
pub fn key_tag(rdata: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    for (i, &b) in rdata.iter().enumerate() {
        acc += if i & 1 == 1 { u32::from(b) } else { u32::from(b) << 8 };
    }
    acc += (acc >> 16) & 0xffff;
    (acc & 0xffff) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DNSKEY of RFC 4034 §5.4's DS example has key tag 60485.
    #[test]
    fn key_tag_of_rfc_4034_example() {
        let key = base64::engine::general_purpose::STANDARD
            .decode("AQOeiiR0GOMYkDshWoSKz9XzfwJr1AYtsmx3TGkJaNXVbfi/2pHm822aJ5iI9BMzNXxeYCmZDRD99WYwYqUSdjMmmAphXdvxegXd/M5+X7OrzKBaMbCVdFLUUh6DhweJBjEVv5f2wwjM9XzcnOf+EPbtG9DMBmADjFDc2w/rljwvFw==")
            .unwrap();
        let mut rdata = vec![1, 0, 3, 5];
        rdata.extend_from_slice(&key);
        assert_eq!(key_tag(&rdata), 60485);
    }
}
