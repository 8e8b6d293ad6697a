//! Catalog zones (RFC 9432), as a consumer: the member zones a catalog lists, read from its
//! data. No I/O; the control thread turns members into secondary zones.
//!
//! A catalog of schema version 2 (§3: `version.<catalog> TXT "2"`) lists each member at
//! `<unique-id>.zones.<catalog> PTR <member>` (§4.1), and may say where it is going at
//! `coo.<unique-id>.zones.<catalog> PTR <other catalog>` (§5.6, change of ownership). Other
//! properties (`group`, custom ones under `ext`) are ignored, as §4.4 lets a consumer.

use domain::base::iana::Rtype;

use super::name::NameKey;
use super::store::Zone;

/// The only schema version ringdns consumes (RFC 9432 §3).
pub const VERSION: &[u8] = b"2";

/// One member of a catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member zone's apex, lowercase wire.
    pub apex: Box<[u8]>,
    /// Its unique ID (the label under `zones`), lowercase.
    pub id: Box<[u8]>,
    /// `coo`: the catalog (lowercase wire) the member may move to.
    pub coo: Option<Box<[u8]>>,
}

/// Why a catalog is not applied.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CatalogError {
    /// No `version` TXT, or more than one.
    #[error("no single version TXT record at the catalog's version.<apex> (RFC 9432 §3)")]
    NoVersion,
    /// A version other than 2.
    #[error("schema version {0:?} is not supported (only \"2\", RFC 9432)")]
    Version(String),
}

/// What a catalog lists: its members in the order of their unique IDs, and the members it
/// could not take (a node with other than one PTR, a zone listed twice: §4.1 says such a
/// member is ignored).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// The members.
    pub members: Vec<Member>,
    /// Member nodes ignored, in presentation form, for the log.
    pub ignored: Vec<String>,
}

/// The members of `zone`, a catalog.
pub fn parse(zone: &Zone) -> Result<Catalog, CatalogError> {
    let apex = zone.apex();
    let version = prefixed(&[b"version"], apex);
    let txt = zone.node(&version).and_then(|n| n.rrset(Rtype::TXT));
    let mut rdatas = txt.iter().flat_map(|s| s.rdatas());
    let (Some(v), None) = (rdatas.next(), rdatas.next()) else {
        return Err(CatalogError::NoVersion);
    };
    // One character-string, "2".
    if v.first().map(|&l| usize::from(l)) != Some(v.len() - 1) || &v[1..] != VERSION {
        let text = v.get(1..).map(String::from_utf8_lossy).unwrap_or_default();
        return Err(CatalogError::Version(text.into_owned()));
    }
    let zones = prefixed(&[b"zones"], apex);
    let mut out = Catalog::default();
    let mut ids: Vec<(&[u8], Box<[u8]>)> = zone
        .names()
        .filter_map(|n| Some((n, child_label(n, &zones)?)))
        .collect();
    ids.sort_by(|a, b| a.1.cmp(&b.1));
    for (node, id) in ids {
        let ptrs: Vec<&[u8]> = zone
            .node(node)
            .and_then(|n| n.rrset(Rtype::PTR))
            .map(|s| s.rdatas().collect())
            .unwrap_or_default();
        let [target] = ptrs.as_slice() else {
            if !ptrs.is_empty() {
                out.ignored.push(super::name::display(node));
            }
            continue;
        };
        let Some(member) = lower(target) else {
            out.ignored.push(super::name::display(node));
            continue;
        };
        let coo_node = [&[3u8][..], b"coo", node].concat();
        let coo = zone
            .node(&coo_node)
            .and_then(|n| n.rrset(Rtype::PTR))
            .and_then(|s| s.rdatas().next())
            .and_then(lower)
            .map(|k| k.as_slice().into());
        out.members.push(Member {
            apex: member.as_slice().into(),
            id,
            coo,
        });
    }
    // A zone listed under two IDs: neither is taken (§4.1: the catalog is ambiguous).
    let twice: Vec<Box<[u8]>> = out
        .members
        .iter()
        .filter(|m| out.members.iter().filter(|o| o.apex == m.apex).count() > 1)
        .map(|m| m.apex.clone())
        .collect();
    for apex in &twice {
        let name = super::name::display(apex);
        if !out.ignored.contains(&name) {
            out.ignored.push(name);
        }
    }
    out.members.retain(|m| !twice.contains(&m.apex));
    Ok(out)
}

