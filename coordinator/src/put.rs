//! The PUT data path: client body -> stripes -> k data + m parity pieces -> k+m node streams.
//!
//! A PUT is a small state machine: **pending** (an in-flight record is written before any
//! shard, so a crash leaves something to collect) -> **shards durable at quorum** (every node
//! stream that got all its pieces and an end frame answered with the shard's length) ->
//! **committed** (one synced metadata batch). Any exit before the commit, including the client
//! going away and the handler future being dropped, runs [`PutGuard`]'s drop, which turns the
//! in-flight record into garbage.
//!
//! Memory is bounded by the stripe being filled, the stripe being encoded and at most
//! [`QUEUE_STRIPES`] queued pieces per node stream, whatever the object size.

use crate::codec::{ErasureCodec, CODEC_NAME};
use crate::error::ApiError;
use crate::meta::{ObjectMeta, ShardLoc, ShardSet, ShardState};
use crate::names::{BucketName, EcSpec, ObjectKey};
use crate::placement::place;
use crate::server::Coordinator;
use axum::body::Body;
use axum::http::HeaderMap;
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_node::frame::{data_prefix, end_frame, header_frame, EndFrame};
use tessera_node::{NodeId, ObjectVersion, ShardHeader, ShardInfo, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Stripes up to this size are hashed and encoded on the runtime thread.
const INLINE_ENCODE: usize = 64 << 10;

/// Pieces queued per node stream before the PUT waits for that node.
pub const QUEUE_STRIPES: usize = 4;

/// What a successful PUT reports.
#[derive(Debug)]
pub struct PutOutcome {
    /// The committed metadata.
    pub meta: ObjectMeta,
}

/// Request parameters of a PUT, parsed from headers.
pub struct PutRequest {
    /// Bucket.
    pub bucket: BucketName,
    /// Key.
    pub key: ObjectKey,
    /// `x-tessera-ec`, if given.
    pub ec: Option<EcSpec>,
    /// `Content-Length`, if given (otherwise chunked).
    pub content_length: Option<u64>,
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `x-amz-meta-*`.
    pub user_meta: BTreeMap<String, String>,
}

impl PutRequest {
    /// Parses the headers of a PUT.
    pub fn from_headers(
        bucket: BucketName,
        key: ObjectKey,
        h: &HeaderMap,
    ) -> Result<Self, ApiError> {
        let ec = match h.get("x-tessera-ec") {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| {
                        ApiError::InvalidArgument(format!("bad x-tessera-ec {v:?}; expected K+M"))
                    })?,
            ),
            None => None,
        };
        let content_length = match h.get("content-length") {
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or_else(|| ApiError::InvalidArgument("bad Content-Length".into()))?,
            ),
            None => None,
        };
        let content_type = h
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let mut user_meta = BTreeMap::new();
        for (name, v) in h {
            if let Some(n) = name.as_str().strip_prefix("x-amz-meta-") {
                let v = v.to_str().map_err(|_| {
                    ApiError::InvalidArgument(format!("header {name} is not ASCII"))
                })?;
                user_meta.insert(n.to_string(), v.to_string());
            }
        }
        Ok(PutRequest {
            bucket,
            key,
            ec,
            content_length,
            content_type,
            user_meta,
        })
    }
}

/// Turns the in-flight record into garbage unless the PUT committed.
struct PutGuard {
    c: Arc<Coordinator>,
    version: ObjectVersion,
    set: ShardSet,
    committed: bool,
}

impl Drop for PutGuard {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let (meta, version, set) = (self.c.meta.clone(), self.version, self.set.clone());
        // Blocking metadata write, off the runtime; if the process dies first, startup
        // recovery turns the in-flight record into garbage instead.
        tokio::task::spawn_blocking(move || {
            if let Err(e) = meta.abort_put(version, &set) {
                tracing::warn!(%version, error = %e, "could not record aborted PUT as garbage");
            }
        });
        self.c.gc_kick.notify_one();
    }
}

/// One node stream of a PUT.
struct ShardStream {
    tx: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    task: JoinHandle<Result<ShardInfo, StoreError>>,
}

