//! ringdns: a DNS edge server.
//!
//! Data flow (see `DESIGN.md` in the shared folder and the README):
//!
//! ```text
//! Corefile ─► config::load ─► control::Loader builds a Snapshot (routing + zone data)
//!          ─► shard::launch: one pinned monoio thread per core, each with its own
//!             SO_REUSEPORT UDP socket and TCP listener per bound address
//!   net::udp  recvmmsg batch → dns::answer(ctx, query, out) each → sendmmsg (no allocation)
//!   net::tcp  2-byte framing, pipelining, timeouts → dns::answer
//! control thread: reloads (Corefile, zone files, hosts), SIGHUP, shutdown; publishes
//! new snapshots with ArcSwap, never touching a shard socket.
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod acme;
pub mod cache;
pub mod config;
pub mod control;
pub mod dns;
pub mod forward;
pub mod fuzzing;
pub mod net;
pub mod shard;
pub mod storage;
pub mod telemetry;
pub mod testing;
pub mod tls;
pub mod zone;
