//! Repair: finds shards that are lost and writes them back.
//!
//! A shard is **lost** when it was recorded missing at write time, its node is gone (not
//! registered, or down for longer than `repair_grace`), its node says it does not have it, or
//! a read or a scrub found it corrupt (the *suspects*). Repair reads any k healthy shards per
//! stripe, rebuilds the lost ones, streams them to nodes chosen like placement does (distinct
//! nodes, fewest shards per zone, the shard's original node first when it is up), and commits
//! the new locations with [`Metadata::commit_repair`](crate::meta::Metadata::commit_repair),
//! which refuses if the object was overwritten or deleted meanwhile. The shards a repair writes
//! are recorded in flight first, so a crash leaves garbage, never a leak; running repair again
//! finishes the job.
//!
//! The work runs inside the coordinator: in the background (read-repair queue and periodic
//! scans, rate-limited) and on demand through the admin API, which `tessera repair` drives.

use super::periodic;
use super::worker::Schedule;
use crate::data::stripes::StripeReader;
use crate::data::upload::NodeStreams;
use crate::error::ApiError;
use crate::meta::{now_ms, ObjectMeta, Part, ShardSet, ShardState};
use crate::placement::repair_targets;
use crate::state::Coordinator;
use bytes::Bytes;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use tessera_node::frame::EndFrame;
use tessera_node::{NodeId, ShardHeader, ShardId, StoreError};
use tokio_util::sync::CancellationToken;

/// What an operator asks for.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RepairRequest {
    /// Report only; change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Only objects of this bucket.
    pub bucket: Option<String>,
    /// Only objects with a shard on this node.
    pub node: Option<NodeId>,
    /// Objects repaired at once.
    pub concurrency: usize,
    /// The repair grace for this run, in milliseconds (`None`: the coordinator's
    /// `--repair-grace`): shards on nodes down for longer count as lost and are rebuilt.
    #[serde(default)]
    pub grace_ms: Option<u64>,
    /// Deep pass: read every shard of the selected objects and check its chunk hashes, so
    /// corruption no read has reported yet is found (and rebuilt), within the repair rate.
    #[serde(default)]
    pub verify: bool,
}

/// A down node whose shards do not count as lost yet (inside the repair grace).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WithinGrace {
    /// Node id.
    pub node: String,
    /// How long it has been down.
    pub down_for_ms: u64,
    /// When its shards will count as lost (from the run's start).
    pub lost_in_ms: u64,
}

/// How one run looks at objects.
#[derive(Clone, Copy, Debug)]
struct Options {
    dry_run: bool,
    grace: std::time::Duration,
    verify: bool,
}

impl Options {
    fn of(c: &Coordinator, req: &RepairRequest) -> Self {
        Options {
            dry_run: req.dry_run,
            grace: req
                .grace_ms
                .map_or(c.config.repair_grace, std::time::Duration::from_millis),
            verify: req.verify,
        }
    }
}

/// Progress and outcome of one repair run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RepairReport {
    /// Run id.
    pub run_id: u64,
    /// Nothing was changed.
    pub dry_run: bool,
    /// The run has finished.
    pub done: bool,
    /// Objects the run will look at (for progress and ETA).
    pub objects_total: u64,
    /// Objects looked at so far.
    pub objects_scanned: u64,
    /// Objects found with a lost or unavailable shard.
    pub degraded: u64,
    /// Objects whose lost shards were all rebuilt.
    pub repaired: u64,
    /// Shards rebuilt and committed.
    pub shards_rebuilt: u64,
    /// Shard bytes read to rebuild.
    pub bytes_read: u64,
    /// Shard bytes written.
    pub bytes_written: u64,
    /// Objects with fewer than k healthy shards.
    pub unrecoverable: Vec<String>,
    /// Objects still degraded after the run, with the reason.
    pub still_degraded: Vec<String>,
    /// Shards read whole and checked against their chunk hashes (`verify`).
    #[serde(default)]
    pub shards_verified: u64,
    /// Bytes read to verify.
    #[serde(default)]
    pub bytes_verified: u64,
    /// Corrupt shards the verification found.
    #[serde(default)]
    pub corrupt_found: u64,
    /// Down nodes still inside the repair grace when the run started: their shards were not
    /// rebuilt.
    #[serde(default)]
    pub within_grace: Vec<WithinGrace>,
    /// Time since the run started.
    pub elapsed_ms: u64,
    /// The run was resumed after a coordinator restart or a new leader (counters restart).
    #[serde(default)]
    pub resumed: bool,
    /// Estimated time to the end, while running.
    #[serde(default)]
    pub eta_ms: Option<u64>,
    /// When the run started, ms since the epoch.
    #[serde(default)]
    pub started_ms: u64,
}

