//! Hashed denial of existence in pre-signed zones (RFC 5155): the NSEC3 chain that the
//! zone's NSEC3PARAM names, indexed by hash, and for every name of the zone the NSEC3 that
//! matches (or covers) it and the one that matches or covers its wildcard child, both
//! hashed once at load. A query hashes only the one name no index can know: the next
//! closer name of a name that does not exist (§7.2.1).

use domain::base::iana::Rtype;
use sha1::{Digest, Sha1};

use super::name::{MAX_NAME_LEN, NameMap, StoredName, label_starts};
use super::store::{Node, Zone};

/// The one hash algorithm defined (RFC 5155 §11): SHA-1.
const SHA1: u8 = 1;
/// SHA-1's digest length.
pub const HASH_LEN: usize = 20;
/// NSEC3 flags: Opt-Out (RFC 5155 §3.1.2.1).
pub const OPT_OUT: u8 = 1;
/// Most iterations hashed at load and per query. RFC 9276 §3.2 lets validators treat more
/// than 100 as insecure (and answers with them as bogus past 150), so a zone beyond 150
/// serves no proofs at all: it is logged at load instead of costing CPU on every query.
pub const MAX_ITERATIONS: u16 = 150;

/// A hashed owner name.
pub type Hash = [u8; HASH_LEN];

/// The chain's parameters, from the apex NSEC3PARAM (RFC 5155 §4).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Iterations beyond the first hash.
    pub iterations: u16,
    /// The salt.
    pub salt: Box<[u8]>,
}

impl Params {
    /// The first NSEC3PARAM record with SHA-1 and flags 0 (§4.1.2: other flags mean the
    /// chain is not to be used for answers), from its wire rdata.
    pub fn of_nsec3param<'a>(mut rdatas: impl Iterator<Item = &'a [u8]>) -> Option<Params> {
        rdatas.find_map(|rd| {
            let (&[alg, flags, i0, i1, salt_len], rest) = rd.split_first_chunk::<5>()?;
            let salt = rest.get(..usize::from(salt_len))?;
            (alg == SHA1 && flags == 0).then(|| Params {
                iterations: u16::from_be_bytes([i0, i1]),
                salt: salt.into(),
            })
        })
    }

    /// Whether an NSEC3 record's rdata belongs to the chain of these parameters; its
    /// flags and next hashed owner when it does.
    fn link_of<'a>(&self, rd: &'a [u8]) -> Option<(u8, &'a [u8])> {
        let (&[alg, flags, i0, i1, salt_len], rest) = rd.split_first_chunk::<5>()?;
        let (salt, rest) = rest.split_at_checked(usize::from(salt_len))?;
        let (&hash_len, rest) = rest.split_first()?;
        let next = rest.get(..usize::from(hash_len))?;
        let same = alg == SHA1 && u16::from_be_bytes([i0, i1]) == self.iterations && *salt == *self.salt;
        (same && next.len() == HASH_LEN).then_some((flags, next))
    }

    /// RFC 5155 §5: IH(salt, x, 0) = H(x || salt), IH(salt, x, k) = H(IH(salt, x, k-1) ||
    /// salt), over the lowercase wire name. No allocation.
    pub fn hash(&self, key: &[u8]) -> Hash {
        let mut h = Sha1::new();
        h.update(key);
        h.update(&self.salt);
        let mut out: Hash = h.finalize().into();
        for _ in 0..self.iterations {
            let mut h = Sha1::new();
            h.update(out);
            h.update(&self.salt);
            out = h.finalize().into();
        }
        out
    }
}

/// Where a name stands in the chain: the NSEC3 at `index` in hash order, which matches
/// the name's hash or covers it.
#[derive(Clone, Copy, Debug)]
struct Link(u32);

const MATCHES: u32 = 1 << 31;

impl Link {
    fn new(index: usize, matches: bool) -> Link {
        Link(index as u32 | if matches { MATCHES } else { 0 })
    }

    fn index(self) -> usize {
        (self.0 & !MATCHES) as usize
    }

    fn matches(self) -> bool {
        self.0 & MATCHES != 0
    }
}

