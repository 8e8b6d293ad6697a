//! TLS: certificates from PEM files, the per-listener certificate resolver that makes
//! renewal a pointer swap, and the rustls server configurations.

pub mod certs;
pub mod client;
pub mod resolver;
pub mod server;