impl RepairReport {
    /// Adds `other`'s counters to these; its unrecoverable list replaces this one (it is the
    /// newer view).
    fn add(&mut self, other: &RepairReport) {
        self.objects_scanned += other.objects_scanned;
        self.degraded += other.degraded;
        self.repaired += other.repaired;
        self.shards_rebuilt += other.shards_rebuilt;
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.shards_verified += other.shards_verified;
        self.bytes_verified += other.bytes_verified;
        self.corrupt_found += other.corrupt_found;
        self.unrecoverable.clone_from(&other.unrecoverable);
    }

    /// Everything is healthy after this run.
    pub fn healthy(&self) -> bool {
        self.unrecoverable.is_empty()
            && self.still_degraded.is_empty()
            && (!self.dry_run || self.degraded == 0)
    }
}

/// See [`Repairer::counts`].
#[derive(Clone, Copy, Debug, Default)]
pub struct RepairCounts {
    /// Objects queued.
    pub queue: u64,
    /// Shards found corrupt, not rebuilt yet.
    pub suspects: u64,
    /// Degraded objects found by the last complete scan.
    pub degraded: u64,
    /// Unrecoverable objects found by the last complete scan.
    pub unrecoverable: u64,
}

/// Repair state shared by the API, the GET path and the background worker.
#[derive(Default)]
pub struct Repairer {
    /// Objects to look at soon (read-repair, scrub reports).
    queue: Mutex<BTreeSet<(String, String)>>,
    /// Shards found corrupt and not yet rebuilt.
    suspects: Mutex<HashSet<ShardId>>,
    wake: tokio::sync::Notify,
    runs: Mutex<BTreeMap<u64, Arc<Mutex<RepairReport>>>>,
    /// One run at a time (background or operator).
    run_lock: tokio::sync::Mutex<()>,
    background: Mutex<RepairReport>,
    /// The last complete background scan: when it finished (ms since the epoch) and what it
    /// found; `tessera status` reports degraded and unrecoverable objects from it.
    last_scan: Mutex<Option<(u64, RepairReport)>>,
}

impl Repairer {
    /// A read found shard `id` of `bucket`/`key` missing or corrupt: queue the object now.
    pub fn report_damage(&self, bucket: &str, key: &str, id: ShardId, corrupt: bool) {
        if corrupt {
            self.suspects.lock().unwrap().insert(id);
        }
        self.queue
            .lock()
            .unwrap()
            .insert((bucket.to_string(), key.to_string()));
        self.wake.notify_one();
    }

    /// A node's scrub found these shards corrupt.
    pub fn report_corrupt(&self, shards: &[tessera_node::ShardHeader]) {
        for h in shards {
            self.suspects.lock().unwrap().insert(h.shard_id());
            self.queue
                .lock()
                .unwrap()
                .insert((h.bucket.clone(), h.key.clone()));
        }
        self.wake.notify_one();
    }

    /// Queue length, suspects, the background totals and the latest run, for `status`.
    pub fn status(&self) -> serde_json::Value {
        let last = self
            .runs
            .lock()
            .unwrap()
            .values()
            .next_back()
            .map(|r| r.lock().unwrap().clone());
        serde_json::json!({
            "queue": self.queue.lock().unwrap().len(),
            "suspect_shards": self.suspects.lock().unwrap().len(),
            "background": *self.background.lock().unwrap(),
            "last_run": last,
            "last_scan": self.last_scan.lock().unwrap().as_ref().map(|(at, r)| serde_json::json!({
                "finished_ms": at,
                "objects_scanned": r.objects_scanned,
                "degraded": r.degraded,
                "unrecoverable": r.unrecoverable,
                "still_degraded": r.still_degraded,
            })),
        })
    }

    /// Queue length, suspects, and the last complete scan's degraded and unrecoverable
    /// objects (for metrics).
    pub fn counts(&self) -> RepairCounts {
        let (degraded, unrecoverable) = self
            .last_scan
            .lock()
            .unwrap()
            .as_ref()
            .map_or((0, 0), |(_, r)| (r.degraded, r.unrecoverable.len() as u64));
        RepairCounts {
            queue: self.queue.lock().unwrap().len() as u64,
            suspects: self.suspects.lock().unwrap().len() as u64,
            degraded,
            unrecoverable,
        }
    }

