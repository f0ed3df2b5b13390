//! Garbage collection: deletes shards that no committed object references.
//!
//! Garbage records are written in the same batch as the change that orphaned the shards
//! (overwrite, delete, failed or interrupted PUT), so nothing is leaked by a crash. Records
//! younger than the grace period are left alone, so that a GET that read the old metadata just
//! before an overwrite can still finish, and a slow node's late commit is still caught. A shard
//! on a node that is down stays in the record until the node is back.

use super::periodic;
use super::worker::Schedule;
use super::Maintenance;
use std::sync::Arc;
use tessera_node::{ShardId, ShardRole, StoreError};
use tokio_util::sync::CancellationToken;

/// Runs the collector's three workers until `stop` is cancelled: `gc` (garbage records,
/// woken early by deletes and overwrites), `orphan-scan` and `multipart-expiry`.
pub async fn run(c: Arc<Maintenance>, stop: CancellationToken) {
    let gc = c.workers.get_or_add(
        "gc",
        "deletes shards of deleted, replaced and failed versions once their grace has passed",
    );
    let orphans = c.workers.get_or_add(
        "orphan-scan",
        "deletes shards on the nodes that no metadata names",
    );
    let expiry = c.workers.get_or_add(
        "multipart-expiry",
        "aborts multipart uploads older than --multipart-expiry",
    );
    // Expiry scans every upload record: a tenth of the expiry (at most a minute) between
    // scans keeps an upload's lifetime within 10% of the setting without scanning every pass.
    let expiry_every = (c.config.multipart_expiry / 10).min(std::time::Duration::from_secs(60));
    let garbage = Schedule {
        first_after: std::time::Duration::ZERO,
        every: c.config.gc_interval,
        kick: Some(&c.gc_kick),
        // Let the grace period of what was just orphaned run out.
        settle: c.config.gc_grace.min(c.config.gc_interval),
    };
    tokio::join!(
        periodic(gc.clone(), stop.clone(), garbage, || async {
            gc.begin("garbage records", 0);
            pass(&c).await.map(|n| format!("{n} records finished"))
        }),
        periodic(
            orphans.clone(),
            stop.clone(),
            // The first scan after one interval, not at start: a coordinator just started
            // (perhaps to rebuild lost metadata) must not judge shards by what it knows yet.
            Schedule {
                first_after: c.config.orphan_scan_interval,
                ..Schedule::every(c.config.orphan_scan_interval)
            },
            || async {
                orphans.begin("shards on every node", 0);
                let n = orphan_scan(&c).await?;
                if n > 0 {
                    tracing::info!(deleted = n, "orphan scan removed unreferenced shards");
                }
                Ok(format!("{n} unreferenced shards deleted"))
            }
        ),
        periodic(
            expiry.clone(),
            stop.clone(),
            Schedule::every(expiry_every),
            || async {
                expiry.begin("uploads past their expiry", 0);
                let n = expire_uploads(&c).await?;
                if n > 0 {
                    tracing::info!(aborted = n, "expired multipart uploads aborted");
                }
                Ok(format!("{n} uploads aborted"))
            }
        ),
    );
}

/// Aborts multipart uploads created longer than `multipart_expiry` ago (their parts become
/// garbage); returns how many.
pub async fn expire_uploads(c: &Arc<Maintenance>) -> Result<usize, crate::error::ApiError> {
    let cutoff = crate::meta::now_ms().saturating_sub(c.config.multipart_expiry.as_millis() as u64);
    let expired = c.meta.uploads_older_than(cutoff, 1000).await?;
    let n = expired.len();
    for u in expired {
        match c.maint().abort_upload(u.bucket, u.key, u.id).await {
            Ok(()) | Err(crate::meta::MetaError::NoSuchUpload(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // Completions are remembered as long (for retried CompleteMultipartUpload requests).
    c.maint().expire_completed(cutoff).await?;
    Ok(n)
}

/// One pass over the garbage records; returns how many records were finished.
pub async fn pass(c: &Arc<Maintenance>) -> Result<usize, crate::error::ApiError> {
    let records = c.meta.garbage(1000).await?;
    let now = crate::meta::now_ms();
    let grace = c.config.gc_grace.as_millis() as u64;
    let mut finished = 0;
    for (record, version, mut set) in records {
        if now.saturating_sub(set.since_ms) < grace {
            continue;
        }
        // Never delete a shard a committed version references (a repair may have written
        // the same shard id to the same node again).
        let (b, k) = (set.bucket.clone(), set.key.clone());
        if let Some(obj) = c.meta.version_holding(b, k, version).await? {
            set.shards
                .retain(|(i, n)| !obj.references(version, *i as usize, n));
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
        c.metrics
            .collected_shards
            .inc_by(done.iter().filter(|ok| **ok).count() as u64);
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
        c.maint().update_garbage(record, Some(set)).await?;
        if empty {
            finished += 1;
        }
    }
    Ok(finished)
}

/// Deletes shards on up nodes that no committed object references, that belong to no write in
/// flight, and whose version is older than the grace period (so a write that has just begun is
/// never touched). This catches what no garbage record names: shards of a write whose
/// in-flight record a crash lost, leftovers on nodes that were away. Returns how many shards
/// were deleted.
pub async fn orphan_scan(c: &Arc<Maintenance>) -> Result<usize, crate::error::ApiError> {
    // While the metadata is being rebuilt from the nodes, every shard looks unreferenced.
    if c.rebuilding() {
        return Ok(0);
    }
    let grace = c.config.gc_grace.as_millis() as u64;
    let pending = c.meta.pending_versions().await?;
    let mut deleted = 0;
    for node in c.registry.candidates() {
        let Some(client) = c.registry.client(&node.id) else {
            continue;
        };
        let mut pages = client.pages(1000);
        while let Some(page) = pages.next().await? {
            for info in page {
                let h = info.header;
                let now = crate::meta::now_ms();
                if pending.contains(&h.version) || now.saturating_sub(h.version.millis()) < grace {
                    continue;
                }
                // In-flight first, then the object: a PUT commits by removing its in-flight
                // record and writing the object in one batch, so in this order one of the two
                // reads sees it.
                let keep = still_wanted(c, &h, &node.id).await?;
                if !keep {
                    match client.delete(h.shard_id()).await {
                        Ok(()) => {
                            deleted += 1;
                            c.metrics.collected_shards.inc();
                        }
                        Err(e) => {
                            tracing::debug!(shard = %h.shard_id(), error = %e, "orphan delete failed")
                        }
                    }
                }
            }
        }
    }
    Ok(deleted)
}

/// Whether shard `h` on `node` belongs to a write in flight, a part of an upload in progress
/// or the committed object (asked in that order, see [`orphan_scan`]).
async fn still_wanted(
    c: &Maintenance,
    h: &tessera_node::ShardHeader,
    node: &tessera_node::NodeId,
) -> Result<bool, crate::error::ApiError> {
    let (v, i) = (h.version, h.shard_index as usize);
    if c.meta.pending_versions().await?.contains(&v) {
        return Ok(true);
    }
    if let ShardRole::Part { upload, .. } = h.role {
        if c.meta.upload_references(upload, v, i, node.clone()).await? {
            return Ok(true);
        }
    }
    Ok(c.meta
        .version_holding(h.bucket.clone(), h.key.clone(), v)
        .await?
        .is_some_and(|o| o.references(v, i, node)))
}
