//! Black-box: the Kubernetes default Corefile (../shared/corefiles/01, as the kubernetes
//! addon ships it) without its `kubernetes` block, on loopback ports: it forwards and
//! caches, `/health`, `/ready` and `/metrics` answer, and SIGTERM runs its 5 s lameduck.

mod support;

use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::server::{Options, Server, example_zone, free_port, wait_exit};
use support::{http_get as get, q};

/// The corpus file with its kubernetes block taken out and its addresses moved to loopback.
fn kubernetes_default(upstream: u16, metrics: u16) -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corefiles/01-k8s-kubernetes-addon.Corefile");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = String::new();
    let mut skipping = 0;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("kubernetes ") {
            skipping = 1;
            continue;
        }
        if skipping > 0 {
            skipping += t.matches('{').count();
            skipping -= t.matches('}').count();
            continue;
        }
        let line = match t {
            ".:53 {" => ".:{PORT} {\n    bind 127.0.0.1".to_string(),
            "health {" => "    health 127.0.0.1:{PORT2} {".to_string(),
            "ready" => "    ready 127.0.0.1:{PORT3}".to_string(),
            "prometheus :9153" => format!("    prometheus 127.0.0.1:{metrics}"),
            "forward . /etc/resolv.conf {" => format!("    forward . 127.0.0.1:{upstream} {{"),
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    assert!(
        !out.lines().any(|l| l.trim_start().starts_with("kubernetes"))
            && out.contains("loadbalance")
            && out.contains("lameduck 5s"),
        "{out}"
    );
    out
}

both_drivers!(the_kubernetes_default_corefile_serves_on_loopback, |driver| {
    let up = Server::start(
        Options::new(
            driver,
            "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\n",
        )
        .file("zone", example_zone()),
    );
    let metrics = free_port();
    let corefile = kubernetes_default(up.port, metrics);
    let mut s = Server::start(Options::new(driver, &corefile));
    assert_eq!(get(&format!("http://127.0.0.1:{}/health", s.port2)), (200, "OK".into()));
    let ready = format!("http://127.0.0.1:{}/ready", s.port3);
    assert_eq!(get(&ready), (200, "OK".into()));
    for _ in 0..3 {
        let r = s.udp(&q("www.example.test", Rtype::A));
        assert_eq!(r.answer()[0].data, "192.0.2.10");
    }
    assert_eq!(s.tcp(&q("nope.example.test", Rtype::A)).rcode(), 3);
    let (code, page) = get(&format!("http://127.0.0.1:{metrics}/metrics"));
    assert_eq!(code, 200);
    for needle in [
        "coredns_dns_requests_total{server=\"dns://127.0.0.1:",
        "coredns_cache_requests_total{",
        "coredns_proxy_request_duration_seconds_count{proxy_name=\"forward\"",
        "name=\"loadbalance\"} 1",
        "name=\"loop\"} 1",
        "name=\"cache\"} 1",
        "coredns_build_info{",
    ] {
        assert!(page.contains(needle), "{needle}\n{page}");
    }
    // SIGTERM: /ready fails at once, queries are answered for the 5 s lameduck, then exit.
    let t0 = Instant::now();
    s.signal("TERM");
    let deadline = t0 + Duration::from_secs(4);
    while get(&ready).0 != 503 {
        assert!(Instant::now() < deadline, "ready still answers 200: {}", s.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.udp(&q("www.example.test", Rtype::A)).answer().len(), 1);
    let st = wait_exit(&mut s.child, Duration::from_secs(15)).expect("exits after the lameduck");
    assert!(st.success());
    assert!(t0.elapsed() >= Duration::from_secs(5), "{:?}", t0.elapsed());
});
