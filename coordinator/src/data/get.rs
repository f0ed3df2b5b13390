//! The GET data path: object bytes of a range, part after part, stripe group after stripe
//! group, from the [`StripeReader`] of each part. The first stripe is fetched before the
//! response status is sent, so a GET that cannot be served gets a 503 with an S3 error body; a
//! later stripe that cannot be served aborts the body, so the client sees a truncated
//! transfer, never wrong bytes.

use super::stripes::StripeReader;
use crate::error::ApiError;
use crate::meta::ObjectMeta;
use crate::state::Coordinator;
use bytes::Bytes;
use futures::stream::StreamExt;
use futures::Stream;
use std::sync::Arc;

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

/// Streams bytes `range` (inclusive) of `obj`, part after part. The first stripe is fetched
/// before this returns; each later part's reader is set up when the stream reaches it.
pub async fn stream_object(
    c: Arc<Coordinator>,
    obj: &ObjectMeta,
    range: ByteRange,
) -> Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static, ApiError> {
    if obj.packed.is_some() {
        let bytes = super::pack::read(&c, obj, range).await?;
        return Ok(futures::stream::once(async move { Ok(bytes) }).boxed());
    }
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
