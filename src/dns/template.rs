//! `template`: replies made per query from record templates, as CoreDNS's plugin makes them.
//! The templates of a block are tried in order before its data sources: one whose class,
//! type and zones fit the query and one of whose regexes matches the name answers; one that
//! fits but matches no regex answers SERVFAIL unless `fallthrough` lets the name go on.
//!
//! Rendering and parsing the records allocates, as CoreDNS's does; only queries a template
//! answers pay for it.

use std::net::SocketAddr;

use domain::base::iana::{Class, Rcode, Rtype};

use super::request::Question;
use crate::config::TemplateConfig;
use crate::config::template::{Piece, RecordTemplate};
use crate::zone::name::{NameKey, display, is_in_zone};
use crate::zone::zonefile::{ParsedRecord, parse_record};

/// A `template` at run time.
pub struct Template {
    cfg: TemplateConfig,
    zones: Vec<Box<[u8]>>,
    fallthrough: Option<Vec<Box<[u8]>>>,
}

/// What a template does with a query.
pub enum Step {
    /// Not for this template: the next template, then the data sources.
    Next,
    /// SERVFAIL (no regex matched without fallthrough, or a record did not render), why.
    Fail(String),
    /// The reply.
    Reply(Rendered),
}

/// A template's reply.
pub struct Rendered {
    /// Its rcode.
    pub rcode: Rcode,
    /// Answer, authority and additional records.
    pub sections: [Vec<ParsedRecord>; 3],
    /// Its Extended DNS Error INFO-CODE.
    pub ede: Option<u16>,
}

impl Template {
    /// The run-time form of a `template`.
    pub fn new(cfg: &TemplateConfig) -> Template {
        let wire = |z: &domain::base::Name<bytes::Bytes>| -> Box<[u8]> { NameKey::of(z).as_slice().into() };
        Template {
            zones: cfg.zones.iter().map(wire).collect(),
            fallthrough: cfg.fallthrough.as_ref().map(|zs| zs.iter().map(wire).collect()),
            cfg: cfg.clone(),
        }
    }

    /// The type this template answers at `key` when its zones hold the name (whatever its
    /// regexes say): what a signer may list as existing there. `None` for other names and
    /// for templates of every type.
    pub fn qtype_at(&self, key: &[u8]) -> Option<Rtype> {
        self.zones.iter().any(|z| is_in_zone(key, z)).then_some(self.cfg.qtype?)
    }

    /// What this template does with `q` from `client`.
    pub fn answer(&self, q: &Question<'_>, client: Option<SocketAddr>) -> Step {
        let Some(zone) = self
            .zones
            .iter()
            .filter(|z| is_in_zone(q.key, z))
            .max_by_key(|z| z.len())
        else {
            return Step::Next;
        };
        if self.cfg.class.is_some_and(|c| c != q.qclass) || self.cfg.qtype.is_some_and(|t| t != q.qtype) {
            return Step::Next;
        }
        let name = display(q.key);
        let captures = if self.cfg.matches.is_empty() {
            None
        } else {
            match self.cfg.matches.iter().find_map(|r| r.captures(&name)) {
                Some(c) => Some(c),
                None => {
                    let falls = self
                        .fallthrough
                        .as_ref()
                        .is_some_and(|zs| zs.is_empty() || zs.iter().any(|z| is_in_zone(q.key, z)));
                    return if falls {
                        Step::Next
                    } else {
                        Step::Fail(format!("template: no match for {name}"))
                    };
                }
            }
        };
        let data = Data {
            name: &name,
            zone: &display(zone),
            class: q.qclass,
            qtype: &q.qtype.to_string(),
            qtype_number: q.qtype.to_int(),
            remote: client.map(|c| c.ip().to_canonical().to_string()).unwrap_or_default(),
            captures: captures.as_ref(),
        };
        let mut sections: [Vec<ParsedRecord>; 3] = Default::default();
        for (i, list) in [&self.cfg.answer, &self.cfg.authority, &self.cfg.additional]
            .into_iter()
            .enumerate()
        {
            for t in list {
                let text = match render(t, &data) {
                    Ok(text) => text,
                    Err(e) => return Step::Fail(format!("template {:?}: {e}", t.source)),
                };
                match parse_record(&text, &domain::base::Name::root_bytes()) {
                    Ok(r) => sections[i].push(r),
                    Err(e) => return Step::Fail(format!("template: {e}")),
                }
            }
        }
        Step::Reply(Rendered {
            rcode: self.cfg.rcode,
            sections,
            ede: self.cfg.ederror.as_ref().map(|(c, _)| *c),
        })
    }
}

/// What a template may refer to.
struct Data<'a> {
    name: &'a str,
    zone: &'a str,
    class: Class,
    qtype: &'a str,
    qtype_number: u16,
    remote: String,
    captures: Option<&'a regex::Captures<'a>>,
}

fn render(t: &RecordTemplate, d: &Data<'_>) -> Result<String, String> {
    let mut out = String::new();
    for p in &t.pieces {
        piece(p, d, &mut out)?;
    }
    Ok(out)
}

fn piece(p: &Piece, d: &Data<'_>, out: &mut String) -> Result<(), String> {
    match p {
        Piece::QtypeNumber => out.push_str(&d.qtype_number.to_string()),
        Piece::QclassNumber => out.push_str(&d.class.to_int().to_string()),
        Piece::ParseInt { arg, base, bits } => {
            let mut text = String::new();
            piece(arg, d, &mut text)?;
            let v = crate::config::template::parse_uint(&text, *base, *bits)?;
            out.push_str(&v.to_string());
        }
        Piece::Literal(s) => out.push_str(s),
        Piece::Name => out.push_str(d.name),
        Piece::Zone => out.push_str(d.zone),
        Piece::Class => out.push_str(&d.class.to_string()),
        Piece::Type => out.push_str(d.qtype),
        Piece::Remote => out.push_str(&d.remote),
        Piece::Match(i) => {
            // Without a regex, the whole name is the only match (Go's `.*`).
            match d.captures {
                Some(c) => out.push_str(c.get(*i).map_or("", |m| m.as_str())),
                None if *i == 0 => out.push_str(d.name),
                None => {}
            }
        }
        Piece::Group(g) => out.push_str(d.captures.and_then(|c| c.name(g)).map_or("", |m| m.as_str())),
    }
    Ok(())
}
