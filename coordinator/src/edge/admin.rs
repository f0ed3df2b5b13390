//! Admin API (on `--admin-listen`): node heartbeats and the cluster view.
//!
//! - `POST /nodes/heartbeat`: JSON heartbeat from a storage node (registers it).
//! - `GET /cluster`: JSON `{ "nodes": [...], "default_ec", "objects_in_flight", "garbage" }`,
//!   and in a replicated group `"raft": {"leader", "term", "members": [{"id", "admin_url",
//!   "role", "last_log_index", "applied_index"}]}`.
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
//!   `/deny` `{key, read, write, owner}`: add or remove permissions of a key.
//!
//! - `GET /cluster/nodes/{id}`: a node's lifecycle state and what it holds;
//!   `POST /cluster/nodes/{id}/drain`, `/activate`, `/remove` (`{"repair": bool}`): retire a
//!   node (see [`crate::maintenance::lifecycle`]); refusals answer `409` and change nothing.
//! - `GET /rebalance` (the balance, and the job), `POST /rebalance` `{band, rate, dry_run}`,
//!   `DELETE /rebalance`: see [`crate::maintenance::rebalance`].
//! - `GET /compact` (segments, live bytes, what compaction can give back), `POST /compact`
//!   `{bucket, below, dry_run}`: see [`crate::maintenance::compact`].
//! - `GET /recode` (stored jobs), `POST /recode` `{bucket, prefix, ec, rate, dry_run}`: see
//!   [`crate::maintenance::recode`].
//! - `GET /workers`: every background worker's state and progress; `POST
//!   /workers/{name}/pause`, `/resume`.
//! - `GET /maintenance`, `PUT /maintenance` `{"rate": bytes per second}`: the budget repair,
//!   rebalance and recode share (0: unlimited).
//! - `GET /console`: the web console ([`super::console`]), public (it holds no data);
//!   `GET /stats`: buckets with object counts and bytes, recent client traffic.
//! - `GET /metrics`: Prometheus metrics ([`crate::metrics`]).
//! - `GET /health/live`: 200 while the process serves; `GET /health/ready`: 200 when enough
//!   nodes are up to write with the default `k+m` (and, in a replicated group, a leader is
//!   known), else 503; both with a JSON body saying why.
//!
//! Node traffic (`/nodes/*`) needs the cluster secret, everything else the admin token, both
//! as `Authorization: Bearer`; only `/health`, `/health/live`, `/health/ready` and
//! `/console` are open.

use crate::error::ApiError;
use crate::maintenance::repair::RepairRequest;
use crate::meta::{now_ms, Grant, KeyRecord};
use crate::state::Coordinator;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::sync::Arc;
use tessera_node::types::Heartbeat;

/// The admin router.
pub fn app(c: Arc<Coordinator>) -> Router {
    let nodes = Router::new()
        .route("/nodes/heartbeat", post(heartbeat))
        .route("/nodes/corrupt", post(corrupt))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(c.secrets.cluster_secret.as_str()),
            tessera_node::auth::require_secret,
        ));
    let operators = Router::new()
        .route("/cluster", get(cluster))
        .route("/metrics", get(metrics))
        .route("/cluster/coordinators", post(add_coordinator))
        .route(
            "/cluster/coordinators/{id}",
            axum::routing::delete(remove_coordinator),
        )
        .route("/cluster/nodes/{id}", get(node_status))
        .route("/cluster/nodes/{id}/drain", post(node_drain))
        .route("/cluster/nodes/{id}/activate", post(node_activate))
        .route("/cluster/nodes/{id}/remove", post(node_remove))
        .route(
            "/rebalance",
            get(rebalance_status)
                .post(rebalance_start)
                .delete(rebalance_cancel),
        )
        .route("/recode", get(recode_status).post(recode_start))
        .route("/compact", get(compact_status).post(compact_start))
        .route("/stats", get(stats))
        .route("/workers", get(workers))
        .route("/workers/{name}/{action}", post(steer_worker))
        .route("/maintenance", get(maintenance).put(set_maintenance))
        .route("/repair", post(start_repair).get(repair_status))
        .route("/repair/{id}", get(repair_report))
        .route("/keys", post(create_key).get(list_keys))
        .route("/keys/import", post(import_key))
        .route("/keys/{id}", axum::routing::delete(delete_key))
        .route("/buckets/{bucket}", get(bucket_info))
        .route("/buckets/{bucket}/allow", post(allow))
        .route("/buckets/{bucket}/deny", post(deny))
        .layer(axum::middleware::from_fn_with_state(
            Arc::<str>::from(c.secrets.admin_token.as_str()),
            require_admin,
        ));
    let raft = c
        .cluster
        .clone()
        .map(|cl| crate::cluster::routes::router(cl, &c.secrets.cluster_secret));
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"live": true})) }),
        )
        .route("/health/ready", get(ready))
        .route(
            "/console",
            get(|| async { axum::response::Html(super::console::PAGE) }),
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

async fn heartbeat(State(c): State<Arc<Coordinator>>, Json(hb): Json<Heartbeat>) -> StatusCode {
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

async fn metrics(State(c): State<Arc<Coordinator>>) -> Response {
    let text = crate::metrics::render(&c).await;
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
async fn ready(State(c): State<Arc<Coordinator>>) -> Response {
    let ec = c.config.default_ec;
    let needed = c.config.quorum(ec);
    let view = c.registry.view();
    let up = view.iter().filter(|n| n.up).count();
    let mut why = Vec::new();
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
        })),
    )
        .into_response()
}

