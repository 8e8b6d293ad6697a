//! Black-box: the acme-dns HTTP API (`acme_dns`) with curl: /health, /register and /update
//! with acme-dns's answers; the values served as TXT with TTL 1 by every shard, the two
//! most recent; a registration cannot update another's subdomain; allowfrom; bad values;
//! registrations and values kept across a restart; HTTPS with the server's certificate.

mod support;

use std::process::Command;

use domain::base::iana::Rtype;
use serde_json::Value;
use support::q;
use support::server::{Options, Server, TempDir};

const ZONE: &str =
    "$ORIGIN auth.example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\n";

fn corefile(dir: &std::path::Path, api: &str) -> String {
    let d = dir.display();
    format!(
        "auth.example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {d}/auth.zone\n    acme_dns auth.example.test {{\n        listen 127.0.0.1:{{PORT2}}\n{api}        directory {d}/acme-dns\n    }}\n}}\n"
    )
}

fn server(driver: &str, dir: &TempDir) -> Server {
    Server::start(Options::new(driver, &corefile(dir.path(), "        plain\n")))
}

/// curl: (status, body).
fn curl(args: &[&str]) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn register(url: &str, body: Option<&str>) -> (u16, Value) {
    let mut args = vec!["-X", "POST", url];
    if let Some(b) = body {
        args.extend(["-H", "Content-Type: application/json", "--data", b]);
    }
    let (status, text) = curl(&args);
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn update(url: &str, reg: &Value, subdomain: &str, txt: &str) -> (u16, String) {
    let user = format!("X-Api-User: {}", reg["username"].as_str().unwrap());
    let key = format!("X-Api-Key: {}", reg["password"].as_str().unwrap());
    let body = format!("{{\"subdomain\": \"{subdomain}\", \"txt\": \"{txt}\"}}");
    curl(&["-X", "POST", "-H", &user, "-H", &key, "--data", &body, url])
}

fn values(s: &Server, name: &str) -> Vec<(String, u32)> {
    let mut v: Vec<(String, u32)> = s
        .udp(&q(name, Rtype::TXT))
        .answer()
        .into_iter()
        .map(|a| (a.data, a.ttl))
        .collect();
    v.sort();
    v
}

fn token(c: char) -> String {
    std::iter::repeat_n(c, 43).collect()
}

both_drivers!(register_update_and_serve_as_acme_dns, |driver| {
    let dir = TempDir::new("acme-dns");
    dir.write("auth.zone", ZONE);
    let s = server(driver, &dir);
    let base = format!("http://127.0.0.1:{}", s.port2);
    assert_eq!(curl(&[&format!("{base}/health")]).0, 200);
    let (status, reg) = register(&format!("{base}/register"), None);
    assert_eq!(status, 201, "{reg}\n{}", s.log());
    let sub = reg["subdomain"].as_str().unwrap().to_string();
    assert_eq!(reg["fulldomain"], format!("{sub}.auth.example.test"));
    assert_eq!(reg["password"].as_str().unwrap().len(), 40);
    assert_eq!(reg["allowfrom"], serde_json::json!([]));
    let name = format!("{sub}.auth.example.test");
    let (status, body) = update(&format!("{base}/update"), &reg, &sub, &token('a'));
    assert_eq!(
        (status, body.as_str()),
        (200, format!("{{\"txt\": \"{}\"}}", token('a')).as_str())
    );
    // Served at once by every shard (fresh sockets spread over them), TTL 1 as acme-dns.
    for _ in 0..20 {
        assert_eq!(
            values(&s, &name),
            vec![(format!("\"{}\"", token('a')), 1)],
            "{}",
            s.log()
        );
    }
    // The two most recent values.
    update(&format!("{base}/update"), &reg, &sub, &token('b'));
    update(&format!("{base}/update"), &reg, &sub, &token('c'));
    let got: Vec<String> = values(&s, &name).into_iter().map(|v| v.0).collect();
    assert_eq!(got, vec![format!("\"{}\"", token('b')), format!("\"{}\"", token('c'))]);
    // acme-dns's errors.
    let (status, body) = update(&format!("{base}/update"), &reg, &sub, "short");
    assert_eq!((status, body.as_str()), (400, "{\"error\": \"bad_txt\"}"));
    let (_, second) = register(&format!("{base}/register"), None);
    let (status, body) = update(&format!("{base}/update"), &second, &sub, &token('x'));
    assert_eq!(
        (status, body.as_str()),
        (401, "{\"error\": \"forbidden\"}"),
        "another registration's subdomain"
    );
    let mut wrong = reg.clone();
    wrong["password"] = Value::String("x".repeat(40));
    assert_eq!(update(&format!("{base}/update"), &wrong, &sub, &token('x')).0, 401);
    let (status, body) = register(&format!("{base}/register"), Some("{\"allowfrom\": [\"not-a-cidr\"]}"));
    assert_eq!(
        (status, body),
        (400, serde_json::json!({"error": "invalid_allowfrom_cidr"}))
    );
    // allowfrom: updates from elsewhere are forbidden.
    let (_, fenced) = register(&format!("{base}/register"), Some("{\"allowfrom\": [\"192.0.2.0/24\"]}"));
    assert_eq!(fenced["allowfrom"], serde_json::json!(["192.0.2.0/24"]));
    let fsub = fenced["subdomain"].as_str().unwrap().to_string();
    assert_eq!(update(&format!("{base}/update"), &fenced, &fsub, &token('f')).0, 401);
    let got: Vec<String> = values(&s, &name).into_iter().map(|v| v.0).collect();
    assert_eq!(got.len(), 2, "nothing refused reached the zone");
    assert_eq!(curl(&["-X", "GET", &format!("{base}/update")]).0, 405);
    assert_eq!(curl(&[&format!("{base}/nope")]).0, 404);
    // A restart keeps the registrations (hashes only on disk) and the values.
    let stored = std::fs::read_to_string(dir.path().join("acme-dns/auth.example.test.acme-dns.json")).unwrap();
    assert!(!stored.contains(reg["password"].as_str().unwrap()), "{stored}");
    s.stop();
    let s = server(driver, &dir);
    let base = format!("http://127.0.0.1:{}", s.port2);
    let got: Vec<String> = values(&s, &name).into_iter().map(|v| v.0).collect();
    assert_eq!(
        got,
        vec![format!("\"{}\"", token('b')), format!("\"{}\"", token('c'))],
        "{}",
        s.log()
    );
    let (status, _) = update(&format!("{base}/update"), &reg, &sub, &token('d'));
    assert_eq!(status, 200, "{}", s.log());
});

both_drivers!(the_api_answers_over_https_with_the_servers_certificate, |driver| {
    let dir = TempDir::new("acme-dns-tls");
    dir.write("auth.zone", ZONE);
    let ca = support::tls::Ca::new();
    let leaf = ca.leaf(&["auth.example.test"]);
    dir.write("cert.pem", &leaf.cert_pem);
    dir.write("key.pem", &leaf.key_pem);
    dir.write("ca.pem", &ca.pem());
    let d = dir.path().display();
    let corefile = format!(
        "{}tls://auth.example.test:{{PORT3}} {{\n    bind 127.0.0.1\n    tls {d}/cert.pem {d}/key.pem\n    file {d}/auth.zone\n}}\n",
        corefile(dir.path(), "")
    );
    let s = Server::start(Options::new(driver, &corefile));
    let url = format!("https://auth.example.test:{}/register", s.port2);
    let resolve = format!("auth.example.test:{}:127.0.0.1", s.port2);
    let ca_path = format!("{d}/ca.pem");
    let (status, body) = curl(&["--cacert", &ca_path, "--resolve", &resolve, "-X", "POST", &url]);
    assert_eq!(status, 201, "{body}\n{}", s.log());
    // Plain HTTP is refused by the TLS listener.
    let (status, _) = curl(&["-X", "POST", &format!("http://127.0.0.1:{}/register", s.port2)]);
    assert_ne!(status, 201);
});

#[test]
fn plain_http_only_on_loopback_and_the_zone_must_be_a_file_zone() {
    let dir = TempDir::new("acme-dns-check");
    let bad = corefile(dir.path(), "        plain\n")
        .replace("listen 127.0.0.1:{PORT2}", "listen 192.0.2.1:8443")
        .replace("{PORT}", "1053");
    let e = support::server::check(&bad).unwrap_err();
    assert!(e.contains("plain HTTP only on a loopback address"), "{e}");
    let nofile = corefile(dir.path(), "")
        .replace("{PORT}", "1053")
        .replace("{PORT2}", "8443")
        .replace(&format!("    file {}/auth.zone\n", dir.path().display()), "");
    let e = support::server::check(&nofile).unwrap_err();
    assert!(e.contains("acme_dns: the block has no file for zone"), "{e}");
}

/// certbot with the certbot-dns-acmedns plugin (PyPI, in a virtualenv of its own).
fn certbot_acmedns() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/tests/clients/certbot-acmedns.sh"))
        .arg(format!("{root}/target/venv-certbot-acmedns"))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "the certbot-dns-acmedns virtualenv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

// A real acme-dns client obtains a certificate: the operator registers, points
// _acme-challenge.www at the registration's name with a CNAME (in the same zone, so that
// ringdns answers the chain: the test CA follows no CNAME), and certbot with its acme-dns
// plugin sets the value through the API.
both_drivers!(certbot_obtains_a_certificate_through_the_acme_dns_api, |driver| {
    let certbot = certbot_acmedns();
    let pebble = support::pebble::Pebble::start(None);
    let zone = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\nwww A 127.0.0.1\n";
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/example.test.zone\n    acme_dns example.test {\n        listen 127.0.0.1:{PORT2}\n        plain\n        directory {DIR}/acme-dns\n    }\n}\n";
    let s = Server::start(
        Options::new(driver, corefile)
            .port(pebble.dns_port)
            .file("example.test.zone", zone),
    );
    let base = format!("http://127.0.0.1:{}", s.port2);
    let (status, reg) = register(&format!("{base}/register"), None);
    assert_eq!(status, 201, "{reg}");
    let full = reg["fulldomain"].as_str().unwrap().to_string();
    // The operator's CNAME, then a reload.
    let with_cname = zone.replace(" 1 3600", " 2 3600") + &format!("_acme-challenge.www CNAME {full}.\n");
    std::fs::write(s.dir.path().join("example.test.zone"), with_cname).unwrap();
    s.signal("HUP");
    assert!(
        support::eventually(10, || !s
            .udp(&q("_acme-challenge.www.example.test", Rtype::CNAME))
            .answer()
            .is_empty()),
        "{}",
        s.log()
    );
    let work = TempDir::new("certbot-acmedns");
    let regfile = work.write(
        "registration.json",
        &serde_json::json!({ "www.example.test": reg }).to_string(),
    );
    let ini = work.write(
        "acmedns.ini",
        &format!(
            "dns_acmedns_api_url = {base}\ndns_acmedns_registration_file = {}\n",
            regfile.display()
        ),
    );
    for f in [&regfile, &ini] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    }
    let d = work.path();
    let plugin = [
        "--authenticator",
        "dns-acmedns",
        "--dns-acmedns-credentials",
        &ini.display().to_string(),
        "--dns-acmedns-propagation-seconds",
        "1",
    ]
    .map(String::from);
    let (ok, text) = pebble.certbot(&certbot, &plugin, &["www.example.test"], d);
    assert!(ok, "{text}\n{}\n{}", s.log(), pebble.log());
    let cert = d.join("config/live/www.example.test/fullchain.pem");
    let san = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(String::from_utf8_lossy(&san.stdout).contains("DNS:www.example.test"));
    // A second registration cannot update the first one's subdomain.
    let (_, second) = register(&format!("{base}/register"), None);
    let sub = reg["subdomain"].as_str().unwrap();
    assert_eq!(update(&format!("{base}/update"), &second, sub, &token('z')).0, 401);
});

