//! Sockets and the per-shard serving loops for UDP, TCP, DoT and DoH.

pub mod conns;
pub mod doh;
mod forwarded;
mod handshake;
pub mod mmsg;
mod outbox;
mod report;
pub mod socket;
pub(crate) mod stream;
mod sys;
pub mod tcp;
pub mod udp;