    /// The report of run `id`.
    pub fn report(&self, id: u64) -> Option<RepairReport> {
        self.runs.lock().unwrap().get(&id).map(|r| {
            let mut r = r.lock().unwrap().clone();
            if !r.done && r.started_ms > 0 {
                r.elapsed_ms = now_ms().saturating_sub(r.started_ms);
                if r.objects_scanned > 0 && r.objects_total >= r.objects_scanned {
                    let left = r.objects_total - r.objects_scanned;
                    r.eta_ms = Some(r.elapsed_ms * left / r.objects_scanned);
                }
            }
            r
        })
    }
}

/// Validates `req` and starts a run in the background; returns its id.
pub async fn start_run(c: &Arc<Coordinator>, req: RepairRequest) -> Result<u64, ApiError> {
    if req.concurrency == 0 || req.concurrency > 256 {
        return Err(ApiError::InvalidArgument(
            "concurrency must be between 1 and 256".into(),
        ));
    }
    if let Some(n) = &req.node {
        if c.registry.client(n).is_none() {
            return Err(ApiError::InvalidArgument(format!("unknown node id {n}")));
        }
    }
    if let Some(b) = req.bucket.clone() {
        if c.meta.bucket(b).await?.is_none() {
            return Err(ApiError::NoSuchBucket(req.bucket.clone().unwrap()));
        }
    }
    // Ids grow across restarts (a resumed run keeps its id).
    let id = {
        let runs = c.repair.runs.lock().unwrap();
        runs.keys().next_back().map_or(0, |k| k + 1).max(now_ms())
    };
    if !req.dry_run {
        // Stored until it ends, so a restarted leader resumes it.
        c.meta
            .set_job(format!("{RUN_JOB}{id}"), Some(serde_json::to_value(&req)?))
            .await?;
    }
    spawn_run(c, id, req, false);
    Ok(id)
}

/// Job name prefix of stored repair runs.
const RUN_JOB: &str = "repair/";

/// Runs `req` as run `id` in the background (one run at a time); a stored run's job ends
/// with it.
fn spawn_run(c: &Arc<Coordinator>, id: u64, req: RepairRequest, resumed: bool) {
    let report = Arc::new(Mutex::new(RepairReport {
        run_id: id,
        dry_run: req.dry_run,
        resumed,
        ..Default::default()
    }));
    {
        let mut runs = c.repair.runs.lock().unwrap();
        runs.insert(id, report.clone());
        while runs.len() > 16 {
            let first = *runs.keys().next().unwrap();
            runs.remove(&first);
        }
    }
    let c = c.clone();
    tokio::spawn(async move {
        let _one_at_a_time = c.repair.run_lock.lock().await;
        run(&c, &req, &report).await;
        if !req.dry_run {
            if let Err(e) = c.maint().set_job(format!("{RUN_JOB}{id}"), None).await {
                tracing::warn!(run = id, error = %e, "could not record the end of a repair run");
            }
        }
    });
}

/// Leader start: resumes the operator runs a previous leader (or this process before a
/// restart) left unfinished. Objects already repaired are found healthy and skipped.
pub async fn resume_runs(c: &Arc<Coordinator>) -> Result<usize, ApiError> {
    let mut n = 0;
    for (name, spec) in c.meta.jobs().await? {
        let Some(id) = name
            .strip_prefix(RUN_JOB)
            .and_then(|i| i.parse::<u64>().ok())
        else {
            continue;
        };
        if c.repair.runs.lock().unwrap().contains_key(&id) {
            continue;
        }
        let Ok(req) = serde_json::from_value::<RepairRequest>(spec) else {
            continue;
        };
        tracing::info!(run = id, "resuming a repair run left unfinished");
        spawn_run(c, id, req, true);
        n += 1;
    }
    Ok(n)
}

