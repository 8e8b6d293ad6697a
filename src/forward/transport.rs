//! Exchanges with one upstream: UDP (a fresh socket, so a fresh random source port, per
//! query), TCP and DoT over a pooled connection with pipelined queries (RFC 7766), DoH over
//! a pooled HTTP/2 connection (RFC 8484). Every reply is checked against the question
//! before it is accepted; anything else is ignored while we keep waiting.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use domain::base::iana::Rtype;
use futures_channel::{mpsc, oneshot};
use http_body_util::{BodyExt, Full, Limited};
use monoio::io::IntoPollIo;
use monoio::net::TcpStream;
use monoio_compat::hyper::{MonoioExecutor, MonoioIo};
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use super::scrub::matches;
use crate::dns::wire;
use crate::stream::{self, StreamRead, StreamWrite, frame_len};
use crate::zone::name::NameKey;

/// Largest reply we read from an upstream (a TCP message is at most this).
pub const MAX_REPLY: usize = 65535;

/// Why an exchange failed.
#[derive(Debug)]
pub enum Fail {
    /// No matching reply in time.
    Timeout,
    /// Connection or socket error (including TLS verification: no fallback to plaintext).
    Net(io::Error),
    /// The reply was truncated over UDP (retry over TCP).
    Truncated,
    /// An HTTP status other than 200 from a DoH upstream.
    Http(u16),
}

/// The question an exchange must be answered for.
#[derive(Clone, Copy)]
pub struct Asked<'a> {
    /// The message to send (its ID already set).
    pub msg: &'a [u8],
    /// Its ID.
    pub id: u16,
    /// Lowercase query name.
    pub qname: &'a NameKey,
    /// Query type.
    pub qtype: Rtype,
}

/// One query over UDP from a fresh socket connected to `addr` (the kernel then drops
/// datagrams from any other address or port).
pub async fn udp(addr: SocketAddr, q: Asked<'_>, timeout: Duration) -> Result<Vec<u8>, Fail> {
    let local: SocketAddr = if addr.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let std = std::net::UdpSocket::bind(local).map_err(Fail::Net)?;
    std.connect(addr).map_err(Fail::Net)?;
    std.set_nonblocking(true).map_err(Fail::Net)?;
    let sock = monoio::net::udp::UdpSocket::from_std(std).map_err(Fail::Net)?;
    let (r, _) = sock.send(q.msg.to_vec()).await;
    r.map_err(Fail::Net)?;
    let deadline = monoio::time::Instant::now() + timeout;
    let mut buf = Vec::with_capacity(MAX_REPLY);
    loop {
        let res = monoio::time::timeout_at(deadline, sock.recv(buf)).await;
        let (r, b) = res.map_err(|_| Fail::Timeout)?;
        buf = b;
        let n = match r {
            Ok(n) => n,
            // An ICMP port unreachable shows up here: the upstream is not listening.
            Err(e) => return Err(Fail::Net(e)),
        };
        if matches(&buf[..n], q.id, q.qname, q.qtype) {
            if buf[wire::FLAGS1] & wire::flags1::TC != 0 {
                return Err(Fail::Truncated);
            }
            return Ok(buf[..n].to_vec());
        }
        // Wrong ID, question or garbage: keep waiting for the real reply.
        buf.clear();
    }
}

