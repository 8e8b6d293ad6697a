//! An open-loop UDP load for `tuning/overload`: it offers a fixed rate whatever the server
//! answers (dnsperf is closed-loop: it slows down as answers stop, and bursts its
//! outstanding queries when they return), and reports the answers per second and the
//! latency of every answer.
//!
//! Usage: `flood ADDR:PORT QUERY_FILE RATE SECONDS [do]`. QUERY_FILE holds `NAME TYPE`
//! lines (dnsperf's format, A AAAA TXT MX NS SOA only). Prints one line per second,
//! `second N sent S answered A`, and at the end
//! `summary sent S answered A p50_ms X p99_ms Y max_ms Z`. An answer later than two
//! seconds counts as lost.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Sockets the load is spread over (each keeps its own 65536 IDs in flight).
const SOCKETS: usize = 8;
/// An answer later than this is lost.
const TIMEOUT: Duration = Duration::from_secs(2);

fn qtype(t: &str) -> Option<u16> {
    Some(match t {
        "A" => 1,
        "NS" => 2,
        "SOA" => 6,
        "MX" => 15,
        "TXT" => 16,
        "AAAA" => 28,
        _ => return None,
    })
}

fn wire(name: &str, t: u16, dnssec_ok: bool) -> Vec<u8> {
    let mut m = vec![0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, u8::from(dnssec_ok)];
    for label in name.trim_end_matches('.').split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.push(0);
    m.extend_from_slice(&t.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    if dnssec_ok {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xD0, 0, 0, 0x80, 0, 0, 0]);
    }
    m
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: flood ADDR:PORT QUERY_FILE RATE SECONDS [do]");
        std::process::exit(2);
    }
    let server: SocketAddr = args[1].parse().expect("ADDR:PORT");
    let text = std::fs::read_to_string(&args[2]).expect("QUERY_FILE");
    let rate: u64 = args[3].parse().expect("RATE");
    let seconds: u64 = args[4].parse().expect("SECONDS");
    let dnssec_ok = args.get(5).is_some_and(|a| a == "do");
    let queries: Vec<Vec<u8>> = text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (n, t) = (w.next()?, qtype(w.next()?)?);
            Some(wire(n, t, dnssec_ok))
        })
        .collect();
    assert!(!queries.is_empty(), "no queries in {}", args[2]);
    let start = Instant::now();
    let sockets: Vec<Arc<UdpSocket>> = (0..SOCKETS)
        .map(|_| {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            s.connect(server).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            Arc::new(s)
        })
        .collect();
    // When each ID of each socket was sent (nanoseconds since start, +1; 0: none waiting).
    let sent_at: Arc<Vec<AtomicU64>> = Arc::new((0..SOCKETS * 65536).map(|_| AtomicU64::new(0)).collect());
    let seconds_n = seconds as usize + 4;
    let answered: Arc<Vec<AtomicU64>> = Arc::new((0..seconds_n).map(|_| AtomicU64::new(0)).collect());
    let done = Arc::new(AtomicBool::new(false));
    let receivers: Vec<_> = sockets
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let (s, sent_at, answered, done) = (s.clone(), sent_at.clone(), answered.clone(), done.clone());
            std::thread::spawn(move || {
                let mut lat: Vec<u32> = Vec::new();
                let mut buf = [0u8; 4096];
                while !done.load(Ordering::Relaxed) {
                    let Ok(n) = s.recv(&mut buf) else { continue };
                    if n < 12 {
                        continue;
                    }
                    let id = usize::from(u16::from_be_bytes([buf[0], buf[1]]));
                    let t = sent_at[k * 65536 + id].swap(0, Ordering::Relaxed);
                    if t == 0 {
                        continue;
                    }
                    let now = start.elapsed().as_nanos() as u64;
                    let waited = now.saturating_sub(t - 1);
                    if waited > TIMEOUT.as_nanos() as u64 {
                        continue;
                    }
                    lat.push((waited / 1000) as u32);
                    if let Some(c) = answered.get((now / 1_000_000_000) as usize) {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
                lat
            })
        })
        .collect();
    let total = rate * seconds;
    let mut sent_per_second = vec![0u64; seconds_n];
    let mut ids = [0u16; SOCKETS];
    for i in 0..total {
        let due = Duration::from_nanos(i * 1_000_000_000 / rate);
        let now = start.elapsed();
        if due > now {
            let wait = due - now;
            if wait > Duration::from_micros(200) {
                std::thread::sleep(wait);
            }
        }
        let k = (i as usize) % SOCKETS;
        let id = ids[k];
        ids[k] = ids[k].wrapping_add(1);
        let mut q = queries[(i as usize) % queries.len()].clone();
        q[..2].copy_from_slice(&id.to_be_bytes());
        sent_at[k * 65536 + usize::from(id)].store(start.elapsed().as_nanos() as u64 + 1, Ordering::Relaxed);
        if sockets[k].send(&q).is_ok() {
            sent_per_second[start.elapsed().as_secs() as usize] += 1;
        }
    }
    std::thread::sleep(TIMEOUT);
    done.store(true, Ordering::Relaxed);
    let mut lat: Vec<u32> = receivers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    lat.sort_unstable();
    for (s, sent) in sent_per_second.iter().enumerate().take(seconds as usize) {
        println!(
            "second {s} sent {sent} answered {}",
            answered[s].load(Ordering::Relaxed)
        );
    }
    let pick = |q: f64| {
        lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |v| f64::from(*v) / 1000.0)
    };
    println!(
        "summary sent {} answered {} p50_ms {:.3} p99_ms {:.3} max_ms {:.3}",
        sent_per_second.iter().sum::<u64>(),
        lat.len(),
        pick(0.5),
        pick(0.99),
        lat.last().map_or(0.0, |v| f64::from(*v) / 1000.0)
    );
}
