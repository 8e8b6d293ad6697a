//! Black-box: `rrl` against forged sources, which loopback cannot carry. Two network
//! namespaces stand for two hosts on veth links to the server's namespace, with addresses
//! of the benchmarking range 198.18.0.0/15: an attacker that sends, through a raw socket,
//! queries whose source addresses are forged into the /24 of a real client (random ports,
//! so they reach every shard), and that real client. The server's replies to the forged
//! addresses are routed to the attacker's namespace, where a packet socket counts them.
//!
//! Shown: the full answers sent to the forged prefix stay within the allowance of each
//! shard, every other reply there is no larger than its query (the slip), so the flood is
//! not amplified; the real client with a valid DNS Cookie gets every answer while its
//! prefix is limited; `dig` without a cookie from the same /24 gets its answer over TCP
//! after a slip. The suite runs as root (it makes namespaces and raw sockets).

mod support;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::server::{Options, Server};

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 192.0.2.1\nbig TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"\nbig TXT \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\"\nbig TXT \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"\n";
const SECRET: &str = "e5e973e5a6b2a43f48e7dc849e37bfcf";
/// The allowance per shard, and the shards.
const PER_SECOND: u64 = 5;
const SHARDS: u64 = 2;
/// How many queries the attacker forges, at 1000 a second.
const FORGED: u32 = 10_000;

fn sh(cmd: &str) {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(out.status.success(), "{cmd}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The namespaces and links of one test, removed on drop.
struct Hosts {
    attacker: String,
    client: String,
    /// The third octet of the attacker's /24; the client's is the next.
    net: u8,
}

impl Hosts {
    fn new(tag: &str, net: u8) -> Hosts {
        let h = Hosts {
            attacker: format!("rrl-{tag}-atk"),
            client: format!("rrl-{tag}-cli"),
            net,
        };
        h.remove();
        let (a, c, n, m) = (&h.attacker, &h.client, net, net + 1);
        sh(&format!(
            "ip netns add {a} && ip netns add {c} \
             && ip link add ra{n} type veth peer name pa{n} netns {a} \
             && ip link add rc{n} type veth peer name pc{n} netns {c} \
             && ip addr add 198.18.{n}.1/24 dev ra{n} && ip link set ra{n} up \
             && ip addr add 198.18.{m}.1/24 dev rc{n} && ip link set rc{n} up \
             && sysctl -qw net.ipv4.conf.ra{n}.rp_filter=0 \
             && ip -n {a} addr add 198.18.{n}.2/24 dev pa{n} && ip -n {a} link set pa{n} up && ip -n {a} link set lo up \
             && ip -n {c} addr add 198.18.{m}.2/24 dev pc{n} && ip -n {c} link set pc{n} up && ip -n {c} link set lo up \
             && ip -n {a} route add default via 198.18.{n}.1 \
             && ip -n {c} route add default via 198.18.{m}.1 \
             && ip route add 198.18.{m}.128/25 via 198.18.{n}.2"
        ));
        h
    }

    /// The server's address, in the attacker's /24.
    fn server(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, self.net, 1)
    }

    /// The address the real client has; the attacker forges the upper half of its /24.
    fn client_net(&self) -> u8 {
        self.net + 1
    }

    fn remove(&self) {
        let _ = Command::new("ip").args(["netns", "del", &self.attacker]).output();
        let _ = Command::new("ip").args(["netns", "del", &self.client]).output();
        let _ = Command::new("ip")
            .args(["route", "del", &format!("198.18.{}.128/25", self.net + 1)])
            .output();
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Runs `f` on a thread that has entered namespace `ns`: sockets it makes live there.
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> std::thread::JoinHandle<T> {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap();
        // SAFETY: setns on a descriptor this thread owns; it changes this thread's network
        // namespace only.
        let r = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
        assert_eq!(r, 0, "setns {path}: {}", std::io::Error::last_os_error());
        f()
    })
}

fn checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xFFFF {
        sum = (sum & 0xFFFF) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 datagram from `src` (forged) carrying `payload` over UDP (RFC 768: a zero
/// checksum is none).
fn datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        unreachable!("IPv4 only")
    };
    let total = (20 + 8 + payload.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0x40, 0, 64, 17, 0, 0]);
    p.extend_from_slice(&s.ip().octets());
    p.extend_from_slice(&d.ip().octets());
    let c = checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(&s.port().to_be_bytes());
    p.extend_from_slice(&d.port().to_be_bytes());
    p.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    p
}

