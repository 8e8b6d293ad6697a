//! A scripted upstream on loopback (UDP and TCP on one port) for the forwarding faults no
//! real resolver produces on demand: silence, wrong IDs, garbage, TC, huge replies. It records
//! every query it receives. Healthy upstreams in the tests are real servers (ringdns, unbound).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the upstream does for a query.
pub enum Act {
    /// Send these bytes back (over the query's transport).
    Send(Vec<u8>),
    /// Send these bytes over UDP from another port of 127.0.0.1.
    SendFromOtherPort(Vec<u8>),
    /// Send these bytes over UDP from another address (127.0.0.2).
    SendFromOtherAddr(Vec<u8>),
    /// Wait before the next act.
    Sleep(Duration),
    /// Close the connection (TCP; over UDP nothing).
    Close,
}

/// A query as the upstream saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub wire: Vec<u8>,
    pub peer: SocketAddr,
    pub tcp: bool,
    pub at: Instant,
}

/// Decides the acts for a query (`tcp`: it came over TCP).
pub type Script = Arc<dyn Fn(&[u8], bool) -> Vec<Act> + Send + Sync>;

pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Upstream {
    pub fn start(script: impl Fn(&[u8], bool) -> Vec<Act> + Send + Sync + 'static) -> Upstream {
        let script: Script = Arc::new(script);
        let (udp, tcp) = loop {
            let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
            if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
                break (udp, tcp);
            }
        };
        let addr = udp.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let t1 = {
            let (script, seen, stop) = (script.clone(), seen.clone(), stop.clone());
            std::thread::spawn(move || serve_udp(udp, script, seen, stop))
        };
        let t2 = {
            let (seen, stop) = (seen.clone(), stop.clone());
            std::thread::spawn(move || serve_tcp(tcp, script, seen, stop))
        };
        Upstream {
            addr,
            seen,
            stop,
            threads: vec![t1, t2],
        }
    }

    /// Queries received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Queries received for `name` (the readiness probe of the harness is forwarded too).
    pub fn seen_for(&self, name: &str) -> Vec<Seen> {
        let name = format!("{}.", name.trim_end_matches('.').to_ascii_lowercase());
        self.seen().into_iter().filter(|s| qname(&s.wire) == name).collect()
    }

    pub fn count(&self, name: &str) -> usize {
        self.seen_for(name).len()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn serve_udp(sock: UdpSocket, script: Script, seen: Arc<Mutex<Vec<Seen>>>, stop: Arc<AtomicBool>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 65535];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let wire = buf[..n].to_vec();
        seen.lock().unwrap().push(Seen {
            wire: wire.clone(),
            peer,
            tcp: false,
            at: Instant::now(),
        });
        let acts = script(&wire, false);
        if acts.iter().any(|a| matches!(a, Act::Sleep(_))) {
            let sock = sock.clone();
            std::thread::spawn(move || run_udp(&sock, peer, acts));
        } else {
            run_udp(&sock, peer, acts);
        }
    }
}

fn run_udp(sock: &UdpSocket, peer: SocketAddr, acts: Vec<Act>) {
    for a in acts {
        match a {
            Act::Send(b) => {
                let _ = sock.send_to(&b, peer);
            }
            Act::SendFromOtherPort(b) => {
                let other = UdpSocket::bind("127.0.0.1:0").unwrap();
                let _ = other.send_to(&b, peer);
            }
            Act::SendFromOtherAddr(b) => {
                let other = UdpSocket::bind(("127.0.0.2", sock.local_addr().unwrap().port()))
                    .or_else(|_| UdpSocket::bind("127.0.0.2:0"))
                    .unwrap();
                let _ = other.send_to(&b, peer);
            }
            Act::Sleep(d) => std::thread::sleep(d),
            Act::Close => return,
        }
    }
}

fn serve_tcp(listener: TcpListener, script: Script, seen: Arc<Mutex<Vec<Seen>>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, peer)) => {
                let (script, seen, stop) = (script.clone(), seen.clone(), stop.clone());
                std::thread::spawn(move || serve_conn(s, peer, script, seen, stop));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn serve_conn(mut s: TcpStream, peer: SocketAddr, script: Script, seen: Arc<Mutex<Vec<Seen>>>, stop: Arc<AtomicBool>) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    while !stop.load(Ordering::Relaxed) {
        let mut len = [0u8; 2];
        match s.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        }
        let mut wire = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        if s.read_exact(&mut wire).is_err() {
            return;
        }
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        seen.lock().unwrap().push(Seen {
            wire: wire.clone(),
            peer,
            tcp: true,
            at: Instant::now(),
        });
        for a in script(&wire, true) {
            match a {
                Act::Send(b) => {
                    let mut framed = (b.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&b);
                    if s.write_all(&framed).is_err() {
                        return;
                    }
                }
                Act::Sleep(d) => std::thread::sleep(d),
                Act::Close => return,
                Act::SendFromOtherPort(_) | Act::SendFromOtherAddr(_) => {}
            }
        }
    }
}

/// A resource record for [`reply`]: owner, type, TTL, RDATA.
pub struct Rec<'a>(pub &'a str, pub u16, pub u32, pub Vec<u8>);

/// A reply to `query` (its ID and question) with the given rcode and sections; names are
/// written uncompressed.
pub fn reply(query: &[u8], rcode: u8, answer: &[Rec<'_>], authority: &[Rec<'_>], additional: &[Rec<'_>]) -> Vec<u8> {
    let qlen = question_len(query);
    let mut m = Vec::with_capacity(512);
    m.extend_from_slice(&query[0..2]);
    m.push(0x80 | (query[2] & 0x01)); // QR, RD copied
    m.push(0x80 | (rcode & 0x0f)); // RA
    m.extend_from_slice(&[0, 1]);
    for n in [answer.len(), authority.len(), additional.len()] {
        m.extend_from_slice(&(n as u16).to_be_bytes());
    }
    m.extend_from_slice(&query[12..12 + qlen]);
    for r in answer.iter().chain(authority).chain(additional) {
        m.extend_from_slice(&super::name_wire(r.0));
        m.extend_from_slice(&r.1.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        m.extend_from_slice(&r.2.to_be_bytes());
        m.extend_from_slice(&(r.3.len() as u16).to_be_bytes());
        m.extend_from_slice(&r.3);
    }
    m
}

/// Length of the first question of `msg`.
pub fn question_len(msg: &[u8]) -> usize {
    let mut i = 12;
    while i < msg.len() && msg[i] != 0 {
        i += 1 + usize::from(msg[i]);
    }
    i + 1 + 4 - 12
}

/// The query's name in lowercase dotted form.
pub fn qname(query: &[u8]) -> String {
    let mut i = 12;
    let mut out = String::new();
    while i < query.len() && query[i] != 0 {
        let l = usize::from(query[i]);
        out.push_str(&String::from_utf8_lossy(&query[i + 1..i + 1 + l]).to_ascii_lowercase());
        out.push('.');
        i += 1 + l;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// The query's type.
pub fn qtype(query: &[u8]) -> u16 {
    let q = 12 + question_len(query) - 4;
    u16::from_be_bytes([query[q], query[q + 1]])
}

/// RDATA of an A record.
pub fn a(ip: [u8; 4]) -> Vec<u8> {
    ip.to_vec()
}

/// RDATA holding a name (CNAME, NS).
pub fn name(n: &str) -> Vec<u8> {
    super::name_wire(n)
}
