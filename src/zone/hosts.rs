//! `/etc/hosts`-style data: names to A/AAAA, and PTR records synthesised for the addresses
//! (unless `no_reverse`), as CoreDNS' hosts plugin serves them.
//!
//! Each zone of a hosts table is a real zone: its apex has the synthesised SOA and an NS
//! (`ns.dns.<zone>`, the name the SOA already uses), so a parent can delegate to it, and
//! the names above entries (`office.lan` when only `host.office.lan` exists) are empty
//! non-terminals, NODATA rather than NXDOMAIN (RFC 4592 §2.2.2, RFC 8020 §2). CoreDNS
//! answers both NXDOMAIN; ringdns corrects that (README).

use std::net::IpAddr;

use bytes::Bytes;
use domain::base::Name;
use domain::base::iana::Rtype;

use super::name::NameMap;
use super::name::{NameKey, is_in_zone, parse_abs};
use super::rrset::{Rrset, RrsetBuf};

/// A hosts table, ready to answer from.
#[derive(Debug)]
pub struct Hosts {
    forward: NameMap<HostNode>,
    reverse: NameMap<RrsetBuf>,
    /// The zones' apexes with their synthesised SOA (also for negative answers, RFC 2308
    /// §3) and NS.
    origins: Vec<Origin>,
    /// Names that own nothing but have entries below them, inside a zone.
    empty_non_terminals: NameMap<()>,
    ttl: u32,
    entries: usize,
}

/// The addresses of one name.
#[derive(Debug, Default)]
pub struct HostNode {
    /// IPv4 addresses.
    pub a: Option<RrsetBuf>,
    /// IPv6 addresses.
    pub aaaa: Option<RrsetBuf>,
}

impl HostNode {
    /// The RRset of `rtype` (A or AAAA).
    pub fn rrset(&self, rtype: Rtype) -> Option<Rrset<'_>> {
        match rtype {
            Rtype::A => self.a.as_ref().map(RrsetBuf::get),
            Rtype::AAAA => self.aaaa.as_ref().map(RrsetBuf::get),
            _ => None,
        }
    }
}

/// A zone of a hosts table.
#[derive(Debug)]
struct Origin {
    name: Box<[u8]>,
    soa: RrsetBuf,
    ns: RrsetBuf,
}

/// A problem with one hosts line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct HostsLineError(pub String);

/// Collects entries, then builds a [`Hosts`].
#[derive(Default)]
pub struct HostsBuilder {
    v4: std::collections::HashMap<Box<[u8]>, Vec<[u8; 4]>>,
    v6: std::collections::HashMap<Box<[u8]>, Vec<[u8; 16]>>,
    ptr: std::collections::HashMap<Box<[u8]>, Vec<Box<[u8]>>>,
    entries: usize,
    /// Lines of the file that were not entries, skipped.
    pub skipped: usize,
}

impl HostsBuilder {
    /// Adds one entry: an address and its names. Errors say what is wrong with the line.
    pub fn add_entry(&mut self, fields: &[&str], reverse: bool) -> Result<(), HostsLineError> {
        let (addr, names) = fields
            .split_first()
            .ok_or_else(|| HostsLineError("empty hosts entry".into()))?;
        // An IPv6 zone index (fe80::1%eth0) is dropped, as CoreDNS does.
        let addr_text = addr.split('%').next().unwrap_or(addr);
        let ip: IpAddr = addr_text
            .parse()
            .map_err(|_| HostsLineError(format!("{addr:?} is not an IP address")))?;
        if names.is_empty() {
            return Err(HostsLineError(format!("no names after {addr}")));
        }
        let mut parsed = Vec::with_capacity(names.len());
        for n in names {
            let name = parse_abs(n).map_err(HostsLineError)?;
            parsed.push(name);
        }
        for name in &parsed {
            let key: Box<[u8]> = NameKey::of(name).as_slice().into();
            match ip {
                IpAddr::V4(a) => push_unique(self.v4.entry(key).or_default(), a.octets()),
                IpAddr::V6(a) => push_unique(self.v6.entry(key).or_default(), a.octets()),
            }
            self.entries += 1;
            if reverse {
                let rev = NameKey::of(&reverse_name(ip));
                let wire: Box<[u8]> = NameKey::of(name).as_slice().into();
                push_unique(self.ptr.entry(rev.as_slice().into()).or_default(), wire);
            }
        }
        Ok(())
    }

