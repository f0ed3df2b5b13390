//! Node lifecycle: retiring a node without losing redundancy on the way.
//!
//! - **Drain** ([`drain`]): refused before anything moves if the nodes left could not hold
//!   the codes in use (too few nodes, or too few zones to keep at most m shards of an object
//!   in one zone where that holds today). Otherwise the node's state becomes `draining`: it
//!   takes no new shards, and the leader's `drain` worker ([`drains`]) copies each of its
//!   shards to another node (one read of the shard, nothing decoded; placement as for
//!   repair) and commits the move with the same in-flight records and fenced commit as
//!   repair, so the old copy stays readable until the new one is committed. When no object
//!   names the node any more it is `drained`. A draining node that dies is left to repair,
//!   which rebuilds its shards elsewhere once the repair grace has passed.
//! - **Remove** ([`remove`]): a drained node, or a dead one once repair has rebuilt what it
//!   held, is forgotten: its registration and garbage entries go, and its heartbeats are
//!   refused from then on. A node still holding the only copy of anything stays.
//!
//! States live in the metadata; every coordinator follows them ([`follow_states`]).

use super::periodic;
use super::repair::{move_part, RepairRequest, Source};
use super::worker::{Schedule, Worker};
use super::Maintenance;
use crate::error::ApiError;
use crate::meta::counters::NodeCounts;
use crate::meta::{ObjectMeta, ShardState};
use crate::names::EcSpec;
use crate::placement::repair_targets;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tessera_node::NodeId;
use tokio_util::sync::CancellationToken;

/// How often every coordinator reloads the node states, and the drain worker looks again.
const EVERY: Duration = Duration::from_secs(1);

/// Objects read from the index by node at a time.
const PAGE: usize = 256;

/// A node's lifecycle as `GET /cluster/nodes/{id}` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeLifecycle {
    /// Node id.
    pub node: String,
    /// `up`, `down`, `draining`, `drained` or `removed`.
    pub state: String,
    /// Whether it sends heartbeats.
    pub up: bool,
    /// Objects with a shard on it.
    pub objects: u64,
    /// Shards on it.
    pub shards: u64,
    /// Bytes of those shards.
    pub bytes: u64,
}

/// What `POST /cluster/nodes/{id}/remove` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeRemoval {
    /// Node id.
    pub node: String,
    /// The node is removed.
    pub removed: bool,
    /// A repair run started first (the node is down and still named by objects): ask again
    /// once it has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repair_run: Option<u64>,
    /// Why the node is not removed yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Garbage entries naming the node that were dropped with it.
    #[serde(default)]
    pub garbage_entries_dropped: u64,
}

/// Every coordinator: keeps the registry's lifecycle states as the metadata has them.
pub async fn follow_states(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "node-states",
        "follows node lifecycle states (draining, drained, removed) from the metadata",
    );
    periodic(w, stop, Schedule::every(EVERY), || async {
        let states = c.meta.node_states_applied().await?;
        let n = states.len();
        c.registry.set_states(states);
        Ok(format!("{n} nodes with a lifecycle state"))
    })
    .await;
}

/// Reloads the states now (after this coordinator changed one).
async fn reload(c: &Maintenance) -> Result<(), ApiError> {
    c.registry.set_states(c.meta.node_states().await?);
    Ok(())
}

/// A page of the versions and segments with a shard on `node` (from the index by node),
/// after `after`; and the cursor after it.
async fn page_on(
    c: &Maintenance,
    node: &NodeId,
    after: Option<Vec<u8>>,
) -> Result<(Vec<ObjectMeta>, Option<Vec<u8>>), ApiError> {
    Ok(c.meta.objects_on_node(node.clone(), after, PAGE).await?)
}

/// What the metadata places on `node` (from the counters kept on commit: O(1)).
async fn held(c: &Maintenance, node: &NodeId) -> Result<NodeCounts, ApiError> {
    Ok(c.meta
        .counters()
        .await?
        .nodes
        .remove(node.as_str())
        .unwrap_or_default())
}

