//! The `log` directive: one line per query in CoreDNS' format, rate-limited per shard so a
//! flood cannot turn into a logging storm (lines beyond the limit are counted, not written).

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use domain::base::iana::{Class, Rcode, Rtype};
use domain::base::name::ParsedName;
use domain::dep::octseq::Parser;

use crate::config::LogRule;
use crate::dns::request;
use crate::zone::name::{NameKey, is_in_zone};

/// Query log lines per second per shard before sampling starts.
pub const LINES_PER_SECOND: f64 = 1000.0;

/// Token bucket of one shard.
pub struct Limiter {
    tokens: f64,
    last: Instant,
    suppressed: u64,
    last_report: Instant,
}

impl Default for Limiter {
    fn default() -> Self {
        let now = Instant::now();
        Limiter {
            tokens: LINES_PER_SECOND,
            last: now,
            suppressed: 0,
            last_report: now,
        }
    }
}

impl Limiter {
    /// Whether one more line may be written now.
    pub fn admit(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * LINES_PER_SECOND).min(LINES_PER_SECOND);
        if now.saturating_duration_since(self.last_report) >= Duration::from_secs(10) && self.suppressed > 0 {
            tracing::warn!(
                suppressed = self.suppressed,
                "query log sampled: lines over {LINES_PER_SECOND}/s per shard were not written"
            );
            self.suppressed = 0;
            self.last_report = now;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }
}

/// One answered query, as the log needs it.
pub struct Entry<'a> {
    /// Client address.
    pub remote: SocketAddr,
    /// "udp" or "tcp".
    pub proto: &'static str,
    /// The query bytes.
    pub query: &'a [u8],
    /// The reply bytes.
    pub reply: &'a [u8],
    /// Full response code.
    pub rcode: u16,
    /// Time spent answering.
    pub duration: Duration,
}

struct Parsed<'a> {
    name: Option<ParsedName<&'a [u8]>>,
    qtype: Rtype,
    qclass: Class,
    opt: Option<(u16, bool)>,
}

fn parse_question(q: &[u8]) -> Parsed<'_> {
    let mut scratch = NameKey::EMPTY;
    let req = match request::parse(q, &mut scratch) {
        request::Parsed::Query(r) | request::Parsed::Error(r, _) => Some(r),
        request::Parsed::Drop(_) => None,
    };
    let question = req.and_then(|r| r.question);
    // The request borrows the scratch key; the name is read again straight from the wire.
    let name = question.and_then(|_| {
        let mut p = Parser::from_ref(q);
        p.advance(request::HEADER_LEN).ok()?;
        ParsedName::parse_ref(&mut p).ok()
    });
    Parsed {
        name,
        qtype: question.map(|q| q.qtype).unwrap_or(Rtype::from_int(0)),
        qclass: question.map(|q| q.qclass).unwrap_or(Class::from_int(0)),
        opt: req.and_then(|r| r.edns).map(|e| (e.udp_size, e.dnssec_ok)),
    }
}

/// `NAME TYPE CLASS` of a query, for error lines.
pub fn describe_question(query: &[u8]) -> String {
    let p = parse_question(query);
    match p.name {
        Some(n) => format!("{n}. {} {}", p.qtype, p.qclass),
        None => "(no question)".into(),
    }
}

/// Whether `rule` wants this entry.
fn wanted(rule: &LogRule, name: &[u8], reply: &[u8], rcode: u16) -> bool {
    if !rule.names.iter().any(|n| is_in_zone(name, NameKey::of(n).as_slice())) {
        return false;
    }
    let answers = reply.get(6..8).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
    let c = rule.classes;
    match Rcode::masked_from_int(rcode as u8) {
        _ if rcode > 15 => c.error,
        Rcode::NOERROR if answers > 0 => c.success,
        Rcode::NOERROR | Rcode::NXDOMAIN => c.denial,
        _ => c.error,
    }
}

/// Writes the entry for every rule that wants it.
pub fn log(rules: &[LogRule], e: &Entry<'_>, limiter: &mut Limiter) {
    let p = parse_question(e.query);
    let key = p.name.as_ref().map(NameKey::of);
    let key_slice: &[u8] = key.as_ref().map(|k| k.as_slice()).unwrap_or(&[0]);
    for rule in rules.iter().filter(|r| wanted(r, key_slice, e.reply, e.rcode)) {
        if !limiter.admit(Instant::now()) {
            return;
        }
        tracing::info!(target: "ringdns::query", "{}", format_line(&rule.format, e, &p));
    }
}

