//! The stripe reader GET and repair share: for each stripe, k verified pieces of one part.
//!
//! Pieces come from the data shards when they answer (no decoding); when one is missing,
//! corrupt, slow or on a down node, more shards are asked for and the first k that verify
//! are decoded. A shard found missing or corrupt is reported for repair at once.

use super::DataPath;
use crate::codec::ErasureCodec;
use crate::error::ApiError;
use crate::layout::Layout;
use crate::meta::ObjectMeta;
use crate::meta::{Part, ShardState};
use bytes::Bytes;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::Stream;
use std::sync::Arc;
use tessera_node::{NodeClient, ShardId, StoreError};

/// Bytes kept as the chunks they arrived in from a node (not copied into one buffer).
#[derive(Clone, Debug, Default)]
pub struct Chunks(pub Vec<Bytes>);

impl Chunks {
    /// `[a, b)` as slices of the chunks (no copy).
    pub fn slice(&self, a: usize, b: usize) -> Chunks {
        let mut out = Vec::new();
        let mut pos = 0;
        for c in &self.0 {
            let (c0, c1) = (pos, pos + c.len());
            pos = c1;
            let (x, y) = (a.max(c0), b.min(c1));
            if x < y {
                out.push(c.slice(x - c0..y - c0));
            }
            if c1 >= b {
                break;
            }
        }
        Chunks(out)
    }

    /// One contiguous buffer (a copy only when there is more than one chunk).
    pub fn contiguous(self) -> Bytes {
        match self.0.len() {
            1 => self.0.into_iter().next().expect("one chunk"),
            _ => self.0.concat().into(),
        }
    }
}

impl From<Bytes> for Chunks {
    fn from(b: Bytes) -> Self {
        Chunks(vec![b])
    }
}

/// Reads stripes of one part (a single PUT's body is one part).
pub struct StripeReader {
    c: Arc<DataPath>,
    bucket: String,
    key: String,
    part: Part,
    layout: Layout,
    codec: Arc<ErasureCodec>,
    /// Shard indices in the order to try them: data then parity on up nodes, then shards on
    /// nodes that are down (they may be back before the registry knows).
    order: Vec<(usize, NodeClient)>,
}

impl StripeReader {
    /// A reader for `part` of `bucket`/`key` using the registry's current view of the nodes.
    pub fn new(c: Arc<DataPath>, bucket: &str, key: &str, part: &Part) -> Result<Self, ApiError> {
        Self::excluding(c, bucket, key, part, &[])
    }

    /// A reader that never asks the shards in `skip` (known lost or corrupt).
    pub fn excluding(
        c: Arc<DataPath>,
        bucket: &str,
        key: &str,
        part: &Part,
        skip: &[usize],
    ) -> Result<Self, ApiError> {
        let codec = ErasureCodec::for_recorded(&part.codec, part.ec.k as usize, part.ec.m as usize)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let mut up = Vec::new();
        let mut down = Vec::new();
        for (i, s) in part.shards.iter().enumerate() {
            let (Some(node), ShardState::Ok) = (&s.node, s.state) else {
                continue;
            };
            if skip.contains(&i) {
                continue;
            }
            let Some(client) = c.registry.client(node) else {
                continue;
            };
            if c.registry.up(node) {
                up.push((i, client));
            } else {
                down.push((i, client));
            }
        }
        up.extend(down);
        Ok(StripeReader {
            layout: part.layout(),
            c,
            bucket: bucket.to_string(),
            key: key.to_string(),
            part: part.clone(),
            codec: Arc::new(codec),
            order: up,
        })
    }

