//! Garbage collection: deletes shards that no committed object references.
//!
//! Garbage records are written in the same batch as the change that orphaned the shards
//! (overwrite, delete, failed or interrupted PUT), so nothing is leaked by a crash. Records
//! younger than the grace period are left alone, so that a GET that read the old metadata just
//! before an overwrite can still finish, and a slow node's late commit is still caught. A shard
//! on a node that is down stays in the record until the node is back.

use crate::server::Coordinator;
use std::sync::Arc;
use tessera_node::{ShardId, StoreError};
use tokio_util::sync::CancellationToken;

/// Runs collection passes until `stop` is cancelled.
pub async fn run(c: Arc<Coordinator>, stop: CancellationToken) {
    loop {
        if let Err(e) = pass(&c).await {
            tracing::warn!(error = %e, "garbage collection pass failed");
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(c.config.gc_interval) => {}
            _ = c.gc_kick.notified() => {
                // Let the grace period of what was just orphaned run out.
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(c.config.gc_grace.min(c.config.gc_interval)) => {}
                }
            }
        }
    }
}

/// One pass over the garbage records; returns how many records were finished.
pub async fn pass(c: &Arc<Coordinator>) -> Result<usize, crate::ApiError> {
    let records = c.meta(|m| m.garbage(1000)).await?;
    let now = crate::meta::now_ms();
    let grace = c.config.gc_grace.as_millis() as u64;
    let mut finished = 0;
    for (record, version, mut set) in records {
        if now.saturating_sub(set.since_ms) < grace {
            continue;
        }
        // Never delete a shard the committed object references (a repair may have written
        // the same shard id to the same node again).
        let (b, k) = (set.bucket.clone(), set.key.clone());
        if let Some(obj) = c.meta(move |m| m.object(&b, &k)).await? {
            if obj.version == version {
                set.shards.retain(|(i, n)| {
                    obj.shards.get(*i as usize).and_then(|l| l.node.as_ref()) != Some(n)
                });
            }
        }
        let before = set.shards.len();
        let mut remaining = Vec::new();
        let deletes = set.shards.iter().map(|(index, node)| {
            let client = c.registry.client(node).filter(|_| c.registry.up(node));
            let id = ShardId { version, index: *index };
            async move {
                match client {
                    Some(cl) => match cl.delete(id).await {
                        Ok(()) | Err(StoreError::NotFound(_)) => true,
                        Err(e) => {
                            tracing::debug!(shard = %id, error = %e, "shard delete failed; will retry");
                            false
                        }
                    },
                    None => false,
                }
            }
        });
        let done = futures::future::join_all(deletes).await;
        for (entry, ok) in set.shards.drain(..).zip(done) {
            if !ok {
                remaining.push(entry);
            }
        }
        if remaining.len() == before && before > 0 {
            continue;
        }
        set.shards = remaining;
        let empty = set.shards.is_empty();
        c.meta(move |m| m.update_garbage(&record, Some(&set)))
            .await?;
        if empty {
            finished += 1;
        }
    }
    Ok(finished)
}
