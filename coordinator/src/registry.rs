//! The node registry: which storage nodes exist, where they listen, and whether they are up.
//!
//! Nodes announce themselves with heartbeats; a node whose last heartbeat is older than the
//! configured timeout is down. Registrations are persisted in the metadata store so a restarted
//! coordinator knows its nodes (as down until they next report).
//!
//! A node may also have a lifecycle state, kept in the metadata and followed here
//! ([`Registry::set_states`]): `draining` and `drained` nodes take no new shards, `removed`
//! nodes are forgotten and their heartbeats refused.

use crate::meta::{Clock, NodeRecord};
use crate::placement::Candidate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tessera_node::client::Transport;
use tessera_node::types::Heartbeat;
use tessera_node::{NodeClient, NodeId};

/// What the registry knows of one node.
#[derive(Clone)]
pub struct NodeEntry {
    /// Last report (or the persisted record, with zero usage, before the first report).
    pub hb: Heartbeat,
    /// When the last heartbeat arrived (`None`: not since this coordinator started).
    pub last_seen: Option<Instant>,
    /// Pooled client for the node.
    pub client: NodeClient,
    /// The node's clock minus this coordinator's at its last heartbeat, if it reported one.
    pub clock_offset: Option<i64>,
}

/// A node as `GET /cluster` shows it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeView {
    /// Node id.
    pub id: NodeId,
    /// Shard API address.
    pub address: String,
    /// Zone.
    pub zone: String,
    /// `up` or `down`; `draining` or `drained` for a node being retired.
    pub state: String,
    /// Whether it sent a heartbeat within the timeout.
    pub up: bool,
    /// Bytes of shards stored.
    pub used: u64,
    /// Bytes available.
    pub free: u64,
    /// Configured capacity (0 = filesystem size).
    pub capacity: u64,
    /// Milliseconds since the last heartbeat, if any.
    pub last_heartbeat_ms_ago: Option<u64>,
    /// Up with less free space than the coordinator's `--min-free`: it takes new shards only
    /// when too few other nodes have room.
    #[serde(default)]
    pub full: bool,
    /// Scrub progress as last reported.
    pub scrub: tessera_node::types::ScrubStats,
}

/// Registry of nodes, shared by all requests.
pub struct Registry {
    nodes: RwLock<BTreeMap<NodeId, NodeEntry>>,
    /// How nodes are reached.
    transport: Transport,
    timeout: Duration,
    /// How long a node that stopped gracefully is not counted as failed.
    stopped_grace: Duration,
    /// When this registry started: nodes never heard from count as down since then.
    started: Instant,
    /// Lifecycle states (`draining`, `drained`, `removed`) as the metadata last said.
    states: RwLock<BTreeMap<NodeId, String>>,
    /// The clock operations are timed by, told the nodes' clocks as heartbeats report them.
    clock: Arc<Clock>,
}

impl Registry {
    /// A registry marking nodes down after `timeout` without heartbeat (at once when they say
    /// they are stopping, counted failed only after `stopped_grace` then), seeded with `known`.
    pub fn new(
        timeout: Duration,
        stopped_grace: Duration,
        transport: Transport,
        known: Vec<NodeRecord>,
        clock: Arc<Clock>,
    ) -> Self {
        let nodes = known
            .into_iter()
            .map(|r| {
                let hb = Heartbeat {
                    node_id: r.id.clone(),
                    addr: r.addr.clone(),
                    zone: r.zone,
                    capacity: 0,
                    used: 0,
                    free: 0,
                    scrub: Default::default(),
                    log_writes: 0,
                    log_syncs: 0,
                    clock_ms: 0,
                    stopping: false,
                };
                let client = transport.client(&r.addr);
                (
                    r.id,
                    NodeEntry {
                        hb,
                        last_seen: None,
                        client,
                        clock_offset: None,
                    },
                )
            })
            .collect();
        Registry {
            nodes: RwLock::new(nodes),
            transport,
            timeout,
            stopped_grace,
            started: Instant::now(),
            states: Default::default(),
            clock,
        }
    }

    /// Follows the lifecycle states stored in the metadata: removed nodes are forgotten.
    pub fn set_states(&self, states: BTreeMap<NodeId, String>) {
        {
            let mut nodes = self.nodes.write().unwrap();
            for (id, s) in &states {
                if s == "removed" {
                    nodes.remove(id);
                }
            }
        }
        *self.states.write().unwrap() = states;
    }

    /// A node's lifecycle state (`draining`, `drained`, `removed`), if it has one.
    pub fn state_of(&self, id: &NodeId) -> Option<String> {
        self.states.read().unwrap().get(id).cloned()
    }

    /// Whether `id` was removed (its heartbeats are refused).
    pub fn removed(&self, id: &NodeId) -> bool {
        self.state_of(id).as_deref() == Some("removed")
    }

