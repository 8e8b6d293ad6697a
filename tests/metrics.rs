//! Black-box: the `prometheus` endpoint, scraped by a real Prometheus server (Debian's
//! `prometheus`, started on free ports) and read back through its HTTP API: the CoreDNS
//! series count exactly the queries the test sent, summed over two shards; `promtool check
//! metrics` finds nothing to say about the page.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::q;
use support::server::{Options, Server, TempDir, free_port};

/// A Prometheus server scraping one target every second; stopped when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Prometheus {
    fn start(target: &str) -> Prometheus {
        let dir = TempDir::new("prom");
        let port = free_port();
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: ringdns\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        );
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.path().join("log")).unwrap()))
            .spawn()
            .expect("prometheus (test.sh installs the prometheus package)");
        Prometheus { child, port, _dir: dir }
    }

    /// The value of the instant query `expr` (`None` while it has no result).
    fn value(&self, expr: &str) -> Option<f64> {
        let url = format!("http://127.0.0.1:{}/api/v1/query", self.port);
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "5", "--get", &url, "--data-urlencode"])
            .arg(format!("query={expr}"))
            .output()
            .ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let r = v.pointer("/data/result/0/value/1")?.as_str()?;
        r.parse().ok()
    }

    /// Waits until `expr` is `want` (scrapes are a second apart); panics with what it is.
    fn expect(&self, expr: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = None;
        while Instant::now() < deadline {
            last = self.value(expr);
            if last == Some(want) {
                return;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("{expr}: {last:?}, expected {want}");
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const LOCAL_ZONE: &str = "$ORIGIN local.test.\n$TTL 300\n@ SOA ns hostmaster 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.1\nwww A 192.0.2.10\nwww AAAA 2001:db8::10\n";

fn scrape(port: u16) -> String {
    support::http_get(&format!("http://127.0.0.1:{port}/metrics")).1
}

/// The REFUSED answers to queries no block took, summed over the page's series.
fn dropped_refused(page: &str) -> f64 {
    page.lines()
        .filter(|l| {
            l.starts_with("coredns_dns_responses_total{")
                && l.contains(r#"zone="dropped""#)
                && l.contains(r#"rcode="REFUSED""#)
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn promtool_check(page: &str, dir: &Path) -> (bool, String) {
    let file = dir.join("metrics.txt");
    std::fs::write(&file, page).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("promtool check metrics < '{}'", file.display()))
        .output()
        .expect("promtool (prometheus package)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

both_drivers!(prometheus_counts_the_queries_sent, |driver| {
    // A real upstream for the forwarded zone: another ringdns, authoritative for it.
    let upstream = Server::start(
        Options::new(
            driver,
            "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n",
        )
        .file("zone", support::server::example_zone()),
    );
    let corefile = format!(
        "local.test:{{PORT}} {{\n    bind 127.0.0.1\n    file {{DIR}}/local local.test\n    prometheus 127.0.0.1:{{PORT2}}\n}}\n\
         example.test:{{PORT}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{}\n    cache 30\n    prometheus 127.0.0.1:{{PORT2}}\n}}\n",
        upstream.port
    );
    let s = Server::start(Options::new(driver, &corefile).file("local", LOCAL_ZONE));
    let prom = Prometheus::start(&format!("127.0.0.1:{}", s.port2));

    // Each query from a fresh socket: the kernel spreads them over both shards.
    for _ in 0..5 {
        assert_eq!(s.udp(&q("www.local.test", Rtype::A)).rcode(), 0);
    }
    for _ in 0..3 {
        assert_eq!(s.udp(&q("nope.local.test", Rtype::A)).rcode(), 3);
    }
    for _ in 0..2 {
        assert_eq!(
            s.tcp(&q("www.local.test", Rtype::AAAA).edns(1232).dnssec_ok()).rcode(),
            0
        );
    }
    // Server::start's readiness probes (ready.probe.invalid) are REFUSED "dropped" queries
    // too, one or more as the machine is slow: counted before x.invalid goes.
    let probes = dropped_refused(&scrape(s.port2));
    assert!(probes >= 1.0, "the start-up probe is counted");
    assert_eq!(s.udp(&q("x.invalid", Rtype::A)).rcode(), 5);
    // Caches are per shard: one source address and port keeps both on one shard (the
    // kernel's SO_REUSEPORT hash), so the second is a hit.
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    for _ in 0..2 {
        client.send_to(&q("www.example.test", Rtype::A).wire(), s.addr).unwrap();
        let mut buf = [0u8; 1500];
        let n = client.recv(&mut buf).expect("a reply");
        let r = support::Reply::parse(&buf[..n]);
        assert_eq!(r.rcode(), 0);
        assert_eq!(r.answer().len(), 1);
    }

    let z = r#"zone="local.test.",server="dns://127.0.0.1:PORT""#.replace("PORT", &s.port.to_string());
    prom.expect(r#"up{job="ringdns"}"#, 1.0);
    for (expr, want) in [
        (
            format!(r#"sum(coredns_dns_requests_total{{{z},proto="udp",family="1",type="A"}})"#),
            8.0,
        ),
        (
            format!(r#"sum(coredns_dns_requests_total{{{z},proto="tcp",type="AAAA"}})"#),
            2.0,
        ),
        (format!(r#"sum(coredns_dns_do_requests_total{{{z}}})"#), 2.0),
        (
            format!(r#"sum(coredns_dns_responses_total{{{z},rcode="NOERROR",plugin="file"}})"#),
            7.0,
        ),
        (
            format!(r#"sum(coredns_dns_responses_total{{{z},rcode="NXDOMAIN",plugin="file"}})"#),
            3.0,
        ),
        (
            format!(r#"sum(coredns_dns_request_duration_seconds_count{{{z}}})"#),
            10.0,
        ),
        (
            format!(r#"sum(coredns_dns_request_duration_seconds_bucket{{{z},le="+Inf"}})"#),
            10.0,
        ),
        (
            format!(r#"sum(coredns_dns_request_size_bytes_count{{{z},proto="udp"}})"#),
            8.0,
        ),
        (
            format!(r#"sum(coredns_dns_response_size_bytes_count{{{z},proto="tcp"}})"#),
            2.0,
        ),
        (format!(r#"coredns_plugin_enabled{{{z},name="file"}}"#), 1.0),
        // x.invalid, and the start-up probes of Server::start.
        (
            r#"sum(coredns_dns_responses_total{zone="dropped",rcode="REFUSED",plugin=""})"#.into(),
            probes + 1.0,
        ),
        (
            r#"sum(coredns_dns_responses_total{zone="example.test.",plugin="forward"})"#.into(),
            1.0,
        ),
        (
            r#"sum(coredns_dns_responses_total{zone="example.test.",plugin="cache"})"#.into(),
            1.0,
        ),
        (
            r#"sum(coredns_cache_requests_total{zones="example.test."})"#.into(),
            2.0,
        ),
        (
            r#"sum(coredns_cache_hits_total{zones="example.test.",type="success"})"#.into(),
            1.0,
        ),
        (r#"sum(coredns_cache_misses_total{zones="example.test."})"#.into(), 1.0),
        (r#"sum(coredns_cache_entries{type="success"})"#.into(), 1.0),
        (
            format!(
                r#"sum(coredns_proxy_request_duration_seconds_count{{proxy_name="forward",to="127.0.0.1:{}",rcode="NOERROR"}})"#,
                upstream.port
            ),
            1.0,
        ),
        (r#"coredns_reload_failed_total"#.into(), 0.0),
        (r#"count(coredns_build_info)"#.into(), 1.0),
        (r#"count(process_resident_memory_bytes > 0)"#.into(), 1.0),
        (r#"sum(ringdns_answered_total{transport="udp"})"#.into(), 12.0),
    ] {
        prom.expect(&expr, want);
    }

    let page = scrape(s.port2);
    let (ok, said) = promtool_check(&page, s.dir.path());
    assert!(ok && said.trim().is_empty(), "promtool: {said}\n{page}");
    drop(prom);
    let (st, _) = s.stop();
    assert!(st.success());
});

both_drivers!(counts_survive_a_reload_and_failed_reloads_are_counted, |driver| {
    let corefile = "local.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/local local.test\n    prometheus 127.0.0.1:{PORT2}\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("local", LOCAL_ZONE));
    for _ in 0..4 {
        assert_eq!(s.udp(&q("www.local.test", Rtype::A)).rcode(), 0);
    }
    let count = |page: &str| -> u64 {
        page.lines()
            .filter(|l| l.starts_with("coredns_dns_requests_total{") && l.contains("zone=\"local.test.\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    assert_eq!(count(&scrape(s.port2)), 4);
    // A datagram shorter than a header is dropped, and counted by reason.
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .send_to(&[1, 2, 3], s.addr)
        .unwrap();
    let short = |page: &str| -> u64 {
        page.lines()
            .filter(|l| l.starts_with("ringdns_udp_drops_total{") && l.contains("reason=\"short\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while short(&scrape(s.port2)) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(short(&scrape(s.port2)), 1);
    // A changed Corefile (a log line more) keeps the counts; a broken one is counted.
    std::fs::write(
        &s.corefile,
        corefile
            .replace("{PORT2}", &s.port2.to_string())
            .replace("{PORT}", &s.port.to_string())
            .replace("{DIR}", &s.dir.path().display().to_string())
            .replace("    prometheus", "    errors\n    prometheus"),
    )
    .unwrap();
    s.signal("HUP");
    assert!(
        s.wait_log("configuration reloaded", Duration::from_secs(10)),
        "{}",
        s.log()
    );
    assert_eq!(s.udp(&q("www.local.test", Rtype::A)).rcode(), 0);
    assert_eq!(count(&scrape(s.port2)), 5);
    std::fs::write(&s.corefile, "local.test {\n    nonsense\n}\n").unwrap();
    s.signal("HUP");
    assert!(s.wait_log("reload failed", Duration::from_secs(10)), "{}", s.log());
    assert!(scrape(s.port2).lines().any(|l| l == "coredns_reload_failed_total 1"));
    let (st, _) = s.stop();
    assert!(st.success());
});
