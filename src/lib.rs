//! Tessera: an erasure-coded distributed blob store.
//!
//! This root package holds the `tessera` binary (`src/main.rs`, its commands in `src/cli/`, one
//! file each) and what it shares with the integration tests and benchmarks:
//!
//! - [`local`]: an in-process cluster (one coordinator, N storage nodes on loopback), used by
//!   `tessera dev`, `tests/` and `benches/`.
//! - [`bench`]: `tessera bench`, the load generator and machine-ceiling measurement.
//! - [`sign`]: SigV4 signing of `tessera bench`'s requests.
//!
//! The layers live in their own crates: [`tessera_node`] (shard store, node service and its
//! client) and [`tessera_coordinator`] (codec, placement, metadata, client API).

pub mod bench;
pub mod local;
pub mod sign;

pub use tessera_coordinator as coordinator;
pub use tessera_node as node;
