//! A pebble (the test ACME CA of shared/acme-testbed) of the test's own: separate state folder
//! and ports, so tests run in parallel. Stopped and purged on drop.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::server::free_port;

static N: AtomicUsize = AtomicUsize::new(0);

fn testbed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/acme-testbed")
}

pub struct Pebble {
    pub dir: PathBuf,
    pub acme_port: u16,
    pub mgmt_port: u16,
    /// Where pebble sends its DNS-01 queries (UDP, 127.0.0.1).
    pub dns_port: u16,
    validity: Option<u64>,
    extra: Vec<(String, String)>,
    pub env: HashMap<String, String>,
}

impl Pebble {
    /// Ports and folder for a pebble, not started yet.
    pub fn prepare(validity_secs: Option<u64>) -> Pebble {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("ringdns-pebble-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Pebble {
            dir,
            acme_port: free_port(),
            mgmt_port: free_port(),
            dns_port: free_port(),
            validity: validity_secs,
            extra: Vec::new(),
            env: HashMap::new(),
        }
    }

    /// Starts a pebble whose certificates last `validity_secs` (default 90 days).
    pub fn start(validity_secs: Option<u64>) -> Pebble {
        let mut p = Self::prepare(validity_secs);
        p.run();
        p
    }

    /// Extra environment for pebble (PEBBLE_WFE_NONCEREJECT...).
    pub fn with_env(mut self, k: &str, v: &str) -> Pebble {
        self.extra.push((k.into(), v.into()));
        self
    }

    fn script_env(&self, cmd: &mut Command) {
        cmd.env("ACME_TESTBED_DIR", &self.dir)
            .env("ACME_TESTBED_ACME_ADDR", format!("127.0.0.1:{}", self.acme_port))
            .env("ACME_TESTBED_MGMT_ADDR", format!("127.0.0.1:{}", self.mgmt_port))
            .env("ACME_TESTBED_DNS_SERVER", format!("127.0.0.1:{}", self.dns_port))
            .env("PEBBLE_AUTHZREUSE", "0");
        if let Some(v) = self.validity {
            cmd.env("ACME_TESTBED_CERT_VALIDITY", v.to_string());
        }
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
    }

    /// Starts (or restarts) this pebble.
    pub fn run(&mut self) {
        let mut cmd = Command::new("bash");
        cmd.arg(testbed().join("start-pebble.sh"));
        self.script_env(&mut cmd);
        let out = cmd.output().expect("run start-pebble.sh");
        assert!(
            out.status.success(),
            "start-pebble failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.env = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
    }

    /// Stops this pebble (its state folder is kept: the HTTPS CA stays the same).
    pub fn halt(&self) {
        let mut cmd = Command::new("bash");
        cmd.arg(testbed().join("stop-pebble.sh"));
        self.script_env(&mut cmd);
        let _ = cmd.output();
    }

    pub fn directory(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The CA of pebble's own HTTPS certificate (trust it in the ACME client only).
    pub fn https_ca(&self) -> PathBuf {
        self.dir.join("https/ca.pem")
    }

    /// The root that signs issued certificates (new at every start).
    pub fn issuer_root(&self) -> rustls::pki_types::CertificateDer<'static> {
        use rustls::pki_types::pem::PemObject;
        let path = self
            .env
            .get("ACME_ISSUER_ROOT_PEM")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.dir.join("issuer-root.pem"));
        rustls::pki_types::CertificateDer::from_pem_file(path).expect("issuer root")
    }

    /// pebble's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("pebble.log")).unwrap_or_default()
    }

    /// Runs `certbot` (a certbot binary) `certonly` against this CA with the authenticator
    /// arguments `plugin`, for `domains`, its state in `dir`: whether it succeeded, and its
    /// output followed by its log (for the assertion message).
    pub fn certbot(&self, certbot: &str, plugin: &[String], domains: &[&str], dir: &Path) -> (bool, String) {
        let mut cmd = Command::new(certbot);
        cmd.env("REQUESTS_CA_BUNDLE", self.https_ca())
            .args([
                "certonly",
                "--non-interactive",
                "--agree-tos",
                "-m",
                "ops@example.test",
                "--no-eff-email",
            ])
            .args(["--server", &self.directory()])
            .args(plugin);
        for d in domains {
            cmd.args(["-d", d]);
        }
        let out = cmd
            .arg("--config-dir")
            .arg(dir.join("config"))
            .arg("--work-dir")
            .arg(dir.join("work"))
            .arg("--logs-dir")
            .arg(dir.join("logs"))
            .output()
            .unwrap_or_else(|e| panic!("{certbot}: {e}"));
        let logs = std::fs::read_to_string(dir.join("logs/letsencrypt.log")).unwrap_or_default();
        let text =
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr) + "\n" + &logs;
        (out.status.success(), text)
    }

    /// The `tls acme` options that point ringdns at this pebble.
    pub fn acme_options(&self, certpath: &Path) -> String {
        format!(
            "        ca {}\n        cacert {}\n        certpath {}\n        port {}\n",
            self.directory(),
            self.https_ca().display(),
            certpath.display(),
            self.dns_port
        )
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let mut cmd = Command::new("bash");
        cmd.arg(testbed().join("stop-pebble.sh")).arg("--purge");
        self.script_env(&mut cmd);
        let _ = cmd.output();
    }
}