/// A TCP connection to `addr` within `timeout`, Nagle off (queries are small and urgent).
async fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Fail> {
    let tcp = monoio::time::timeout(timeout, TcpStream::connect_addr(addr))
        .await
        .map_err(|_| Fail::Timeout)?
        .map_err(Fail::Net)?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// A pooled TCP or DoT connection with pipelined queries.
pub struct StreamConn {
    frames: mpsc::UnboundedSender<Vec<u8>>,
    pending: Rc<RefCell<HashMap<u16, oneshot::Sender<Vec<u8>>>>>,
    alive: Rc<Cell<bool>>,
}

impl StreamConn {
    /// Whether the connection can take queries.
    pub fn alive(&self) -> bool {
        self.alive.get()
    }

    /// Whether `id` is already waiting on this connection.
    pub fn id_taken(&self, id: u16) -> bool {
        self.pending.borrow().contains_key(&id)
    }

    /// Connects (with TLS when `tls` is given, verifying the certificate against the name)
    /// and starts the reader and writer tasks; the connection closes itself after `expire`
    /// without queries.
    pub async fn connect(
        addr: SocketAddr,
        tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
        expire: Duration,
        timeout: Duration,
    ) -> Result<Rc<StreamConn>, Fail> {
        let tcp = tcp_connect(addr, timeout).await?;
        let pending: Rc<RefCell<HashMap<u16, oneshot::Sender<Vec<u8>>>>> = Rc::default();
        let alive = Rc::new(Cell::new(true));
        let (tx, rx) = mpsc::unbounded();
        match tls {
            Some((cfg, name)) => {
                let poll = tcp.into_poll_io().map_err(Fail::Net)?;
                let tls = monoio::time::timeout(timeout, tokio_rustls::TlsConnector::from(cfg).connect(name, poll))
                    .await
                    .map_err(|_| Fail::Timeout)?
                    .map_err(Fail::Net)?;
                let (r, w) = stream::tls(tls);
                start(r, w, rx, pending.clone(), alive.clone(), expire);
            }
            None => {
                let (r, w) = stream::tcp(tcp);
                start(r, w, rx, pending.clone(), alive.clone(), expire);
            }
        }
        Ok(Rc::new(StreamConn {
            frames: tx,
            pending,
            alive,
        }))
    }

    /// Sends a query and waits for the reply with its ID and question.
    pub async fn exchange(&self, q: Asked<'_>, timeout: Duration) -> Result<Vec<u8>, Fail> {
        let deadline = monoio::time::Instant::now() + timeout;
        let (tx, mut rx) = oneshot::channel();
        self.pending.borrow_mut().insert(q.id, tx);
        let mut frame = Vec::with_capacity(q.msg.len() + 2);
        frame.extend_from_slice(&(q.msg.len() as u16).to_be_bytes());
        frame.extend_from_slice(q.msg);
        if self.frames.unbounded_send(frame).is_err() {
            self.pending.borrow_mut().remove(&q.id);
            self.alive.set(false);
            return Err(Fail::Net(io::Error::other("connection closed")));
        }
        loop {
            let reply = monoio::time::timeout_at(deadline, rx).await;
            match reply {
                Err(_) => {
                    self.pending.borrow_mut().remove(&q.id);
                    return Err(Fail::Timeout);
                }
                Ok(Err(_)) => return Err(Fail::Net(io::Error::other("connection closed"))),
                Ok(Ok(r)) if matches(&r, q.id, q.qname, q.qtype) => return Ok(r),
                Ok(Ok(_)) => {
                    // Our ID, another question: not ours (RFC 7766 §7); keep waiting.
                    let (tx, next) = oneshot::channel();
                    self.pending.borrow_mut().insert(q.id, tx);
                    rx = next;
                }
            }
        }
    }
}

/// Runs the writer and the reader of a pooled connection. The writer sends queued frames
/// and closes the connection after `expire` with no query waiting; the reader hands each
/// reply to the query waiting for its ID. A read is cancelled only to close.
fn start<R, W>(
    mut r: R,
    mut w: W,
    mut frames: mpsc::UnboundedReceiver<Vec<u8>>,
    pending: Rc<RefCell<HashMap<u16, oneshot::Sender<Vec<u8>>>>>,
    alive: Rc<Cell<bool>>,
    expire: Duration,
) where
    R: StreamRead + 'static,
    W: StreamWrite + 'static,
{
    let (closed, mut close) = oneshot::channel::<()>();
    let last = Rc::new(Cell::new(Instant::now()));
    let (alive_w, pending_w, last_w) = (alive.clone(), pending.clone(), last.clone());
    monoio::spawn(async move {
        loop {
            match monoio::time::timeout(expire.max(Duration::from_millis(100)), next(&mut frames)).await {
                Ok(Some(frame)) => {
                    last_w.set(Instant::now());
                    if w.write_all(frame).await.0.is_err() {
                        break;
                    }
                }
                Ok(None) => break,
                // Idle past `expire` with nothing waiting: close it.
                Err(_) if pending_w.borrow().is_empty() && last_w.get().elapsed() >= expire => break,
                Err(_) => {}
            }
        }
        alive_w.set(false);
        let _ = monoio::time::timeout(Duration::from_secs(1), w.shutdown()).await;
        drop(closed);
    });
    monoio::spawn(async move {
        let mut input: Vec<u8> = Vec::with_capacity(MAX_REPLY.min(4096));
        loop {
            let mut used = 0;
            while let Some(n) = frame_len(&input[used..]) {
                if input.len() - used < 2 + n {
                    break;
                }
                let msg = &input[used + 2..used + 2 + n];
                used += 2 + n;
                // Shorter than a header: not a DNS message, but the framing holds: skip it.
                if n >= 12 {
                    last.set(Instant::now());
                    let id = u16::from_be_bytes([msg[0], msg[1]]);
                    if let Some(tx) = pending.borrow_mut().remove(&id) {
                        let _ = tx.send(msg.to_vec());
                    }
                }
            }
            input.drain(..used);
            let need = 2 + frame_len(&input).unwrap_or(0);
            input.reserve(need.saturating_sub(input.len()));
            let read = monoio::select! {
                r = r.read_some(input) => r,
                _ = &mut close => break,
            };
            match read {
                (Ok(n), buf) if n > 0 => input = buf,
                _ => break,
            }
        }
        alive.set(false);
        // Waiters learn the connection is gone when their senders drop.
        pending.borrow_mut().clear();
    });
}

/// A pooled DoH connection (HTTP/2, multiplexed).
pub struct DohConn {
    send: RefCell<hyper::client::conn::http2::SendRequest<Full<Bytes>>>,
    alive: Rc<Cell<bool>>,
}

impl DohConn {
    /// Whether the connection can take requests.
    pub fn alive(&self) -> bool {
        self.alive.get() && !self.send.borrow().is_closed()
    }

    /// Connects with TLS (ALPN h2, certificate checked against `name`) and HTTP/2.
    pub async fn connect(
        addr: SocketAddr,
        cfg: Arc<ClientConfig>,
        name: ServerName<'static>,
        timeout: Duration,
    ) -> Result<Rc<DohConn>, Fail> {
        let tcp = tcp_connect(addr, timeout).await?;
        let poll = tcp.into_poll_io().map_err(Fail::Net)?;
        let tls = monoio::time::timeout(timeout, tokio_rustls::TlsConnector::from(cfg).connect(name, poll))
            .await
            .map_err(|_| Fail::Timeout)?
            .map_err(Fail::Net)?;
        let (send, conn) = hyper::client::conn::http2::Builder::new(MonoioExecutor)
            .timer(monoio_compat::hyper::MonoioTimer)
            .handshake(MonoioIo::new(tls))
            .await
            .map_err(|e| Fail::Net(io::Error::other(e.to_string())))?;
        let alive = Rc::new(Cell::new(true));
        let a = alive.clone();
        monoio::spawn(async move {
            let _ = conn.await;
            a.set(false);
        });
        Ok(Rc::new(DohConn {
            send: RefCell::new(send),
            alive,
        }))
    }

    /// POSTs the query (ID 0, RFC 8484 §4.1) and checks the reply.
    pub async fn exchange(&self, host: &str, path: &str, q: Asked<'_>, timeout: Duration) -> Result<Vec<u8>, Fail> {
        let req = hyper::Request::post(path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/dns-message")
            .header(hyper::header::ACCEPT, "application/dns-message")
            .body(Full::new(Bytes::copy_from_slice(q.msg)))
            .map_err(|e| Fail::Net(io::Error::other(e.to_string())))?;
        let mut send = self.send.borrow().clone();
        let fut = async move {
            send.ready()
                .await
                .map_err(|e| Fail::Net(io::Error::other(e.to_string())))?;
            let resp = send
                .send_request(req)
                .await
                .map_err(|e| Fail::Net(io::Error::other(e.to_string())))?;
            if resp.status() != hyper::StatusCode::OK {
                return Err(Fail::Http(resp.status().as_u16()));
            }
            let body = Limited::new(resp.into_body(), MAX_REPLY)
                .collect()
                .await
                .map_err(|e| Fail::Net(io::Error::other(e.to_string())))?;
            Ok(body.to_bytes().to_vec())
        };
        let body = monoio::time::timeout(timeout, fut).await.map_err(|_| Fail::Timeout)??;
        if matches(&body, q.id, q.qname, q.qtype) {
            Ok(body)
        } else {
            Err(Fail::Net(io::Error::other("DoH reply to another question")))
        }
    }
}

/// The next item of a channel.
async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> Option<T> {
    std::future::poll_fn(|cx| futures_core::Stream::poll_next(std::pin::Pin::new(&mut *rx), cx)).await
}