/// What the attacker's namespace saw of the server's replies to the forged addresses.
#[derive(Debug, Default)]
struct Reflected {
    /// UDP payload octets of full answers (TC clear).
    full_bytes: u64,
    full: u64,
    /// Of truncated replies.
    slipped_bytes: u64,
    slipped: u64,
}

/// Counts, with a packet socket, the server's UDP replies arriving in this namespace until
/// `stop`.
fn count_replies(server: SocketAddr, stop: Arc<AtomicBool>) -> Reflected {
    // SAFETY: a socket call with constant arguments; the descriptor is closed below.
    let fd = unsafe {
        libc::socket(
            libc::AF_PACKET,
            libc::SOCK_DGRAM,
            (libc::ETH_P_IP as u16).to_be() as i32,
        )
    };
    assert!(fd >= 0, "packet socket: {}", std::io::Error::last_os_error());
    let tv = libc::timeval {
        tv_sec: 0,
        tv_usec: 100_000,
    };
    // SAFETY: sets a timeout from a valid timeval of the size given.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        )
    };
    let SocketAddr::V4(srv) = server else { unreachable!() };
    let mut seen = Reflected::default();
    let mut buf = [0u8; 2048];
    while !stop.load(Ordering::SeqCst) {
        // SAFETY: reads into a buffer of the length given.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 28 {
            continue;
        }
        let p = &buf[..n as usize];
        let ihl = usize::from(p[0] & 0x0F) * 4;
        if p[9] != 17 || p[12..16] != srv.ip().octets() || p.len() < ihl + 8 + 12 {
            continue;
        }
        if u16::from_be_bytes([p[ihl], p[ihl + 1]]) != srv.port() {
            continue;
        }
        let dns = &p[ihl + 8..];
        if dns[2] & 0x02 != 0 {
            seen.slipped += 1;
            seen.slipped_bytes += dns.len() as u64;
        } else {
            seen.full += 1;
            seen.full_bytes += dns.len() as u64;
        }
    }
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    seen
}

/// Sends `count` forged queries for big.example.test TXT at `per_second` from random ports
/// of the upper half of the client's /24; the octets sent.
fn forge(server: SocketAddr, client_net: u8, count: u32, per_second: u32) -> u64 {
    // SAFETY: a socket call with constant arguments; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    assert!(fd >= 0, "raw socket: {}", std::io::Error::last_os_error());
    let SocketAddr::V4(srv) = server else { unreachable!() };
    let to = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: srv.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(*srv.ip()).to_be(),
        },
        sin_zero: [0; 8],
    };
    let mut sent = 0u64;
    let start = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..count {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let host = 128 + (rng % 127) as u8;
        let port = 1024 + ((rng >> 8) % 60000) as u16;
        let src = SocketAddr::from(([198, 18, client_net, host], port));
        let q = support::q("big.example.test", Rtype::TXT).id(i as u16).wire();
        let d = datagram(src, server, &q);
        let due = start + Duration::from_secs_f64(f64::from(i) / f64::from(per_second));
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        // SAFETY: sends a buffer of the length given to a valid sockaddr_in.
        let n = unsafe {
            libc::sendto(
                fd,
                d.as_ptr().cast(),
                d.len(),
                0,
                (&to as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            )
        };
        assert_eq!(n, d.len() as isize, "sendto: {}", std::io::Error::last_os_error());
        sent += q.len() as u64;
    }
    // SAFETY: closes the descriptor opened above, once.
    unsafe { libc::close(fd) };
    sent
}

/// The COOKIE option of a reply.
fn reply_cookie(w: &[u8]) -> Option<Vec<u8>> {
    let (_, _, _, options) = support::Reply::parse(w).opt()?;
    options.into_iter().find(|(c, _)| *c == 10).map(|(_, d)| d)
}

fn cookie_query(id: u16, cookie: &[u8]) -> Vec<u8> {
    support::q("big.example.test", Rtype::TXT)
        .id(id)
        .edns(1232)
        .option(10, cookie)
        .wire()
}