/// Runs a PUT: streams `body` to the nodes and commits the object.
pub async fn put_object(
    c: Arc<Coordinator>,
    req: PutRequest,
    body: Body,
) -> Result<PutOutcome, ApiError> {
    // Bucket lookup, placement and the in-flight record in one blocking call.
    let planned = {
        let (c2, bucket, key) = (c.clone(), req.bucket.to_string(), req.key.to_string());
        let (req_ec, content_length) = (req.ec, req.content_length);
        c.meta(move |m| {
            let b = m
                .bucket(&bucket)?
                .ok_or_else(|| ApiError::NoSuchBucket(bucket.clone()))?;
            let planned = plan(&c2, b.ec, req_ec, content_length, bucket, key)?;
            m.begin_put(planned.version, &planned.set)?;
            Ok(planned)
        })
        .await?
    };
    let Planned {
        ec,
        codec,
        w,
        version,
        nodes,
        set,
    } = planned;
    let piece = c.config.piece_size;
    let stripe_size = piece as usize * ec.k as usize;
    let header = |index: u16, object_length: u64| ShardHeader {
        bucket: req.bucket.to_string(),
        key: req.key.to_string(),
        version,
        shard_index: index,
        k: ec.k,
        m: ec.m,
        stripe_size: stripe_size as u64,
        object_length,
        codec: CODEC_NAME.into(),
        chunk_size: piece as u32,
        etag: None,
        content_type: req.content_type.clone(),
        user_meta: req.user_meta.clone(),
    };

    let mut guard = PutGuard {
        c: c.clone(),
        version,
        set,
        committed: false,
    };

    let batched = req
        .content_length
        .is_some_and(|l| l <= BATCH_BELOW && l <= stripe_size as u64);
    let Written {
        total,
        etag,
        outcomes,
    } = if batched {
        put_whole(&c, &req, body, &nodes, &codec, &header).await?
    } else {
        put_streamed(&c, &req, body, &nodes, &codec, w, &header).await?
    };
    // Shards acknowledged with the right length are `ok`, the rest `missing`.
    let shard_len = crate::layout::Layout {
        size: total,
        k: ec.k as u64,
        piece,
    }
    .shard_len();
    let mut durable = 0;
    let mut shards = Vec::with_capacity(nodes.len());
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let state = match outcome {
            Ok(info) if info.length == shard_len => {
                durable += 1;
                ShardState::Ok
            }
            other => {
                tracing::warn!(shard = i, node = %nodes[i], outcome = ?other, "shard write failed");
                ShardState::Missing
            }
        };
        shards.push(ShardLoc {
            node: Some(nodes[i].clone()),
            state,
        });
    }
    if durable < w {
        return Err(ApiError::ServiceUnavailable(format!(
            "only {durable} of {} shards were stored; {w} needed",
            nodes.len()
        )));
    }

    let meta = ObjectMeta {
        bucket: req.bucket.to_string(),
        key: req.key.to_string(),
        version,
        size: total,
        etag,
        ec,
        piece,
        codec: CODEC_NAME.into(),
        shards,
        content_type: req.content_type,
        user_meta: req.user_meta,
        last_modified_ms: crate::meta::now_ms(),
    };
    let m = meta.clone();
    let replaced = c.meta(move |s| s.commit_put(&m)).await?;
    guard.committed = true;
    if replaced.is_some() {
        c.gc_kick.notify_one();
    }
    Ok(PutOutcome { meta })
}

/// Where and how a PUT will write.
struct Planned {
    ec: EcSpec,
    codec: Arc<ErasureCodec>,
    w: usize,
    version: ObjectVersion,
    nodes: Vec<NodeId>,
    set: ShardSet,
}

/// Chooses the code (`x-tessera-ec`, else m+1 replicas for small objects, else the bucket's),
/// the quorum, a new version and its nodes. Fails if too few nodes are registered or up.
fn plan(
    c: &Coordinator,
    bucket_ec: EcSpec,
    req_ec: Option<EcSpec>,
    content_length: Option<u64>,
    bucket: String,
    key: String,
) -> Result<Planned, ApiError> {
    let small = content_length.is_some_and(|l| l < c.config.replicate_below);
    let ec = match req_ec {
        Some(ec) => ec,
        // Small objects: m+1 replicas cost one node write per copy instead of k+m pieces, and
        // a read needs one node instead of k.
        None if small && bucket_ec.k > 1 => EcSpec {
            k: 1,
            m: bucket_ec.m,
        },
        None => bucket_ec,
    };
    let n = ec.total();
    let registered = c.registry.registered();
    if n > registered {
        return Err(ApiError::InvalidArgument(format!(
            "erasure code {ec} needs {n} nodes but {registered} are registered"
        )));
    }
    let codec = Arc::new(
        ErasureCodec::new(ec.k as usize, ec.m as usize)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?,
    );
    let w = c.config.quorum(ec);
    let version = ObjectVersion::new();
    let nodes = place(&c.registry.candidates(), &version.to_bytes(), n);
    if nodes.len() < w {
        return Err(ApiError::ServiceUnavailable(format!(
            "{} storage nodes are up; a {ec} write needs {w}",
            nodes.len()
        )));
    }
    let set = ShardSet {
        bucket,
        key,
        shards: nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u16, n.clone()))
            .collect(),
        since_ms: crate::meta::now_ms(),
    };
    Ok(Planned {
        ec,
        codec,
        w,
        version,
        nodes,
        set,
    })
}

