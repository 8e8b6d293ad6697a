//! DNSSEC helpers of the suites: keys from BIND's dnssec-keygen, trust anchors for delv,
//! delv itself, and a server's signed sections as kdig shows them.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::server::TempDir;
use super::{kdig, kdig_records};

/// A new key for `zone` from dnssec-keygen in `dir` (a KSK when `ksk`): its base name.
pub fn keygen(dir: &Path, zone: &str, algorithm: &str, ksk: bool) -> PathBuf {
    let mut cmd = Command::new("dnssec-keygen");
    cmd.current_dir(dir).args(["-q", "-a", algorithm]);
    if algorithm == "RSASHA256" {
        cmd.args(["-b", "2048"]);
    }
    if ksk {
        cmd.args(["-f", "KSK"]);
    }
    let out = cmd
        .arg(zone)
        .output()
        .expect("dnssec-keygen (test.sh installs bind9-utils)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir.join(String::from_utf8_lossy(&out.stdout).trim())
}

/// The DNSKEY of a `.key` file's text as (flags, protocol, algorithm, key).
pub fn dnskey_fields(key_text: &str) -> [String; 4] {
    let line = key_text
        .lines()
        .find(|l| !l.starts_with(';') && l.contains("DNSKEY"))
        .unwrap_or_else(|| panic!("no DNSKEY in {key_text}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    let at = f.iter().position(|t| *t == "DNSKEY").unwrap_or_default();
    [
        f[at + 1].into(),
        f[at + 2].into(),
        f[at + 3].into(),
        f[at + 4..].concat(),
    ]
}

/// The DNSKEY of the key at base name `base`.
pub fn dnskey(base: &Path) -> [String; 4] {
    dnskey_fields(&std::fs::read_to_string(format!("{}.key", base.display())).unwrap())
}

/// delv's trust-anchors file in `dir`: `key` for each of `zones`.
pub fn anchors(dir: &TempDir, zones: &[&str], key: &[String; 4]) -> PathBuf {
    let [flags, proto, alg, k] = key;
    let mut text = String::from("trust-anchors {\n");
    for z in zones {
        text.push_str(&format!("  {z}. static-key {flags} {proto} {alg} \"{k}\";\n"));
    }
    dir.write("anchors", &(text + "};\n"))
}

/// delv asking 127.0.0.1:`port` for `name type`, validating from `anchors` with `root`
/// as the root of trust: its output and its errors.
pub fn delv(port: u16, anchors: &Path, root: &str, name: &str, t: &str) -> String {
    let out = Command::new("delv")
        .args(["@127.0.0.1", "-p", &port.to_string(), "-a"])
        .arg(anchors)
        .arg(format!("+root={root}"))
        .args([name, t])
        .output()
        .expect("delv (test.sh installs bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// The records of `sections` (kdig's `+answer`, `+authority`...) for `name type` with
/// DO=1, in the server's order.
pub fn signed_records(port: u16, sections: &[&str], name: &str, t: &str) -> Vec<String> {
    let port = port.to_string();
    let mut args = vec!["@127.0.0.1", "-p", &port, "+dnssec", "+norec", "+noall"];
    args.extend_from_slice(sections);
    args.extend([name, t]);
    kdig_records(&kdig(&args))
}

/// Every record of the answer and authority sections with DO=1, sorted: what two servers
/// must agree on (the order is each server's).
pub fn sections(port: u16, name: &str, t: &str) -> Vec<String> {
    let mut v = signed_records(port, &["+answer", "+authority"], name, t);
    v.sort();
    v
}
