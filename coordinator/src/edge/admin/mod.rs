//! Admin API (on `--admin-listen`): node traffic ([`nodes`]), the cluster ([`cluster`]),
//! maintenance ([`upkeep`]), keys and permissions ([`access`]); this module holds the router,
//! the admin-token check and the shared answer helpers.
//!
//! - `POST /nodes/heartbeat`: JSON heartbeat from a storage node (registers it).
//! - `GET /cluster`: JSON `{ "nodes": [...], "default_ec", "objects_in_flight", "garbage" }`,
//!   and in a replicated group `"raft": {"leader", "term", "members": [{"id", "admin_url",
//!   "role", "last_log_index", "applied_index", "state_machine"}]}`.
//! - `POST /cluster/coordinators` `{raft_id, admin_url}`, `DELETE /cluster/coordinators/{id}`:
//!   add or remove a coordinator of a replicated group (on the leader; others answer `421`
//!   with `leader_admin_url`).
//! - `/raft/*`: coordinator-to-coordinator traffic (see [`crate::cluster::routes`]).
//! - `POST /nodes/corrupt`: JSON list of shard headers a node's scrub found corrupt.
//! - `POST /repair`: JSON [`RepairRequest`]; starts a run, answers `{ "run_id" }`.
//! - `GET /repair/{id}`: JSON [`RepairReport`](crate::maintenance::repair::RepairReport) of a run.
//! - `GET /repair`: repair queue, suspects, background totals, latest run.
//! - `POST /keys` `{name}`, `POST /keys/import` `{access_key_id, secret_access_key, name}`:
//!   a new key, with its secret (the only time it is shown); `GET /keys` (no secrets);
//!   `DELETE /keys/{id}`.
//! - `GET /buckets/{bucket}`: owner, grants, k+m; `POST /buckets/{bucket}/allow` and
//!   `/deny` `{key, read, write, owner}`: add or remove permissions of a key;
//!   `GET`/`PUT /buckets/{bucket}/settings`: every setting of a bucket (grants, ACL, policy,
//!   CORS, public access block, ownership) as one document ([`settings`]);
//!   `DELETE /buckets/{bucket}/policy`: the way out of a policy that locks everyone out.
//!
//! - `GET /cluster/nodes/{id}`: a node's lifecycle state and what it holds;
//!   `POST /cluster/nodes/{id}/drain`, `/activate`, `/remove` (`{"repair": bool}`): retire a
//!   node (see [`crate::maintenance::retire`]); refusals answer `409` and change nothing.
//! - `GET /rebalance` (the balance, and the job), `POST /rebalance` `{band, rate, dry_run}`,
//!   `DELETE /rebalance`: see [`crate::maintenance::rebalance`].
//! - `GET /compact` (segments, live bytes, what compaction can give back), `POST /compact`
//!   `{bucket, below, dry_run}`: see [`crate::maintenance::compact`].
//! - `GET /recode` (stored jobs), `POST /recode` `{bucket, prefix, ec, rate, dry_run}`: see
//!   [`crate::maintenance::recode`].
//! - `GET /workers`: every background worker's state and progress; `POST
//!   /workers/{name}/pause`, `/resume`.
//! - `GET /maintenance`, `PUT /maintenance` `{"rate": bytes per second}`: the budget repair,
//!   rebalance and recode share (0: unlimited); `PUT /scrub` `{"rate"}`: every up node's
//!   scrub budget.
//! - `GET /console`: the web console ([`super::console`]), public (it holds no data);
//!   `GET /stats`: buckets with object counts and bytes, recent client traffic.
//! - `GET /metrics`: Prometheus metrics ([`crate::metrics`]).
//! - `GET /health/live`: 200 while the process serves; `GET /health/ready`: 200 when enough
//!   nodes are up to write with the default `k+m` (and, in a replicated group, a leader is
//!   known), else 503; both with a JSON body saying why.
//!
//! - `POST /cluster/certificates` `{csr, names, valid_secs}`: the cluster CA signs a node's
//!   certificate request (`tessera node join`), `{certificate, ca}`.
//!
//! Node traffic (`/nodes/*`) needs the cluster secret, everything else the admin token, both
//! as `Authorization: Bearer`; only `/health`, `/health/live`, `/health/ready` and
//! `/console` are open. Inside a cluster with mutual TLS, node traffic also needs a node
//! certificate of the cluster CA on its connection, and Raft traffic a coordinator one.

mod access;
mod certs;
mod cluster;
mod nodes;
mod settings;
mod upkeep;

pub use certs::{CertificateRequest, IssuedCertificate};
pub use cluster::ClusterOverview;
pub use upkeep::ScrubBudgets;

use crate::error::ApiError;
use crate::state::Coordinator;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tessera_node::tls::Role;

