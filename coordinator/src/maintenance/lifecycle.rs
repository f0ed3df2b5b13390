//! S3 lifecycle rules applied: the leader's `lifecycle` worker expires current versions
//! (a delete marker in a versioned bucket, a delete in an unversioned one), noncurrent
//! versions and delete markers, and aborts incomplete multipart uploads, as each bucket's
//! rules say (what they say about a version is `meta/lifecycle.rs`).
//!
//! **Incremental.** A round walks the buckets that have rules, in name order, and in each the
//! versions of its keys in key order, one listing page at a time; a pass (every
//! [`step_every`]) does at most [`PAGES_PER_PASS`] pages and stores where it stopped (the
//! bucket and the last key whose versions were judged) as the `lifecycle` job, so a new
//! leader resumes the round where the old one stopped, and no pass reads more than a bounded
//! slice of the metadata. A new round starts [`round_every`] after the previous one started.
//!
//! **Safe.** Every deletion goes through the metadata's own conditional operations: the
//! current version is only expired if it is still the version judged (an overwrite in
//! between wins), and a version under object lock retention or legal hold is refused by the
//! metadata like any other delete, counted as kept and left alone. What the worker deletes
//! is spent from the maintenance budget (its bytes), so a rule that suddenly expires a
//! bucket does not starve client traffic of the garbage collector's deletes.

use super::periodic;
use super::worker::{Schedule, Worker};
use super::Maintenance;
use crate::error::ApiError;
use crate::meta::lifecycle::{abort_upload, judge};
use crate::meta::{now_ms, BucketMeta, DeleteCondition, LifecycleRule, MetaError, ObjectMeta};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const JOB: &str = "lifecycle";
/// Versions per listing page.
const PAGE: usize = 1000;
/// Pages one pass reads at most.
pub const PAGES_PER_PASS: usize = 10;

/// Where the round in progress stands (stored as the `lifecycle` job).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Cursor {
    /// When the round in progress (or the last one) started, ms since the epoch.
    round_started_ms: u64,
    /// The bucket being walked (`None`: the round is over).
    #[serde(default)]
    bucket: Option<String>,
    /// The last key of that bucket whose versions were judged.
    #[serde(default)]
    after_key: Option<String>,
    /// The bucket's uploads were looked at this round.
    #[serde(default)]
    uploads_done: bool,
    /// What the round in progress has done so far.
    #[serde(default)]
    tally: Tally,
    /// How the last finished round ended.
    #[serde(default)]
    last_round: Option<String>,
}

/// What a round did.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
struct Tally {
    versions: u64,
    expired: u64,
    noncurrent: u64,
    markers: u64,
    uploads: u64,
    locked: u64,
    bytes: u64,
}

/// Time between passes: a twentieth of a lifecycle day, between 100 ms and a second.
pub fn step_every(day: Duration) -> Duration {
    (day / 20).clamp(Duration::from_millis(100), Duration::from_secs(1))
}

/// Time between the starts of two rounds: a quarter of a lifecycle day, at most an hour.
pub fn round_every(day: Duration) -> Duration {
    (day / 4).min(Duration::from_secs(3600))
}

/// The leader's `lifecycle` worker (see the module docs).
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "lifecycle",
        "applies buckets' lifecycle rules: expires objects, noncurrent versions and delete markers, aborts old uploads",
    );
    let day = c.config.lifecycle_day;
    periodic(
        w.clone(),
        stop.clone(),
        Schedule::every(step_every(day)),
        || {
            let (c, w, stop) = (c.clone(), w.clone(), stop.clone());
            async move { pass(&c, &w, &stop).await }
        },
    )
    .await;
}

async fn stored(c: &Maintenance) -> Result<Option<Cursor>, ApiError> {
    c.job(JOB).await
}

async fn store(c: &Maintenance, cur: &Cursor) -> Result<(), ApiError> {
    let v = serde_json::to_value(cur).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(c.maint().set_job(JOB.into(), Some(v)).await?)
}

/// The buckets with lifecycle rules in effect for a round that started at `round_ms`, in
/// name order. Rules take effect a round's interval after they were set (as S3's take a
/// while to propagate): a configuration is never acted on in the moment it is stored, while
/// its author may still be reading the bucket as it was.
async fn buckets_with_rules(c: &Maintenance, round_ms: u64) -> Result<Vec<BucketMeta>, ApiError> {
    let lag = round_every(c.config.lifecycle_day).as_millis() as u64;
    let mut all = c.meta.buckets().await?;
    all.retain(|b| {
        b.lifecycle.as_ref().is_some_and(|r| !r.is_empty())
            && b.lifecycle_set_ms.unwrap_or(0).saturating_add(lag) <= round_ms
    });
    Ok(all)
}

