//! Background and operator-driven upkeep.
//!
//! - [`gc`]: deleting shards nobody references (garbage records, orphan scan).
//! - [`repair`]: finding lost shards and rebuilding them (runs, read-repair, background).
//! - [`rebuild`]: recreating metadata from the shard headers on the nodes.
//! - [`lifecycle`]: draining and removing nodes.
//! - [`recode`]: changing the erasure code of stored objects.
//! - [`rebalance`]: moving shards from fuller to emptier nodes.
//! - [`worker`]: the shape every background loop shares, and the shared byte budget.

pub mod gc;
pub mod lifecycle;
pub mod rebalance;
pub mod rebuild;
pub mod recode;
pub mod repair;
pub mod worker;
