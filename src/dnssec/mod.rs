//! DNSSEC for the zones ringdns serves: the denial-of-existence proofs of pre-signed zones
//! (NSEC, RFC 4035 §3.1.3; NSEC3, RFC 5155 §7.2) and what a signed zone lacks, found at
//! load. The indexes they read are built with the zone (`zone::nsec`, `zone::nsec3`);
//! nothing here does I/O, and the proofs do not allocate.

pub mod audit;
pub mod cache;
pub mod denial;
pub mod keys;
pub mod offline;
pub mod online;
pub mod sign;
