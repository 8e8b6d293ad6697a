//! Server block keys: `[dns://|tls://|https://]ZONE[:PORT]`, where ZONE may be a CIDR that
//! stands for its reverse zone (`10.0.0.0/8` → `10.in-addr.arpa.`), as in CoreDNS.

use std::net::IpAddr;

use super::error::ConfigError;
use super::lexer::Token;
use super::model::{Key, Scheme};
use crate::zone::name::parse_abs;

/// Parses one key. `dns_port` is the default port of `dns://` keys (`--dns.port`).
pub fn parse_key(tok: &Token, dns_port: u16) -> Result<Key, ConfigError> {
    let text = tok.text.as_str();
    let bad = |why: String| {
        ConfigError::at(
            &tok.pos,
            format!("bad server block key {text:?}: {why} (accepted: [dns://|tls://|https://]ZONE[:PORT])"),
        )
    };
    let (scheme, rest) = match text.split_once("://") {
        None => (Scheme::Dns, text),
        Some(("dns", r)) => (Scheme::Dns, r),
        Some(("tls", r)) => (Scheme::Tls, r),
        Some(("https", r)) => (Scheme::Https, r),
        Some((s, _)) => {
            return Err(bad(format!("unknown scheme {s:?} (grpc and quic are not supported)")));
        }
    };
    // An IPv6 CIDR contains ':' itself, so there the port can only follow the '/'.
    let split_from = rest.find('/').unwrap_or(0);
    let (zone_text, port_text) = match rest[split_from..].rfind(':') {
        Some(i) => (&rest[..split_from + i], Some(&rest[split_from + i + 1..])),
        None => (rest, None),
    };
    let port = match port_text {
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(format!("port {p:?} is not a number from 1 to 65535")))?,
        None => match scheme {
            Scheme::Dns => dns_port,
            Scheme::Tls => 853,
            Scheme::Https => 443,
        },
    };
    let zone_text = if zone_text.is_empty() { "." } else { zone_text };
    // A '/' after an IP address is a CIDR; otherwise it is a character of a name, as in
    // RFC 2317's classless reverse zones (`32/27.104.21.172.in-addr.arpa`), which CoreDNS
    // takes as names too.
    let cidr = zone_text
        .split_once('/')
        .is_some_and(|(ip, _)| ip.parse::<std::net::IpAddr>().is_ok());
    let zone = if cidr {
        reverse_zone(zone_text).map_err(bad)?
    } else if zone_text == "." {
        domain::base::Name::root_bytes()
    } else {
        parse_abs(zone_text).map_err(bad)?
    };
    Ok(Key {
        scheme,
        zone,
        port,
        pos: tok.pos.clone(),
    })
}

/// The reverse zone of an octet-aligned (IPv4) or nibble-aligned (IPv6) prefix.
fn reverse_zone(cidr: &str) -> Result<domain::base::Name<bytes::Bytes>, String> {
    let (addr, len) = cidr.split_once('/').ok_or("not a CIDR")?;
    let addr: IpAddr = addr.parse().map_err(|_| format!("{addr:?} is not an IP address"))?;
    let len: u32 = len
        .parse()
        .map_err(|_| format!("prefix length {len:?} is not a number"))?;
    let text = match addr {
        IpAddr::V4(a) => {
            if len > 32 || len % 8 != 0 {
                return Err(format!("IPv4 prefix /{len} is not a multiple of 8 up to 32"));
            }
            let octets = a.octets();
            let mut labels: Vec<String> = octets[..(len / 8) as usize].iter().map(|o| o.to_string()).collect();
            labels.reverse();
            labels.push("in-addr.arpa".into());
            labels.join(".")
        }
        IpAddr::V6(a) => {
            if len > 128 || len % 4 != 0 {
                return Err(format!("IPv6 prefix /{len} is not a multiple of 4 up to 128"));
            }
            let nibbles: Vec<String> = a
                .octets()
                .iter()
                .flat_map(|o| [o >> 4, o & 0xF])
                .take((len / 4) as usize)
                .map(|n| format!("{n:x}"))
                .collect();
            let mut labels = nibbles;
            labels.reverse();
            labels.push("ip6.arpa".into());
            labels.join(".")
        }
    };
    parse_abs(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::error::Pos;
    use std::path::Path;
    use std::sync::Arc;

    fn key(text: &str) -> Result<Key, ConfigError> {
        let tok = Token {
            text: text.into(),
            pos: Pos {
                file: Arc::from(Path::new("Corefile")),
                line: 1,
                col: 1,
            },
            line_breaks: 0,
            quoted: false,
        };
        parse_key(&tok, 53)
    }

    #[test]
    fn schemes_and_default_ports() {
        let k = key("example.com").unwrap();
        assert_eq!(
            (k.scheme, k.port, k.zone.to_string()),
            (Scheme::Dns, 53, "example.com".into())
        );
        let k = key("tls://Example.com").unwrap();
        assert_eq!((k.scheme, k.port), (Scheme::Tls, 853));
        let k = key("https://.").unwrap();
        assert_eq!((k.scheme, k.port, k.zone.is_root()), (Scheme::Https, 443, true));
        let k = key("dns://.:1053").unwrap();
        assert_eq!((k.port, k.zone.is_root()), (1053, true));
        let k = key(":1053").unwrap();
        assert!(k.zone.is_root());
    }

    #[test]
    fn reverse_cidrs() {
        assert_eq!(key("10.0.0.0/8").unwrap().zone.to_string(), "10.in-addr.arpa");
        assert_eq!(key("192.168.1.0/24:1053").unwrap().port, 1053);
        assert_eq!(
            key("dns://2001:db8::/32").unwrap().zone.to_string(),
            "8.b.d.0.1.0.0.2.ip6.arpa"
        );
        assert!(key("10.0.0.0/12").is_err());
        // RFC 2317 classless names are names.
        let k = key("32/27.104.21.172.in-addr.arpa:1053").unwrap();
        assert_eq!(
            (k.zone.to_string().as_str(), k.port),
            ("32/27.104.21.172.in-addr.arpa", 1053)
        );
    }

    #[test]
    fn errors_name_position_and_form() {
        let e = key("quic://x.org").unwrap_err().to_string();
        assert!(e.starts_with("Corefile:1:1:") && e.contains("accepted"), "{e}");
        assert!(key("x.org:99999").is_err());
        assert!(key("x.org:0").is_err());
        assert!(key("x..org").is_err());
    }
}
