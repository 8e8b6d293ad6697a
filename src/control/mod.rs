//! The control side: loading data, building snapshots, reloads and signals.

pub mod build;
pub mod data;
