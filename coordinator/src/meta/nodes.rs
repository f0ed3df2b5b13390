//! Node registrations and states, and stored maintenance jobs.

use super::keys::key;
use super::kv::Batch;
use super::records::{BucketMeta, NodeRecord, Part, ShardLoc, ShardSet};
use super::store::{MetaStore, Result};
use super::MetaError;
use crate::names::EcSpec;
use std::collections::BTreeMap;
use tessera_node::NodeId;

impl MetaStore {
    /// Remembers a node (idempotent).
    pub fn put_node(&self, n: &NodeRecord) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(key(b'n', &[n.id.as_str()]), serde_json::to_vec(n)?);
        self.write(batch)
    }

    /// All remembered nodes.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.all(b'n')
    }

    /// Sets (`Some`) or clears a node's lifecycle state.
    pub fn set_node_state(&self, node: &NodeId, state: Option<&str>) -> Result<()> {
        let mut batch = Batch::default();
        let k = key(b'd', &[node.as_str()]);
        match state {
            Some(s) => batch.put(k, serde_json::to_vec(s)?),
            None => batch.delete(k),
        }
        self.write(batch)
    }

    /// Nodes with a lifecycle state.
    pub fn node_states(&self) -> Result<BTreeMap<NodeId, String>> {
        let mut out = BTreeMap::new();
        self.scan(&key(b'd', &[]), |id, s: String| {
            if let Ok(id) = String::from_utf8_lossy(id).parse() {
                out.insert(id, s);
            }
            true
        })?;
        Ok(out)
    }

    /// Whether an object (any part), an upload's part or an in-flight write places a shard on
    /// `node`.
    pub fn references_node(&self, node: &NodeId) -> Result<bool> {
        let on = |shards: &[ShardLoc]| shards.iter().any(|s| s.node.as_ref() == Some(node));
        // Objects from the index by node; parts and in-flight writes (few) by a walk.
        let mut found = !self.objects_on_node(node, None, 1)?.0.is_empty();
        if !found {
            self.scan(&key(b't', &[]), |_, p: Part| {
                found = on(&p.shards);
                !found
            })?;
        }
        if !found {
            self.scan(&key(b'p', &[]), |_, s: ShardSet| {
                found = s.shards.iter().any(|(_, n)| n == node);
                !found
            })?;
        }
        Ok(found)
    }

    /// Forgets `node`: its registration and garbage entries go, its state becomes `removed`
    /// (so its heartbeats are refused from now on); returns the garbage entries dropped.
    pub fn remove_node(&self, node: &NodeId) -> Result<usize> {
        let guard = self.lock.lock().unwrap();
        let mut batch = Batch::default();
        batch.delete(key(b'n', &[node.as_str()]));
        batch.put(key(b'd', &[node.as_str()]), serde_json::to_vec("removed")?);
        let mut dropped = 0;
        let mut updates = Vec::new();
        self.scan(&key(b'g', &[]), |id, mut s: ShardSet| {
            let before = s.shards.len();
            s.shards.retain(|(_, n)| n != node);
            if s.shards.len() != before {
                dropped += before - s.shards.len();
                updates.push((String::from_utf8_lossy(id).to_string(), s));
            }
            true
        })?;
        for (id, s) in updates {
            let k = key(b'g', &[&id]);
            if s.shards.is_empty() {
                batch.delete(k);
            } else {
                batch.put(k, serde_json::to_vec(&s)?);
            }
        }
        self.write_locked(batch, guard)?;
        Ok(dropped)
    }

    // ----- maintenance jobs -----

    /// Stores (`Some`) or removes maintenance job `name`'s description.
    pub fn set_job(&self, name: &str, spec: Option<&serde_json::Value>) -> Result<()> {
        let mut batch = Batch::default();
        let k = key(b'j', &[name]);
        match spec {
            Some(s) => batch.put(k, serde_json::to_vec(s)?),
            None => batch.delete(k),
        }
        self.write(batch)
    }

    /// Maintenance jobs by name.
    pub fn jobs(&self) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut out = BTreeMap::new();
        self.scan(&key(b'j', &[]), |name, v: serde_json::Value| {
            out.insert(String::from_utf8_lossy(name).to_string(), v);
            true
        })?;
        Ok(out)
    }

    /// Changes the code new objects of `bucket` get.
    pub fn set_bucket_ec(&self, bucket: &str, ec: EcSpec) -> Result<BucketMeta> {
        let guard = self.lock.lock().unwrap();
        let mut b = self
            .bucket(bucket)?
            .ok_or_else(|| MetaError::NoSuchBucket(bucket.into()))?;
        b.ec = ec;
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.write_locked(batch, guard)?;
        Ok(b)
    }
}
