//! The HTTP client of the ACME manager: rustls with the CA's own root when one is configured
//! (`cacert`/`ca_root`, every certificate of the PEM is trusted), the system's trust store
//! otherwise; and a watch on `Retry-After` (RFC 8555 §6.6), which instant-acme does not
//! surface.

use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::AcmeError;
use crate::tls::certs::provider;

type Inner = HyperClient<hyper_rustls::HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>;

/// When the CA last asked us to come back, shared by every request to it.
#[derive(Clone, Default, Debug)]
pub struct RetryAfter(Arc<Mutex<Option<SystemTime>>>);

impl RetryAfter {
    /// The time before which no request should be sent, if any.
    pub fn until(&self) -> Option<SystemTime> {
        let t = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        t.filter(|t| *t > SystemTime::now())
    }

    fn set(&self, t: SystemTime) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none_or(|old| old < t) {
            *g = Some(t);
        }
    }
}

/// The ACME HTTP client.
#[derive(Clone)]
pub struct Watched {
    inner: Inner,
    retry_after: RetryAfter,
}

impl Watched {
    /// A client trusting `cacert` (all certificates in it) or, without one, the platform's
    /// roots.
    pub fn new(cacert: Option<&Path>, retry_after: RetryAfter) -> Result<Watched, AcmeError> {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match cacert {
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                    .and_then(|it| it.collect::<Result<_, _>>())
                    .map_err(|e| AcmeError::Setup(format!("cacert {}: {e}", path.display())))?;
                if certs.is_empty() {
                    return Err(AcmeError::Setup(format!(
                        "cacert {}: no certificate in it",
                        path.display()
                    )));
                }
                for c in certs {
                    roots
                        .add(c)
                        .map_err(|e| AcmeError::Setup(format!("cacert {}: {e}", path.display())))?;
                }
                let cfg = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| AcmeError::Setup(e.to_string()))?
                    .with_root_certificates(roots)
                    .with_no_client_auth();
                builder.with_tls_config(cfg)
            }
            None => builder
                .with_provider_and_platform_verifier(provider())
                .map_err(|e| AcmeError::Setup(format!("system trust store: {e}")))?,
        };
        let connector = builder.https_only().enable_http1().enable_http2().build();
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Watched { inner, retry_after })
    }
}

impl HttpClient for Watched {
    fn request(
        &self,
        req: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let fut = HttpClient::request(&self.inner, req);
        let retry_after = self.retry_after.clone();
        Box::pin(async move {
            let rsp = fut.await?;
            if let Some(date) = rsp
                .parts
                .headers
                .get(hyper::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok())
            {
                warn_skew(date, SystemTime::now());
            }
            let status = rsp.parts.status.as_u16();
            if status == 429 || status == 503 {
                if let Some(t) = rsp
                    .parts
                    .headers
                    .get(hyper::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                {
                    retry_after.set(t);
                }
            }
            Ok(rsp)
        })
    }
}

/// Clock difference with the CA beyond which a warning is logged.
pub const SKEW_WARNING: Duration = Duration::from_secs(300);

/// Logs (once per process) when our clock and the CA's `Date` disagree by more than
/// [`SKEW_WARNING`]: certificate lifetimes and renewal times would look shifted. Renewal
/// times stay derived from the certificate's own NotBefore/NotAfter, so nothing thrashes.
fn warn_skew(ca_date: SystemTime, now: SystemTime) -> bool {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let (ahead, by) = match now.duration_since(ca_date) {
        Ok(d) => (true, d),
        Err(e) => (false, e.duration()),
    };
    if by <= SKEW_WARNING {
        return false;
    }
    WARNED.call_once(|| {
        tracing::warn!(
            skew_s = by.as_secs(),
            "this machine's clock is {} the ACME CA's by {} s: check NTP",
            if ahead { "ahead of" } else { "behind" },
            by.as_secs()
        );
    });
    true
}

/// `Retry-After`: delta-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<SystemTime> {
    let v = value.trim();
    match v.parse::<u64>() {
        Ok(secs) => Some(SystemTime::now() + Duration::from_secs(secs)),
        Err(_) => httpdate::parse_http_date(v).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        let t = parse_retry_after("3600").unwrap();
        let d = t.duration_since(SystemTime::now()).unwrap();
        assert!(d > Duration::from_secs(3590) && d <= Duration::from_secs(3600));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT").unwrap(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(784111777)
        );
        assert!(parse_retry_after("soon").is_none());
        let r = RetryAfter::default();
        r.set(SystemTime::now() + Duration::from_secs(100));
        r.set(SystemTime::now() + Duration::from_secs(10));
        assert!(
            r.until().unwrap() > SystemTime::now() + Duration::from_secs(90),
            "the later time wins"
        );
    }
}
