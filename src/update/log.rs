//! The log of applied updates of one zone, as text: each update's serial and the changes
//! that took effect, replayed in order over the zone file whenever it is loaded (at start,
//! and when the file changes), so that an update outlives a restart and an operator's
//! edit of the file does not undo it. No I/O.
//!
//! ```text
//! serial 2026120203
//! rrset _acme-challenge.example.com. 16
//! add _acme-challenge.example.com. 60 16 2b4c...
//! rr host.example.com. 1 c0000201
//! ```
//!
//! `rrset OWNER TYPE` deletes an RRset, `rr OWNER TYPE HEX` one record, `add OWNER TTL
//! TYPE HEX` adds one (types by number, data as the hex of its wire form, `-` when empty).

use std::collections::BTreeSet;

use domain::base::iana::Rtype;

use super::rfc2136::Change;
use crate::zone::diff::Rec;
use crate::zone::name::{NameKey, parse_abs};
use crate::zone::store::Zone;

/// One applied update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The zone's serial after it.
    pub serial: u32,
    /// What it changed.
    pub changes: Vec<Change>,
}

/// How many changes the log holds before [`compact`] folds it into one entry.
pub const COMPACT_AFTER: usize = 1024;

/// `e` as lines of the log.
pub fn encode(e: &Entry) -> String {
    let mut s = format!("serial {}\n", e.serial);
    for c in &e.changes {
        match c {
            Change::Add(r) => s.push_str(&format!(
                "add {} {} {} {}\n",
                owner_text(&r.owner),
                r.ttl,
                r.rtype,
                hex(&r.rdata)
            )),
            Change::DeleteRrset { owner, rtype } => s.push_str(&format!("rrset {} {rtype}\n", owner_text(owner))),
            Change::DeleteRr { owner, rtype, rdata } => {
                s.push_str(&format!("rr {} {rtype} {}\n", owner_text(owner), hex(rdata)))
            }
        }
    }
    s
}

/// A wire name in presentation form with every octet but letters, digits, `-` and `_`
/// escaped as `\DDD` (RFC 1035 §5.1), so that a line splits on its spaces whatever the
/// labels hold.
fn owner_text(wire: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while let Some(&len) = wire.get(i) {
        if len == 0 {
            break;
        }
        for &b in wire.get(i + 1..i + 1 + usize::from(len)).unwrap_or_default() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("\\{b:03}"));
            }
        }
        out.push('.');
        i += 1 + usize::from(len);
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