/// Scans the objects `req` selects and repairs what is degraded, updating `report`.
pub async fn run(c: &Arc<Coordinator>, req: &RepairRequest, report: &Arc<Mutex<RepairReport>>) {
    let started = std::time::Instant::now();
    report.lock().unwrap().started_ms = now_ms();
    let opts = Options::of(c, req);
    report.lock().unwrap().within_grace = within_grace(c, opts.grace);
    let selected = select(c, |o| {
        req.bucket.as_ref().is_none_or(|b| &o.bucket == b)
            && req.node.as_ref().is_none_or(|n| {
                o.extents()
                    .any(|p| p.shards.iter().any(|s| s.node.as_ref() == Some(n)))
            })
    })
    .await;
    let mut selected = match selected {
        Ok(s) => s,
        Err(e) => {
            let mut r = report.lock().unwrap();
            r.still_degraded
                .push(format!("(metadata scan failed: {e})"));
            r.done = true;
            return;
        }
    };
    report.lock().unwrap().objects_total = selected.len() as u64;
    // Most at risk first: the object one loss from unrecoverable before the one with spares.
    selected.sort_by_cached_key(|o| margin(c, o, opts.grace));
    futures::stream::iter(selected)
        .map(|o| check_and_repair(c, o, opts, report))
        .buffer_unordered(req.concurrency.max(1))
        .for_each(|_| async {})
        .await;
    let mut r = report.lock().unwrap();
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    r.done = true;
}

/// Every committed object for which `keep` holds, in (bucket, key) order.
pub async fn select(
    c: &Coordinator,
    keep: impl Fn(&ObjectMeta) -> bool,
) -> Result<Vec<ObjectMeta>, ApiError> {
    let mut after: Option<(String, String)> = None;
    let mut selected = Vec::new();
    loop {
        let page = c.meta.objects_after(after.clone(), 1000).await?;
        let Some(last) = page.last() else { break };
        after = Some((last.bucket.clone(), last.key.clone()));
        selected.extend(page.into_iter().filter(|o| keep(o)));
    }
    Ok(selected)
}

/// Shards of one object, sorted by what state they are in.
#[derive(Debug, Default)]
struct Assessment {
    lost: Vec<usize>,
    unavailable: Vec<usize>,
    healthy: usize,
}

/// Down nodes inside `grace`, and when each will count as lost.
fn within_grace(c: &Coordinator, grace: std::time::Duration) -> Vec<WithinGrace> {
    c.registry
        .view()
        .into_iter()
        .filter(|n| !n.up)
        .filter_map(|n| {
            let down = c.registry.down_for(&n.id);
            (down < grace).then(|| WithinGrace {
                node: n.id.to_string(),
                down_for_ms: down.as_millis() as u64,
                lost_in_ms: (grace - down).as_millis() as u64,
            })
        })
        .collect()
}

/// How many shards an object can still lose (the smallest over its parts), as far as the
/// metadata, the suspects and the nodes' liveness tell without asking any node: shards
/// recorded missing, suspected corrupt or on nodes down past `grace` count as gone. Repair
/// takes objects in increasing order of this.
fn margin(c: &Coordinator, obj: &ObjectMeta, grace: std::time::Duration) -> i64 {
    let suspects = c.repair.suspects.lock().unwrap();
    margin_with(obj, |part, i, node| {
        !suspects.contains(&ShardId {
            version: part.version,
            index: i as u16,
        }) && c.registry.client(node).is_some()
            && (c.registry.up(node) || c.registry.down_for(node) < grace)
    })
}

/// [`margin`] with `usable(part, shard index, node)` saying whether a shard recorded `ok`
/// still counts.
fn margin_with(obj: &ObjectMeta, usable: impl Fn(&Part, usize, &NodeId) -> bool) -> i64 {
    obj.extents()
        .map(|part| {
            let alive = part
                .shards
                .iter()
                .enumerate()
                .filter(|(i, loc)| match &loc.node {
                    Some(node) => loc.state == ShardState::Ok && usable(part, *i, node),
                    None => false,
                })
                .count();
            alive as i64 - part.ec.k as i64
        })
        .min()
        .unwrap_or(i64::MAX)
}

/// Bytes of a shard read and checked per request by a verifying run.
const VERIFY_READ: u64 = 4 << 20;

