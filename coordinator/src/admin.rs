//! Admin API (on `--admin-listen`): node heartbeats and the cluster view.
//!
//! - `POST /nodes/heartbeat`: JSON heartbeat from a storage node (registers it).
//! - `GET /cluster`: JSON `{ "nodes": [...], "default_ec", "objects_in_flight", "garbage" }`.

use crate::server::Coordinator;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tessera_node::types::Heartbeat;

/// The admin router.
pub fn app(c: Arc<Coordinator>) -> Router {
    Router::new()
        .route("/nodes/heartbeat", post(heartbeat))
        .route("/cluster", get(cluster))
        .route("/health", get(|| async { "ok" }))
        .with_state(c)
}

async fn heartbeat(State(c): State<Arc<Coordinator>>, Json(hb): Json<Heartbeat>) -> StatusCode {
    if hb.addr.parse::<std::net::SocketAddr>().is_err() {
        return StatusCode::BAD_REQUEST;
    }
    if let Some(rec) = c.registry.heartbeat(hb) {
        tracing::info!(node = %rec.id, addr = %rec.addr, zone = %rec.zone, "node registered");
        if let Err(e) = c.meta(move |m| m.put_node(&rec)).await {
            tracing::warn!(error = %e, "could not persist node registration");
            return StatusCode::INTERNAL_SERVER_ERROR;
        }
    }
    StatusCode::NO_CONTENT
}

async fn cluster(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    let counts = c
        .meta(|m| m.pending_and_garbage())
        .await
        .unwrap_or_default();
    Json(serde_json::json!({
        "nodes": c.registry.view(),
        "default_ec": c.config.default_ec.to_string(),
        "objects_in_flight": counts.0,
        "garbage": counts.1,
    }))
}