/// What `node` holds and its state.
pub async fn status(c: &Arc<Maintenance>, node: &NodeId) -> Result<NodeLifecycle, ApiError> {
    let state = c.meta.node_states().await?.get(node).cloned();
    let up = c.registry.up(node);
    if state.is_none() && c.registry.client(node).is_none() {
        return Err(ApiError::NoSuchNode(node.to_string()));
    }
    Ok(lifecycle(node, state, up, held(c, node).await?))
}

/// [`NodeLifecycle`] of `node` in `state` (`None`: up or down) holding `counts`.
fn lifecycle(node: &NodeId, state: Option<String>, up: bool, counts: NodeCounts) -> NodeLifecycle {
    NodeLifecycle {
        node: node.to_string(),
        state: state.unwrap_or_else(|| if up { "up" } else { "down" }.into()),
        up,
        objects: counts.objects,
        shards: counts.shards,
        bytes: counts.bytes,
    }
}

/// Starts draining `node` (see the module documentation); refused, with nothing changed,
/// when the nodes left could not hold the codes in use.
pub async fn drain(c: &Arc<Maintenance>, node: &NodeId) -> Result<NodeLifecycle, ApiError> {
    match c.meta.node_states().await?.get(node).map(String::as_str) {
        Some("removed") => {
            return Err(ApiError::Conflict(format!("node {node} was removed")));
        }
        Some("draining") | Some("drained") => return status(c, node).await,
        _ => {}
    }
    if c.registry.client(node).is_none() {
        return Err(ApiError::NoSuchNode(node.to_string()));
    }
    let counted = c.meta.counters().await?;
    let mut codes = vec![c.config.default_ec];
    codes.extend(c.meta.buckets().await?.into_iter().map(|b| b.ec));
    codes.extend(
        counted
            .codes
            .keys()
            .filter_map(|ec| ec.parse::<EcSpec>().ok()),
    );
    codes.sort_by_key(|ec| (ec.total(), ec.m));
    codes.dedup();
    let taking: Vec<(NodeId, String)> = c
        .registry
        .view()
        .into_iter()
        .filter(|n| n.state == "up")
        .map(|n| (n.id, n.zone))
        .collect();
    check_fits(&taking, node, &codes).map_err(ApiError::Conflict)?;
    c.meta
        .set_node_state(node.clone(), Some("draining".into()))
        .await?;
    reload(c).await?;
    tracing::info!(%node, "draining");
    let up = c.registry.up(node);
    let counts = counted
        .nodes
        .get(node.as_str())
        .cloned()
        .unwrap_or_default();
    Ok(lifecycle(node, Some("draining".into()), up, counts))
}

/// Takes `node` back into service (a drain is cancelled; what moved stays moved).
pub async fn activate(c: &Arc<Maintenance>, node: &NodeId) -> Result<NodeLifecycle, ApiError> {
    match c.meta.node_states().await?.get(node).map(String::as_str) {
        Some("removed") => Err(ApiError::Conflict(format!("node {node} was removed"))),
        Some(_) => {
            c.meta.set_node_state(node.clone(), None).await?;
            reload(c).await?;
            status(c, node).await
        }
        None => status(c, node).await,
    }
}

/// Why the nodes left once `leaving` is gone could not hold one of `codes`: fewer nodes
/// than `k+m`, or (where today every zone can be kept to at most `m` shards of an object,
/// so losing a zone loses nothing) zones that no longer allow it. `taking`: the nodes that
/// take shards now (id, zone).
pub fn check_fits(
    taking: &[(NodeId, String)],
    leaving: &NodeId,
    codes: &[EcSpec],
) -> Result<(), String> {
    let by_zone = |skip: Option<&NodeId>| {
        let mut z: BTreeMap<&str, usize> = BTreeMap::new();
        for (id, zone) in taking {
            if Some(id) != skip {
                *z.entry(zone.as_str()).or_default() += 1;
            }
        }
        z
    };
    let zone_safe = |z: &BTreeMap<&str, usize>, ec: &EcSpec| {
        z.len() > 1 && z.values().map(|n| (*n).min(ec.m as usize)).sum::<usize>() >= ec.total()
    };
    let (before, after) = (by_zone(None), by_zone(Some(leaving)));
    let left: usize = after.values().sum();
    for ec in codes {
        if left < ec.total() {
            return Err(format!(
                "draining node {leaving} would leave {left} nodes taking shards, and {ec} (in use) needs {}; add nodes first",
                ec.total()
            ));
        }
        if zone_safe(&before, ec) && !zone_safe(&after, ec) {
            return Err(format!(
                "draining node {leaving} would leave zones {after:?} unable to hold {ec} (in use) with at most {} shards in one zone, as they can today; add nodes to the zone first",
                ec.m
            ));
        }
    }
    Ok(())
}

