//! rustls client configurations for DoT and DoH upstreams: the system trust store, or the
//! CA file of `forward { tls ... }`, and an optional client certificate.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::certs::{CertError, load_pair, provider};

/// A client configuration offering `alpn`.
pub fn config(
    ca: Option<&Path>,
    client: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, CertError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| CertError::Pem {
            path: "TLS".into(),
            what: e.to_string(),
        })?;
    let builder = match ca {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| CertError::Pem {
                    path: path.display().to_string(),
                    what: format!("not a PEM CA file: {e}"),
                })?;
            for c in certs {
                roots.add(c).map_err(|e| CertError::Pem {
                    path: path.display().to_string(),
                    what: e.to_string(),
                })?;
            }
            builder.with_root_certificates(roots)
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt;
            builder.with_platform_verifier().map_err(|e| CertError::Pem {
                path: "system trust store".into(),
                what: e.to_string(),
            })?
        }
    };
    let mut cfg = match client {
        Some((cert, key)) => {
            // load_pair checks that the two belong together before rustls gets them.
            let pair = load_pair(cert, key)?;
            let key_der = rustls_pki_types::PrivateKeyDer::from_pem_file(key).map_err(|e| CertError::Pem {
                path: key.display().to_string(),
                what: e.to_string(),
            })?;
            builder
                .with_client_auth_cert(pair.cert.clone(), key_der)
                .map_err(|source| CertError::Pair {
                    cert: cert.display().to_string(),
                    key: key.display().to_string(),
                    source,
                })?
        }
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    Ok(Arc::new(cfg))
}