    /// Adds the entries of a hosts file; bad lines are skipped (counted in `skipped`).
    pub fn add_text(&mut self, text: &str, reverse: bool) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.is_empty() {
                continue;
            }
            if self.add_entry(&fields, reverse).is_err() {
                self.skipped += 1;
            }
        }
    }

    /// Builds the table for `origins` with record TTL `ttl`.
    pub fn build(self, origins: &[Name<Bytes>], ttl: u32) -> Hosts {
        let mut forward: NameMap<HostNode> = NameMap::default();
        for (k, addrs) in self.v4 {
            forward.entry((*k).into()).or_default().a =
                Some(RrsetBuf::new(Rtype::A, ttl, addrs.iter().map(|a| &a[..])));
        }
        for (k, addrs) in self.v6 {
            forward.entry((*k).into()).or_default().aaaa =
                Some(RrsetBuf::new(Rtype::AAAA, ttl, addrs.iter().map(|a| &a[..])));
        }
        let mut reverse: NameMap<RrsetBuf> = NameMap::default();
        for (k, names) in self.ptr {
            reverse.insert(
                (*k).into(),
                RrsetBuf::new(Rtype::PTR, ttl, names.iter().map(|n| &n[..])),
            );
        }
        let serial = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        let origins: Vec<Origin> = origins
            .iter()
            .map(|o| {
                let name: Box<[u8]> = NameKey::of(o).as_slice().into();
                let ns_name = [&b"\x02ns\x03dns"[..], &name].concat();
                Origin {
                    soa: RrsetBuf::new(Rtype::SOA, ttl, [&synth_soa_rdata(&name, serial, ttl)[..]]),
                    ns: RrsetBuf::new(Rtype::NS, ttl, [&ns_name[..]]),
                    name,
                }
            })
            .collect();
        let mut empty_non_terminals: NameMap<()> = NameMap::default();
        for owner in forward.keys().chain(reverse.keys()) {
            let mut name: &[u8] = owner;
            // Each ancestor up to (not including) the apex of the zone the name is in.
            while let Some(&len) = name.first().filter(|&&l| l != 0) {
                name = &name[1 + usize::from(len)..];
                let inside = origins.iter().any(|o| is_in_zone(name, &o.name) && *o.name != *name);
                if !inside {
                    break;
                }
                if !forward.contains_key(name) && !reverse.contains_key(name) {
                    empty_non_terminals.insert(name.into(), ());
                }
            }
        }
        Hosts {
            forward,
            reverse,
            origins,
            empty_non_terminals,
            ttl,
            entries: self.entries,
        }
    }
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// `ns.dns.<origin> hostmaster.ns.dns.<origin> serial 7200 1800 86400 ttl`, the SOA CoreDNS
/// synthesises for zones without one.
fn synth_soa_rdata(origin: &[u8], serial: u32, minimum: u32) -> Vec<u8> {
    let mut rd = Vec::with_capacity(2 * origin.len() + 40);
    rd.extend_from_slice(b"\x02ns\x03dns");
    rd.extend_from_slice(origin);
    rd.extend_from_slice(b"\x0ahostmaster\x02ns\x03dns");
    rd.extend_from_slice(origin);
    for v in [serial, 7200, 1800, 86400, minimum] {
        rd.extend_from_slice(&v.to_be_bytes());
    }
    rd
}

/// The in-addr.arpa / ip6.arpa name of an address.
pub fn reverse_name(ip: IpAddr) -> Name<Bytes> {
    let text = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s = String::with_capacity(73);
            for b in a.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xF, b >> 4));
            }
            s.push_str("ip6.arpa.");
            s
        }
    };
    // The text is built from digits and fixed labels, so it is a valid name.
    parse_abs(&text).unwrap_or_else(|_| Name::root_bytes())
}