async fn cluster(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    let counts = c.meta.pending_and_garbage().await.unwrap_or_default();
    let mut v = serde_json::json!({
        "nodes": c.registry.view(),
        "default_ec": c.config.default_ec.to_string(),
        "objects_in_flight": counts.0,
        "garbage": counts.1,
        "rebuild": *c.rebuild.lock().unwrap(),
    });
    if let Some(cluster) = &c.cluster {
        v["raft"] = serde_json::to_value(cluster.status().await).unwrap_or_default();
        if let Ok(owners) = c.meta.pending_owners().await {
            v["in_flight_by_coordinator"] = serde_json::to_value(owners).unwrap_or_default();
        }
    }
    Json(v)
}

fn node_id(id: &str) -> Result<tessera_node::NodeId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::InvalidArgument(format!("{id:?} is not a node id")))
}

async fn node_status(State(c): State<Arc<Coordinator>>, Path(id): Path<String>) -> Response {
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::lifecycle::status(&c, &n).await),
        Err(e) => admin_error(e),
    }
}

async fn node_drain(State(c): State<Arc<Coordinator>>, Path(id): Path<String>) -> Response {
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::lifecycle::drain(&c, &n).await),
        Err(e) => admin_error(e),
    }
}

async fn node_activate(State(c): State<Arc<Coordinator>>, Path(id): Path<String>) -> Response {
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::lifecycle::activate(&c, &n).await),
        Err(e) => admin_error(e),
    }
}

/// `POST /cluster/nodes/{id}/remove` body.
#[derive(serde::Deserialize)]
struct RemoveNode {
    /// Rebuild a dead node's shards first (default).
    #[serde(default = "yes")]
    repair: bool,
}

fn yes() -> bool {
    true
}

async fn node_remove(
    State(c): State<Arc<Coordinator>>,
    Path(id): Path<String>,
    body: Option<Json<RemoveNode>>,
) -> Response {
    let repair = body.is_none_or(|b| b.repair);
    match node_id(&id) {
        Ok(n) => reply(crate::maintenance::lifecycle::remove(&c, &n, repair).await),
        Err(e) => admin_error(e),
    }
}

async fn rebalance_status(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::maintenance::rebalance::status(&c).await)
}

async fn rebalance_start(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<crate::maintenance::rebalance::RebalanceRequest>,
) -> Response {
    reply(crate::maintenance::rebalance::start(&c, req).await)
}

async fn rebalance_cancel(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::maintenance::rebalance::cancel(&c).await)
}

async fn compact_status(State(c): State<Arc<Coordinator>>) -> Response {
    reply(crate::maintenance::compact::status(&c).await)
}

async fn compact_start(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<crate::maintenance::compact::CompactRequest>,
) -> Response {
    reply(crate::maintenance::compact::start(&c, req).await)
}

async fn recode_status(State(c): State<Arc<Coordinator>>) -> Response {
    reply(
        crate::maintenance::recode::jobs(&c)
            .await
            .map(|jobs| serde_json::json!({ "jobs": jobs })),
    )
}

