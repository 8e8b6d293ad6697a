//! The forwarding cache: the cost of a hit (lookup and render for the client), and the
//! choice between a cache per shard and one cache shared by all shards.
//!
//! `cache/hit`: `Cache::get` plus `render` into a reused buffer, as a shard does per hit.
//! `cache/shards=N/{per_shard,shared}`: N threads each doing lookups of 10k hot keys, either
//! in a map of their own holding `Rc` values (what ringdns does), or in one map split into
//! 64 mutex-guarded parts holding `Arc` values (a shared sharded cache, as CoreDNS and
//! hickory have). Lookups per second across all threads are what to compare.

use std::collections::HashMap;
use std::hint::black_box;
use std::rc::Rc;
use std::str::FromStr;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use domain::base::MessageBuilder;
use domain::base::Name;
use domain::base::iana::{Class, Rtype};
use domain::rdata::A;
use ringdns::cache::template::{self, Age, Client};
use ringdns::cache::{Cache, Key, Lookup};
use ringdns::config::{CacheBucket, CacheConfig};
use ringdns::forward::scrub;
use ringdns::zone::name::NameKey;

const KEYS: usize = 10_000;
const PARTS: usize = 64;

fn config() -> CacheConfig {
    let bucket = CacheBucket {
        capacity: 100_000,
        max_ttl: Duration::from_secs(3600),
        min_ttl: Duration::from_secs(5),
    };
    CacheConfig {
        zones: vec![],
        success: bucket,
        denial: bucket,
        prefetch: None,
        serve_stale: None,
        servfail: Duration::from_secs(5),
    }
}

/// An upstream reply for `name` A with two addresses.
fn upstream_reply(name: &str) -> Vec<u8> {
    let n = Name::<Vec<u8>>::from_str(name).unwrap();
    let mut b = MessageBuilder::new_vec();
    b.header_mut().set_qr(true);
    b.header_mut().set_ra(true);
    let mut q = b.question();
    q.push((&n, Rtype::A, Class::IN)).unwrap();
    let mut a = q.answer();
    a.push((&n, 300, A::from_octets(192, 0, 2, 1))).unwrap();
    a.push((&n, 300, A::from_octets(192, 0, 2, 2))).unwrap();
    a.finish()
}

fn client_query(name: &str) -> Vec<u8> {
    ringdns::testing::query(name, Rtype::A).edns(1232).wire()
}

fn key(name: &str) -> (NameKey, Key) {
    let n = ringdns::zone::name::parse_abs(name).unwrap();
    let k = NameKey::of(&n);
    (k, Key::new(&k, Rtype::A, false, false))
}

fn hit(c: &mut Criterion) {
    let name = "www.example.test";
    let (nk, k) = key(name);
    let t = scrub::scrub(&upstream_reply(name), &nk, Rtype::A, false, &[0]).unwrap();
    let mut cache = Cache::new(&config());
    let now = Instant::now();
    cache.put(k.as_slice(), t, now);
    let query = client_query(name);
    let client = Client {
        query: &query,
        edns: Some((1232, false)),
        limit: 1232,
        pad: false,
        nsid: None,
        cookie: None,
    };
    let mut out = Vec::with_capacity(65536);
    c.bench_function("cache/hit", |b| {
        b.iter(|| {
            if let Lookup::Fresh {
                template,
                age,
                lifetime,
                ..
            } = cache.get(black_box(k.as_slice()), now)
            {
                template::render(&template, &client, Age::Fresh { age, lifetime }, None, &mut out);
            }
            black_box(out.len())
        })
    });
}

type Shared = Arc<Vec<Mutex<HashMap<Box<[u8]>, Arc<Vec<u8>>, foldhash::fast::RandomState>>>>;

fn keys() -> Vec<Box<[u8]>> {
    (0..KEYS)
        .map(|i| Box::<[u8]>::from(key(&format!("n{i}.example.test")).1.as_slice()))
        .collect()
}

/// Runs `threads` threads doing `per_thread` lookups each; returns the wall time.
fn run(threads: usize, per_thread: u64, shared: Option<&Shared>) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let barrier = barrier.clone();
            let shared = shared.cloned();
            std::thread::spawn(move || {
                let keys = keys();
                let value = upstream_reply("www.example.test");
                let own: HashMap<Box<[u8]>, Rc<Vec<u8>>, foldhash::fast::RandomState> =
                    keys.iter().map(|k| (k.clone(), Rc::new(value.clone()))).collect();
                barrier.wait();
                let mut sum = 0usize;
                for i in 0..per_thread {
                    let k = &keys[(i as usize * 7919 + t * 31) % KEYS];
                    match &shared {
                        None => sum += own.get(k).map_or(0, |v| Rc::clone(v).len()),
                        Some(s) => {
                            let part = &s[part_of(k)];
                            let v = part.lock().unwrap().get(k).cloned();
                            sum += v.map_or(0, |v| v.len());
                        }
                    }
                }
                black_box(sum);
                barrier.wait();
            })
        })
        .collect();
    barrier.wait();
    let t0 = Instant::now();
    barrier.wait();
    let took = t0.elapsed();
    for h in handles {
        h.join().unwrap();
    }
    took
}

/// The part of the shared map holding `k` (FNV-1a of the key).
fn part_of(k: &[u8]) -> usize {
    let h = k.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h % PARTS as u64) as usize
}

fn shared_map() -> Shared {
    let value = upstream_reply("www.example.test");
    let parts: Vec<_> = (0..PARTS).map(|_| Mutex::new(HashMap::default())).collect();
    for k in keys() {
        // A value per key: threads share a reference count only when they share a name.
        parts[part_of(&k)].lock().unwrap().insert(k, Arc::new(value.clone()));
    }
    Arc::new(parts)
}

fn per_shard_vs_shared(c: &mut Criterion) {
    let shared = shared_map();
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("cache/shards={threads}"));
        g.throughput(Throughput::Elements(threads as u64));
        g.bench_function("per_shard", |b| b.iter_custom(|iters| run(threads, iters, None)));
        g.bench_function("shared", |b| b.iter_custom(|iters| run(threads, iters, Some(&shared))));
        g.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = hit, per_shard_vs_shared
}
criterion_main!(benches);
