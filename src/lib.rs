//! ringdns: a DNS edge server.
//!
//! Data flow (the README's Architecture section has more):
//!
//! ```text
//! Corefile ─► config::load ─► control::build makes a Snapshot (routing + zone data)
//!          ─► shard::launch: one pinned monoio thread per core, each with its own
//!             SO_REUSEPORT UDP socket and TCP listener per bound address
//!   net::udp       recvmmsg batch → net::serve::query each → sendmmsg (no allocation)
//!   net::tcp       2-byte framing, pipelining, timeouts (net::conns) → net::serve::query
//!   net::doh       TLS (net::handshake), HTTP/2 or HTTP/1.1 → net::serve::query
//!   net::serve     dns::answer(ctx, query, scratch, out): the reply, or Forward(plan, request)
//!                  → forward: cache hit inline, else a task asks the upstreams
//! control thread: reloads (Corefile, zone files, hosts), ACME, SIGHUP, shutdown;
//! publishes new snapshots with ArcSwap, never touching a shard socket.
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod cache;
pub mod config;
pub mod control;
pub mod dns;
pub mod dnssec;
pub mod forward;
pub mod fuzzing;
pub mod meter;
pub mod net;
pub mod shard;
pub mod storage;
pub(crate) mod stream;
pub mod telemetry;
pub mod testing;
pub mod tls;
pub mod update;
pub mod zone;
