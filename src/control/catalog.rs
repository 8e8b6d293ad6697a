//! Catalog zones (RFC 9432) at run time: which members of the catalogs this node consumes
//! it serves, for which block. Each member becomes a secondary zone of its catalog's
//! primaries (same TLS, key and folder), routed to the catalog's block.
//!
//! Rules, from RFC 9432 §5 and as CoreDNS and Knot consume catalogs:
//! - a catalog that is not version 2 is not applied: its members stay as they were, and
//!   the log says why once per transfer;
//! - `catalog MEMBER-ZONES...` restricts members to those at or below the names (§7
//!   recommends it: otherwise the catalog's producer decides what this node serves);
//! - a member that the Corefile already serves (a `file` or a listed `secondary`) is
//!   skipped, and so is a member of two catalogs (a name clash, §5.4), unless the catalog
//!   that has it says `coo` (change of ownership, §5.6) to the other one: then it moves;
//! - a member whose unique ID changes is reset (§5.5): its data is dropped and transferred
//!   again; a member no catalog lists any more is removed, its copy on disk too (§5.3).

use std::collections::HashMap;

use super::secondary::SecondaryId;
use crate::config::{Config, SecondaryConfig};
use crate::zone::catalog::Catalog;
use crate::zone::name::{NameKey, display, is_in_zone};

/// A member zone this node serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// The catalog that lists it.
    pub catalog: SecondaryId,
    /// The catalog's block (index in the Corefile).
    pub block: usize,
    /// Its unique ID in that catalog.
    pub id: Box<[u8]>,
}

/// Member zones by apex (lowercase wire).
pub type Members = HashMap<Box<[u8]>, Membership>;

/// A member's secondary: the folder of its catalog, its apex.
pub fn member_id(m: &Membership, apex: &[u8]) -> SecondaryId {
    (m.catalog.0.clone(), apex.into())
}

/// Every consumed catalog of `cfg`: its id, block and `secondary`.
pub fn consumed(cfg: &Config) -> impl Iterator<Item = (SecondaryId, usize, &SecondaryConfig)> {
    cfg.blocks.iter().enumerate().flat_map(|(bi, b)| {
        b.secondaries.iter().filter(|s| s.catalog.is_some()).flat_map(move |s| {
            s.zones
                .iter()
                .map(move |z| ((s.directory.clone(), NameKey::of(z).as_slice().into()), bi, s))
        })
    })
}

/// Whether `id` is a catalog `cfg` consumes.
pub fn is_catalog(cfg: &Config, id: &SecondaryId) -> bool {
    consumed(cfg).any(|(c, _, _)| c == *id)
}

/// A catalog's claim on a member zone: its apex, the membership, its `coo`.
type Claim = (Box<[u8]>, Membership, Option<Box<[u8]>>);

/// The members this node serves, given the catalogs' contents and who served each member
/// before (ownership stays put unless `coo` moves it). The notes are for the log.
pub fn assign(cfg: &Config, catalogs: &HashMap<SecondaryId, Catalog>, before: &Members) -> (Members, Vec<String>) {
    let fixed = fixed_zones(cfg);
    let mut notes = Vec::new();
    // Every claim on each member zone, in Corefile order.
    let mut claims: Vec<Claim> = Vec::new();
    for (cat, block, s) in consumed(cfg) {
        let Some(c) = catalogs.get(&cat) else {
            continue;
        };
        let allowed: Vec<Box<[u8]>> = s
            .catalog
            .iter()
            .flatten()
            .map(|z| NameKey::of(z).as_slice().into())
            .collect();
        let mut outside = 0;
        for m in &c.members {
            if !allowed.is_empty() && !allowed.iter().any(|a| is_in_zone(&m.apex, a)) {
                outside += 1;
                continue;
            }
            if fixed.iter().any(|f| **f == *m.apex) || catalogs.contains_key(&(cat.0.clone(), m.apex.clone())) {
                notes.push(format!(
                    "catalog {}: member {} skipped: the Corefile already serves it",
                    display(&cat.1),
                    display(&m.apex)
                ));
                continue;
            }
            let membership = Membership {
                catalog: cat.clone(),
                block,
                id: m.id.clone(),
            };
            claims.push((m.apex.clone(), membership, m.coo.clone()));
        }
        if outside > 0 {
            notes.push(format!(
                "catalog {}: {outside} member zones skipped: outside its catalog MEMBER-ZONES",
                display(&cat.1)
            ));
        }
    }
    let mut out = Members::new();
    for (apex, _, _) in &claims {
        if out.contains_key(apex) {
            continue;
        }
        let all: Vec<&Claim> = claims.iter().filter(|c| c.0 == *apex).collect();
        // The owner: the catalog that had it, else the first that lists it; it moves when
        // the owner's entry says coo to another catalog that lists it too.
        let owner = before
            .get(apex)
            .and_then(|b| all.iter().find(|c| c.1.catalog == b.catalog))
            .copied()
            .unwrap_or(all[0]);
        let winner = owner
            .2
            .as_ref()
            .and_then(|to| all.iter().find(|c| *c.1.catalog.1 == **to))
            .copied()
            .unwrap_or(owner);
        if winner.1.catalog != owner.1.catalog {
            notes.push(format!(
                "member {} moves from catalog {} to {} (coo)",
                display(apex),
                display(&owner.1.catalog.1),
                display(&winner.1.catalog.1)
            ));
        }
        for c in &all {
            if c.1.catalog != winner.1.catalog {
                notes.push(format!(
                    "catalog {}: member {} skipped: it is a member of catalog {}",
                    display(&c.1.catalog.1),
                    display(apex),
                    display(&winner.1.catalog.1)
                ));
            }
        }
        out.insert(apex.clone(), winner.1.clone());
    }
    (out, notes)
}

