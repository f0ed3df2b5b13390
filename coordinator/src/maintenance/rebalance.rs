//! Rebalance: moving shards from fuller to emptier nodes (after adding nodes) until every
//! node's used fraction is within a band.
//!
//! Usage is counted from the metadata (the bytes of the shards each node holds for committed
//! objects), not from the nodes' reports, which keep counting a moved shard until garbage
//! collection deletes it; capacity comes from the nodes' reports (`--capacity`, else their
//! filesystem). A move copies one shard (one read, nothing decoded) to a node below the mean
//! from one above it, only where it narrows the gap without overshooting, never onto a node
//! holding another shard of the same part, and never into a zone holding more of the part's
//! shards than the zone it leaves. Moves use repair's in-flight records and fenced commit
//! ([`super::repair::move_part`]), spend from the maintenance budget (and the job's own
//! rate), and reads keep working throughout: the old shard is readable until the commit and
//! collected after the GC grace. The job is stored in the metadata, so a restarted leader
//! resumes it; `--auto-rebalance` runs it in the background whenever the spread exceeds the
//! default band.

use super::periodic;
use super::repair::{move_part, Source};
use super::worker::{Budget, Schedule};
use super::Maintenance;
use crate::error::ApiError;
use crate::meta::{ObjectMeta, ShardState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tessera_node::NodeId;
use tokio_util::sync::CancellationToken;

/// The job's name in the metadata.
const JOB: &str = "rebalance";

/// Default band: used fractions within 10 percentage points.
pub const DEFAULT_BAND: f64 = 0.10;

/// How often the background mode looks at the spread.
const AUTO_EVERY: Duration = Duration::from_secs(60);

/// A rebalance as asked for and stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RebalanceRequest {
    /// Largest accepted difference between the fullest and emptiest node's used fraction.
    #[serde(default = "default_band")]
    pub band: f64,
    /// The job's own limit in bytes per second (0: only the maintenance budget).
    #[serde(default)]
    pub rate: u64,
    /// Report the balance and what would move; store nothing.
    #[serde(default)]
    pub dry_run: bool,
}

fn default_band() -> f64 {
    DEFAULT_BAND
}

/// One node's share.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeUse {
    /// Node id.
    pub node: NodeId,
    /// Zone.
    pub zone: String,
    /// Bytes of shards of committed objects on it.
    pub used: u64,
    /// Its capacity.
    pub capacity: u64,
    /// `used / capacity`.
    pub fraction: f64,
}

/// The balance of the nodes taking shards, and the job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Balance {
    /// Nodes taking shards.
    pub nodes: Vec<NodeUse>,
    /// Fullest minus emptiest used fraction.
    pub spread: f64,
    /// The band asked for (the default when no job runs).
    pub band: f64,
    /// A rebalance job is stored.
    pub running: bool,
    /// Bytes that would have to move to bring every node to the mean (an estimate).
    pub bytes_to_move: u64,
}

/// Per-node usage during a pass.
struct Usage {
    nodes: HashMap<NodeId, (String, u64, u64)>,
}

impl Usage {
    /// Nodes taking shards (up, no lifecycle state) with their zone, the bytes the metadata
    /// places on them (the counters kept on commit), and their capacity.
    async fn of(c: &Maintenance) -> Result<Self, ApiError> {
        let counted = c.meta.counters().await?.nodes;
        let nodes: HashMap<NodeId, (String, u64, u64)> = c
            .registry
            .view()
            .into_iter()
            .filter(|n| n.state == "up")
            .map(|n| {
                let cap = if n.capacity > 0 {
                    n.capacity
                } else {
                    n.used + n.free
                };
                let used = counted.get(n.id.as_str()).map_or(0, |c| c.bytes);
                (n.id, (n.zone, used, cap.max(1)))
            })
            .collect();
        Ok(Usage { nodes })
    }

    /// The nodes above the mean, fullest first: where shards move from.
    fn over(&self) -> Vec<NodeId> {
        let mean = self.mean();
        let mut over: Vec<(f64, NodeId)> = self
            .nodes
            .keys()
            .filter_map(|n| {
                self.fraction(n)
                    .filter(|f| *f > mean)
                    .map(|f| (f, n.clone()))
            })
            .collect();
        over.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        over.into_iter().map(|(_, n)| n).collect()
    }

