//! NOTIFY to secondaries (RFC 1996): when a zone that a `transfer` lists changes serial
//! (a zone file reloaded, a secondary zone transferred), each address of its `to` is told,
//! over UDP, until it answers or the tries run out (§3.6: retried; here 5 tries, waiting
//! 1, 2, 4, 8 and 16 s), from `source` when given. `*` and prefixes name no one to tell.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use domain::base::iana::Rtype;

use super::data::DataSet;
use crate::config::tsig::TsigKey;
use crate::config::{Config, TransferPeer};
use crate::dns::wire::{self, FLAGS1, flags1};
use crate::zone::name::{NameKey, display};

/// Tries per secondary.
const TRIES: u32 = 5;
/// NOTIFY's opcode (RFC 1996 §3.3).
const OPCODE_NOTIFY: u8 = 4;

/// The serial each transferred zone had when its secondaries were last told.
pub type Told = HashMap<Box<[u8]>, u32>;

/// A secondary to tell, the local address to tell it from, and the key that signs the
/// NOTIFY (the first of the block's `tsig`).
type Peer = (SocketAddr, Option<std::net::IpAddr>, Option<TsigKey>);

/// Each zone a `transfer` lists, its serial now, and the secondaries to tell.
fn zones(cfg: &Config, data: &DataSet) -> Vec<(Box<[u8]>, u32, Vec<Peer>)> {
    let mut out: Vec<(Box<[u8]>, u32, Vec<Peer>)> = Vec::new();
    for b in &cfg.blocks {
        let key = b.tsig.as_ref().and_then(crate::dns::tsig::signing_key);
        for t in &b.transfers {
            let hosts: Vec<Peer> =
                t.to.iter()
                    .filter_map(|p| match p {
                        TransferPeer::Host(a) => Some((*a, t.source, key.clone())),
                        _ => None,
                    })
                    .collect();
            for z in &t.zones {
                let apex: Box<[u8]> = NameKey::of(z).as_slice().into();
                let files = b.files.iter().filter_map(|f| data.zone(&f.path, z));
                let secondaries = b.secondaries.iter().filter_map(|s| {
                    data.secondaries
                        .get(&(s.directory.clone(), apex.clone()))
                        .and_then(|e| e.zone.clone())
                });
                let Some(zone) = files.chain(secondaries).next() else {
                    continue;
                };
                match out.iter_mut().find(|(a, _, _)| *a == apex) {
                    Some((_, _, to)) => to.extend(hosts.iter().cloned()),
                    None => out.push((apex, zone.serial(), hosts.clone())),
                }
            }
        }
    }
    out
}

/// The serials now, without telling anyone (at start-up: secondaries ask on their own).
pub fn serials(cfg: &Config, data: &DataSet) -> Told {
    zones(cfg, data).into_iter().map(|(a, s, _)| (a, s)).collect()
}

/// Tells the secondaries of every zone whose serial changed since `told`, and notes it.
/// Must run inside the control runtime (the sends are tasks of their own).
pub fn changes(cfg: &Config, data: &DataSet, told: &mut Told) {
    for (apex, serial, to) in zones(cfg, data) {
        if told.get(&apex) == Some(&serial) {
            continue;
        }
        told.insert(apex.clone(), serial);
        for (addr, source, key) in to {
            tokio::spawn(send(apex.clone(), serial, addr, source, key));
        }
    }
}

/// NOTIFY for `apex` to `to`, retried until it answers.
async fn send(apex: Box<[u8]>, serial: u32, to: SocketAddr, source: Option<std::net::IpAddr>, key: Option<TsigKey>) {
    let zone = display(&apex);
    let bind: SocketAddr = match source {
        Some(ip) => SocketAddr::new(ip, 0),
        None if to.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = match tokio::net::UdpSocket::bind(bind).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%zone, secondary = %to, error = %e, "NOTIFY not sent: its source address cannot be bound");
            return;
        }
    };
    if sock.connect(to).await.is_err() {
        return;
    }
    let mut id = [0u8; 2];
    let _ = getrandom::fill(&mut id);
    let mut msg = wire::query(&apex, Rtype::SOA, false);
    msg[0..2].copy_from_slice(&id);
    msg[FLAGS1] = (OPCODE_NOTIFY << flags1::OPCODE_SHIFT) | flags1::AA;
    // Signed once: the retries all fall well within the fudge (300 s).
    let mut client = None;
    if let Some(k) = key.as_ref().and_then(crate::dns::tsig::signer) {
        match crate::dns::tsig::sign_request(k, &msg) {
            Some((signed, c)) => {
                msg = signed;
                client = Some(c);
            }
            None => {
                tracing::warn!(%zone, secondary = %to, "NOTIFY not sent: it could not be signed");
                return;
            }
        }
    }
    let mut wait = Duration::from_secs(1);
    for _ in 0..TRIES {
        if sock.send(&msg).await.is_err() {
            break;
        }
        let mut buf = [0u8; 1232];
        let answered = tokio::time::timeout(wait, async {
            loop {
                match sock.recv(&mut buf).await {
                    Ok(n) if n >= wire::HEADER_LEN && buf[..2] == id && buf[FLAGS1] & flags1::QR != 0 => {
                        return Some(n);
                    }
                    Ok(_) => continue,
                    Err(_) => return None,
                }
            }
        })
        .await;
        if let Ok(Some(n)) = answered {
            match client.as_mut().map(|c| c.check(&buf[..n])) {
                Some(Err(e)) => {
                    tracing::warn!(%zone, serial, secondary = %to, error = %e, "NOTIFY answered, but not as signed")
                }
                _ => tracing::debug!(%zone, serial, secondary = %to, "NOTIFY answered"),
            }
            return;
        }
        wait *= 2;
    }
    tracing::warn!(%zone, serial, secondary = %to, "NOTIFY not answered after {TRIES} tries");
}
