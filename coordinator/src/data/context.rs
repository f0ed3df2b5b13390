//! What the data path works with, and nothing more: the data path's context.
//!
//! Maintenance and the edge hold a [`DataPath`]; the data path holds no handle on them. It
//! reports damage it finds while reading through [`DamageSink`], a trait it defines and the
//! repair service implements, so no import runs upwards.

use crate::config::CoordinatorConfig;
use crate::meta::Metadata;
use crate::metrics::Metrics;
use crate::registry::Registry;
use std::sync::Arc;
use tessera_node::ShardId;

use super::batch::ShardBatcher;
use super::pack::Packer;

/// Where the data path reports a shard that a read found missing or corrupt.
pub trait DamageSink: Send + Sync {
    /// A read found shard `id` of `bucket`/`key` missing (`corrupt == false`) or with bytes
    /// that fail their checksum (`corrupt == true`). Must not block: called on the read path.
    fn report_damage(&self, bucket: &str, key: &str, id: ShardId, corrupt: bool);
    /// A write of `bucket`/`key` was acknowledged with shards missing (nodes down or full):
    /// worth a look once committed, so not at once. Must not block.
    fn report_short(&self, bucket: &str, key: &str);
}

/// The data path's context: configuration, metadata, nodes, the per-node batches, the packer,
/// metrics, and where to report damage.
pub struct DataPath {
    /// Configuration.
    pub config: CoordinatorConfig,
    /// Metadata (every client write and read goes through it).
    pub meta: Arc<dyn Metadata>,
    /// Registered nodes.
    pub registry: Registry,
    /// Per-node batches of small shard writes.
    pub batcher: ShardBatcher,
    /// Open segments of small objects.
    pub packer: Packer,
    /// Wakes the garbage collector early (after deletes, overwrites and aborted writes).
    pub gc_kick: tokio::sync::Notify,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Where reads report missing or corrupt shards.
    pub damage: Arc<dyn DamageSink>,
}

impl DataPath {
    /// A data path over `meta` and `registry`, reporting damage to `damage`.
    pub fn new(
        config: CoordinatorConfig,
        meta: Arc<dyn Metadata>,
        registry: Registry,
        damage: Arc<dyn DamageSink>,
    ) -> Self {
        DataPath {
            config,
            meta,
            registry,
            batcher: Default::default(),
            packer: Default::default(),
            gc_kick: tokio::sync::Notify::new(),
            metrics: Default::default(),
            damage,
        }
    }
}