async fn assess(
    c: &Arc<Coordinator>,
    part: &Part,
    opts: Options,
    report: &Mutex<RepairReport>,
) -> Assessment {
    let shard_len = part.layout().shard_len();
    let grace = opts.grace;
    let suspects = c.repair.suspects.lock().unwrap().clone();
    let checks = part.shards.iter().enumerate().map(|(i, loc)| {
        let id = ShardId {
            version: part.version,
            index: i as u16,
        };
        let suspect = suspects.contains(&id);
        let node = loc.node.clone();
        let state = loc.state;
        async move {
            let Some(node) = node else {
                return (i, Some(true));
            };
            if state == ShardState::Missing || suspect {
                return (i, Some(true));
            }
            let Some(client) = c.registry.client(&node) else {
                return (i, Some(true));
            };
            if !c.registry.up(&node) {
                // Down: lost once the grace period has passed, unavailable until then.
                let lost = c.registry.down_for(&node) >= grace;
                return (i, lost.then_some(true));
            }
            match client.info(id).await {
                Ok(info) if info.length == shard_len && opts.verify => {
                    (i, verify_shard(c, &client, id, shard_len, report).await)
                }
                Ok(info) if info.length == shard_len => (i, Some(false)),
                Ok(_) | Err(StoreError::NotFound(_)) | Err(StoreError::Corrupt(_)) => {
                    (i, Some(true))
                }
                Err(_) => (i, None),
            }
        }
    });
    let mut a = Assessment::default();
    for (i, verdict) in futures::future::join_all(checks).await {
        match verdict {
            Some(true) => a.lost.push(i),
            Some(false) => a.healthy += 1,
            None => a.unavailable.push(i),
        }
    }
    a
}

/// Reads shard `id` whole, every chunk checked against its blake3 (by the raw read, or by
/// the node), within the repair rate. `Some(true)`: corrupt (now a suspect), `Some(false)`:
/// healthy, `None`: could not be read.
async fn verify_shard(
    c: &Arc<Coordinator>,
    client: &tessera_node::NodeClient,
    id: ShardId,
    len: u64,
    report: &Mutex<RepairReport>,
) -> Option<bool> {
    let mut at = 0;
    while at < len {
        let n = VERIFY_READ.min(len - at);
        match client
            .read_verified(id, at, n, c.config.shard_read_timeout)
            .await
        {
            Ok(_) => {}
            Err(StoreError::Corrupt(e)) => {
                tracing::warn!(shard = %id, error = %e, "verification found a corrupt shard");
                c.repair.suspects.lock().unwrap().insert(id);
                let mut r = report.lock().unwrap();
                r.corrupt_found += 1;
                r.bytes_verified += at;
                return Some(true);
            }
            Err(StoreError::NotFound(_)) => return Some(true),
            Err(_) => return None,
        }
        c.budget.spend(n).await;
        at += n;
    }
    let mut r = report.lock().unwrap();
    r.shards_verified += 1;
    r.bytes_verified += len;
    Some(false)
}

/// Looks at one object, part by part, and repairs what needs it and can be.
async fn check_and_repair(
    c: &Arc<Coordinator>,
    obj: ObjectMeta,
    opts: Options,
    report: &Arc<Mutex<RepairReport>>,
) {
    let dry_run = opts.dry_run;
    let note = |f: &dyn Fn(&mut RepairReport)| f(&mut report.lock().unwrap());
    note(&|r| r.objects_scanned += 1);
    let (mut degraded, mut fixed) = (false, true);
    for part in obj.extents() {
        let name = if obj.is_multipart() {
            format!("{}/{} part {}", obj.bucket, obj.key, part.number)
        } else {
            format!("{}/{}", obj.bucket, obj.key)
        };
        let a = assess(c, part, opts, report).await;
        let k = part.ec.k as usize;
        if a.lost.is_empty() && a.unavailable.is_empty() {
            continue;
        }
        degraded = true;
        if a.healthy < k {
            fixed = false;
            let why = format!("{name} ({} of {k} needed shards readable)", a.healthy);
            if a.healthy + a.unavailable.len() >= k {
                note(&|r| r.still_degraded.push(why.clone()));
            } else {
                note(&|r| r.unrecoverable.push(why.clone()));
            }
            continue;
        }
        if a.lost.is_empty() || dry_run {
            fixed = false;
            let why = format!(
                "{name} (lost {:?}, unavailable {:?})",
                a.lost, a.unavailable
            );
            note(&|r| r.still_degraded.push(why.clone()));
            continue;
        }
        match repair_part(c, &obj, part, &a.lost).await {
            Ok(out) => {
                c.metrics.repaired_shards.inc_by(out.rebuilt as u64);
                c.metrics.repaired_bytes.inc_by(out.bytes_written);
                note(&|r| {
                    r.shards_rebuilt += out.rebuilt as u64;
                    r.bytes_read += out.bytes_read;
                    r.bytes_written += out.bytes_written;
                });
                if out.rebuilt != a.lost.len() || !a.unavailable.is_empty() {
                    fixed = false;
                    if out.committed {
                        let why = format!(
                            "{name} ({} of {} lost shards rebuilt)",
                            out.rebuilt,
                            a.lost.len()
                        );
                        note(&|r| r.still_degraded.push(why.clone()));
                    }
                }
            }
            Err(e) => {
                fixed = false;
                let why = format!("{name} ({e})");
                note(&|r| r.still_degraded.push(why.clone()));
            }
        }
    }
    if degraded {
        note(&|r| r.degraded += 1);
        if fixed {
            note(&|r| r.repaired += 1);
        }
    }
}

