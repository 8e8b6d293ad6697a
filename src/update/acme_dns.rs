//! The acme-dns HTTP API (joohoi/acme-dns, the API lego, cert-manager, acme.sh, Caddy,
//! Posh-ACME, win-acme and certbot plugins speak), no I/O: registrations, the checks of
//! `/register` and `/update` and their exact JSON answers (as acme-dns's `api.go`,
//! `auth.go` and `validation.go` write them), and the store of registrations as JSON.
//!
//! Each registration owns one name, `<subdomain>.<zone>`; an update sets its newest TXT
//! value, the two most recent served together (an apex and its wildcard are validated at
//! one name at once). Passwords are kept as salted PBKDF2-HMAC-SHA256 hashes (a random
//! 40-character password is ~238 bits: the work factor guards the file, not the password).

use std::net::IpAddr;

use serde_json::{Value, json};

/// What an endpoint answers: HTTP status and JSON body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    /// The body (JSON, empty for `/health`).
    pub body: String,
}

fn error(status: u16, message: &str) -> Answer {
    // acme-dns writes its errors as `{"error": "<message>"}`.
    Answer {
        status,
        body: format!("{{\"error\": \"{message}\"}}"),
    }
}

/// One registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// `X-Api-User`: a UUID.
    pub username: String,
    /// The password's salted hash.
    pub hash: String,
    /// The label it owns below the zone: a UUID.
    pub subdomain: String,
    /// The networks updates may come from (none: any).
    pub allowfrom: Vec<String>,
    /// Its TXT values, the newest last (at most two).
    pub values: Vec<String>,
}

/// Every registration of one `acme_dns` zone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Store {
    /// In registration order.
    pub registrations: Vec<Registration>,
}

/// The random octets the caller draws (registration needs 16 for each UUID, 40 for the
/// password and 16 for the salt).
pub type Random<'a> = &'a mut dyn FnMut(&mut [u8]);

const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz1234567890-_";
/// PBKDF2 iterations per password (checked when the constant is built, not at run time).
const PBKDF2_ROUNDS: std::num::NonZeroU32 = match std::num::NonZeroU32::new(10_000) {
    Some(n) => n,
    None => panic!("PBKDF2 needs at least one iteration"),
};

