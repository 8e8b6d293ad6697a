//! Black-box: real ACME clients obtain certificates from the test CA (pebble) by publishing
//! their DNS-01 values in a ringdns zone through RFC 2136 with TSIG hmac-sha256: lego
//! (Debian's, `rfc2136` provider) and certbot (`python3-certbot-dns-rfc2136`). lego with a
//! key granted another name gets no certificate.

mod support;

use std::path::Path;
use std::process::Command;

use support::pebble::Pebble;
use support::server::{Options, Server, TempDir};

const KEY: &str = "acme.key";
const SECRET: &str = "NoTCJU+DMqFWywaPyxSijrDEA/eC3nK0xi3AMEZuPVk=";
const OTHER_KEY: &str = "host.key";
const OTHER_SECRET: &str = "c2Vjb25kIGtleSwgYW5vdGhlciBzZWNyZXQsIG9rIQ==";

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns admin 1 3600 600 86400 60\n@ NS ns\nns A 127.0.0.1\nwww A 127.0.0.1\nhost A 127.0.0.1\n";

/// ringdns on the port pebble asks, serving the zone and taking updates.
fn server(driver: &str, pebble: &Pebble) -> Server {
    let corefile = format!(
        "example.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/example.test.zone\n    tsig {{\n        secret {KEY}. {SECRET}\n        secret {OTHER_KEY}. {OTHER_SECRET}\n    }}\n    update {{\n        key {KEY}\n        key {OTHER_KEY} host.example.test\n        directory {{DIR}}/updates\n    }}\n}}\n"
    );
    Server::start(
        Options::new(driver, &corefile)
            .port(pebble.dns_port)
            .file("example.test.zone", ZONE),
    )
}

/// The subject names of the PEM certificate at `path`.
fn names(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(path)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lego(pebble: &Pebble, dns: u16, work: &Path, domain: &str, key: (&str, &str)) -> (bool, String) {
    let out = Command::new("lego")
        .env("LEGO_CA_CERTIFICATES", pebble.https_ca())
        .env("RFC2136_NAMESERVER", format!("127.0.0.1:{dns}"))
        .env("RFC2136_TSIG_KEY", format!("{}.", key.0))
        .env("RFC2136_TSIG_SECRET", key.1)
        .env("RFC2136_TSIG_ALGORITHM", "hmac-sha256.")
        .env("RFC2136_PROPAGATION_TIMEOUT", "20")
        .env("RFC2136_POLLING_INTERVAL", "1")
        .args([
            "--server",
            &pebble.directory(),
            "--accept-tos",
            "--email",
            "ops@example.test",
            "--dns",
            "rfc2136",
        ])
        // lego checks the value at the zone's name servers on port 53 unless told not to.
        .args([
            "--dns.resolvers",
            &format!("127.0.0.1:{dns}"),
            "--dns.disable-cp",
            "--domains",
            domain,
            "--path",
        ])
        .arg(work)
        .arg("run")
        .output()
        .expect("lego (test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

both_drivers!(lego_obtains_a_certificate_through_rfc2136, |driver| {
    let pebble = Pebble::start(None);
    let s = server(driver, &pebble);
    let work = TempDir::new("lego");
    let (ok, out) = lego(&pebble, s.port, work.path(), "www.example.test", (KEY, SECRET));
    assert!(ok, "{out}\n{}\n{}", s.log(), pebble.log());
    let cert = work.path().join("certificates/www.example.test.crt");
    assert!(names(&cert).contains("DNS:www.example.test"), "{}", names(&cert));
    // lego removed its value after the order (the log shows both updates applied).
    assert_eq!(s.log().matches("update applied").count(), 2, "{}", s.log());
    // A key granted only host.example.test cannot publish www's value: no certificate.
    let other = TempDir::new("lego-other");
    let (ok, out) = lego(
        &pebble,
        s.port,
        other.path(),
        "www.example.test",
        (OTHER_KEY, OTHER_SECRET),
    );
    assert!(!ok && out.contains("REFUSED"), "{out}");
    assert!(!other.path().join("certificates/www.example.test.crt").exists());
});

both_drivers!(certbot_obtains_a_certificate_through_rfc2136, |driver| {
    let pebble = Pebble::start(None);
    let s = server(driver, &pebble);
    let work = TempDir::new("certbot");
    let ini = work.write(
        "rfc2136.ini",
        &format!(
            "dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {}\ndns_rfc2136_name = {KEY}.\ndns_rfc2136_secret = {SECRET}\ndns_rfc2136_algorithm = HMAC-SHA256\n",
            s.port
        ),
    );
    // certbot warns about credentials others can read.
    std::fs::set_permissions(&ini, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let d = work.path();
    let plugin = [
        "--dns-rfc2136",
        "--dns-rfc2136-credentials",
        &ini.display().to_string(),
        "--dns-rfc2136-propagation-seconds",
        "1",
    ]
    .map(String::from);
    let (ok, text) = pebble.certbot("certbot", &plugin, &["www.example.test", "example.test"], d);
    assert!(ok, "{text}\n{}\n{}", s.log(), pebble.log());
    let cert = d.join("config/live/www.example.test/fullchain.pem");
    let san = names(&cert);
    assert!(
        san.contains("DNS:www.example.test") && san.contains("DNS:example.test"),
        "{san}"
    );
    // Two values added, two deleted one by one.
    assert_eq!(s.log().matches("update applied").count(), 4, "{}", s.log());
});