/// Objects up to this size (known from `Content-Length`, and within one stripe) are read
/// whole and their shards written through the per-node batches of [`crate::batch`].
pub const BATCH_BELOW: u64 = 64 << 10;

/// What the shard writes of a PUT did: the body's length and ETag, and each shard's answer.
struct Written {
    total: u64,
    etag: String,
    outcomes: Vec<Result<ShardInfo, StoreError>>,
}

/// Fails a body that has grown past its `Content-Length`.
fn check_not_over(total: u64, content_length: Option<u64>) -> Result<(), ApiError> {
    if content_length.is_some_and(|cl| total > cl) {
        return Err(ApiError::InvalidArgument(
            "body longer than Content-Length".into(),
        ));
    }
    Ok(())
}

/// Fails a body that ended short of its `Content-Length`.
fn check_complete(total: u64, content_length: Option<u64>) -> Result<(), ApiError> {
    match content_length {
        Some(cl) if total != cl => Err(ApiError::IncompleteBody(format!(
            "received {total} of {cl} bytes"
        ))),
        _ => Ok(()),
    }
}

/// A small PUT: reads the whole body, encodes its one stripe and writes each shard through
/// its node's batch queue.
async fn put_whole(
    c: &Arc<Coordinator>,
    req: &PutRequest,
    body: Body,
    nodes: &[NodeId],
    codec: &Arc<ErasureCodec>,
    header: &(impl Fn(u16, u64) -> ShardHeader + Sync),
) -> Result<Written, ApiError> {
    let cl = req
        .content_length
        .expect("batched PUTs have a Content-Length");
    let mut buf = BytesMut::with_capacity(cl as usize);
    let mut body = body.into_data_stream();
    while let Some(frame) = body.next().await {
        let frame = frame.map_err(|e| ApiError::IncompleteBody(e.to_string()))?;
        check_not_over((buf.len() + frame.len()) as u64, req.content_length)?;
        buf.extend_from_slice(&frame);
    }
    check_complete(buf.len() as u64, req.content_length)?;
    let etag = blake3::hash(&buf).to_hex().to_string();
    let pieces = if cl == 0 {
        vec![Bytes::new(); nodes.len()]
    } else {
        codec.encode(buf)
    };
    let timeout = c.config.shard_write_timeout;
    let writes = nodes
        .iter()
        .zip(pieces)
        .enumerate()
        .map(|(i, (node, piece))| {
            let mut h = header(i as u16, cl);
            h.etag = Some(etag.clone());
            let client = c
                .registry
                .client(node)
                .expect("placed nodes are registered");
            async move { c.batcher.put(&client, h, piece, timeout).await }
        });
    let outcomes = futures::future::join_all(writes).await;
    Ok(Written {
        total: cl,
        etag,
        outcomes,
    })
}

