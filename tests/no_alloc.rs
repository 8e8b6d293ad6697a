//! The UDP query path allocates nothing: a counting global allocator watches `dns::answer`
//! over every class of answer once the reply buffer has its capacity.

mod support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;

use domain::base::iana::Rtype;
use ringdns::config::Transport;
use ringdns::config::{self, LoadOptions};
use ringdns::control::{build, data::DataSet};
use ringdns::dns::answer::REPLY_CAPACITY;
use ringdns::dns::{Ctx, Outcome, Scratch, answer};
use support::{data, q};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Per thread, so tests running side by side do not count each other's.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

fn reset_allocations() {
    ALLOCATIONS.with(|a| a.set(0));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the wrapper only
// counts, using a const-initialised thread-local that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The snapshot a Corefile makes.
fn snapshot(corefile: &str) -> ringdns::dns::pipeline::Snapshot {
    let cfg = config::parse(corefile, Path::new("Corefile"), LoadOptions::default()).unwrap();
    let data = DataSet::load(&cfg, None).unwrap();
    build::snapshot(&cfg, &data, &Default::default(), 1, None)
}

/// The context of a UDP query to the snapshot's first listener.
fn udp(snap: &ringdns::dns::pipeline::Snapshot) -> Ctx<'_> {
    Ctx {
        route: snap.route(&snap.listeners[0].0),
        transport: Transport::Udp,
        challenges: None,
        client: None,
    }
}

/// Answers each query 1000 times (after the warm-up the caller did): no allocation.
fn answers_allocate_nothing<'w>(ctx: &Ctx<'_>, cases: impl Iterator<Item = (String, &'w [u8])>, out: &mut Vec<u8>) {
    for (name, wire) in cases {
        reset_allocations();
        COUNTING.with(|c| c.set(true));
        for _ in 0..1000 {
            let mut scratch = Scratch::new();
            std::hint::black_box(answer(ctx, std::hint::black_box(wire), &mut scratch, out));
        }
        COUNTING.with(|c| c.set(false));
        assert_eq!(allocations(), 0, "{name} allocated");
    }
}

#[test]
fn answer_allocates_nothing() {
    let corefile = format!(
        "example.test:1053 hosts.test:1053 {{\n bind 127.0.0.1\n file {zone} example.test\n hosts {none} hosts.test {{\n  192.0.2.77 h1.hosts.test\n }}\n}}\n",
        zone = data("example.test.zone").display(),
        none = data("no-such-hosts-file").display(),
    );
    let snap = snapshot(&corefile);
    let challenge = ringdns::zone::challenge::challenge_name("example.test").unwrap();
    let values = ["LoqXcYV8q5ONbJQxbmR7SCTNo3tiAXDfowyjxAjEuX0".to_string()];
    let challenges = ringdns::zone::challenge::ChallengeSet::new(1, [(&challenge, &values[..])]);
    let ctx = Ctx {
        route: snap.route(&snap.listeners[0].0),
        transport: Transport::Udp,
        challenges: Some(&challenges),
        client: None,
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("hit", q("www.example.test", Rtype::A).wire()),
        ("acme challenge", q("_acme-challenge.example.test", Rtype::TXT).wire()),
        (
            "hit with EDNS and DO",
            q("www.example.test", Rtype::AAAA).edns(1232).dnssec_ok().wire(),
        ),
        ("nxdomain", q("nope.example.test", Rtype::A).wire()),
        ("nodata", q("www.example.test", Rtype::TXT).wire()),
        ("empty non-terminal", q("ent.example.test", Rtype::A).wire()),
        ("referral", q("host.sub.example.test", Rtype::A).wire()),
        ("cname chain", q("chain1.example.test", Rtype::A).wire()),
        ("wildcard", q("x.wild.example.test", Rtype::A).wire()),
        ("truncated", q("big.example.test", Rtype::TXT).edns(4096).wire()),
        ("any", q("example.test", Rtype::ANY).wire()),
        ("mx with additional", q("example.test", Rtype::MX).wire()),
        ("hosts", q("h1.hosts.test", Rtype::A).wire()),
        ("hosts nxdomain", q("nobody.hosts.test", Rtype::A).wire()),
        ("refused", q("www.other.org", Rtype::A).wire()),
        (
            "badvers",
            q("www.example.test", Rtype::A).edns(1232).edns_version(1).wire(),
        ),
        ("notimp opcode", q("www.example.test", Rtype::A).opcode(2).wire()),
        ("formerr", vec![0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1]),
        ("short", vec![1, 2, 3]),
    ];
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    for (name, wire) in &cases {
        // Warm up, and make sure each case does what its name says.
        let mut scratch = Scratch::new();
        let o = answer(&ctx, wire, &mut scratch, &mut out);
        if *name == "acme challenge" {
            assert_eq!(out[7], 1, "the challenge TXT is answered");
        }
        if *name == "truncated" {
            assert!(matches!(o, Outcome::Reply { truncated: true, .. }), "{name}: {o:?}");
        }
        if *name == "short" {
            assert!(matches!(o, Outcome::Drop(_)));
        }
    }
    answers_allocate_nothing(&ctx, cases.iter().map(|(n, w)| (n.to_string(), &w[..])), &mut out);
    // The UDP loop's reply buffers (4 KiB each) never grow: UDP replies stop at 1232 octets.
    let mut small = Vec::with_capacity(ringdns::net::mmsg::MAX_REPLY);
    reset_allocations();
    COUNTING.with(|c| c.set(true));
    for (_, wire) in &cases {
        let mut scratch = Scratch::new();
        std::hint::black_box(answer(&ctx, std::hint::black_box(wire), &mut scratch, &mut small));
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(allocations(), 0, "a UDP reply outgrew its buffer");
    // The counter works: a Vec allocation is seen.
    COUNTING.with(|c| c.set(true));
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(10));
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert!(allocations() > 0);
}

