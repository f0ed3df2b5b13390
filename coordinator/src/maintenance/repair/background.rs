//! Background repair (worker `repair`), writing within the maintenance budget. Every few
//! seconds (or at once when a read reports damage):
//!
//! 1. **The queue**: objects that reads, scrubs and short writes reported, most at risk first.
//! 2. **Lost nodes**: for each node down past `--repair-grace` (or no longer registered) that
//!    the metadata still places shards on, a run over its objects from the index by node:
//!    O(what it held). A node is looked at again after `--repair-interval`, or as soon as the
//!    count of its objects changes.
//! 3. **A share of the full scan**: the safety net for what nothing reported, a walk of every
//!    object a page at a time at most `--repair-scan-rate` objects a second (a token bucket
//!    the steps draw from; an object whose shards the scan asks the nodes about costs one
//!    token per shard, a packed object one), started again `--repair-interval` after the
//!    last one began. Its cost per second is bounded whatever the store holds (a whole scan
//!    at 3M objects took a core for minutes, every five minutes). Its cursor is stored in the
//!    metadata after every page (job `repair-scan`), so a new leader goes on where the last
//!    one stopped.

use super::queue::{RepairReport, RepairRequest};
use super::runs::{check_page, margin, run, Options, Pages};
use crate::error::ApiError;
use crate::maintenance::worker::Schedule;
use crate::maintenance::{periodic, Maintenance};
use crate::meta::{now_ms, ObjectMeta};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_node::NodeId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The job the full scan's cursor is stored under.
const JOB: &str = "repair-scan";

/// The full scan as stored: where its next page starts (hex), and when it began.
#[derive(Serialize, Deserialize)]
struct ScanCursor {
    after: Option<String>,
    began_ms: u64,
}

/// A full scan under way.
struct Scan {
    pages: Pages,
    report: Arc<Mutex<RepairReport>>,
    /// Objects it will look at (from the counters when it began).
    total: u64,
    began_ms: u64,
}

/// The scan a previous leader (or this process before a restart) left unfinished.
async fn stored_scan(c: &Maintenance) -> Result<Option<ScanCursor>, ApiError> {
    c.job(JOB).await
}

/// Stores where `scan` is (`None`: it ended).
async fn store_scan(c: &Maintenance, scan: Option<&Scan>) -> Result<(), ApiError> {
    let v = match scan {
        Some(s) => Some(serde_json::to_value(ScanCursor {
            after: s.pages.cursor().map(hex::encode),
            began_ms: s.began_ms,
        })?),
        None => None,
    };
    Ok(c.maint().set_job(JOB.into(), v).await?)
}

/// The scan's allowance: objects it may still look at, and when that was last topped up.
struct Credit {
    objects: f64,
    at: Instant,
}

impl Credit {
    /// Adds what `rate` objects a second earned since the last top-up (at most two steps'
    /// worth, so an idle spell does not turn into a burst); 0 is no limit.
    fn top_up(&mut self, rate: u64, step: Duration) -> f64 {
        if rate == 0 {
            return f64::INFINITY;
        }
        let earned = self.at.elapsed().as_secs_f64() * rate as f64;
        let cap = 2.0 * step.as_secs_f64() * rate as f64;
        self.objects = (self.objects + earned).min(cap);
        self.at = Instant::now();
        self.objects
    }
}

/// What looking at `o` costs the scan's allowance: one for an object whose shards are
/// someone else's (a packed object: its segment is looked at on its own), else one per shard
/// the scan asks a node about (a segment of 4+2 costs six).
fn scan_cost(o: &ObjectMeta) -> f64 {
    o.extents().map(|p| p.shards.len()).sum::<usize>().max(1) as f64
}

/// Objects and segments stored, from the counters.
async fn stored(c: &Maintenance) -> u64 {
    c.meta.counters().await.map_or(0, |n| {
        n.buckets
            .values()
            .map(|b| b.objects + b.noncurrent_objects + b.delete_markers)
            .sum::<u64>()
            + n.segments.segments
    })
}