fn hex(b: &[u8]) -> String {
    if b.is_empty() {
        return "-".into();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Box<[u8]>> {
    if s == "-" {
        return Some(Box::default());
    }
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The entries of a log's text; an error names the line. Lines starting with `;` and
/// empty lines are skipped.
pub fn decode(text: &str) -> Result<Vec<Entry>, String> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = |why: &str| format!("line {}: {why}: {line:?}", i + 1);
        let words: Vec<&str> = line.split_whitespace().collect();
        let owner = |w: &str| parse_abs(w).map(|n| Box::<[u8]>::from(NameKey::of(&n).as_slice()));
        let num = |w: &str| w.parse::<u32>().ok();
        let change = match words.as_slice() {
            [] => continue,
            [w, ..] if w.starts_with(';') => continue,
            ["serial", s] => {
                out.push(Entry {
                    serial: num(s).ok_or_else(|| bad("a serial is a number"))?,
                    changes: Vec::new(),
                });
                continue;
            }
            ["add", o, ttl, t, data] => Change::Add(Rec {
                owner: owner(o).map_err(|e| bad(&e))?,
                ttl: num(ttl).ok_or_else(|| bad("a TTL is a number"))?,
                rtype: t.parse().map_err(|_| bad("a type is a number"))?,
                rdata: unhex(data).ok_or_else(|| bad("data is hex"))?,
            }),
            ["rrset", o, t] => Change::DeleteRrset {
                owner: owner(o).map_err(|e| bad(&e))?,
                rtype: t.parse().map_err(|_| bad("a type is a number"))?,
            },
            ["rr", o, t, data] => Change::DeleteRr {
                owner: owner(o).map_err(|e| bad(&e))?,
                rtype: t.parse().map_err(|_| bad("a type is a number"))?,
                rdata: unhex(data).ok_or_else(|| bad("data is hex"))?,
            },
            _ => return Err(bad("not a line of an update log")),
        };
        let Some(last) = out.last_mut() else {
            return Err(bad("a change before any serial line"));
        };
        last.changes.push(change);
    }
    Ok(out)
}

/// The log folded into one entry with the same effect over any zone file: for every RRset
/// the entries touched, its deletion and then its records as `zone` (the log applied)
/// holds them.
pub fn compact(zone: &Zone, entries: &[Entry]) -> Entry {
    let mut touched: BTreeSet<(Box<[u8]>, u16)> = BTreeSet::new();
    for c in entries.iter().flat_map(|e| &e.changes) {
        let key = match c {
            Change::Add(r) => (r.owner.clone(), r.rtype),
            Change::DeleteRrset { owner, rtype } | Change::DeleteRr { owner, rtype, .. } => (owner.clone(), *rtype),
        };
        touched.insert(key);
    }
    let mut changes = Vec::new();
    for (owner, rtype) in touched {
        changes.push(Change::DeleteRrset {
            owner: owner.clone(),
            rtype,
        });
        let set = zone.node(&owner).and_then(|n| n.rrset(Rtype::from_int(rtype)));
        for (ttl, rdata) in set.iter().flat_map(|s| s.rdatas().map(|r| (s.ttl(), r))) {
            changes.push(Change::Add(Rec {
                owner: owner.clone(),
                rtype,
                ttl,
                rdata: rdata.into(),
            }));
        }
    }
    Entry {
        serial: zone.serial(),
        changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: &str) -> Box<[u8]> {
        NameKey::of(&parse_abs(n).unwrap()).as_slice().into()
    }

    #[test]
    fn entries_round_trip_and_bad_lines_are_named() {
        let e = Entry {
            serial: 7,
            changes: vec![
                Change::DeleteRrset {
                    owner: key("_acme-challenge.example.test"),
                    rtype: 16,
                },
                Change::Add(Rec {
                    owner: key("_acme-challenge.example.test"),
                    rtype: 16,
                    ttl: 60,
                    rdata: b"\x03abc".as_slice().into(),
                }),
                Change::DeleteRr {
                    owner: key("host.example.test"),
                    rtype: 1,
                    rdata: [192, 0, 2, 1].as_slice().into(),
                },
            ],
        };
        let text = format!(
            "; a comment\n{}\n{}",
            encode(&e),
            encode(&Entry {
                serial: 8,
                changes: vec![]
            })
        );
        // Labels with dots, spaces and other octets survive the text.
        let odd = Entry {
            serial: 9,
            changes: vec![Change::DeleteRrset {
                owner: b"\x08a.b c\\d\xff\x04test\x00".as_slice().into(),
                rtype: 16,
            }],
        };
        assert_eq!(decode(&encode(&odd)).unwrap(), vec![odd]);
        let back = decode(&text).unwrap();
        assert_eq!(
            back,
            vec![
                e,
                Entry {
                    serial: 8,
                    changes: vec![]
                }
            ]
        );
        assert!(
            decode("add a.test. 1 1 00\n")
                .unwrap_err()
                .contains("line 1: a change before any serial")
        );
        assert!(
            decode("serial 1\nrr a.test. 1 zz\n")
                .unwrap_err()
                .contains("line 2: data is hex")
        );
        assert!(decode("serial x\n").unwrap_err().contains("line 1"));
        assert!(decode("serial 1\nput a.test.\n").unwrap_err().contains("not a line"));
    }
}
