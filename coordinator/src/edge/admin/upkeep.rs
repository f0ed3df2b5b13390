//! Maintenance as operators steer it: repair runs, rebalance, recode, compaction, workers,
//! the shared budget, and the storage figures of the console.

use super::{admin_error, node_id, reply};
use crate::error::ApiError;
use crate::maintenance::repair::RepairRequest;
use crate::state::Coordinator;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;
use tessera_node::worker::WorkerList;

pub(super) async fn rebalance_status(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::maintenance::rebalance::status(&c.upkeep).await)
}

pub(super) async fn rebalance_start(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<crate::maintenance::rebalance::RebalanceRequest>,
) -> Response {
    reply(crate::maintenance::rebalance::start(&c.upkeep, req).await)
}

pub(super) async fn rebalance_cancel(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::maintenance::rebalance::cancel(&c.upkeep).await)
}

pub(super) async fn compact_status(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::maintenance::compact::status(&c.upkeep).await)
}

pub(super) async fn compact_start(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<crate::maintenance::compact::CompactRequest>,
) -> Response {
    reply(crate::maintenance::compact::start(&c.upkeep, req).await)
}

pub(super) async fn recode_status(State(c): State<Arc<Coordinator>>) -> Response {
    reply(
        crate::maintenance::recode::jobs(&c)
            .await
            .map(|jobs| serde_json::json!({ "jobs": jobs })),
    )
}

pub(super) async fn recode_start(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<crate::maintenance::recode::RecodeRequest>,
) -> Response {
    reply(crate::maintenance::recode::start(&c.upkeep, req).await)
}

pub(super) async fn stats(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::edge::console::stats(&c).await)
}

/// `POST /metadata/compact`: flushes this coordinator's metadata engine and compacts its
/// files (space of deleted and replaced records back; what `metadata bytes per object` is
/// measured after).
pub(super) async fn compact_metadata(State(c): State<Arc<Coordinator>>) -> Response {
    reply(c.meta.compact_engine().await)
}

/// `GET /stats/check`: the counters and the index by node recomputed from every record
/// against those kept (a walk of the whole metadata: for checks, not for polling).
pub(super) async fn check_stats(State(c): State<Arc<Coordinator>>) -> Response {
    reply(c.meta.check_derived().await)
}

/// This coordinator's workers, then every up node's (named `NAME@NODE`).
pub(super) async fn workers(State(c): State<Arc<Coordinator>>) -> Json<WorkerList> {
    let mut all = c.workers.views();
    let nodes = c.registry.up_clients();
    let asked = nodes.iter().map(|(id, client)| async move {
        let views = client.workers().await.unwrap_or_default();
        views.into_iter().map(move |mut v| {
            v.name = format!("{}@{id}", v.name);
            v
        })
    });
    for views in futures::future::join_all(asked).await {
        all.extend(views);
    }
    Json(WorkerList {
        workers: all,
        maintenance_rate: c.budget.rate(),
    })
}

pub(super) async fn steer_worker(
    State(c): State<Arc<Coordinator>>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    if let Some((worker, node)) = name.split_once('@') {
        // A node's worker: the node steers it.
        let client = node_id(node)
            .ok()
            .and_then(|n| c.registry.client(&n))
            .ok_or_else(|| ApiError::NoSuchNode(node.to_string()));
        let r = match client {
            Ok(client) => client
                .steer_worker(worker, &action)
                .await
                .map_err(ApiError::from),
            Err(e) => Err(e),
        };
        return reply(r.map(|mut v| {
            v.name = name.clone();
            v
        }));
    }
    let Some(w) = c.workers.get(&name) else {
        return admin_error(ApiError::InvalidArgument(format!(
            "no worker {name:?} on this coordinator (GET /workers lists them)"
        )));
    };
    match action.as_str() {
        "pause" => w.pause(),
        "resume" => w.resume(),
        _ => {
            return admin_error(ApiError::InvalidArgument(format!(
                "unknown action {action:?}: pause or resume"
            )))
        }
    }
    tracing::info!(worker = %name, %action, "worker steered");
    Json(w.view()).into_response()
}

/// `GET /maintenance`: the shared budget.
pub(super) async fn maintenance(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "rate": c.budget.rate() }))
}

pub(super) async fn set_maintenance(
    State(c): State<Arc<Coordinator>>,
    Json(m): Json<tessera_node::worker::BudgetChange>,
) -> Json<serde_json::Value> {
    c.budget.set_rate(m.rate);
    tracing::info!(rate = m.rate, "maintenance budget changed");
    Json(serde_json::json!({ "rate": c.budget.rate() }))
}

/// What `PUT /scrub` answers: the nodes whose scrub budget changed, and the ones that could
/// not be reached (they keep theirs).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ScrubBudgets {
    /// Nodes now scrubbing at the new rate.
    pub set: Vec<String>,
    /// Nodes that did not take it, with the reason.
    pub failed: Vec<String>,
}

/// `PUT /scrub` `{"rate": bytes per second}`: every up node's scrub budget (a node's own
/// `--scrub-rate` at its next start).
pub(super) async fn set_scrub_rate(
    State(c): State<Arc<Coordinator>>,
    Json(b): Json<tessera_node::worker::BudgetChange>,
) -> Json<ScrubBudgets> {
    let nodes = c.registry.up_clients();
    let asked = nodes
        .iter()
        .map(|(id, client)| async move { (id, client.set_scrub_rate(b.rate).await) });
    let mut out = ScrubBudgets::default();
    for (id, r) in futures::future::join_all(asked).await {
        match r {
            Ok(_) => out.set.push(id.to_string()),
            Err(e) => out.failed.push(format!("{id}: {e}")),
        }
    }
    tracing::info!(rate = b.rate, nodes = out.set.len(), "scrub budget changed");
    Json(out)
}

/// `POST /repair`: starts a run, answers `{ "run_id" }`.
pub(super) async fn start_repair(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<RepairRequest>,
) -> Response {
    match crate::maintenance::repair::start_run(&c.upkeep, req).await {
        Ok(id) => Json(serde_json::json!({ "run_id": id })).into_response(),
        Err(e) => admin_error(e),
    }
}

pub(super) async fn repair_report(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<u64>,
) -> Response {
    match c.repair.report(id) {
        Some(r) => Json(r).into_response(),
        None => admin_error(ApiError::InvalidArgument(format!("no repair run {id}"))),
    }
}

pub(super) async fn repair_status(
    State(c): State<Arc<Coordinator>>,
) -> Json<crate::maintenance::repair::RepairStatus> {
    Json(c.repair.status())
}
