//! Compaction: giving back the space of deleted and overwritten small objects.
//!
//! A delete or overwrite of a packed object only counts its bytes dead in its segment's
//! [`Fill`]; a segment with nothing live left becomes garbage at once. A segment whose live
//! fraction of bytes falls below `--compact-below` is compacted: its data is read once
//! (verified, decoded if shards are missing), its footer lists what it held, and every
//! object still committed in it is packed again, through the same [`Packer`] client PUTs
//! use, with a [`Precondition::Moved`] commit: it moves only if it is still that version in
//! that segment, so a concurrent overwrite or delete wins. When the last live object has
//! moved, the old segment's shards become garbage (collected after the GC grace, so GETs that
//! started before the move finish).
//!
//! The leader's `compact` worker runs a stored job (`tessera compact`, `POST /compact`) at
//! once and a background pass every `--compact-interval`; both spend the maintenance budget.

use super::periodic;
use super::worker::Schedule;
use super::Maintenance;
use crate::data::footer::footer;
use crate::data::pack::Inbound;
use crate::data::packed_read::segment_data;
use crate::error::ApiError;
use crate::meta::{ObjectMeta, Precondition};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The job's name in the metadata.
const JOB: &str = "compact";

/// A compaction as asked for and stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CompactRequest {
    /// Only move objects of this bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// Compact segments whose live fraction is below this (default `--compact-below`).
    #[serde(default)]
    pub below: Option<f64>,
    /// Report what would be compacted; change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// The segments and what compaction can give back.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CompactStatus {
    /// Segments in the metadata.
    pub segments: u64,
    /// Their object bytes (live and dead).
    pub bytes: u64,
    /// Live object bytes.
    pub live_bytes: u64,
    /// Segments below the threshold.
    pub candidates: u64,
    /// Dead object bytes in them (what compacting them frees, before parity).
    pub reclaimable_bytes: u64,
    /// Live bytes that compacting them moves.
    pub bytes_to_move: u64,
    /// The threshold used.
    pub below: f64,
    /// A stored job is waiting for or being run by the leader.
    pub running: bool,
}

/// Candidates looked at in one status or one pass of the worker (the rest wait for the next).
const CANDIDATES: usize = 10_000;

/// The segments' totals (from the counters kept on commit) and the candidates below `below`
/// (from the index by live fraction, least live first, at most [`CANDIDATES`]).
async fn scan(c: &Maintenance, below: f64) -> Result<(CompactStatus, Vec<ObjectMeta>), ApiError> {
    let totals = c.meta.counters().await?.segments;
    let mut status = CompactStatus {
        below,
        segments: totals.segments,
        bytes: totals.bytes,
        live_bytes: totals.live_bytes,
        ..Default::default()
    };
    let candidates = c.meta.segments_below(below, CANDIDATES).await?;
    for seg in &candidates {
        let f = seg.fill.unwrap_or_default();
        status.candidates += 1;
        status.reclaimable_bytes += f.bytes - f.live_bytes;
        status.bytes_to_move += f.live_bytes;
    }
    status.running = c.meta.jobs().await?.contains_key(JOB);
    Ok((status, candidates))
}

fn threshold(c: &Maintenance, req: &CompactRequest) -> Result<f64, ApiError> {
    let below = req.below.unwrap_or(c.config.compact_below);
    if !(0.0..=1.0).contains(&below) {
        return Err(ApiError::InvalidArgument(format!(
            "below {below} must be a fraction in [0, 1]"
        )));
    }
    Ok(below)
}

/// The segments as they are, against the stored job's threshold (or the default).
pub async fn status(c: &Arc<Maintenance>) -> Result<CompactStatus, ApiError> {
    let job = stored(c).await?.unwrap_or_default();
    Ok(scan(c, threshold(c, &job)?).await?.0)
}

async fn stored(c: &Maintenance) -> Result<Option<CompactRequest>, ApiError> {
    c.job(JOB).await
}

/// Validates `req` and, unless it is a dry run, stores the job for the leader's `compact`
/// worker. Answers what there is to compact.
pub async fn start(c: &Arc<Maintenance>, req: CompactRequest) -> Result<CompactStatus, ApiError> {
    let below = threshold(c, &req)?;
    if let Some(b) = &req.bucket {
        crate::names::BucketName::parse(b)?;
    }
    if !req.dry_run {
        let spec = serde_json::to_value(CompactRequest {
            dry_run: false,
            ..req.clone()
        })?;
        c.meta.set_job(JOB.into(), Some(spec)).await?;
        tracing::info!(below, bucket = ?req.bucket, "compaction started");
    }
    Ok(scan(c, below).await?.0)
}

