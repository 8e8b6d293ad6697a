//! `loop`: after start-up and after each reload, each block with `loop` is sent its probe
//! (HINFO for a random name below its zone) at its own address, as CoreDNS's plugin does.
//! If the name arrives at the block a second time, the block's queries come back to it: a
//! forwarding loop, and ringdns stops with an error that says so.
//!
//! CoreDNS waits for a third sighting. ringdns stops at the second: a name only ringdns knows
//! that arrives twice has come back, and ringdns coalesces identical queries in flight, so a
//! looping probe may wait on itself instead of arriving a third time.
//!
//! Like CoreDNS: a probe without an answer is sent again every second for 30 s (the
//! sightings forgotten each time); the first answer ends the check, and so does the 30 s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;

use crate::config::{Config, LoopProbe, Scheme};
use crate::dns::wire;

/// How long a block is checked after start-up or a reload.
const CHECK_FOR: Duration = Duration::from_secs(30);
/// How long one probe waits for its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How often the sightings are looked at while the probe waits.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// Starts the check of every block of `cfg` with `loop` not yet checked; a loop found is
/// sent to `found` as the error to stop with.
pub fn spawn(cfg: &Config, found: &UnboundedSender<String>) {
    for b in &cfg.blocks {
        let Some(probe) = &b.loop_probe else { continue };
        // Plain DNS only: the probe is a plain query (a tls:// block is not probed).
        let Some(key) = b.keys.iter().find(|k| k.scheme == Scheme::Dns) else {
            probe.disable();
            continue;
        };
        if !probe.start() {
            continue;
        }
        let ip = match b.addrs().first() {
            Some(IpAddr::V4(a)) if a.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(IpAddr::V6(a)) if a.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            Some(a) => *a,
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        let zone = crate::zone::name::display(crate::zone::name::NameKey::of(&key.zone).as_slice());
        tokio::spawn(check(probe.clone(), SocketAddr::new(ip, key.port), zone, found.clone()));
    }
}

async fn check(probe: Arc<LoopProbe>, addr: SocketAddr, zone: String, found: UnboundedSender<String>) {
    let deadline = Instant::now() + CHECK_FOR;
    let query = message(&probe.name);
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let Ok(sock) = tokio::net::UdpSocket::bind(local).await else {
        probe.disable();
        return;
    };
    let looped = |probe: &LoopProbe| {
        (probe.seen() >= 2).then(|| {
            format!(
                "loop: a forwarding loop for zone {zone:?}: the probe \"HINFO {}\" sent to {addr} came back to it (a forward that points at ringdns itself, or at a server that forwards back); see the README",
                crate::zone::name::display(&probe.name)
            )
        })
    };
    while Instant::now() < deadline {
        let _ = sock.send_to(&query, addr).await;
        let until = Instant::now() + ANSWER_WITHIN;
        let mut buf = [0u8; 512];
        let mut answered = false;
        while Instant::now() < until && !answered {
            if let Some(e) = looped(&probe) {
                let _ = found.send(e);
                return;
            }
            if let Ok(Ok((n, from))) = tokio::time::timeout(LOOK_EVERY, sock.recv_from(&mut buf)).await {
                answered = from == addr && n >= wire::HEADER_LEN && buf[..2] == query[..2];
            }
        }
        if answered {
            // A copy of the probe may still be on its way back.
            tokio::time::sleep(LOOK_EVERY * 5).await;
            if let Some(e) = looped(&probe) {
                let _ = found.send(e);
                return;
            }
            break;
        }
        probe.reset();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    probe.disable();
}

/// The probe query: RD set (it is meant to be forwarded), HINFO for `name`.
fn message(name: &[u8]) -> Vec<u8> {
    let mut m = wire::query(name, domain::base::iana::Rtype::HINFO, true);
    let _ = getrandom::fill(&mut m[..2]);
    m
}
