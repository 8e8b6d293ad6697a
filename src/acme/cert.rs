//! What ACME needs of certificates: validity and names of a leaf, fresh keys, CSRs.

use std::time::{Duration, SystemTime};

use rcgen::{CertificateParams, KeyPair};

use crate::config::KeyType;

/// The facts of a leaf certificate the scheduler uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// DNS names (SAN), lowercase.
    pub names: Vec<String>,
    /// Serial, hex.
    pub serial: String,
}

impl CertInfo {
    /// The lifetime.
    pub fn lifetime(&self) -> Duration {
        self.not_after.duration_since(self.not_before).unwrap_or(Duration::ZERO)
    }

    /// Whether the certificate covers exactly these names (order and case aside).
    pub fn covers(&self, names: &[String]) -> bool {
        let mut want: Vec<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
        want.sort();
        want.dedup();
        let mut have = self.names.clone();
        have.sort();
        have.dedup();
        want == have
    }
}

fn to_system(t: x509_parser::time::ASN1Time) -> SystemTime {
    let secs = t.timestamp();
    if secs >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs as u64)
    } else {
        SystemTime::UNIX_EPOCH
    }
}

/// Reads validity, names and serial of a DER leaf.
pub fn info(der: &[u8]) -> Result<CertInfo, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| format!("not a certificate: {e}"))?;
    let validity = cert.validity();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(d) = n {
                names.push(d.to_ascii_lowercase());
            }
        }
    }
    Ok(CertInfo {
        not_before: to_system(validity.not_before),
        not_after: to_system(validity.not_after),
        names,
        serial: cert.raw_serial_as_string().replace(':', ""),
    })
}

/// A new private key of the configured type (never the account key).
pub fn new_key(kt: KeyType) -> Result<KeyPair, rcgen::Error> {
    match kt {
        KeyType::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
        KeyType::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
        KeyType::Rsa2048 => KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048),
    }
}

/// A DER CSR with every name in the SAN extension (the CN is not used by ACME CAs).
pub fn csr_der(names: &[String], key: &KeyPair) -> Result<Vec<u8>, rcgen::Error> {
    let mut params = CertificateParams::new(names.to_vec())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(key)?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_csrs_and_info() {
        for kt in [KeyType::EcdsaP256, KeyType::EcdsaP384, KeyType::Rsa2048] {
            let key = new_key(kt).unwrap();
            let csr = csr_der(&["a.test".into(), "*.a.test".into()], &key).unwrap();
            assert!(csr.len() > 100);
        }
        let key = new_key(KeyType::EcdsaP256).unwrap();
        let cert = CertificateParams::new(vec!["B.test".to_string(), "a.test".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let i = info(cert.der()).unwrap();
        assert!(i.covers(&["a.test".into(), "b.test".into()]));
        assert!(!i.covers(&["a.test".into()]));
        assert!(i.not_after > i.not_before && i.lifetime() > Duration::from_secs(86400));
        assert!(!i.serial.is_empty());
    }
}
