//! The coordinator-to-coordinator routes on the admin port, all behind the cluster secret:
//!
//! - `POST /raft/append`, `/raft/vote` (JSON), `/raft/snapshot` (a chunk's bytes, the rest
//!   in the `x-tessera-raft-snapshot` header): Raft RPCs, answered with JSON
//!   `{"Ok": ...}` / `{"Err": ...}`.
//! - `POST /raft/write`: a [`Proposal`] (a follower's batch of writes) forwarded to the
//!   leader; `421` if this member is not the leader (nothing was proposed), else the JSON
//!   [`Applied`], one result per write.
//! - `POST /raft/read-index`: the leader's read index, JSON `{"Ok": index}` or an error.
//! - `GET /raft/hello`: [`Hello`], what a member says about itself.
//!
//! All but `hello` answer `409` to a request from a member of another state machine version
//! ([`super::version`]), after the secret is checked.

use super::network::{ChunkHead, SNAPSHOT_HEADER};
use super::replicated::Outcome;
use super::{version, Applied, Cluster, Proposal, TypeConfig};
use crate::meta::MetaError;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a member says about itself (`GET /raft/hello`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// Its Raft id.
    pub id: u64,
    /// The `--peers` it was first started with.
    pub peers: BTreeMap<u64, String>,
    /// Whether it belongs to an initialised group.
    pub initialized: bool,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    /// Its current term.
    pub term: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry its state machine applied.
    pub applied_index: Option<u64>,
    /// The state machine version it applies ([`version::STATE_MACHINE`]; 0 from builds
    /// before versions were announced).
    #[serde(default)]
    pub state_machine: u32,
}

/// The routes, with the cluster secret required.
pub fn router(cluster: Arc<Cluster>, cluster_secret: &str) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/write", post(write))
        .route("/raft/read-index", post(read_index))
        .route_layer(axum::middleware::from_fn(version::require_same))
        .route("/raft/hello", get(hello))
        .layer(DefaultBodyLimit::max(256 << 20))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(cluster_secret),
            tessera_node::auth::require_secret,
        ))
        .with_state(cluster)
}

async fn append(
    State(c): State<Arc<Cluster>>,
    Json(req): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    Json(c.raft.append_entries(req).await).into_response()
}

async fn vote(State(c): State<Arc<Cluster>>, Json(req): Json<VoteRequest<u64>>) -> Response {
    Json(c.raft.vote(req).await).into_response()
}

async fn snapshot(
    State(c): State<Arc<Cluster>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let head: ChunkHead = match headers
        .get(SNAPSHOT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(serde_json::from_str)
    {
        Some(Ok(h)) => h,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                format!("a snapshot chunk needs a JSON {SNAPSHOT_HEADER} header"),
            )
                .into_response()
        }
    };
    let req = InstallSnapshotRequest::<TypeConfig> {
        vote: head.vote,
        meta: head.meta,
        offset: head.offset,
        data: body.to_vec(),
        done: head.done,
    };
    Json(c.raft.install_snapshot(req).await).into_response()
}

async fn write(State(c): State<Arc<Cluster>>, Json(p): Json<Proposal>) -> Response {
    match c.enqueue(p.writes, true).await {
        Outcome::Done(results) => Json(Applied(results)).into_response(),
        Outcome::NotApplied(why) => (StatusCode::MISDIRECTED_REQUEST, why).into_response(),
    }
}

async fn read_index(State(c): State<Arc<Cluster>>) -> Response {
    let r: Result<u64, MetaError> = c.shared_read_index().await;
    Json(r).into_response()
}

async fn hello(State(c): State<Arc<Cluster>>) -> Json<Hello> {
    Json(c.hello().await)
}
