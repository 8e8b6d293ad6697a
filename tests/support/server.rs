//! Starting the real ringdns binary on free loopback ports and talking to it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Query, Reply};

/// Runs a test body once per driver: `both_drivers!(name, |driver| { ... })`.
#[macro_export]
macro_rules! both_drivers {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[test]
            fn io_uring() {
                ($body)("io-uring")
            }
            #[test]
            fn legacy() {
                ($body)("legacy")
            }
        }
    };
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A scratch folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("ringdns-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port free for both UDP and TCP right now, and claimed for the rest of this test
/// process.
pub fn free_port() -> u16 {
    // Drawn below the kernel's ephemeral range (32768-60999 by default): a port from that
    // range can be handed to another test's outgoing socket between this check and the
    // server's bind, which once failed a test with "Address already in use".
    let seed = std::hash::RandomState::new();
    for attempt in 0u64.. {
        let draw = std::hash::BuildHasher::hash_one(&seed, (std::process::id(), attempt, Instant::now()));
        let port = 20_000 + (draw % 12_000) as u16;
        let Ok(_udp) = UdpSocket::bind(("127.0.0.1", port)) else {
            continue;
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && claim(port) {
            return port;
        }
    }
    unreachable!("the attempts do not end")
}

/// Test processes run in parallel and each draws ports: a port one has drawn but not bound
/// yet looks free to the others (pebble once lost its management port that way). A lock on
/// a file named after the port, held until this process exits (the kernel lets go of it
/// then, however the process ends), keeps the others off it.
fn claim(port: u16) -> bool {
    static HELD: std::sync::Mutex<Vec<std::fs::File>> = std::sync::Mutex::new(Vec::new());
    let dir = std::env::temp_dir().join("ringdns-test-ports");
    let _ = std::fs::create_dir_all(&dir);
    let Ok(f) = std::fs::File::create(dir.join(port.to_string())) else {
        return false;
    };
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    let locked = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        return false;
    }
    HELD.lock().unwrap_or_else(|e| e.into_inner()).push(f);
    true
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_ringdns")
}

/// A running ringdns.
pub struct Server {
    pub child: Child,
    pub port: u16,
    /// A second free port, for `{PORT2}` in the Corefile.
    pub port2: u16,
    /// A third, for `{PORT3}`.
    pub port3: u16,
    pub addr: SocketAddr,
    pub dir: TempDir,
    pub corefile: PathBuf,
    log: PathBuf,
}

/// How to start a server.
pub struct Options<'a> {
    pub driver: &'a str,
    /// Corefile text; `{PORT}` and `{DIR}` are replaced.
    pub corefile: &'a str,
    pub args: Vec<String>,
    /// Files written into the folder before start: (name, text with `{DIR}` replaced).
    pub files: Vec<(&'a str, String)>,
    /// A shell prefix such as `ulimit -n 64;`.
    pub shell_prefix: Option<&'a str>,
    /// `{PORT}` when it must be a given one (pebble's DNS port).
    pub port: Option<u16>,
    /// Environment of the server process.
    pub env: Vec<(String, String)>,
}

impl<'a> Options<'a> {
    pub fn new(driver: &'a str, corefile: &'a str) -> Self {
        Options {
            driver,
            corefile,
            args: Vec::new(),
            files: Vec::new(),
            shell_prefix: None,
            port: None,
            env: Vec::new(),
        }
    }
    pub fn port(mut self, p: u16) -> Self {
        self.port = Some(p);
        self
    }
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.to_string());
        self
    }
    pub fn shell(mut self, prefix: &'a str) -> Self {
        self.shell_prefix = Some(prefix);
        self
    }
    pub fn file(mut self, name: &'a str, text: impl Into<String>) -> Self {
        self.files.push((name, text.into()));
        self
    }
}

/// The test zone file's text.
pub fn example_zone() -> String {
    std::fs::read_to_string(super::data("example.test.zone")).unwrap()
}

