//! Black-box: the command line, start-up errors, drivers and shutdown.

mod support;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use domain::base::iana::Rtype;
use support::q;
use support::server::{Options, Server, TempDir, binary, example_zone, free_port, wait_exit};

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_prints_what_would_be_served() {
    let d = TempDir::new("check");
    d.write("zone", &example_zone());
    let cf = d.write(
        "Corefile",
        "example.test:1053 {\n    bind 127.0.0.1\n    file zone\n}\n"
            .replace("file zone", &format!("file {}/zone", d.path().display()))
            .as_str(),
    );
    let (code, out, err) = run(&["check", "--conf", cf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dns://127.0.0.1:1053"), "{out}");
    assert!(out.contains("as example.test.: serial 2024010101"), "{out}");
}

#[test]
fn check_lists_forwarders_plugins_and_endpoints() {
    let d = TempDir::new("check-plugins");
    let cf = d.write(
        "Corefile",
        ".:1053 {\n    bind 127.0.0.1\n    forward . 192.0.2.53 tls://192.0.2.54 {\n        tls_servername dns.test\n    }\n    cache 30\n    loop\n    loadbalance\n    prometheus 127.0.0.1:9253\n    health 127.0.0.1:8090\n}\n",
    );
    let (code, out, err) = run(&["check", "--conf", cf.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for line in [
        "  forward . to 192.0.2.53:53 tls://192.0.2.54:853",
        "  plugins: prometheus, cache, loop, loadbalance",
        "health on http://127.0.0.1:8090",
        "prometheus on http://127.0.0.1:9253",
    ] {
        assert!(out.lines().any(|l| l == line), "{line:?} in\n{out}");
    }
}

#[test]
fn config_errors_name_file_line_and_directive() {
    let d = TempDir::new("cfgerr");
    let cf = d.write("Corefile", "example.com:53 {\n    hots\n}\n");
    for args in [vec!["check", "--conf"], vec!["--conf"]] {
        let mut a = args.clone();
        a.push(cf.to_str().unwrap());
        let (code, _, err) = run(&a);
        assert_ne!(code, 0);
        assert!(
            err.contains(&format!("{}:2:5: unknown directive \"hots\" in server block \"dns://example.com.:53\" (did you mean \"hosts\"?)", cf.display())),
            "{err}"
        );
    }
    let zone = d.write("db", "$ORIGIN example.test.\n@ SOA ns h 1 2 3 4 5\n\nwww A 300.1.1.1\n");
    let cf = d.write(
        "Corefile2",
        &format!("example.test:1053 {{\n  file {}\n}}\n", zone.display()),
    );
    let (code, _, err) = run(&["check", "--conf", cf.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Corefile2:2:3: file: ") && err.contains("/db:4: "),
        "{err}"
    );
    let (code, _, err) = run(&["check", "--conf", "/nonexistent/Corefile"]);
    assert_ne!(code, 0);
    assert!(err.contains("/nonexistent/Corefile"), "{err}");
}

#[test]
fn coredns_style_flags() {
    let d = TempDir::new("flags");
    let cf = d.write(
        "Corefile",
        "example.test {\n    bind 127.0.0.1\n    file zone\n}\n"
            .replace("file zone", &format!("file {}/zone", d.path().display()))
            .as_str(),
    );
    d.write("zone", &example_zone());
    let (code, out, err) = run(&["check", "-conf", cf.to_str().unwrap(), "-dns.port", "1054"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dns://127.0.0.1:1054"), "{out}");
}

#[test]
fn address_in_use_is_a_clear_startup_error() {
    let port = free_port();
    let _holder = std::net::UdpSocket::bind(("127.0.0.1", port)).unwrap();
    let d = TempDir::new("inuse");
    let cf = d.write("Corefile", &format!("example.test:{port} {{\n    bind 127.0.0.1\n    hosts {}/none {{\n        192.0.2.1 a.example.test\n    }}\n}}\n", d.path().display()));
    let (code, _, err) = run(&["--conf", cf.to_str().unwrap(), "--shards", "1"]);
    assert_ne!(code, 0);
    assert!(
        err.contains(&format!("cannot listen on dns://127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn acme_blocks_are_checked() {
    // `check` only: running this would contact the default CA (Let's Encrypt), and tests
    // never leave loopback.
    let d = TempDir::new("tls");
    let cf = d.write(
        "Corefile",
        "tls://example.test:8853 {\n    tls acme {\n        domain ns1.example.test\n    }\n}\n",
    );
    let (code, out, _) = run(&["check", "--conf", cf.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(
        out.contains("tls acme for ns1.example.test via https://acme-v02.api.letsencrypt.org/directory"),
        "{out}"
    );
    // Missing certificate files are named with the block that uses them.
    let cf = d.write(
        "Corefile2",
        "https://example.test:8443 {\n    tls /nonexistent/c.pem k.pem\n}\n",
    );
    let (code, _, err) = run(&["--conf", cf.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(
        err.contains("Corefile2:1:1: tls: /nonexistent/c.pem: No such file"),
        "{err}"
    );
}

const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n";

both_drivers!(sigterm_is_a_clean_exit, |driver| {
    let s = Server::start(Options::new(driver, COREFILE).file("zone", example_zone()));
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).rcode(), 0);
    s.tcp(&q("www.example.test", Rtype::A));
    let (st, log) = s.stop();
    assert!(st.success(), "{st}");
    // The per-shard counters, summed, are reported on the way out.
    assert!(
        log.contains("udp_answered=2") && log.contains("tcp_answered=1") && log.contains("ringdns stopped"),
        "{log}"
    );
});

/// Installs a seccomp filter that makes io_uring_setup (x86_64 syscall 425) fail with EPERM,
/// as container runtimes do.
fn block_io_uring(cmd: &mut Command) {
    // SAFETY: the closure runs in the forked child before exec and only calls prctl with a
    // filter program that lives on its stack for the duration of the call.
    unsafe {
        cmd.pre_exec(|| {
            let filter = [
                libc::sock_filter {
                    code: 0x20,
                    jt: 0,
                    jf: 0,
                    k: 0,
                }, // ld [nr]
                libc::sock_filter {
                    code: 0x15,
                    jt: 0,
                    jf: 1,
                    k: 425,
                }, // jeq 425
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x0005_0000 | libc::EPERM as u32,
                }, // ret ERRNO(EPERM)
                libc::sock_filter {
                    code: 0x06,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff_0000,
                }, // ret ALLOW
            ];
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut _,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER,
                &prog as *const _ as usize,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[test]
fn auto_falls_back_to_legacy_when_io_uring_is_blocked() {
    let d = TempDir::new("seccomp");
    d.write("zone", &example_zone());
    let port = free_port();
    let cf = d.write(
        "Corefile",
        &COREFILE
            .replace("{PORT}", &port.to_string())
            .replace("{DIR}", &d.path().display().to_string()),
    );
    let log = d.path().join("log");
    let mut cmd = Command::new(binary());
    cmd.args(["--conf", cf.to_str().unwrap(), "--driver", "auto", "--shards", "2"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    block_io_uring(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut answered = false;
    for _ in 0..50 {
        sock.send_to(&q("www.example.test", Rtype::A).wire(), ("127.0.0.1", port))
            .unwrap();
        let mut buf = [0u8; 512];
        if sock.recv(&mut buf).is_ok() {
            answered = true;
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(answered, "{text}");
    assert_eq!(
        text.matches("io_uring is not available").count(),
        1,
        "said once: {text}"
    );
    assert!(text.contains("driver=legacy"), "{text}");

    // Asking for io_uring explicitly on such a host is an error, not a silent fallback.
    let mut cmd = Command::new(binary());
    cmd.args(["--conf", cf.to_str().unwrap(), "--driver", "io-uring"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    block_io_uring(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    let st = wait_exit(&mut child, Duration::from_secs(10)).expect("exits");
    assert!(!st.success());
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(err.contains("io_uring is not available"), "{err}");
}

#[test]
fn auto_uses_io_uring_where_allowed() {
    let s = Server::start(Options::new("auto", COREFILE).file("zone", example_zone()));
    assert!(
        s.wait_log("driver=io-uring", Duration::from_secs(5)),
        "this machine allows io_uring: {}",
        s.log()
    );
}

/// The CPUs a thread of `pid` named `name` may run on (Cpus_allowed_list).
fn thread_cpus(pid: u32, name: &str) -> Option<String> {
    for t in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let dir = t.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == name {
            let status = std::fs::read_to_string(dir.join("status")).ok()?;
            return status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .map(|v| v.trim().to_string());
        }
    }
    None
}

#[test]
fn shards_are_threads_pinned_to_cores() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    let s = Server::start(Options::new("auto", COREFILE).file("zone", example_zone()));
    for i in 0..2 {
        assert_eq!(
            thread_cpus(s.pid(), &format!("shard-{i}")).as_deref(),
            Some((i % cpus).to_string().as_str())
        );
    }
    let s = Server::start(
        Options::new("auto", COREFILE)
            .file("zone", example_zone())
            .arg("--no-pin"),
    );
    let all = thread_cpus(s.pid(), "shard-0").unwrap();
    assert!(cpus == 1 || all.contains('-') || all.contains(','), "not pinned: {all}");
}

/// Runs `ringdns check` with a time limit; None when it does not finish.
fn check_within(cf: &std::path::Path, limit: Duration) -> Option<(i32, String)> {
    let mut child = Command::new(binary())
        .args(["check", "--conf", cf.to_str().unwrap()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    match wait_exit(&mut child, limit) {
        Some(st) => {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            Some((st.code().unwrap_or(-1), err))
        }
        None => {
            let _ = child.kill();
            let _ = child.wait();
            None
        }
    }
}

// Issue 10.4: `**` walked the whole filesystem through symlink loops, and start-up, `check`
// and reloads never ended. It means `*` (one path element), as in CoreDNS.
#[test]
fn import_with_double_star_and_symlink_loops_ends() {
    let d = TempDir::new("starstar");
    std::fs::create_dir_all(d.path().join("conf.d/sub")).unwrap();
    std::os::unix::fs::symlink(d.path(), d.path().join("conf.d/loop")).unwrap();
    std::os::unix::fs::symlink(d.path().join("conf.d/b"), d.path().join("conf.d/a")).unwrap();
    std::os::unix::fs::symlink(d.path().join("conf.d/a"), d.path().join("conf.d/b")).unwrap();
    d.write("conf.d/sub/x.conf", "log\n");
    let block = |import: &str| {
        format!(
            "example.test:1053 {{\n    bind 127.0.0.1\n    import {import}\n    hosts {{\n        192.0.2.1 a.example.test\n    }}\n}}\n"
        )
    };
    let cf = d.write("Corefile", &block("/**/x.conf"));
    let (code, err) = check_within(&cf, Duration::from_secs(60)).expect("check ends");
    assert_eq!(code, 0, "{err}");
    let cf = d.write("Corefile", &block("conf.d/**/**/**/**/**/**/x.conf"));
    let (code, err) = check_within(&cf, Duration::from_secs(60)).expect("check ends");
    assert_eq!(code, 0, "{err}");
    // `**` is one element: conf.d/**/x.conf finds conf.d/sub/x.conf and nothing deeper.
    let cf = d.write("Corefile", &block("conf.d/**/x.conf"));
    let (code, err) = check_within(&cf, Duration::from_secs(60)).expect("check ends");
    assert_eq!(code, 0, "{err}");
    // Devices and FIFOs are not Corefile text.
    let cf = d.write("Corefile", &block("/dev/zero"));
    let (code, err) = check_within(&cf, Duration::from_secs(60)).expect("check ends");
    assert!(code != 0 && err.contains("not a regular file"), "{err}");
    // Too many files for one import: a clear error naming the place.
    for i in 0..1001 {
        d.write(&format!("conf.d/sub/{i}.snip"), "");
    }
    let cf = d.write("Corefile", &block("conf.d/*/*.snip"));
    let (code, err) = check_within(&cf, Duration::from_secs(60)).expect("check ends");
    assert_ne!(code, 0);
    assert!(
        err.contains("Corefile:3:12: import") && err.contains("more than the 1000"),
        "{err}"
    );
}

both_drivers!(reload_with_a_double_star_import_keeps_the_control_thread, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    std::os::unix::fs::symlink(s.dir.path(), s.dir.path().join("loop")).unwrap();
    let new = format!(
        "example.test:{p} {{\n    bind 127.0.0.1\n    import {d}/**/**/**/**/none.conf\n    import /**/none.conf\n    file {d}/zone\n    log\n}}\n",
        p = s.port,
        d = s.dir.path().display()
    );
    std::fs::write(&s.corefile, new).unwrap();
    s.signal("HUP");
    assert!(s.wait_log("reloaded", Duration::from_secs(30)), "{}", s.log());
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).rcode(), 0);
    let (st, log) = s.stop();
    assert!(st.success(), "SIGTERM is still heard: {log}");
});