/// Removes `node` (see the module documentation). A dead node still named by objects gets a
/// repair run (grace 0) first when `repair` is set: the answer carries its `repair_run`,
/// and the caller asks again once it has finished.
pub async fn remove(
    c: &Arc<Maintenance>,
    node: &NodeId,
    repair: bool,
) -> Result<NodeRemoval, ApiError> {
    let state = c.meta.node_states().await?.get(node).cloned();
    if state.as_deref() == Some("removed") {
        return Ok(NodeRemoval {
            node: node.to_string(),
            removed: true,
            ..Default::default()
        });
    }
    let registered = c.meta.nodes().await?.iter().any(|n| &n.id == node);
    if !registered && c.registry.client(node).is_none() {
        return Err(ApiError::NoSuchNode(node.to_string()));
    }
    let up = c.registry.up(node);
    if up && state.as_deref() != Some("drained") {
        return Err(ApiError::Conflict(format!(
            "node {node} is up and not drained: drain it first (tessera node drain {node})"
        )));
    }
    let held = held(c, node).await?.objects;
    if held > 0 {
        if up {
            return Err(ApiError::Conflict(format!(
                "node {node} still holds shards of {held} objects (written while it drained?): drain it again"
            )));
        }
        if repair {
            let run = super::repair::start_run(
                c,
                RepairRequest {
                    node: Some(node.clone()),
                    grace_ms: Some(0),
                    concurrency: 4,
                    ..Default::default()
                },
            )
            .await?;
            return Ok(NodeRemoval {
                node: node.to_string(),
                removed: false,
                repair_run: Some(run),
                message: Some(format!("node {node} is down and named by {held} objects: rebuilding their shards elsewhere first")),
                garbage_entries_dropped: 0,
            });
        }
        let names: Vec<String> = page_on(c, node, None)
            .await?
            .0
            .iter()
            .take(5)
            .map(|o| format!("{}/{}", o.bucket, o.key))
            .collect();
        return Err(ApiError::Conflict(format!(
            "node {node} holds the only copy of shards that could not be rebuilt elsewhere ({held} objects, e.g. {}): bring it back, or repair what is missing first",
            names.join(", ")
        )));
    }
    let dropped = c.meta.remove_node(node.clone()).await?;
    reload(c).await?;
    tracing::info!(%node, garbage_entries_dropped = dropped, "node removed");
    Ok(NodeRemoval {
        node: node.to_string(),
        removed: true,
        garbage_entries_dropped: dropped as u64,
        ..Default::default()
    })
}

/// Leader only (worker `drain`): moves the shards of every draining node.
pub async fn drains(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "drain",
        "copies the shards of draining nodes to other nodes, then marks them drained",
    );
    periodic(w.clone(), stop.clone(), Schedule::every(EVERY), || async {
        let draining: Vec<NodeId> = c
            .meta
            .node_states()
            .await?
            .into_iter()
            .filter(|(_, s)| s == "draining")
            .map(|(n, _)| n)
            .collect();
        if draining.is_empty() {
            return Ok("no node is draining".into());
        }
        let mut out = Vec::new();
        for node in draining {
            out.push(drain_pass(&c, &w, &stop, &node).await?);
        }
        Ok(out.join("; "))
    })
    .await;
}

