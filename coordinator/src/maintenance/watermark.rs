//! The high watermark: moving shards off nodes that are filling up, before they reach the
//! reserve where writes pass them by (or, with too few others, lose redundancy).
//!
//! A node's fullness is `used / (used + free)` as it reports them (`free` is what it can still
//! take: its filesystem's free space less its `--reserve`, or its `--capacity` less its
//! shards). Above `--high-watermark` (0.90; 1 turns this off) the leader's `watermark` worker
//! copies shards off it, a page of its objects at a time from the index by node, until it
//! reaches the low mark five points below, onto nodes that stay under the low mark after
//! taking them and keep `--min-free`. A target never holds another shard of the part, and
//! never lies in a zone already holding more of the part's shards than the zone the shard
//! leaves. Moves are repair's ([`super::repair::move_part`]: in-flight record, fenced commit,
//! the maintenance budget), so reads keep working and a crash leaks nothing.
//!
//! A moved shard's bytes leave the node only when garbage collection deletes the old copy
//! (after `--gc-grace`); until then the worker counts them as gone itself, for the grace and
//! a minute more, so that it does not move the same bytes' worth twice. Placement already
//! weights new shards by free space and passes nodes below `--min-free`, and repair picks the
//! emptiest node for a rebuilt shard; this worker is what relieves a node that filled anyway
//! (a smaller disk, other files on it, a surge).

use super::periodic;
use super::repair::{move_part, Pages, Source};
use super::worker::Schedule;
use super::Maintenance;
use crate::meta::ShardState;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_node::NodeId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How far below the high watermark a relieved node is brought.
pub const MARGIN: f64 = 0.05;

/// How often the worker looks at the nodes' reports.
const EVERY: Duration = Duration::from_secs(5);

/// A node as a pass sees it.
#[derive(Clone, Debug)]
struct Room {
    zone: String,
    /// Bytes of shards on it, less those moved off and not yet collected.
    used: u64,
    /// Bytes it can still take, plus those moved off and not yet collected.
    free: u64,
}

impl Room {
    fn fraction(&self) -> f64 {
        self.used as f64 / (self.used + self.free).max(1) as f64
    }

    fn fraction_with(&self, len: u64) -> f64 {
        (self.used + len) as f64 / (self.used + self.free).max(1) as f64
    }
}

/// Nodes taking shards, with the moves of this pass applied.
struct Rooms {
    nodes: HashMap<NodeId, Room>,
    /// The mark relieved nodes are brought to, and targets stay under.
    low: f64,
    /// Free bytes a target keeps after taking a shard.
    min_free: u64,
}

impl Rooms {
    /// The nodes above `high`, fullest first.
    fn over(&self, high: f64) -> Vec<NodeId> {
        let mut over: Vec<(f64, &NodeId)> = self
            .nodes
            .iter()
            .map(|(id, r)| (r.fraction(), id))
            .filter(|(f, _)| *f > high)
            .collect();
        over.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        over.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// Bytes `node` still has to shed to reach the low mark.
    fn excess(&self, node: &NodeId) -> u64 {
        self.nodes.get(node).map_or(0, |r| {
            let keep = (self.low * (r.used + r.free) as f64).round() as u64;
            r.used.saturating_sub(keep)
        })
    }

    /// The node to take shard `i` (`len` bytes) of a part placed on `current` (index ->
    /// node): not holding another shard of the part, not in a zone with more of its shards
    /// than the zone it leaves, under the low mark after taking it and keeping `min_free`;
    /// the emptiest such.
    fn target(&self, current: &[Option<NodeId>], i: usize, len: u64) -> Option<NodeId> {
        let from = current[i].as_ref()?;
        let from_zone = &self.nodes.get(from)?.zone;
        let mut zone_load: BTreeMap<&str, usize> = BTreeMap::new();
        for n in current.iter().flatten() {
            if let Some(r) = self.nodes.get(n) {
                *zone_load.entry(&r.zone).or_default() += 1;
            }
        }
        let from_load = zone_load.get(from_zone.as_str()).copied().unwrap_or(0);
        self.nodes
            .iter()
            .filter(|(id, _)| !current.iter().flatten().any(|n| n == *id))
            .filter(|(_, r)| {
                r.zone == *from_zone
                    || zone_load.get(r.zone.as_str()).copied().unwrap_or(0) < from_load
            })
            .filter(|(_, r)| r.free >= self.min_free.saturating_add(len))
            .filter(|(_, r)| r.fraction_with(len) <= self.low)
            .min_by(|a, b| {
                a.1.fraction()
                    .total_cmp(&b.1.fraction())
                    .then_with(|| a.0.cmp(b.0))
            })
            .map(|(id, _)| id.clone())
    }

    fn moved(&mut self, from: &NodeId, to: &NodeId, len: u64) {
        if let Some(r) = self.nodes.get_mut(from) {
            r.used = r.used.saturating_sub(len);
            r.free += len;
        }
        if let Some(r) = self.nodes.get_mut(to) {
            r.used += len;
            r.free = r.free.saturating_sub(len);
        }
    }
}

/// Bytes moved off each node lately, which its reports still count until they are collected.
#[derive(Default)]
struct Shed(Mutex<Vec<(Instant, NodeId, u64)>>);

impl Shed {
    fn add(&self, node: &NodeId, len: u64) {
        self.0
            .lock()
            .unwrap()
            .push((Instant::now(), node.clone(), len));
    }