impl Hosts {
    /// Reads the configured file (if present) and inline entries.
    pub fn load(cfg: &crate::config::HostsConfig) -> Result<Hosts, crate::config::ConfigError> {
        let mut b = HostsBuilder::default();
        for (pos, fields) in &cfg.inline {
            let f: Vec<&str> = fields.iter().map(String::as_str).collect();
            b.add_entry(&f, !cfg.no_reverse)
                .map_err(|e| crate::config::ConfigError::at(pos, format!("bad hosts entry: {e}")))?;
        }
        match std::fs::read_to_string(&cfg.file) {
            Ok(text) => b.add_text(&text, !cfg.no_reverse),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if cfg.file_explicit {
                    tracing::warn!(file = %cfg.file.display(), "hosts file does not exist; serving inline entries only");
                }
            }
            Err(e) => return Err(crate::config::ConfigError::io(&cfg.file, e)),
        }
        if b.skipped > 0 {
            tracing::warn!(file = %cfg.file.display(), lines = b.skipped, "hosts lines that are not \"IP NAME...\" were skipped");
        }
        Ok(b.build(&cfg.zones, cfg.ttl))
    }

    /// The addresses of a name.
    pub fn forward(&self, key: &[u8]) -> Option<&HostNode> {
        self.forward.get(key)
    }

    /// The PTR RRset of a reverse name.
    pub fn reverse(&self, key: &[u8]) -> Option<Rrset<'_>> {
        self.reverse.get(key).map(RrsetBuf::get)
    }

    /// The origin containing `key` (longest match) and its synthesised SOA.
    pub fn origin_of(&self, key: &[u8]) -> Option<(&[u8], Rrset<'_>)> {
        self.origins
            .iter()
            .filter(|o| is_in_zone(key, &o.name))
            .max_by_key(|o| o.name.len())
            .map(|o| (&*o.name, o.soa.get()))
    }

    /// The SOA and NS of the zone whose apex is `key`.
    pub fn apex(&self, key: &[u8]) -> Option<(Rrset<'_>, Rrset<'_>)> {
        self.origins
            .iter()
            .find(|o| *o.name == *key)
            .map(|o| (o.soa.get(), o.ns.get()))
    }

    /// Whether `key` owns nothing but has entries below it, inside a zone of the table.
    pub fn is_empty_non_terminal(&self, key: &[u8]) -> bool {
        self.empty_non_terminals.contains_key(key)
    }

    /// The TTL of every record and of negative answers.
    pub fn ttl(&self) -> u32 {
        self.ttl
    }

    /// Number of (address, name) entries.
    pub fn entry_count(&self) -> usize {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_reverse_and_soa() {
        let mut b = HostsBuilder::default();
        b.add_text("# comment\n192.0.2.10 Host.example.test alias.example.test\n2001:db8::1 host.example.test\nbogus line here\n\n", true);
        assert_eq!(b.skipped, 1);
        let h = b.build(&[parse_abs("example.test").unwrap()], 60);
        let k = NameKey::of(&parse_abs("host.example.test").unwrap());
        let node = h.forward(k.as_slice()).unwrap();
        assert_eq!(node.rrset(Rtype::A).unwrap().rdatas().next().unwrap(), &[192, 0, 2, 10]);
        assert_eq!(node.rrset(Rtype::AAAA).unwrap().len(), 1);
        let rev = NameKey::of(&reverse_name("192.0.2.10".parse().unwrap()));
        assert_eq!(h.reverse(rev.as_slice()).unwrap().len(), 2);
        let rev6 = reverse_name("2001:db8::1".parse().unwrap());
        assert_eq!(
            rev6.to_string(),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
        let (origin, soa) = h.origin_of(k.as_slice()).unwrap();
        assert_eq!(origin, NameKey::of(&parse_abs("example.test").unwrap()).as_slice());
        assert_eq!(
            crate::zone::store::soa_fields(soa.rdatas().next().unwrap()).unwrap().1,
            60
        );
    }

    #[test]
    fn bad_entries_are_explained() {
        let mut b = HostsBuilder::default();
        assert!(
            b.add_entry(&["300.1.1.1", "x"], true)
                .unwrap_err()
                .0
                .contains("not an IP")
        );
        assert!(b.add_entry(&["192.0.2.1"], true).unwrap_err().0.contains("no names"));
        assert!(b.add_entry(&["fe80::1%eth0", "ll.test"], false).is_ok());
    }
}
