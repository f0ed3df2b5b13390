//! Tessera: an erasure-coded distributed blob store.
//!
//! This root package holds the `tessera` binary (`src/main.rs`) and what it shares with the
//! integration tests and benchmarks:
//!
//! - [`cluster`]: an in-process cluster (one coordinator, N storage nodes on loopback), used by
//!   `tessera dev`, `tests/` and `benches/`.
//! - [`bench`]: `tessera bench`, the load generator and machine-ceiling measurement.
//! - [`duration`]: human durations (`500ms`, `5s`) for command-line flags.
//! - [`ops`]: `tessera repair` and `tessera status`, clients of the admin API.
//! - [`maintain`]: `tessera node drain|activate|remove`, `tessera rebalance`, `tessera recode`
//!   and `tessera maintenance`, which start jobs in the coordinator and follow them.
//! - [`sign`]: SigV4 signing of `tessera bench`'s requests.
//!
//! The layers live in their own crates: [`tessera_node`] (shard store, node service and its
//! client) and [`tessera_coordinator`] (codec, placement, metadata, client API).

pub mod bench;
pub mod cluster;
pub mod duration;
pub mod maintain;
pub mod ops;
pub mod sign;

pub use tessera_coordinator as coordinator;
pub use tessera_node as node;