/// What one object's repair did.
#[derive(Debug, Default)]
pub struct RepairOutcome {
    /// Shards rebuilt and committed.
    pub rebuilt: usize,
    /// Bytes read from healthy shards.
    pub bytes_read: u64,
    /// Bytes written to new shards.
    pub bytes_written: u64,
    /// The commit went through (false: the object changed meanwhile; nothing to do).
    pub committed: bool,
}

/// Where the bytes of the shards a move writes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Decoded from any k other shards (the shards are lost).
    Rebuild,
    /// Read from the shards themselves, where they are now (a drain or rebalance while
    /// their node is up): one read per shard, nothing decoded.
    Copy,
}

/// Rebuilds shards `lost` of `part` of `obj` onto new nodes and commits them.
pub async fn repair_part(
    c: &Arc<Coordinator>,
    obj: &ObjectMeta,
    part: &Part,
    lost: &[usize],
) -> Result<RepairOutcome, ApiError> {
    let current: Vec<Option<NodeId>> = part.shards.iter().map(|s| s.node.clone()).collect();
    let targets = repair_targets(&c.registry.candidates(), &current, lost);
    if targets.is_empty() {
        return Err(ApiError::ServiceUnavailable(
            "no node available to take the rebuilt shards".into(),
        ));
    }
    move_part(c, obj, part, &targets, Source::Rebuild).await
}

/// Writes shard `i` of `part` of `obj` to `node` for every `(i, node)` of `targets`, with
/// bytes from `source`, and commits the new locations (the old ones become garbage) unless
/// the object changed meanwhile. The writes are recorded in flight first, so a crash leaves
/// garbage, never a leak; the old shards stay readable until the commit.
pub async fn move_part(
    c: &Arc<Coordinator>,
    obj: &ObjectMeta,
    part: &Part,
    targets: &[(u16, NodeId)],
    source: Source,
) -> Result<RepairOutcome, ApiError> {
    let lost: Vec<usize> = targets.iter().map(|(i, _)| *i as usize).collect();
    let lost = &lost[..];
    let record = format!(
        "{}.r{}",
        part.version,
        now_ms() * 1000 + rand::random::<u16>() as u64 % 1000
    );
    let set = ShardSet {
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        shards: targets.to_vec(),
        since_ms: now_ms(),
        owner: 0,
    };
    let (r, s) = (record.clone(), set.clone());
    c.maint().begin_pending(r, s).await?;
    let result = write_shards(c, obj, part, lost, targets, source).await;
    let (ok, read, written) = match result {
        Ok(x) => x,
        Err(e) => {
            let (r, s) = (record.clone(), set.clone());
            c.maint().abort_pending(r, s).await?;
            c.gc_kick.notify_one();
            return Err(e);
        }
    };
    let (r, s, v, moved) = (record.clone(), set.clone(), part.version, ok.clone());
    let committed = c.maint().commit_repair(r, s, v, moved).await?;
    c.gc_kick.notify_one();
    if committed {
        let mut suspects = c.repair.suspects.lock().unwrap();
        for (i, _) in &ok {
            suspects.remove(&ShardId {
                version: part.version,
                index: *i,
            });
        }
        tracing::info!(object = %format!("{}/{}", obj.bucket, obj.key), shards = ok.len(), ?source, "shards moved");
    }
    Ok(RepairOutcome {
        rebuilt: if committed { ok.len() } else { 0 },
        bytes_read: read,
        bytes_written: written,
        committed,
    })
}