/// The admin router.
pub fn app(c: Arc<Coordinator>) -> Router {
    // Inside a cluster with mutual TLS, node traffic needs a node certificate and Raft
    // traffic a coordinator certificate, besides the cluster secret.
    let mutual = c.config.cluster_tls.is_some();
    let role =
        |r: Role| axum::middleware::from_fn_with_state(mutual.then_some(r), certs::require_role);
    let nodes = Router::new()
        .route("/nodes/heartbeat", post(nodes::heartbeat))
        .route("/nodes/corrupt", post(nodes::corrupt))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(c.secrets.cluster_secret.as_str()),
            tessera_node::auth::require_secret,
        ))
        .layer(role(Role::Node));
    let operators = Router::new()
        .route("/cluster", get(cluster::overview))
        .route("/metrics", get(cluster::metrics))
        .route("/cluster/coordinators", post(cluster::add_coordinator))
        .route(
            "/cluster/coordinators/{id}",
            axum::routing::delete(cluster::remove_coordinator),
        )
        .route("/cluster/certificates", post(certs::issue))
        .route("/cluster/nodes/{id}", get(cluster::node_status))
        .route("/cluster/nodes/{id}/drain", post(cluster::node_drain))
        .route("/cluster/nodes/{id}/activate", post(cluster::node_activate))
        .route("/cluster/nodes/{id}/remove", post(cluster::node_remove))
        .route(
            "/rebalance",
            get(upkeep::rebalance_status)
                .post(upkeep::rebalance_start)
                .delete(upkeep::rebalance_cancel),
        )
        .route(
            "/recode",
            get(upkeep::recode_status).post(upkeep::recode_start),
        )
        .route(
            "/compact",
            get(upkeep::compact_status).post(upkeep::compact_start),
        )
        .route("/stats", get(upkeep::stats))
        .route("/stats/check", get(upkeep::check_stats))
        .route("/metadata/compact", post(upkeep::compact_metadata))
        .route("/workers", get(upkeep::workers))
        .route("/workers/{name}/{action}", post(upkeep::steer_worker))
        .route(
            "/maintenance",
            get(upkeep::maintenance).put(upkeep::set_maintenance),
        )
        .route("/scrub", axum::routing::put(upkeep::set_scrub_rate))
        .route(
            "/repair",
            post(upkeep::start_repair).get(upkeep::repair_status),
        )
        .route("/repair/{id}", get(upkeep::repair_report))
        .route("/keys", post(access::create_key).get(access::list_keys))
        .route("/keys/import", post(access::import_key))
        .route("/keys/{id}", axum::routing::delete(access::delete_key))
        .route("/buckets/{bucket}", get(access::bucket_info))
        .route("/buckets/{bucket}/allow", post(access::allow))
        .route("/buckets/{bucket}/deny", post(access::deny))
        .route(
            "/buckets/{bucket}/settings",
            get(settings::export).put(settings::import),
        )
        .route(
            "/buckets/{bucket}/policy",
            axum::routing::delete(settings::delete_policy),
        )
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(c.secrets.admin_token.as_str()),
            require_admin,
        ));
    let raft = c.cluster.clone().map(|cl| {
        crate::cluster::routes::router(cl, &c.secrets.cluster_secret).layer(role(Role::Coordinator))
    });
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"live": true})) }),
        )
        .route("/health/ready", get(cluster::ready))
        .route(
            "/console",
            get(|| async { axum::response::Html(crate::edge::console::PAGE) }),
        )
        .merge(nodes)
        .merge(operators)
        .with_state(c);
    match raft {
        Some(r) => app.merge(r),
        None => app,
    }
}

/// Middleware: passes requests bearing the admin token, answers 401 to the rest.
async fn require_admin(
    State(token): State<Arc<str>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match tessera_node::auth::bearer(req.headers()) {
        Some(t) if tessera_node::auth::matches(t, &token) => next.run(req).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({
                "error": "the admin API needs Authorization: Bearer <admin token>",
                "code": "Unauthorized"
            })),
        )
            .into_response(),
    }
}

/// A node id from a path, or InvalidArgument.
pub(super) fn node_id(id: &str) -> Result<tessera_node::NodeId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::InvalidArgument(format!("{id:?} is not a node id")))
}

/// Admin errors: JSON `{ "error": message, "code" }` with the status the client API would
/// use.
pub(super) fn admin_error(e: ApiError) -> Response {
    let (code, status) = super::error::code_and_status(&e);
    (
        status,
        Json(serde_json::json!({ "error": e.to_string(), "code": code.as_str() })),
    )
        .into_response()
}

pub(super) fn reply<T: serde::Serialize, E: Into<ApiError>>(r: Result<T, E>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => admin_error(e.into()),
    }
}
