//! The `health` and `ready` endpoints of CoreDNS's plugins of those names: plain HTTP/1.1 on
//! a thread of their own (so that they answer while zones load and whatever the control
//! thread is doing).
//!
//! - `GET /health` on a health address: `200 OK` while the process runs, lameduck included.
//! - `GET /ready` on a ready address: `200 OK` once every listener is bound and every zone
//!   and hosts file is loaded; `503` with the reason before that and during the lameduck of
//!   a shutdown, when queries are still answered but a load balancer should look elsewhere.
//! - Anything else: `404`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};

/// Where the server stands, for `/ready`.
#[derive(Debug, Default)]
pub struct Readiness(AtomicU8);

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

    /// `None` when ready, else why not.
    fn not_ready(&self) -> Option<&'static str> {
        match self.0.load(Ordering::Relaxed) {
            STARTING => Some("starting: loading zones and binding listeners\n"),
            READY => None,
            _ => Some("shutting down (lameduck)\n"),
        }
    }
}

/// Which endpoint an address serves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Endpoint {
    Health,
    Ready,
    Both,
}

/// The running endpoints; dropping it stops them.
pub struct Probes {
    addrs: (Vec<SocketAddr>, Vec<SocketAddr>),
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Probes {
    /// Binds the `health` and `ready` addresses (an address named by both serves both) and
    /// serves them on a thread of their own. Binding happens here, so that an address in use
    /// is a start-up error.
    pub fn start(health: &[SocketAddr], ready: &[SocketAddr], state: Arc<Readiness>) -> std::io::Result<Probes> {
        let mut listeners = Vec::new();
        for addr in health.iter().chain(ready) {
            if listeners.iter().any(|(a, _, _)| a == addr) {
                continue;
            }
            let endpoint = match (health.contains(addr), ready.contains(addr)) {
                (true, true) => Endpoint::Both,
                (true, false) => Endpoint::Health,
                _ => Endpoint::Ready,
            };
            let l = std::net::TcpListener::bind(addr)
                .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr} for {endpoint:?}: {e}")))?;
            l.set_nonblocking(true)?;
            listeners.push((*addr, endpoint, l));
        }
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("probes".into())
            .spawn(move || serve(listeners, state, stop_rx))?;
        Ok(Probes {
            addrs: (health.to_vec(), ready.to_vec()),
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// Whether these endpoints are the ones asked for.
    pub fn serves(&self, health: &[SocketAddr], ready: &[SocketAddr]) -> bool {
        self.addrs.0 == health && self.addrs.1 == ready
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
    listeners: Vec<(SocketAddr, Endpoint, std::net::TcpListener)>,
    state: Arc<Readiness>,
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
        for (addr, endpoint, l) in listeners {
            let listener = match tokio::net::TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(%addr, error = %e, "health/ready: cannot serve the address");
                    continue;
                }
            };
            tasks.push(tokio::spawn(accept(listener, endpoint, state.clone())));
        }
        let _ = stop.await;
        for t in tasks {
            t.abort();
        }
    });
}

async fn accept(listener: tokio::net::TcpListener, endpoint: Endpoint, state: Arc<Readiness>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of descriptors or the like: try again a little later.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(req, endpoint, state.clone()));
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
    endpoint: Endpoint,
    state: Arc<Readiness>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    let health = path == "/health" && endpoint != Endpoint::Ready;
    let ready = path == "/ready" && endpoint != Endpoint::Health;
    let (status, text) = if health {
        (StatusCode::OK, "OK")
    } else if ready {
        match state.not_ready() {
            None => (StatusCode::OK, "OK"),
            Some(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
        }
    } else {
        (StatusCode::NOT_FOUND, "not found\n")
    };
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    Ok(r)
}
