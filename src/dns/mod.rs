//! The query path: request parsing, EDNS, routing to a server block, resolution and reply
//! building. Synchronous and free of I/O, so it can be tested, fuzzed and benchmarked
//! without sockets.

pub mod answer;
pub mod axfr;
pub mod balance;
pub mod cookie;
pub mod dns64;
pub mod local;
pub mod pipeline;
pub mod plan;
pub mod reply;
pub mod request;
pub mod resolve;
pub mod rewrite;
pub mod rng;
pub mod rrl;
pub mod template;
pub mod tsig;
pub mod update;
pub mod wire;

pub use answer::{Ctx, Forwarding, Outcome, Scratch, answer};

/// The wall clock in seconds since the epoch (0 before it): what signature validity and
/// cookie timestamps count in. A vDSO read, no system call.
pub fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
