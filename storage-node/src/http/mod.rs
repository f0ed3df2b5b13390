//! The storage node's HTTP service: the router, the error mapping, request metrics, and the
//! node's own routes ([`shards`] holds the shard routes).
//!
//! Routes (all used by the coordinator, none by end clients; every one requires the cluster
//! secret as `Authorization: Bearer`, else 401):
//! - `PUT /shards/{version}/{index}`: body = frames (see [`crate::frame`]): a header, the shard
//!   bytes, an end frame. 200 with JSON [`ShardInfo`] once the shard is durable.
//! - `GET /shards/{version}/{index}?offset=O&len=N`: verified bytes (whole shard by default).
//! - `GET /shards/{version}/{index}/info`: JSON [`ShardInfo`].
//! - `DELETE /shards/{version}/{index}`: 204, also when absent.
//! - `GET /shards?after={version}/{index}&limit=N`: JSON list of [`ShardInfo`] in id order.
//! - `GET /health`: JSON [`Heartbeat`].
//! - `GET /metrics`: Prometheus metrics ([`crate::metrics`]).
//! - `GET /raw` with `Upgrade`: raw reads ([`crate::raw`]).
//! - `GET /workers`, `POST /workers/{name}/pause|resume`: the node's background workers.
//! - `GET /maintenance`, `PUT /maintenance` `{"rate": bytes per second}`: the scrub budget.
//!
//! Every request is counted by operation and status; one carrying a request id
//! ([`crate::trace::HEADER`]) is logged under the `tessera_node::access` target.

mod shards;

pub use shards::MAX_BATCH_BYTES;

use crate::error::StoreError;
use crate::state::NodeState;
use crate::types::{Heartbeat, ShardId};
use crate::worker::BudgetChange;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

/// The node's router.
pub fn app(state: NodeState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/shards", get(shards::list))
        .route("/shards/batch", post(shards::put_batch))
        .route(
            "/shards/{version}/{index}",
            get(shards::read).put(shards::put).delete(shards::delete),
        )
        .route("/shards/{version}/{index}/info", get(shards::info))
        .route("/raw", get(shards::raw))
        .route("/metrics", get(metrics))
        .route("/workers", get(workers))
        .route("/workers/{name}/{action}", post(steer_worker))
        .route("/maintenance", get(maintenance).put(set_maintenance))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn_with_state(
            state.secret.clone(),
            crate::auth::require_secret,
        ))
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `stop` is cancelled, over mutual TLS with
/// coordinators only when `tls` is given; requests in flight then get `drain` to finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: NodeState,
    tls: Option<tokio_rustls::TlsAcceptor>,
    drain: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    let limits = crate::listen::ConnLimits {
        // Coordinators keep connections open between requests: no deadline for a head.
        header_read_timeout: None,
        max_connections: 16_384,
        require: tls.as_ref().map(|_| crate::tls::Role::Coordinator),
        tls,
        drain,
    };
    let svc = hyper_util::service::TowerToHyperService::new(app(state));
    crate::listen::serve(listener, move |_| svc.clone(), limits, stop).await
}

/// The one place store errors become HTTP responses; [`crate::client`] maps them back.
impl IntoResponse for StoreError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            StoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            StoreError::Corrupt(_) => (StatusCode::UNPROCESSABLE_ENTITY, "corrupt"),
            StoreError::InvalidArgument(_) => (StatusCode::BAD_REQUEST, "invalid_argument"),
            StoreError::Incomplete(_) => (StatusCode::BAD_REQUEST, "incomplete"),
            StoreError::NoSpace(_) => (StatusCode::INSUFFICIENT_STORAGE, "no_space"),
            StoreError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            StoreError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "io"),
        };
        if matches!(self, StoreError::Corrupt(_) | StoreError::Io(_)) {
            tracing::warn!(error = %self, "shard request failed");
        }
        let body = serde_json::json!({ "error": kind, "message": self.to_string() });
        (status, Json(body)).into_response()
    }
}

pub(super) type Result<T> = std::result::Result<T, StoreError>;

pub(super) fn shard_id(version: &str, index: &str) -> Result<ShardId> {
    Ok(ShardId {
        version: version.parse().map_err(StoreError::InvalidArgument)?,
        index: index
            .parse()
            .map_err(|_| StoreError::InvalidArgument(format!("bad shard index {index:?}")))?,
    })
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Io(format!("blocking task failed: {e}")))?
}

/// The operation name of a request, from its method and route.
fn operation(method: &http::Method, route: &str) -> &'static str {
    use http::Method;
    match (method, route) {
        (&Method::PUT, "/shards/{version}/{index}") => "put_shard",
        (&Method::GET, "/shards/{version}/{index}") => "read_shard",
        (&Method::DELETE, "/shards/{version}/{index}") => "delete_shard",
        (&Method::GET, "/shards/{version}/{index}/info") => "shard_info",
        (&Method::POST, "/shards/batch") => "put_batch",
        (&Method::GET, "/shards") => "list_shards",
        (&Method::GET, "/raw") => "raw_connect",
        (&Method::GET, "/health") => "health",
        (&Method::GET, "/metrics") => "metrics",
        _ => "other",
    }
}

/// Middleware: counts and times every request, and logs the ones made for a client request.
async fn observe(
    State(st): State<NodeState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let started = std::time::Instant::now();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let op = operation(req.method(), &route);
    let ids = req
        .headers()
        .get(crate::trace::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = req.uri().path().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    st.metrics
        .request(op, status, started.elapsed().as_secs_f64());
    if let Some(ids) = ids {
        tracing::debug!(target: "tessera_node::access", node = %st.node_id, request_id = %ids, op, %path, status, "shard request");
    }
    resp
}

async fn metrics(State(st): State<NodeState>) -> Response {
    let st2 = st.clone();
    let text = tokio::task::spawn_blocking(move || {
        let hb = st2.heartbeat(String::new());
        st2.metrics.render(&hb, st2.store.engine_gauges())
    })
    .await
    .unwrap_or_default();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

async fn health(State(st): State<NodeState>) -> Json<Heartbeat> {
    Json(st.heartbeat(String::new()))
}

async fn workers(State(st): State<NodeState>) -> Json<Vec<crate::worker::WorkerView>> {
    Json(st.workers.views())
}

async fn steer_worker(
    State(st): State<NodeState>,
    Path((name, action)): Path<(String, String)>,
) -> Response {
    let Some(w) = st.workers.get(&name) else {
        return (StatusCode::NOT_FOUND, format!("no worker {name:?}")).into_response();
    };
    match action.as_str() {
        "pause" => w.pause(),
        "resume" => w.resume(),
        _ => return (StatusCode::BAD_REQUEST, "pause or resume").into_response(),
    }
    tracing::info!(worker = %name, %action, "worker steered");
    Json(w.view()).into_response()
}

async fn maintenance(State(st): State<NodeState>) -> Json<BudgetChange> {
    Json(BudgetChange {
        rate: st.budget.rate(),
    })
}

async fn set_maintenance(
    State(st): State<NodeState>,
    Json(b): Json<BudgetChange>,
) -> Json<BudgetChange> {
    st.budget.set_rate(b.rate);
    tracing::info!(rate = b.rate, "scrub budget changed");
    Json(BudgetChange {
        rate: st.budget.rate(),
    })
}
