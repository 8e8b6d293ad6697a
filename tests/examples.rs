//! Every example Corefile in the repository parses and loads, and the README's quick start
//! (examples/Corefile on 127.0.0.1:1053) answers dig.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use ringdns::config::{self, LoadOptions};
use ringdns::control::data::DataSet;

fn corefiles(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            corefiles(&p, out);
        } else if p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("Corefile"))
        {
            out.push(p);
        }
    }
}

#[test]
fn every_example_corefile_loads() {
    // Paths inside the examples are relative to the repository root, like the README runs them.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::env::set_current_dir(root).unwrap();
    let mut found = Vec::new();
    corefiles(&root.join("examples"), &mut found);
    assert!(!found.is_empty());
    for path in found {
        let cfg = config::load(&path, LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        DataSet::load(&cfg, None).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn readme_quick_start_answers_dig() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let log = std::env::temp_dir().join(format!("ringdns-quickstart-{}.log", std::process::id()));
    let mut child = Command::new(support::server::binary())
        .current_dir(root)
        .args(["--conf", "examples/Corefile"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    for _ in 0..50 {
        let out = Command::new("dig")
            .args([
                "@127.0.0.1",
                "-p",
                "1053",
                "+short",
                "+time=1",
                "+tries=1",
                "www.demo.test",
            ])
            .output()
            .expect("dig (bind9-dnsutils) is installed by the test command");
        answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if answer == "192.0.2.80" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert_eq!(answer, "192.0.2.80", "log:\n{text}");
}

#[test]
fn acme_demo_script_runs_offline() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("examples/acme-demo.sh"))
        .current_dir(root)
        .env("RINGDNS_BIN", support::server::binary())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("certificate obtained") && text.contains("TLS session") && text.contains("192.0.2.53"),
        "{text}"
    );
}
