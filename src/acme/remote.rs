//! DNS-01 values published on a server ringdns does not run (`tls acme { dns ... }`).
//! `rfc2136`: the name's zone found by asking that server (a CNAME at `_acme-challenge.<name>`
//! followed, as the CA will), the value added by an RFC 2136 update signed with the key and
//! deleted again once the order is over. `acme_dns`: the value set by the acme-dns API at
//! the registration's name. Either way every authoritative server is asked until it answers
//! the value, and the CA is told only then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use domain::base::iana::{Class, Opcode, Rcode, Rtype};
use domain::base::rdata::UnknownRecordData;
use domain::base::{Message, MessageBuilder, Name, ParsedName, Record, Ttl};
use domain::rdata::AllRecordData;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::AcmeError;
use crate::config::DnsPublisher;
use crate::zone::name::{NameKey, display as name_text, from_wire};

/// The TTL of a published value (a resolver keeps it no longer than an order lasts).
const VALUE_TTL: u32 = 60;
/// How long one exchange with a server may take.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long every authoritative server gets to answer the value.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(60);
/// The most CNAMEs followed from a challenge name.
const MAX_CNAMES: usize = 8;

/// One message over TCP to `server` (RFC 7766 framing) and its reply.
async fn exchange(server: SocketAddr, msg: &[u8]) -> Result<Vec<u8>, String> {
    let run = async {
        let mut s = tokio::net::TcpStream::connect(server).await?;
        let len = u16::try_from(msg.len()).map_err(|_| std::io::Error::other("message too long"))?;
        let mut framed = len.to_be_bytes().to_vec();
        framed.extend_from_slice(msg);
        s.write_all(&framed).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
        s.read_exact(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    match tokio::time::timeout(EXCHANGE_TIMEOUT, run).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("{server}: {e}")),
        Err(_) => Err(format!("{server}: no reply within {EXCHANGE_TIMEOUT:?}")),
    }
}

fn random_id() -> u16 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    u16::from_be_bytes(b)
}

/// A non-recursive query for `name` and `rtype`.
fn query(name: &[u8], rtype: Rtype) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(random_id());
    let mut q = b.question();
    let _ = q.push((from_wire(name), rtype, Class::IN));
    q.finish()
}

/// The records of a reply's answer (or authority) section: owner (lowercase wire), type,
/// data (uncompressed).
fn records(reply: &[u8], authority: bool) -> Vec<(Box<[u8]>, Rtype, Vec<u8>)> {
    use domain::base::rdata::ComposeRecordData;
    let Ok(m) = Message::from_octets(reply) else {
        return Vec::new();
    };
    let section = if authority { m.authority() } else { m.answer() };
    let Ok(section) = section else { return Vec::new() };
    section
        .flatten()
        .filter_map(|rr| {
            let owner: Box<[u8]> = NameKey::of(&rr.owner()).as_slice().into();
            let rec = rr.into_record::<AllRecordData<_, ParsedName<_>>>().ok()??;
            let mut data = Vec::new();
            rec.data().compose_rdata(&mut data).ok()?;
            Some((owner, rec.rtype(), data))
        })
        .collect()
}

/// A name in an rdata that is only a name (CNAME, NS), lowercase wire.
fn rdata_name(data: &[u8]) -> Option<Box<[u8]>> {
    let n = Name::from_octets(data.to_vec()).ok()?;
    Some(NameKey::of(&n).as_slice().into())
}

/// The name the CA will read the value at (CNAMEs from `name` followed), and its zone.
async fn target_and_zone(server: SocketAddr, name: &[u8]) -> Result<(Box<[u8]>, Box<[u8]>), String> {
    let mut at: Box<[u8]> = name.into();
    for _ in 0..MAX_CNAMES {
        let reply = exchange(server, &query(&at, Rtype::TXT)).await?;
        let cname = records(&reply, false)
            .into_iter()
            .find(|(o, t, _)| *t == Rtype::CNAME && **o == *at)
            .and_then(|(_, _, d)| rdata_name(&d));
        match cname {
            Some(next) => at = next,
            None => break,
        }
    }
    let reply = exchange(server, &query(&at, Rtype::SOA)).await?;
    let soa = records(&reply, false)
        .into_iter()
        .chain(records(&reply, true))
        .find(|(_, t, _)| *t == Rtype::SOA)
        .map(|(o, _, _)| o)
        .ok_or_else(|| format!("{server} names no zone (SOA) for {}", name_text(&at)))?;
    Ok((at, soa))
}

