//! `acme_dns`, a ringdns directive: the acme-dns HTTP API (joohoi/acme-dns) for other
//! servers' ACME clients, its values served as TXT records (TTL 1) of a `file` zone of the
//! block.
//!
//! ```text
//! acme_dns ZONE {
//!     listen ADDR:PORT
//!     plain
//!     proxy_header NAME CIDR...
//!     directory DIR
//!     disable_registration
//! }
//! ```
//!
//! `listen` is where the API answers, over HTTPS with the server's certificates (those of
//! its `tls` directives, by SNI), or plain HTTP with `plain` (a loopback address only).
//! `proxy_header` takes the client's address from the last entry of header NAME when the
//! connection comes from one of the CIDRs (a reverse proxy), else from the socket.
//! Registrations are kept in `DIR/<zone>.acme-dns.json` (default: the `secondary` folder).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use bytes::Bytes;
use domain::base::Name;

use super::args::{err, one_arg};
use super::error::{ConfigError, Pos};
use super::model::ServerBlock;
use super::syntax::Line;
use crate::zone::name::parse_abs;

/// One `acme_dns` directive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeDnsConfig {
    /// Where the directive is.
    pub pos: Pos,
    /// The zone the values are served in.
    pub zone: Name<Bytes>,
    /// Where the API listens.
    pub listen: SocketAddr,
    /// Plain HTTP (loopback only) instead of HTTPS.
    pub plain: bool,
    /// The header that names the client behind a trusted proxy, and the proxies.
    pub proxy: Option<(String, Vec<(IpAddr, u8)>)>,
    /// Where registrations are kept.
    pub directory: PathBuf,
    /// `/register` answers 404 (registrations are made some other way, or closed).
    pub registration: bool,
}

/// Reads an `acme_dns` line.
pub(super) fn acme_dns(block: &ServerBlock, line: &Line) -> Result<AcmeDnsConfig, ConfigError> {
    let zone_tok = one_arg(line, "the zone its values are served in")?;
    let zone = parse_abs(&zone_tok.text).map_err(|e| err(zone_tok, e))?;
    if !block.keys.iter().any(|k| zone.ends_with(&k.zone)) {
        return Err(err(
            zone_tok,
            format!(
                "acme_dns: zone {} is not inside the server block's zones",
                zone_tok.text
            ),
        ));
    }
    let (mut listen, mut plain, mut proxy, mut registration) = (None, false, None, true);
    let mut directory = crate::storage::default_zone_root();
    for o in line.block.iter().flatten() {
        match o.name.text.as_str() {
            "listen" => {
                let t = one_arg(o, "ADDR:PORT")?;
                listen = Some(
                    t.text
                        .parse::<SocketAddr>()
                        .map_err(|_| err(t, "acme_dns: listen ADDR:PORT (an IP address and a port)"))?,
                );
            }
            "plain" => plain = true,
            "disable_registration" => registration = false,
            "directory" => directory = PathBuf::from(&one_arg(o, "a folder")?.text),
            "proxy_header" => {
                let Some((name, nets)) = o.args.split_first().filter(|(_, n)| !n.is_empty()) else {
                    return Err(err(&o.name, "acme_dns: proxy_header NAME CIDR..."));
                };
                let nets = nets
                    .iter()
                    .map(|t| super::directives::net(&t.text).ok_or_else(|| err(t, "acme_dns: a proxy is IP or IP/LEN")))
                    .collect::<Result<Vec<_>, _>>()?;
                proxy = Some((name.text.clone(), nets));
            }
            other => {
                return Err(err(
                    &o.name,
                    format!(
                        "unknown acme_dns option {other:?} (accepted: listen, plain, proxy_header, directory, disable_registration)"
                    ),
                ));
            }
        }
    }
    let Some(listen) = listen else {
        return Err(err(&line.name, "acme_dns needs listen ADDR:PORT"));
    };
    if plain && !listen.ip().is_loopback() {
        return Err(err(
            &line.name,
            "acme_dns: plain HTTP only on a loopback address (passwords cross it)",
        ));
    }
    Ok(AcmeDnsConfig {
        pos: line.pos().clone(),
        zone,
        listen,
        plain,
        proxy,
        directory,
        registration,
    })
}
