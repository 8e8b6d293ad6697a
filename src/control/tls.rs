//! The TLS side of each `tls://` and `https://` listener: a certificate resolver that outlives reloads (so
//! session state and the swap point stay put) and the rustls configuration built on it.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::ServerConfig;

use super::data::DataSet;
use crate::config::{Config, TlsConfig, Transport};
use crate::dns::pipeline::ListenerKey;
use crate::tls::resolver::{CertResolver, CertSet};
use crate::tls::server;

/// ACME certificates being served, by unit id.
pub type AcmeCerts = HashMap<String, Arc<rustls::sign::CertifiedKey>>;

/// One TLS listener's resolver and configuration.
pub struct TlsListener {
    /// Swapped on every certificate change.
    pub resolver: Arc<CertResolver>,
    /// Handed to the shards through the snapshot.
    pub config: Arc<ServerConfig>,
}

/// The TLS listeners of the running configuration.
#[derive(Default)]
pub struct TlsListeners {
    map: HashMap<ListenerKey, TlsListener>,
}

impl TlsListeners {
    /// The configuration of a listener, if it is a TLS one.
    pub fn config(&self, key: &ListenerKey) -> Option<Arc<ServerConfig>> {
        self.map.get(key).map(|l| l.config.clone())
    }

    /// Makes the listeners match `cfg` and gives each the current certificates of the blocks
    /// it serves (in Corefile order: the first is the default for clients without SNI).
    pub fn sync(
        &mut self,
        cfg: &Config,
        data: &DataSet,
        acme: &AcmeCerts,
        listeners: &[ListenerKey],
    ) -> Result<(), rustls::Error> {
        let mut next = HashMap::new();
        for key in listeners.iter().filter(|k| k.transport.is_encrypted()) {
            let listener = match self.map.remove(key) {
                Some(l) => l,
                None => {
                    let resolver = Arc::new(CertResolver::default());
                    let config = match key.transport {
                        Transport::Https => server::doh(resolver.clone())?,
                        _ => server::dot(resolver.clone())?,
                    };
                    TlsListener { resolver, config }
                }
            };
            listener.resolver.store(CertSet::new(certs_for(cfg, data, acme, key)));
            next.insert(*key, listener);
        }
        self.map = next;
        Ok(())
    }
}

/// The certificates of the blocks that a listener serves.
fn certs_for(
    cfg: &Config,
    data: &DataSet,
    acme: &AcmeCerts,
    key: &ListenerKey,
) -> Vec<Arc<rustls::sign::CertifiedKey>> {
    let mut out = Vec::new();
    for b in &cfg.blocks {
        let on_port = b
            .keys
            .iter()
            .any(|k| k.scheme == key.transport.scheme() && k.port == key.addr.port());
        let addrs = b.addrs();
        let on_addr = addrs
            .iter()
            .any(|a| *a == key.addr.ip() || (a.is_unspecified() && a.is_ipv4() == key.addr.is_ipv4()));
        if !(on_port && on_addr) {
            continue;
        }
        let pair = match &b.tls {
            Some(TlsConfig::Files { cert, key: k, .. }) => data.cert(cert, k),
            Some(TlsConfig::Acme(a)) => acme.get(&crate::acme::unit_of(a).id).cloned(),
            None => None,
        };
        if let Some(pair) = pair {
            if !out.iter().any(|p| Arc::ptr_eq(p, &pair)) {
                out.push(pair);
            }
        }
    }
    out
}
