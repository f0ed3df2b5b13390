//! Recode: changing the erasure code of data already stored.
//!
//! [`start`] checks the new code fits the nodes taking shards, changes the bucket's code for
//! new writes and stores the job (`recode/BUCKET/PREFIX`) in the metadata; the leader's
//! `recode` worker ([`worker`]) then re-encodes the selected objects one at a time, each as
//! a new version written like a PUT (in-flight record first) from a read of the current one,
//! committed only if the key still holds the version that was read
//! ([`Precondition::Version`]; a noncurrent version is rewritten in its own slot, keeping its
//! place in the key's history). A client overwrite or delete in the meantime wins and the
//! re-encoded copy becomes garbage, so nothing is resurrected and versions never mix; the old
//! version stays readable until the commit, and its shards are collected after the GC grace.
//! A restarted leader picks the job up from the metadata and skips what is already in the new
//! code. Objects below `--replicate-below` get `1+m` (replicas), as a PUT would give them.
//! A multipart object keeps its parts and ETag: each part is re-encoded as a new version, a
//! new manifest naming them is written, and one commit swaps them all.

use super::periodic;
use super::worker::{Budget, Schedule};
use super::Maintenance;
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::data::stripes::StripeReader;
use crate::data::stripes::{stream_range, ByteRange};
use crate::error::ApiError;
use crate::meta::{ObjectMeta, Precondition};
use crate::names::{BucketName, EcSpec, ObjectKey};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_node::ShardRole;
use tokio_util::sync::CancellationToken;

/// A recode as asked for and stored.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecodeRequest {
    /// Bucket.
    pub bucket: String,
    /// Only keys with this prefix.
    #[serde(default)]
    pub prefix: String,
    /// The new code, `K+M`.
    pub ec: String,
    /// This job's own limit in bytes per second (0: only the maintenance budget).
    #[serde(default)]
    pub rate: u64,
    /// Report what would change; store nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a recode will do (or, for a dry run, would do).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RecodePlan {
    /// Job name (`recode/BUCKET/PREFIX`).
    pub job: String,
    /// Objects selected that are not in the new code yet.
    pub objects: u64,
    /// Their logical bytes.
    pub logical_bytes: u64,
    /// Bytes their shards take now.
    pub stored_bytes_now: u64,
    /// Bytes their shards will take in the new code.
    pub stored_bytes_after: u64,
    /// Multipart objects among them (re-encoded part by part).
    pub multipart: u64,
}

fn job_name(bucket: &str, prefix: &str) -> String {
    format!("recode/{bucket}/{prefix}")
}

/// The code a recode to `ec` gives a run of `size` bytes (a single PUT's object, or one part
/// of a multipart object): `1+m` below `replicate_below`, as a PUT would.
fn target(c: &Maintenance, ec: EcSpec, size: u64) -> EcSpec {
    if size < c.config.replicate_below && ec.k > 1 {
        EcSpec { k: 1, m: ec.m }
    } else {
        ec
    }
}

/// Bytes `size` bytes take stored in `ec` with pieces of `piece` bytes.
fn stored(size: u64, ec: EcSpec, piece: u64) -> u64 {
    crate::layout::Layout {
        size,
        k: ec.k as u64,
        piece,
    }
    .shard_len()
        * ec.total() as u64
}

/// Objects of the selection not in the new code yet.
async fn pending(
    c: &Maintenance,
    bucket: &str,
    prefix: &str,
    ec: EcSpec,
) -> Result<Vec<ObjectMeta>, ApiError> {
    // A walk of the bucket's keys under the prefix only.
    let mut pages = super::repair::Pages::under(bucket, prefix);
    let mut todo = Vec::new();
    while let Some(page) = pages.next(c).await? {
        todo.extend(
            page.into_iter()
                .filter(|o| o.parts.iter().any(|p| p.ec != target(c, ec, p.size))),
        );
    }
    Ok(todo)
}

