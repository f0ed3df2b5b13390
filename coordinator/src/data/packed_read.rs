//! Reading packed small objects (written by [`super::pack`]): a healthy GET reads its byte
//! range from the data shard(s) holding it (segment shards use
//! [`CHUNK`](super::pack::CHUNK)-byte chunks, so a 4 KiB object costs one or two chunk
//! reads); if one fails, the same columns are read from any k shards and only they are
//! decoded.

use super::stripes::{stream_striped, ByteRange, Chunks, StripeReader};
use super::DataPath;
use crate::error::ApiError;
use crate::meta::{ObjectMeta, Part, ShardState, SEGMENTS};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use tessera_node::{ShardId, StoreError};

/// The whole data of segment `seg` (verified; decoded where shards are missing).
pub async fn segment_data(c: &Arc<DataPath>, seg: &ObjectMeta) -> Result<Bytes, ApiError> {
    use futures::StreamExt;
    let range = ByteRange {
        start: 0,
        end: seg.size.saturating_sub(1),
    };
    let mut body = stream_striped(c.clone(), seg, range).await?;
    let mut data = Vec::with_capacity(seg.size as usize);
    while let Some(b) = body.next().await {
        data.extend_from_slice(&b.map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?);
    }
    Ok(data.into())
}

/// Bytes `range` (inclusive, within the object) of packed object `obj`.
pub async fn read(
    c: &Arc<DataPath>,
    obj: &ObjectMeta,
    range: ByteRange,
) -> Result<Bytes, ApiError> {
    let p = obj.packed.as_ref().expect("a packed object");
    let fetch = || async {
        let seg = c
            .meta
            .object_applied(SEGMENTS.into(), p.segment.to_string())
            .await?
            .ok_or_else(|| {
                ApiError::ServiceUnavailable(format!(
                    "{}/{}: segment {} is not in the metadata",
                    obj.bucket, obj.key, p.segment
                ))
            })?;
        let seg = Arc::new(seg);
        c.packer.remember(seg.clone());
        Ok::<_, ApiError>(seg)
    };
    let (a, b) = (p.offset + range.start, p.offset + range.end + 1);
    // A remembered segment may have had shards moved since (repair, drain, rebalance): a
    // failed read through it asks the metadata again before counting anything as damaged.
    let (mut seg, cached) = match c.packer.remembered(p.segment) {
        Some(s) => (s, true),
        None => (fetch().await?, false),
    };
    let mut direct = read_direct(c, &seg, &seg.parts[0], a, b, !cached).await;
    if cached && direct.as_ref().is_err_and(|(_, answered)| *answered) {
        c.packer.forget(p.segment);
        seg = fetch().await?;
        direct = read_direct(c, &seg, &seg.parts[0], a, b, true).await;
    }
    let part = &seg.parts[0];
    let out = match direct {
        Ok(bytes) => {
            c.metrics.stripes("read", 1);
            bytes
        }
        Err((failed, _)) => {
            c.metrics.stripes("reconstructed", 1);
            c.metrics.degraded_reads.inc();
            read_degraded(c, &seg, part, a, b, &failed).await?
        }
    };
    if range.start == 0
        && range.end + 1 == obj.size
        && blake3::hash(&out).to_hex().as_str() != p.blake3
    {
        return Err(ApiError::ServiceUnavailable(format!(
            "{}/{}: bytes read do not match the object's blake3",
            obj.bucket, obj.key
        )));
    }
    Ok(out)
}

/// The piece length of segment `part` and the data shards covering segment bytes `[a, b)`.
fn covering(part: &Part, a: u64, b: u64) -> (u64, std::ops::RangeInclusive<u64>) {
    let piece = part.layout().piece_len(0).max(1);
    (piece, a / piece..=(b - 1) / piece)
}

/// Segment bytes `[a, b)` read from the data shards holding them; on failure, the shards
/// that failed and whether a node answered with an error (else they were all on nodes known
/// to be down, which asking the metadata again would not change). Damage is reported (for
/// repair) only with `report`.
async fn read_direct(
    c: &Arc<DataPath>,
    seg: &ObjectMeta,
    part: &Part,
    a: u64,
    b: u64,
    report: bool,
) -> Result<Bytes, (Vec<usize>, bool)> {
    let (piece, shards) = covering(part, a, b);
    let timeout = c.config.shard_read_timeout;
    let reads = shards.clone().map(|i| {
        let loc = &part.shards[i as usize];
        let client = loc
            .node
            .as_ref()
            .filter(|n| loc.state == ShardState::Ok && c.registry.up(n))
            .and_then(|n| c.registry.client(n));
        let (from, to) = (a.max(i * piece), b.min((i + 1) * piece));
        let id = ShardId {
            version: part.version,
            index: i as u16,
        };
        async move {
            match client {
                None => (false, Err(StoreError::Unavailable("node down".into()))),
                Some(cl) => (
                    true,
                    cl.read_verified(id, from - i * piece, to - from, timeout)
                        .await,
                ),
            }
        }
    });
    let results = futures::future::join_all(reads).await;
    let mut out = Vec::new();
    let mut failed = Vec::new();
    let mut answered = false;
    for (i, (asked, r)) in shards.zip(results) {
        match r {
            Ok(chunks) => out.extend(chunks),
            Err(e) => {
                answered |= asked;
                if !report {
                    failed.push(i as usize);
                    continue;
                }
                if let Some(node) = &part.shards[i as usize].node {
                    c.metrics.shard_error(node.as_str(), "read");
                }
                if matches!(e, StoreError::Corrupt(_) | StoreError::NotFound(_)) {
                    let corrupt = matches!(e, StoreError::Corrupt(_));
                    tracing::warn!(segment = %seg.key, shard = i, corrupt, "damaged segment shard found by a read");
                    let id = ShardId {
                        version: part.version,
                        index: i as u16,
                    };
                    c.damage.report_damage(SEGMENTS, &seg.key, id, corrupt);
                }
                failed.push(i as usize);
            }
        }
    }
    if failed.is_empty() {
        Ok(Chunks(out).contiguous())
    } else {
        Err((failed, answered))
    }
}

/// Segment bytes `[a, b)` decoded from any k shards: only the columns covering them are read.
async fn read_degraded(
    c: &Arc<DataPath>,
    seg: &ObjectMeta,
    part: &Part,
    a: u64,
    b: u64,
    failed: &[usize],
) -> Result<Bytes, ApiError> {
    let (piece, shards) = covering(part, a, b);
    let (first, last) = (*shards.start(), *shards.end());
    let (c0, c1) = if first == last {
        (a - first * piece, b - first * piece)
    } else {
        (0, piece)
    };
    let reader = StripeReader::excluding(c.clone(), SEGMENTS, &seg.key, part, failed)?;
    let data = reader.fetch_columns(c0, c1 - c0).await?;
    let mut out = BytesMut::with_capacity((b - a) as usize);
    for (i, col) in (first..=last).zip(data.into_iter().skip(first as usize)) {
        // Column bytes [c0, c1) of data piece i are segment bytes [i*piece + c0, i*piece + c1).
        let base = i * piece + c0;
        let (from, to) = (a.max(base), b.min(i * piece + c1));
        out.extend_from_slice(&col[(from - base) as usize..(to - base) as usize]);
    }
    Ok(out.freeze())
}
