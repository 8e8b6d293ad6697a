//! The acme-dns HTTP API of each `acme_dns` directive, on the control thread's runtime:
//! HTTP/1.1 over TLS (the server's certificates, by SNI, swapped with every renewal) or
//! plain on loopback; `/register`, `/update` and `/health` as `update::acme_dns` answers
//! them. A value is served (the zone changed on every shard, journaled, NOTIFYed, logged
//! on disk) before `/update` answers 200; registrations are written to disk before
//! `/register` answers 201.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};

use crate::config::Config;
use crate::config::acme_dns::AcmeDnsConfig;
use crate::net::ctx::{UpdateRequest, UpdateWhat};
use crate::tls::resolver::{CertResolver, CertSet};
use crate::update::acme_dns::{Answer, Store};
use crate::zone::name::{NameKey, parse_abs};

/// The largest request body read (a registration's `allowfrom` list, an update).
const MAX_BODY: usize = 64 << 10;

/// Where the registrations of `zone` are kept in `dir`.
pub fn store_path(dir: &Path, zone: &domain::base::Name<bytes::Bytes>) -> PathBuf {
    super::secondary::zone_file(dir, NameKey::of(zone).as_slice(), "acme-dns.json")
}

/// One running API.
struct Running {
    cfg: AcmeDnsConfig,
    task: tokio::task::JoinHandle<()>,
}

/// Every `acme_dns` API of the configuration.
#[derive(Default)]
pub struct AcmeDnsApis {
    running: Vec<Running>,
    /// The certificates of the HTTPS ones: every certificate the server has.
    resolver: Arc<CertResolver>,
}

/// What every request of one API needs.
struct Api {
    cfg: AcmeDnsConfig,
    zone: String,
    path: PathBuf,
    store: Mutex<Store>,
    updates: tokio::sync::mpsc::UnboundedSender<UpdateRequest>,
    /// When a refused request was last logged, per source.
    refusals: Mutex<super::update::RefusalLog>,
}

impl AcmeDnsApis {
    /// Starts the APIs `cfg` names and stops those it no longer does (one whose options
    /// changed restarts). Must run inside the control runtime. A failure to listen or to
    /// read the registrations is an error naming the directive.
    pub fn sync(
        &mut self,
        cfg: &Config,
        updates: &tokio::sync::mpsc::UnboundedSender<UpdateRequest>,
    ) -> Result<(), String> {
        let wanted: Vec<&AcmeDnsConfig> = cfg.blocks.iter().flat_map(|b| &b.acme_dns).collect();
        self.running.retain(|r| {
            let keep = wanted.contains(&&r.cfg);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for a in wanted {
            if self.running.iter().any(|r| r.cfg == *a) {
                continue;
            }
            let task = self.start(a, updates.clone())?;
            self.running.push(Running { cfg: a.clone(), task });
        }
        Ok(())
    }

    /// Gives the HTTPS APIs the server's current certificates.
    pub fn set_certificates(&self, certs: Vec<Arc<rustls::sign::CertifiedKey>>) {
        self.resolver.store(CertSet::new(certs));
    }

    fn start(
        &self,
        a: &AcmeDnsConfig,
        updates: tokio::sync::mpsc::UnboundedSender<UpdateRequest>,
    ) -> Result<tokio::task::JoinHandle<()>, String> {
        let zone = format!("{}.", a.zone.to_string().trim_end_matches('.'));
        let path = store_path(&a.directory, &a.zone);
        let store = match std::fs::read_to_string(&path) {
            Ok(text) => Store::decode(&text).map_err(|e| format!("{}: acme_dns: {}: {e}", a.pos, path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Store::default(),
            Err(e) => return Err(format!("{}: acme_dns: {}: {e}", a.pos, path.display())),
        };
        let std_listener = std::net::TcpListener::bind(a.listen)
            .map_err(|e| format!("{}: acme_dns: cannot listen on {}: {e}", a.pos, a.listen))?;
        std_listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::from_std(std_listener).map_err(|e| e.to_string())?;
        let tls = if a.plain {
            None
        } else {
            let mut c = rustls::ServerConfig::builder_with_provider(crate::tls::certs::provider())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_cert_resolver(self.resolver.clone());
            c.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(c)))
        };
        tracing::info!(listen = %a.listen, zone = %zone, https = tls.is_some(), registrations = store.registrations.len(), "acme_dns API listening");
        let api = Arc::new(Api {
            cfg: a.clone(),
            zone,
            path,
            store: Mutex::new(store),
            updates,
            refusals: Mutex::default(),
        });
        Ok(tokio::spawn(accept(listener, tls, api)))
    }
}

async fn accept(listener: tokio::net::TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, api: Arc<Api>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors or the like: try again a little later.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let (api, tls) = (api.clone(), tls.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, peer, api.clone()));
            let http = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(5))
                .clone();
            let served = async {
                match tls {
                    Some(acceptor) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await
                        else {
                            return;
                        };
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                    None => {
                        let _ = http
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                            .await;
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(60), served).await;
        });
    }
}

