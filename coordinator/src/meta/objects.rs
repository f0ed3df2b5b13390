//! Objects: reads, in-flight records, commits, deletes, repair commits and restores.

use super::clock::{now_ms, proposer};
use super::journal::{is_reserved, JournalEntry, JOURNAL};
use super::keys::key;
use super::kv::{Batch, Step};
use super::records::{
    BucketMeta, DeleteCondition, Deleted, ObjectMeta, Precondition, ShardSet, ShardState,
};
use super::store::{check_precondition, put_garbage, MetaStore, Release, Result};
use super::MetaError;
use crate::names::EcSpec;
use tessera_node::{NodeId, ObjectVersion};

impl MetaStore {
    /// The committed version of a key, if any.
    pub fn object(&self, bucket: &str, k: &str) -> Result<Option<ObjectMeta>> {
        self.get(&key(b'o', &[bucket, k]))
    }

    /// [`MetaStore::object`], after checking that the bucket exists (NoSuchBucket): what a
    /// GET or HEAD looks up, in one step.
    pub fn lookup(&self, bucket: &str, k: &str) -> Result<Option<ObjectMeta>> {
        if !self.bucket_exists(bucket)? {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        }
        self.object(bucket, k)
    }

    /// Records a PUT in flight before any shard is written, so a coordinator crash leaves a
    /// record of shards to collect.
    pub fn begin_put(&self, version: ObjectVersion, set: &ShardSet) -> Result<()> {
        self.begin_pending(&version.to_string(), set)
    }

    /// Records shard writes in flight under `record` (`{version}` for a PUT,
    /// `{version}.{suffix}` for a repair).
    ///
    /// Not synced: this saves one fsync per PUT. If a crash loses the record, the shards the
    /// nodes committed for it are unreferenced and the orphan scan ([`crate::maintenance::gc::orphan_scan`])
    /// deletes them; the record's job before that is only to keep the orphan scan away from a
    /// write still in flight, and a live process always sees its own unsynced writes.
    pub fn begin_pending(&self, record: &str, set: &ShardSet) -> Result<()> {
        let set = ShardSet {
            owner: proposer(),
            ..set.clone()
        };
        let mut batch = Batch::default();
        batch.put(key(b'p', &[record]), serde_json::to_vec(&set)?);
        self.apply(batch)
    }

    /// Fails with [`MetaError::Fenced`] unless the in-flight record `record` exists: a
    /// write whose record was expired (its coordinator's lease ran out, or a restart) has had
    /// its shards handed to garbage collection and must not commit.
    pub(super) fn check_pending(&self, record: &str) -> Result<()> {
        if self.has_pending(record)? {
            return Ok(());
        }
        Err(MetaError::Fenced(format!(
            "the write's in-flight record {record} is gone (expired); its shards are garbage"
        )))
    }

    /// Whether the in-flight record `record` exists.
    pub(super) fn has_pending(&self, record: &str) -> Result<bool> {
        Ok(self.kv.get(&key(b'p', &[record]))?.is_some())
    }

    /// Versions with a write in flight (PUT or repair).
    pub fn pending_versions(&self) -> Result<std::collections::HashSet<ObjectVersion>> {
        let mut out = std::collections::HashSet::new();
        self.scan(&key(b'p', &[]), |id, _: serde_json::Value| {
            if let Ok(v) = String::from_utf8_lossy(id)
                .split('.')
                .next()
                .unwrap_or("")
                .parse()
            {
                out.insert(v);
            }
            true
        })?;
        Ok(out)
    }

