//! The certificate resolver of one TLS listener: an ArcSwap'd set of certificates, chosen by
//! SNI, so a renewed certificate is used by the next handshake without rebuilding anything.

use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use super::certs::covers;

/// Certificates of a listener; the first is the default.
#[derive(Debug, Default)]
pub struct CertSet {
    certs: Vec<Arc<CertifiedKey>>,
}

impl CertSet {
    /// A set; the first certificate answers clients without SNI or with an unknown name.
    pub fn new(certs: Vec<Arc<CertifiedKey>>) -> Self {
        CertSet { certs }
    }

    /// True when there is no certificate yet (handshakes fail; never plaintext).
    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn pick(&self, sni: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let by_name = sni.and_then(|name| self.certs.iter().find(|c| covers(c, name)));
        by_name.or_else(|| self.certs.first()).cloned()
    }
}

/// Resolves the certificate for each handshake from the current set.
#[derive(Debug, Default)]
pub struct CertResolver {
    current: ArcSwap<CertSet>,
}

impl CertResolver {
    /// A resolver over `set`.
    pub fn new(set: CertSet) -> Self {
        CertResolver {
            current: ArcSwap::from_pointee(set),
        }
    }

    /// Swaps in a new set; open connections keep theirs, new handshakes get the new one.
    pub fn store(&self, set: CertSet) {
        self.current.store(Arc::new(set));
    }

    /// The current set.
    pub fn load(&self) -> Arc<CertSet> {
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load().pick(hello.server_name())
    }
}
