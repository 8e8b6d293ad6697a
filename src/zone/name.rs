//! Domain name helpers shared by the configuration, the zone store and the query path.
//!
//! Names are compared case-insensitively (RFC 4343), so the zone store keys every name by its
//! lowercase uncompressed wire form. On the query path the key is built in a stack buffer.

use std::collections::HashMap;
use std::str::FromStr;

use bytes::Bytes;
use domain::base::{Name, ToName};

/// The longest name in wire form (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// A lowercase wire-format name held on the stack.
#[derive(Clone, Copy)]
pub struct NameKey {
    buf: [u8; MAX_NAME_LEN],
    len: u8,
}

impl NameKey {
    /// The empty name (no labels, not even the root): scratch space to [`set`](Self::set).
    pub const EMPTY: NameKey = NameKey {
        buf: [0; MAX_NAME_LEN],
        len: 0,
    };

    /// The lowercase wire form of `name`.
    pub fn of<N: ToName + ?Sized>(name: &N) -> Self {
        let mut key = NameKey::EMPTY;
        key.set(name);
        key
    }

    /// A copy of `wire`, a lowercase wire name of at most 255 octets (longer is cut).
    pub fn from_wire(wire: &[u8]) -> Self {
        let mut key = NameKey::EMPTY;
        let len = wire.len().min(MAX_NAME_LEN);
        key.buf[..len].copy_from_slice(&wire[..len]);
        key.len = len as u8;
        key
    }

    /// Makes this the lowercase wire form of `name`, in place.
    pub fn set<N: ToName + ?Sized>(&mut self, name: &N) {
        let mut len = 0usize;
        for label in name.iter_labels() {
            let bytes = label.as_slice();
            // A valid name never exceeds 255 octets; stop rather than overrun if it did.
            if len + 1 + bytes.len() > MAX_NAME_LEN {
                break;
            }
            self.buf[len] = bytes.len() as u8;
            for (dst, src) in self.buf[len + 1..len + 1 + bytes.len()].iter_mut().zip(bytes) {
                *dst = src.to_ascii_lowercase();
            }
            len += 1 + bytes.len();
        }
        self.len = len as u8;
    }