// Behind a trusted proxy the client is the last address of its header; from anyone else
// the header means nothing.
both_drivers!(a_trusted_proxy_names_the_client, |driver| {
    let dir = TempDir::new("acme-dns-proxy");
    dir.write("auth.zone", ZONE);
    let s = Server::start(Options::new(
        driver,
        &corefile(
            dir.path(),
            "        plain\n        proxy_header X-Forwarded-For 127.0.0.1\n",
        ),
    ));
    let base = format!("http://127.0.0.1:{}", s.port2);
    let (_, reg) = register(&format!("{base}/register"), Some("{\"allowfrom\": [\"192.0.2.0/24\"]}"));
    let sub = reg["subdomain"].as_str().unwrap().to_string();
    let user = format!("X-Api-User: {}", reg["username"].as_str().unwrap());
    let key = format!("X-Api-Key: {}", reg["password"].as_str().unwrap());
    let body = format!("{{\"subdomain\": \"{sub}\", \"txt\": \"{}\"}}", token('p'));
    let with = |forwarded: Option<&str>| {
        let mut args = vec!["-X", "POST", "-H", &user, "-H", &key, "--data", &body];
        let h;
        if let Some(f) = forwarded {
            h = format!("X-Forwarded-For: {f}");
            args.extend(["-H", &h]);
        }
        let url = format!("{base}/update");
        args.push(&url);
        curl(&args).0
    };
    assert_eq!(with(None), 401, "the proxy itself is not in allowfrom");
    assert_eq!(with(Some("192.0.2.9, 198.51.100.7")), 401, "the proxy saw 198.51.100.7");
    assert_eq!(with(Some("198.51.100.7, 192.0.2.9")), 200, "the proxy saw 192.0.2.9");
});

