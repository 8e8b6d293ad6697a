//! Black-box: DNS over HTTPS (RFC 8484) with `tls CERT KEY`, HTTP/2 and HTTP/1.1, under both
//! drivers, and the DoH / HTTP/2 lines of ROBUSTNESS.md.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use domain::base::iana::Rtype;
use support::doh::{Client, Raw, b64, frame, h2_frame, hpack_get};
use support::server::{Options, Server, example_zone};
use support::tls::{self, Ca};
use support::{Reply, q};

const COREFILE: &str = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n}\nhttps://example.test:{PORT2} {\n    bind 127.0.0.1\n    tls {DIR}/dns.pem {DIR}/dns.key\n    file {DIR}/zone\n}\n";

struct Fixture {
    s: Server,
    ca: Ca,
}

fn fixture(driver: &str) -> Fixture {
    let ca = Ca::new();
    let leaf = ca.leaf(&["dns.example.test"]);
    let s = Server::start(
        Options::new(driver, COREFILE)
            .file("zone", example_zone())
            .file("dns.pem", leaf.cert_pem)
            .file("dns.key", leaf.key_pem),
    );
    Fixture { s, ca }
}

impl Fixture {
    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.s.port2))
    }
    fn client(&self, alpn: &[u8]) -> Client {
        Client::connect(
            self.addr(),
            tls::client_config(&self.ca.der(), &[alpn]),
            "dns.example.test",
        )
        .expect("DoH connection")
    }
    fn raw(&self, settings: &[u8]) -> Raw {
        Raw::connect(self.addr(), &self.ca.der(), settings)
    }
}

fn query_path(name: &str, t: Rtype) -> String {
    format!("/dns-query?dns={}", b64(&q(name, t).id(0).wire()))
}

both_drivers!(get_and_post_over_h2_and_http11, |driver| {
    let f = fixture(driver);
    for alpn in [&b"h2"[..], b"http/1.1"] {
        let mut c = f.client(alpn);
        assert_eq!(c.alpn.as_deref(), Some(alpn));
        let g = c.get(&query_path("www.example.test", Rtype::A)).unwrap();
        assert_eq!(g.status, 200);
        assert_eq!(g.content_type.as_deref(), Some("application/dns-message"));
        assert_eq!(g.cache_control.as_deref(), Some("max-age=3600"));
        let r = Reply::parse(&g.body);
        assert_eq!((r.id(), r.answer()[0].data.as_str()), (0, "192.0.2.10"));
        let p = c
            .post("application/dns-message", q("mail.example.test", Rtype::A).id(0).wire())
            .unwrap();
        assert_eq!(p.status, 200);
        assert_eq!(Reply::parse(&p.body).answer()[0].data, "192.0.2.20");
        // DNS errors are HTTP 200 with the DNS rcode (RFC 8484 §4.2.1); max-age from the SOA.
        let n = c.get(&query_path("nope.example.test", Rtype::A)).unwrap();
        assert_eq!((n.status, Reply::parse(&n.body).rcode()), (hyper::StatusCode::OK, 3));
        assert_eq!(n.cache_control.as_deref(), Some("max-age=300"));
        let refused = c.get(&query_path("www.other.org", Rtype::A)).unwrap();
        assert_eq!(
            (refused.status, Reply::parse(&refused.body).rcode()),
            (hyper::StatusCode::OK, 5)
        );
    }
});

both_drivers!(http_errors, |driver| {
    let f = fixture(driver);
    let mut c = f.client(b"h2");
    let status = |g: Result<support::doh::Got, String>| g.unwrap().status.as_u16();
    let wire = q("www.example.test", Rtype::A).wire();
    let padded = format!("/dns-query?dns={}=", b64(&wire));
    assert_eq!(status(c.get(&padded)), 400, "padding");
    assert_eq!(status(c.get("/dns-query?dns=***")), 400, "bad base64");
    assert_eq!(status(c.get("/dns-query")), 400, "missing dns");
    assert_eq!(status(c.get("/dns-query?other=1")), 400);
    assert_eq!(status(c.post("text/plain", wire.clone())), 415);
    assert_eq!(status(c.post("application/dns-message", vec![0u8; 70_000])), 413);
    assert_eq!(
        status(c.post("application/dns-message", b"not a dns message at all".to_vec())),
        400
    );
    assert_eq!(status(c.post("application/dns-message", vec![1, 2, 3])), 400);
    assert_eq!(
        status(c.get(&query_path("www.example.test", Rtype::A).replace("/dns-query", "/resolve"))),
        404
    );
    assert_eq!(
        status(c.request("PUT", "/dns-query", Some("application/dns-message"), wire.clone())),
        405
    );
    assert_eq!(status(c.request("DELETE", "/dns-query", None, Vec::new())), 405);
    // After all of that the connection still answers.
    assert_eq!(status(c.get(&query_path("www.example.test", Rtype::A))), 200);
});