/// With DO=1 from zones signed with NSEC and NSEC3: signatures, denial proofs (the NSEC3
/// ones hash the next closer name per query) and signed additional data, without
/// allocating.
#[test]
fn signed_answers_allocate_nothing() {
    let corefile = format!(
        "nsec.test:1053 nsec3.test:1053 {{\n bind 127.0.0.1\n file {nsec} nsec.test\n file {nsec3} nsec3.test\n}}\n",
        nsec = data("nsec.test.signed").display(),
        nsec3 = data("nsec3.test.signed").display(),
    );
    let snap = snapshot(&corefile);
    let ctx = udp(&snap);
    let mut cases: Vec<(String, Vec<u8>, u16)> = Vec::new();
    for z in ["nsec.test", "nsec3.test"] {
        // (query, type, the fewest authority records the answer must have)
        for (name, t, authority) in [
            ("www", Rtype::A, 0),
            ("@", Rtype::MX, 0),
            ("nope", Rtype::A, 4),
            ("www", Rtype::TXT, 4),
            ("b", Rtype::A, 4),
            ("x.wild", Rtype::TXT, 2),
            ("x.wild", Rtype::A, 4),
            ("www.sub", Rtype::A, 3),
            ("sub", Rtype::DS, 4),
        ] {
            let qname = if name == "@" {
                z.to_string()
            } else {
                format!("{name}.{z}")
            };
            let wire = q(&qname, t).edns(1232).dnssec_ok().wire();
            cases.push((format!("{qname} {t}"), wire, authority));
        }
    }
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    for (name, wire, authority) in &cases {
        let mut scratch = Scratch::new();
        let o = answer(&ctx, wire, &mut scratch, &mut out);
        assert!(matches!(o, Outcome::Reply { truncated: false, .. }), "{name}: {o:?}");
        let nscount = u16::from_be_bytes([out[8], out[9]]);
        assert!(nscount >= *authority, "{name}: {nscount} authority records");
    }
    answers_allocate_nothing(&ctx, cases.iter().map(|(n, w, _)| (n.clone(), &w[..])), &mut out);
}