/// Validates `req` and plans it; unless it is a dry run, changes the bucket's code and
/// stores the job for the leader's `recode` worker.
pub async fn start(c: &Arc<Maintenance>, req: RecodeRequest) -> Result<RecodePlan, ApiError> {
    let ec: EcSpec = req.ec.parse().map_err(ApiError::InvalidArgument)?;
    if c.meta.bucket(req.bucket.clone()).await?.is_none() {
        return Err(ApiError::NoSuchBucket(req.bucket));
    }
    let taking = c.registry.candidates().len();
    if ec.total() > taking {
        return Err(ApiError::Conflict(format!(
            "recoding to {ec} needs {} nodes taking shards; this cluster has {taking}",
            ec.total()
        )));
    }
    let todo = pending(c, &req.bucket, &req.prefix, ec).await?;
    let piece = c.config.piece_size;
    let mut plan = RecodePlan {
        job: job_name(&req.bucket, &req.prefix),
        objects: todo.len() as u64,
        multipart: todo.iter().filter(|o| o.is_multipart()).count() as u64,
        ..Default::default()
    };
    for o in &todo {
        plan.logical_bytes += o.size;
        for p in &o.parts {
            plan.stored_bytes_now += stored(p.size, p.ec, p.piece);
            plan.stored_bytes_after += stored(p.size, target(c, ec, p.size), piece);
        }
    }
    if req.dry_run {
        return Ok(plan);
    }
    c.meta.set_bucket_ec(req.bucket.clone(), ec).await?;
    let spec = serde_json::to_value(RecodeRequest {
        ec: ec.to_string(),
        dry_run: false,
        ..req
    })?;
    c.meta.set_job(plan.job.clone(), Some(spec)).await?;
    tracing::info!(job = %plan.job, %ec, objects = plan.objects, "recode started");
    Ok(plan)
}

/// Leader only (worker `recode`): works through every stored recode job.
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "recode",
        "re-encodes objects into their bucket's new code (tessera recode)",
    );
    // Each job's own rate limit, by job name.
    let limits: Mutex<HashMap<String, Arc<Budget>>> = Default::default();
    let schedule = Schedule::every(Duration::from_secs(1));
    periodic(w.clone(), stop.clone(), schedule, || async {
        let jobs: Vec<(String, RecodeRequest)> = c
            .meta
            .jobs()
            .await?
            .into_iter()
            .filter(|(name, _)| name.starts_with("recode/"))
            .filter_map(|(name, v)| Some((name, serde_json::from_value(v).ok()?)))
            .collect();
        if jobs.is_empty() {
            return Ok("no recode job".into());
        }
        let mut results = Vec::new();
        for (name, job) in jobs {
            let ec: EcSpec = job.ec.parse().map_err(ApiError::InvalidArgument)?;
            let limit = limits
                .lock()
                .unwrap()
                .entry(name.clone())
                .or_insert_with(|| Arc::new(Budget::new(job.rate)))
                .clone();
            let todo = pending(&c, &job.bucket, &job.prefix, ec).await?;
            if todo.is_empty() {
                c.maint().set_job(name.clone(), None).await?;
                limits.lock().unwrap().remove(&name);
                tracing::info!(job = %name, "recode finished");
                results.push(format!("{name} finished"));
                continue;
            }
            w.begin(format!("{name} to {ec}"), todo.len() as u64);
            let (mut done, mut lost, mut failed) = (0, 0, Vec::new());
            for obj in todo {
                if !w.gate(&stop).await {
                    return Ok("stopped".into());
                }
                match recode_object(&c, &obj, ec, &limit).await {
                    Ok(true) => done += 1,
                    Ok(false) => lost += 1,
                    Err(e) => failed.push(format!("{}/{}: {e}", obj.bucket, obj.key)),
                }
                w.advance(1, obj.size);
            }
            if let Some(f) = failed.first() {
                tracing::warn!(job = %name, failed = failed.len(), first = %f, "recode: some objects failed; retrying");
            }
            results.push(format!(
                "{name}: {done} recoded, {lost} changed by clients meanwhile, {} failed",
                failed.len()
            ));
        }
        Ok(results.join("; "))
    })
    .await;
}

