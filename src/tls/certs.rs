//! Certificate chains and keys from PEM, checked to match, ready for rustls.

use std::path::Path;
use std::sync::Arc;

use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Why a certificate could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM did not hold what was expected.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What is wrong.
        what: String,
    },
    /// rustls refused the pair (unsupported key, or a key that does not match the certificate).
    #[error("{cert} with {key}: {source}")]
    Pair {
        /// Certificate file.
        cert: String,
        /// Key file.
        key: String,
        /// Why.
        source: rustls::Error,
    },
}

/// The crypto provider of the whole process (aws-lc-rs).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The PEM text of a certificate pair as read from its two files.
pub struct PairPem {
    /// The chain file's content.
    pub cert: Vec<u8>,
    /// The key file's content.
    pub key: Vec<u8>,
}

impl PairPem {
    /// Reads both files.
    pub fn read(cert: &Path, key: &Path) -> Result<PairPem, CertError> {
        Ok(PairPem {
            cert: read(cert)?,
            key: read(key)?,
        })
    }

    /// A digest of both contents: a new version of either file changes it, whatever its size
    /// and timestamps (a pair copied in with `cp -p` keeps both).
    pub fn digest(&self) -> u64 {
        digest(&[&self.cert, &self.key])
    }

    /// The pair, checked to match; the paths are for messages.
    pub fn pair(&self, cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
        pair_from_pem(
            &self.cert,
            &self.key,
            &cert.display().to_string(),
            &key.display().to_string(),
        )
    }
}

/// A digest of file contents, to tell versions of TLS files apart by what they hold (SipHash
/// with fixed keys: the same content gives the same digest for the whole run).
pub fn digest(contents: &[&[u8]]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    contents.hash(&mut h);
    h.finish()
}

/// Reads a PEM chain (leaf first) and a PEM private key and checks they belong together.
pub fn load_pair(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, CertError> {
    PairPem::read(cert, key)?.pair(cert, key)
}

/// As [`load_pair`], from PEM bytes; the names are for messages.
pub fn pair_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<Arc<CertifiedKey>, CertError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| CertError::Pem {
            path: cert_name.into(),
            what: format!("not a PEM certificate chain: {e}"),
        })?;
    if chain.is_empty() {
        return Err(CertError::Pem {
            path: cert_name.into(),
            what: "no CERTIFICATE block".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| CertError::Pem {
        path: key_name.into(),
        what: format!("no usable private key: {e}"),
    })?;
    CertifiedKey::from_der(chain, key, &provider())
        .map(Arc::new)
        .map_err(|source| CertError::Pair {
            cert: cert_name.into(),
            key: key_name.into(),
            source,
        })
}

fn read(path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Whether the leaf certificate is valid for the host name `sni`.
pub fn covers(ck: &CertifiedKey, sni: &str) -> bool {
    let Some(leaf) = ck.cert.first() else {
        return false;
    };
    let Ok(cert) = webpki::EndEntityCert::try_from(leaf) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(sni) else {
        return false;
    };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}
