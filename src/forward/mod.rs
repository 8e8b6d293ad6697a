//! Forwarding to upstream resolvers, per shard.

pub mod rng;
pub mod template;
