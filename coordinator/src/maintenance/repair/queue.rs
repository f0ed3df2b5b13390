//! Repair's shared state: what operators ask for, what runs report, and the queue of objects
//! reads and scrubs found damaged (the [`DamageSink`] of the data path).

use crate::data::DamageSink;
use crate::meta::now_ms;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use tessera_node::{NodeId, ShardId};

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
    pub(super) fn add(&mut self, other: &RepairReport) {
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

/// What `GET /repair` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RepairStatus {
    /// Objects queued for a look (read-repair, scrub reports).
    pub queue: u64,
    /// Shards found corrupt and not yet rebuilt.
    pub suspect_shards: u64,
    /// Totals of the background worker since the coordinator started.
    pub background: RepairReport,
    /// The latest operator run.
    pub last_run: Option<RepairReport>,
    /// The last complete background scan.
    pub last_scan: Option<ScanSummary>,
}

/// What the last complete background scan found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScanSummary {
    /// When it finished, ms since the epoch.
    pub finished_ms: u64,
    /// Objects looked at.
    pub objects_scanned: u64,
    /// Degraded objects found.
    pub degraded: u64,
    /// Objects with fewer than k healthy shards.
    pub unrecoverable: Vec<String>,
    /// Objects still degraded after the scan's repairs.
    pub still_degraded: Vec<String>,
}

/// At most this many objects queued and shards suspected at once: past it, reports are
/// dropped (the background pass over every object, and the nodes' next scrub report, find
/// them again), so a flood of damage reports cannot grow the coordinator without bound.
pub const QUEUE_MAX: usize = 100_000;

/// Repair state shared by the API, the GET path and the background worker.
#[derive(Default)]
pub struct Repairer {
    /// Objects to look at soon (read-repair, scrub reports).
    pub(super) queue: Mutex<BTreeSet<(String, String)>>,
    /// Shards found corrupt and not yet rebuilt.
    pub(super) suspects: Mutex<HashSet<ShardId>>,
    pub(super) wake: tokio::sync::Notify,
    pub(super) runs: Mutex<BTreeMap<u64, Arc<Mutex<RepairReport>>>>,
    /// One run at a time (background or operator).
    pub(super) run_lock: tokio::sync::Mutex<()>,
    pub(super) background: Mutex<RepairReport>,
    /// The last complete background scan: when it finished (ms since the epoch) and what it
    /// found; `tessera status` reports degraded and unrecoverable objects from it.
    pub(super) last_scan: Mutex<Option<(u64, RepairReport)>>,
}

impl Repairer {
    /// A node's scrub found these shards corrupt.
    pub fn report_corrupt(&self, shards: &[tessera_node::ShardHeader]) {
        for h in shards {
            self.note(&h.bucket, &h.key, Some(h.shard_id()));
        }
        self.wake.notify_one();
    }

    /// Queues `bucket`/`key` (and suspects shard `corrupt`) unless the queue is full.
    fn note(&self, bucket: &str, key: &str, corrupt: Option<ShardId>) {
        if let Some(id) = corrupt {
            let mut s = self.suspects.lock().unwrap();
            if s.len() < QUEUE_MAX {
                s.insert(id);
            }
        }
        let mut q = self.queue.lock().unwrap();
        if q.len() < QUEUE_MAX {
            q.insert((bucket.to_string(), key.to_string()));
        }
    }

    /// Queue length, suspects, the background totals and the latest run, for `status`.
    pub fn status(&self) -> RepairStatus {
        let last_run = self
            .runs
            .lock()
            .unwrap()
            .values()
            .next_back()
            .map(|r| r.lock().unwrap().clone());
        let last_scan = self
            .last_scan
            .lock()
            .unwrap()
            .as_ref()
            .map(|(at, r)| ScanSummary {
                finished_ms: *at,
                objects_scanned: r.objects_scanned,
                degraded: r.degraded,
                unrecoverable: r.unrecoverable.clone(),
                still_degraded: r.still_degraded.clone(),
            });
        RepairStatus {
            queue: self.queue.lock().unwrap().len() as u64,
            suspect_shards: self.suspects.lock().unwrap().len() as u64,
            background: self.background.lock().unwrap().clone(),
            last_run,
            last_scan,
        }
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

/// A read found shard `id` of `bucket`/`key` missing or corrupt: queue the object now.
impl DamageSink for Repairer {
    fn report_damage(&self, bucket: &str, key: &str, id: ShardId, corrupt: bool) {
        self.note(bucket, key, corrupt.then_some(id));
        self.wake.notify_one();
    }

    fn report_short(&self, bucket: &str, key: &str) {
        self.note(bucket, key, None);
    }
}