/// A name's two precomputed places in the chain.
#[derive(Clone, Copy, Debug)]
struct Refs {
    /// The name's own hash.
    own: Link,
    /// The hash of `*.<name>`, for when the name is a closest encloser (§7.2.1).
    wildcard: Link,
}

/// The NSEC3 chain of a zone and its index.
#[derive(Debug)]
pub struct Chain {
    params: Params,
    /// (owner hash, owner name, flags) in hash order, which is the order of the owners'
    /// base32hex labels (RFC 4648 §7 keeps the sort order).
    links: Box<[(Hash, StoredName, u8)]>,
    /// The zone's names (NSEC3 owners and data below cuts left out).
    names: NameMap<Refs>,
}

/// An NSEC3 record to serve: the owner of its node and whether it matches the name asked
/// about (or covers it).
#[derive(Clone, Copy, Debug)]
pub struct Nsec3<'z> {
    /// Owner (lowercase wire, held by the zone).
    pub owner: &'z [u8],
    /// Its node, with the NSEC3 and RRSIG RRsets.
    pub node: Node<'z>,
    /// It matches the name (rather than covering it).
    pub matches: bool,
    /// Its Opt-Out flag.
    pub opt_out: bool,
}

/// A closest provable encloser.
#[derive(Clone, Copy, Debug)]
pub struct Encloser<'z, 'k> {
    /// Its name, a suffix of the name asked about.
    pub name: &'k [u8],
    /// The NSEC3 that matches it.
    pub matching: Nsec3<'z>,
    /// The name one label longer towards the name asked about (the next closer name);
    /// `None` when that name itself matches.
    pub next_closer: Option<&'k [u8]>,
}

impl Chain {
    /// Builds the chain of `zone`'s NSEC3PARAM, hashing each of `names` (the names that
    /// may be asked about: not NSEC3 owners, not below a cut). `None` when the zone has no
    /// usable NSEC3PARAM or no NSEC3 record of its chain.
    pub fn build<'a>(zone: &Zone, names: impl Iterator<Item = &'a StoredName>) -> Option<Chain> {
        let apex = zone.apex_node()?;
        let params = Params::of_nsec3param(apex.rrset(Rtype::NSEC3PARAM)?.rdatas())?;
        if params.iterations > MAX_ITERATIONS {
            return None;
        }
        let mut links: Vec<(Hash, StoredName, u8)> = zone
            .names()
            .filter_map(|owner| {
                let node = zone.node(owner)?;
                let flags = node
                    .rrset(Rtype::NSEC3)?
                    .rdatas()
                    .find_map(|rd| params.link_of(rd).map(|(flags, _)| flags))?;
                let hash = hash_label(owner, zone.apex())?;
                Some((hash, StoredName::from(owner), flags))
            })
            .collect();
        if links.is_empty() {
            return None;
        }
        links.sort_unstable_by_key(|l| l.0);
        let mut chain = Chain {
            params,
            links: links.into_boxed_slice(),
            names: NameMap::default(),
        };
        let mut wildcard = [0u8; MAX_NAME_LEN];
        wildcard[..2].copy_from_slice(WILDCARD_LABEL);
        for name in names {
            let own = chain.link(&chain.params.hash(name));
            // A name too long for a wildcard child has none to prove absent.
            let wild = match wildcard.get_mut(2..2 + name.len()) {
                Some(w) => {
                    w.copy_from_slice(name);
                    chain.link(&chain.params.hash(&wildcard[..2 + name.len()]))
                }
                None => own,
            };
            chain.names.insert(name.clone(), Refs { own, wildcard: wild });
        }
        chain.names.shrink_to_fit();
        Some(chain)
    }

    /// The chain's parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// The owner of the first NSEC3 whose next hashed owner is not the next hash of the
    /// chain (the last's is the first's, §3.1.7).
    pub fn first_broken_link<'z>(&self, zone: &'z Zone) -> Option<&'z [u8]> {
        (0..self.links.len()).find_map(|i| {
            let (_, owner, _) = &self.links[i];
            let want = &self.links[(i + 1) % self.links.len()].0;
            let (owner, node) = zone.node_entry(owner)?;
            let next = node
                .rrset(Rtype::NSEC3)?
                .rdatas()
                .find_map(|rd| self.params.link_of(rd));
            (next.map(|(_, n)| n) != Some(&want[..])).then_some(owner)
        })
    }

    /// The NSEC3 whose hash is `hash` or the nearest before it (the last covers what sorts
    /// before the first, §3.1.7).
    fn link(&self, hash: &Hash) -> Link {
        let last = self.links.len() - 1;
        match self.links.binary_search_by(|l| l.0.cmp(hash)) {
            Ok(i) => Link::new(i, true),
            Err(0) => Link::new(last, false),
            Err(i) => Link::new(i - 1, false),
        }
    }
}

