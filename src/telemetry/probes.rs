//! The HTTP endpoints of CoreDNS's `health`, `ready` and `prometheus` plugins: plain
//! HTTP/1.1 on a thread of their own (so that they answer while zones load and whatever the
//! control thread is doing). An address named by several of them serves each.
//!
//! - `GET /health` on a health address: `200 OK` while the process runs, lameduck included.
//! - `GET /ready` on a ready address: `200 OK` once every listener is bound and every zone
//!   and hosts file is loaded; `503` with the reason before that and during the lameduck of
//!   a shutdown, when queries are still answered but a load balancer should look elsewhere.
//! - `GET /metrics` on a prometheus address: the metrics in the text format.
//! - Anything else: `404`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

use super::metrics::Registry;

/// Where the server stands, for `/ready`.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8, std::sync::Mutex<String>);

const STARTING: u8 = 0;
const READY: u8 = 1;
const LAMEDUCK: u8 = 2;

impl Readiness {
    /// Every listener bound and every zone loaded.
    pub fn set_ready(&self) {
        self.0.store(READY, Ordering::Relaxed);
    }

    /// Shutting down: queries are answered a little longer, but not for new clients.
    pub fn set_lameduck(&self) {
        self.0.store(LAMEDUCK, Ordering::Relaxed);
    }

    /// Zones that have no data to serve yet or any more (`secondary` zones not transferred
    /// or expired), one line each; empty when every zone serves.
    pub fn set_waiting(&self, lines: String) {
        if let Ok(mut w) = self.1.lock() {
            *w = lines;
        }
    }

    /// `None` when ready, else why not.
    fn not_ready(&self) -> Option<String> {
        match self.0.load(Ordering::Relaxed) {
            STARTING => Some("starting: loading zones and binding listeners\n".into()),
            READY => self.1.lock().ok().filter(|w| !w.is_empty()).map(|w| w.clone()),
            _ => Some("shutting down (lameduck)\n".into()),
        }
    }
}

/// The addresses of each endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeAddrs {
    /// `health`.
    pub health: Vec<SocketAddr>,
    /// `ready`.
    pub ready: Vec<SocketAddr>,
    /// `prometheus`.
    pub metrics: Vec<SocketAddr>,
}

impl ProbeAddrs {
    /// No endpoint at all.
    pub fn is_empty(&self) -> bool {
        self.health.is_empty() && self.ready.is_empty() && self.metrics.is_empty()
    }
}

/// Which endpoints one address serves.
#[derive(Clone, Copy, Debug)]
struct Serves {
    health: bool,
    ready: bool,
    metrics: bool,
}

/// What the endpoints read.
struct Sources {
    readiness: Arc<Readiness>,
    metrics: Arc<Registry>,
}

/// The running endpoints; dropping it stops them.
pub struct Probes {
    addrs: ProbeAddrs,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probes {
    /// Binds every address of `addrs` and serves them on a thread of their own. Binding
    /// happens here, so that an address in use is a start-up error.
    pub fn start(addrs: &ProbeAddrs, readiness: Arc<Readiness>, metrics: Arc<Registry>) -> std::io::Result<Probes> {
        let mut listeners = Vec::new();
        for addr in addrs.health.iter().chain(&addrs.ready).chain(&addrs.metrics) {
            if listeners.iter().any(|(a, _, _)| a == addr) {
                continue;
            }
            let serves = Serves {
                health: addrs.health.contains(addr),
                ready: addrs.ready.contains(addr),
                metrics: addrs.metrics.contains(addr),
            };
            let l = std::net::TcpListener::bind(addr).map_err(|e| {
                let names: Vec<&str> = [
                    (serves.health, "health"),
                    (serves.ready, "ready"),
                    (serves.metrics, "prometheus"),
                ]
                .into_iter()
                .filter_map(|(on, n)| on.then_some(n))
                .collect();
                std::io::Error::new(e.kind(), format!("{}: cannot listen on {addr}: {e}", names.join(", ")))
            })?;
            l.set_nonblocking(true)?;
            listeners.push((*addr, serves, l));
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let sources = Arc::new(Sources { readiness, metrics });
        let thread = std::thread::Builder::new()
            .name("probes".into())
            .spawn(move || serve(listeners, sources, stop_rx))?;
        Ok(Probes {
            addrs: addrs.clone(),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Whether these endpoints are the ones asked for.
    pub fn serves(&self, addrs: &ProbeAddrs) -> bool {
        self.addrs == *addrs
    }
}

impl Drop for Probes {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    listeners: Vec<(SocketAddr, Serves, std::net::TcpListener)>,
    sources: Arc<Sources>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "health/ready: no runtime; the endpoints do not answer");
            return;
        }
    };
    rt.block_on(async move {
        let mut tasks = Vec::new();
        for (addr, serves, l) in listeners {
            let listener = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%addr, error = %e, "health/ready: cannot serve the address");
                    continue;
                }
            };
            tasks.push(tokio::spawn(accept(listener, serves, sources.clone())));
        }
        let _ = stop.await;
        for t in tasks {
            t.abort();
        }
    });
}

async fn accept(listener: tokio::net::TcpListener, serves: Serves, sources: Arc<Sources>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or the like: try again a little later.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, serves, sources.clone()));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(5))
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), conn).await;
        });
    }
}

async fn answer(
    req: Request<hyper::body::Incoming>,
    serves: Serves,
    sources: Arc<Sources>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let (status, body, text_format) = match path {
        "/health" if serves.health => (StatusCode::OK, Bytes::from_static(b"OK"), false),
        "/ready" if serves.ready => match sources.readiness.not_ready() {
            None => (StatusCode::OK, Bytes::from_static(b"OK"), false),
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, Bytes::from(why), false),
        },
        "/metrics" if serves.metrics => (StatusCode::OK, Bytes::from(sources.metrics.render()), true),
        _ => (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n"), false),
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    if text_format {
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
    }
    Ok(r)
}
