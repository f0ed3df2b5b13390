//! Tessera coordinator.
//!
//! Turns client HTTP byte streams into erasure-coded shards on storage nodes and back.
//!
//! - [`codec`]: the erasure codec (the only module that knows the Reed-Solomon library; GFNI
//!   kernel in `codec::kernel`).
//! - [`layout`]: stripe geometry of an object.
//! - [`names`]: validated bucket names, keys, `k+m` specs and sizes.
//! - [`placement`]: which nodes get an object's shards.
//! - [`meta`]: metadata in RocksDB (buckets, objects, nodes, in-flight writes, garbage).
//! - [`registry`]: registered nodes, heartbeats, up/down.
//! - [`rebuild`]: recreating metadata from the shard headers on the nodes.
//! - [`put`] and [`get`]: the streaming data paths; [`batch`]: small shard writes batched per
//!   node.
//! - [`gc`]: background deletion of shards nobody references.
//! - [`repair`]: finding lost shards and rebuilding them (operator runs, read-repair, background).
//! - [`api`] (client S3-style API), [`admin`] (node heartbeats, `GET /cluster`).
//! - [`error`]: the client error type and its one mapping to S3 responses.
//! - [`server`]: configuration, shared state and `run(listeners, config, shutdown)`.

pub mod admin;
pub mod api;
pub mod batch;
pub mod codec;
pub mod error;
pub mod gc;
pub mod get;
pub mod layout;
pub mod meta;
pub mod names;
pub mod placement;
pub mod put;
pub mod rebuild;
pub mod registry;
pub mod repair;
pub mod server;
pub mod xml;

pub use codec::ErasureCodec;
pub use error::ApiError;
pub use names::EcSpec;
pub use server::{run, Coordinator, CoordinatorConfig};
