//! The cluster as operators see and change it: the overview, readiness, metrics, node
//! lifecycle (drain, activate, remove) and the coordinators of a replicated group.

use super::{admin_error, node_id, reply};
use crate::cluster::start::RaftStatus;
use crate::error::ApiError;
use crate::maintenance::rebuild::RebuildReport;
use crate::registry::NodeView;
use crate::state::Coordinator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) async fn metrics(State(c): State<Arc<Coordinator>>) -> Response {
    let text = crate::edge::observe::render_metrics(&c).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        text,
    )
        .into_response()
}

/// Ready: the default code's write quorum of nodes is up, `k+m` nodes are registered, and a
/// replicated group has a leader.
pub(super) async fn ready(State(c): State<Arc<Coordinator>>) -> Response {
    let ec = c.config.default_ec;
    let needed = c.config.quorum(ec);
    let view = nodes_view(&c);
    let up = view.iter().filter(|n| n.up).count();
    let mut why = Vec::new();
    // Still ready (writes are acknowledged at the quorum), but say what is wrong.
    let mut warnings: Vec<String> = view
        .iter()
        .filter(|n| n.full)
        .map(|n| format!("node {} is full: {} bytes free", n.id, n.free))
        .collect();
    if let Some(ago) = c.metrics.last_short_write() {
        if ago < std::time::Duration::from_secs(300) {
            warnings.push(format!(
                "writes are acknowledged with fewer shards than asked (degraded until repaired; the last {}s ago, {} so far): nodes down or full",
                ago.as_secs(),
                c.metrics.writes_short.get()
            ));
        }
    }
    if view.len() < ec.total() {
        why.push(format!(
            "{} nodes registered, {ec} needs {}",
            view.len(),
            ec.total()
        ));
    }
    if up < needed {
        why.push(format!("{up} nodes up, a {ec} write needs {needed}"));
    }
    if let Some(cl) = &c.cluster {
        if cl.leader().is_none() {
            why.push("the coordinator group has no leader".into());
        }
    }
    let status = if why.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(serde_json::json!({
            "ready": why.is_empty(),
            "nodes_up": up,
            "nodes_registered": view.len(),
            "write_quorum": needed,
            "default_ec": ec.to_string(),
            "reasons": why,
            "warnings": warnings,
        })),
    )
        .into_response()
}

/// What `GET /cluster` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClusterOverview {
    /// Every registered node.
    pub nodes: Vec<NodeView>,
    /// The code of buckets created without `x-tessera-ec`.
    pub default_ec: String,
    /// Writes in flight.
    pub objects_in_flight: u64,
    /// Garbage records waiting for collection.
    pub garbage: u64,
    /// The startup metadata rebuild, if one was asked for.
    pub rebuild: Option<RebuildReport>,
    /// The replicated group, if this coordinator is a member of one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raft: Option<RaftStatus>,
    /// Writes in flight per coordinator of the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_by_coordinator: Option<BTreeMap<u64, usize>>,
}

/// Every node as `/cluster` shows it, the full ones (below `--min-free`) marked.
fn nodes_view(c: &Coordinator) -> Vec<crate::registry::NodeView> {
    let mut view = c.registry.view();
    for n in &mut view {
        n.full = n.up && n.free < c.config.min_free;
    }
    view
}

pub(super) async fn overview(State(c): State<Arc<Coordinator>>) -> Json<ClusterOverview> {
    let counts = c.meta.pending_and_garbage().await.unwrap_or_default();
    let mut v = ClusterOverview {
        nodes: nodes_view(&c),
        default_ec: c.config.default_ec.to_string(),
        objects_in_flight: counts.0 as u64,
        garbage: counts.1 as u64,
        rebuild: c.rebuild.lock().unwrap().clone(),
        raft: None,
        in_flight_by_coordinator: None,
    };
    if let Some(cluster) = &c.cluster {
        v.raft = Some(cluster.status().await);
        v.in_flight_by_coordinator = c.meta.pending_owners().await.ok();
    }
    Json(v)
}

pub(super) async fn node_status(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Response {
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::retire::status(&c.upkeep, &n).await),
        Err(e) => admin_error(e),
    }
}

pub(super) async fn node_drain(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Response {
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::retire::drain(&c.upkeep, &n).await),
        Err(e) => admin_error(e),
    }
}

pub(super) async fn node_activate(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
) -> Response {
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::retire::activate(&c.upkeep, &n).await),
        Err(e) => admin_error(e),
    }
}

/// `POST /cluster/nodes/{id}/remove` body.
#[derive(serde::Deserialize)]
pub(super) struct RemoveNode {
    /// Rebuild a dead node's shards first (default).
    #[serde(default = "yes")]
    repair: bool,
}

pub(super) fn yes() -> bool {
    true
}

pub(super) async fn node_remove(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
    body: Option<Json<RemoveNode>>,
) -> Response {
    let repair = body.is_none_or(|b| b.repair);
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::retire::remove(&c.upkeep, &n, repair).await),
        Err(e) => admin_error(e),
    }
}

/// `POST /cluster/coordinators` `{raft_id, admin_url}`.
#[derive(serde::Deserialize)]
pub(super) struct NewMember {
    raft_id: u64,
    admin_url: String,
}

pub(super) async fn add_coordinator(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<NewMember>,
) -> Response {
    let Some(cluster) = &c.cluster else {
        return admin_error(ApiError::InvalidArgument(NOT_REPLICATED.into()));
    };
    membership_reply(crate::cluster::start::add_member(cluster, req.raft_id, &req.admin_url).await)
}

pub(super) async fn remove_coordinator(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<u64>,
) -> Response {
    let Some(cluster) = &c.cluster else {
        return admin_error(ApiError::InvalidArgument(NOT_REPLICATED.into()));
    };
    membership_reply(crate::cluster::start::remove_member(cluster, id).await)
}

const NOT_REPLICATED: &str =
    "this coordinator runs alone (started without --raft-id/--peers): it has no members to change";

/// A membership change's answer; `421` with the leader's admin URL when asked of a follower.
pub(super) fn membership_reply(r: Result<(), crate::cluster::start::Refused>) -> Response {
    use crate::cluster::start::Refused;
    match r {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Refused::NotLeader(leader)) => (
            StatusCode::MISDIRECTED_REQUEST,
            Json(serde_json::json!({
                "error": "membership changes are made on the leader",
                "code": "NotLeader",
                "leader_admin_url": leader,
            })),
        )
            .into_response(),
        Err(Refused::Invalid(m)) => admin_error(ApiError::InvalidArgument(m)),
        Err(Refused::Unavailable(m)) => admin_error(ApiError::ServiceUnavailable(m)),
    }
}