/// Online signing (`dnssec`) of an unsigned zone: once the shard's cache holds the
/// signatures, answers with DO=1 (positive, black lies, DNSKEY) allocate nothing.
#[test]
fn online_signed_cache_hits_allocate_nothing() {
    let corefile = format!(
        "example.test:1053 {{\n bind 127.0.0.1\n file {zone} example.test\n dnssec {{\n  key file {key}\n }}\n}}\n",
        zone = data("example.test.zone").display(),
        key = data("Kexample.test.+013+33970").display(),
    );
    let snap = snapshot(&corefile);
    let ctx = udp(&snap);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("hit", q("www.example.test", Rtype::A).edns(1232).dnssec_ok().wire()),
        (
            "nxdomain",
            q("nope.example.test", Rtype::A).edns(1232).dnssec_ok().wire(),
        ),
        (
            "nodata",
            q("www.example.test", Rtype::TXT).edns(1232).dnssec_ok().wire(),
        ),
        ("dnskey", q("example.test", Rtype::DNSKEY).edns(1232).dnssec_ok().wire()),
        (
            "wildcard",
            q("x.wild.example.test", Rtype::A).edns(1232).dnssec_ok().wire(),
        ),
        (
            "referral",
            q("host.sub.example.test", Rtype::A).edns(1232).dnssec_ok().wire(),
        ),
    ];
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    for (name, wire) in &cases {
        // Fills the cache, and checks that signatures come.
        let mut scratch = Scratch::new();
        let o = answer(&ctx, wire, &mut scratch, &mut out);
        assert!(matches!(o, Outcome::Reply { truncated: false, .. }), "{name}: {o:?}");
        let msg = domain::base::Message::from_octets(&out[..]).unwrap();
        let sigs = msg
            .answer()
            .unwrap()
            .chain(msg.authority().unwrap())
            .filter(|r| r.as_ref().is_ok_and(|r| r.rtype() == Rtype::RRSIG))
            .count();
        assert!(sigs > 0, "{name}: no RRSIG");
    }
    answers_allocate_nothing(&ctx, cases.iter().map(|(n, w)| (n.to_string(), &w[..])), &mut out);
}

#[test]
fn forwarded_cache_hit_allocates_nothing() {
    use ringdns::forward::{self, Cached, ShardForward};
    use support::upstream::{Act, Rec, Upstream, a, qname, reply};
    let up = Upstream::start(|query, _| {
        let n = qname(query);
        vec![Act::Send(reply(
            query,
            0,
            &[Rec(&n, 1, 300, a([192, 0, 2, 1])), Rec(&n, 1, 300, a([192, 0, 2, 2]))],
            &[],
            &[],
        ))]
    });
    let corefile = format!(".:1053 {{\n bind 127.0.0.1\n forward . {}\n cache\n}}\n", up.addr);
    let snap = snapshot(&corefile);
    let ctx = udp(&snap);
    let fwd = std::rc::Rc::new(ShardForward::new(Default::default()));
    let query = q("www.cached.test", Rtype::A).edns(1232).wire();
    // What a serving loop does with a forwarded query: the core's answer hands over the plan
    // and the parsed request; the forwarder's cache answers from them.
    let from_cache = |wire: &[u8], out: &mut Vec<u8>| {
        let mut scratch = Scratch::new();
        let Outcome::Forward(f) = answer(&ctx, wire, &mut scratch, out) else {
            panic!("the block forwards");
        };
        let asked = forward::Query::of(&f.request).expect("a question");
        matches!(
            fwd.cached(f.plan, &asked, wire, (ctx.transport, None), out),
            Cached::Hit { refresh: false }
        )
    };
    // Fill the cache through a real upstream exchange.
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .enable_timer()
        .build()
        .unwrap();
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    let mut scratch = Scratch::new();
    let Outcome::Forward(f) = answer(&ctx, &query, &mut scratch, &mut out) else {
        panic!("the block forwards");
    };
    let asked = forward::Query::of(&f.request).expect("a question");
    let first = rt.block_on(forward::resolve(
        fwd.clone(),
        f.plan.clone(),
        asked,
        &query,
        (ctx.transport, None),
    ));
    assert_eq!(support::Reply::parse(&first).answer().len(), 2);
    assert!(from_cache(&query, &mut out), "a fresh hit");
    reset_allocations();
    COUNTING.with(|c| c.set(true));
    for _ in 0..1000 {
        std::hint::black_box(from_cache(std::hint::black_box(&query), &mut out));
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(allocations(), 0, "a cache hit allocated");
    assert_eq!(support::Reply::parse(&out).answer().len(), 2);
}

/// A reply for a.test A: four addresses (owners pointing at the question) and one MX.
fn pool_reply() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 5, 0, 0, 0, 0];
    m.extend_from_slice(b"\x01a\x04test\x00\x00\x01\x00\x01");
    for i in 1..=4 {
        m.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, i]);
    }
    m.extend_from_slice(&[0xC0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 0xC0, 12]);
    m
}

