//! Admin API (on `--admin-listen`): node heartbeats and the cluster view.
//!
//! - `POST /nodes/heartbeat`: JSON heartbeat from a storage node (registers it).
//! - `GET /cluster`: JSON `{ "nodes": [...], "default_ec", "objects_in_flight", "garbage" }`.
//! - `POST /nodes/corrupt`: JSON list of shard headers a node's scrub found corrupt.
//! - `POST /repair`: JSON [`RepairRequest`]; starts a run, answers `{ "run_id" }`.
//! - `GET /repair/{id}`: JSON [`RepairReport`](crate::repair::RepairReport) of a run.
//! - `GET /repair`: repair queue, suspects, background totals, latest run.

use crate::repair::RepairRequest;
use crate::server::Coordinator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
        .route("/nodes/corrupt", post(corrupt))
        .route("/repair", post(start_repair).get(repair_status))
        .route("/repair/{id}", get(repair_report))
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
        "rebuild": *c.rebuild.lock().unwrap(),
    }))
}

/// Admin errors: JSON `{ "error": message }` with the status the client API would use.
fn admin_error(e: crate::ApiError) -> Response {
    let (status, code) = e.status_and_code();
    (
        status,
        Json(serde_json::json!({ "error": e.to_string(), "code": code })),
    )
        .into_response()
}

async fn corrupt(
    State(c): State<Arc<Coordinator>>,
    Json(shards): Json<Vec<tessera_node::ShardHeader>>,
) -> StatusCode {
    tracing::warn!(count = shards.len(), "scrub reported corrupt shards");
    c.repair.report_corrupt(&shards);
    StatusCode::NO_CONTENT
}

async fn start_repair(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<RepairRequest>,
) -> Response {
    match crate::repair::start_run(&c, req).await {
        Ok(id) => Json(serde_json::json!({ "run_id": id })).into_response(),
        Err(e) => admin_error(e),
    }
}

async fn repair_report(State(c): State<Arc<Coordinator>>, Path(id): Path<u64>) -> Response {
    match c.repair.report(id) {
        Some(r) => Json(r).into_response(),
        None => admin_error(crate::ApiError::InvalidArgument(format!(
            "no repair run {id}"
        ))),
    }
}

async fn repair_status(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    Json(c.repair.status())
}
