//! Sockets and the per-shard serving loops for UDP, TCP, DoT and DoH.

pub mod conns;
pub mod ctx;
pub mod doh;
mod handshake;
pub mod limit;
pub mod mmsg;
mod outbox;
mod report;
mod serve;
pub mod shed;
pub mod socket;
mod sys;
pub mod tcp;
pub mod udp;
