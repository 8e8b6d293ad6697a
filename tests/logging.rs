//! Black-box: the `log` and `errors` directives.

mod support;

use std::time::Duration;

use domain::base::iana::Rtype;
use support::q;
use support::server::{Options, Server, example_zone};

both_drivers!(query_log_in_coredns_format, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    log\n}\nquiet.test:{PORT} {\n    bind 127.0.0.1\n    hosts {DIR}/none {\n        192.0.2.1 a.quiet.test\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    s.udp(&q("www.example.test", Rtype::A).id(4242));
    s.tcp(&q("nope.example.test", Rtype::AAAA).edns(1232).dnssec_ok());
    s.udp(&q("a.quiet.test", Rtype::A));
    assert!(
        s.wait_log(
            "\"A IN www.example.test. udp 34 false 512\" NOERROR qr,aa,rd",
            Duration::from_secs(5)
        ),
        "{}",
        s.log()
    );
    assert!(
        s.wait_log(
            "\"AAAA IN nope.example.test. tcp 46 true 1232\" NXDOMAIN",
            Duration::from_secs(5)
        ),
        "{}",
        s.log()
    );
    assert!(s.log().contains(" - 4242 \""), "{}", s.log());
    assert!(!s.log().contains("a.quiet.test"), "a block without log stays quiet");
});

both_drivers!(log_names_and_classes_filter, |driver| {
    let corefile = "example.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone\n    log sub.example.test mail.example.test \"{type} {name} {rcode}\" {\n        class denial\n    }\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    s.udp(&q("mail.example.test", Rtype::A));
    s.udp(&q("mail.example.test", Rtype::TXT));
    s.udp(&q("www.example.test", Rtype::TXT));
    assert!(
        s.wait_log("TXT mail.example.test. NOERROR", Duration::from_secs(5)),
        "{}",
        s.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = s.log();
    assert!(!log.contains("A mail.example.test."), "success not logged: {log}");
    assert!(!log.contains("www.example.test"), "name not listed: {log}");
});

both_drivers!(errors_directive_logs_refusals_inside_the_block, |driver| {
    let corefile = "example.test:{PORT} other.test:{PORT} {\n    bind 127.0.0.1\n    file {DIR}/zone example.test\n    errors\n}\n";
    let s = Server::start(Options::new(driver, corefile).file("zone", example_zone()));
    assert_eq!(s.udp(&q("x.other.test", Rtype::A)).rcode(), 5);
    assert!(
        s.wait_log(
            "x.other.test. A IN: no plugin of the server block serves this name",
            Duration::from_secs(5)
        ),
        "{}",
        s.log()
    );
    assert!(s.log().contains("ERROR"), "{}", s.log());
});