    /// The commit point of a PUT: the object becomes visible, the in-flight record goes, and
    /// the version it replaces becomes garbage (or, in a versioned bucket, a noncurrent
    /// version), in one synced batch. Returns the object as committed (with its place in the
    /// key's history).
    ///
    /// `cond` is checked under the same lock as the commit, so of two conditional writers
    /// only one can succeed; the other gets [`MetaError::PreconditionFailed`] and its shards
    /// become garbage through its drop guard.
    pub fn commit_put(&self, obj: &ObjectMeta, cond: &Precondition) -> Result<ObjectMeta> {
        let guard = self.lock.lock().unwrap();
        let bucket = match self.bucket(&obj.bucket)? {
            Some(b) => b,
            // The journal's objects: unversioned, with no bucket record.
            None if obj.bucket == JOURNAL => {
                BucketMeta::new(JOURNAL, 0, obj.ec().unwrap_or(EcSpec { k: 1, m: 0 }), None)
            }
            None => return Err(MetaError::NoSuchBucket(obj.bucket.clone())),
        };
        self.check_pending(&obj.version.to_string())?;
        let cond = self.unstamped(&bucket, cond)?;
        let mut old = self.object(&obj.bucket, &obj.key)?;
        let mut slot = key(b'o', &[&obj.bucket, &obj.key]);
        // A rewrite (recode) of a noncurrent version: in its own slot.
        if let Precondition::Version(v) = cond {
            if old.as_ref().is_none_or(|o| o.version != *v) {
                if let Some((s, o)) = self.slot_where(&obj.bucket, &obj.key, |o| o.version == *v)? {
                    (slot, old) = (s, Some(o));
                }
            }
        }
        check_precondition(old.as_ref(), cond)?;
        let mut obj = obj.clone();
        let mut batch = Batch::default();
        // Every stored run's in-flight record: a single PUT has one (its version); a
        // recoded multipart object one per part and its manifest.
        batch.delete(key(b'p', &[&obj.version.to_string()]));
        for p in obj.extents() {
            batch.delete(key(b'p', &[&p.version.to_string()]));
        }
        match (cond, &old) {
            // A rewrite of the same version (recode) keeps its place in the key's history and
            // what was set on it since the rewrite read it.
            (Precondition::Version(_), Some(old)) => {
                obj.keep_history_of(old);
                put_garbage(self, &mut batch, old)?;
                batch.put(slot, serde_json::to_vec(&obj)?);
                // Stored anew under another version: the journal says which number it is.
                if obj.version != old.version {
                    if let Some(e) = JournalEntry::of(&obj) {
                        self.journal_new(&mut batch, &e)?;
                    }
                }
            }
            _ => self.supersede_one(&mut batch, &bucket, old.as_ref(), &mut obj)?,
        }
        self.write_locked(batch, guard)?;
        Ok(obj)
    }

    /// A PUT that will not commit: its shards become garbage.
    pub fn abort_put(&self, version: ObjectVersion, set: &ShardSet) -> Result<()> {
        self.abort_pending(&version.to_string(), set)
    }