/// A PTR target (uncompressed wire, any case) in lowercase.
fn lower(target: &[u8]) -> Option<NameKey> {
    let name = domain::base::Name::<&[u8]>::from_octets(target).ok()?;
    Some(NameKey::of(&name))
}

/// `labels` (in order, leftmost first) prepended to `apex`, lowercase wire.
fn prefixed(labels: &[&[u8]], apex: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in labels {
        out.push(l.len() as u8);
        out.extend_from_slice(l);
    }
    out.extend_from_slice(apex);
    out
}

/// The single label of `name` directly below `parent`.
fn child_label(name: &[u8], parent: &[u8]) -> Option<Box<[u8]>> {
    let len = usize::from(*name.first()?);
    (name.len() == 1 + len + parent.len() && name[1 + len..] == *parent).then(|| name[1..=len].into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(body: &str) -> Zone {
        let text = format!(
            "$ORIGIN catalog.test.\n$TTL 0\n@ SOA invalid. invalid. 1 3600 600 2147483646 0\n@ NS invalid.\n{body}"
        );
        let origin = crate::zone::name::parse_abs("catalog.test").unwrap();
        crate::zone::zonefile::load_bytes(text.as_bytes(), std::path::Path::new("c"), &origin).unwrap()
    }

    fn key(s: &str) -> Box<[u8]> {
        NameKey::of(&crate::zone::name::parse_abs(s).unwrap()).as_slice().into()
    }

    /// What Knot 3.2 generates (`catalog-role: generate`), with a coo and a group added.
    #[test]
    fn members_as_knot_lists_them() {
        let z = catalog(
            "version TXT \"2\"\n1b276abc66ade57d.zones PTR B.test.\n8a748e16ba9c2737.zones PTR a.test.\ncoo.8a748e16ba9c2737.zones PTR other.catalog.\ngroup.8a748e16ba9c2737.zones TXT \"web\"\n",
        );
        let c = parse(&z).unwrap();
        assert_eq!(c.members.len(), 2);
        assert_eq!(c.members[0].apex, key("b.test"), "lowercased");
        assert_eq!(&*c.members[0].id, b"1b276abc66ade57d");
        assert_eq!(c.members[1].coo, Some(key("other.catalog")));
        assert!(c.ignored.is_empty());
    }

    #[test]
    fn only_version_2() {
        assert_eq!(parse(&catalog("m.zones PTR a.test.\n")), Err(CatalogError::NoVersion));
        assert_eq!(
            parse(&catalog("version TXT \"1\"\n")),
            Err(CatalogError::Version("1".into()))
        );
        assert_eq!(
            parse(&catalog("version TXT \"2\"\nversion TXT \"3\"\n")),
            Err(CatalogError::NoVersion)
        );
    }

    #[test]
    fn ambiguous_members_are_ignored() {
        let z = catalog(
            "version TXT \"2\"\none.zones PTR a.test.\none.zones PTR b.test.\ntwo.zones PTR c.test.\nthree.zones PTR c.test.\nfour.zones PTR d.test.\ndeep.x.zones PTR e.test.\n",
        );
        let c = parse(&z).unwrap();
        assert_eq!(
            c.members.iter().map(|m| m.apex.clone()).collect::<Vec<_>>(),
            [key("d.test")]
        );
        assert_eq!(c.ignored, ["one.zones.catalog.test.", "c.test."]);
    }
}