    /// The wire bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

/// Offsets of each label start in a wire name, from the full name to the root label.
/// Returns how many offsets were written (the last is the root label).
pub fn label_starts(wire: &[u8], out: &mut [u8; 128]) -> usize {
    let mut n = 0;
    let mut pos = 0usize;
    while pos < wire.len() && n < out.len() {
        out[n] = pos as u8;
        n += 1;
        let len = usize::from(wire[pos]);
        if len == 0 {
            break;
        }
        pos += 1 + len;
    }
    n
}

/// True if `name` (wire) equals `zone` or lies below it. Both must be lowercase wire names.
pub fn is_in_zone(name: &[u8], zone: &[u8]) -> bool {
    if name.len() < zone.len() || !name.ends_with(zone) {
        return false;
    }
    // The suffix must start at a label boundary.
    let cut = name.len() - zone.len();
    let mut pos = 0;
    while pos < cut {
        pos += 1 + usize::from(name[pos]);
    }
    pos == cut
}

/// Parses a presentation-format name as absolute (a missing final dot is added) and
/// lowercases it.
pub fn parse_abs(text: &str) -> Result<Name<Bytes>, String> {
    if text.is_empty() {
        return Err("empty name".into());
    }
    let abs = if text.ends_with('.') {
        text.to_string()
    } else {
        format!("{text}.")
    };
    let name = Name::<Vec<u8>>::from_str(&abs).map_err(|e| format!("{text:?} is not a valid domain name: {e}"))?;
    Ok(lowercase(&name))
}

/// The lowercase copy of a name.
pub fn lowercase<N: ToName + ?Sized>(name: &N) -> Name<Bytes> {
    let key = NameKey::of(name);
    from_wire(key.as_slice())
}

/// A name from uncompressed wire bytes known to be valid (built by this crate).
pub fn from_wire(wire: &[u8]) -> Name<Bytes> {
    // The bytes come from NameKey or another Name, so they are a valid name; the root is
    // the fallback that keeps this total.
    Name::from_octets(Bytes::copy_from_slice(wire)).unwrap_or_else(|_| Name::root_bytes())
}

/// The presentation form of a wire name (for logs and `check`).
pub fn display(wire: &[u8]) -> String {
    match Name::from_slice(wire) {
        Ok(n) if n.is_root() => ".".into(),
        Ok(n) => format!("{n}."),
        Err(_) => "<invalid name>".into(),
    }
}

/// The hasher of the name index: fast, and the keys are the operator's, not an attacker's.
pub type NameMap<V> = HashMap<StoredName, V, foldhash::fast::FixedState>;

/// Names up to this many wire octets are held inside the index's slot.
pub(crate) const INLINE_NAME: usize = 30;

/// A name as a key of the index. Most names are short and sit inside the hash table's slot,
/// so a lookup confirms its match in the cache line it already loaded instead of following
/// a pointer to a separate allocation (under load, with the kernel evicting our lines between
/// queries, that miss was the costliest part of a lookup). Longer names are boxed.
#[derive(Clone, Debug)]
pub enum StoredName {
    /// Length and octets.
    Inline(u8, [u8; INLINE_NAME]),
    /// A longer name.
    Boxed(Box<[u8]>),
}

impl From<&[u8]> for StoredName {
    fn from(wire: &[u8]) -> Self {
        if wire.len() <= INLINE_NAME {
            let mut buf = [0; INLINE_NAME];
            buf[..wire.len()].copy_from_slice(wire);
            StoredName::Inline(wire.len() as u8, buf)
        } else {
            StoredName::Boxed(wire.into())
        }
    }
}

impl std::ops::Deref for StoredName {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            StoredName::Inline(len, buf) => &buf[..usize::from(*len)],
            StoredName::Boxed(b) => b,
        }
    }
}

impl std::borrow::Borrow<[u8]> for StoredName {
    fn borrow(&self) -> &[u8] {
        self
    }
}

impl PartialEq for StoredName {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for StoredName {}

impl std::hash::Hash for StoredName {
    // The same as the octets' own hash, as `Borrow<[u8]>` requires.
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (**self).hash(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_lowercase_wire() {
        let n = Name::<Vec<u8>>::from_str("WwW.Example.COM.").unwrap();
        assert_eq!(NameKey::of(&n).as_slice(), b"\x03www\x07example\x03com\x00");
    }

    #[test]
    fn zone_membership_respects_label_boundaries() {
        let zone = NameKey::of(&parse_abs("example.com").unwrap());
        let inside = NameKey::of(&parse_abs("a.example.com").unwrap());
        let outside = NameKey::of(&parse_abs("aexample.com").unwrap());
        let root = NameKey::of(&Name::root_bytes());
        assert!(is_in_zone(inside.as_slice(), zone.as_slice()));
        assert!(is_in_zone(zone.as_slice(), zone.as_slice()));
        assert!(!is_in_zone(outside.as_slice(), zone.as_slice()));
        assert!(is_in_zone(inside.as_slice(), root.as_slice()));
    }

    #[test]
    fn label_starts_located() {
        let k = NameKey::of(&parse_abs("a.bc.d").unwrap());
        let mut starts = [0u8; 128];
        let n = label_starts(k.as_slice(), &mut starts);
        assert_eq!(&starts[..n], &[0, 2, 5, 7]);
    }

    #[test]
    fn parse_abs_adds_dot_and_lowercases() {
        assert_eq!(parse_abs("Example.COM").unwrap().to_string(), "example.com");
        assert!(parse_abs("").is_err());
        assert!(parse_abs("a..b").is_err());
    }
}