    /// Per node, the bytes moved off within `within`; older entries are dropped.
    fn recent(&self, within: Duration) -> HashMap<NodeId, u64> {
        let mut l = self.0.lock().unwrap();
        l.retain(|(t, _, _)| t.elapsed() < within);
        let mut out = HashMap::new();
        for (_, n, len) in l.iter() {
            *out.entry(n.clone()).or_default() += len;
        }
        out
    }
}

/// The nodes taking shards (up, no lifecycle state) as their last reports say, with the
/// bytes moved off them lately counted as gone.
fn rooms(c: &Maintenance, shed: &HashMap<NodeId, u64>) -> Rooms {
    let high = c.config.high_watermark;
    let nodes = c
        .registry
        .view()
        .into_iter()
        .filter(|n| n.up && n.state == "up")
        .map(|n| {
            let gone = shed.get(&n.id).copied().unwrap_or(0).min(n.used);
            let room = Room {
                zone: n.zone,
                used: n.used - gone,
                free: n.free + gone,
            };
            (n.id, room)
        })
        .collect();
    Rooms {
        nodes,
        low: (high - MARGIN).max(0.0),
        min_free: c.config.min_free,
    }
}

/// Leader only (worker `watermark`): every few seconds, moves shards off the nodes above
/// `--high-watermark` until they are at the low mark or nothing more can move.
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "watermark",
        "moves shards off nodes above the high watermark (--high-watermark)",
    );
    let shed = Shed::default();
    // The nodes last warned about as stuck (warned again only when that changes).
    let warned: Mutex<Vec<String>> = Default::default();
    let schedule = Schedule::every(EVERY);
    periodic(w.clone(), stop.clone(), schedule, || async {
        let high = c.config.high_watermark;
        if high >= 1.0 {
            return Ok("off (--high-watermark 1)".into());
        }
        let counted = c.config.gc_grace + Duration::from_secs(60);
        let mut rooms = rooms(&c, &shed.recent(counted));
        let over = rooms.over(high);
        if over.is_empty() {
            warned.lock().unwrap().clear();
            return Ok(format!("no node above the high watermark ({high:.2})"));
        }
        let counts = c.meta.counters().await?.nodes;
        let total = over
            .iter()
            .map(|n| counts.get(n.as_str()).map_or(0, |c| c.objects))
            .sum();
        w.begin(
            format!("moving shards off {} node(s) above {high:.2}", over.len()),
            total,
        );
        let (mut moves, mut stuck) = (0u64, Vec::new());
        for node in over {
            let mut pages = Pages::new(Some(node.clone()));
            'node: while let Some(page) = pages.next(&c).await? {
                for obj in &page {
                    if !w.gate(&stop).await {
                        return Ok("stopped".into());
                    }
                    let mut bytes = 0;
                    for part in obj.extents() {
                        if rooms.excess(&node) == 0 {
                            break 'node;
                        }
                        let current: Vec<Option<NodeId>> =
                            part.shards.iter().map(|s| s.node.clone()).collect();
                        let Some(i) = (0..current.len()).find(|&i| {
                            current[i].as_ref() == Some(&node)
                                && part.shards[i].state == ShardState::Ok
                        }) else {
                            continue;
                        };
                        let len = part.layout().shard_len();
                        let Some(to) = rooms.target(&current, i, len) else {
                            continue;
                        };
                        match move_part(&c, obj, part, &[(i as u16, to.clone())], Source::Copy)
                            .await
                        {
                            Ok(out) if out.committed => {
                                rooms.moved(&node, &to, len);
                                shed.add(&node, len);
                                c.metrics.watermark_moves.inc();
                                moves += 1;
                                bytes += out.bytes_written;
                            }
                            Ok(_) => {}
                            Err(e) => tracing::debug!(error = %e, "watermark move failed"),
                        }
                    }
                    w.advance(1, bytes);
                }
            }
            if rooms.excess(&node) > 0 {
                stuck.push(node.to_string());
            }
        }
        if moves > 0 {
            tracing::info!(moves, "shards moved off nodes above the high watermark");
        }
        if std::mem::replace(&mut *warned.lock().unwrap(), stuck.clone()) != stuck && !stuck.is_empty() {
            tracing::warn!(nodes = ?stuck, high, "nodes stay above the low mark: no other node can take their shards");
        }
        if !stuck.is_empty() {
            return Ok(format!(
                "{moves} shards moved; {} still above the low mark (no node with room can take their shards)",
                stuck.join(", ")
            ));
        }
        Ok(format!("{moves} shards moved off nodes above {high:.2}"))
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(i: u8) -> NodeId {
        format!("{i:016x}").parse().unwrap()
    }

    fn rooms(spec: &[(&str, u64, u64)]) -> Rooms {
        Rooms {
            nodes: spec
                .iter()
                .enumerate()
                .map(|(i, (z, used, free))| {
                    let r = Room {
                        zone: z.to_string(),
                        used: *used,
                        free: *free,
                    };
                    (id(i as u8), r)
                })
                .collect(),
            low: 0.85,
            min_free: 5,
        }
    }

    #[test]
    fn a_full_node_sheds_to_the_low_mark_onto_nodes_with_room_in_a_zone_no_more_loaded() {
        // Node 0 at 95%, node 1 at 50%, node 2 at 10%, node 3 at 86% (above the low mark).
        let mut r = rooms(&[("a", 95, 5), ("a", 50, 50), ("b", 10, 90), ("b", 86, 14)]);
        assert_eq!(r.over(0.90), vec![id(0)]);
        assert_eq!(r.excess(&id(0)), 10, "95 -> 85 of 100");
        assert_eq!(r.excess(&id(2)), 0);
        // Emptiest first (node 3 would end above the low mark).
        assert_eq!(r.target(&[Some(id(0))], 0, 4), Some(id(2)));
        // Never a node holding another shard of the part, nor into zone b when it holds as
        // many of the part's shards as zone a, which the shard leaves.
        let part = [Some(id(0)), Some(id(3))];
        assert_eq!(r.target(&part, 0, 4), Some(id(1)));
        let part = [Some(id(0)), Some(id(1))];
        assert_eq!(r.target(&part, 0, 4), Some(id(2)), "a holds 2, b none");
        // A shard that would lift every target above the low mark stays.
        assert_eq!(r.target(&[Some(id(0))], 0, 80), None);
        // A target keeps min_free after taking it.
        let tight = rooms(&[("a", 95, 5), ("a", 1, 8)]);
        assert_eq!(tight.target(&[Some(id(0))], 0, 4), None);
        assert_eq!(tight.target(&[Some(id(0))], 0, 3), Some(id(1)));
        r.moved(&id(0), &id(2), 10);
        assert_eq!(r.excess(&id(0)), 0);
        assert!(r.over(0.90).is_empty());
        assert_eq!(r.nodes[&id(2)].used, 20);
    }

    #[tokio::test]
    async fn moved_bytes_count_as_gone_for_a_while() {
        let shed = Shed::default();
        shed.add(&id(1), 7);
        shed.add(&id(1), 3);
        assert_eq!(shed.recent(Duration::from_secs(60)).get(&id(1)), Some(&10));
        assert!(shed.recent(Duration::ZERO).is_empty());
        assert!(
            shed.recent(Duration::from_secs(60)).is_empty(),
            "dropped once old"
        );
    }
}
