//! The storage node's HTTP service.
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
//!
//! Every request is counted by operation and status; one carrying a request id
//! ([`crate::trace::HEADER`]) is logged under the `tessera_node::access` target.

use crate::error::StoreError;
use crate::frame::{EndFrame, Frame, FrameParser};
use crate::store::{ShardStore, ShardWriter, WholeShard};
use crate::types::{BatchOutcome, Heartbeat, NodeId, ShardId, ShardInfo};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;
use std::future::Future;
use std::sync::Arc;

/// Shared state of one node's service.
#[derive(Clone)]
pub struct NodeState {
    /// The shard store.
    pub store: Arc<dyn ShardStore>,
    /// This node's id.
    pub node_id: NodeId,
    /// Zone reported in heartbeats.
    pub zone: String,
    /// Capacity limit in bytes (0 = whole filesystem).
    pub capacity: u64,
    /// Directory whose filesystem holds the shards (for free-space reports).
    pub data_dir: std::path::PathBuf,
    /// Scrub progress.
    pub scrub: Arc<std::sync::Mutex<crate::scrub::ScrubStats>>,
    /// The cluster secret: every request must carry it, and the node presents it to the
    /// coordinator.
    pub secret: Arc<str>,
    /// This node's metrics.
    pub metrics: Arc<crate::metrics::NodeMetrics>,
    /// Background loops (scrub, heartbeats), for listing and steering.
    pub workers: Arc<crate::worker::Workers>,
}

impl NodeState {
    /// Current heartbeat contents (addr filled in by the caller).
    pub fn heartbeat(&self, addr: String) -> Heartbeat {
        let used = self.store.used_bytes();
        let (log_writes, log_syncs) = self.store.log_counts();
        let fs_free = fs_free_bytes(&self.data_dir).unwrap_or(u64::MAX);
        let free = if self.capacity > 0 {
            self.capacity.saturating_sub(used).min(fs_free)
        } else {
            fs_free
        };
        Heartbeat {
            node_id: self.node_id.clone(),
            addr,
            zone: self.zone.clone(),
            capacity: self.capacity,
            used,
            free,
            scrub: self.scrub.lock().unwrap().clone(),
            log_writes,
            log_syncs,
        }
    }
}

/// Bytes available to unprivileged writers on the filesystem holding `dir`.
pub fn fs_free_bytes(dir: &std::path::Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a properly sized out-parameter.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    (rc == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
}

/// The node's router.
pub fn app(state: NodeState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/shards", get(list))
        .route("/shards/batch", post(put_batch))
        .route(
            "/shards/{version}/{index}",
            get(read).put(put).delete(delete),
        )
        .route("/shards/{version}/{index}/info", get(info))
        .route("/raw", get(raw))
        .route("/metrics", get(metrics))
        .route("/workers", get(workers))
        .route("/workers/{name}/{action}", post(steer_worker))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::middleware::from_fn_with_state(
            state.secret.clone(),
            crate::auth::require_secret,
        ))
        .with_state(state)
}

/// Serves `app(state)` on `listener` until `shutdown` completes.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: NodeState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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

type Result<T> = std::result::Result<T, StoreError>;

