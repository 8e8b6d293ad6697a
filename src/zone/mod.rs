//! Zone data: names, the zone store and its lookup (RFC 1034 §4.3.2), hosts tables, zone
//! file loading, incoming transfers and the refresh schedule of secondary zones.

pub mod catalog;
pub mod challenge;
pub mod diff;
pub mod hosts;
pub mod lookup;
pub mod name;
pub mod nsec;
pub mod nsec3;
pub mod refresh;
pub mod rrset;
pub mod store;
pub mod transfer;
pub mod zonefile;