/// The zones the Corefile itself serves (files and listed secondaries), lowercase wire.
fn fixed_zones(cfg: &Config) -> Vec<Box<[u8]>> {
    let mut out = Vec::new();
    for b in &cfg.blocks {
        for f in &b.files {
            out.extend(f.zones.iter().map(|z| NameKey::of(z).as_slice().into()));
        }
        for s in b.secondaries.iter().filter(|s| s.catalog.is_none()) {
            out.extend(s.zones.iter().map(|z| NameKey::of(z).as_slice().into()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::catalog::Member;

    fn cfg(text: &str) -> Config {
        crate::config::parse(text, std::path::Path::new("Corefile"), Default::default()).unwrap()
    }

    fn key(s: &str) -> Box<[u8]> {
        NameKey::of(&crate::zone::name::parse_abs(s).unwrap()).as_slice().into()
    }

    fn member(apex: &str, id: &str, coo: Option<&str>) -> Member {
        Member {
            apex: key(apex),
            id: id.as_bytes().into(),
            coo: coo.map(key),
        }
    }

    const TWO: &str = ". {\n    secondary cat1.test cat2.test {\n        transfer from 192.0.2.1\n        catalog\n        directory /tmp/z\n    }\n    file /dev/null fixed.test\n}\n";

    fn catalogs(one: Vec<Member>, two: Vec<Member>) -> HashMap<SecondaryId, Catalog> {
        let dir = std::path::PathBuf::from("/tmp/z");
        HashMap::from([
            (
                (dir.clone(), key("cat1.test")),
                Catalog {
                    members: one,
                    ignored: vec![],
                },
            ),
            (
                (dir, key("cat2.test")),
                Catalog {
                    members: two,
                    ignored: vec![],
                },
            ),
        ])
    }

    #[test]
    fn a_clash_keeps_the_first_owner_until_coo_moves_it() {
        let c = cfg(TWO);
        let cats = catalogs(vec![member("a.test", "x", None)], vec![member("a.test", "x", None)]);
        let (m, notes) = assign(&c, &cats, &Members::new());
        assert_eq!(m[&key("a.test")].catalog.1, key("cat1.test"));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("skipped: it is a member of catalog cat1.test.")),
            "{notes:?}"
        );
        // The owner's entry says coo cat2: it moves; and stays there once cat1 drops it.
        let cats = catalogs(
            vec![member("a.test", "x", Some("cat2.test"))],
            vec![member("a.test", "x", None)],
        );
        let (m2, notes) = assign(&c, &cats, &m);
        assert_eq!(m2[&key("a.test")].catalog.1, key("cat2.test"));
        assert!(
            notes
                .iter()
                .any(|n| n.contains("moves from catalog cat1.test. to cat2.test.")),
            "{notes:?}"
        );
        let cats = catalogs(vec![], vec![member("a.test", "x", None)]);
        assert_eq!(assign(&c, &cats, &m2).0, m2);
        // Without coo, the owner keeps it even when listed second in the Corefile.
        let cats = catalogs(vec![member("a.test", "x", None)], vec![member("a.test", "x", None)]);
        assert_eq!(assign(&c, &cats, &m2).0[&key("a.test")].catalog.1, key("cat2.test"));
    }

    #[test]
    fn corefile_zones_and_restrictions_win() {
        let c = cfg(TWO);
        let cats = catalogs(
            vec![member("fixed.test", "f", None), member("b.test", "b", None)],
            vec![],
        );
        let (m, notes) = assign(&c, &cats, &Members::new());
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), [key("b.test")]);
        assert!(
            notes.iter().any(|n| n.contains("the Corefile already serves it")),
            "{notes:?}"
        );
        let restricted = cfg(&TWO.replace("        catalog\n", "        catalog example.org\n"));
        let cats = catalogs(
            vec![member("www.example.org", "w", None), member("b.test", "b", None)],
            vec![],
        );
        let (m, notes) = assign(&restricted, &cats, &Members::new());
        assert_eq!(m.keys().cloned().collect::<Vec<_>>(), [key("www.example.org")]);
        assert!(notes.iter().any(|n| n.contains("1 member zones skipped")), "{notes:?}");
    }
}