/// One pass: continues the round in progress (or starts one when it is due) for at most
/// [`PAGES_PER_PASS`] listing pages.
async fn pass(
    c: &Arc<Maintenance>,
    w: &Worker,
    stop: &CancellationToken,
) -> Result<String, ApiError> {
    let day = c.config.lifecycle_day;
    let mut cur = stored(c).await?.unwrap_or_default();
    let now = now_ms();
    if cur.bucket.is_none() {
        if now.saturating_sub(cur.round_started_ms) < round_every(day).as_millis() as u64 {
            return Ok(match &cur.last_round {
                Some(last) => format!("waiting for the next round; last {last}"),
                None => "waiting for the next round".into(),
            });
        }
        cur = Cursor {
            round_started_ms: now,
            bucket: Some(String::new()),
            last_round: cur.last_round,
            ..Default::default()
        };
    }
    let buckets = buckets_with_rules(c, cur.round_started_ms).await?;
    w.begin("buckets with lifecycle rules", buckets.len() as u64);
    let mut t = cur.tally;
    let mut pages = 0;
    for b in &buckets {
        let at = cur.bucket.clone().unwrap_or_default();
        if b.name < at {
            w.advance(1, 0);
            continue;
        }
        if b.name > at {
            cur.bucket = Some(b.name.clone());
            cur.after_key = None;
            cur.uploads_done = false;
        }
        let rules = b.lifecycle.clone().unwrap_or_default();
        if !cur.uploads_done {
            t.uploads += abort_uploads(c, b, &rules).await?;
            cur.uploads_done = true;
        }
        let finished = walk(c, w, stop, b, &rules, &mut cur, &mut pages, &mut t).await?;
        cur.tally = t;
        store(c, &cur).await?;
        if !finished {
            return Ok(summary(&t, "round continues"));
        }
        w.advance(1, 0);
    }
    let secs = now_ms().saturating_sub(cur.round_started_ms) as f64 / 1000.0;
    let done = summary(&t, &format!("round finished in {secs:.1} s"));
    cur = Cursor {
        round_started_ms: cur.round_started_ms,
        last_round: Some(done.clone()),
        ..Default::default()
    };
    store(c, &cur).await?;
    Ok(done)
}

fn summary(t: &Tally, state: &str) -> String {
    format!(
        "{state}: {} versions judged; {} expired, {} noncurrent and {} delete markers deleted, {} uploads aborted, {} locked versions kept",
        t.versions, t.expired, t.noncurrent, t.markers, t.uploads, t.locked
    )
}

/// Walks bucket `b` from the cursor; `true` once its last key was judged, `false` when the
/// pass's pages ran out first (the cursor names the last key judged).
#[allow(clippy::too_many_arguments)]
async fn walk(
    c: &Arc<Maintenance>,
    w: &Worker,
    stop: &CancellationToken,
    b: &BucketMeta,
    rules: &[LifecycleRule],
    cur: &mut Cursor,
    pages: &mut usize,
    t: &mut Tally,
) -> Result<bool, ApiError> {
    let mut marker: (Option<String>, Option<String>) = (cur.after_key.clone(), None);
    // The versions of the key being gathered (a key's versions may span pages).
    let mut group: Vec<ObjectMeta> = Vec::new();
    loop {
        if *pages >= PAGES_PER_PASS || !w.gate(stop).await {
            return Ok(false);
        }
        *pages += 1;
        let spent = t.bytes;
        let page = match c
            .meta
            .list_versions(
                b.name.clone(),
                String::new(),
                marker.0.clone(),
                marker.1.clone(),
                None,
                PAGE,
            )
            .await
        {
            Ok(p) => p,
            Err(MetaError::NoSuchBucket(_)) => return Ok(true),
            Err(e) => return Err(e.into()),
        };
        for (v, _) in page.versions {
            if group.first().is_some_and(|g| g.key != v.key) {
                let done = std::mem::take(&mut group);
                apply(c, b, rules, &done, t).await?;
                cur.after_key = Some(done[0].key.clone());
            }
            group.push(v);
        }
        // What the page deleted, from the budget at once (a sleep per small object would
        // hold the worker to the timer's resolution, not the budget).
        c.budget.spend(t.bytes - spent).await;
        match (page.truncated, page.next) {
            (true, Some((k, id))) => marker = (Some(k), id),
            _ => {
                if !group.is_empty() {
                    apply(c, b, rules, &group, t).await?;
                    cur.after_key = Some(group[0].key.clone());
                }
                return Ok(true);
            }
        }
    }
}

