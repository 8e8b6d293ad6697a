//! The control side: loading data, building snapshots, reloads and signals.

pub mod acme_dns;
pub mod build;
pub mod catalog;
pub mod data;
pub mod loops;
pub mod notify;
pub mod notify_out;
pub mod run;
pub mod secondary;
pub mod sign;
pub mod update;

pub use run::{DriverChoice, RunError, RunOptions, run};
pub mod check;
pub mod tls;
