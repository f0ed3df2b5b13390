//! Tessera storage node.
//!
//! A storage node keeps shards: the per-node pieces of erasure-coded objects. This crate is
//! the lowest layer of Tessera and the only one that touches RocksDB for shard data.
//!
//! - [`types`]: identifiers and the self-describing shard header.
//! - [`store`]: the [`ShardStore`] contract, an in-memory implementation and the RocksDB one,
//!   and the WAL group commit ([`store::WalSync`]) the coordinator's metadata uses too.
//! - [`conformance`]: the one test suite every `ShardStore` implementation must pass.
//! - [`node`]: a node process: configuration, identity, [`node::serve`].
//! - [`state`]: what every part of a running node shares ([`state::NodeState`]).
//! - [`http`]: the node's HTTP service (`app`, `run`): shard routes, metrics, workers.
//! - [`maintenance`]: the background workers: heartbeats, scrub, reclaim.
//! - [`client`]: the typed HTTP client the coordinator uses to talk to a node.
//! - [`raw`]: raw reads (the node sends stored chunks with `sendfile`, the reader verifies).
//! - [`auth`]: the cluster secret every internal request carries.
//! - [`tls`]: TLS for listeners and clients (rustls): certificates read again when they
//!   change, trust with revocation, roles of cluster certificates, a CA kept in files.
//! - [`listen`]: the one connection loop (plain or TLS) of every Tessera listener.
//! - [`metrics`]: the node's Prometheus metrics; [`trace`]: client request ids on node
//!   requests.
//! - [`worker`]: the one shape of background loops (here and in the coordinator) and the
//!   byte budget they spend from.

pub mod auth;
pub mod client;
pub mod conformance;
pub mod error;
pub mod frame;
pub mod http;
pub mod listen;
pub mod maintenance;
pub mod metrics;
pub mod node;
pub mod raw;
pub mod state;
pub mod store;
pub mod tls;
pub mod trace;
pub mod types;
pub mod worker;

pub use client::NodeClient;
pub use error::StoreError;
pub use store::{MemoryShardStore, RocksShardStore, ShardStore, ShardWriter};
pub use types::{NodeId, ObjectVersion, ShardHeader, ShardId, ShardInfo, ShardRole};