/// Applies the verdict on one key's versions (newest first).
async fn apply(
    c: &Arc<Maintenance>,
    b: &BucketMeta,
    rules: &[LifecycleRule],
    versions: &[ObjectMeta],
    t: &mut Tally,
) -> Result<(), ApiError> {
    t.versions += versions.len() as u64;
    let v = judge(
        rules,
        versions,
        now_ms(),
        c.config.lifecycle_day.as_millis() as u64,
    );
    let m = c.maint();
    let latest = &versions[0];
    let same = |o: &ObjectMeta| DeleteCondition {
        etag: Some(o.etag.clone()),
        last_modified_secs: Some((o.last_modified_ms / 1000) as i64),
        size: Some(o.size),
    };
    let mut gone = false;
    if v.expire_current {
        let r = if b.versioning.is_some() {
            m.delete_object_if(b.name.clone(), latest.key.clone(), same(latest))
                .await
        } else {
            m.delete_version(
                b.name.clone(),
                latest.key.clone(),
                latest.version_id(),
                same(latest),
                false,
            )
            .await
        };
        gone = counted(c, r, latest, t, Kind::Expired).await?;
    }
    for &i in &v.noncurrent {
        let o = &versions[i];
        let r = m
            .delete_version(
                b.name.clone(),
                o.key.clone(),
                o.version_id(),
                DeleteCondition::default(),
                false,
            )
            .await;
        let kind = if o.delete_marker {
            Kind::Marker
        } else {
            Kind::Noncurrent
        };
        counted(c, r, o, t, kind).await?;
    }
    if v.remove_marker && !gone {
        let r = m
            .delete_version(
                b.name.clone(),
                latest.key.clone(),
                latest.version_id(),
                DeleteCondition::default(),
                false,
            )
            .await;
        counted(c, r, latest, t, Kind::Marker).await?;
    }
    Ok(())
}

#[derive(Clone, Copy)]
enum Kind {
    Expired,
    Noncurrent,
    Marker,
}

/// Counts one deletion's outcome (its bytes are spent from the budget per page); `true` if it
/// happened. Refusals that mean "changed meanwhile" or "locked" are not errors.
async fn counted(
    c: &Maintenance,
    r: Result<crate::meta::Deleted, MetaError>,
    o: &ObjectMeta,
    t: &mut Tally,
    kind: Kind,
) -> Result<bool, ApiError> {
    match r {
        Ok(d) => {
            if d.removed.is_none() && d.marker.is_none() {
                return Ok(false);
            }
            let (counter, label) = match kind {
                Kind::Expired => (&mut t.expired, "expired"),
                Kind::Noncurrent => (&mut t.noncurrent, "noncurrent"),
                Kind::Marker => (&mut t.markers, "delete_marker"),
            };
            *counter += 1;
            c.metrics.lifecycle(label);
            if d.removed.is_some() {
                c.gc_kick.notify_one();
            }
            if !o.delete_marker {
                t.bytes += o.size;
            }
            Ok(true)
        }
        Err(MetaError::ObjectLocked(_)) => {
            t.locked += 1;
            c.metrics.lifecycle("locked_kept");
            Ok(false)
        }
        Err(
            MetaError::PreconditionFailed
            | MetaError::NoSuchVersion(_)
            | MetaError::NoSuchBucket(_),
        ) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Aborts the uploads of `b` its rules say are too old; how many.
async fn abort_uploads(
    c: &Maintenance,
    b: &BucketMeta,
    rules: &[LifecycleRule],
) -> Result<u64, ApiError> {
    if !rules
        .iter()
        .any(|r| r.enabled && r.abort_upload_days.is_some())
    {
        return Ok(0);
    }
    let day = c.config.lifecycle_day.as_millis() as u64;
    let (mut after, mut n) = (None, 0);
    loop {
        let page = match c
            .meta
            .uploads(b.name.clone(), String::new(), None, after.clone(), PAGE)
            .await
        {
            Ok(p) => p,
            Err(MetaError::NoSuchBucket(_)) => return Ok(n),
            Err(e) => return Err(e.into()),
        };
        let now = now_ms();
        for u in &page.uploads {
            if abort_upload(rules, &u.key, u.initiated_ms, now, day) {
                match c
                    .maint()
                    .abort_upload(u.bucket.clone(), u.key.clone(), u.id)
                    .await
                {
                    Ok(()) => {
                        n += 1;
                        c.metrics.lifecycle("upload");
                    }
                    Err(MetaError::NoSuchUpload(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        match (page.truncated, page.uploads.last()) {
            (true, Some(u)) => after = Some((u.key.clone(), Some(u.id))),
            _ => return Ok(n),
        }
    }
}
