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
//! [`QUEUE_STRIPES`] queued pieces per node stream ([`crate::data::upload`]), whatever the
//! object size.

use super::write::{at_quorum, check_registered, plan, put_batched, Planned, PutGuard};
use super::DataPath;
use crate::codec::{ErasureCodec, CODEC_NAME};
use crate::data::pack::{self, Inbound};
use crate::data::upload::{NodeStreams, QUEUE_STRIPES};
use crate::error::ApiError;
use crate::meta::journal::is_reserved;
use crate::meta::{Acl, BucketMeta, ObjectMeta, Part, Precondition};
use crate::names::{BucketName, EcSpec, ObjectKey};
use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt};
use md5::{Digest, Md5};
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_node::frame::EndFrame;
use tessera_node::{NodeId, ObjectVersion, ShardHeader, ShardInfo, ShardRole, StoreError};
use tokio::sync::mpsc;

/// Stripes up to this size are hashed and encoded on the runtime thread.
const INLINE_ENCODE: usize = 64 << 10;

/// Where an object goes and what it carries besides its bytes.
pub struct PutRequest {
    /// Bucket.
    pub bucket: BucketName,
    /// Key.
    pub key: ObjectKey,
    /// Erasure code asked for (`x-tessera-ec`, or an upload's), if any.
    pub ec: Option<EcSpec>,
    /// Length announced by the client, if any (otherwise the stream decides).
    pub content_length: Option<u64>,
    /// Content type, user metadata and other stored headers.
    pub attrs: ObjectAttrs,
    /// What the bytes are: a whole object, a part of an upload, a manifest.
    pub role: ShardRole,
}

/// What is stored with an object besides its bytes.
#[derive(Clone, Debug, Default)]
pub struct ObjectAttrs {
    /// Content-Type.
    pub content_type: Option<String>,
    /// User metadata (names lowercased, without any prefix).
    pub user_meta: BTreeMap<String, String>,
    /// Other stored headers by lowercase name.
    pub headers: BTreeMap<String, String>,
    /// The object's ACL (`None`: its writer's full control).
    pub acl: Option<Acl>,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Object lock retention.
    pub retention: Option<crate::meta::Retention>,
    /// Object lock legal hold.
    pub legal_hold: bool,
}