both_drivers!(dot_alpn_is_not_spoken_here, |driver| {
    let f = fixture(driver);
    let cfg = tls::client_config(&f.ca.der(), &[b"dot"]);
    assert!(Client::connect(f.addr(), cfg, "dns.example.test").is_err());
});

both_drivers!(rapid_reset_is_cut_off, |driver| {
    let f = fixture(driver);
    let mut raw = f.raw(&[]);
    let burst = stream_burst(1000, frame::RST_STREAM, &8u32.to_be_bytes());
    let _ = raw.send(&burst);
    // GOAWAY (ENHANCE_YOUR_CALM, 0xb) or a closed connection; never 1000 answers.
    let mut answered = 0;
    let end = raw.until(|ty, _, _, _| {
        if ty == frame::HEADERS {
            answered += 1;
        }
        ty == frame::GOAWAY
    });
    if let Some((_, _, _, payload)) = end {
        let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
        assert_eq!(code, 0xb, "ENHANCE_YOUR_CALM");
    }
    assert!(answered < 1000, "{answered}");
    // Other connections are unaffected.
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
});

both_drivers!(oversized_and_continuation_headers_are_rejected, |driver| {
    let f = fixture(driver);
    // One 60 KB header value.
    let mut raw = f.raw(&[]);
    let mut block = hpack_get(&query_path("www.example.test", Rtype::A));
    let value = vec![b'a'; 60_000];
    block.extend_from_slice(&[0x00, 0x01, b'x', 0x7f]); // literal, new name "x", 7-bit prefix full
    let mut rest = value.len() - 127;
    while rest >= 128 {
        block.push((rest % 128) as u8 | 0x80);
        rest /= 128;
    }
    block.push(rest as u8);
    block.extend_from_slice(&value);
    // Split over HEADERS + CONTINUATION frames of 16 KiB.
    let chunks: Vec<&[u8]> = block.chunks(16_384).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        let (ty, flags) = if i == 0 {
            (frame::HEADERS, frame::END_STREAM)
        } else {
            (frame::CONTINUATION, 0)
        };
        let last = if i + 1 == chunks.len() { frame::END_HEADERS } else { 0 };
        let _ = raw.send(&h2_frame(ty, flags | last, 1, chunk));
    }
    let end = raw.until(|ty, _, stream, _| {
        ty == frame::GOAWAY || (ty == frame::RST_STREAM || ty == frame::HEADERS) && stream == 1
    });
    let (ty, _, _, payload) = end.expect("the stream is answered or reset");
    // `:status 431` is HPACK 0x48 (literal :status, indexed) 0x83 (3 octets, Huffman) "431".
    const STATUS_431: [u8; 5] = [0x48, 0x83, 0x69, 0x90, 0xff];
    assert!(
        ty != frame::HEADERS || payload == STATUS_431,
        "431, never a 200: {payload:?}"
    );
    // A CONTINUATION flood without END_HEADERS.
    let mut raw = f.raw(&[]);
    let _ = raw.send(&h2_frame(
        frame::HEADERS,
        frame::END_STREAM,
        1,
        &hpack_get("/dns-query"),
    ));
    let junk = [0x00, 0x01, b'y', 0x7f, 0x81, 0x7f]
        .iter()
        .copied()
        .chain(std::iter::repeat_n(b'b', 255))
        .collect::<Vec<u8>>();
    let mut sent_all = true;
    for _ in 0..2000 {
        if raw.send(&h2_frame(frame::CONTINUATION, 0, 1, &junk)).is_err() {
            sent_all = false;
            break;
        }
    }
    let goaway = raw.until(|ty, _, _, _| ty == frame::GOAWAY);
    assert!(
        !sent_all || goaway.is_some(),
        "the flood was stopped (connection closed or GOAWAY)"
    );
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
});

