//! The ACME challenge overlay: `_acme-challenge` TXT values published by the ACME manager,
//! checked before zone data on every `dns://` listener whose zones contain the name.

use domain::base::iana::Rtype;

use super::name::NameKey;
use super::name::NameMap;
use super::rrset::{Rrset, RrsetBuf};

/// The first label of every DNS-01 challenge name (RFC 8555 §8.4), in wire form.
pub const LABEL: &[u8] = b"\x0f_acme-challenge";

/// TTL of challenge records: 0, so no resolver keeps a value past its order.
pub const TTL: u32 = 0;

/// The values being served, by challenge name.
#[derive(Debug, Default)]
pub struct ChallengeSet {
    /// Increases with every published set.
    pub generation: u64,
    names: NameMap<RrsetBuf>,
}

impl ChallengeSet {
    /// A set from (challenge name, values) pairs; several values may share a name (an apex
    /// and its wildcard are validated at `_acme-challenge.<apex>` together).
    pub fn new<'a>(generation: u64, entries: impl IntoIterator<Item = (&'a NameKey, &'a [String])>) -> Self {
        let mut names: NameMap<Vec<Vec<u8>>> = NameMap::default();
        for (name, values) in entries {
            let slot = names.entry(name.as_slice().into()).or_default();
            for v in values {
                // TXT rdata: one character-string (a key authorization digest is 43 octets).
                let bytes = v.as_bytes();
                let len = bytes.len().min(255);
                let mut rd = Vec::with_capacity(1 + len);
                rd.push(len as u8);
                rd.extend_from_slice(&bytes[..len]);
                if !slot.contains(&rd) {
                    slot.push(rd);
                }
            }
        }
        ChallengeSet {
            generation,
            names: names
                .into_iter()
                .map(|(k, v)| (k, RrsetBuf::new(Rtype::TXT, TTL, v.iter().map(Vec::as_slice))))
                .collect(),
        }
    }

    /// The TXT RRset at `key` (lowercase wire), if a challenge is published there.
    #[inline]
    pub fn lookup(&self, key: &[u8]) -> Option<Rrset<'_>> {
        if !key.starts_with(LABEL) || self.names.is_empty() {
            return None;
        }
        self.names.get(key).map(RrsetBuf::get)
    }

    /// The challenge names being served.
    pub fn names(&self) -> impl Iterator<Item = &[u8]> {
        self.names.keys().map(|k| &**k)
    }

    /// True when nothing is published.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

/// `_acme-challenge.<name>` for a certificate name, the wildcard label removed (RFC 8555
/// §8.4: the challenge for `*.example.com` is at `_acme-challenge.example.com`).
pub fn challenge_name(name: &str) -> Result<NameKey, String> {
    let bare = name.strip_prefix("*.").unwrap_or(name);
    let full = super::name::parse_abs(&format!("_acme-challenge.{}", bare.trim_end_matches('.')))?;
    Ok(NameKey::of(&full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apex_and_wildcard_share_a_name() {
        let apex = challenge_name("Example.test").unwrap();
        let wild = challenge_name("*.example.test").unwrap();
        assert_eq!(apex.as_slice(), wild.as_slice());
        let a = ["v1".to_string()];
        let b = ["v2".to_string(), "v1".to_string()];
        let set = ChallengeSet::new(3, [(&apex, &a[..]), (&wild, &b[..])]);
        let rrset = set.lookup(apex.as_slice()).unwrap();
        assert_eq!(rrset.len(), 2);
        assert_eq!(rrset.ttl(), 0);
        assert!(
            set.lookup(NameKey::of(&super::super::name::parse_abs("example.test").unwrap()).as_slice())
                .is_none()
        );
    }
}