/// Something that sees every body byte in order (checksums the caller wants besides the
/// MD5 this module always computes). It runs on a hashing thread beside the encoder.
pub trait BodyDigest: Send + 'static {
    /// Feeds the next bytes.
    fn update(&mut self, data: &[u8]);

    /// After the last byte: the checksums to record in the shards' end frames (algorithm ->
    /// value as S3 clients see it), so that a metadata rebuild restores them.
    fn finish(&mut self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

impl BodyDigest for () {
    fn update(&mut self, _: &[u8]) {}
}

/// A write whose shards are durable at the write quorum but not yet visible: commit it with
/// [`Staged::commit`] (a whole object), [`Staged::commit_part`] (a part of an upload) or
/// [`Staged::commit_with`], or drop it (its shards become garbage).
pub struct Staged<D> {
    guard: Option<PutGuard>,
    /// A small object to pack into a segment at its commit: its code, bytes and the mark
    /// that it is on its way to the packer.
    packed: Option<(EcSpec, Bytes, Inbound)>,
    c: Arc<DataPath>,
    bucket: String,
    key: String,
    attrs: ObjectAttrs,
    /// What was written (ETag = MD5 of the bytes, hex); set its checksums before committing.
    pub part: Part,
    /// The caller's digest, fed every body byte.
    pub digest: D,
}

impl<D> Staged<D> {
    /// The commit point of a single PUT: makes the object visible if `cond` holds at that
    /// moment (checked atomically with the commit), the replaced version becoming garbage.
    pub async fn commit(self, cond: Precondition) -> Result<ObjectMeta, ApiError> {
        let obj = ObjectMeta {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version: self.part.version,
            size: self.part.size,
            etag: self.part.etag.clone(),
            // A packed object's bytes are in its segment (the packer says where).
            parts: match self.packed {
                Some(_) => Vec::new(),
                None => vec![self.part.clone()],
            },
            manifest: None,
            upload: None,
            content_type: self.attrs.content_type.clone(),
            user_meta: self.attrs.user_meta.clone(),
            headers: self.attrs.headers.clone(),
            checksums: self.part.checksums.clone(),
            checksum_type: None,
            last_modified_ms: crate::meta::now_ms(),
            packed: None,
            fill: None,
            acl: self.attrs.acl.clone(),
            seq: None,
            null_version: false,
            delete_marker: false,
            tags: self.attrs.tags.clone(),
            retention: self.attrs.retention.clone(),
            legal_hold: self.attrs.legal_hold,
        };
        if let Some((ec, data, inbound)) = self.packed {
            return self
                .c
                .packer
                .commit(&self.c, ec, obj, data, cond, inbound)
                .await;
        }
        let meta = self.c.meta.clone();
        self.commit_with(meta.commit_put(obj, cond)).await
    }

    /// The commit point of part `self.part.number` of upload `upload`.
    pub async fn commit_part(self, upload: ObjectVersion) -> Result<Part, ApiError> {
        let meta = self.c.meta.clone();
        let part = self.part.clone();
        let commit = meta.commit_part(self.bucket.clone(), self.key.clone(), upload, part.clone());
        self.commit_with(commit).await?;
        Ok(part)
    }

    /// This write's in-flight record was removed by the commit of another one that covers it
    /// (a recoded multipart object commits its parts with its manifest): nothing to abort.
    pub fn settled(mut self) -> Part {
        if let Some(g) = &mut self.guard {
            g.committed = true;
        }
        self.part.clone()
    }

    /// Awaits `commit` (one metadata operation that makes the written part referenced and
    /// removes its in-flight record: [`crate::meta::Metadata::commit_put`], [`crate::meta::Metadata::commit_part`],
    /// [`crate::meta::Metadata::complete_upload`]); if it succeeds, the shards are no longer this write's
    /// to clean up. Whatever it replaced is garbage: the collector is woken.
    pub async fn commit_with<T, E: Into<ApiError>>(
        mut self,
        commit: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, ApiError> {
        let Some(guard) = &mut self.guard else {
            return Err(ApiError::Internal(
                "a packed object commits through its segment".into(),
            ));
        };
        let out = commit.await.map_err(Into::into)?;
        guard.committed = true;
        self.c.gc_kick.notify_one();
        Ok(out)
    }
}

/// Writes `body` as the shards of a new version of `req.key` and waits until they are
/// durable at the write quorum. Nothing is visible until [`Staged::commit`].
pub async fn write_object<S, D>(
    c: Arc<DataPath>,
    req: PutRequest,
    body: S,
    digest: D,
) -> Result<Staged<D>, ApiError>
where
    S: Stream<Item = Result<Bytes, ApiError>> + Send + Unpin,
    D: BodyDigest,
{
    // Bucket lookup, placement, then the in-flight record before any shard is written. The
    // bucket as this coordinator last applied it is enough when it is there (its code and
    // settings never change, and the commit checks again that it still exists); only a
    // bucket not seen yet needs the linearizable lookup (it may have just been created
    // through another coordinator).
    let (bucket, key) = (req.bucket.to_string(), req.key.to_string());
    let b = match c.meta.bucket_applied(bucket.clone()).await? {
        Some(b) => b,
        // The reserved buckets have no record (the journal's objects are written this way).
        None if is_reserved(&bucket) => BucketMeta::new(&bucket, 0, c.config.default_ec, None),
        None => c
            .meta
            .bucket(bucket.clone())
            .await?
            .ok_or_else(|| ApiError::NoSuchBucket(bucket.clone()))?,
    };
    let replicate_below = b.replicate_below.unwrap_or(c.config.replicate_below);
    if let (ShardRole::Object, None, Some(len)) = (req.role, req.ec, req.content_length) {
        if pack::packable(&c, b.ec, replicate_below, len) {
            return stage_packed(c, req, b.ec, body, digest).await;
        }
    }
    let replicate = req.content_length.is_some_and(|l| l < replicate_below);
    let version = ObjectVersion::new();
    let Planned {
        ec,
        codec,
        w,
        nodes,
        set,
    } = plan(&c, b.ec, req.ec, replicate, version, bucket, key)?;
    // From here on the guard aborts the write unless it commits, also when recording it
    // fails: the record may exist all the same (an answer lost during a leader change).
    let guard = PutGuard {
        c: c.clone(),
        version,
        set: set.clone(),
        committed: false,
    };
    c.meta.begin_put(version, set).await?;
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
        checksums: BTreeMap::new(),
        content_type: req.attrs.content_type.clone(),
        user_meta: req.attrs.user_meta.clone(),
        headers: req.attrs.headers.clone(),
        role: req.role,
        retention: req
            .attrs
            .retention
            .as_ref()
            .map(|r| (r.mode.clone(), r.until_ms)),
        legal_hold: req.attrs.legal_hold,
        tags: req.attrs.tags.clone(),
    };

    let batched = req
        .content_length
        .is_some_and(|l| l <= BATCH_BELOW && l <= stripe_size as u64);
    let Written {
        total,
        etag,
        outcomes,
        digest,
    } = if batched {
        put_whole(&c, &req, body, &nodes, &codec, &header, digest).await?
    } else {
        put_streamed(&c, &req, body, &nodes, &codec, w, &header, digest).await?
    };
    // Shards acknowledged with the right length are `ok`, the rest `missing`.
    let geometry = crate::layout::Layout {
        size: total,
        k: ec.k as u64,
        piece,
    };
    let shard_len = geometry.shard_len();
    c.metrics.received_bytes.inc_by(total);
    c.metrics.stripes("encoded", geometry.stripes());
    let shards = at_quorum(
        &c,
        (req.bucket.as_str(), req.key.as_str()),
        ec.total(),
        &nodes,
        outcomes,
        shard_len,
        w,
    )?;

    let part = Part {
        number: match req.role {
            ShardRole::Object => 1,
            ShardRole::Part { number, .. } => number,
            ShardRole::Manifest { .. } => 0,
        },
        version,
        size: total,
        etag,
        ec,
        piece,
        codec: CODEC_NAME.into(),
        shards,
        checksums: BTreeMap::new(),
        written_ms: crate::meta::now_ms(),
    };
    Ok(Staged {
        guard: Some(guard),
        packed: None,
        c,
        bucket: req.bucket.to_string(),
        key: req.key.to_string(),
        attrs: req.attrs,
        part,
        digest,
    })
}

/// Objects up to this size (known from `Content-Length`, and within one stripe) are read
/// whole and their shards written through the per-node batches of [`crate::data::batch`].
pub const BATCH_BELOW: u64 = 64 << 10;

/// What the shard writes of a PUT did: the body's length and ETag, each shard's answer, and
/// the caller's digest.
struct Written<D> {
    total: u64,
    etag: String,
    outcomes: Vec<Result<ShardInfo, StoreError>>,
    digest: D,
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

/// Reads a body of `len` bytes whole (IncompleteBody if it ends short, InvalidArgument if
/// it goes on).
async fn read_whole(
    body: &mut (impl Stream<Item = Result<Bytes, ApiError>> + Unpin),
    len: u64,
) -> Result<BytesMut, ApiError> {
    let mut buf = BytesMut::with_capacity(len as usize);
    while let Some(frame) = body.next().await {
        let frame = frame?;
        check_not_over((buf.len() + frame.len()) as u64, Some(len))?;
        buf.extend_from_slice(&frame);
    }
    check_complete(buf.len() as u64, Some(len))?;
    Ok(buf)
}

/// A PUT to pack into a segment ([`pack`]): the body read whole and hashed, staged until
/// its commit hands it to the packer.
async fn stage_packed<D: BodyDigest>(
    c: Arc<DataPath>,
    req: PutRequest,
    ec: EcSpec,
    mut body: impl Stream<Item = Result<Bytes, ApiError>> + Unpin,
    mut digest: D,
) -> Result<Staged<D>, ApiError> {
    check_registered(&c, ec)?;
    let inbound = Inbound::new(&c);
    let len = req
        .content_length
        .expect("packed PUTs have a Content-Length");
    let buf = read_whole(&mut body, len).await?.freeze();
    digest.update(&buf);
    let etag = hex::encode(Md5::digest(&buf));
    c.metrics.received_bytes.inc_by(len);
    let part = Part {
        number: 1,
        version: ObjectVersion::new(),
        size: len,
        etag,
        ec,
        piece: 0,
        codec: CODEC_NAME.into(),
        shards: Vec::new(),
        checksums: BTreeMap::new(),
        written_ms: crate::meta::now_ms(),
    };
    Ok(Staged {
        guard: None,
        packed: Some((ec, buf, inbound)),
        c,
        bucket: req.bucket.to_string(),
        key: req.key.to_string(),
        attrs: req.attrs,
        part,
        digest,
    })
}

/// A small PUT: reads the whole body, encodes its one stripe and writes each shard through
/// its node's batch queue.
async fn put_whole<D: BodyDigest>(
    c: &Arc<DataPath>,
    req: &PutRequest,
    mut body: impl Stream<Item = Result<Bytes, ApiError>> + Unpin,
    nodes: &[NodeId],
    codec: &Arc<ErasureCodec>,
    header: &(impl Fn(u16, u64) -> ShardHeader + Sync),
    mut digest: D,
) -> Result<Written<D>, ApiError> {
    let cl = req
        .content_length
        .expect("batched PUTs have a Content-Length");
    let buf = read_whole(&mut body, cl).await?;
    digest.update(&buf);
    let checksums = digest.finish();
    let etag = hex::encode(Md5::digest(&buf));
    let pieces = if cl == 0 {
        vec![Bytes::new(); nodes.len()]
    } else {
        codec.encode(buf)
    };
    let outcomes = put_batched(c, nodes, pieces, |i| {
        let mut h = header(i, cl);
        h.etag = Some(etag.clone());
        h.checksums = checksums.clone();
        h
    })
    .await;
    Ok(Written {
        total: cl,
        etag,
        outcomes,
        digest,
    })
}

/// A PUT of any size: streams the body stripe by stripe to one upload per shard.
#[allow(clippy::too_many_arguments)]
async fn put_streamed<D: BodyDigest>(
    c: &Arc<DataPath>,
    req: &PutRequest,
    mut body: impl Stream<Item = Result<Bytes, ApiError>> + Unpin,
    nodes: &[NodeId],
    codec: &Arc<ErasureCodec>,
    w: usize,
    header: &(impl Fn(u16, u64) -> ShardHeader + Sync),
    digest: D,
) -> Result<Written<D>, ApiError> {
    let piece = c.config.piece_size;
    let stripe_size = piece as usize * codec.k();
    // One upload per placed shard.
    let targets: Vec<(u16, NodeId)> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i as u16, n.clone()))
        .collect();
    let streams = NodeStreams::open(c, &targets, |i| header(i, 0)).await?;

    // Read the body stripe by stripe.
    let mut pump = Pump {
        streams,
        codec: codec.clone(),
        hashing: Hashing::start(digest),
        w,
    };
    let mut stripe = BytesMut::with_capacity(stripe_size);
    let mut total: u64 = 0;
    while let Some(frame) = body.next().await {
        let mut frame = frame?;
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
    let (etag, checksums, digest) = pump.hashing.finish().await?;

    // Close every stream with its end frame and collect the acknowledgements.
    let shard_len = crate::layout::Layout {
        size: total,
        k: codec.k() as u64,
        piece,
    }
    .shard_len();
    let outcomes = pump
        .streams
        .finish(|i| {
            let mut header = header(i, total);
            header.etag = Some(etag.clone());
            header.checksums = checksums.clone();
            EndFrame {
                header,
                length: shard_len,
            }
        })
        .await
        .into_iter()
        .map(|(_, outcome)| outcome)
        .collect();
    Ok(Written {
        total,
        etag,
        outcomes,
        digest,
    })
}

/// The body's MD5 (the ETag) and the caller's digest, computed on a blocking thread of their
/// own so that hashing one stripe overlaps with encoding it.
struct Hashing<D> {
    tx: mpsc::Sender<Bytes>,
    /// MD5 (hex), the digest's checksums and the digest.
    done: tokio::sync::oneshot::Receiver<(String, BTreeMap<String, String>, D)>,
}

impl<D: BodyDigest> Hashing<D> {
    fn start(mut digest: D) -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE_STRIPES);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut md5 = Md5::new();
            while let Some(b) = rx.blocking_recv() {
                md5.update(&b);
                digest.update(&b);
            }
            let checksums = digest.finish();
            let _ = done_tx.send((hex::encode(md5.finalize()), checksums, digest));
        });
        Hashing { tx, done }
    }

    async fn feed(&self, b: Bytes) -> Result<(), ApiError> {
        self.tx
            .send(b)
            .await
            .map_err(|_| ApiError::Internal("hashing thread ended".into()))
    }

    async fn finish(self) -> Result<(String, BTreeMap<String, String>, D), ApiError> {
        drop(self.tx);
        self.done
            .await
            .map_err(|_| ApiError::Internal("hashing thread ended".into()))
    }
}

/// Encodes stripes and hands their pieces to the node streams.
struct Pump<D> {
    streams: NodeStreams,
    codec: Arc<ErasureCodec>,
    hashing: Hashing<D>,
    w: usize,
}

impl<D: BodyDigest> Pump<D> {
    async fn send_stripe(&mut self, stripe: BytesMut) -> Result<(), ApiError> {
        let codec = self.codec.clone();
        let stripe = stripe.freeze();
        let stripe_len = stripe.len();
        // Hashing runs on its own thread (fed here, in order); encoding is CPU work off the
        // async runtime. A small stripe takes microseconds, less than the hand-off.
        self.hashing.feed(stripe.clone()).await?;
        let work = move || codec.encode_frozen(stripe);
        let pieces = if stripe_len <= INLINE_ENCODE {
            work()
        } else {
            tokio::task::spawn_blocking(work)
                .await
                .map_err(|e| ApiError::Internal(format!("encode task: {e}")))?
        };
        let live = self.streams.send(&pieces).await;
        if live < self.w {
            return Err(ApiError::ServiceUnavailable(format!(
                "only {live} shard streams are still writing; {} needed",
                self.w
            )));
        }
        Ok(())
    }
}