both_drivers!(forged_floods_are_bounded_and_proven_clients_are_answered, |driver| {
    let net = if driver == "legacy" { 12 } else { 10 };
    let hosts = Hosts::new(&format!("{net}"), net);
    let server_ip = hosts.server();
    let s = Server::start(
        Options::new(
            driver,
            &format!(
                "example.test:{{PORT}} {{\n    bind 127.0.0.1 {server_ip}\n    file {{DIR}}/db\n    prometheus 127.0.0.1:{{PORT2}}\n    cookies {{\n        secret {SECRET}\n    }}\n    rrl {{\n        responses-per-second {PER_SECOND}\n        slip-ratio 2\n    }}\n}}\n"
            ),
        )
        .file("db", ZONE)
        .arg("--shards")
        .arg(&SHARDS.to_string()),
    );
    let server = SocketAddr::from((server_ip, s.port));
    // The real client gets a server cookie before the flood.
    let client_ns = hosts.client.clone();
    let (cookie_tx, cookie_rx) = std::sync::mpsc::channel::<()>();
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicU64::new(0));
    let (stop_c, answered_c) = (stop.clone(), answered.clone());
    let proven = in_netns(&client_ns, move || {
        let sock = UdpSocket::bind("0.0.0.0:0").unwrap();
        sock.connect(server).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 4096];
        sock.send(&cookie_query(0, &[9u8; 8])).unwrap();
        let n = sock.recv(&mut buf).expect("a first reply");
        let ours = reply_cookie(&buf[..n]).expect("a server cookie");
        cookie_tx.send(()).unwrap();
        let mut asked = 0u64;
        while !stop_c.load(Ordering::SeqCst) {
            asked += 1;
            sock.send(&cookie_query(asked as u16, &ours)).unwrap();
            if let Ok(n) = sock.recv(&mut buf) {
                let r = support::Reply::parse(&buf[..n]);
                if !r.tc() && r.answer().len() == 3 {
                    answered_c.fetch_add(1, Ordering::SeqCst);
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        asked
    });
    cookie_rx
        .recv_timeout(Duration::from_secs(5))
        .expect("the client got a cookie");
    let attacker = hosts.attacker.clone();
    let stop_count = Arc::new(AtomicBool::new(false));
    let stop_k = stop_count.clone();
    let counter = in_netns(&attacker, move || count_replies(server, stop_k));
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let client_net = hosts.client_net();
    let flood = in_netns(&attacker, move || forge(server, client_net, FORGED, 1000));
    // During the flood, dig without a cookie from the real client's /24 is limited too,
    // and gets its answer over TCP after a slip. The account's limited replies slip in
    // turn (slip-ratio 2) whoever asked, so a single try of dig is dropped half the time:
    // it tries again, once a second, while the flood lasts (one in 2^9 runs gets no slip).
    std::thread::sleep(Duration::from_millis(800));
    let mut dig = String::new();
    while !flood.is_finished() {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &hosts.client,
                "dig",
                "+nocookie",
                "+time=1",
                "+tries=1",
            ])
            .arg(format!("@{server_ip}"))
            .args(["-p", &s.port.to_string(), "big.example.test", "TXT"])
            .output()
            .unwrap();
        dig = String::from_utf8_lossy(&out.stdout).into_owned();
        if dig.contains("Truncated, retrying in TCP mode") {
            break;
        }
    }
    let sent = flood.join().unwrap();
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    stop_count.store(true, Ordering::SeqCst);
    let asked = proven.join().unwrap();
    let seen = counter.join().unwrap();
    assert!(
        dig.contains("Truncated, retrying in TCP mode") && dig.contains("aaaa"),
        "{dig}"
    );
    // Every query of the proven client was answered, flood or not.
    assert!(asked >= 20, "{asked}");
    assert_eq!(answered.load(Ordering::SeqCst), asked, "the proven client lost answers");
    // Full answers to the forged prefix: the allowance of each shard over the flood.
    let answer_size = seen.full_bytes / seen.full.max(1);
    // (A second's burst, then the allowance; one more per shard for the clock.)
    let bound = SHARDS * PER_SECOND * (took.as_secs_f64() + 1.0).ceil() as u64 + SHARDS;
    assert!(seen.full >= PER_SECOND && seen.full <= bound, "{seen:?} bound {bound}");
    assert!(seen.full_bytes <= bound * answer_size);
    // Every other reply is the question alone, no larger than its query.
    let query_size = sent / u64::from(FORGED);
    assert!(seen.slipped_bytes <= seen.slipped * query_size, "{seen:?}");
    assert!(
        seen.slipped >= u64::from(FORGED) / 3,
        "half of the limited replies slip: {seen:?}"
    );
    let reflected = seen.full_bytes + seen.slipped_bytes;
    assert!(reflected < sent, "amplified: {reflected} octets back for {sent} sent");
    eprintln!(
        "{driver}: {sent} octets forged in {took:?}, {reflected} reflected ({:.2}x): {seen:?}",
        reflected as f64 / sent as f64
    );
});
