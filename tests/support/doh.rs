//! A DoH test client (hyper over tokio-rustls, HTTP/2 or HTTP/1.1) and raw HTTP/2 frames for
//! the abuse tests.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;

/// A response: status, content-type, cache-control, body.
#[derive(Debug)]
pub struct Got {
    pub status: StatusCode,
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub body: Vec<u8>,
}

/// One client connection; requests run on a current-thread tokio runtime.
pub struct Client {
    rt: tokio::runtime::Runtime,
    h2: Option<hyper::client::conn::http2::SendRequest<Full<Bytes>>>,
    h1: Option<hyper::client::conn::http1::SendRequest<Full<Bytes>>>,
    pub alpn: Option<Vec<u8>>,
}

impl Client {
    /// Connects with ALPN `alpn` (e.g. `[b"h2"]` or `[b"http/1.1"]`).
    pub fn connect(addr: SocketAddr, cfg: Arc<ClientConfig>, sni: &str) -> std::io::Result<Client> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let sni = ServerName::try_from(sni.to_string()).map_err(std::io::Error::other)?;
        let connect = async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let tls = tokio_rustls::TlsConnector::from(cfg).connect(sni, tcp).await?;
            let alpn = tls.get_ref().1.alpn_protocol().map(|a| a.to_vec());
            let io = TokioIo::new(tls);
            if alpn.as_deref() == Some(b"h2") {
                let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Ok::<_, std::io::Error>((Some(send), None, alpn))
            } else {
                let (send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(std::io::Error::other)?;
                tokio::spawn(conn);
                Ok((None, Some(send), alpn))
            }
        };
        let (h2, h1, alpn) = rt.block_on(async move {
            tokio::time::timeout(Duration::from_secs(5), connect)
                .await
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "DoH connect timed out"))?
        })?;
        Ok(Client { rt, h2, h1, alpn })
    }

    pub fn request(&mut self, method: &str, path: &str, ctype: Option<&str>, body: Vec<u8>) -> Result<Got, String> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("https://dns.example.test{path}"));
        if self.h1.is_some() {
            b = b.header("host", "dns.example.test");
        }
        if let Some(c) = ctype {
            b = b.header("content-type", c);
        }
        let req = b.body(Full::new(Bytes::from(body))).map_err(|e| e.to_string())?;
        let (h2, h1) = (&mut self.h2, &mut self.h1);
        self.rt.block_on(async move {
            let fut = async {
                let resp = match (h2, h1) {
                    (Some(s), _) => s.send_request(req).await,
                    (_, Some(s)) => s.send_request(req).await,
                    _ => unreachable!("one sender exists"),
                }
                .map_err(|e| e.to_string())?;
                let status = resp.status();
                let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                let (content_type, cache_control) = (header("content-type"), header("cache-control"));
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| e.to_string())?
                    .to_bytes()
                    .to_vec();
                Ok(Got {
                    status,
                    content_type,
                    cache_control,
                    body,
                })
            };
            tokio::time::timeout(Duration::from_secs(5), fut)
                .await
                .map_err(|_| "timeout".to_string())?
        })
    }

    pub fn get(&mut self, path: &str) -> Result<Got, String> {
        self.request("GET", path, None, Vec::new())
    }

    pub fn post(&mut self, ctype: &str, body: Vec<u8>) -> Result<Got, String> {
        self.request("POST", "/dns-query", Some(ctype), body)
    }
}

/// base64url without padding.
pub fn b64(msg: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(msg)
}

/// HTTP/2 frame types and flags used by the raw tests (RFC 9113 §6).
pub mod frame {
    pub const DATA: u8 = 0;
    pub const HEADERS: u8 = 1;
    pub const RST_STREAM: u8 = 3;
    pub const SETTINGS: u8 = 4;
    pub const PING: u8 = 6;
    pub const GOAWAY: u8 = 7;
    pub const CONTINUATION: u8 = 9;
    pub const END_STREAM: u8 = 0x1;
    pub const END_HEADERS: u8 = 0x4;
    pub const ACK: u8 = 0x1;
}

pub fn h2_frame(ty: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, ty, flags];
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// HPACK for `GET https /dns-query?dns=...` with :authority, literal without indexing.
pub fn hpack_get(path: &str) -> Vec<u8> {
    let mut h = vec![0x82, 0x87]; // :method GET, :scheme https
    h.push(0x04); // literal without indexing, name index 4 (:path)
    h.push(path.len() as u8);
    h.extend_from_slice(path.as_bytes());
    h.push(0x01); // :authority, name index 1
    h.push(16);
    h.extend_from_slice(b"dns.example.test");
    h
}

/// A raw HTTP/2 connection over TLS (blocking).
pub struct Raw {
    pub tls: super::tls::Tls,
}

impl Raw {
    pub fn connect(addr: SocketAddr, ca: &rustls::pki_types::CertificateDer<'static>, settings: &[u8]) -> Raw {
        let cfg = super::tls::client_config(ca, &[b"h2"]);
        let mut tls =
            super::tls::connect(addr, cfg, ServerName::try_from("dns.example.test").unwrap()).expect("handshake");
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").unwrap();
        tls.write_all(&h2_frame(frame::SETTINGS, 0, 0, settings)).unwrap();
        tls.flush().unwrap();
        Raw { tls }
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tls.write_all(bytes)?;
        self.tls.flush()
    }

    /// Reads one frame: (type, flags, stream, payload); None at EOF or error.
    pub fn read_frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        let mut head = [0u8; 9];
        self.tls.read_exact(&mut head).ok()?;
        let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let mut payload = vec![0u8; len];
        self.tls.read_exact(&mut payload).ok()?;
        Some((head[3], head[4], stream, payload))
    }

    /// Reads frames until `pred` matches one (returned) or the connection ends (None).
    pub fn until(&mut self, mut pred: impl FnMut(u8, u8, u32, &[u8]) -> bool) -> Option<(u8, u8, u32, Vec<u8>)> {
        while let Some(f) = self.read_frame() {
            if pred(f.0, f.1, f.2, &f.3) {
                return Some(f);
            }
        }
        None
    }
}