fn reply(a: Answer) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(a.body)));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// The client's address: the socket's, or behind a trusted proxy the last address of its
/// header (the one the proxy itself added; earlier ones are the client's to forge).
fn client(req: &Request<hyper::body::Incoming>, peer: SocketAddr, cfg: &AcmeDnsConfig) -> IpAddr {
    let ip = peer.ip().to_canonical();
    let Some((header, proxies)) = &cfg.proxy else {
        return ip;
    };
    if !proxies
        .iter()
        .any(|(net, len)| crate::config::in_prefix(ip, *net, *len))
    {
        return ip;
    }
    req.headers()
        .get(header.as_str())
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|v| v.trim().parse::<IpAddr>().ok())
        .map_or(ip, |a| a.to_canonical())
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    peer: SocketAddr,
    api: Arc<Api>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let from = client(&req, peer, &api.cfg);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (user, key) = (header("X-Api-User"), header("X-Api-Key"));
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let route = match (method, path.as_str()) {
        (Method::GET, "/health") => return Ok(plain(StatusCode::OK, "")),
        (Method::POST, "/register") if api.cfg.registration => Route::Register,
        (Method::POST, "/update") => Route::Update,
        (_, "/health" | "/update") => return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n")),
        (_, "/register") if api.cfg.registration => {
            return Ok(plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n"));
        }
        _ => return Ok(plain(StatusCode::NOT_FOUND, "404 page not found\n")),
    };
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n")),
    };
    let db_error = || {
        reply(Answer {
            status: 500,
            body: "{\"error\": \"db_error\"}".into(),
        })
    };
    match route {
        Route::Register => {
            let mut random = |b: &mut [u8]| {
                // The OS's generator; without it no registration is safe to make.
                if getrandom::fill(b).is_err() {
                    b.fill(0);
                }
            };
            let (answer, saved) = {
                let mut store = api.store.lock().unwrap_or_else(|p| p.into_inner());
                let before = store.clone();
                let answer = store.register(&body, &api.zone, &mut random);
                let saved = answer.status != 201 || save(&api.path, &store).is_ok();
                if !saved {
                    *store = before;
                }
                (answer, saved)
            };
            if !saved {
                return Ok(db_error());
            }
            if answer.status == 201 {
                tracing::info!(zone = %api.zone, %from, "acme_dns: registered");
            }
            Ok(reply(answer))
        }
        Route::Update => {
            let checked = api.store.lock().unwrap_or_else(|p| p.into_inner()).update(
                user.as_deref(),
                key.as_deref(),
                from,
                &body,
            );
            let (subdomain, values, answer) = match checked {
                Ok(x) => x,
                Err(refused) => {
                    if api.refusals.lock().unwrap_or_else(|p| p.into_inner()).due(from) {
                        tracing::warn!(zone = %api.zone, %from, status = refused.status, "acme_dns: update refused (logged once a minute per source)");
                    }
                    return Ok(reply(refused));
                }
            };
            let Ok(owner) = parse_abs(&format!("{subdomain}.{}", api.zone)) else {
                return Ok(db_error());
            };
            let (done, rcode) = futures_channel::oneshot::channel();
            let ask = UpdateRequest {
                zone: NameKey::of(&api.cfg.zone).as_slice().into(),
                what: UpdateWhat::Values {
                    owner: NameKey::of(&owner).as_slice().into(),
                    values: values.clone(),
                },
                from,
                done,
            };
            if api.updates.send(ask).is_err() {
                return Ok(db_error());
            }
            match rcode.await {
                Ok(domain::base::iana::Rcode::NOERROR) => {}
                _ => return Ok(db_error()),
            }
            let mut store = api.store.lock().unwrap_or_else(|p| p.into_inner());
            store.set_values(&subdomain, values);
            if save(&api.path, &store).is_err() {
                return Ok(db_error());
            }
            Ok(reply(answer))
        }
    }
}

enum Route {
    Register,
    Update,
}

/// Writes the registrations, readable by the owner only (they hold password hashes).
fn save(path: &Path, store: &Store) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::storage::write_atomic(path, store.encode().as_bytes(), 0o600).inspect_err(|e| {
        tracing::error!(file = %path.display(), error = %e, "acme_dns: the registrations cannot be written");
    })
}