/// Re-encodes `obj` into `ec` (each part into its target code); `false` if a client changed
/// the key meanwhile (the copy is garbage then).
async fn recode_object(
    c: &Arc<Maintenance>,
    obj: &ObjectMeta,
    ec: EcSpec,
    limit: &Arc<Budget>,
) -> Result<bool, ApiError> {
    let mut written = Vec::with_capacity(obj.parts.len());
    for part in &obj.parts {
        written.push(rewrite_part(c, obj, part, target(c, ec, part.size), limit).await?);
    }
    let maint = c.maint();
    let fenced = Precondition::Version(obj.version);
    let outcome = if obj.is_multipart() {
        // Parts first (their in-flight records go with the object's commit), then a
        // manifest naming them, whose commit swaps everything at once.
        let mut recoded = ObjectMeta {
            parts: written.iter().map(|s| s.part.clone()).collect(),
            manifest: None,
            ..obj.clone()
        };
        let manifest = serde_json::to_vec(&recoded)?;
        let upload = obj.upload.unwrap_or(obj.version);
        let req = PutRequest {
            bucket: BucketName::parse(&obj.bucket)?,
            key: ObjectKey::parse(&obj.key)?,
            ec: Some(EcSpec { k: 1, m: ec.m }),
            content_length: Some(manifest.len() as u64),
            attrs: ObjectAttrs::default(),
            role: ShardRole::Manifest { upload },
        };
        let body = futures::stream::once(async move { Ok(bytes::Bytes::from(manifest)) });
        let staged = write_object(c.data.clone(), req, Box::pin(body), ()).await?;
        recoded.version = staged.part.version;
        recoded.manifest = Some(staged.part.clone());
        let out = staged.commit_with(maint.commit_put(recoded, fenced)).await;
        if out.is_ok() {
            for s in written {
                s.settled();
            }
        }
        out
    } else {
        let staged = written.pop().expect("a single PUT has one part");
        let recoded = ObjectMeta {
            version: staged.part.version,
            parts: vec![staged.part.clone()],
            ..obj.clone()
        };
        staged.commit_with(maint.commit_put(recoded, fenced)).await
    };
    match outcome {
        Ok(_) => {
            tracing::debug!(object = %format!("{}/{}", obj.bucket, obj.key), %ec, "recoded");
            Ok(true)
        }
        Err(ApiError::PreconditionFailed) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Writes `part` of `obj` again in `ec`, from a verified read of the current shards, within
/// the maintenance budget and the job's `limit`; not committed yet.
async fn rewrite_part(
    c: &Arc<Maintenance>,
    obj: &ObjectMeta,
    part: &crate::meta::Part,
    ec: EcSpec,
    limit: &Arc<Budget>,
) -> Result<crate::data::put::Staged<()>, ApiError> {
    let body = if part.size == 0 {
        futures::stream::empty().boxed()
    } else {
        let reader = Arc::new(StripeReader::new(
            c.data.clone(),
            &obj.bucket,
            &obj.key,
            part,
        )?);
        let range = ByteRange {
            start: 0,
            end: part.size - 1,
        };
        stream_range(reader, range, c.config.read_ahead)
            .await?
            .boxed()
    };
    let (budget, limit) = (c.clone(), limit.clone());
    let body = body
        .then(move |b| {
            let (c, limit) = (budget.clone(), limit.clone());
            async move {
                let b = b.map_err(|e| ApiError::ServiceUnavailable(e.to_string()))?;
                c.budget.spend(b.len() as u64).await;
                limit.spend(b.len() as u64).await;
                Ok::<_, ApiError>(b)
            }
        })
        .boxed();
    let req = PutRequest {
        bucket: BucketName::parse(&obj.bucket)?,
        key: ObjectKey::parse(&obj.key)?,
        ec: Some(ec),
        content_length: Some(part.size),
        attrs: ObjectAttrs {
            content_type: obj.content_type.clone(),
            user_meta: obj.user_meta.clone(),
            headers: obj.headers.clone(),
            acl: obj.acl.clone(),
            tags: obj.tags.clone(),
            retention: obj.retention.clone(),
            legal_hold: obj.legal_hold,
        },
        role: obj.role_of(part),
    };
    let mut staged = write_object(c.data.clone(), req, body, ()).await?;
    if staged.part.etag != part.etag {
        // Cannot happen with verified reads; never commit bytes that differ.
        return Err(ApiError::Internal(format!(
            "re-encoded bytes have MD5 {} where the part has {}",
            staged.part.etag, part.etag
        )));
    }
    staged.part.checksums = part.checksums.clone();
    staged.part.number = part.number;
    Ok(staged)
}

/// The stored recode jobs.
pub async fn jobs(c: &Maintenance) -> Result<Vec<RecodeRequest>, ApiError> {
    Ok(c.meta
        .jobs()
        .await?
        .into_iter()
        .filter(|(name, _)| name.starts_with("recode/"))
        .filter_map(|(_, v)| serde_json::from_value(v).ok())
        .collect())
}
