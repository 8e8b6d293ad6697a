//! A small ACME directory in front of pebble, for what pebble 2.4 lacks: it serves pebble's
//! directory with a `renewalInfo` (ARI, RFC 9773) URL of its own, and can answer `newOrder`
//! with 429 and `Retry-After`. Everything else goes to pebble directly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;

use super::tls::Ca;

/// How the stub behaves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// ARI: the first certificate asked about should be renewed now, later ones in 60 days.
    Ari,
    /// `newOrder` answers 429 with `Retry-After: 3600`.
    RateLimited,
}

pub struct Stub {
    pub addr: SocketAddr,
    /// A PEM with pebble's HTTPS CA and the stub's CA: the `cacert` for ringdns.
    pub bundle: PathBuf,
    pub new_orders: Arc<AtomicUsize>,
    pub ari_ids: Arc<Mutex<Vec<String>>>,
    _thread: std::thread::JoinHandle<()>,
}

fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

impl Stub {
    pub fn start(mode: Mode, pebble_dir_url: &str, pebble_ca: &Path, work: &Path) -> Stub {
        let ca = Ca::new();
        let leaf = ca.leaf(&["127.0.0.1"]);
        let bundle = work.join("cacert-bundle.pem");
        std::fs::write(
            &bundle,
            format!("{}{}", std::fs::read_to_string(pebble_ca).unwrap(), ca.pem()),
        )
        .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let new_orders = Arc::new(AtomicUsize::new(0));
        let ari_ids = Arc::new(Mutex::new(Vec::new()));
        let certs: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
        let mut cfg =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let pebble_dir = pebble_dir_url.to_string();
        let pebble_ca = pebble_ca.to_path_buf();
        let (orders, ids) = (new_orders.clone(), ari_ids.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let Ok(tls) = acceptor.accept(tcp).await else { continue };
                    let (pebble_dir, pebble_ca, orders, ids) =
                        (pebble_dir.clone(), pebble_ca.clone(), orders.clone(), ids.clone());
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let (pebble_dir, pebble_ca, orders, ids) =
                                (pebble_dir.clone(), pebble_ca.clone(), orders.clone(), ids.clone());
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    handle(req, mode, addr, &pebble_dir, &pebble_ca, &orders, &ids).await,
                                )
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(tls), svc)
                            .await;
                    });
                }
            });
        });
        Stub {
            addr,
            bundle,
            new_orders,
            ari_ids,
            _thread: thread,
        }
    }

    pub fn directory(&self) -> String {
        format!("https://{}/dir", self.addr)
    }
}

async fn fetch(url: &str, ca: &Path) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let uri: hyper::Uri = url.parse().unwrap();
    let addr = format!("{}:{}", uri.host().unwrap(), uri.port_u16().unwrap());
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(uri.host().unwrap().to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = Request::get(uri.path())
        .header("host", uri.authority().unwrap().as_str())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    String::from_utf8(resp.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    mode: Mode,
    me: SocketAddr,
    pebble_dir: &str,
    pebble_ca: &Path,
    orders: &AtomicUsize,
    ids: &Mutex<Vec<String>>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    let json = |status: u16, body: String, extra: &[(&str, String)]| {
        let mut b = Response::builder()
            .status(status)
            .header("content-type", "application/json");
        for (k, v) in extra {
            b = b.header(*k, v);
        }
        b.body(Full::new(Bytes::from(body))).unwrap()
    };
    if path == "/dir" {
        let mut dir: serde_json::Value = serde_json::from_str(&fetch(pebble_dir, pebble_ca).await).unwrap();
        dir["renewalInfo"] = format!("https://{me}/ari").into();
        if mode == Mode::RateLimited {
            dir["newOrder"] = format!("https://{me}/new-order").into();
        }
        return json(200, dir.to_string(), &[]);
    }
    if let Some(id) = path.strip_prefix("/ari/") {
        let now = SystemTime::now();
        let first = {
            let mut ids = ids.lock().unwrap();
            if !ids.iter().any(|i| i == id) {
                ids.push(id.to_string());
            }
            ids.first().map(String::as_str) == Some(id)
        };
        // The first certificate: renew now (a revocation event); later ones: in two months.
        let (start, end) = if first {
            (now - Duration::from_secs(120), now - Duration::from_secs(60))
        } else {
            (
                now + Duration::from_secs(60 * 86400),
                now + Duration::from_secs(61 * 86400),
            )
        };
        let body = serde_json::json!({"suggestedWindow": {"start": rfc3339(start), "end": rfc3339(end)}}).to_string();
        return json(200, body, &[("retry-after", "60".into())]);
    }
    if path == "/new-order" {
        let _ = req.into_body().collect().await;
        orders.fetch_add(1, Ordering::SeqCst);
        let body = serde_json::json!({"type": "urn:ietf:params:acme:error:rateLimited", "detail": "too many orders", "status": 429}).to_string();
        let mut r = json(429, body, &[("retry-after", "3600".into())]);
        r.headers_mut()
            .insert("content-type", "application/problem+json".parse().unwrap());
        return r;
    }
    json(404, "{}".into(), &[])
}