fn format_line(format: &str, e: &Entry<'_>, p: &Parsed<'_>) -> String {
    let mut out = String::with_capacity(160);
    let mut rest = format;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let ph = &rest[start + 1..start + end];
        let id = u16::from_be_bytes([
            e.query.first().copied().unwrap_or(0),
            e.query.get(1).copied().unwrap_or(0),
        ]);
        let _ = match ph {
            "remote" => write!(out, "{}", e.remote.ip()),
            "port" => write!(out, "{}", e.remote.port()),
            ">id" => write!(out, "{id}"),
            "type" => write!(out, "{}", p.qtype),
            "class" => write!(out, "{}", p.qclass),
            "name" => match &p.name {
                Some(n) if n.is_root() => write!(out, "."),
                Some(n) => write!(out, "{n}."),
                None => write!(out, "-"),
            },
            "proto" => write!(out, "{}", e.proto),
            "size" => write!(out, "{}", e.query.len()),
            ">do" => write!(out, "{}", p.opt.is_some_and(|o| o.1)),
            ">bufsize" => write!(out, "{}", p.opt.map(|o| o.0).unwrap_or(512)),
            "rcode" => write!(out, "{}", rcode_name(e.rcode)),
            ">rflags" => write!(out, "{}", flags(e.reply)),
            "rsize" => write!(out, "{}", e.reply.len()),
            "duration" => write!(out, "{:.9}s", e.duration.as_secs_f64()),
            ">opcode" => write!(out, "{}", (e.query.get(2).copied().unwrap_or(0) >> 3) & 0xF),
            other => write!(out, "{{{other}}}"),
        };
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    out
}

fn rcode_name(rcode: u16) -> String {
    match rcode {
        16 => "BADVERS".into(),
        r if r < 16 => Rcode::masked_from_int(r as u8).to_string(),
        r => r.to_string(),
    }
}

fn flags(reply: &[u8]) -> String {
    let (b2, b3) = (reply.get(2).copied().unwrap_or(0), reply.get(3).copied().unwrap_or(0));
    let names = [
        (b2 & 0x80, "qr"),
        (b2 & 0x04, "aa"),
        (b2 & 0x02, "tc"),
        (b2 & 0x01, "rd"),
        (b3 & 0x80, "ra"),
        (b3 & 0x20, "ad"),
        (b3 & 0x10, "cd"),
    ];
    names
        .iter()
        .filter(|(b, _)| *b != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{COMMON_LOG_FORMAT, LogClasses};

    #[test]
    fn common_format_line() {
        let query = [
            &[0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0][..],
            b"\x03www\x07example\x04test\x00\x00\x01\x00\x01",
        ]
        .concat();
        let mut reply = query.clone();
        reply[2] = 0x85;
        reply[7] = 1;
        let e = Entry {
            remote: "127.0.0.1:5353".parse().unwrap(),
            proto: "udp",
            query: &query,
            reply: &reply,
            rcode: 0,
            duration: Duration::from_micros(15),
        };
        let line = format_line(COMMON_LOG_FORMAT, &e, &parse_question(&query));
        assert_eq!(
            line,
            "127.0.0.1:5353 - 4660 \"A IN www.example.test. udp 34 false 512\" NOERROR qr,aa,rd 34 0.000015000s"
        );
        let rule = LogRule {
            names: vec![crate::zone::name::parse_abs("example.test").unwrap()],
            format: COMMON_LOG_FORMAT.into(),
            classes: LogClasses {
                success: false,
                denial: true,
                error: true,
            },
        };
        let key = NameKey::of(&crate::zone::name::parse_abs("www.example.test").unwrap());
        assert!(!wanted(&rule, key.as_slice(), &reply, 0));
        assert!(wanted(&rule, key.as_slice(), &reply, 3));
    }

    #[test]
    fn limiter_samples_bursts() {
        let mut l = Limiter::default();
        let now = Instant::now();
        let admitted = (0..5000).filter(|_| l.admit(now)).count();
        assert_eq!(admitted, LINES_PER_SECOND as usize);
        assert!(l.admit(now + Duration::from_millis(10)));
    }
}
