//! Knot DNS (Debian's `knot`) as a hidden primary on a free loopback port: its zones from
//! text, transfers allowed to loopback, NOTIFY to a given address, changes made with
//! `knotc zone-begin/zone-set/zone-commit` as an operator makes them.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::server::{TempDir, free_port};

/// A running knotd, stopped on drop.
pub struct Knot {
    child: Child,
    /// Its DNS port on 127.0.0.1.
    pub port: u16,
    dir: TempDir,
    conf: PathBuf,
}

impl Knot {
    /// A primary for `zones` (origin, zone file text), sending NOTIFY to `notify` if given.
    pub fn primary(zones: &[(&str, &str)], notify: Option<SocketAddr>) -> Knot {
        Self::primary_keyed(zones, notify, None)
    }

    /// A primary whose transfers need, and whose NOTIFYs carry, the TSIG key `key` (name,
    /// hmac-sha256 secret in base64).
    pub fn primary_keyed(zones: &[(&str, &str)], notify: Option<SocketAddr>, key: Option<(&str, &str)>) -> Knot {
        let dir = TempDir::new("knot");
        let port = free_port();
        let d = dir.path().display().to_string();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: \"{d}\"\nlog:\n  - target: stderr\n    any: info\n{}acl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\n{}",
            key_section(key),
            acl_key(key)
        );
        if let Some(n) = notify {
            conf.push_str(&format!(
                "remote:\n  - id: edge\n    address: {}@{}\n{}",
                n.ip(),
                n.port(),
                acl_key(key)
            ));
        }
        conf.push_str(&format!(
            "template:\n  - id: default\n    storage: \"{d}\"\n    semantic-checks: off\n    zonefile-sync: -1\n    acl: xfr\n"
        ));
        if notify.is_some() {
            conf.push_str("    notify: edge\n");
        }
        conf.push_str("zone:\n");
        for (origin, text) in zones {
            let file = dir.write(&format!("{origin}.zone"), text);
            conf.push_str(&format!("  - domain: {origin}\n    file: \"{}\"\n", file.display()));
        }
        let k = Self::spawn(dir, port, &conf);
        k.wait_serving(zones[0].0);
        k
    }

    /// A primary for `zone` (origin, text) that takes RFC 2136 updates signed with `key`
    /// (name, hmac-sha256 secret in base64), as a hidden primary of ACME clients is set up.
    pub fn updatable(zone: (&str, &str), key: (&str, &str)) -> Knot {
        let dir = TempDir::new("knot-upd");
        let port = free_port();
        let d = dir.path().display().to_string();
        let file = dir.write(&format!("{}.zone", zone.0), zone.1);
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: \"{d}\"\nlog:\n  - target: stderr\n    any: info\n{}acl:\n  - id: update\n    address: 127.0.0.0/8\n    action: update\n{}template:\n  - id: default\n    storage: \"{d}\"\n    semantic-checks: off\n    zonefile-sync: -1\n    acl: update\nzone:\n  - domain: {}\n    file: \"{}\"\n",
            key_section(Some(key)),
            acl_key(Some(key)),
            zone.0,
            file.display()
        );
        let k = Self::spawn(dir, port, &conf);
        k.wait_serving(zone.0);
        k
    }

    /// Knot serving `origin` (text) with DNS Cookies by its `mod-cookies` and `secret`
    /// (32 hex digits), the reference for ringdns's RFC 9018 cookies.
    pub fn with_cookies(origin: &str, text: &str, secret: &str) -> Knot {
        let dir = TempDir::new("knot-cookies");
        let port = free_port();
        let d = dir.path().display().to_string();
        let file = dir.write(&format!("{origin}.zone"), text);
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: \"{d}\"\nlog:\n  - target: stderr\n    any: info\nmod-cookies:\n  - id: c\n    secret: 0x{secret}\ntemplate:\n  - id: default\n    storage: \"{d}\"\n    global-module: mod-cookies/c\nzone:\n  - domain: {origin}\n    file: \"{}\"\n",
            file.display()
        );
        let k = Self::spawn(dir, port, &conf);
        k.wait_serving(origin);
        k
    }

    /// A primary of `members` (origin, zone text) that generates the catalog zone `catalog`
    /// (RFC 9432, Knot's `catalog-role: generate`) listing them, NOTIFY to `notify`.
    pub fn catalog_primary(catalog: &str, members: &[(&str, &str)], notify: SocketAddr) -> Knot {
        let dir = TempDir::new("knot-cat");
        let port = free_port();
        let d = dir.path().display().to_string();
        let mut conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: \"{d}\"\nlog:\n  - target: stderr\n    any: info\nacl:\n  - id: xfr\n    address: 127.0.0.0/8\n    action: transfer\nremote:\n  - id: edge\n    address: {}@{}\ntemplate:\n  - id: default\n    storage: \"{d}\"\n    semantic-checks: off\n    zonefile-sync: -1\n    acl: xfr\n    notify: edge\nzone:\n  - domain: {catalog}\n    catalog-role: generate\n",
            notify.ip(),
            notify.port()
        );
        for (origin, text) in members {
            let file = dir.write(&format!("{origin}.zone"), text);
            conf.push_str(&format!(
                "  - domain: {origin}\n    file: \"{}\"\n    catalog-role: member\n    catalog-zone: {catalog}\n",
                file.display()
            ));
        }
        let k = Self::spawn(dir, port, &conf);
        k.wait_serving(members[0].0);
        k
    }

    /// Adds the zone `origin` (text) as a member of `catalog`, as an operator does with
    /// knotc's configuration transactions; Knot updates the catalog and sends NOTIFY.
    pub fn add_member(&self, catalog: &str, origin: &str, text: &str) {
        let file = self.dir.write(&format!("{origin}.zone"), text);
        let z = format!("zone[{origin}]");
        self.knotc(&["conf-begin"]);
        self.knotc(&["conf-set", &z]);
        self.knotc(&["conf-set", &format!("{z}.file"), &file.display().to_string()]);
        self.knotc(&["conf-set", &format!("{z}.catalog-role"), "member"]);
        self.knotc(&["conf-set", &format!("{z}.catalog-zone"), catalog]);
        self.knotc(&["conf-commit"]);
    }

    /// Removes the zone `origin` (and so its catalog entry).
    pub fn remove_zone(&self, origin: &str) {
        self.knotc(&["conf-begin"]);
        self.knotc(&["conf-unset", &format!("zone[{origin}]")]);
        self.knotc(&["conf-commit"]);
    }

    /// A secondary of `zone` from `primary` (it transfers at start-up).
    pub fn secondary(zone: &str, primary: SocketAddr) -> Knot {
        Self::secondary_on(zone, primary, free_port())
    }

    /// A secondary on `port`.
    pub fn secondary_on(zone: &str, primary: SocketAddr, port: u16) -> Knot {
        Self::secondary_keyed(zone, primary, port, None)
    }

    /// A secondary that signs its requests with, and takes NOTIFY only signed by, `key`.
    pub fn secondary_keyed(zone: &str, primary: SocketAddr, port: u16, key: Option<(&str, &str)>) -> Knot {
        let dir = TempDir::new("knot2");
        let d = dir.path().display().to_string();
        let conf = format!(
            "server:\n    rundir: \"{d}\"\n    listen: 127.0.0.1@{port}\n    udp-workers: 1\n    tcp-workers: 1\n    background-workers: 1\ndatabase:\n    storage: \"{d}\"\nlog:\n  - target: stderr\n    any: info\n{}remote:\n  - id: primary\n    address: {}@{}\n{}acl:\n  - id: notify\n    address: 127.0.0.0/8\n    action: notify\n{}template:\n  - id: default\n    storage: \"{d}\"\n    semantic-checks: off\n    zonefile-sync: -1\n    zonefile-load: none\n    journal-content: none\nzone:\n  - domain: {zone}\n    master: primary\n    acl: notify\n",
            key_section(key),
            primary.ip(),
            primary.port(),
            acl_key(key),
            acl_key(key)
        );
        let k = Self::spawn(dir, port, &conf);
        k.wait_serving(zone);
        k
    }

    /// Starts knotd on `conf`, written in `dir`.
    fn spawn(dir: TempDir, port: u16, conf: &str) -> Knot {
        let conf_path = dir.write("knot.conf", conf);
        let log = std::fs::File::create(dir.path().join("knot.log")).unwrap();
        let child = Command::new("knotd")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("knotd (test.sh installs knot)");
        Knot {
            child,
            port,
            dir,
            conf: conf_path,
        }
    }

    /// The address to transfer from.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Waits until Knot answers the SOA of `zone`.
    fn wait_serving(&self, zone: &str) {
        let until = Instant::now() + Duration::from_secs(10);
        let q = super::q(zone, domain::base::iana::Rtype::SOA).wire();
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        while Instant::now() < until {
            let _ = s.send_to(&q, self.addr());
            let mut buf = [0u8; 1500];
            if let Ok(n) = s.recv(&mut buf) {
                if super::Reply::parse(&buf[..n]).rcode() == 0 {
                    return;
                }
            }
        }
        panic!("knotd did not serve {zone}: {}", self.log());
    }

    /// Runs knotc against this server.
    pub fn knotc(&self, args: &[&str]) -> String {
        let out = Command::new("knotc")
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("knotc");
        assert!(
            out.status.success(),
            "knotc {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the `rtype` RRset at `owner` in `zone` with `DATA` (TTL `ttl`) in one
    /// transaction, as an operator does; Knot bumps the serial and sends NOTIFY.
    pub fn replace(&self, zone: &str, owner: &str, ttl: u32, rtype: &str, data: &str) {
        self.knotc(&["zone-begin", zone]);
        self.knotc(&["zone-unset", zone, owner, rtype]);
        self.knotc(&["zone-set", zone, owner, &ttl.to_string(), rtype, data]);
        self.knotc(&["zone-commit", zone]);
    }

    /// knotd's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("knot.log")).unwrap_or_default()
    }
}

/// Knot's `key:` section for `key` (hmac-sha256).
fn key_section(key: Option<(&str, &str)>) -> String {
    key.map_or(String::new(), |(name, secret)| {
        format!("key:\n  - id: {name}\n    algorithm: hmac-sha256\n    secret: {secret}\n")
    })
}

/// The `key:` line of an ACL or remote that uses `key`.
fn acl_key(key: Option<(&str, &str)>) -> String {
    key.map_or(String::new(), |(name, _)| format!("    key: {name}\n"))
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
