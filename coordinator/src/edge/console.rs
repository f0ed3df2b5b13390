//! The web console: one page compiled into the binary (`console.html`, plain HTML and
//! JavaScript, no build step) served at `GET /console` on the admin port, and `GET /stats`,
//! the one figure the rest of the admin API does not give: buckets with object counts and
//! bytes stored against logical bytes, and recent client traffic.
//!
//! The page itself is static and public (it holds nothing); everything it shows comes from
//! the admin API, which it calls with the admin token the operator gives it (kept in the
//! tab's session storage, or passed as `#token=...`, which browsers never send to a server).

use crate::error::ApiError;
use crate::state::Coordinator;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The page.
pub const PAGE: &str = include_str!("console.html");

/// One bucket's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct BucketStats {
    /// Name.
    pub name: String,
    /// Code of new objects.
    pub ec: String,
    /// Objects.
    pub objects: u64,
    /// Bytes clients stored.
    pub logical_bytes: u64,
    /// Bytes their shards take on the nodes.
    pub stored_bytes: u64,
    /// Bytes the same objects would take as full replicas surviving as many lost nodes
    /// (m+1 copies).
    pub replica_bytes: u64,
    /// Noncurrent versions kept by versioning (not counted in `objects`).
    pub noncurrent_objects: u64,
    /// Their bytes (not counted in `logical_bytes`; their shards are in `stored_bytes`).
    pub noncurrent_bytes: u64,
    /// Delete markers.
    pub delete_markers: u64,
}

/// `GET /stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Per bucket, by name.
    pub buckets: Vec<BucketStats>,
    /// All buckets together.
    pub total: BucketStats,
    /// Client traffic, one sample per 5 seconds over the last 10 minutes.
    pub history: Vec<crate::metrics::Sample>,
}

/// Works out [`Stats`] from the metadata (one pass over the objects).
pub async fn stats(c: &Arc<Coordinator>) -> Result<Stats, ApiError> {
    let mut by: BTreeMap<String, BucketStats> = c
        .meta
        .buckets()
        .await?
        .into_iter()
        .map(|b| {
            let s = BucketStats {
                name: b.name.clone(),
                ec: b.ec.to_string(),
                ..Default::default()
            };
            (b.name, s)
        })
        .collect();
    // A walk meets a key's current version first, then its older versions and markers.
    let mut last: Option<(String, String)> = None;
    for o in crate::maintenance::repair::select(c, |_| true).await? {
        let first = last
            .as_ref()
            .is_none_or(|(b, k)| *b != o.bucket || *k != o.key);
        if first {
            last = Some((o.bucket.clone(), o.key.clone()));
        }
        let Some(b) = by.get_mut(&o.bucket) else {
            continue;
        };
        if o.delete_marker {
            b.delete_markers += 1;
            continue;
        }
        if first {
            b.objects += 1;
            b.logical_bytes += o.size;
        } else {
            b.noncurrent_objects += 1;
            b.noncurrent_bytes += o.size;
        }
        for p in o.extents() {
            b.stored_bytes += p.layout().shard_len() * p.shards.len() as u64;
        }
        // A packed object's share of its segment.
        if let Some(p) = &o.packed {
            b.stored_bytes += o.size * p.ec.total() as u64 / p.ec.k as u64;
        }
        let m = o.ec().map_or(0, |ec| ec.m as u64);
        b.replica_bytes += o.size * (m + 1);
    }
    let mut total = BucketStats {
        name: "(all)".into(),
        ..Default::default()
    };
    for b in by.values() {
        total.objects += b.objects;
        total.logical_bytes += b.logical_bytes;
        total.stored_bytes += b.stored_bytes;
        total.replica_bytes += b.replica_bytes;
        total.noncurrent_objects += b.noncurrent_objects;
        total.noncurrent_bytes += b.noncurrent_bytes;
        total.delete_markers += b.delete_markers;
    }
    Ok(Stats {
        buckets: by.into_values().collect(),
        total,
        history: c.metrics.history(),
    })
}

/// Every coordinator (worker `history`): samples client traffic every 5 seconds for the
/// console.
pub async fn sample_history(c: Arc<Coordinator>, stop: tokio_util::sync::CancellationToken) {
    use crate::maintenance::{periodic, worker::Schedule};
    let w = c.workers.get_or_add(
        "history",
        "samples client traffic every 5 s for the console",
    );
    let every = Schedule::every(std::time::Duration::from_secs(5));
    periodic(w, stop, every, || async {
        c.metrics.sample();
        Ok("sampled".into())
    })
    .await;
}