/// TXT rdata of one character-string.
fn txt(value: &str) -> Vec<u8> {
    let b = &value.as_bytes()[..value.len().min(255)];
    let mut out = vec![b.len() as u8];
    out.extend_from_slice(b);
    out
}

/// An UPDATE of `zone` with one record: `value` at `name` added (class IN) or deleted
/// (class NONE, RFC 2136 §2.5.4).
fn update(zone: &[u8], name: &[u8], value: &str, add: bool) -> Vec<u8> {
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_id(random_id());
    b.header_mut().set_opcode(Opcode::UPDATE);
    let mut q = b.question();
    let _ = q.push((from_wire(zone), Rtype::SOA, Class::IN));
    let mut a = q.answer().authority();
    let (class, ttl) = if add { (Class::IN, VALUE_TTL) } else { (Class::NONE, 0) };
    if let Ok(data) = UnknownRecordData::from_octets(Rtype::TXT, txt(value)) {
        let _ = a.push(Record::new(from_wire(name), class, Ttl::from_secs(ttl), data));
    }
    a.finish()
}

/// Sends `msg` signed with the publisher's key; the reply's rcode must be NOERROR and its
/// signature check.
async fn signed(server: SocketAddr, key: &crate::config::tsig::TsigKey, msg: &[u8]) -> Result<(), String> {
    let signer: Arc<domain::tsig::Key> =
        crate::dns::tsig::signer(key).ok_or_else(|| format!("the key {} does not make a TSIG key", key.name))?;
    let (wire, mut check) = crate::dns::tsig::sign_request(signer, msg).ok_or("the update cannot be signed")?;
    let reply = exchange(server, &wire).await?;
    let rcode = Message::from_octets(&reply[..])
        .map(|m| m.header().rcode())
        .map_err(|_| format!("{server}: a reply that does not parse"))?;
    if rcode != Rcode::NOERROR {
        return Err(format!("{server} answered the update {rcode}"));
    }
    check.check(&reply).map_err(|e| format!("{server}: {e}"))?;
    Ok(())
}

/// Where a value went: its zone and name, for the deletion afterwards.
#[derive(Clone, Debug)]
pub struct Published {
    zone: Box<[u8]>,
    name: Box<[u8]>,
    value: String,
}

/// Publishes every value and returns once every authoritative server answers each one.
pub async fn publish(p: &DnsPublisher, values: &[(NameKey, String)]) -> Result<Vec<Published>, AcmeError> {
    let (server, key, check) = match p {
        DnsPublisher::Rfc2136 { server, key, check } => (server, key, check),
        DnsPublisher::AcmeDns { url, .. } => {
            return publish_acme_dns(p, values)
                .await
                .map_err(|e| AcmeError::Board(format!("dns acme_dns {url}: {e}")));
        }
    };
    let fail = |e: String| AcmeError::Board(format!("dns rfc2136 {server}: {e}"));
    let mut done = Vec::new();
    for (name, value) in values {
        let (target, zone) = target_and_zone(*server, name.as_slice()).await.map_err(fail)?;
        signed(*server, key, &update(&zone, &target, value, true))
            .await
            .map_err(fail)?;
        tracing::info!(name = %name_text(&target), zone = %name_text(&zone), %server, "ACME: challenge value published by RFC 2136");
        done.push(Published {
            zone,
            name: target,
            value: value.clone(),
        });
    }
    for p in &done {
        let servers = match check.is_empty() {
            false => check.clone(),
            true => authoritative(*server, &p.zone).await.map_err(fail)?,
        };
        wait_served(&servers, p).await.map_err(fail)?;
    }
    Ok(done)
}

/// The zone's authoritative servers: its NS names' addresses (asked of `server`), port 53.
async fn authoritative(server: SocketAddr, zone: &[u8]) -> Result<Vec<SocketAddr>, String> {
    let reply = exchange(server, &query(zone, Rtype::NS)).await?;
    let mut out = Vec::new();
    for (_, _, d) in records(&reply, false).into_iter().filter(|(_, t, _)| *t == Rtype::NS) {
        let Some(ns) = rdata_name(&d) else { continue };
        for t in [Rtype::A, Rtype::AAAA] {
            let r = exchange(server, &query(&ns, t)).await?;
            for (_, rt, data) in records(&r, false) {
                let ip = match (rt, data.as_slice()) {
                    (Rtype::A, &[a, b, c, d]) => std::net::IpAddr::from([a, b, c, d]),
                    (Rtype::AAAA, d) if d.len() == 16 => {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(d);
                        std::net::IpAddr::from(o)
                    }
                    _ => continue,
                };
                out.push(SocketAddr::new(ip, 53));
            }
        }
    }
    if out.is_empty() {
        return Err(format!("no address for the name servers of {}", name_text(zone)));
    }
    Ok(out)
}