    fn fraction(&self, n: &NodeId) -> Option<f64> {
        self.nodes.get(n).map(|(_, u, c)| *u as f64 / *c as f64)
    }

    fn mean(&self) -> f64 {
        let (u, c) = self
            .nodes
            .values()
            .fold((0u64, 0u64), |(u, c), (_, nu, nc)| (u + nu, c + nc));
        u as f64 / c.max(1) as f64
    }

    fn spread(&self) -> f64 {
        let f: Vec<f64> = self
            .nodes
            .values()
            .map(|(_, u, c)| *u as f64 / *c as f64)
            .collect();
        let max = f.iter().copied().fold(f64::MIN, f64::max);
        let min = f.iter().copied().fold(f64::MAX, f64::min);
        if f.is_empty() {
            0.0
        } else {
            max - min
        }
    }

    fn balance(&self, band: f64, running: bool) -> Balance {
        let mean = self.mean();
        let mut nodes: Vec<NodeUse> = self
            .nodes
            .iter()
            .map(|(id, (zone, used, capacity))| NodeUse {
                node: id.clone(),
                zone: zone.clone(),
                used: *used,
                capacity: *capacity,
                fraction: *used as f64 / *capacity as f64,
            })
            .collect();
        nodes.sort_by(|a, b| a.node.cmp(&b.node));
        let bytes_to_move = nodes
            .iter()
            .map(|n| (n.used as f64 - mean * n.capacity as f64).max(0.0) as u64)
            .sum();
        Balance {
            nodes,
            spread: self.spread(),
            band,
            running,
            bytes_to_move,
        }
    }

    /// The best node to take shard `i` of a part placed on `current` (index -> node),
    /// moving from `from`: below the mean, not overshooting, not holding another shard of
    /// the part, not into a zone with more of its shards than `from`'s; the emptiest such.
    fn target(&self, current: &[Option<NodeId>], i: usize, len: u64) -> Option<NodeId> {
        let from = current[i].as_ref()?;
        let (from_zone, fu, fc) = self.nodes.get(from)?;
        let mean = self.mean();
        let f_from = *fu as f64 / *fc as f64;
        if f_from <= mean {
            return None;
        }
        let f_from_after = (*fu - len.min(*fu)) as f64 / *fc as f64;
        let mut zone_load: BTreeMap<&str, usize> = BTreeMap::new();
        for n in current.iter().flatten() {
            if let Some((z, _, _)) = self.nodes.get(n) {
                *zone_load.entry(z).or_default() += 1;
            }
        }
        let from_load = zone_load.get(from_zone.as_str()).copied().unwrap_or(0);
        self.nodes
            .iter()
            .filter(|(id, _)| !current.iter().flatten().any(|n| n == *id))
            .filter(|(_, (z, _, _))| {
                z == from_zone || zone_load.get(z.as_str()).copied().unwrap_or(0) < from_load
            })
            .map(|(id, (_, u, c))| (id, *u as f64 / *c as f64, (*u + len) as f64 / *c as f64))
            .filter(|(_, f, after)| *f < mean && *after <= f_from_after)
            .min_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)))
            .map(|(id, _, _)| id.clone())
    }

    fn moved(&mut self, from: &NodeId, to: &NodeId, len: u64) {
        if let Some(e) = self.nodes.get_mut(from) {
            e.1 = e.1.saturating_sub(len);
        }
        if let Some(e) = self.nodes.get_mut(to) {
            e.1 += len;
        }
    }
}

/// The balance now, and the stored job's band if one runs.
pub async fn status(c: &Arc<Maintenance>) -> Result<Balance, ApiError> {
    let job = stored(c).await?;
    let band = job.as_ref().map_or(DEFAULT_BAND, |j| j.band);
    Ok(Usage::of(c).await?.balance(band, job.is_some()))
}

async fn stored(c: &Maintenance) -> Result<Option<RebalanceRequest>, ApiError> {
    c.job(JOB).await
}

