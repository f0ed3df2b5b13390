//! Background and operator-driven upkeep. Every service takes the [`Maintenance`] context,
//! which holds the data path; nothing below this module imports it.
//!
//! - [`context`]: the maintenance context.
//! - [`gc`]: deleting shards nobody references (garbage records, orphan scan).
//! - [`compact`]: rewriting segments of small objects that are mostly dead space.
//! - [`repair`]: finding lost shards and rebuilding them (runs, read-repair, background).
//! - [`journal`]: writing the version journal to the nodes (for a rebuild of versions).
//! - [`rebuild`]: recreating metadata from the shard headers on the nodes.
//! - [`retire`]: draining and removing nodes.
//! - [`lifecycle`]: S3 lifecycle rules: expiring objects, versions, delete markers and uploads.
//! - [`recode`]: changing the erasure code of stored objects.
//! - [`rebalance`]: moving shards from fuller to emptier nodes.
//! - [`watermark`]: moving shards off nodes above the high watermark.
//! - [`worker`]: the shape every background loop shares, and the shared byte budget.

pub mod compact;
pub mod context;
pub mod gc;
pub mod journal;
pub mod lifecycle;
pub mod rebalance;
pub mod rebuild;
pub mod recode;
pub mod repair;
pub mod retire;
pub mod watermark;
pub use context::Maintenance;
pub use tessera_node::worker;

/// [`worker::periodic`] for passes that fail with an [`crate::error::ApiError`].
pub async fn periodic<F, Fut>(
    w: std::sync::Arc<worker::Worker>,
    stop: tokio_util::sync::CancellationToken,
    schedule: worker::Schedule<'_>,
    pass: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, crate::error::ApiError>>,
{
    worker::periodic(w, stop, schedule, pass).await
}