/// The first label of a wildcard name.
const WILDCARD_LABEL: &[u8] = b"\x01*";

/// The hash that an NSEC3 owner's first label spells in base32hex (RFC 5155 §3.3), when it
/// is one label directly below the apex.
fn hash_label(owner: &[u8], apex: &[u8]) -> Option<Hash> {
    let (&len, rest) = owner.split_first()?;
    let (label, parent) = rest.split_at_checked(usize::from(len))?;
    if parent != apex {
        return None;
    }
    let mut out = [0u8; HASH_LEN];
    let n = data_encoding::BASE32HEX_NOPAD
        .decode_mut(&label.to_ascii_uppercase(), &mut out)
        .ok()?;
    (n == HASH_LEN).then_some(out)
}

impl Zone {
    /// The NSEC3 for a link of the chain.
    fn nsec3_at(&self, chain: &Chain, link: Link) -> Option<Nsec3<'_>> {
        let (_, owner, flags) = chain.links.get(link.index())?;
        let (owner, node) = self.node_entry(owner)?;
        Some(Nsec3 {
            owner,
            node,
            matches: link.matches(),
            opt_out: flags & OPT_OUT != 0,
        })
    }

    /// The NSEC3 that matches or covers `key`, from the index when the name exists, by
    /// hashing it when it does not.
    pub fn nsec3_for(&self, key: &[u8]) -> Option<Nsec3<'_>> {
        let chain = self.nsec3_chain()?;
        let link = match chain.names.get(key) {
            Some(r) => r.own,
            None => chain.link(&chain.params.hash(key)),
        };
        self.nsec3_at(chain, link)
    }

    /// The NSEC3 that matches `key`, an existing name, from the index.
    pub fn nsec3_matching(&self, key: &[u8]) -> Option<Nsec3<'_>> {
        let chain = self.nsec3_chain()?;
        let own = chain.names.get(key)?.own;
        if !own.matches() {
            return None;
        }
        self.nsec3_at(chain, own)
    }

    /// The NSEC3 that matches or covers `*.<encloser>`, an existing name, from the index.
    pub fn nsec3_wildcard(&self, encloser: &[u8]) -> Option<Nsec3<'_>> {
        let chain = self.nsec3_chain()?;
        let refs = chain.names.get(encloser)?;
        self.nsec3_at(chain, refs.wildcard)
    }

    /// The closest provable encloser of `key` (RFC 5155 §7.2.1): its longest ancestor, or
    /// itself, with a matching NSEC3.
    pub fn nsec3_encloser<'k>(&self, key: &'k [u8]) -> Option<Encloser<'_, 'k>> {
        let mut starts = [0u8; 128];
        let n = label_starts(key, &mut starts);
        let mut next_closer = None;
        for &s in &starts[..n] {
            let suffix = &key[usize::from(s)..];
            if suffix.len() < self.apex().len() {
                break;
            }
            if let Some(m) = self.nsec3_matching(suffix) {
                return Some(Encloser {
                    name: suffix,
                    matching: m,
                    next_closer,
                });
            }
            next_closer = Some(suffix);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::name::{NameKey, parse_abs};

    fn key(s: &str) -> Vec<u8> {
        NameKey::of(&parse_abs(s).unwrap()).as_slice().to_vec()
    }

    fn b32(h: &Hash) -> String {
        data_encoding::BASE32HEX_NOPAD.encode(h).to_ascii_lowercase()
    }

    /// RFC 5155 Appendix A: salt aabbccdd, 12 iterations.
    #[test]
    fn hashes_as_rfc_5155_appendix_a_lists_them() {
        let p = Params {
            iterations: 12,
            salt: vec![0xaa, 0xbb, 0xcc, 0xdd].into(),
        };
        for (name, hash) in [
            ("example", "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom"),
            ("a.example", "35mthgpgcu1qg68fab165klnsnk3dpvl"),
            ("*.w.example", "r53bq7cc2uvmubfu5ocmm6pers9tk9en"),
            ("x.y.w.example", "2vptu5timamqttgl4luu9kg21e0aor3s"),
        ] {
            assert_eq!(b32(&p.hash(&key(name))), hash, "{name}");
        }
    }

    /// The zone of RFC 5155 Appendix A, cut to what shows the index at work.
    #[test]
    fn matching_covering_and_the_closest_provable_encloser() {
        let param = "@ NSEC3PARAM 1 0 12 aabbccdd\n";
        let nsec3 = |owner: &str, next: &str, types: &str| format!("{owner} NSEC3 1 1 12 aabbccdd {next} {types}\n");
        let text = format!(
            "$ORIGIN example.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns1\nns1 A 192.0.2.1\n{param}a A 192.0.2.2\n{}{}{}",
            nsec3(
                "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom",
                "35mthgpgcu1qg68fab165klnsnk3dpvl",
                "NS SOA RRSIG DNSKEY NSEC3PARAM"
            ),
            nsec3(
                "35mthgpgcu1qg68fab165klnsnk3dpvl",
                "2t7b4g4vsa5smi47k61mv5bv1a22bojr",
                "A RRSIG"
            ),
            nsec3(
                "2t7b4g4vsa5smi47k61mv5bv1a22bojr",
                "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom",
                "A RRSIG"
            ),
        );
        let origin = parse_abs("example").unwrap();
        let z = crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("z"), &origin).unwrap();
        let owner = |n: Option<Nsec3<'_>>| n.map(|n| (crate::zone::name::display(n.owner), n.matches, n.opt_out));
        let apex = "0p9mhaveqvm6t7vbl5lop2u3t2rp3tom.example.".to_string();
        let a = "35mthgpgcu1qg68fab165klnsnk3dpvl.example.".to_string();
        assert_eq!(
            owner(z.nsec3_matching(&key("a.example"))),
            Some((a.clone(), true, true))
        );
        assert_eq!(
            owner(z.nsec3_matching(&key("example"))),
            Some((apex.clone(), true, true))
        );
        // ns1.example hashes to 2t7b4g4vsa5smi47k61mv5bv1a22bojr.
        let ns1 = "2t7b4g4vsa5smi47k61mv5bv1a22bojr.example.".to_string();
        assert_eq!(
            owner(z.nsec3_matching(&key("ns1.example"))),
            Some((ns1.clone(), true, true))
        );
        let xa = key("x.a.example");
        let enc = z.nsec3_encloser(&xa).unwrap();
        assert_eq!(enc.name, &key("a.example")[..]);
        assert_eq!(
            (crate::zone::name::display(enc.matching.owner), enc.next_closer),
            (a.clone(), Some(&xa[..]))
        );
        // x.y.w.example hashes to 2vptu5..., between ns1's and a's: ns1's covers it; and
        // the apex's NSEC3 covers what sorts after the last (a's).
        assert_eq!(owner(z.nsec3_for(&key("x.y.w.example"))), Some((ns1, false, true)));
        assert_eq!(owner(z.nsec3_for(&key("xx.example"))), Some((a.clone(), false, true)));
        assert!(z.nsec3_wildcard(&key("example")).is_some_and(|n| !n.matches));
        // The NSEC3 owners themselves are no names to ask about.
        assert!(
            z.nsec3_matching(&key("35mthgpgcu1qg68fab165klnsnk3dpvl.example"))
                .is_none()
        );
    }
}