both_drivers!(more_than_100_streams_are_refused, |driver| {
    let f = fixture(driver);
    let mut raw = f.raw(&[]);
    // 101 POSTs whose bodies never come: they stay open.
    let mut post = vec![0x83, 0x87]; // :method POST, :scheme https
    post.extend_from_slice(&[0x04, 10]);
    post.extend_from_slice(b"/dns-query");
    post.extend_from_slice(&[0x01, 16]);
    post.extend_from_slice(b"dns.example.test");
    post.extend_from_slice(&[0x0f, 0x10, 23]); // content-type (static index 31)
    post.extend_from_slice(b"application/dns-message");
    let mut burst = Vec::new();
    for i in 0..101u32 {
        burst.extend(h2_frame(frame::HEADERS, frame::END_HEADERS, 1 + 2 * i, &post));
    }
    raw.send(&burst).unwrap();
    let refused =
        raw.until(|ty, _, stream, payload| ty == frame::RST_STREAM && stream == 201 && payload == 7u32.to_be_bytes());
    assert!(
        refused.is_some(),
        "stream 201 (the 101st) gets RST_STREAM REFUSED_STREAM"
    );
});

/// Resident memory of a process in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

both_drivers!(ping_flood_without_reading, |driver| {
    let f = fixture(driver);
    let before = rss_kib(f.s.pid());
    let mut raw = f.raw(&[]);
    raw.tls.sock.set_write_timeout(Some(Duration::from_secs(45))).unwrap();
    let ping = h2_frame(frame::PING, 0, 0, &[1, 2, 3, 4, 5, 6, 7, 8]);
    let burst: Vec<u8> = ping.iter().copied().cycle().take(ping.len() * 5000).collect();
    let t0 = Instant::now();
    let mut stopped = false;
    while t0.elapsed() < Duration::from_secs(45) {
        // Never read the PING ACKs.
        if raw.send(&burst).is_err() {
            stopped = true;
            break;
        }
    }
    // PINGs are not requests: the idle timeout (30 s, then 5 s to drain) closes the
    // connection while the flood goes on, and h2 keeps at most one pending PING ACK.
    assert!(stopped, "closed");
    assert!(t0.elapsed() < Duration::from_secs(40), "{:?}", t0.elapsed());
    let growth = rss_kib(f.s.pid()).saturating_sub(before);
    assert!(growth < 64 * 1024, "output queue bounded: RSS grew {growth} KiB");
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
});

both_drivers!(idle_and_stalled_connections_are_closed, |driver| {
    let f = fixture(driver);
    // Idle: GOAWAY, then close, after 30 s.
    let mut idle = f.raw(&[]);
    // Zero window: the client grants no flow-control window, so a reply can never be sent.
    let mut stalled = f.raw(&[0x00, 0x04, 0, 0, 0, 0]); // SETTINGS_INITIAL_WINDOW_SIZE = 0
    let get = hpack_get(&query_path("big.example.test", Rtype::TXT));
    stalled
        .send(&h2_frame(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            1,
            &get,
        ))
        .unwrap();
    idle.tls.sock.set_read_timeout(Some(Duration::from_secs(45))).unwrap();
    stalled
        .tls
        .sock
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let t0 = Instant::now();
    let goaway = idle.until(|ty, _, _, _| ty == frame::GOAWAY);
    assert!(goaway.is_some(), "GOAWAY on an idle connection");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_secs(25) && waited <= Duration::from_secs(36),
        "{waited:?}"
    );
    // Then closed: at once when the client acknowledges, else after the 5 s drain.
    let closing = Instant::now();
    while idle.read_frame().is_some() {
        assert!(closing.elapsed() < Duration::from_secs(8), "still open after GOAWAY");
    }
    // The stalled one is gone within the drain time after its GOAWAY.
    let deadline = Instant::now() + Duration::from_secs(10);
    while stalled.read_frame().is_some() {
        assert!(Instant::now() < deadline, "the stalled connection was not closed");
    }
});

