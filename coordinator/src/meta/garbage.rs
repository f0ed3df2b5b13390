//! In-flight writes and garbage: what the collector reads and retires.

use super::keys::key;
use super::kv::Batch;
use super::records::ShardSet;
use super::store::{MetaStore, Result};
use std::collections::BTreeMap;
use tessera_node::ObjectVersion;

impl MetaStore {
    /// Turns the in-flight records of coordinator `owner` (every one, with `None`) written
    /// before `before_ms` into garbage: that coordinator restarted, or its lease expired, so
    /// none of those writes is still going to commit (and if its process is in fact alive,
    /// its commit is now refused with [`MetaError::Fenced`]). Returns how many.
    pub fn expire_pending(&self, owner: Option<u64>, before_ms: u64) -> Result<usize> {
        let guard = self.lock.lock().unwrap();
        let mut batch = Batch::default();
        let mut n = 0;
        self.scan(&key(b'p', &[]), |v, s: ShardSet| {
            if owner.is_some_and(|o| o != s.owner) || s.since_ms >= before_ms {
                return true;
            }
            let version = String::from_utf8_lossy(v).to_string();
            batch.delete(key(b'p', &[&version]));
            batch.put(key(b'g', &[&version]), serde_json::to_vec(&s).unwrap());
            n += 1;
            true
        })?;
        if n > 0 {
            self.write_locked(batch, guard)?;
        }
        Ok(n)
    }

    /// Owners of in-flight records, with how many each has.
    pub fn pending_owners(&self) -> Result<BTreeMap<u64, usize>> {
        let mut out = BTreeMap::new();
        self.scan(&key(b'p', &[]), |_, s: ShardSet| {
            *out.entry(s.owner).or_default() += 1;
            true
        })?;
        Ok(out)
    }

    /// Up to `limit` garbage records: (record id, version, shards).
    pub fn garbage(&self, limit: usize) -> Result<Vec<(String, ObjectVersion, ShardSet)>> {
        let mut out = Vec::new();
        self.scan(&key(b'g', &[]), |id, s: ShardSet| {
            let id = String::from_utf8_lossy(id).to_string();
            if let Ok(v) = id.split('.').next().unwrap_or("").parse() {
                out.push((id, v, s));
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Replaces (or, if `rest` is empty, removes) a garbage record after some deletions.
    pub fn update_garbage(&self, record: &str, rest: Option<&ShardSet>) -> Result<()> {
        let mut batch = Batch::default();
        let k = key(b'g', &[record]);
        match rest {
            Some(s) if !s.shards.is_empty() => batch.put(k, serde_json::to_vec(s)?),
            _ => batch.delete(k),
        }
        self.write(batch)
    }

    /// The storage engine's stall and compaction figures (see [`Kv::engine_gauges`]).
    pub fn engine_gauges(&self) -> Vec<(String, u64)> {
        self.kv
            .engine_gauges()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect()
    }

    /// Flushes and compacts the storage engine (see [`Kv::compact`]).
    pub fn compact_engine(&self) -> Result<()> {
        self.kv.compact()
    }

    /// Number of in-flight and garbage records (from the counters).
    pub fn pending_and_garbage(&self) -> Result<(usize, usize)> {
        let r = self.counters()?.records;
        Ok((r.pending as usize, r.garbage as usize))
    }
}