/// Streams shards `lost` (rebuilt, or copied from where they are) to their targets, within
/// the maintenance budget; returns the ones acknowledged whole, bytes read and written.
async fn write_shards(
    c: &Arc<Coordinator>,
    obj: &ObjectMeta,
    part: &Part,
    lost: &[usize],
    targets: &[(u16, NodeId)],
    source: Source,
) -> Result<(Vec<(u16, NodeId)>, u64, u64), ApiError> {
    let layout = part.layout();
    let shard_len = layout.shard_len();
    let header = |i: u16| ShardHeader {
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        version: part.version,
        shard_index: i,
        k: part.ec.k,
        m: part.ec.m,
        stripe_size: layout.stripe_size(),
        object_length: part.size,
        codec: part.codec.clone(),
        // Segments keep their small chunks (a packed object's read fetches one or two).
        chunk_size: if obj.bucket == crate::meta::SEGMENTS {
            crate::data::pack::CHUNK
        } else {
            part.piece as u32
        },
        etag: Some(part.etag.clone()),
        checksums: part.checksums.clone(),
        content_type: obj.content_type.clone(),
        user_meta: obj.user_meta.clone(),
        headers: obj.headers.clone(),
        role: obj.role_of(part),
    };
    let mut streams = NodeStreams::open(c, targets, header).await?;
    let (mut read, mut written) = (0u64, 0u64);
    let fetch = Fetch::new(c, obj, part, lost, source)?;
    let fetch = &fetch;
    // Stripes are read a few ahead of the one being written.
    let mut stripes = futures::stream::iter(fetch.groups(layout))
        .map(|g| fetch.get(g))
        .buffered(c.config.read_ahead.max(1));
    while let Some(fetched) = stripes.next().await {
        let (all, r) = fetched?;
        read += r;
        let piece_len = lost.first().map_or(0, |&i| all[i].len()) as u64;
        let sent = piece_len * streams.send(&all).await as u64;
        written += sent;
        c.budget.spend(sent).await;
        if streams.live() == 0 {
            break;
        }
    }
    let ok = streams
        .finish(|i| EndFrame {
            header: header(i),
            length: shard_len,
        })
        .await
        .into_iter()
        .filter_map(|(target, outcome)| match outcome {
            Ok(info) if info.length == shard_len => Some(target),
            _ => None,
        })
        .collect();
    Ok((ok, read, written))
}

/// Reads the pieces a move writes, a group of stripes at a time.
enum Fetch {
    Rebuild(StripeReader),
    Copy {
        /// (shard index, where it is now) of the shards moved.
        from: Vec<(usize, tessera_node::NodeClient)>,
        version: tessera_node::ObjectVersion,
        n: usize,
        layout: crate::layout::Layout,
        timeout: std::time::Duration,
    },
}

/// Shard bytes a copy reads per request.
const COPY_READ: u64 = 4 << 20;

impl Fetch {
    fn new(
        c: &Arc<Coordinator>,
        obj: &ObjectMeta,
        part: &Part,
        moved: &[usize],
        source: Source,
    ) -> Result<Self, ApiError> {
        Ok(match source {
            Source::Rebuild => Fetch::Rebuild(StripeReader::excluding(
                c.clone(),
                &obj.bucket,
                &obj.key,
                part,
                moved,
            )?),
            Source::Copy => Fetch::Copy {
                from: moved
                    .iter()
                    .map(|&i| {
                        part.shards[i]
                            .node
                            .as_ref()
                            .and_then(|n| c.registry.client(n))
                            .map(|client| (i, client))
                            .ok_or_else(|| {
                                ApiError::ServiceUnavailable(format!(
                                    "shard {i} of {}/{} has no node to copy from",
                                    obj.bucket, obj.key
                                ))
                            })
                    })
                    .collect::<Result<_, _>>()?,
                version: part.version,
                n: part.shards.len(),
                layout: part.layout(),
                timeout: c.config.shard_read_timeout,
            },
        })
    }

    /// The stripe ranges read at once: one stripe to rebuild; up to [`COPY_READ`] of each
    /// shard to copy.
    fn groups(&self, layout: crate::layout::Layout) -> Vec<std::ops::Range<u64>> {
        let per = match self {
            Fetch::Rebuild(_) => 1,
            Fetch::Copy { .. } => (COPY_READ / layout.piece.max(1)).max(1),
        };
        (0..layout.stripes())
            .step_by(per as usize)
            .map(|s| s..(s + per).min(layout.stripes()))
            .collect()
    }