both_drivers!(kdig_over_https, |driver| {
    let f = fixture(driver);
    let ca = f.s.dir.write("ca.pem", &f.ca.pem());
    for method in ["+https", "+https-get"] {
        let (text, err) = support::kdig_encrypted(
            f.s.port2,
            method,
            &ca,
            "dns.example.test",
            &["www.example.test", "AAAA"],
        );
        assert!(
            text.contains("2001:db8::10") && text.contains("HTTP session (HTTP/2"),
            "{method}: {text}\n{err}"
        );
    }
});

both_drivers!(padding_over_https, |driver| {
    let f = fixture(driver);
    let mut c = f.client(b"h2");
    let p = c
        .post(
            "application/dns-message",
            q("www.example.test", Rtype::A).id(0).edns(1232).option(12, &[]).wire(),
        )
        .unwrap();
    assert_eq!(p.body.len() % 468, 0, "{}", p.body.len());
    let g = c.get(&query_path("www.example.test", Rtype::A)).unwrap();
    assert_ne!(g.body.len() % 468, 0, "no Padding option asked: no padding");
});

/// HPACK for `POST /dns-query` with content-type application/dns-message and a
/// content-length of `len` (literals without indexing).
fn hpack_post(len: usize) -> Vec<u8> {
    hpack_request(0x83, "/dns-query", "application/dns-message", len)
}

/// HPACK for a request: `method` a static-table octet (0x82 GET, 0x83 POST), a path, a
/// content-type and a content-length.
fn hpack_request(method: u8, path: &str, ctype: &str, len: usize) -> Vec<u8> {
    let mut h = vec![method, 0x87, 0x04, path.len() as u8];
    h.extend_from_slice(path.as_bytes());
    h.extend_from_slice(&[0x01, 16]);
    h.extend_from_slice(b"dns.example.test");
    h.extend_from_slice(&[0x0f, 0x10, ctype.len() as u8]);
    h.extend_from_slice(ctype.as_bytes());
    let l = len.to_string();
    h.extend_from_slice(&[0x0f, 0x0d, l.len() as u8]); // content-length (static index 28)
    h.extend_from_slice(l.as_bytes());
    h
}

both_drivers!(lying_content_length_is_a_bad_request, |driver| {
    let f = fixture(driver);
    let mut raw = f.raw(&[]);
    let body = q("www.example.test", Rtype::A).id(0).wire();
    // Announces 100 octets, sends fewer and ends the stream.
    raw.send(&h2_frame(frame::HEADERS, frame::END_HEADERS, 1, &hpack_post(100)))
        .unwrap();
    raw.send(&h2_frame(frame::DATA, frame::END_STREAM, 1, &body)).unwrap();
    let end = raw.until(|ty, _, stream, _| {
        stream == 1 && (ty == frame::HEADERS || ty == frame::RST_STREAM) || ty == frame::GOAWAY
    });
    let (ty, _, _, payload) = end.expect("the stream is answered or reset");
    // `:status 400` is 0x48 0x82 0x64 0x02 (Huffman "400"); or a reset of the stream.
    assert!(
        ty == frame::RST_STREAM || payload.starts_with(&[0x48]) && payload != [0x88],
        "{ty} {payload:?}"
    );
    assert_ne!(payload.first(), Some(&0x88), "never 200");
    // Announces more than 65535 octets: 413 before any body is read.
    raw.send(&h2_frame(frame::HEADERS, frame::END_HEADERS, 3, &hpack_post(1_000_000)))
        .unwrap();
    let end = raw.until(|ty, _, stream, _| stream == 3 && (ty == frame::HEADERS || ty == frame::RST_STREAM));
    let (ty, _, _, payload) = end.expect("answered");
    assert!(ty == frame::RST_STREAM || payload.first() != Some(&0x88));
    // The connection still serves.
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
});