fn uuid(random: Random<'_>) -> String {
    let mut b = [0u8; 16];
    random(&mut b);
    // RFC 9562 §5.4: version 4, variant 10.
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| g.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// acme-dns's `sanitizeString` keeps `[A-Za-z0-9_-]`: a key or value of only those, of
/// exactly `len` characters.
fn clean(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// `validSubdomain`: a DNS label of letters, digits and hyphens.
fn valid_subdomain(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The salted hash of `password`.
pub fn hash_password(password: &str, random: Random<'_>) -> String {
    use base64::Engine;
    let mut salt = [0u8; 16];
    random(&mut salt);
    let mut out = [0u8; 32];
    aws_lc_rs::pbkdf2::derive(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        PBKDF2_ROUNDS,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    format!("pbkdf2-sha256${PBKDF2_ROUNDS}${}${}", b64.encode(salt), b64.encode(out))
}

/// Whether `password` is the one `hash` was made from (compared in constant time).
pub fn check_password(password: &str, hash: &str) -> bool {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD_NO_PAD;
    let parts: Vec<&str> = hash.split('$').collect();
    let ["pbkdf2-sha256", rounds, salt, want] = parts.as_slice() else {
        return false;
    };
    let (Some(rounds), Ok(salt), Ok(want)) = (
        rounds.parse().ok().and_then(std::num::NonZeroU32::new),
        b64.decode(salt),
        b64.decode(want),
    ) else {
        return false;
    };
    aws_lc_rs::pbkdf2::verify(
        aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
        rounds,
        &salt,
        password.as_bytes(),
        &want,
    )
    .is_ok()
}

/// `IP` or `IP/LEN` as acme-dns takes it (brackets of an IPv6 address removed).
fn parse_net(s: &str) -> Option<(IpAddr, u8)> {
    let s: String = s.chars().filter(|c| *c != '[' && *c != ']').collect();
    let (ip, len) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    (len <= if ip.is_ipv4() { 32 } else { 128 }).then_some((ip, len))
}

impl Registration {
    /// Whether an update from `client` is allowed (`allowfrom` empty: from anywhere).
    pub fn allows(&self, client: IpAddr) -> bool {
        let client = client.to_canonical();
        self.allowfrom.is_empty()
            || self
                .allowfrom
                .iter()
                .filter_map(|n| parse_net(n))
                .any(|(net, len)| crate::config::in_prefix(client, net, len))
    }
}

impl Store {
    /// `POST /register` with `body` (empty, or `{"allowfrom": [CIDR...]}`): the answer and,
    /// on success, the new registration (the caller keeps it and stores the whole).
    pub fn register(&mut self, body: &[u8], zone: &str, random: Random<'_>) -> Answer {
        let mut allowfrom = Vec::new();
        if !body.is_empty() {
            let Ok(v) = serde_json::from_slice::<Value>(body) else {
                return error(400, "malformed_json_payload");
            };
            // Go's JSON decoding matches field names without regard to case.
            let list = v
                .as_object()
                .and_then(|o| o.iter().find(|(k, _)| k.eq_ignore_ascii_case("allowfrom")))
                .map(|(_, v)| v);
            match list {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        let Some(s) = item.as_str() else {
                            return error(400, "malformed_json_payload");
                        };
                        if parse_net(s).is_none() {
                            return error(400, "invalid_allowfrom_cidr");
                        }
                        allowfrom.push(s.chars().filter(|c| *c != '[' && *c != ']').collect());
                    }
                }
                Some(_) => return error(400, "malformed_json_payload"),
            }
        }
        let mut pw = [0u8; 40];
        random(&mut pw);
        let password: String = pw
            .iter()
            .map(|b| char::from(PASSWORD_ALPHABET[usize::from(*b) % PASSWORD_ALPHABET.len()]))
            .collect();
        let r = Registration {
            username: uuid(random),
            hash: hash_password(&password, random),
            subdomain: uuid(random),
            allowfrom,
            values: Vec::new(),
        };
        let zone = zone.trim_end_matches('.');
        let body = json!({
            "username": r.username,
            "password": password,
            "fulldomain": format!("{}.{zone}", r.subdomain),
            "subdomain": r.subdomain,
            "allowfrom": r.allowfrom,
        });
        self.registrations.push(r);
        Answer {
            status: 201,
            body: body.to_string(),
        }
    }

    /// `POST /update` from `client` with the `X-Api-User` and `X-Api-Key` headers and
    /// `body`: on success the registration's subdomain and its values to serve (the newest
    /// last), and the answer to send once they are served (then [`Store::set_values`]).
    pub fn update(
        &self,
        user: Option<&str>,
        key: Option<&str>,
        client: IpAddr,
        body: &[u8],
    ) -> Result<(String, Vec<String>, Answer), Answer> {
        let forbidden = || error(401, "forbidden");
        let (Some(user), Some(key)) = (user, key) else {
            return Err(forbidden());
        };
        if !is_uuid(user) || !clean(key, 40) {
            return Err(forbidden());
        }
        let user = user.to_ascii_lowercase();
        let Some(r) = self.registrations.iter().find(|r| r.username == user) else {
            // As acme-dns: the same work for an unknown user as for a wrong password.
            let _ = check_password(
                key,
                "pbkdf2-sha256$10000$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            );
            return Err(forbidden());
        };
        if !check_password(key, &r.hash) || !r.allows(client) {
            return Err(forbidden());
        }
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let field = |name: &str| v.get(name).and_then(Value::as_str).unwrap_or_default().to_string();
        let (subdomain, txt) = (field("subdomain"), field("txt"));
        if subdomain != r.subdomain {
            return Err(forbidden());
        }
        if !valid_subdomain(&subdomain) {
            return Err(error(400, "bad_subdomain"));
        }
        if !clean(&txt, 43) {
            return Err(error(400, "bad_txt"));
        }
        // The two most recent values: the older one goes.
        let mut values = r.values.clone();
        values.push(txt.clone());
        if values.len() > 2 {
            values.remove(0);
        }
        let answer = Answer {
            status: 200,
            body: format!("{{\"txt\": \"{txt}\"}}"),
        };
        Ok((subdomain, values, answer))
    }

    /// The values of `subdomain`'s registration, once served.
    pub fn set_values(&mut self, subdomain: &str, values: Vec<String>) {
        if let Some(r) = self.registrations.iter_mut().find(|r| r.subdomain == subdomain) {
            r.values = values;
        }
    }

    /// The store as the JSON kept on disk.
    pub fn encode(&self) -> String {
        let regs: Vec<Value> = self
            .registrations
            .iter()
            .map(|r| {
                json!({
                    "username": r.username,
                    "password_hash": r.hash,
                    "subdomain": r.subdomain,
                    "allowfrom": r.allowfrom,
                    "values": r.values,
                })
            })
            .collect();
        serde_json::to_string_pretty(&json!({ "registrations": regs })).unwrap_or_default()
    }

    /// A store read back; an error says what is wrong.
    pub fn decode(text: &str) -> Result<Store, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let list = v
            .get("registrations")
            .and_then(Value::as_array)
            .ok_or("no registrations list")?;
        let strings = |r: &Value, k: &str| -> Result<Vec<String>, String> {
            r.get(k)
                .and_then(Value::as_array)
                .ok_or(format!("a registration without {k}"))?
                .iter()
                .map(|x| x.as_str().map(str::to_string).ok_or(format!("{k} holds a non-string")))
                .collect()
        };
        let text_of = |r: &Value, k: &str| -> Result<String, String> {
            r.get(k)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or(format!("a registration without {k}"))
        };
        let mut registrations = Vec::new();
        for r in list {
            let reg = Registration {
                username: text_of(r, "username")?,
                hash: text_of(r, "password_hash")?,
                subdomain: text_of(r, "subdomain")?,
                allowfrom: strings(r, "allowfrom")?,
                values: strings(r, "values")?,
            };
            if !is_uuid(&reg.username) || !valid_subdomain(&reg.subdomain) {
                return Err(format!(
                    "a registration with a bad username or subdomain: {}",
                    reg.username
                ));
            }
            registrations.push(reg);
        }
        Ok(Store { registrations })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random() -> impl FnMut(&mut [u8]) {
        // xorshift32: reproducible, and no short cycles.
        let mut n = 0x2545_f491u32;
        move |b: &mut [u8]| {
            for x in b {
                n ^= n << 13;
                n ^= n >> 17;
                n ^= n << 5;
                *x = n as u8;
            }
        }
    }

    fn parsed(a: &Answer) -> Value {
        serde_json::from_str(&a.body).unwrap()
    }

    const TXT: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1";

    #[test]
    fn register_then_update_as_acme_dns_answers() {
        let mut s = Store::default();
        let mut rnd = random();
        let a = s.register(b"", "auth.example.test.", &mut rnd);
        assert_eq!(a.status, 201);
        let v = parsed(&a);
        let (user, pass, sub) = (
            v["username"].as_str().unwrap(),
            v["password"].as_str().unwrap(),
            v["subdomain"].as_str().unwrap(),
        );
        assert!(is_uuid(user) && is_uuid(sub) && clean(pass, 40), "{v}");
        assert_eq!(v["fulldomain"], format!("{sub}.auth.example.test"));
        assert_eq!(v["allowfrom"], json!([]));
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let body = |sub: &str, txt: &str| format!("{{\"subdomain\": \"{sub}\", \"txt\": \"{txt}\"}}").into_bytes();
        let (got_sub, values, ok) = s.update(Some(user), Some(pass), client, &body(sub, TXT)).unwrap();
        assert_eq!((got_sub.as_str(), values.len(), ok.status), (sub, 1, 200));
        s.set_values(sub, values);
        assert_eq!(ok.body, format!("{{\"txt\": \"{TXT}\"}}"));
        // Two more: the two most recent are kept.
        let t2 = TXT.replace('1', "2");
        let t3 = TXT.replace('1', "3");
        let (_, values, _) = s.update(Some(user), Some(pass), client, &body(sub, &t2)).unwrap();
        s.set_values(sub, values);
        let (_, values, _) = s.update(Some(user), Some(pass), client, &body(sub, &t3)).unwrap();
        assert_eq!(values, vec![t2, t3]);
        s.set_values(sub, values);
        // The errors acme-dns gives.
        let err = |r: Result<(String, Vec<String>, Answer), Answer>| r.unwrap_err();
        assert_eq!(
            err(s.update(Some(user), Some(pass), client, &body(sub, "short"))),
            error(400, "bad_txt")
        );
        assert_eq!(
            err(s.update(
                Some(user),
                Some(&pass.replace(|_| true, "x")[..40]),
                client,
                &body(sub, TXT)
            ))
            .status,
            401
        );
        assert_eq!(
            err(s.update(Some(user), None, client, &body(sub, TXT))),
            error(401, "forbidden")
        );
        let other = s.register(b"", "auth.example.test.", &mut rnd);
        let o = parsed(&other);
        // The second registration cannot update the first one's subdomain.
        let r = s.update(o["username"].as_str(), o["password"].as_str(), client, &body(sub, TXT));
        assert_eq!(err(r), error(401, "forbidden"));
        // The store reads back what it wrote.
        assert_eq!(Store::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn allowfrom_limits_the_sources_and_bad_cidrs_are_refused() {
        let mut s = Store::default();
        let mut rnd = random();
        assert_eq!(
            s.register(b"{\"allowfrom\": [\"10.0.0.0/8\", \"nope\"]}", "z.", &mut rnd),
            error(400, "invalid_allowfrom_cidr")
        );
        assert_eq!(
            s.register(b"{not json", "z.", &mut rnd),
            error(400, "malformed_json_payload")
        );
        let a = s.register(
            b"{\"allowfrom\": [\"192.0.2.0/24\", \"[2001:db8::]/32\"]}",
            "z.",
            &mut rnd,
        );
        let v = parsed(&a);
        assert_eq!(v["allowfrom"], json!(["192.0.2.0/24", "2001:db8::/32"]));
        let r = &s.registrations[0];
        assert!(r.allows("192.0.2.9".parse().unwrap()) && r.allows("::ffff:192.0.2.9".parse().unwrap()));
        assert!(r.allows("2001:db8::1".parse().unwrap()) && !r.allows("198.51.100.1".parse().unwrap()));
    }

    #[test]
    fn passwords_are_salted_hashes() {
        let mut rnd = random();
        let h1 = hash_password("secret", &mut rnd);
        let h2 = hash_password("secret", &mut rnd);
        assert_ne!(h1, h2, "a new salt each time");
        assert!(check_password("secret", &h1) && check_password("secret", &h2));
        assert!(!check_password("Secret", &h1) && !check_password("secret", "plain"));
    }
}
