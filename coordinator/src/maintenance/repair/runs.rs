//! Repair runs: which objects are looked at, in which order, how each is assessed, verified
//! and repaired; operator runs (stored as jobs so a new leader resumes them).

use super::moves::repair_part;
use super::queue::{RepairReport, RepairRequest, WithinGrace};
use crate::error::ApiError;
use crate::maintenance::Maintenance;
use crate::meta::{now_ms, ObjectMeta, Part, ShardState};
use futures::StreamExt;
use std::sync::{Arc, Mutex};
use tessera_node::{NodeId, ShardId, StoreError};

/// How one run looks at objects.
#[derive(Clone, Copy, Debug)]
pub(super) struct Options {
    dry_run: bool,
    pub(super) grace: std::time::Duration,
    verify: bool,
}

impl Options {
    pub(super) fn of(c: &Maintenance, req: &RepairRequest) -> Self {
        Options {
            dry_run: req.dry_run,
            grace: req
                .grace_ms
                .map_or(c.config.repair_grace, std::time::Duration::from_millis),
            verify: req.verify,
        }
    }
}

/// Validates `req` and starts a run in the background; returns its id.
pub async fn start_run(c: &Arc<Maintenance>, req: RepairRequest) -> Result<u64, ApiError> {
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
fn spawn_run(c: &Arc<Maintenance>, id: u64, req: RepairRequest, resumed: bool) {
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
pub async fn resume_runs(c: &Arc<Maintenance>) -> Result<usize, ApiError> {
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
pub async fn run(c: &Arc<Maintenance>, req: &RepairRequest, report: &Arc<Mutex<RepairReport>>) {
    let started = std::time::Instant::now();
    report.lock().unwrap().started_ms = now_ms();
    let opts = Options::of(c, req);
    report.lock().unwrap().within_grace = within_grace(c, opts.grace);
    let keep = |o: &ObjectMeta| req.bucket.as_ref().is_none_or(|b| &o.bucket == b);
    // A lost node's objects come from the index by node; otherwise every object is walked.
    let mut pages = Pages::new(req.node.clone());
    let total = match c.meta.counters().await {
        Ok(n) => match (&req.node, &req.bucket) {
            (Some(node), _) => n.nodes.get(node.as_str()).map_or(0, |n| n.objects),
            (None, Some(b)) => n
                .buckets
                .get(b)
                .map_or(0, |b| b.objects + b.noncurrent_objects + b.delete_markers),
            (None, None) => {
                n.buckets
                    .values()
                    .map(|b| b.objects + b.noncurrent_objects + b.delete_markers)
                    .sum::<u64>()
                    + n.segments.segments
            }
        },
        Err(_) => 0,
    };
    report.lock().unwrap().objects_total = total;
    loop {
        let mut page = match pages.next(c).await {
            Ok(Some(p)) => p,
            Ok(None) => break,
            Err(e) => {
                let mut r = report.lock().unwrap();
                r.still_degraded
                    .push(format!("(metadata scan failed: {e})"));
                r.done = true;
                return;
            }
        };
        page.retain(|o| keep(o));
        check_page(c, page, opts, report, req.concurrency).await;
    }
    let mut r = report.lock().unwrap();
    r.elapsed_ms = started.elapsed().as_millis() as u64;
    r.done = true;
}

/// Looks at (and repairs) the objects of one page, the most at risk first (the object one
/// loss from unrecoverable before the one with spares), `concurrency` at a time.
pub(super) async fn check_page(
    c: &Arc<Maintenance>,
    mut page: Vec<ObjectMeta>,
    opts: Options,
    report: &Arc<Mutex<RepairReport>>,
    concurrency: usize,
) {
    page.sort_by_cached_key(|o| margin(c, o, opts.grace));
    futures::stream::iter(page)
        .map(|o| check_and_repair(c, o, opts, report))
        .buffer_unordered(concurrency.max(1))
        .for_each(|_| async {})
        .await;
}

/// A selection of committed versions and segments read a page at a time, so that no
/// operation holds all of them: every one (in (bucket, key, newest first) order), those with
/// a shard on one node (from the index by node), or those of a bucket under a prefix.
pub struct Pages {
    scope: Scope,
    after: Option<Vec<u8>>,
    done: bool,
}

/// Which versions [`Pages`] reads.
enum Scope {
    All,
    Node(NodeId),
    Under(String, String),
}

impl Pages {
    /// Every version, or (`node`) those with a shard on it.
    pub fn new(node: Option<NodeId>) -> Self {
        Pages {
            scope: node.map_or(Scope::All, Scope::Node),
            after: None,
            done: false,
        }
    }

    /// Every version after `after` (a cursor [`Pages::cursor`] gave).
    pub fn resume(after: Vec<u8>) -> Self {
        Pages {
            scope: Scope::All,
            after: Some(after),
            done: false,
        }
    }

    /// Where the next page starts (`None`: at the beginning, or nothing is left).
    pub fn cursor(&self) -> Option<&[u8]> {
        self.after.as_deref().filter(|_| !self.done)
    }

    /// The versions of `bucket`'s keys that start with `prefix`.
    pub fn under(bucket: &str, prefix: &str) -> Self {
        Pages {
            scope: Scope::Under(bucket.into(), prefix.into()),
            after: None,
            done: false,
        }
    }

    /// The next page (`None` after the last).
    pub async fn next(&mut self, c: &Maintenance) -> Result<Option<Vec<ObjectMeta>>, ApiError> {
        if self.done {
            return Ok(None);
        }
        let after = self.after.take();
        let (page, next) = match &self.scope {
            Scope::Node(n) => c.meta.objects_on_node(n.clone(), after, 1000).await?,
            Scope::All => c.meta.objects_after(after, 1000).await?,
            Scope::Under(b, p) => {
                c.meta
                    .objects_under(b.clone(), p.clone(), after, 1000)
                    .await?
            }
        };
        // A walk of every object stops at the end of the records: a short page is the last
        // (the index by node may skip stale entries, so only a page of none ends it).
        let last = matches!(self.scope, Scope::All) && page.len() < 1000;
        match next {
            Some(n) if !page.is_empty() && !last => self.after = Some(n),
            _ => self.done = true,
        }
        Ok((!page.is_empty()).then_some(page))
    }
}

/// Shards of one object, sorted by what state they are in.
#[derive(Debug, Default)]
struct Assessment {
    lost: Vec<usize>,
    unavailable: Vec<usize>,
    healthy: usize,
}

/// Down nodes inside `grace`, and when each will count as lost.
fn within_grace(c: &Maintenance, grace: std::time::Duration) -> Vec<WithinGrace> {
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
pub(super) fn margin(c: &Maintenance, obj: &ObjectMeta, grace: std::time::Duration) -> i64 {
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
    c: &Arc<Maintenance>,
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
    c: &Arc<Maintenance>,
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
pub(super) async fn check_and_repair(
    c: &Arc<Maintenance>,
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
        let mut objs = [one_lost.clone(), two_lost.clone()];
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