both_drivers!(made_you_reset_trips_goaway, |driver| {
    let f = fixture(driver);
    // A zero WINDOW_UPDATE on a stream: h2 closes the whole connection at once.
    let mut raw = f.raw(&[]);
    let mut burst = h2_frame(frame::HEADERS, frame::END_HEADERS, 1, &hpack_post(12));
    burst.extend(h2_frame(8, 0, 1, &0u32.to_be_bytes()));
    let _ = raw.send(&burst);
    let (_, _, _, payload) = raw.until(|ty, _, _, _| ty == frame::GOAWAY).expect("GOAWAY");
    assert_eq!(
        u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]),
        1,
        "PROTOCOL_ERROR"
    );
    // DATA on streams the client already ended: each is a stream error the server answers
    // with RST_STREAM (RFC 9113 §5.1); the local-reset counter then trips GOAWAY.
    let mut raw = f.raw(&[]);
    let burst = stream_burst(400, frame::DATA, b"x");
    let _ = raw.send(&burst);
    let mut resets = 0;
    let goaway = raw.until(|ty, _, _, _| {
        if ty == frame::RST_STREAM {
            resets += 1;
        }
        ty == frame::GOAWAY
    });
    let (_, _, _, payload) = goaway.expect("GOAWAY after too many locally reset streams");
    let code = u32::from_be_bytes([payload[4], payload[5], payload[6], payload[7]]);
    assert!(
        code == 0xb || code == 1,
        "ENHANCE_YOUR_CALM or PROTOCOL_ERROR, got {code} after {resets} resets"
    );
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
});

/// `streams` complete GET requests on streams 1, 3, 5..., each followed on its stream by
/// one frame of type `then` carrying `payload` (a reset, or DATA after END_STREAM).
fn stream_burst(streams: u32, then: u8, payload: &[u8]) -> Vec<u8> {
    let get = hpack_get(&query_path("www.example.test", Rtype::A));
    let mut burst = Vec::new();
    for i in 0..streams {
        let id = 1 + 2 * i;
        burst.extend(h2_frame(
            frame::HEADERS,
            frame::END_HEADERS | frame::END_STREAM,
            id,
            &get,
        ));
        burst.extend(h2_frame(then, 0, id, payload));
    }
    burst
}

// Issue 10.7 (h2spec 8.1.2.6): a body that contradicts its content-length is a stream error
// of type PROTOCOL_ERROR (RFC 9113 §8.1.1) whatever the request would have been answered:
// the request is read whole before any response, never answered early (415, 404) and then
// reset under the client's later frames.
both_drivers!(content_length_mismatch_is_a_stream_error_for_any_request, |driver| {
    let f = fixture(driver);
    let mut raw = f.raw(&[]);
    let cases = [
        (0x83, "/dns-query", "text/plain", 1),
        (0x83, "/elsewhere", "application/dns-message", 1),
        (0x82, "/dns-query", "text/plain", 2),
    ];
    for (i, (method, path, ctype, frames)) in cases.into_iter().enumerate() {
        let id = 1 + 2 * i as u32;
        raw.send(&h2_frame(
            frame::HEADERS,
            frame::END_HEADERS,
            id,
            &hpack_request(method, path, ctype, 8),
        ))
        .unwrap();
        // 5 octets in one frame, or 6 + 6 in two: never the 8 announced.
        if frames == 1 {
            raw.send(&h2_frame(frame::DATA, frame::END_STREAM, id, b"12345"))
                .unwrap();
        } else {
            raw.send(&h2_frame(frame::DATA, 0, id, b"123456")).unwrap();
            raw.send(&h2_frame(frame::DATA, frame::END_STREAM, id, b"123456"))
                .unwrap();
        }
        let end = raw.until(|ty, _, stream, _| {
            stream == id && (ty == frame::HEADERS || ty == frame::RST_STREAM) || ty == frame::GOAWAY
        });
        let (ty, _, _, payload) = end.expect("the stream is reset");
        assert_eq!(
            ty,
            frame::RST_STREAM,
            "{method:x} {path} {ctype}: a reset, not a response"
        );
        assert_eq!(
            u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
            1,
            "PROTOCOL_ERROR"
        );
    }
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
});

// Issue 10.7: HEAD gets 405 without a body (curl used to report a protocol error).
both_drivers!(head_is_405_without_a_body, |driver| {
    let f = fixture(driver);
    let mut raw = f.raw(&[]);
    let mut head = vec![0x02, 4];
    head.extend_from_slice(b"HEAD");
    head.extend_from_slice(&hpack_get(&query_path("www.example.test", Rtype::A))[1..]);
    raw.send(&h2_frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM,
        1,
        &head,
    ))
    .unwrap();
    let (ty, flags, _, _) = raw
        .until(|ty, _, stream, _| stream == 1 && (ty == frame::HEADERS || ty == frame::DATA))
        .expect("a response");
    assert_eq!(ty, frame::HEADERS);
    assert_ne!(flags & frame::END_STREAM, 0, "the headers end the stream: no body");
    for http in ["--http2", "--http1.1"] {
        let out = std::process::Command::new("curl")
            .args(["-sS", "-k", "-I", http, "-o", "/dev/null", "-w", "%{http_code}"])
            .arg(format!("https://127.0.0.1:{}/dns-query", f.s.port2))
            .output()
            .expect("curl (test.sh installs it)");
        assert!(out.status.success(), "{http}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "405", "{http}");
    }
});