async fn recode_start(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<crate::maintenance::recode::RecodeRequest>,
) -> Response {
    reply(crate::maintenance::recode::start(&c, req).await)
}

async fn stats(State(c): State<Arc<Coordinator>>) -> Response {
    reply(super::console::stats(&c).await)
}

/// This coordinator's workers, then every up node's (named `NAME@NODE`).
async fn workers(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    let mut all = c.workers.views();
    let nodes: Vec<_> = c
        .registry
        .view()
        .into_iter()
        .filter(|n| n.up)
        .filter_map(|n| Some((n.id.clone(), c.registry.client(&n.id)?)))
        .collect();
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
    Json(serde_json::json!({
        "workers": all,
        "maintenance_rate": c.budget.rate(),
    }))
}

async fn steer_worker(
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

/// `PUT /maintenance` body.
#[derive(serde::Deserialize)]
struct Maintenance {
    /// Bytes per second (0: unlimited).
    rate: u64,
}

async fn maintenance(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "rate": c.budget.rate() }))
}

async fn set_maintenance(
    State(c): State<Arc<Coordinator>>,
    Json(m): Json<Maintenance>,
) -> Json<serde_json::Value> {
    c.budget.set_rate(m.rate);
    tracing::info!(rate = m.rate, "maintenance budget changed");
    Json(serde_json::json!({ "rate": c.budget.rate() }))
}

/// `POST /cluster/coordinators` `{raft_id, admin_url}`.
#[derive(serde::Deserialize)]
struct NewMember {
    raft_id: u64,
    admin_url: String,
}

async fn add_coordinator(
    State(c): State<Arc<Coordinator>>,
    Json(req): Json<NewMember>,
) -> Response {
    let Some(cluster) = &c.cluster else {
        return admin_error(ApiError::InvalidArgument(NOT_REPLICATED.into()));
    };
    membership_reply(crate::cluster::start::add_member(cluster, req.raft_id, &req.admin_url).await)
}

async fn remove_coordinator(State(c): State<Arc<Coordinator>>, Path(id): Path<u64>) -> Response {
    let Some(cluster) = &c.cluster else {
        return admin_error(ApiError::InvalidArgument(NOT_REPLICATED.into()));
    };
    membership_reply(crate::cluster::start::remove_member(cluster, id).await)
}

const NOT_REPLICATED: &str =
    "this coordinator runs alone (started without --raft-id/--peers): it has no members to change";

/// A membership change's answer; `421` with the leader's admin URL when asked of a follower.
fn membership_reply(r: Result<(), crate::cluster::start::Refused>) -> Response {
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

/// Admin errors: JSON `{ "error": message, "code" }` with the status the client API would
/// use.
fn admin_error(e: ApiError) -> Response {
    let (code, status) = super::error::code_and_status(&e);
    (
        status,
        Json(serde_json::json!({ "error": e.to_string(), "code": code.as_str() })),
    )
        .into_response()
}

fn reply<T: serde::Serialize, E: Into<ApiError>>(r: Result<T, E>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(e) => admin_error(e.into()),
    }
}

/// A new key's request.
#[derive(serde::Deserialize)]
struct NewKey {
    name: String,
}

/// An imported key's request.
#[derive(serde::Deserialize)]
struct ImportKey {
    access_key_id: String,
    secret_access_key: String,
    name: String,
}

