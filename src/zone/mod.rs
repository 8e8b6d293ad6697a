//! Zone data: names, the zone store and its lookup (RFC 1034 §4.3.2), hosts tables, zone
//! file loading.

pub mod challenge;
pub mod hosts;
pub mod lookup;
pub mod name;
pub mod rrset;
pub mod store;
pub mod zonefile;