/// dig at the server's UDP port (one try, 2 s), its stdout.
#[allow(dead_code)]
pub fn dig(s: &Server, args: &[&str]) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &s.port.to_string(), "+time=2", "+tries=1"])
        .args(args)
        .output()
        .expect("dig (test.sh installs bind9-dnsutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ringdns check` on a Corefile of `text` in a folder of its own: `Err(stderr)` when it is
/// refused.
#[allow(dead_code)]
pub fn check(text: &str) -> Result<String, String> {
    let dir = TempDir::new("check");
    let path = dir.write("Corefile", text);
    let out = Command::new(binary())
        .args(["check", "--conf"])
        .arg(&path)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

impl Server {
    /// Starts ringdns and waits until it answers on UDP and TCP.
    pub fn start(opts: Options<'_>) -> Server {
        let mut s = Self::spawn(opts);
        s.wait_ready();
        s
    }

    /// Starts ringdns without waiting.
    pub fn spawn(opts: Options<'_>) -> Server {
        let dir = TempDir::new("srv");
        let port = opts.port.unwrap_or_else(free_port);
        let port2 = loop {
            let p = free_port();
            if p != port {
                break p;
            }
        };
        let port3 = loop {
            let p = free_port();
            if p != port && p != port2 {
                break p;
            }
        };
        let subst = |t: &str| {
            t.replace("{PORT3}", &port3.to_string())
                .replace("{PORT2}", &port2.to_string())
                .replace("{PORT}", &port.to_string())
                .replace("{DIR}", &dir.path().display().to_string())
        };
        for (name, text) in &opts.files {
            dir.write(name, &subst(text));
        }
        let corefile = dir.write("Corefile", &subst(opts.corefile));
        let log = dir.path().join("ringdns.log");
        let logf = std::fs::File::create(&log).unwrap();
        let mut args: Vec<String> = vec![
            "--conf".into(),
            corefile.display().to_string(),
            "--driver".into(),
            opts.driver.into(),
            "--log-level".into(),
            "info".into(),
        ];
        if !opts.args.iter().any(|a| a == "--shards") {
            args.extend(["--shards".into(), "2".into()]);
        }
        args.extend(opts.args.iter().cloned());
        let mut cmd = match opts.shell_prefix {
            Some(prefix) => {
                let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("{prefix} exec '{}' {}", binary(), quoted.join(" ")));
                c
            }
            None => {
                let mut c = Command::new(binary());
                c.args(&args);
                c
            }
        };
        let child = cmd
            .env_remove("RUST_LOG")
            .envs(opts.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start ringdns");
        Server {
            child,
            port,
            port2,
            port3,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
            corefile,
            log,
        }
    }

    /// Waits until a UDP query gets any reply.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let probe = super::q("ready.probe.invalid", domain::base::iana::Rtype::A);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("ringdns exited ({st}) before answering; log:\n{}", self.log());
            }
            if self.udp_timeout(&probe.wire(), Duration::from_millis(100)).is_some() {
                return;
            }
        }
        panic!("ringdns did not answer within 15 s; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if self.log().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Sends raw bytes over UDP and returns the raw reply, if any within `t`.
    pub fn udp_timeout(&self, wire: &[u8], t: Duration) -> Option<Vec<u8>> {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_read_timeout(Some(t)).unwrap();
        sock.send_to(wire, self.addr).unwrap();
        let mut buf = vec![0u8; 65535];
        match sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// A query over UDP; panics without a reply within 2 s.
    pub fn udp(&self, q: &Query) -> Reply {
        let raw = self
            .udp_timeout(&q.wire(), Duration::from_secs(2))
            .unwrap_or_else(|| panic!("no UDP reply to {q:?}"));
        Reply::parse(&raw)
    }

    /// A query over a fresh TCP connection.
    pub fn tcp(&self, q: &Query) -> Reply {
        let mut s = self.connect();
        write_frame(&mut s, &q.wire());
        Reply::parse(&read_frame(&mut s).expect("a TCP reply"))
    }

    pub fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.set_nodelay(true).unwrap();
        s
    }

    /// Stops the server with SIGTERM; returns its exit status and its log.
    pub fn stop(mut self) -> (std::process::ExitStatus, String) {
        self.signal("TERM");
        let st = wait_exit(&mut self.child, Duration::from_secs(10)).expect("ringdns exits after SIGTERM");
        (st, self.log())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for a child to exit.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(st)) = child.try_wait() {
            return Some(st);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

pub fn write_frame(s: &mut TcpStream, msg: &[u8]) {
    let mut f = (msg.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(msg);
    s.write_all(&f).unwrap();
}

/// Reads one length-prefixed message; `None` on EOF or error.
pub fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).ok()?;
    let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut msg).ok()?;
    Some(msg)
}

/// True once the peer has closed (EOF or reset) within `within`; data is discarded.
pub fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut buf = [0u8; 65536];
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return true,
        }
    }
    false
}

/// A TCP connection to `dst` from the address and port `src` (`127.0.9.1:0`: a loopback
/// address of another /24 stands in for another client network).
pub fn connect_from(src: &str, dst: SocketAddr) -> TcpStream {
    try_connect_from(src, dst).expect("connect")
}

/// [`connect_from`] that returns the error.
pub fn try_connect_from(src: &str, dst: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.bind(&src.parse::<SocketAddr>().expect("an address").into())?;
    sock.connect_timeout(&dst.into(), Duration::from_secs(2))?;
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}
