//! Changes to zones from outside: RFC 2136 dynamic updates (the protocol of ACME clients'
//! `rfc2136` providers and of `nsupdate`) and the log that keeps them across restarts.
//! No I/O here: the control thread applies and stores (`control::update`).

pub mod acme_dns;
pub mod log;
pub mod rfc2136;