    /// Every piece of stripes `g` indexed by shard (only the moved ones need bytes), and
    /// the bytes read.
    async fn get(&self, g: std::ops::Range<u64>) -> Result<(Vec<Bytes>, u64), ApiError> {
        match self {
            Fetch::Rebuild(reader) => {
                debug_assert_eq!(g.end - g.start, 1);
                reader.fetch_all(g.start).await
            }
            Fetch::Copy {
                from,
                version,
                n,
                layout,
                timeout,
            } => {
                let offset = layout.shard_offset(g.start);
                let len: u64 = g.clone().map(|s| layout.piece_len(s)).sum();
                let reads = from.iter().map(|(i, client)| async move {
                    let id = ShardId {
                        version: *version,
                        index: *i as u16,
                    };
                    client
                        .read_verified(id, offset, len, *timeout)
                        .await
                        .map(|chunks| (*i, crate::data::stripes::Chunks(chunks).contiguous()))
                        .map_err(|e| {
                            ApiError::ServiceUnavailable(format!("copying shard {id}: {e}"))
                        })
                });
                let mut pieces = vec![Bytes::new(); *n];
                let mut read = 0;
                for r in futures::future::join_all(reads).await {
                    let (i, b) = r?;
                    read += b.len() as u64;
                    pieces[i] = b;
                }
                Ok((pieces, read))
            }
        }
    }
}

/// Background repair (worker `repair`): the read-repair queue at once, a full scan every
/// `repair_interval`, writing within the maintenance budget.
pub async fn background(c: Arc<Coordinator>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "repair",
        "rebuilds lost and corrupt shards: objects reads and scrubs reported, and a full scan every --repair-interval",
    );
    let last_scan = Mutex::new(tokio::time::Instant::now());
    let schedule = Schedule {
        first_after: std::time::Duration::ZERO,
        every: c
            .config
            .repair_interval
            .min(std::time::Duration::from_secs(5)),
        kick: Some(&c.repair.wake),
        settle: std::time::Duration::ZERO,
    };
    periodic(w.clone(), stop.clone(), schedule, || async {
        let report = Arc::new(Mutex::new(RepairReport::default()));
        let _one_at_a_time = c.repair.run_lock.lock().await;
        let queued: Vec<(String, String)> = std::mem::take(&mut *c.repair.queue.lock().unwrap())
            .into_iter()
            .collect();
        w.begin("objects reported damaged", queued.len() as u64);
        let opts = Options::of(&c, &RepairRequest::default());
        let mut objects = Vec::new();
        for (b, k) in queued {
            if let Ok(Some(o)) = c.meta.object(b, k).await {
                objects.push(o);
            }
        }
        // Most at risk first.
        objects.sort_by_cached_key(|o| margin(&c, o, opts.grace));
        for obj in objects {
            if !w.gate(&stop).await {
                break;
            }
            let before = report.lock().unwrap().bytes_written;
            check_and_repair(&c, obj, opts, &report).await;
            w.advance(1, report.lock().unwrap().bytes_written - before);
        }
        let mut r = report.lock().unwrap().clone();
        let scan_due = last_scan.lock().unwrap().elapsed() >= c.config.repair_interval;
        if scan_due {
            *last_scan.lock().unwrap() = tokio::time::Instant::now();
            w.begin("full scan", 0);
            let scan = Arc::new(Mutex::new(RepairReport::default()));
            let all = RepairRequest {
                concurrency: 1,
                ..Default::default()
            };
            run(&c, &all, &scan).await;
            let scan = scan.lock().unwrap().clone();
            r.add(&scan);
            *c.repair.last_scan.lock().unwrap() = Some((now_ms(), scan));
        }
        c.repair.background.lock().unwrap().add(&r);
        Ok(format!(
            "{} objects looked at, {} shards rebuilt",
            r.objects_scanned, r.shards_rebuilt
        ))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::conformance::object;

    #[test]
    fn objects_closest_to_unrecoverable_come_first() {
        // 2+1 objects on nodes 0, 1, 2; node 1 is dead.
        let dead = object("b", "dead-node", 10).parts[0].shards[1].node.clone();
        let usable = |_: &Part, _: usize, n: &NodeId| Some(n) != dead.as_ref();
        let one_lost = object("b", "one-lost", 10);
        let two_lost = {
            let mut o = object("b", "two-lost", 10);
            o.parts[0].shards[0].state = ShardState::Missing;
            o
        };
        let mut objs = vec![one_lost.clone(), two_lost.clone()];
        assert_eq!(margin_with(&one_lost, usable), 0);
        assert_eq!(margin_with(&two_lost, usable), -1);
        objs.sort_by_cached_key(|o| margin_with(o, usable));
        let order: Vec<&str> = objs.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(order, ["two-lost", "one-lost"]);
        // A multipart object counts its worst part.
        let mut multi = object("b", "multi", 20);
        let mut p2 = multi.parts[0].clone();
        p2.shards[0].state = ShardState::Missing;
        multi.parts.push(p2);
        assert_eq!(margin_with(&multi, usable), -1);
    }
}