/// Validates `req` and, unless it is a dry run, stores the job for the leader's
/// `rebalance` worker. Answers the balance now.
pub async fn start(c: &Arc<Maintenance>, req: RebalanceRequest) -> Result<Balance, ApiError> {
    if !(req.band > 0.0 && req.band <= 1.0) {
        return Err(ApiError::InvalidArgument(format!(
            "band {} must be a fraction in (0, 1], e.g. 0.05",
            req.band
        )));
    }
    if !req.dry_run {
        let spec = serde_json::to_value(RebalanceRequest {
            dry_run: false,
            ..req.clone()
        })?;
        c.meta.set_job(JOB.into(), Some(spec)).await?;
        tracing::info!(band = req.band, rate = req.rate, "rebalance started");
    }
    Ok(Usage::of(c).await?.balance(req.band, !req.dry_run))
}

/// Moves at most one shard of each stored run of `obj` from a node above the mean to one
/// below it; (moves, failed moves, bytes written).
async fn rebalance_object(
    c: &Arc<Maintenance>,
    usage: &mut Usage,
    obj: &ObjectMeta,
    budget: &Budget,
) -> (u64, u64, u64) {
    let (mut moves, mut failed, mut bytes) = (0, 0, 0);
    for part in obj.extents() {
        let len = part.layout().shard_len();
        let current: Vec<Option<NodeId>> = part.shards.iter().map(|s| s.node.clone()).collect();
        // The shard on the fullest node above the mean that has a taker.
        let mut order: Vec<usize> = (0..current.len())
            .filter(|&i| part.shards[i].state == ShardState::Ok)
            .collect();
        order.sort_by(|&a, &b| {
            let f = |i: usize| current[i].as_ref().and_then(|n| usage.fraction(n));
            f(b).unwrap_or(0.0).total_cmp(&f(a).unwrap_or(0.0))
        });
        let Some((i, to)) = order
            .into_iter()
            .find_map(|i| usage.target(&current, i, len).map(|t| (i, t)))
        else {
            continue;
        };
        let from = current[i].clone().expect("a target implies a source");
        match move_part(c, obj, part, &[(i as u16, to.clone())], Source::Copy).await {
            Ok(out) if out.committed => {
                usage.moved(&from, &to, len);
                moves += 1;
                bytes += out.bytes_written;
                budget.spend(out.bytes_written).await;
            }
            Ok(_) => {}
            Err(e) => {
                failed += 1;
                tracing::debug!(error = %e, "rebalance move failed");
            }
        }
    }
    (moves, failed, bytes)
}

/// Ends a stored rebalance job (moves already made stay).
pub async fn cancel(c: &Arc<Maintenance>) -> Result<(), ApiError> {
    c.meta.set_job(JOB.into(), None).await?;
    Ok(())
}