    /// Turns the in-flight record `record` into garbage (shards `set`). Nothing happens if
    /// the record is gone: the write committed (an answer lost on the way) or the record
    /// already expired into garbage.
    pub fn abort_pending(&self, record: &str, set: &ShardSet) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        if !self.has_pending(record)? {
            return Ok(());
        }
        let mut batch = Batch::default();
        batch.delete(key(b'p', &[record]));
        batch.put(key(b'g', &[record]), serde_json::to_vec(set)?);
        self.write_locked(batch, guard)
    }

    /// Records shards `set` as garbage under `record` (shards found on nodes that no
    /// metadata names, e.g. by a metadata rebuild).
    pub fn add_garbage(&self, record: &str, set: &ShardSet) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(key(b'g', &[record]), serde_json::to_vec(set)?);
        self.write(batch)
    }

    /// The commit point of a repair: if `version` still names a part (or the manifest) of the
    /// committed version of the key, shard `i` of it moves to node `n` for every `(i, n)` in `moved` (state ok), the copies they
    /// replace become garbage, and the in-flight record goes, in one synced batch. If the object
    /// was overwritten or deleted meanwhile, the new shards become garbage instead and `false`
    /// is returned: a repair never resurrects or mixes versions.
    pub fn commit_repair(
        &self,
        record: &str,
        set: &ShardSet,
        version: ObjectVersion,
        moved: &[(u16, NodeId)],
    ) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        self.check_pending(record)?;
        let mut batch = Batch::default();
        batch.delete(key(b'p', &[record]));
        // The version holding the run: current or noncurrent, repaired alike.
        let holder = self.holder_of(&set.bucket, &set.key, version)?;
        let (slot, mut current) = match holder {
            Some((slot, o)) => (Some(slot), Some(o)),
            None => (None, None),
        };
        let Some(part) = current.as_mut().and_then(|o| o.extent_mut(version)) else {
            batch.put(key(b'g', &[record]), serde_json::to_vec(set)?);
            self.write_locked(batch, guard)?;
            return Ok(false);
        };
        let mut replaced = Vec::new();
        for (i, node) in moved {
            let loc = &mut part.shards[*i as usize];
            if let Some(old) = loc.node.replace(node.clone()) {
                if &old != node {
                    replaced.push((*i, old));
                }
            }
            loc.state = ShardState::Ok;
        }
        // Targets that did not make it are garbage too.
        let mut garbage: Vec<(u16, NodeId)> = set
            .shards
            .iter()
            .filter(|e| !moved.contains(e))
            .cloned()
            .collect();
        garbage.extend(replaced);
        if !garbage.is_empty() {
            let g = ShardSet {
                shards: garbage,
                since_ms: now_ms(),
                ..set.clone()
            };
            batch.put(key(b'g', &[record]), serde_json::to_vec(&g)?);
        }
        let obj = current.expect("the part was found in it");
        batch.put(
            slot.expect("found with the object"),
            serde_json::to_vec(&obj)?,
        );
        self.write_locked(batch, guard)?;
        Ok(true)
    }

    /// Restores an object found by a metadata rebuild (creating its bucket with `default_ec`
    /// if needed), unless the key already has this or a newer version. Returns whether it
    /// was written.
    pub fn restore_object(&self, obj: &ObjectMeta, default_ec: EcSpec) -> Result<bool> {
        Ok(self.restore_objects(std::slice::from_ref(obj), default_ec)?[0])
    }

    /// [`MetaStore::restore_object`] for many objects in one batch (one sync): whether each
    /// was written.
    pub fn restore_objects(&self, objs: &[ObjectMeta], default_ec: EcSpec) -> Result<Vec<bool>> {
        let guard = self.lock.lock().unwrap();
        let mut batch = Batch::default();
        let mut release = Release::new(self);
        // Versions this batch restores, by key (a key named twice keeps the newer).
        let mut restored: std::collections::HashMap<(&str, &str), &ObjectMeta> = Default::default();
        let mut written = Vec::with_capacity(objs.len());
        // Each bucket once, lock-enabled if a version restored into it is locked.
        let mut buckets: std::collections::BTreeMap<&str, bool> = Default::default();
        for obj in objs {
            let k = (obj.bucket.as_str(), obj.key.as_str());
            let current = self.object(&obj.bucket, &obj.key)?;
            let earlier = restored.get(&k).copied();
            let newest = current
                .as_ref()
                .map(|o| o.version)
                .max(earlier.map(|o| o.version));
            if newest.is_some_and(|v| v >= obj.version) {
                written.push(false);
                continue;
            }
            if !is_reserved(&obj.bucket) {
                *buckets.entry(&obj.bucket).or_default() |=
                    obj.retention.is_some() || obj.legal_hold;
            }
            if let Some(p) = &obj.packed {
                release.live(p.segment, obj.size)?;
            }
            // What this replaces: the stored version, or one restored earlier in this batch.
            if let Some(old) = earlier.or(current.as_ref()).filter(|o| o.packed.is_some()) {
                release.object(&mut batch, old)?;
            }
            batch.put(
                key(b'o', &[&obj.bucket, &obj.key]),
                serde_json::to_vec(obj)?,
            );
            restored.insert(k, obj);
            written.push(true);
        }
        for (bucket, locked) in buckets {
            self.restored_bucket(&mut batch, bucket, default_ec, (None, None), locked)?;
        }
        release.finish(&mut batch)?;
        self.write_locked(batch, guard)?;
        Ok(written)
    }

    /// [`MetaStore::objects_after`] within the keys of `bucket` starting with `prefix`.
    pub fn objects_under(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ObjectMeta>, Option<Vec<u8>>)> {
        let within = key(b'o', &[bucket, prefix]);
        self.objects_in(&within, after, limit)
    }

    /// Every committed version (current and noncurrent; delete markers too), in (bucket,
    /// key, newest first) order, after the cursor `after` (as the previous page returned it),
    /// at most `limit`; and the cursor after the last one.
    pub fn objects_after(
        &self,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ObjectMeta>, Option<Vec<u8>>)> {
        self.objects_in(&key(b'o', &[]), after, limit)
    }

    /// The object records whose keys start with `prefix`, after the cursor `after`, at most
    /// `limit`; and the cursor after the last one.
    fn objects_in(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ObjectMeta>, Option<Vec<u8>>)> {
        let start = super::keys::resume_at(prefix, after);
        let mut out = Vec::new();
        let mut last = None;
        self.kv.walk(&start, &mut |k, v| {
            if !k.starts_with(prefix) || out.len() >= limit {
                return Ok(Step::Stop);
            }
            out.push(serde_json::from_slice(v)?);
            last = Some(k.to_vec());
            Ok(Step::Next)
        })?;
        Ok((out, last))
    }

    /// Deletes a key's current version (see [`MetaStore::delete_object_if`]).
    pub fn delete_object(&self, bucket: &str, k: &str) -> Result<Deleted> {
        self.delete_object_if(bucket, k, &DeleteCondition::default())
    }

    /// Deletes a key's current version if it meets `cond` (PreconditionFailed if not). In an
    /// unversioned bucket its bytes are released and a key without one is left as it is; in
    /// a versioned bucket a delete marker becomes the newest version (as S3, also for a key
    /// without a current version unless the delete is conditional) and the current version
    /// stays as a noncurrent one (suspended: the `null` version goes).
    pub fn delete_object_if(
        &self,
        bucket: &str,
        k: &str,
        cond: &DeleteCondition,
    ) -> Result<Deleted> {
        let guard = self.lock.lock().unwrap();
        let b = self.bucket(bucket)?;
        let old = self.object(bucket, k)?;
        if old.as_ref().is_some_and(|o| !cond.holds(o)) {
            return Err(MetaError::PreconditionFailed);
        }
        let b = b.filter(|b| b.versioning.is_some());
        // A key whose newest version is a delete marker has no ETag, size or time to match
        // (`If-Match: *` still passes, as on a key that never existed).
        let strict = cond.etag.as_deref().is_some_and(|e| e != "*")
            || cond.size.is_some()
            || cond.last_modified_secs.is_some();
        if old.is_none() && strict && b.is_some() && self.newest_version(bucket, k)?.is_some() {
            return Err(MetaError::PreconditionFailed);
        }
        // A conditional delete of a key with no current version deletes nothing and writes
        // no marker.
        if old.is_none() && *cond != DeleteCondition::default() {
            return Ok(Deleted::default());
        }
        let mut batch = Batch::default();
        let out = match b {
            Some(b) => self.mark_deleted(&mut batch, &b, k, old.as_ref())?,
            None => {
                let Some(old) = old else {
                    return Ok(Deleted::default());
                };
                batch.delete(key(b'o', &[bucket, k]));
                put_garbage(self, &mut batch, &old)?;
                Deleted {
                    removed: Some(old),
                    marker: None,
                }
            }
        };
        self.write_locked(batch, guard)?;
        Ok(out)
    }
}
