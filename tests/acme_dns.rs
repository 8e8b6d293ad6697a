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
