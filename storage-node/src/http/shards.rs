//! The shard routes: write (streamed frames, or a batch of whole shards), read, stat, list,
//! delete, and the switch to raw reads.

use super::{blocking, shard_id, Result};
use crate::error::StoreError;
use crate::frame::{EndFrame, Frame, FrameParser};
use crate::state::NodeState;
use crate::store::{ShardWriter, WholeShard};
use crate::types::{BatchOutcome, ShardInfo};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use futures::StreamExt;
use serde::Deserialize;

#[derive(Deserialize)]
pub(super) struct ListParams {
    after: Option<String>,
    limit: Option<usize>,
}

pub(super) async fn list(
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

pub(super) async fn info(
    State(st): State<NodeState>,
    Path((v, i)): Path<(String, String)>,
) -> Result<Json<ShardInfo>> {
    let id = shard_id(&v, &i)?;
    Ok(Json(blocking(move || st.store.stat(id)).await?))
}

pub(super) async fn delete(
    State(st): State<NodeState>,
    Path((v, i)): Path<(String, String)>,
) -> Result<StatusCode> {
    let id = shard_id(&v, &i)?;
    blocking(move || st.store.delete(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub(super) struct ReadParams {
    offset: Option<u64>,
    len: Option<u64>,
}

/// Bytes read and verified per blocking call when streaming a long range.
const READ_BATCH: u64 = 1 << 20;

pub(super) async fn read(
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
pub(super) async fn raw(State(st): State<NodeState>, mut req: axum::extract::Request) -> Response {
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
            Ok(up) => crate::raw::serve::serve(st, up).await,
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
pub(super) async fn put_batch(
    State(st): State<NodeState>,
    body: Body,
) -> Result<Json<Vec<BatchOutcome>>> {
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

pub(super) async fn put(
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