/// Leader only (worker `rebalance`): runs the stored job, or with `--auto-rebalance` the
/// default one whenever the spread exceeds it.
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "rebalance",
        "moves shards from fuller to emptier nodes (tessera rebalance, --auto-rebalance)",
    );
    // Background mode: when it last looked, and how many nodes took shards then (a node
    // joining or leaving is a reason to look again at once).
    let last_auto: std::sync::Mutex<(Option<tokio::time::Instant>, usize)> = Default::default();
    let limit: std::sync::Mutex<Option<(u64, Arc<Budget>)>> = Default::default();
    let schedule = Schedule::every(Duration::from_secs(1));
    periodic(w.clone(), stop.clone(), schedule, || async {
        let job = match stored(&c).await? {
            Some(j) => j,
            None if c.config.auto_rebalance && {
                let taking = c.registry.candidates().len();
                let mut last = last_auto.lock().unwrap();
                let due = last.0.is_none_or(|t| t.elapsed() >= AUTO_EVERY) || last.1 != taking;
                if due {
                    *last = (Some(tokio::time::Instant::now()), taking);
                }
                due
            } =>
            {
                let job = RebalanceRequest {
                    band: DEFAULT_BAND,
                    rate: 0,
                    dry_run: false,
                };
                let spread = Usage::of(&c).await?.spread();
                if spread <= job.band {
                    return Ok(format!("background mode: spread {spread:.3} within the band"));
                }
                // Stored like an operator's job: it runs to the end, across restarts.
                tracing::info!(spread, "background rebalance started");
                c.maint()
                    .set_job(JOB.into(), Some(serde_json::to_value(&job)?))
                    .await?;
                job
            }
            None => return Ok("no rebalance job".into()),
        };
        let budget = {
            let mut l = limit.lock().unwrap();
            match &*l {
                Some((rate, b)) if *rate == job.rate => b.clone(),
                _ => {
                    let b = Arc::new(Budget::new(job.rate));
                    *l = Some((job.rate, b.clone()));
                    b
                }
            }
        };
        // Balance is judged over every node that takes shards: wait for down ones (a
        // restarted coordinator hears from its nodes within a heartbeat).
        let down = c
            .registry
            .view()
            .iter()
            .filter(|n| n.state == "down")
            .count();
        if down > 0 {
            return Ok(format!("waiting: {down} nodes are down"));
        }
        let mut usage = Usage::of(&c).await?;
        if usage.spread() <= job.band {
            if stored(&c).await?.is_some() {
                c.maint().set_job(JOB.into(), None).await?;
                tracing::info!(spread = usage.spread(), band = job.band, "rebalance finished");
            }
            return Ok(format!(
                "balanced: spread {:.3} within band {:.3}",
                usage.spread(),
                job.band
            ));
        }
        // What the nodes above the mean hold, fullest first, a page at a time from the
        // index by node.
        let over = usage.over();
        let counted = c.meta.counters().await?.nodes;
        let total = over
            .iter()
            .map(|n| counted.get(n.as_str()).map_or(0, |c| c.objects))
            .sum();
        w.begin(format!("rebalancing to within {:.3}", job.band), total);
        let (mut moves, mut failed) = (0u64, 0u64);
        'nodes: for node in over {
            let mut pages = super::repair::Pages::new(Some(node));
            while let Some(page) = pages.next(&c).await? {
                for obj in &page {
                    if !w.gate(&stop).await {
                        return Ok("stopped".into());
                    }
                    if usage.spread() <= job.band {
                        break 'nodes;
                    }
                    let (m, f, bytes) = rebalance_object(&c, &mut usage, obj, &budget).await;
                    (moves, failed) = (moves + m, failed + f);
                    w.advance(1, bytes);
                }
            }
        }
        if moves == 0 && failed == 0 {
            if stored(&c).await?.is_some() {
                c.maint().set_job(JOB.into(), None).await?;
            }
            tracing::info!(spread = usage.spread(), band = job.band, "rebalance: nothing more can move");
            return Ok(format!(
                "spread {:.3}: no shard can move closer to the band {:.3} (zones, or too few nodes)",
                usage.spread(),
                job.band
            ));
        }
        Ok(format!(
            "{moves} shards moved ({failed} moves failed), spread {:.3}",
            usage.spread()
        ))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> NodeId {
        format!("{i:016x}").parse().unwrap()
    }

    #[test]
    fn moves_go_from_above_the_mean_to_below_it_without_overshooting_or_worsening_zones() {
        // Nodes 0..3 hold 60 of 100 bytes each; node 4 (new) holds nothing.
        let mut usage = Usage {
            nodes: (0..5)
                .map(|i| {
                    let zone = if i < 2 { "a" } else { "b" };
                    (id(i), (zone.to_string(), if i < 4 { 60 } else { 0 }, 100))
                })
                .collect(),
        };
        let part = [Some(id(0)), Some(id(1)), Some(id(2))];
        assert_eq!(
            usage.target(&part, 0, 10),
            Some(id(4)),
            "a zone-a shard may move to zone b (a holds 2, b 1)"
        );
        assert_eq!(usage.target(&part, 2, 10), Some(id(4)), "within its zone");
        // Zone b holds two shards of this part, zone a one: the zone-a shard stays.
        let crowded = [Some(id(2)), Some(id(3)), Some(id(0))];
        assert_eq!(usage.target(&crowded, 2, 10), None);
        // Moving 50 would overshoot (node 4 at 50 > node 0 at 10).
        assert_eq!(usage.target(&part, 0, 50), None);
        usage.moved(&id(0), &id(4), 10);
        assert_eq!(usage.fraction(&id(4)), Some(0.1));
        assert!((usage.spread() - 0.5).abs() < 1e-9);
        // A node already holding a shard of the part is never chosen.
        let holds = [Some(id(0)), Some(id(4))];
        assert_eq!(usage.target(&holds, 0, 10), None);
    }
}