    /// Object bytes of stripes `stripes`, `[from, to)` of each stripe `s` where
    /// `(from, to) = span(s)` (offsets within the stripe), as slices of the decoded pieces.
    /// Each shard is read with one request for the whole group (a shard holds its pieces of
    /// consecutive stripes back to back).
    pub async fn fetch_group(
        &self,
        stripes: std::ops::Range<u64>,
        span: impl Fn(u64) -> (u64, u64),
    ) -> Result<Vec<Bytes>, ApiError> {
        let got = self.fetch_any_k(stripes.clone()).await?;
        let k = self.codec.k();
        let base = self.layout.shard_offset(stripes.start);
        // Per stripe, the pieces it has (slices of the group reads).
        let per_stripe: Vec<Vec<Option<Chunks>>> = stripes
            .clone()
            .map(|s| {
                let off = (self.layout.shard_offset(s) - base) as usize;
                let len = self.layout.piece_len(s) as usize;
                got.iter()
                    .map(|c| c.as_ref().map(|c| c.slice(off, off + len)))
                    .collect()
            })
            .collect();
        let n_stripes = stripes.end - stripes.start;
        let decoded: Vec<Vec<Chunks>> = if got[..k].iter().all(|p| p.is_some()) {
            self.c.metrics.stripes("read", n_stripes);
            // Healthy: the data pieces are forwarded as they arrived, without a copy.
            per_stripe
                .into_iter()
                .map(|p| p.into_iter().take(k).flatten().collect())
                .collect()
        } else {
            self.c.metrics.stripes("reconstructed", n_stripes);
            self.c.metrics.degraded_reads.inc();
            let codec = self.codec.clone();
            tokio::task::spawn_blocking(move || {
                per_stripe
                    .into_iter()
                    .map(|p| {
                        let pieces = p.into_iter().map(|c| c.map(Chunks::contiguous)).collect();
                        codec
                            .reconstruct_data(pieces)
                            .map(|d| d.into_iter().map(Chunks::from).collect())
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?
        };
        let mut out = Vec::new();
        for (s, pieces) in stripes.zip(decoded) {
            let (from, to) = span(s);
            let plen = self.layout.piece_len(s);
            for (i, p) in pieces.into_iter().enumerate() {
                let (p0, p1) = (i as u64 * plen, (i as u64 + 1) * plen);
                let (a, b) = (from.max(p0), to.min(p1));
                if a < b {
                    out.extend(p.slice((a - p0) as usize, (b - p0) as usize).0);
                }
            }
        }
        Ok(out)
    }

    /// All `k + m` pieces of stripe `s` (for repair), and how many bytes were read.
    pub async fn fetch_all(&self, s: u64) -> Result<(Vec<Bytes>, u64), ApiError> {
        let got: Vec<Option<Bytes>> = self
            .fetch_any_k(s..s + 1)
            .await?
            .into_iter()
            .map(|c| c.map(Chunks::contiguous))
            .collect();
        let read = got.iter().flatten().map(|b| b.len() as u64).sum();
        let codec = self.codec.clone();
        let all = tokio::task::spawn_blocking(move || codec.reconstruct_all(got))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?;
        Ok((all, read))
    }

    /// Stripe geometry of the object.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The k data pieces' bytes `[offset, offset + len)` (the same columns of every data
    /// shard), read from any k shards and decoded if a data shard is not among them.
    pub async fn fetch_columns(&self, offset: u64, len: u64) -> Result<Vec<Bytes>, ApiError> {
        let got = self.fetch_span(offset, len, 0).await?;
        let codec = self.codec.clone();
        let pieces: Vec<Option<Bytes>> =
            got.into_iter().map(|c| c.map(Chunks::contiguous)).collect();
        tokio::task::spawn_blocking(move || codec.reconstruct_data(pieces))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::ServiceUnavailable(e.to_string()))
    }

    /// Any k verified shards' bytes for stripes `stripes` (`None` for the other shards).
    async fn fetch_any_k(
        &self,
        stripes: std::ops::Range<u64>,
    ) -> Result<Vec<Option<Chunks>>, ApiError> {
        let s = stripes.start;
        let offset = self.layout.shard_offset(s);
        let len = stripes.map(|s| self.layout.piece_len(s)).sum();
        self.fetch_span(offset, len, s).await
    }

    /// Any k verified shards' bytes `[offset, offset + len)` (`None` for the other shards);
    /// `s` is the first stripe they hold (for messages).
    async fn fetch_span(
        &self,
        offset: u64,
        len: u64,
        s: u64,
    ) -> Result<Vec<Option<Chunks>>, ApiError> {
        let k = self.codec.k();
        let n = self.part.shards.len();
        let timeout = self.c.config.shard_read_timeout;
        let version = self.part.version;
        let read = |(i, client): &(usize, NodeClient)| {
            let (i, client) = (*i, client.clone());
            async move {
                let id = ShardId {
                    version,
                    index: i as u16,
                };
                (i, client.read_verified(id, offset, len, timeout).await)
            }
        };
        let mut next = 0;
        let mut inflight = FuturesUnordered::new();
        while next < self.order.len() && inflight.len() < k {
            inflight.push(read(&self.order[next]));
            next += 1;
        }
        let mut got: Vec<Option<Chunks>> = vec![None; n];
        let mut have = 0;
        let mut failures = Vec::new();
        while have < k {
            let hedge = tokio::time::sleep(self.c.config.read_hedge_after);
            tokio::select! {
                r = inflight.next(), if !inflight.is_empty() => {
                    let (i, r) = r.expect("non-empty");
                    match r {
                        Ok(b) => {
                            got[i] = Some(Chunks(b));
                            have += 1;
                        }
                        Err(e) => {
                            if let Some(node) = &self.part.shards[i].node {
                                self.c.metrics.shard_error(node.as_str(), "read");
                            }
                            if matches!(e, StoreError::Corrupt(_) | StoreError::NotFound(_)) {
                                // Read-repair: queue the object now; this read goes on with
                                // the other shards.
                                let corrupt = matches!(e, StoreError::Corrupt(_));
                                tracing::warn!(object = %self.key, shard = i, stripe = s, corrupt, "damaged shard found by a read");
                                let id = ShardId { version: self.part.version, index: i as u16 };
                                self.c.damage.report_damage(&self.bucket, &self.key, id, corrupt);
                            }
                            failures.push(format!("shard {i}: {e}"));
                            if next < self.order.len() {
                                inflight.push(read(&self.order[next]));
                                next += 1;
                            }
                        }
                    }
                }
                _ = hedge, if next < self.order.len() => {
                    // A read is slow: ask one more shard, keep the first k that arrive.
                    inflight.push(read(&self.order[next]));
                    next += 1;
                }
                else => break,
            }
        }
        if have < k {
            return Err(ApiError::ServiceUnavailable(format!(
                "{}/{} part {}: stripe {s} has {have} readable shards, {k} needed ({})",
                self.bucket,
                self.key,
                self.part.number,
                failures.join("; ")
            )));
        }
        Ok(got)
    }
}

/// An inclusive byte range of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// Last byte (inclusive).
    pub end: u64,
}

/// Streams object bytes `range` (inclusive). The first stripe is fetched before this returns.
pub async fn stream_range(
    reader: Arc<StripeReader>,
    range: ByteRange,
    read_ahead: usize,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send, ApiError> {
    let layout = reader.layout();
    let ss = layout.stripe_size();
    let (s0, s1) = (layout.stripe_of(range.start), layout.stripe_of(range.end));
    let span = move |s: u64| {
        let base = s * ss;
        let from = range.start.max(base) - base;
        let to = (range.end + 1).min(base + layout.stripe_len(s)) - base;
        (from, to)
    };
    // Stripes are fetched in groups of `read_ahead / 2`, two groups at a time: the same bytes
    // in flight as `read_ahead` single stripes, in half the node requests (BENCHMARKS.md).
    let group = (read_ahead as u64 / 2).max(1);
    let first_end = (s0 + 1).max((s0 / group + 1) * group).min(s1 + 1);
    let first = reader.fetch_group(s0..first_end, span).await?;
    let starts: Vec<u64> = (first_end..=s1).step_by(group as usize).collect();
    let rest = futures::stream::iter(starts)
        .map(move |g| {
            let r = reader.clone();
            async move { r.fetch_group(g..(g + group).min(s1 + 1), span).await }
        })
        .buffered(2);
    let all = futures::stream::once(async move { Ok(first) }).chain(rest);
    Ok(all.flat_map(|r| {
        let items: Vec<Result<Bytes, std::io::Error>> = match r {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "aborting GET body");
                vec![Err(std::io::Error::other(e.to_string()))]
            }
        };
        futures::stream::iter(items)
    }))
}

/// Streams bytes `range` (inclusive) of the striped object `obj`, part after part. The
/// first stripe is fetched before this returns; each later part's reader is set up when the
/// stream reaches it.
pub async fn stream_striped(
    c: Arc<DataPath>,
    obj: &ObjectMeta,
    range: ByteRange,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ApiError> {
    let read_ahead = c.config.read_ahead;
    // (part, range within the part) for every part the range touches.
    let mut pieces = Vec::new();
    let mut base = 0u64;
    for p in &obj.parts {
        let (a, b) = (base, base + p.size);
        base = b;
        if p.size == 0 || range.end < a || range.start >= b {
            continue;
        }
        let local = ByteRange {
            start: range.start.max(a) - a,
            end: range.end.min(b - 1) - a,
        };
        pieces.push((p.clone(), local));
    }
    let (bucket, key) = (obj.bucket.clone(), obj.key.clone());
    let mut pieces = pieces.into_iter();
    let Some((p0, r0)) = pieces.next() else {
        return Ok(futures::stream::empty().boxed());
    };
    let reader = Arc::new(StripeReader::new(c.clone(), &bucket, &key, &p0)?);
    let first = stream_range(reader, r0, read_ahead).await?;
    let rest = futures::stream::iter(pieces)
        .map(move |(p, r)| {
            let (c, bucket, key) = (c.clone(), bucket.clone(), key.clone());
            async move {
                let reader = Arc::new(StripeReader::new(c, &bucket, &key, &p)?);
                stream_range(reader, r, read_ahead).await
            }
        })
        .then(|f| f)
        .flat_map(|r| match r {
            Ok(s) => s.boxed(),
            Err(e) => {
                tracing::warn!(error = %e, "aborting GET body");
                futures::stream::once(async move { Err(std::io::Error::other(e.to_string())) })
                    .boxed()
            }
        });
    Ok(first.chain(rest).boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_slices_match_the_contiguous_bytes() {
        let whole: Vec<u8> = (0..100u8).collect();
        let parts = Chunks(vec![
            Bytes::copy_from_slice(&whole[..10]),
            Bytes::new(),
            Bytes::copy_from_slice(&whole[10..55]),
            Bytes::copy_from_slice(&whole[55..]),
        ]);
        for a in 0..=100 {
            for b in a..=100 {
                let got = parts.slice(a, b).contiguous();
                assert_eq!(&got[..], &whole[a..b], "[{a}, {b})");
            }
        }
    }
}
