//! rustls server configurations: TLS 1.2 and 1.3 only (rustls has neither older versions nor
//! renegotiation), certificates from a [`CertResolver`], and the server's cipher suite order
//! (rustls' default: AES-GCM before ChaCha20, strongest first), not the client's.

use std::sync::Arc;

use rustls::ServerConfig;

use super::certs::provider;
use super::resolver::CertResolver;

/// ALPN of DNS over TLS (RFC 7858 §3.2 and the IANA registry); `h2` is never offered on DoT.
pub const ALPN_DOT: &[u8] = b"dot";

/// The configuration of a DoT listener.
pub fn dot(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = vec![ALPN_DOT.to_vec()];
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}

/// ALPN of DNS over HTTPS listeners, HTTP/2 preferred (RFC 8484 §5.2 recommends HTTP/2).
pub const ALPN_DOH: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The configuration of a DoH listener.
pub fn doh(resolver: Arc<CertResolver>) -> Result<Arc<ServerConfig>, rustls::Error> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    cfg.alpn_protocols = ALPN_DOH.iter().map(|a| a.to_vec()).collect();
    cfg.ignore_client_order = true;
    Ok(Arc::new(cfg))
}