fn random_chars(n: usize, alphabet: &[u8]) -> String {
    use rand::Rng;
    let mut rng = rand::rngs::OsRng;
    (0..n)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

async fn store_key(c: &Coordinator, k: KeyRecord) -> Result<serde_json::Value, ApiError> {
    let out = key_json(&k, true);
    c.meta.create_key(k).await?;
    Ok(out)
}

fn key_json(k: &KeyRecord, secret: bool) -> serde_json::Value {
    let mut v = serde_json::json!({
        "access_key_id": k.id,
        "name": k.name,
        "created_ms": k.created_ms,
    });
    if secret {
        v["secret_access_key"] = k.secret.clone().into();
    }
    v
}

async fn create_key(State(c): State<Arc<Coordinator>>, Json(req): Json<NewKey>) -> Response {
    let k = KeyRecord {
        id: format!(
            "TK{}",
            random_chars(18, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        ),
        secret: random_chars(
            40,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        ),
        name: req.name,
        created_ms: now_ms(),
    };
    reply(store_key(&c, k).await)
}

async fn import_key(State(c): State<Arc<Coordinator>>, Json(req): Json<ImportKey>) -> Response {
    let id_ok = (3..=128).contains(&req.access_key_id.len())
        && req.access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
    let secret_ok = (8..=128).contains(&req.secret_access_key.len())
        && req.secret_access_key.bytes().all(|b| b.is_ascii_graphic());
    if !id_ok || !secret_ok {
        return admin_error(ApiError::InvalidArgument(
            "access key ids are 3-128 letters and digits; secrets 8-128 printable characters"
                .into(),
        ));
    }
    let k = KeyRecord {
        id: req.access_key_id,
        secret: req.secret_access_key,
        name: req.name,
        created_ms: now_ms(),
    };
    reply(store_key(&c, k).await)
}

async fn list_keys(State(c): State<Arc<Coordinator>>) -> Response {
    reply(
        c.meta
            .keys()
            .await
            .map(|ks| ks.iter().map(|k| key_json(k, false)).collect::<Vec<_>>()),
    )
}

async fn delete_key(State(c): State<Arc<Coordinator>>, Path(id): Path<String>) -> Response {
    match c.meta.delete_key(id).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => admin_error(ApiError::InvalidArgument("no such access key".into())),
        Err(e) => admin_error(e.into()),
    }
}

async fn bucket_info(State(c): State<Arc<Coordinator>>, Path(b): Path<String>) -> Response {
    reply(
        c.meta
            .bucket(b.clone())
            .await
            .map_err(ApiError::from)
            .and_then(|found| found.ok_or(ApiError::NoSuchBucket(b)))
            .map(|b| {
                serde_json::json!({
                    "name": b.name,
                    "owner": b.owner,
                    "grants": b.grants,
                    "ec": b.ec.to_string(),
                    "created_ms": b.created_ms,
                })
            }),
    )
}

/// Permissions to add or remove; none named means all three.
#[derive(serde::Deserialize)]
struct GrantChange {
    key: String,
    #[serde(default)]
    read: bool,
    #[serde(default)]
    write: bool,
    #[serde(default)]
    owner: bool,
}

async fn change_grant(c: Arc<Coordinator>, bucket: String, ch: GrantChange, add: bool) -> Response {
    let all = !(ch.read || ch.write || ch.owner);
    let r: Result<serde_json::Value, ApiError> = async {
        let b = c
            .meta
            .bucket(bucket.clone())
            .await?
            .ok_or_else(|| ApiError::NoSuchBucket(bucket.clone()))?;
        let mut g: Grant = b.grants.get(&ch.key).copied().unwrap_or_default();
        let set = |flag: &mut bool, named: bool| {
            if named || all {
                *flag = add;
            }
        };
        set(&mut g.read, ch.read);
        set(&mut g.write, ch.write);
        set(&mut g.owner, ch.owner);
        let b = c.meta.set_grant(bucket.clone(), ch.key.clone(), g).await?;
        Ok(serde_json::json!({ "name": b.name, "owner": b.owner, "grants": b.grants }))
    }
    .await;
    reply(r)
}

async fn allow(
    State(c): State<Arc<Coordinator>>,
    Path(b): Path<String>,
    Json(ch): Json<GrantChange>,
) -> Response {
    change_grant(c, b, ch, true).await
}

async fn deny(
    State(c): State<Arc<Coordinator>>,
    Path(b): Path<String>,
    Json(ch): Json<GrantChange>,
) -> Response {
    change_grant(c, b, ch, false).await
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
    match crate::maintenance::repair::start_run(&c, req).await {
        Ok(id) => Json(serde_json::json!({ "run_id": id })).into_response(),
        Err(e) => admin_error(e),
    }
}

async fn repair_report(State(c): State<Arc<Coordinator>>, Path(id): Path<u64>) -> Response {
    match c.repair.report(id) {
        Some(r) => Json(r).into_response(),
        None => admin_error(ApiError::InvalidArgument(format!("no repair run {id}"))),
    }
}

async fn repair_status(State(c): State<Arc<Coordinator>>) -> Json<serde_json::Value> {
    Json(c.repair.status())
}