/// Leader only (worker `compact`): runs a stored job at once, and a background pass every
/// `--compact-interval` (unless 0).
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "compact",
        "rewrites segments of small objects whose live fraction fell below --compact-below (tessera compact)",
    );
    let last_background = std::sync::Mutex::new(tokio::time::Instant::now());
    periodic(w.clone(), stop.clone(), Schedule::every(Duration::from_secs(1)), || async {
        let job = match stored(&c).await? {
            Some(j) => j,
            None => {
                let every = c.config.compact_interval;
                let due = {
                    let mut last = last_background.lock().unwrap();
                    let due = !every.is_zero() && last.elapsed() >= every;
                    if due {
                        *last = tokio::time::Instant::now();
                    }
                    due
                };
                if !due {
                    return Ok("no compaction job".into());
                }
                CompactRequest::default()
            }
        };
        let below = threshold(&c, &job)?;
        let (_, candidates) = scan(&c, below).await?;
        w.begin(
            format!("compacting segments below {below:.2} live"),
            candidates.len() as u64,
        );
        let (mut moved, mut raced, mut failed) = (0u64, 0u64, 0u64);
        for seg in &candidates {
            if !w.gate(&stop).await {
                return Ok("stopped".into());
            }
            match compact_segment(&c, seg, job.bucket.as_deref()).await {
                Ok(o) => {
                    moved += o.moved;
                    raced += o.raced;
                    w.advance(1, o.bytes);
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(segment = %seg.key, error = %e, "segment not compacted");
                    w.advance(1, 0);
                }
            }
        }
        // A full page of candidates may have more behind it: the job stays for the next pass.
        if stored(&c).await?.is_some() && failed == 0 && candidates.len() < CANDIDATES {
            c.maint().set_job(JOB.into(), None).await?;
            tracing::info!(moved, raced, "compaction finished");
        }
        Ok(format!(
            "{} segments: {moved} objects moved, {raced} changed meanwhile (left to their writer), {failed} segments failed",
            candidates.len()
        ))
    })
    .await;
}

/// What compacting one segment did.
#[derive(Debug, Default)]
struct Compacted {
    moved: u64,
    raced: u64,
    bytes: u64,
}

/// Moves the live objects of `seg` (of `bucket` only, if given) into new segments.
async fn compact_segment(
    c: &Arc<Maintenance>,
    seg: &ObjectMeta,
    bucket: Option<&str>,
) -> Result<Compacted, ApiError> {
    let ec = seg
        .parts
        .first()
        .map(|p| p.ec)
        .ok_or_else(|| ApiError::Internal(format!("segment {} has no part", seg.key)))?;
    c.budget.spend(seg.size).await;
    let data = segment_data(&c.data, seg).await?;
    let mut live = Vec::new();
    for entry in footer(&data)? {
        let (b, k, version) = entry.names();
        if bucket.is_some_and(|want| want != b) {
            continue;
        }
        // Current and noncurrent versions alike (a noncurrent one is rewritten in its slot).
        let held = c
            .meta
            .packed_version(b.to_string(), k.to_string(), version, seg.version)
            .await?;
        let Some(obj) = held else {
            continue;
        };
        let p = obj.packed.as_ref().expect("filtered on it");
        let end = (p.offset + obj.size) as usize;
        if end > data.len() {
            return Err(ApiError::Internal(format!(
                "{}/{} lies outside its segment {}",
                obj.bucket, obj.key, seg.key
            )));
        }
        let bytes = data.slice(p.offset as usize..end);
        live.push((obj, bytes));
    }
    // Every move is on its way before the first reaches the packer, so they share segments.
    let inbound: Vec<Inbound> = live.iter().map(|_| Inbound::new(&c.data)).collect();
    let moves = live.into_iter().zip(inbound).map(|((obj, bytes), inb)| {
        let cond = Precondition::Moved {
            version: obj.version,
            from: seg.version,
        };
        let size = obj.size;
        async move {
            let out = c.packer.commit(&c.data, ec, obj, bytes, cond, inb).await;
            (size, out)
        }
    });
    let mut done = Compacted::default();
    for (size, out) in futures::future::join_all(moves).await {
        match out {
            Ok(_) => {
                done.moved += 1;
                done.bytes += size;
            }
            Err(ApiError::PreconditionFailed) | Err(ApiError::NoSuchBucket(_)) => done.raced += 1,
            Err(e) => return Err(e),
        }
    }
    c.budget.spend(done.bytes).await;
    Ok(done)
}