/// The sum over shards of a `ringdns_` series with `label` in its labels, from /metrics.
fn scraped(port: u16, name: &str, label: &str) -> u64 {
    let (code, body) = support::http_get(&format!("http://127.0.0.1:{port}/metrics"));
    assert_eq!(code, 200, "{body}");
    body.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Waits up to 5 s for a scraped count to reach `want`.
fn wait_count(port: u16, name: &str, label: &str, want: u64) -> u64 {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let n = scraped(port, name, label);
        if n >= want || Instant::now() > until {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ringdns_http2_resets_total: a stream the client resets before its response, and a
// connection ended on an HTTP/2 error (a DATA frame on stream 0 is a connection error,
// RFC 9113 §6.1).
both_drivers!(http2_resets_are_counted, |driver| {
    let ca = Ca::new();
    let leaf = ca.leaf(&["dns.example.test"]);
    // slow.test goes to an upstream that never answers: a request reset while it waits.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut corefile = COREFILE.replace(
        "    file {DIR}/zone\n}\n",
        "    file {DIR}/zone\n    prometheus 127.0.0.1:{PORT3}\n}\n",
    );
    corefile.push_str(&format!(
        "https://slow.test:{{PORT2}} {{\n    bind 127.0.0.1\n    forward . 127.0.0.1:{} {{\n        prefer_udp\n    }}\n    prometheus 127.0.0.1:{{PORT3}}\n}}\n",
        silent.local_addr().unwrap().port()
    ));
    let s = Server::start(
        Options::new(driver, &corefile)
            .file("zone", example_zone())
            .file("dns.pem", leaf.cert_pem)
            .file("dns.key", leaf.key_pem),
    );
    let f = Fixture { s, ca };
    let port = f.s.port3;
    let stream = r#"ringdns_http2_resets_total{shard"#;
    assert_eq!(scraped(port, stream, "scope=\"stream\""), 0);
    assert_eq!(scraped(port, stream, "scope=\"connection\""), 0);
    // A POST whose body never comes, then RST_STREAM CANCEL (8).
    let mut raw = f.raw(&[]);
    raw.send(&h2_frame(
        frame::HEADERS,
        frame::END_HEADERS,
        1,
        &hpack_request(0x83, "/dns-query", "application/dns-message", 40),
    ))
    .unwrap();
    raw.send(&h2_frame(frame::DATA, 0, 1, b"12345")).unwrap();
    raw.send(&h2_frame(frame::RST_STREAM, 0, 1, &8u32.to_be_bytes()))
        .unwrap();
    assert_eq!(wait_count(port, stream, "scope=\"stream\"", 1), 1);
    // A complete request is no reset.
    let mut c = f.client(b"h2");
    assert_eq!(c.get(&query_path("www.example.test", Rtype::A)).unwrap().status, 200);
    // A whole GET for slow.test, reset while the upstream is asked.
    raw.send(&h2_frame(
        frame::HEADERS,
        frame::END_HEADERS | frame::END_STREAM,
        3,
        &hpack_get(&query_path("slow.test", Rtype::A)),
    ))
    .unwrap();
    let mut buf = [0u8; 512];
    silent.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    silent.recv(&mut buf).expect("the query reaches the upstream");
    raw.send(&h2_frame(frame::RST_STREAM, 0, 3, &8u32.to_be_bytes()))
        .unwrap();
    assert_eq!(wait_count(port, stream, "scope=\"stream\"", 2), 2);
    let _ = raw.send(&h2_frame(frame::DATA, 0, 0, b"x"));
    assert!(raw.until(|ty, _, _, _| ty == frame::GOAWAY).is_some());
    assert_eq!(wait_count(port, stream, "scope=\"connection\"", 1), 1);
    assert_eq!(scraped(port, stream, "scope=\"stream\""), 2);
});
