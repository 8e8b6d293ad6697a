//! Helpers shared by the integration suites: building queries byte by byte and reading
//! replies with domain's parser.
#![allow(dead_code)]

pub mod acme_stub;
pub mod dnssec;
pub mod doh;
pub mod knot;
pub mod pebble;
pub mod server;
pub mod tls;
pub mod upstream;

use std::str::FromStr;

use domain::base::iana::{Class, Rtype};
use domain::base::{Message, Name, ParsedName};
use domain::rdata::AllRecordData;

/// Waits up to `secs` for `check` to hold (polling every 100 ms); whether it did.
pub fn eventually(secs: u64, mut check: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    check()
}

/// kdig with `args`: its output and its errors.
pub fn kdig(args: &[&str]) -> String {
    let out = std::process::Command::new("kdig")
        .args(args)
        .output()
        .expect("kdig (test.sh installs knot-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The records of kdig's output, one per line with single spaces, without comments and
/// TSIGs.
pub fn kdig_records(out: &str) -> Vec<String> {
    out.lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty() && !l.contains("\tTSIG\t"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

/// `GET url` with curl: (status, body); status 0 when nothing answered.
pub fn http_get(url: &str) -> (u16, String) {
    let out = std::process::Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", url])
        .output()
        .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// kdig to 127.0.0.1:`port` over `mode` (`+tls`, `+https`, `+https-get`), checking the
/// certificate against `ca` and `hostname`; returns stdout and stderr.
pub fn kdig_encrypted(port: u16, mode: &str, ca: &std::path::Path, hostname: &str, query: &[&str]) -> (String, String) {
    let out = std::process::Command::new("kdig")
        .args(["@127.0.0.1", "-p", &port.to_string(), mode])
        .arg(format!("+tls-hostname={hostname}"))
        .arg(format!("+tls-ca={}", ca.display()))
        .arg("+time=3")
        .args(query)
        .output()
        .expect("kdig (test.sh installs knot-dnsutils)");
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// A query under construction.
#[derive(Clone, Debug)]
pub struct Query {
    pub id: u16,
    pub name: String,
    pub qtype: u16,
    pub qclass: u16,
    pub opcode: u8,
    /// Second header octet's low bits besides opcode: RD etc. (byte 2) and byte 3 flags.
    pub rd: bool,
    pub extra_flags2: u8,
    pub extra_flags3: u8,
    pub edns: Option<Edns>,
}

#[derive(Clone, Debug)]
pub struct Edns {
    pub udp: u16,
    pub version: u8,
    pub flags: u16,
    pub options: Vec<(u16, Vec<u8>)>,
}

pub fn q(name: &str, qtype: Rtype) -> Query {
    Query {
        id: 0x4242,
        name: name.to_string(),
        qtype: qtype.to_int(),
        qclass: 1,
        opcode: 0,
        rd: true,
        extra_flags2: 0,
        extra_flags3: 0,
        edns: None,
    }
}

impl Query {
    pub fn id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }
    pub fn qtype_raw(mut self, t: u16) -> Self {
        self.qtype = t;
        self
    }
    pub fn class(mut self, c: u16) -> Self {
        self.qclass = c;
        self
    }
    pub fn opcode(mut self, o: u8) -> Self {
        self.opcode = o;
        self
    }
    pub fn edns(mut self, udp: u16) -> Self {
        self.edns = Some(Edns {
            udp,
            version: 0,
            flags: 0,
            options: Vec::new(),
        });
        self
    }
    pub fn edns_version(mut self, v: u8) -> Self {
        self.edns.as_mut().expect("edns first").version = v;
        self
    }
    pub fn edns_flags(mut self, f: u16) -> Self {
        self.edns.as_mut().expect("edns first").flags = f;
        self
    }
    pub fn dnssec_ok(self) -> Self {
        let f = self.edns.as_ref().expect("edns first").flags;
        self.edns_flags(f | 0x8000)
    }
    pub fn option(mut self, code: u16, data: &[u8]) -> Self {
        self.edns
            .as_mut()
            .expect("edns first")
            .options
            .push((code, data.to_vec()));
        self
    }
    /// Sets bits in header byte 2 (QR/opcode/AA/TC/RD) and byte 3 (RA/Z/AD/CD/rcode).
    pub fn header_bits(mut self, b2: u8, b3: u8) -> Self {
        self.extra_flags2 = b2;
        self.extra_flags3 = b3;
        self
    }

    pub fn wire(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(64);
        m.extend_from_slice(&self.id.to_be_bytes());
        m.push((self.opcode << 3) | u8::from(self.rd) | self.extra_flags2);
        m.push(self.extra_flags3);
        m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(self.edns.is_some())]);
        m.extend_from_slice(&name_wire(&self.name));
        m.extend_from_slice(&self.qtype.to_be_bytes());
        m.extend_from_slice(&self.qclass.to_be_bytes());
        if let Some(e) = &self.edns {
            m.push(0);
            m.extend_from_slice(&41u16.to_be_bytes());
            m.extend_from_slice(&e.udp.to_be_bytes());
            m.push(0);
            m.push(e.version);
            m.extend_from_slice(&e.flags.to_be_bytes());
            let opts: Vec<u8> = e
                .options
                .iter()
                .flat_map(|(c, d)| {
                    let mut o = c.to_be_bytes().to_vec();
                    o.extend_from_slice(&(d.len() as u16).to_be_bytes());
                    o.extend_from_slice(d);
                    o
                })
                .collect();
            m.extend_from_slice(&(opts.len() as u16).to_be_bytes());
            m.extend_from_slice(&opts);
        }
        m
    }
}

/// Uncompressed wire form of a name, case kept.
pub fn name_wire(name: &str) -> Vec<u8> {
    if name == "." {
        return vec![0];
    }
    let n = Name::<Vec<u8>>::from_str(name.trim_end_matches('.')).expect("valid name");
    n.as_slice().to_vec()
}

/// EDNS options as (code, data).
pub type EdnsOptions = Vec<(u16, Vec<u8>)>;
/// (payload, version, DO, options) of an OPT record.
pub type OptSummary = (u16, u8, bool, EdnsOptions);

/// A parsed reply.
pub struct Reply {
    pub wire: Vec<u8>,
    pub msg: Message<Vec<u8>>,
}

/// A record in presentation form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    pub owner: String,
    pub rtype: Rtype,
    pub ttl: u32,
    pub data: String,
}

impl Reply {
    pub fn parse(wire: &[u8]) -> Reply {
        let msg = Message::from_octets(wire.to_vec()).expect("reply has a header");
        Reply {
            wire: wire.to_vec(),
            msg,
        }
    }
    pub fn id(&self) -> u16 {
        self.msg.header().id()
    }
    /// Header rcode combined with the OPT extended rcode.
    pub fn rcode(&self) -> u16 {
        self.msg.opt_rcode().to_int()
    }
    pub fn aa(&self) -> bool {
        self.msg.header().aa()
    }
    pub fn tc(&self) -> bool {
        self.msg.header().tc()
    }
    pub fn qr(&self) -> bool {
        self.msg.header().qr()
    }
    pub fn section(&self, which: usize) -> Vec<Rr> {
        let sec = match which {
            0 => self.msg.answer().expect("answer"),
            1 => self.msg.authority().expect("authority"),
            _ => self.msg.additional().expect("additional"),
        };
        sec.map(|r| r.expect("record parses"))
            .filter(|r| r.rtype() != Rtype::OPT)
            .map(|r| {
                let rec = r
                    .into_record::<AllRecordData<_, ParsedName<_>>>()
                    .expect("rdata parses")
                    .expect("known type");
                Rr {
                    owner: format!("{}", rec.owner()),
                    rtype: rec.rtype(),
                    ttl: rec.ttl().as_secs(),
                    data: format!("{}", rec.data()),
                }
            })
            .collect()
    }
    pub fn answer(&self) -> Vec<Rr> {
        self.section(0)
    }
    pub fn authority(&self) -> Vec<Rr> {
        self.section(1)
    }
    pub fn additional(&self) -> Vec<Rr> {
        self.section(2)
    }
    /// (payload, version, DO, options) of the OPT record.
    pub fn opt(&self) -> Option<OptSummary> {
        let (class, ttl, rdata) = self.raw_opt()?;
        Some((class, (ttl >> 16) as u8, ttl & 0x8000 != 0, raw_options(&rdata)))
    }
    /// The raw OPT TTL flags field (16 bits).
    pub fn opt_flags_raw(&self) -> Option<u16> {
        self.raw_opt().map(|(_, ttl, _)| (ttl & 0xFFFF) as u16)
    }
    /// (class, ttl, rdata) of the OPT record, read from the wire.
    fn raw_opt(&self) -> Option<(u16, u32, Vec<u8>)> {
        use domain::dep::octseq::Parser;
        let w = &self.wire;
        let counts: Vec<u16> = (0..4)
            .map(|i| u16::from_be_bytes([w[4 + 2 * i], w[5 + 2 * i]]))
            .collect();
        let mut p = Parser::from_ref(w.as_slice());
        p.advance(12).ok()?;
        for _ in 0..counts[0] {
            ParsedName::skip(&mut p).ok()?;
            p.advance(4).ok()?;
        }
        for i in 0..(counts[1] as u32 + counts[2] as u32 + counts[3] as u32) {
            ParsedName::skip(&mut p).ok()?;
            let rtype = p.parse_u16_be().ok()?;
            let class = p.parse_u16_be().ok()?;
            let ttl = p.parse_u32_be().ok()?;
            let len = p.parse_u16_be().ok()? as usize;
            let data = p.peek(len).ok()?.to_vec();
            p.advance(len).ok()?;
            if rtype == 41 && i >= counts[1] as u32 + counts[2] as u32 {
                return Some((class, ttl, data));
            }
        }
        None
    }
    /// The question name exactly as it appears in the reply's wire form.
    pub fn question_wire(&self) -> Vec<u8> {
        let q = self.msg.first_question().expect("a question");
        let mut out = Vec::new();
        for l in q.qname().iter() {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_slice());
        }
        out
    }
    pub fn qdcount(&self) -> u16 {
        self.msg.header_counts().qdcount()
    }
    pub fn qclass(&self) -> Class {
        self.msg.first_question().expect("a question").qclass()
    }
}

fn raw_options(rdata: &[u8]) -> EdnsOptions {
    let mut out = Vec::new();
    let mut rest = rdata;
    while rest.len() >= 4 {
        let code = u16::from_be_bytes([rest[0], rest[1]]);
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        out.push((code, rest[4..4 + len].to_vec()));
        rest = &rest[4 + len..];
    }
    out
}

/// Path of a file in tests/data.
pub fn data(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The header flags of dig's (or kdig's) output, such as ` qr aa rd` (so that a check for
/// ` aa` is not fooled by a cookie's hex elsewhere in the output).
pub fn dig_flags(out: &str) -> &str {
    // dig writes `flags:`, kdig `Flags:`.
    out.lines()
        .find_map(|l| l.to_ascii_lowercase().find("flags:").map(|i| &l[i + "flags:".len()..]))
        .map_or("", |rest| rest.split(';').next().unwrap_or(""))
}