/// One pass over the objects on draining `node`.
async fn drain_pass(
    c: &Arc<Maintenance>,
    w: &Worker,
    stop: &CancellationToken,
    node: &NodeId,
) -> Result<String, ApiError> {
    let held = held(c, node).await?.objects;
    if held == 0 && !c.meta.references_node(node.clone()).await? {
        c.maint()
            .set_node_state(node.clone(), Some("drained".into()))
            .await?;
        reload(c).await?;
        tracing::info!(%node, "drained");
        return Ok(format!("node {node} drained"));
    }
    if held == 0 {
        return Ok(format!(
            "node {node}: waiting for writes in flight and multipart uploads that name it"
        ));
    }
    if !c.registry.up(node) {
        return Ok(format!(
            "node {node} is down: repair rebuilds its {held} objects' shards elsewhere once the repair grace has passed"
        ));
    }
    w.begin(format!("draining {node}"), held);
    let mut failed = Vec::new();
    // A page at a time from the index by node: what has moved leaves the index, so each
    // page after the first starts where the last one ended.
    let mut after = None;
    loop {
        let (page, next) = page_on(c, node, after.take()).await?;
        for obj in page {
            if !w.gate(stop).await {
                return Ok("stopped".into());
            }
            failed.extend(drain_object(c, node, &obj, w).await);
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if failed.is_empty() {
        Ok(format!("node {node}: pass done"))
    } else {
        tracing::warn!(%node, failed = failed.len(), first = %failed[0], "drain: some moves failed; retrying");
        Ok(format!(
            "node {node}: {} moves failed (first: {}); retrying",
            failed.len(),
            failed[0]
        ))
    }
}

/// Moves the shards `obj` has on draining `node`; what failed.
async fn drain_object(
    c: &Arc<Maintenance>,
    node: &NodeId,
    obj: &ObjectMeta,
    w: &Worker,
) -> Vec<String> {
    let mut failed = Vec::new();
    let mut bytes = 0;
    for part in obj.extents() {
        let on = |state: ShardState| -> Vec<usize> {
            part.shards
                .iter()
                .enumerate()
                .filter(|(_, s)| s.node.as_ref() == Some(node) && s.state == state)
                .map(|(i, _)| i)
                .collect()
        };
        // Shards there are copied; shards recorded missing there are rebuilt.
        for (source, moving) in [
            (Source::Copy, on(ShardState::Ok)),
            (Source::Rebuild, on(ShardState::Missing)),
        ] {
            if moving.is_empty() {
                continue;
            }
            let current: Vec<Option<NodeId>> = part.shards.iter().map(|s| s.node.clone()).collect();
            let targets = repair_targets(&c.registry.candidates(), &current, &moving);
            if targets.len() < moving.len() {
                failed.push(format!(
                    "{}/{}: no node can take {} of its shards",
                    obj.bucket,
                    obj.key,
                    moving.len() - targets.len()
                ));
                continue;
            }
            match move_part(c, obj, part, &targets, source).await {
                Ok(out) => bytes += out.bytes_written,
                Err(e) => failed.push(format!("{}/{}: {e}", obj.bucket, obj.key)),
            }
        }
    }
    w.advance(1, bytes);
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(zones: &[&str]) -> Vec<(NodeId, String)> {
        zones
            .iter()
            .enumerate()
            .map(|(i, z)| (format!("{i:016x}").parse().unwrap(), z.to_string()))
            .collect()
    }

    #[test]
    fn a_drain_must_leave_room_for_every_code_and_keep_zone_safety() {
        let ec = |k, m| EcSpec { k, m };
        let six = nodes(&["a"; 6]);
        assert!(check_fits(&six, &six[0].0, &[ec(4, 1)]).is_ok());
        let err = check_fits(&six, &six[0].0, &[ec(4, 2)]).unwrap_err();
        assert!(err.contains("5 nodes") && err.contains("4+2"), "{err}");
        // 3 zones of 2: 4+2 keeps <= 2 shards per zone today; with 5 nodes it cannot.
        let zoned = nodes(&["a", "a", "b", "b", "c", "c"]);
        let seven = nodes(&["a", "a", "b", "b", "c", "c", "c"]);
        let err = check_fits(&seven, &seven[0].0, &[ec(4, 2)]).unwrap_err();
        assert!(err.contains("zones"), "{err}");
        // Draining from the zone with a spare keeps it.
        assert!(check_fits(&seven, &seven[6].0, &[ec(4, 2)]).is_ok());
        // Where zone safety does not hold today (2+1 on 3 zones of 2 does), nothing to keep.
        assert!(check_fits(&zoned, &zoned[0].0, &[ec(3, 1)]).is_ok());
    }
}