fn shard_id(version: &str, index: &str) -> Result<ShardId> {
    Ok(ShardId {
        version: version.parse().map_err(StoreError::InvalidArgument)?,
        index: index
            .parse()
            .map_err(|_| StoreError::InvalidArgument(format!("bad shard index {index:?}")))?,
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
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
    let text = tokio::task::spawn_blocking(move || st2.metrics.render(&st2))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response()
}

async fn health(State(st): State<NodeState>) -> Json<Heartbeat> {
    Json(st.heartbeat(String::new()))
}

#[derive(Deserialize)]
struct ListParams {
    after: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(st): State<NodeState>,
    Query(p): Query<ListParams>,
) -> Result<Json<Vec<ShardInfo>>> {
    let after = match p.after.as_deref() {
        Some(a) => {
            let (v, i) = a
                .split_once('/')
                .ok_or_else(|| StoreError::InvalidArgument(format!("bad after {a:?}")))?;
            Some(shard_id(v, i)?)
        }
        None => None,
    };
    let limit = p.limit.unwrap_or(1000).min(10_000);
    Ok(Json(blocking(move || st.store.list(after, limit)).await?))
}

async fn info(
    State(st): State<NodeState>,
    Path((v, i)): Path<(String, String)>,
) -> Result<Json<ShardInfo>> {
    let id = shard_id(&v, &i)?;
    Ok(Json(blocking(move || st.store.stat(id)).await?))
}

async fn delete(
    State(st): State<NodeState>,
    Path((v, i)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = shard_id(&v, &i)?;
    blocking(move || st.store.delete(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct ReadParams {
    offset: Option<u64>,
    len: Option<u64>,
}

/// Bytes read and verified per blocking call when streaming a long range.
const READ_BATCH: u64 = 1 << 20;

async fn read(
    State(st): State<NodeState>,
    Path((v, i)): Path<(String, String)>,
    Query(p): Query<ReadParams>,
) -> Result<Response> {
    let id = shard_id(&v, &i)?;
    let store = st.store.clone();
    let length = blocking(move || store.stat(id)).await?.length;
    let offset = p.offset.unwrap_or(0);
    let len = match p.len {
        Some(l) => l,
        None => length.checked_sub(offset).ok_or_else(|| {
            StoreError::InvalidArgument(format!("offset {offset} past length {length}"))
        })?,
    };
    // The first batch is read (and verified) before the status line goes out, so a short
    // range, which is what the coordinator asks for, gets a proper error status.
    let first_len = len.min(READ_BATCH);
    let store = st.store.clone();
    let first = blocking(move || store.read_chunks(id, offset, first_len)).await?;
    st.metrics.read_bytes.inc_by(len);
    let store = st.store.clone();
    let rest = futures::stream::unfold(offset + first_len, move |pos| {
        let store = store.clone();
        async move {
            if pos >= offset + len {
                return None;
            }
            let n = (offset + len - pos).min(READ_BATCH);
            // A corrupt chunk later in a long read aborts the body: the client sees a
            // truncated transfer, never wrong bytes.
            let r = blocking(move || store.read_chunks(id, pos, n)).await;
            Some((r.map_err(std::io::Error::other), pos + n))
        }
    });
    // Each batch goes out as the verified chunks it was read as (slices of one read buffer,
    // written with one vectored write), not copied into one buffer.
    let body = futures::stream::once(async move { Ok::<_, std::io::Error>(first) })
        .chain(rest)
        .flat_map(|batch| {
            futures::stream::iter(match batch {
                Ok(chunks) => chunks.into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            })
        });
    Ok(Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .header("x-tessera-shard-length", length)
        .body(Body::from_stream(body))
        .unwrap())
}

/// `GET /raw` with `Upgrade: tessera-raw-read/1`: switches the connection to raw reads
/// ([`crate::raw`]). The cluster secret was checked by the middleware like on every route.
async fn raw(State(st): State<NodeState>, mut req: axum::extract::Request) -> Response {
    let wants = req.headers().get(header::UPGRADE).is_some_and(|v| {
        v.as_bytes()
            .eq_ignore_ascii_case(crate::raw::PROTOCOL.as_bytes())
    });
    if !wants {
        return StoreError::InvalidArgument(format!(
            "GET /raw needs Upgrade: {}",
            crate::raw::PROTOCOL
        ))
        .into_response();
    }
    let on = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on.await {
            Ok(up) => crate::raw::serve(st, up).await,
            Err(e) => tracing::debug!(error = %e, "raw read upgrade failed"),
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, crate::raw::PROTOCOL)
        .body(Body::empty())
        .unwrap()
}

/// Bytes collected from the request before each blocking write.
const WRITE_BATCH: usize = 1 << 20;

/// Writes the data of a `PUT /shards` body (see [`crate::frame`]) and commits it on the end
/// frame. Any error, or a body that stops without an end frame, drops the writer, which
/// aborts the write: nothing becomes visible.
/// Largest batch upload accepted, in shard bytes.
pub const MAX_BATCH_BYTES: u64 = 16 << 20;

/// `POST /shards/batch`: several complete shard uploads back to back (each `H`, `D`..., `E`
/// as in a single upload). Nothing is stored unless the whole body arrives; then each shard
/// is stored or fails on its own, and all stored ones are made durable together (one sync).
async fn put_batch(State(st): State<NodeState>, body: Body) -> Result<Json<Vec<BatchOutcome>>> {
    let room = st.heartbeat(String::new()).free;
    let mut stream = body.into_data_stream();
    let mut parser = FrameParser::default();
    let mut shards: Vec<WholeShard> = Vec::new();
    let mut open: Option<(crate::types::ShardHeader, Vec<Bytes>)> = None;
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| StoreError::Incomplete(format!("batch body: {e}")))?;
        for frame in parser.push(chunk)? {
            match frame {
                Frame::Header(h) => {
                    if open.is_some() {
                        return Err(StoreError::InvalidArgument(
                            "batch: header inside a shard".into(),
                        ));
                    }
                    open = Some((h, Vec::new()));
                }
                Frame::Data(d) => {
                    let (_, data) = open.as_mut().ok_or_else(|| {
                        StoreError::InvalidArgument("batch: data before a header".into())
                    })?;
                    total += d.len() as u64;
                    if total > MAX_BATCH_BYTES {
                        return Err(StoreError::InvalidArgument(format!(
                            "batch larger than {MAX_BATCH_BYTES} bytes"
                        )));
                    }
                    if total > room {
                        return Err(StoreError::NoSpace(format!(
                            "node {} has {room} bytes free",
                            st.node_id
                        )));
                    }
                    data.push(d);
                }
                Frame::End(e) => {
                    let (header, data) = open.take().ok_or_else(|| {
                        StoreError::InvalidArgument("batch: end frame before a header".into())
                    })?;
                    if e.header.shard_id() != header.shard_id() {
                        return Err(StoreError::InvalidArgument(
                            "batch: end frame names another shard".into(),
                        ));
                    }
                    shards.push(WholeShard {
                        header,
                        data,
                        final_header: e.header,
                        length: e.length,
                    });
                }
            }
        }
    }
    if open.is_some() {
        return Err(StoreError::Incomplete(
            "batch body ended inside a shard".into(),
        ));
    }
    if room == 0 && !shards.is_empty() {
        return Err(StoreError::NoSpace(format!("node {} is full", st.node_id)));
    }
    let store = st.store.clone();
    let out = blocking(move || Ok(store.put_many(shards))).await?;
    let stored: u64 = out.iter().flatten().map(|i| i.length).sum();
    st.metrics.written_bytes.inc_by(stored);
    Ok(Json(
        out.into_iter()
            .map(|r| match r {
                Ok(info) => BatchOutcome::Stored(Box::new(info)),
                Err(e) => BatchOutcome::Failed(e.to_string()),
            })
            .collect(),
    ))
}

async fn put(
    State(st): State<NodeState>,
    Path((v, i)): Path<(String, String)>,
    body: Body,
) -> Result<Json<ShardInfo>> {
    /// What a blocking flush left: the open writer, or the committed shard.
    enum Flushed {
        Open(Box<dyn ShardWriter>),
        Done(Box<ShardInfo>),
    }
    let id = shard_id(&v, &i)?;
    let mut stream = body.into_data_stream();
    let mut parser = FrameParser::default();
    // The writer is opened in the first blocking flush, so a small shard costs one blocking
    // call in all (begin, write and commit together).
    let mut header: Option<crate::types::ShardHeader> = None;
    let mut writer: Option<Box<dyn ShardWriter>> = None;
    let mut batch: Vec<Bytes> = Vec::new();
    let mut batch_len = 0usize;
    let mut end: Option<EndFrame> = None;
    let mut received: u64 = 0;
    let mut room: u64 = u64::MAX;
    loop {
        let chunk = match stream.next().await {
            Some(c) => c.map_err(|e| StoreError::Incomplete(format!("shard body: {e}")))?,
            None => {
                return Err(StoreError::Incomplete(
                    "shard body ended without an end frame".into(),
                ))
            }
        };
        for frame in parser.push(chunk)? {
            match frame {
                Frame::Header(h) => {
                    if header.is_some() || writer.is_some() || h.shard_id() != id {
                        return Err(StoreError::InvalidArgument(format!(
                            "unexpected header for {}",
                            h.shard_id()
                        )));
                    }
                    room = st.heartbeat(String::new()).free;
                    if room == 0 {
                        return Err(StoreError::NoSpace(format!("node {} is full", st.node_id)));
                    }
                    header = Some(h);
                }
                Frame::Data(d) => {
                    received += d.len() as u64;
                    // Refuse a shard that would overrun the capacity limit or the disk:
                    // the write aborts cleanly instead of failing half-way.
                    if received > room {
                        return Err(StoreError::NoSpace(format!(
                            "node {} has {room} bytes free",
                            st.node_id
                        )));
                    }
                    batch_len += d.len();
                    batch.push(d);
                }
                Frame::End(e) => {
                    if e.header.shard_id() != id {
                        return Err(StoreError::InvalidArgument(
                            "end frame names another shard".into(),
                        ));
                    }
                    end = Some(e);
                }
            }
        }
        if batch_len >= WRITE_BATCH || end.is_some() {
            let store = st.store.clone();
            let (h, w, b, e) = (
                header.take(),
                writer.take(),
                std::mem::take(&mut batch),
                end.take(),
            );
            batch_len = 0;
            let out = blocking(move || {
                let mut w = match w {
                    Some(w) => w,
                    None => store.begin(h.ok_or_else(|| {
                        StoreError::InvalidArgument("shard data before its header".into())
                    })?)?,
                };
                for piece in &b {
                    w.write(piece)?;
                }
                match e {
                    Some(e) => Ok(Flushed::Done(Box::new(w.commit_with(e.header, e.length)?))),
                    None => Ok(Flushed::Open(w)),
                }
            })
            .await?;
            match out {
                Flushed::Open(w) => writer = Some(w),
                Flushed::Done(info) => {
                    st.metrics.written_bytes.inc_by(info.length);
                    return Ok(Json(*info));
                }
            }
        }
    }
}

/// The coordinator admin URLs in a comma-separated list.
pub fn coordinators(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|u| !u.is_empty())
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

/// Sends a heartbeat to `coordinator` every `interval` until the task is dropped.
pub async fn heartbeat_loop(
    state: NodeState,
    addr: String,
    coordinator: String,
    interval: std::time::Duration,
) {
    let client = reqwest::Client::builder()
        .default_headers(crate::auth::headers(&state.secret))
        .timeout(std::time::Duration::from_secs(5))
        .build()
        .expect("http client");
    let url = format!("{}/nodes/heartbeat", coordinator.trim_end_matches('/'));
    let mut warned = false;
    let w = state.workers.get_or_add(
        "heartbeat",
        "reports this node (address, zone, space, scrub) to every coordinator each interval",
    );
    let never = tokio_util::sync::CancellationToken::new();
    loop {
        // A paused node stops reporting: coordinators count it down after their timeout.
        w.gate(&never).await;
        let st = state.clone();
        let a = addr.clone();
        let hb = tokio::task::spawn_blocking(move || st.heartbeat(a)).await;
        if let Ok(hb) = hb {
            match client.post(&url).json(&hb).send().await {
                Ok(r) if r.status().is_success() => {
                    warned = false;
                    w.end(format!("reported to {coordinator}"));
                }
                Ok(r) if r.status() == reqwest::StatusCode::GONE && !warned => {
                    tracing::error!(
                        "this node was removed from the cluster: the coordinator refuses it; give a replacement a fresh data dir"
                    );
                    warned = true;
                }
                Ok(r) if !warned => {
                    tracing::warn!(status = %r.status(), "coordinator refused heartbeat");
                    warned = true;
                }
                Err(e) if !warned => {
                    tracing::warn!(error = %e, "coordinator unreachable");
                    warned = true;
                }
                _ => {}
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// Loads the node id kept in `dir/node_id`, creating it on first start (as `wanted` if
/// given). Written to a temp file, fsynced and renamed so a crash never leaves a half-written
/// id. A stored id different from `wanted` is an error: the data dir belongs to another node.
pub fn load_or_create_node_id(
    dir: &std::path::Path,
    wanted: Option<NodeId>,
) -> std::io::Result<NodeId> {
    use std::io::Write;
    let path = dir.join("node_id");
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id: NodeId = s
                .trim()
                .parse()
                .map_err(|e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            match wanted {
                Some(w) if w != id => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("data dir belongs to node {id}, not {w}"),
                )),
                _ => Ok(id),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = wanted.unwrap_or_else(NodeId::random);
            let tmp = dir.join("node_id.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(id.as_str().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Configuration of a storage node process.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Directory holding the node id and the shard database.
    pub data_dir: std::path::PathBuf,
    /// Coordinator admin URL (`http://host:port`) to send heartbeats to; a comma-separated list
    /// for a replicated group (each gets heartbeats and scrub reports).
    pub coordinator: String,
    /// Zone reported to the coordinator.
    pub zone: String,
    /// Capacity limit in bytes (0 = whole filesystem).
    pub capacity: u64,
    /// Time between heartbeats.
    pub heartbeat_interval: std::time::Duration,
    /// Background verification of stored shards.
    pub scrub: crate::scrub::ScrubConfig,
    /// Identity to adopt when the data dir holds none (a replaced disk keeps its node's id).
    pub node_id: Option<NodeId>,
    /// The cluster secret (from `--cluster-secret-file` or `TESSERA_CLUSTER_SECRET`).
    pub cluster_secret: String,
    /// How often the node looks whether deleted small shards are worth a compaction.
    pub reclaim_interval: std::time::Duration,
}

/// Opens the node's store in `config.data_dir`, registers with the coordinator and serves on
/// `listener` until `shutdown` completes; then flushes the store.
pub async fn serve(
    config: NodeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let dir = config.data_dir.clone();
    let wanted_id = config.node_id.clone();
    let (node_id, store) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(dir.join("shards"))?;
        let id = load_or_create_node_id(&dir, wanted_id)?;
        let store = crate::store::RocksShardStore::open(&dir.join("shards"))
            .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>((id, store))
    })
    .await??;
    let addr = listener.local_addr()?.to_string();
    tracing::info!(node = %node_id, %addr, zone = %config.zone, "storage node serving");
    let state = NodeState {
        store: Arc::new(store.clone()),
        node_id,
        zone: config.zone.clone(),
        capacity: config.capacity,
        data_dir: config.data_dir.clone(),
        scrub: Default::default(),
        secret: config.cluster_secret.as_str().into(),
        metrics: Default::default(),
        workers: Default::default(),
    };
    // Every coordinator of a replicated group keeps its own view of which nodes are up.
    let hbs: Vec<_> = coordinators(&config.coordinator)
        .map(|url| {
            tokio::spawn(heartbeat_loop(
                state.clone(),
                addr.clone(),
                url.to_string(),
                config.heartbeat_interval,
            ))
        })
        .collect();
    let scrub = tokio::spawn(crate::scrub::run(
        state.clone(),
        config.scrub.clone(),
        config.coordinator.clone(),
        state.scrub.clone(),
    ));
    let reclaim = tokio::spawn(crate::reclaim::run(state.clone(), config.reclaim_interval));
    let r = run(listener, state, shutdown).await;
    for hb in hbs {
        hb.abort();
    }
    scrub.abort();
    reclaim.abort();
    tokio::task::spawn_blocking(move || store.flush())
        .await?
        .map_err(std::io::Error::other)?;
    r
}
