//! The state every part of a running node shares: its store, identity, space, scrub figures,
//! secret, metrics, workers and the byte budget its background work spends from. The HTTP
//! service, raw reads and the background workers all take it; it knows none of them.

use crate::store::ShardStore;
use crate::types::{Heartbeat, NodeId, ScrubStats};
use crate::worker::{Budget, Workers};
use std::sync::Arc;

/// Shared state of one node's service.
#[derive(Clone)]
pub struct NodeState {
    /// The shard store.
    pub store: Arc<dyn ShardStore>,
    /// This node's id.
    pub node_id: NodeId,
    /// Zone reported in heartbeats.
    pub zone: String,
    /// Capacity limit in bytes (0 = whole filesystem).
    pub capacity: u64,
    /// Bytes of the filesystem kept free for the store's own needs (its index, write-ahead
    /// log and compactions): shard writes are refused before the disk is full
    /// ([`NodeState::heartbeat`]'s `free` is what is left above it).
    pub reserve: u64,
    /// Directory whose filesystem holds the shards (for free-space reports).
    pub data_dir: std::path::PathBuf,
    /// Scrub progress.
    pub scrub: Arc<std::sync::Mutex<ScrubStats>>,
    /// The cluster secret: every request must carry it, and the node presents it to the
    /// coordinator.
    pub secret: Arc<str>,
    /// This node's metrics.
    pub metrics: Arc<crate::metrics::NodeMetrics>,
    /// Background loops (scrub, heartbeats), for listing and steering.
    pub workers: Arc<Workers>,
    /// The bytes-per-second budget background verification spends from (`--scrub-rate`,
    /// changeable at run time through `PUT /maintenance`).
    pub budget: Arc<Budget>,
    /// What the node's clients trust on `https://` coordinator URLs.
    pub client_tls: crate::tls::ClientTls,
}

impl NodeState {
    /// Current heartbeat contents (addr filled in by the caller).
    pub fn heartbeat(&self, addr: String) -> Heartbeat {
        let used = self.store.used_bytes();
        let (log_writes, log_syncs) = self.store.log_counts();
        let fs_free = fs_free_bytes(&self.data_dir)
            .unwrap_or(u64::MAX)
            .saturating_sub(self.reserve);
        let free = if self.capacity > 0 {
            self.capacity.saturating_sub(used).min(fs_free)
        } else {
            fs_free
        };
        Heartbeat {
            node_id: self.node_id.clone(),
            addr,
            zone: self.zone.clone(),
            capacity: self.capacity,
            used,
            free,
            scrub: self.scrub.lock().unwrap().clone(),
            log_writes,
            log_syncs,
            clock_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            stopping: false,
        }
    }
}

/// The reserve a node keeps when none is configured: 1% of the filesystem holding `dir`, at
/// most 1 GiB.
pub fn default_reserve(dir: &std::path::Path) -> u64 {
    rustix::fs::statvfs(dir).map_or(0, |s| {
        (s.f_blocks.saturating_mul(s.f_frsize) / 100).min(1 << 30)
    })
}

/// Bytes available to unprivileged writers on the filesystem holding `dir`.
pub fn fs_free_bytes(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// The coordinator admin URLs in a comma-separated list.
pub fn coordinators(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|u| !u.is_empty())
}
