//! Background and operator-driven upkeep.
//!
//! - [`gc`]: deleting shards nobody references (garbage records, orphan scan).
//! - [`repair`]: finding lost shards and rebuilding them (runs, read-repair, background).
//! - [`rebuild`]: recreating metadata from the shard headers on the nodes.

pub mod gc;
pub mod rebuild;
pub mod repair;