// loadbalance runs on every UDP reply of its block: round_robin, weighted and prefer
// reorder addresses without allocating (only an MX RRset of two or more is rebuilt).
#[test]
fn loadbalance_allocates_nothing() {
    use ringdns::dns::balance::{Balance, Weights, balance};
    let prefer = vec![("10.0.0.3".parse().unwrap(), 32), ("10.0.0.0".parse().unwrap(), 8)];
    let weights = Weights::parse("a.test\n10.0.0.1 3\n10.0.0.2 1\n").unwrap();
    let cases = [
        Balance::default(),
        Balance {
            weights: None,
            prefer: prefer.clone(),
        },
        Balance {
            weights: Some(std::sync::Arc::new(weights)),
            prefer,
        },
    ];
    let before = pool_reply();
    for (i, b) in cases.iter().enumerate() {
        let mut m = before.clone();
        // The shard's random source is made on first use.
        balance(&mut m, b);
        let mut firsts = [false; 256];
        reset_allocations();
        COUNTING.with(|c| c.set(true));
        for _ in 0..1000 {
            balance(&mut m, std::hint::black_box(b));
            firsts[usize::from(m[12 + 12 + 15])] = true;
        }
        COUNTING.with(|c| c.set(false));
        assert_eq!(allocations(), 0, "case {i} allocated");
        assert_eq!(m.len(), before.len());
        // The cases do what they say: round_robin puts each first, prefer always .3.
        let want = if i == 0 { 4 } else { 1 };
        assert_eq!(firsts.iter().filter(|f| **f).count(), want, "case {i}");
        assert!(firsts[3], "case {i}: .3 comes first, always with prefer");
    }
}

/// `rrl`'s response and request stages on the UDP path: classifying each kind of reply,
/// spending or limiting its account, slipping it and turning it into BADCOOKIE allocate
/// nothing once the table is made.
#[test]
fn rate_limiting_allocates_nothing() {
    use ringdns::dns::rrl::{self, Table};
    let corefile = format!(
        "example.test:1053 {{\n bind 127.0.0.1\n file {zone} example.test\n rrl {{\n  responses-per-second 10\n  requests-per-second 100\n  slip-ratio 2\n }}\n}}\n",
        zone = data("example.test.zone").display(),
    );
    let snap = snapshot(&corefile);
    let ctx = Ctx {
        client: Some("198.18.0.7:5353".parse().unwrap()),
        ..udp(&snap)
    };
    let route = ctx.route.unwrap();
    let limits = route.entry(0).unwrap().block.plugins.rrl.clone().unwrap();
    let mut table = Table::new(limits.table_size);
    let client = ctx.client.unwrap().ip();
    let cases = [
        ("answer", q("www.example.test", Rtype::A)),
        ("nxdomain", q("nope.example.test", Rtype::A)),
        ("nodata", q("www.example.test", Rtype::MX)),
        ("referral", q("x.sub.example.test", Rtype::A)),
        (
            "with a cookie",
            q("www.example.test", Rtype::A).edns(1232).option(10, &[7; 8]),
        ),
    ];
    let mut out = Vec::with_capacity(REPLY_CAPACITY);
    for (name, query) in cases {
        let wire = query.wire();
        let mut scratch = Scratch::new();
        assert!(matches!(
            answer(&ctx, &wire, &mut scratch, &mut out),
            Outcome::Reply { .. }
        ));
        let reply = out.clone();
        reset_allocations();
        COUNTING.with(|c| c.set(true));
        for i in 0..1000u64 {
            let now = 1_000 + i * 1_000_000;
            std::hint::black_box(table.request(&limits, client, &wire, now));
            std::hint::black_box(table.reply(&limits, client, &reply, now));
            out.clear();
            out.extend_from_slice(&reply);
            rrl::slip(&mut out);
            out.clear();
            out.extend_from_slice(&reply);
            rrl::bad_cookie(&mut out);
        }
        COUNTING.with(|c| c.set(false));
        assert_eq!(allocations(), 0, "{name} allocated");
    }
}