/// A PUT of any size: streams the body stripe by stripe to one upload per shard.
async fn put_streamed(
    c: &Arc<Coordinator>,
    req: &PutRequest,
    body: Body,
    nodes: &[NodeId],
    codec: &Arc<ErasureCodec>,
    w: usize,
    header: &(impl Fn(u16, u64) -> ShardHeader + Sync),
) -> Result<Written, ApiError> {
    let piece = c.config.piece_size;
    let stripe_size = piece as usize * codec.k();
    // Open one upload per placed shard.
    let mut streams: Vec<ShardStream> = Vec::with_capacity(nodes.len());
    for (i, node) in nodes.iter().enumerate() {
        let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(2 * QUEUE_STRIPES + 2);
        let client = c
            .registry
            .client(node)
            .expect("placed nodes are registered");
        let first = header(i as u16, 0);
        let id = first.shard_id();
        let frames =
            futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
        let task = tokio::spawn(async move { client.put_shard(id, frames).await });
        let _ = tx.send(Ok(header_frame(&first))).await;
        streams.push(ShardStream { tx: Some(tx), task });
    }

    // Read the body stripe by stripe.
    let mut pump = Pump {
        streams,
        codec: codec.clone(),
        hasher: Some(blake3::Hasher::new()),
        w,
        timeout: c.config.shard_write_timeout,
    };
    let mut stripe = BytesMut::with_capacity(stripe_size);
    let mut total: u64 = 0;
    let mut body = body.into_data_stream();
    while let Some(frame) = body.next().await {
        let mut frame = frame.map_err(|e| ApiError::IncompleteBody(e.to_string()))?;
        total += frame.len() as u64;
        check_not_over(total, req.content_length)?;
        while !frame.is_empty() {
            let take = (stripe_size - stripe.len()).min(frame.len());
            stripe.extend_from_slice(&frame.split_to(take));
            if stripe.len() == stripe_size {
                let full = std::mem::replace(&mut stripe, BytesMut::with_capacity(stripe_size));
                pump.send_stripe(full).await?;
            }
        }
    }
    check_complete(total, req.content_length)?;
    if !stripe.is_empty() {
        pump.send_stripe(stripe).await?;
    }
    let etag = pump.hasher.take().unwrap().finalize().to_hex().to_string();

    // Close every stream with its end frame and collect the acknowledgements.
    let shard_len = crate::layout::Layout {
        size: total,
        k: codec.k() as u64,
        piece,
    }
    .shard_len();
    let mut outcomes = Vec::with_capacity(nodes.len());
    for (i, s) in pump.streams.into_iter().enumerate() {
        if let Some(tx) = s.tx {
            let mut final_header = header(i as u16, total);
            final_header.etag = Some(etag.clone());
            let end = EndFrame {
                header: final_header,
                length: shard_len,
            };
            let _ = tx.send(Ok(end_frame(&end))).await;
        }
        outcomes.push(
            match tokio::time::timeout(c.config.shard_write_timeout, s.task).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => Err(StoreError::Io(format!("shard upload task: {e}"))),
                Err(_) => Err(StoreError::Unavailable("shard upload timed out".into())),
            },
        );
    }
    Ok(Written {
        total,
        etag,
        outcomes,
    })
}

/// Encodes stripes and hands their pieces to the node streams.
struct Pump {
    streams: Vec<ShardStream>,
    codec: Arc<ErasureCodec>,
    hasher: Option<blake3::Hasher>,
    w: usize,
    timeout: std::time::Duration,
}

impl Pump {
    async fn send_stripe(&mut self, stripe: BytesMut) -> Result<(), ApiError> {
        let codec = self.codec.clone();
        let mut hasher = self.hasher.take().expect("hasher present between stripes");
        let stripe_len = stripe.len();
        // Hashing and encoding are CPU work: off the async runtime, in one pass while the
        // stripe is in cache. A small stripe takes microseconds, less than the hand-off.
        let work = move || {
            hasher.update(&stripe);
            let pieces = codec.encode(stripe);
            (hasher, pieces)
        };
        let (hasher, pieces) = if stripe_len <= INLINE_ENCODE {
            work()
        } else {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| ApiError::Internal(format!("encode task: {e}")))?
        };
        self.hasher = Some(hasher);
        for (i, piece) in pieces.into_iter().enumerate().take(self.streams.len()) {
            let Some(tx) = &self.streams[i].tx else {
                continue;
            };
            let send = async {
                tx.send(Ok(data_prefix(piece.len()))).await?;
                tx.send(Ok(piece)).await
            };
            match tokio::time::timeout(self.timeout, send).await {
                Ok(Ok(())) => {}
                // The upload ended early (node error) or stalled: this shard is lost for this
                // PUT; dropping the sender without an end frame makes the node discard it.
                _ => {
                    tracing::warn!(shard = i, "node stream failed during PUT");
                    self.streams[i].tx = None;
                }
            }
        }
        let live = self.streams.iter().filter(|s| s.tx.is_some()).count();
        if live < self.w {
            return Err(ApiError::ServiceUnavailable(format!(
                "only {live} shard streams are still writing; {} needed",
                self.w
            )));
        }
        Ok(())
    }
}
