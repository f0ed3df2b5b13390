//! Giving back the space of deleted small shards.
//!
//! Small shards live inside RocksDB (chunks in its tables and blob files), where a delete
//! only writes a tombstone: the bytes stay on disk until a compaction drops them, and blob
//! files are only collected when they are among the oldest. Where objects are mostly small
//! (packed segments, replicas), deletes and compaction of segments would then give nothing
//! back to the filesystem. The node's `reclaim` worker looks every interval at how many bytes
//! of small shards were deleted since it last ran and, past a threshold, runs
//! [`crate::store::ShardStore::reclaim`] on a blocking thread.

use crate::state::NodeState;
use crate::worker::{periodic, Schedule};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Least deleted bytes worth a compaction.
const AT_LEAST: u64 = 1 << 20;

/// Whether `deleted` bytes of deleted small shards are worth a compaction, with `used` bytes
/// in use: at least [`AT_LEAST`], and either 64 MiB or a tenth of what is in use.
pub fn due(deleted: u64, used: u64) -> bool {
    deleted >= AT_LEAST && (deleted >= 64 << 20 || deleted.saturating_mul(10) >= used)
}

/// Worker `reclaim`: runs until `stop`.
pub async fn run(state: NodeState, every: Duration, stop: CancellationToken) {
    let w = state.workers.get_or_add(
        "reclaim",
        "compacts the shard index after deletes so their space returns to the filesystem",
    );
    periodic(w, stop, Schedule::every(every), || async {
        let store = state.store.clone();
        let (deleted, used) = (store.reclaimable(), store.used_bytes());
        if !due(deleted, used) {
            return Ok(format!(
                "{deleted} bytes of deleted small shards: not yet worth it"
            ));
        }
        let n = tokio::task::spawn_blocking(move || store.reclaim())
            .await
            .map_err(|e| crate::error::StoreError::Unavailable(e.to_string()))??;
        tracing::info!(bytes = n, "reclaimed the space of deleted small shards");
        Ok::<_, crate::error::StoreError>(format!("reclaimed {n} bytes of deleted small shards"))
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn threshold() {
        assert!(!super::due(0, 0));
        assert!(!super::due(512 << 10, 0), "below the floor");
        assert!(super::due(2 << 20, 10 << 20), "a fifth of what is used");
        assert!(!super::due(2 << 20, 1 << 30), "a sliver of a large store");
        assert!(super::due(64 << 20, 1 << 40), "64 MiB whatever the size");
    }
}