    /// Records a heartbeat; returns the record to persist if the node is new or moved.
    pub fn heartbeat(&self, hb: Heartbeat) -> Option<NodeRecord> {
        let mut nodes = self.nodes.write().unwrap();
        let changed = match nodes.get(&hb.node_id) {
            Some(e) => e.hb.addr != hb.addr || e.hb.zone != hb.zone,
            None => true,
        };
        let client = match nodes.get(&hb.node_id) {
            Some(e) if e.hb.addr == hb.addr => e.client.clone(),
            _ => self.transport.client(&hb.addr),
        };
        let rec = NodeRecord {
            id: hb.node_id.clone(),
            addr: hb.addr.clone(),
            zone: hb.zone.clone(),
        };
        let offset = (hb.clock_ms > 0).then(|| hb.clock_ms as i64 - self.clock.own_ms() as i64);
        nodes.insert(
            hb.node_id.clone(),
            NodeEntry {
                hb,
                last_seen: Some(Instant::now()),
                client,
                clock_offset: offset,
            },
        );
        // The nodes' median clock, from the up nodes' last reports.
        let mut offsets: Vec<i64> = nodes
            .values()
            .filter(|e| self.is_up(e))
            .filter_map(|e| e.clock_offset)
            .collect();
        offsets.sort_unstable();
        self.clock
            .set_nodes_offset(offsets.get(offsets.len() / 2).copied());
        changed.then_some(rec)
    }

    fn is_up(&self, e: &NodeEntry) -> bool {
        !e.hb.stopping && e.last_seen.is_some_and(|t| t.elapsed() < self.timeout)
    }

    /// Whether `id` is registered and up.
    pub fn up(&self, id: &NodeId) -> bool {
        self.nodes
            .read()
            .unwrap()
            .get(id)
            .is_some_and(|e| self.is_up(e))
    }

    /// How long `id` has been down, as the repair grace counts it (zero if up; since this
    /// coordinator started if never seen; for a node that said it was stopping gracefully,
    /// the time beyond the stopped grace).
    pub fn down_for(&self, id: &NodeId) -> Duration {
        let nodes = self.nodes.read().unwrap();
        let Some(e) = nodes.get(id) else {
            return self.started.elapsed();
        };
        if self.is_up(e) {
            return Duration::ZERO;
        }
        if let (true, Some(t)) = (e.hb.stopping, e.last_seen) {
            return t.elapsed().saturating_sub(self.stopped_grace);
        }
        let since = e
            .last_seen
            .map_or(self.started, |t| (t + self.timeout).max(self.started));
        since.elapsed()
    }

    /// Number of registered nodes, up or down.
    pub fn registered(&self) -> usize {
        self.nodes.read().unwrap().len()
    }

    /// Every node that is up, with its client (the coordinator asking all of them).
    pub fn up_clients(&self) -> Vec<(NodeId, NodeClient)> {
        self.view()
            .into_iter()
            .filter(|n| n.up)
            .filter_map(|n| Some((n.id.clone(), self.client(&n.id)?)))
            .collect()
    }

    /// Client for a node, if registered.
    pub fn client(&self, id: &NodeId) -> Option<NodeClient> {
        self.nodes.read().unwrap().get(id).map(|e| e.client.clone())
    }

    /// Nodes that are up and take shards (not being retired), as placement candidates.
    pub fn candidates(&self) -> Vec<Candidate> {
        let states = self.states.read().unwrap();
        self.nodes
            .read()
            .unwrap()
            .values()
            .filter(|e| self.is_up(e) && !states.contains_key(&e.hb.node_id))
            .map(|e| Candidate {
                id: e.hb.node_id.clone(),
                zone: e.hb.zone.clone(),
                free: e.hb.free,
            })
            .collect()
    }

    /// Every node, for `GET /cluster`.
    pub fn view(&self) -> Vec<NodeView> {
        let states = self.states.read().unwrap();
        self.nodes
            .read()
            .unwrap()
            .values()
            .map(|e| NodeView {
                id: e.hb.node_id.clone(),
                address: e.hb.addr.clone(),
                zone: e.hb.zone.clone(),
                state: match states.get(&e.hb.node_id) {
                    Some(s) => s.clone(),
                    None if self.is_up(e) => "up".into(),
                    None if e.hb.stopping => "stopped".into(),
                    None => "down".into(),
                },
                up: self.is_up(e),
                used: e.hb.used,
                free: e.hb.free,
                capacity: e.hb.capacity,
                last_heartbeat_ms_ago: e.last_seen.map(|t| t.elapsed().as_millis() as u64),
                full: false,
                scrub: e.hb.scrub.clone(),
            })
            .collect()
    }
}
