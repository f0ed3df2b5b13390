//! Traffic from storage nodes (behind the cluster secret): heartbeats and scrub reports.

use crate::state::Coordinator;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use std::sync::Arc;
use tessera_node::types::Heartbeat;

pub(super) async fn heartbeat(
    State(c): State<Arc<Coordinator>>,
    Json(hb): Json<Heartbeat>,
) -> StatusCode {
    if hb.addr.parse::<std::net::SocketAddr>().is_err() {
        return StatusCode::BAD_REQUEST;
    }
    if c.registry.removed(&hb.node_id) {
        // Removed for good: a node with this id must not take shards again.
        return StatusCode::GONE;
    }
    if let Some(rec) = c.registry.heartbeat(hb) {
        tracing::info!(node = %rec.id, addr = %rec.addr, zone = %rec.zone, "node registered");
        if let Err(e) = c.meta.put_node(rec).await {
            tracing::warn!(error = %e, "could not persist node registration");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    StatusCode::NO_CONTENT
}

pub(super) async fn corrupt(
    State(c): State<Arc<Coordinator>>,
    Json(shards): Json<Vec<tessera_node::ShardHeader>>,
) -> StatusCode {
    tracing::warn!(count = shards.len(), "scrub reported corrupt shards");
    c.repair.report_corrupt(&shards);
    StatusCode::NO_CONTENT
}