/// Asks each server for the value until it answers it, within [`PROPAGATION_TIMEOUT`].
async fn wait_served(servers: &[SocketAddr], p: &Published) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + PROPAGATION_TIMEOUT;
    let want = txt(&p.value);
    for s in servers {
        loop {
            let served = exchange(*s, &query(&p.name, Rtype::TXT))
                .await
                .map(|r| {
                    records(&r, false)
                        .iter()
                        .any(|(_, t, d)| *t == Rtype::TXT && *d == want)
                })
                .unwrap_or(false);
            if served {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{s} did not answer the value at {} within {PROPAGATION_TIMEOUT:?}; not asking the CA to validate",
                    name_text(&p.name)
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

/// Deletes the published values (best effort: a failure is logged; the value expires
/// with its TTL and the next order replaces nothing of it).
pub async fn withdraw(p: DnsPublisher, published: Vec<Published>) {
    // acme-dns has no deletion: the next update replaces the older of its two values.
    let DnsPublisher::Rfc2136 { server, key, .. } = &p else {
        return;
    };
    for v in published {
        match signed(*server, key, &update(&v.zone, &v.name, &v.value, false)).await {
            Ok(()) => tracing::info!(name = %name_text(&v.name), %server, "ACME: challenge value removed"),
            Err(e) => {
                tracing::warn!(name = %name_text(&v.name), %server, error = %e, "ACME: the challenge value could not be removed")
            }
        }
    }
}

/// acme-dns: each value set by `POST /update`, then asked of the check servers at the
/// registration's name (its `fulldomain`, or the CNAME target of the challenge name).
async fn publish_acme_dns(p: &DnsPublisher, values: &[(NameKey, String)]) -> Result<Vec<Published>, String> {
    let DnsPublisher::AcmeDns {
        url,
        username,
        password,
        subdomain,
        fulldomain,
        check,
    } = p
    else {
        return Err("not an acme-dns publisher".into());
    };
    let client = http_client()?;
    let mut done = Vec::new();
    for (name, value) in values {
        let body = serde_json::json!({ "subdomain": subdomain, "txt": value }).to_string();
        let req = hyper::Request::post(format!("{url}/update"))
            .header("X-Api-User", username.as_str())
            .header("X-Api-Key", password.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let rsp = tokio::time::timeout(EXCHANGE_TIMEOUT, client.request(req))
            .await
            .map_err(|_| format!("no answer within {EXCHANGE_TIMEOUT:?}"))?
            .map_err(|e| e.to_string())?;
        let status = rsp.status();
        let text = http_body_util::BodyExt::collect(rsp.into_body())
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
            .unwrap_or_default();
        if !status.is_success() {
            return Err(format!("/update answered {status}: {text}"));
        }
        // Where the CA will read it: the registration's name, found as it will find it.
        let at: Box<[u8]> = match fulldomain {
            Some(n) => NameKey::of(n).as_slice().into(),
            None => cname_target(check, name.as_slice()).await?,
        };
        tracing::info!(name = %name_text(&at), %url, "ACME: challenge value published by acme-dns");
        done.push(Published {
            zone: Box::default(),
            name: at,
            value: value.clone(),
        });
    }
    for d in &done {
        wait_served(check, d).await?;
    }
    Ok(done)
}

/// The CNAME target of `name` as one of `servers` answers it.
async fn cname_target(servers: &[SocketAddr], name: &[u8]) -> Result<Box<[u8]>, String> {
    for s in servers {
        let Ok(reply) = exchange(*s, &query(name, Rtype::CNAME)).await else {
            continue;
        };
        if let Some(t) = records(&reply, false)
            .into_iter()
            .find(|(o, t, _)| *t == Rtype::CNAME && **o == *name)
            .and_then(|(_, _, d)| rdata_name(&d))
        {
            return Ok(t);
        }
    }
    Err(format!(
        "no CNAME at {} on {servers:?}: point it at the registration's fulldomain, or give fulldomain",
        name_text(name)
    ))
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// An HTTP client for the acme-dns API: https with the system's roots, or plain http (the
/// configuration allows it to loopback only).
fn http_client() -> Result<HttpClient, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_platform_verifier(crate::tls::certs::provider())
        .map_err(|e| format!("system trust store: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector))
}
