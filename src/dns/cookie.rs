//! DNS Cookies (RFC 7873) with the interoperable server cookies of RFC 9018: version 1,
//! three reserved octets, a timestamp and a SipHash-2-4 over the client cookie, those eight
//! octets and the client's address, keyed with the server secret (domain's implementation).
//! Every node of a fleet given the same secret makes and accepts the same cookies.
//!
//! What a request's cookie earns (RFC 7873 §5.2): a client cookie alone, or one with a
//! server cookie that does not check, is answered normally with a fresh server cookie; a
//! server cookie that checks (made less than an hour ago, at most five minutes ahead, with
//! the current or the previous secret) proves the source address, and is sent back as it
//! is while it is younger than half an hour and made with the current secret (RFC 9018
//! §4.3), made again otherwise.

use std::net::IpAddr;
use std::sync::OnceLock;

use domain::base::Serial;
use domain::base::opt::cookie::{ClientCookie, Cookie, ServerCookie, StandardServerCookie};

/// A client cookie's length (RFC 7873 §4).
pub const CLIENT_LEN: usize = 8;
/// The shortest and longest server cookies (RFC 7873 §4).
pub const SERVER_MIN: usize = 8;
/// See [`SERVER_MIN`].
pub const SERVER_MAX: usize = 32;
/// The server cookies made here (RFC 9018 §4.2).
pub const SERVER_LEN: usize = 16;
/// What a reply's COOKIE option holds: the client's cookie and ours.
pub const REPLY_LEN: usize = CLIENT_LEN + SERVER_LEN;
/// A server cookie is good for an hour (RFC 9018 §4.3)...
const VALIDITY: u32 = 3600;
/// ...made again after half an hour...
const RENEW_AFTER: u32 = 1800;
/// ...and taken from clocks up to five minutes ahead.
const AHEAD: u32 = 300;

/// Whether a COOKIE option's length is one RFC 7873 §5.2.2 accepts: a client cookie alone,
/// or with a server cookie of 8 to 32 octets.
pub fn well_formed(len: usize) -> bool {
    len == CLIENT_LEN || (CLIENT_LEN + SERVER_MIN..=CLIENT_LEN + SERVER_MAX).contains(&len)
}

/// The server secrets: the one cookies are made with, and the one before it, still taken
/// during a rollover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Secrets {
    /// Makes and checks cookies.
    pub current: [u8; 16],
    /// Checks cookies only.
    pub previous: Option<[u8; 16]>,
}

impl Secrets {
    /// The secret of this process when the configuration gives none: random, made once, so
    /// that a reload keeps the cookies clients hold.
    pub fn process() -> &'static Secrets {
        static SECRETS: OnceLock<Secrets> = OnceLock::new();
        SECRETS.get_or_init(|| {
            let mut current = [0u8; 16];
            // Without the OS's randomness there is no secret worth the name: the time and
            // the process then, which at least differ between nodes.
            if getrandom::fill(&mut current).is_err() {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                current[..16].copy_from_slice(&(t ^ u128::from(std::process::id())).to_le_bytes());
            }
            Secrets {
                current,
                previous: None,
            }
        })
    }
}

/// What the request's cookie showed (the order of `ringdns_cookies_total`'s counters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A client cookie alone.
    ClientOnly = 0,
    /// A server cookie that is not ours, too old, from the future or forged.
    Bad = 1,
    /// A server cookie we made for this client: its address is proven.
    Valid = 2,
}

/// A request's cookie and the one its reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answered {
    /// What the request's cookie showed.
    pub verdict: Verdict,
    /// The reply's COOKIE option data.
    pub reply: [u8; REPLY_LEN],
}