// With `tls acme` in the Corefile, the API's HTTPS certificate is the one ringdns obtains
// (and renews) itself: no certificate at start, then the CA's.
both_drivers!(the_api_uses_the_certificate_ringdns_obtains, |driver| {
    let pebble = support::pebble::Pebble::start(None);
    let dir = TempDir::new("acme-dns-acme");
    dir.write("auth.zone", ZONE);
    let d = dir.path().display();
    let corefile = format!(
        "{}tls://auth.example.test:{{PORT3}} {{\n    bind 127.0.0.1\n    tls acme {{\n        domain auth.example.test\n        ca {}\n        cacert {}\n        certpath {d}/certs\n    }}\n    file {d}/auth.zone\n}}\n",
        corefile(dir.path(), ""),
        pebble.directory(),
        pebble.https_ca().display()
    );
    let s = Server::start(Options::new(driver, &corefile).port(pebble.dns_port));
    let root = pebble
        .env
        .get("ACME_ISSUER_ROOT_PEM")
        .cloned()
        .unwrap_or_else(|| format!("{}/issuer-root.pem", pebble.dir.display()));
    let url = format!("https://auth.example.test:{}/health", s.port2);
    let resolve = format!("auth.example.test:{}:127.0.0.1", s.port2);
    let healthy = support::eventually(60, || curl(&["--cacert", &root, "--resolve", &resolve, &url]).0 == 200);
    assert!(healthy, "{}\n{}", s.log(), pebble.log());
});