/// The worker (leader only; see the module docs).
pub async fn background(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "repair",
        "rebuilds lost and corrupt shards: objects reported damaged, lost nodes' objects, and a full scan paced by --repair-scan-rate",
    );
    let step = c.config.repair_interval.min(Duration::from_secs(5));
    let scan: Mutex<Option<Scan>> = Mutex::new(None);
    let scan_began: Mutex<Option<Instant>> = Mutex::new(None);
    let credit = Mutex::new(Credit {
        objects: 0.0,
        at: Instant::now(),
    });
    // Lost nodes: when each was last looked at, and how many objects it held after.
    let looked: Mutex<HashMap<NodeId, (Instant, u64)>> = Mutex::new(HashMap::new());
    let schedule = Schedule {
        first_after: Duration::ZERO,
        every: step,
        kick: Some(&c.repair.wake),
        settle: Duration::ZERO,
    };
    periodic(w.clone(), stop.clone(), schedule, || async {
        let _one_at_a_time = c.repair.run_lock.lock().await;
        let opts = Options::of(&c, &RepairRequest::default());
        let mut r = RepairReport::default();

        // 1. The queue.
        let queued: Vec<(String, String)> = std::mem::take(&mut *c.repair.queue.lock().unwrap())
            .into_iter()
            .collect();
        w.begin("objects reported damaged", queued.len() as u64);
        let mut objects = Vec::new();
        for (b, k) in queued {
            if let Ok(Some(o)) = c.meta.object(b, k).await {
                objects.push(o);
            }
        }
        let report = Arc::new(Mutex::new(RepairReport::default()));
        objects.sort_by_cached_key(|o| margin(&c, o, opts.grace));
        for obj in objects {
            if !w.gate(&stop).await {
                return Ok("stopped".into());
            }
            let before = report.lock().unwrap().bytes_written;
            check_page(&c, vec![obj], opts, &report, 1).await;
            w.advance(1, report.lock().unwrap().bytes_written - before);
        }
        r.add(&report.lock().unwrap());

        // 2. Lost nodes, from the index by node.
        for (id, held) in c.meta.counters().await?.nodes {
            let Ok(node) = id.parse::<NodeId>() else {
                continue;
            };
            let lost = c.registry.client(&node).is_none()
                || (!c.registry.up(&node) && c.registry.down_for(&node) >= opts.grace);
            let due = looked.lock().unwrap().get(&node).is_none_or(|(t, after)| {
                t.elapsed() >= c.config.repair_interval || *after != held.objects
            });
            if held.objects == 0 || !lost || !due {
                continue;
            }
            w.begin(format!("objects of lost node {node}"), held.objects);
            let report = Arc::new(Mutex::new(RepairReport::default()));
            let req = RepairRequest {
                node: Some(node.clone()),
                concurrency: 1,
                ..Default::default()
            };
            run(&c, &req, &report).await;
            r.add(&report.lock().unwrap());
            let after = c
                .meta
                .counters()
                .await?
                .nodes
                .get(id.as_str())
                .map_or(0, |n| n.objects);
            looked.lock().unwrap().insert(node, (Instant::now(), after));
        }

        // 3. A share of the full scan.
        let mut current = scan.lock().unwrap().take();
        let due = scan_began
            .lock()
            .unwrap()
            .is_none_or(|t| t.elapsed() >= c.config.repair_interval);
        if current.is_none() {
            let left = stored_scan(&c).await?;
            if left.is_some() || due {
                *scan_began.lock().unwrap() = Some(Instant::now());
                let resumed = left.as_ref().and_then(|l| l.after.as_deref());
                let pages = match resumed.and_then(|a| hex::decode(a).ok()) {
                    Some(after) => Pages::resume(after),
                    None => Pages::new(None),
                };
                let s = Scan {
                    pages,
                    report: Default::default(),
                    total: stored(&c).await,
                    began_ms: left.map_or_else(now_ms, |l| l.began_ms),
                };
                store_scan(&c, Some(&s)).await?;
                current = Some(s);
            }
        }
        let allowance = credit
            .lock()
            .unwrap()
            .top_up(c.config.repair_scan_rate, step);
        if let Some(mut s) = current {
            let looked_at = s.report.lock().unwrap().objects_scanned;
            w.begin("full scan", s.total.max(looked_at));
            w.advance(looked_at, 0);
            let mut finished = false;
            let mut spent = 0.0;
            while spent < allowance {
                if !w.gate(&stop).await {
                    return Ok("stopped".into());
                }
                let Some(page) = s.pages.next(&c).await? else {
                    finished = true;
                    break;
                };
                spent += page.iter().map(scan_cost).sum::<f64>();
                let looked = page.len() as u64;
                check_page(&c, page, opts, &s.report, 1).await;
                let more = s.pages.cursor().is_some();
                if more {
                    // Progress shows what a new leader would not look at again.
                    store_scan(&c, Some(&s)).await?;
                }
                w.advance(looked, 0);
                if !more {
                    finished = true;
                    break;
                }
            }
            credit.lock().unwrap().objects -= spent.min(f64::MAX);
            if finished {
                store_scan(&c, None).await?;
                let done = s.report.lock().unwrap().clone();
                r.add(&done);
                *c.repair.last_scan.lock().unwrap() = Some((now_ms(), done));
            } else {
                // Its cursor was stored with its last page (or when it began).
                *scan.lock().unwrap() = Some(s);
            }
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

    #[tokio::test(start_paused = true)]
    async fn the_scan_earns_its_rate_and_no_burst_after_an_idle_spell() {
        let mut credit = Credit {
            objects: 0.0,
            at: Instant::now(),
        };
        let step = Duration::from_secs(5);
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(credit.top_up(1000, step), 2000.0);
        credit.objects -= 3000.0;
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            credit.top_up(1000, step),
            0.0,
            "an overdraft is paid back first"
        );
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(
            credit.top_up(1000, step),
            10_000.0,
            "two steps' worth at most"
        );
        assert!(credit.top_up(0, step).is_infinite(), "0: no limit");
    }

    #[test]
    fn a_scanned_object_costs_the_node_requests_it_makes() {
        let striped = crate::meta::conformance::object("b", "k", 10);
        assert_eq!(scan_cost(&striped), 3.0, "2+1: three shards asked about");
        let mut packed = striped.clone();
        packed.parts.clear();
        assert_eq!(
            scan_cost(&packed),
            1.0,
            "its segment is looked at on its own"
        );
    }
}