/// Checks the COOKIE option `data` (of a [`well_formed`] length) from `client` at `now`
/// (seconds since the epoch) and makes the reply's.
pub fn answer(data: &[u8], client: IpAddr, now: u32, secrets: &Secrets) -> Option<Answered> {
    let client_cookie = ClientCookie::from_octets(data.get(..CLIENT_LEN)?.try_into().ok()?);
    let server = data
        .get(CLIENT_LEN..)
        .filter(|s| !s.is_empty())
        .map(ServerCookie::from_octets);
    let cookie = Cookie::new(client_cookie, server);
    let fresh = |stamp: Serial| {
        let age = now.wrapping_sub(stamp.into_int()) as i32;
        age <= VALIDITY as i32 && age >= -(AHEAD as i32)
    };
    let checks = |secret: &[u8; 16]| cookie.check_server_hash(client, secret, fresh);
    let (verdict, reuse) = match cookie.server() {
        None => (Verdict::ClientOnly, false),
        Some(_) if checks(&secrets.current) => {
            let made = cookie.server().and_then(|s| s.try_to_standard()).map(|s| s.timestamp());
            let young = made.is_some_and(|m| (now.wrapping_sub(m.into_int()) as i32) < RENEW_AFTER as i32);
            (Verdict::Valid, young)
        }
        Some(_) if secrets.previous.is_some_and(|p| checks(&p)) => (Verdict::Valid, false),
        Some(_) => (Verdict::Bad, false),
    };
    let mut reply = [0u8; REPLY_LEN];
    reply[..CLIENT_LEN].copy_from_slice(&data[..CLIENT_LEN]);
    if reuse {
        reply[CLIENT_LEN..].copy_from_slice(&data[CLIENT_LEN..REPLY_LEN]);
    } else {
        let made = StandardServerCookie::calculate(client_cookie, Serial(now), client, &secrets.current);
        reply[CLIENT_LEN..].copy_from_slice(ServerCookie::from(made).as_ref());
    }
    Some(Answered { verdict, reply })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 9018 Appendix A.1: a resolver at 198.51.100.100 learns a server cookie.
    #[test]
    fn learning_a_new_server_cookie_as_rfc_9018_a1() {
        let secrets = Secrets {
            current: hex("e5e973e5a6b2a43f48e7dc849e37bfcf").try_into().unwrap(),
            previous: None,
        };
        let client: IpAddr = "198.51.100.100".parse().unwrap();
        let a = answer(&hex("2464c4abcf10c957"), client, 1559731985, &secrets).unwrap();
        assert_eq!(a.verdict, Verdict::ClientOnly);
        assert_eq!(
            a.reply.to_vec(),
            hex("2464c4abcf10c957010000005cf79f111f8130c3eee29480")
        );
        // The same cookie comes back a few seconds later: valid, and sent back as it is.
        let again = answer(&a.reply, client, 1559731990, &secrets).unwrap();
        assert_eq!(
            again,
            Answered {
                verdict: Verdict::Valid,
                reply: a.reply
            }
        );
        // From another address it does not check: a fresh one.
        let other = answer(&a.reply, "203.0.113.203".parse().unwrap(), 1559731990, &secrets).unwrap();
        assert_eq!(other.verdict, Verdict::Bad);
        assert_ne!(other.reply, a.reply);
    }

    #[test]
    fn validity_renewal_and_rollover() {
        let old = Secrets {
            current: [7; 16],
            previous: None,
        };
        let client: IpAddr = "2001:db8::1".parse().unwrap();
        let t = 1_800_000_000;
        let first = answer(&[1; 8], client, t, &old).unwrap().reply;
        // 40 minutes on: valid, made again.
        let later = answer(&first, client, t + 2400, &old).unwrap();
        assert_eq!(later.verdict, Verdict::Valid);
        assert_ne!(later.reply, first);
        // An hour and a bit: no longer valid.
        assert_eq!(answer(&first, client, t + 3700, &old).unwrap().verdict, Verdict::Bad);
        // Made more than five minutes ahead of our clock: not taken.
        assert_eq!(answer(&first, client, t - 400, &old).unwrap().verdict, Verdict::Bad);
        // Rolled over: the previous secret still checks, and the reply uses the new one.
        let new = Secrets {
            current: [9; 16],
            previous: Some([7; 16]),
        };
        let rolled = answer(&first, client, t + 10, &new).unwrap();
        assert_eq!(rolled.verdict, Verdict::Valid);
        assert_eq!(answer(&rolled.reply, client, t + 20, &new).unwrap().reply, rolled.reply);
    }

    #[test]
    fn lengths_rfc_7873_accepts() {
        assert!(well_formed(8) && well_formed(16) && well_formed(40));
        assert!(!well_formed(0) && !well_formed(7) && !well_formed(9) && !well_formed(15) && !well_formed(41));
    }
}
