//! Tessera coordinator.
//!
//! Turns client byte streams into erasure-coded shards on storage nodes and back.
//!
//! - [`edge`]: what clients and operators talk to: the S3 API (on the `s3s` library), access
//!   keys and permissions, the admin API, and the one mapping of errors to HTTP.
//! - [`data`]: the streaming data paths: PUT ([`data::put`]), GET ([`data::get`]), small
//!   shard writes batched per node ([`data::batch`]).
//! - [`maintenance`]: garbage collection, repair, metadata rebuild.
//! - [`meta`]: metadata (buckets, keys, objects, nodes, in-flight writes, garbage) behind
//!   the [`meta::Metadata`] trait: one local RocksDB, or [`cluster`]: replicated across
//!   coordinators by a Raft log.
//! - [`metrics`]: Prometheus metrics (counters recorded where things happen, state gauges
//!   read when scraped).
//! - [`registry`] (registered nodes, heartbeats, up/down) and [`placement`] (which nodes get
//!   which shards).
//! - [`codec`] (the erasure codec, the only module that knows the Reed-Solomon library),
//!   [`layout`] (stripe geometry), [`names`] (validated names, `k+m`, sizes).
//! - [`state`]: configuration and the shared state; [`secrets`]: admin token and cluster
//!   secret; [`server`]: `run(listeners, config, shutdown)`.
//! - [`error`]: the coordinator's error type.

pub mod cluster;
pub mod codec;
pub mod config;
pub mod data;
pub mod edge;
pub mod error;
pub mod layout;
pub mod maintenance;
pub mod meta;
pub mod metrics;
pub mod names;
pub mod placement;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod state;

pub use codec::ErasureCodec;
pub use error::ApiError;
pub use maintenance::{gc, rebuild, repair};
pub use names::EcSpec;
pub use secrets::Secrets;
pub use server::run;
pub use state::{Coordinator, CoordinatorConfig};
