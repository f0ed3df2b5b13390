//! A node's background workers, each a [`crate::worker::Worker`] stopped by one cancellation
//! token:
//!
//! - [`heartbeat`]: reports the node to every coordinator.
//! - [`scrub`]: re-verifies every stored shard within the node's budget and reports corrupt
//!   ones.
//! - [`reclaim`]: compacts the shard index after deletes so their space comes back.

pub mod heartbeat;
pub mod reclaim;
pub mod scrub;
