//! The web console: one page compiled into the binary (`console.html`, plain HTML and
//! JavaScript, no build step) served at `GET /console` on the admin port, and `GET /stats`,
//! the one figure the rest of the admin API does not give: buckets with object counts and
//! bytes stored against logical bytes, and recent client traffic.
//!
//! The page itself is static and public (it holds nothing); everything it shows comes from
//! the admin API, which it calls with the admin token the operator gives it (kept in the
//! tab's session storage, or passed as `#token=...`, which browsers never send to a server).

use crate::error::ApiError;
use crate::meta::counters::{BucketCounts, RecordCounts, SegmentCounts};
use crate::state::Coordinator;
use serde::Serialize;
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
    /// What it holds (objects, logical, stored and replica-equivalent bytes, noncurrent
    /// versions, delete markers).
    #[serde(flatten)]
    pub counts: BucketCounts,
}

/// `GET /stats`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Stats {
    /// Per bucket, by name.
    pub buckets: Vec<BucketStats>,
    /// All buckets together.
    pub total: BucketStats,
    /// Segments of packed objects.
    pub segments: SegmentCounts,
    /// In-flight writes and garbage waiting for collection.
    pub records: RecordCounts,
    /// Client traffic, one sample per 5 seconds over the last 10 minutes.
    pub history: Vec<crate::metrics::Sample>,
}

/// Works out [`Stats`] from the counters kept on commit: O(buckets), whatever the store
/// holds.
pub async fn stats(c: &Arc<Coordinator>) -> Result<Stats, ApiError> {
    let mut counted = c.meta.counters().await?;
    let mut total = BucketStats {
        name: "(all)".into(),
        ..Default::default()
    };
    let buckets = c
        .meta
        .buckets()
        .await?
        .into_iter()
        .map(|b| {
            let counts = counted.buckets.remove(&b.name).unwrap_or_default();
            total.counts.add(&counts);
            BucketStats {
                name: b.name,
                ec: b.ec.to_string(),
                counts,
            }
        })
        .collect();
    Ok(Stats {
        buckets,
        total,
        segments: counted.segments,
        records: counted.records,
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
