//! Versions: what a commit or a delete does to a key's history in a bucket with versioning
//! set, lookups and listings of versions, and which version a shard belongs to.
//!
//! A key's current version is its plain record; its noncurrent versions and delete markers
//! follow it under the same key, newest first (see [`super::keys`]). Order is the order of
//! commits in the metadata (a sequence number given under the store's lock, so every member
//! of a replicated store gives the same numbers in the same log order), never wall-clock
//! time. The invariant every operation keeps: a key has a current record exactly when its
//! newest version is not a delete marker.

use super::clock::now_ms;
use super::journal::JournalEntry;
use super::keys::{key, seq_key, version_key, versions_prefix};
use super::kv::{Batch, Step};
use super::lock::check_removable;
use super::records::{BucketMeta, DeleteCondition, Deleted, ObjectMeta, VersionListing};
use super::store::{MetaStore, Release, Result};
use super::MetaError;
use tessera_node::ObjectVersion;

pub use super::settings::{ENABLED, SUSPENDED};

/// The sequence numbers one batch gives out: read once, written back once.
pub(super) struct Seqs {
    last: u64,
    taken: bool,
}

impl Seqs {
    pub(super) fn new(store: &MetaStore) -> Result<Seqs> {
        Ok(Seqs {
            last: store.get(&seq_key())?.unwrap_or(0),
            taken: false,
        })
    }

    fn take(&mut self) -> u64 {
        self.last += 1;
        self.taken = true;
        self.last
    }

    pub(super) fn finish(self, batch: &mut Batch) -> Result<()> {
        if self.taken {
            batch.put(seq_key(), serde_json::to_vec(&self.last)?);
        }
        Ok(())
    }
}

/// Parses a version id as [`ObjectMeta::version_id`] writes it: `Some(None)` for `null`,
/// `Some(Some(seq))` for a numbered one, `None` if it is neither.
pub fn parse_version_id(id: &str) -> Option<Option<u64>> {
    if id == "null" {
        return Some(None);
    }
    if id.len() != 16 {
        return None;
    }
    u64::from_str_radix(id, 16).ok().map(Some)
}

impl MetaStore {
    /// Makes `new` the current version of its key in `batch`, by the bucket's versioning:
    /// unversioned, the version it replaces (`old`) is released; enabled, `old` stays as a
    /// noncurrent version and `new` gets the next number; suspended, `new` is the `null`
    /// version and replaces the key's previous `null` version only. `fresh_key` is false when
    /// the batch already committed this key once (the noncurrent `null` version was settled
    /// then).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn supersede(
        &self,
        batch: &mut Batch,
        release: &mut Release<'_>,
        seqs: &mut Seqs,
        bucket: &BucketMeta,
        old: Option<&ObjectMeta>,
        new: &mut ObjectMeta,
        fresh_key: bool,
    ) -> Result<()> {
        match bucket.versioning.as_deref() {
            None => {
                new.seq = None;
                new.null_version = false;
                if let Some(o) = old {
                    release.object(batch, o)?;
                }
            }
            Some(state) => {
                let suspended = state == SUSPENDED;
                if let Some(lock) = &bucket.object_lock {
                    if new.retention.is_none() {
                        new.retention = lock.default_retention(now_ms());
                    }
                }
                let seq = seqs.take();
                new.seq = Some(seq);
                new.null_version = suspended;
                if let Some(e) = JournalEntry::of(new) {
                    MetaStore::journal(batch, seq, &e)?;
                }
                self.retire(
                    batch,
                    release,
                    &new.bucket,
                    &new.key,
                    old,
                    suspended,
                    fresh_key,
                )?;
            }
        }
        batch.put(
            key(b'o', &[&new.bucket, &new.key]),
            serde_json::to_vec(new)?,
        );
        Ok(())
    }

    /// [`MetaStore::supersede`] for a batch that commits one key: its sequence number and
    /// what it releases are settled here.
    pub(super) fn supersede_one(
        &self,
        batch: &mut Batch,
        bucket: &BucketMeta,
        old: Option<&ObjectMeta>,
        new: &mut ObjectMeta,
    ) -> Result<()> {
        let mut release = Release::new(self);
        let mut seqs = Seqs::new(self)?;
        self.supersede(batch, &mut release, &mut seqs, bucket, old, new, true)?;
        seqs.finish(batch)?;
        release.finish(batch)
    }

    /// The current version `old` leaves the current slot of a versioned key: it stays as a
    /// noncurrent version, unless versioning is suspended and it is the `null` version (then
    /// it is released). Under suspension the noncurrent `null` version (or `null` delete
    /// marker), if any, goes too: a key has one `null` version.
    #[allow(clippy::too_many_arguments)]
    fn retire(
        &self,
        batch: &mut Batch,
        release: &mut Release<'_>,
        bucket: &str,
        k: &str,
        old: Option<&ObjectMeta>,
        suspended: bool,
        fresh_key: bool,
    ) -> Result<()> {
        if let Some(o) = old {
            if suspended && o.is_null() {
                check_removable(o, now_ms(), false)?;
                release.object(batch, o)?;
            } else {
                batch.put(version_key(bucket, k, o.seq), serde_json::to_vec(o)?);
            }
        }
        if suspended && fresh_key {
            if let Some((slot, v)) = self.noncurrent_where(bucket, k, |v| v.is_null())? {
                check_removable(&v, now_ms(), false)?;
                batch.delete(slot);
                release.object(batch, &v)?;
            }
        }
        Ok(())
    }

    /// The first noncurrent version of `bucket`/`k` (newest first) for which `f` holds.
    fn noncurrent_where(
        &self,
        bucket: &str,
        k: &str,
        mut f: impl FnMut(&ObjectMeta) -> bool,
    ) -> Result<Option<(Vec<u8>, ObjectMeta)>> {
        let prefix = versions_prefix(bucket, k);
        let mut found = None;
        self.kv.walk(&prefix, &mut |key, v| {
            if !key.starts_with(&prefix) {
                return Ok(Step::Stop);
            }
            let o: ObjectMeta = serde_json::from_slice(v)?;
            if f(&o) {
                found = Some((key.to_vec(), o));
                return Ok(Step::Stop);
            }
            Ok(Step::Next)
        })?;
        Ok(found)
    }

    /// Writes a delete marker for `bucket`/`k` in a versioned bucket: the current version
    /// (`old`) becomes noncurrent (or, suspended and `null`, is released) and the marker is
    /// the newest version.
    pub(super) fn mark_deleted(
        &self,
        batch: &mut Batch,
        bucket: &BucketMeta,
        k: &str,
        old: Option<&ObjectMeta>,
    ) -> Result<Deleted> {
        let suspended = bucket.versioning.as_deref() == Some(SUSPENDED);
        let mut seqs = Seqs::new(self)?;
        let seq = seqs.take();
        let at = now_ms();
        let marker = ObjectMeta::delete_marker(
            &bucket.name,
            k,
            ObjectVersion(((at as u128) << 80) | seq as u128),
            seq,
            suspended,
            at,
        );
        let mut release = Release::new(self);
        if old.is_some() {
            batch.delete(key(b'o', &[&bucket.name, k]));
        }
        self.retire(batch, &mut release, &bucket.name, k, old, suspended, true)?;
        batch.put(
            version_key(&bucket.name, k, Some(seq)),
            serde_json::to_vec(&marker)?,
        );
        if let Some(e) = JournalEntry::of(&marker) {
            MetaStore::journal(batch, seq, &e)?;
        }
        release.finish(batch)?;
        seqs.finish(batch)?;
        Ok(Deleted {
            removed: old.cloned(),
            marker: Some(marker),
        })
    }

    /// Where version `id` of `bucket`/`k` is stored and what it is, if it exists.
    fn find_version(
        &self,
        bucket: &str,
        k: &str,
        id: &str,
    ) -> Result<Option<(Vec<u8>, ObjectMeta)>> {
        let Some(seq) = parse_version_id(id) else {
            return Ok(None);
        };
        if let Some(cur) = self.object(bucket, k)? {
            if cur.version_id() == id {
                return Ok(Some((key(b'o', &[bucket, k]), cur)));
            }
        }
        match seq {
            None => self.noncurrent_where(bucket, k, |v| v.is_null()),
            Some(seq) => {
                let slot = version_key(bucket, k, Some(seq));
                let v: Option<ObjectMeta> = self.get(&slot)?;
                Ok(v.filter(|v| v.version_id() == id).map(|v| (slot, v)))
            }
        }
    }

    /// Version `id` of `bucket`/`k` (a delete marker too), in a bucket that must exist.
    pub fn object_version(&self, bucket: &str, k: &str, id: &str) -> Result<Option<ObjectMeta>> {
        if !self.bucket_exists(bucket)? {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        }
        Ok(self.find_version(bucket, k, id)?.map(|(_, v)| v))
    }

    /// The newest version of `bucket`/`k` whether current or a delete marker (what a GET
    /// without a version id meets), in a bucket that must exist.
    pub fn newest_version(&self, bucket: &str, k: &str) -> Result<Option<ObjectMeta>> {
        if let Some(cur) = self.lookup(bucket, k)? {
            return Ok(Some(cur));
        }
        Ok(self.noncurrent_where(bucket, k, |_| true)?.map(|(_, v)| v))
    }

    /// Deletes version `id` of `bucket`/`k` for good if it meets `cond` (PreconditionFailed
    /// if not): a version's bytes are released, a delete marker just goes. If it was the
    /// newest, the next newest becomes current unless that is a delete marker. A version
    /// that does not exist is a no-op.
    pub fn delete_version(
        &self,
        bucket: &str,
        k: &str,
        id: &str,
        cond: &DeleteCondition,
        bypass: bool,
    ) -> Result<Deleted> {
        let guard = self.lock.lock().unwrap();
        let Some(b) = self.bucket(bucket)? else {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        };
        let Some((slot, v)) = self.find_version(bucket, k, id)? else {
            return Ok(Deleted::default());
        };
        if !cond.holds(&v) {
            return Err(MetaError::PreconditionFailed);
        }
        check_removable(&v, now_ms(), bypass)?;
        let mut batch = Batch::default();
        let mut release = Release::new(self);
        batch.delete(slot.clone());
        release.object(&mut batch, &v)?;
        if b.versioning.is_some() {
            let gone = JournalEntry::Gone {
                b: bucket.to_string(),
                k: k.to_string(),
                v: v.version,
            };
            self.journal_new(&mut batch, &gone)?;
        }
        let current = key(b'o', &[bucket, k]);
        if slot == current || self.object(bucket, k)?.is_none() {
            // The key has no current version now: the newest left becomes it, unless that
            // is a delete marker.
            let next = self.noncurrent_where(bucket, k, |n| n.version_id() != v.version_id())?;
            if let Some((next_slot, n)) = next.filter(|(_, n)| !n.delete_marker) {
                batch.delete(next_slot);
                batch.put(current, serde_json::to_vec(&n)?);
            }
        }
        release.finish(&mut batch)?;
        self.write_locked(batch, guard)?;
        Ok(Deleted {
            removed: Some(v),
            marker: None,
        })
    }

    /// The version of `bucket`/`k` (current or noncurrent) one of whose stored runs is named
    /// `part_version`, and where it is stored.
    pub(super) fn holder_of(
        &self,
        bucket: &str,
        k: &str,
        part_version: ObjectVersion,
    ) -> Result<Option<(Vec<u8>, ObjectMeta)>> {
        let holds = |o: &ObjectMeta| o.extents().any(|p| p.version == part_version);
        if let Some(cur) = self.object(bucket, k)? {
            if holds(&cur) {
                return Ok(Some((key(b'o', &[bucket, k]), cur)));
            }
        }
        self.noncurrent_where(bucket, k, holds)
    }

    /// Where the version of `bucket`/`k` (current or noncurrent, not a delete marker) for
    /// which `f` holds is kept, and what it is.
    pub(super) fn slot_where(
        &self,
        bucket: &str,
        k: &str,
        f: impl Fn(&ObjectMeta) -> bool,
    ) -> Result<Option<(Vec<u8>, ObjectMeta)>> {
        let f = |o: &ObjectMeta| !o.delete_marker && f(o);
        if let Some(cur) = self.object(bucket, k)? {
            if f(&cur) {
                return Ok(Some((key(b'o', &[bucket, k]), cur)));
            }
        }
        self.noncurrent_where(bucket, k, f)
    }

    /// Where version `version` of `bucket`/`k` (current or noncurrent) is kept and what it
    /// is, if it is packed in `segment`.
    pub(super) fn packed_slot(
        &self,
        bucket: &str,
        k: &str,
        version: ObjectVersion,
        segment: ObjectVersion,
    ) -> Result<Option<(Vec<u8>, ObjectMeta)>> {
        self.slot_where(bucket, k, |o| {
            o.version == version && o.packed.as_ref().is_some_and(|p| p.segment == segment)
        })
    }

    /// Version `version` of `bucket`/`k` (current or noncurrent), if it is packed in
    /// `segment` (what compaction moves).
    pub fn packed_version(
        &self,
        bucket: &str,
        k: &str,
        version: ObjectVersion,
        segment: ObjectVersion,
    ) -> Result<Option<ObjectMeta>> {
        Ok(self
            .packed_slot(bucket, k, version, segment)?
            .map(|(_, o)| o))
    }

    /// The version of `bucket`/`k` (current or noncurrent) holding the stored run named
    /// `part_version`, if one does.
    pub fn version_holding(
        &self,
        bucket: &str,
        k: &str,
        part_version: ObjectVersion,
    ) -> Result<Option<ObjectMeta>> {
        Ok(self.holder_of(bucket, k, part_version)?.map(|(_, o)| o))
    }

    /// Changes version `id` (without one: the current version) of `bucket`/`k` in place by
    /// `f` (its ACL, tags); NoSuchBucket, NoSuchKey, NoSuchVersion, and MethodNotAllowed-like
    /// InvalidArgument for a delete marker. Returns the record as changed.
    pub(super) fn update_version(
        &self,
        bucket: &str,
        k: &str,
        id: Option<&str>,
        f: impl FnOnce(&mut ObjectMeta),
    ) -> Result<ObjectMeta> {
        let guard = self.lock.lock().unwrap();
        let Some(b) = self.bucket(bucket)? else {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        };
        let found = match id {
            None => self
                .object(bucket, k)?
                .map(|o| (key(b'o', &[bucket, k]), o)),
            Some(id) => match self.find_version(bucket, k, id)? {
                Some(v) => Some(v),
                None => return Err(MetaError::NoSuchVersion(format!("{bucket}/{k} {id}"))),
            },
        };
        let Some((slot, mut o)) = found else {
            return Err(MetaError::NoSuchKey {
                bucket: bucket.into(),
                key: k.into(),
            });
        };
        if o.delete_marker {
            return Err(MetaError::InvalidArgument(
                "a delete marker has no tags or ACL".into(),
            ));
        }
        f(&mut o);
        let mut batch = Batch::default();
        batch.put(slot, serde_json::to_vec(&o)?);
        // Retention, legal hold and tags set after the shards were written: the journal
        // tells a rebuild.
        if b.versioning.is_some() {
            self.journal_new(&mut batch, &JournalEntry::attrs_of(&o))?;
        }
        self.write_locked(batch, guard)?;
        Ok(o)
    }

    /// Replaces the tags of version `id` (or the current version) of `bucket`/`k`.
    pub fn set_object_tags(
        &self,
        bucket: &str,
        k: &str,
        id: Option<&str>,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<ObjectMeta> {
        self.update_version(bucket, k, id, |o| o.tags = tags.clone())
    }

    /// Sets a bucket's versioning (`Enabled` or `Suspended`); returns the bucket.
    pub fn set_versioning(&self, bucket: &str, state: &str) -> Result<BucketMeta> {
        if state != ENABLED && state != SUSPENDED {
            return Err(MetaError::InvalidArgument(format!(
                "versioning status {state:?} is neither Enabled nor Suspended"
            )));
        }
        let guard = self.lock.lock().unwrap();
        let Some(mut b) = self.bucket(bucket)? else {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        };
        if state == SUSPENDED && b.object_lock.is_some() {
            return Err(MetaError::InvalidBucketState(format!(
                "versioning cannot be suspended on {bucket}: it has object lock"
            )));
        }
        b.versioning = Some(state.to_string());
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.journal_new(&mut batch, &JournalEntry::bucket(bucket, Some(&b)))?;
        self.write_locked(batch, guard)?;
        Ok(b)
    }

    /// S3's ListObjectVersions: every version and delete marker of `bucket` under `prefix`,
    /// by key and newest first, from after (`key_marker`, `version_marker`), rolled up at
    /// `delimiter`, at most `max` entries (versions plus prefixes).
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
        delimiter: Option<&str>,
        max: usize,
    ) -> Result<VersionListing> {
        if self.bucket(bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        }
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut base = key(b'o', &[bucket]);
        base.push(0);
        let mut from = base.clone();
        from.extend_from_slice(prefix.as_bytes());
        // The key whose newest version the previous page already listed.
        let mut resumed: Option<String> = None;
        if let Some(m) = key_marker.filter(|m| !m.is_empty()) {
            let rolled = delimiter.and_then(|d| {
                let rest = m.strip_prefix(prefix)?;
                rest.find(d).map(|i| prefix.len() + i + d.len())
            });
            let after = match (rolled, version_marker.filter(|v| !v.is_empty())) {
                (Some(n), _) => {
                    let mut a = base.clone();
                    a.extend_from_slice(&m.as_bytes()[..n]);
                    a.push(0xFF);
                    a
                }
                (None, Some(id)) => {
                    resumed = Some(m.to_string());
                    match self.find_version(bucket, m, id)? {
                        Some((mut slot, _)) => {
                            slot.push(0);
                            slot
                        }
                        None => past_versions(&base, m),
                    }
                }
                (None, None) => past_versions(&base, m),
            };
            from = from.max(after);
        }
        let mut out = VersionListing::default();
        let mut entries = 0usize;
        // The key of the last version seen.
        let mut last: Option<String> = None;
        self.kv.walk(&from, &mut |k, v| {
            if !k.starts_with(&base) {
                return Ok(Step::Stop);
            }
            let rest = &k[base.len()..];
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let name =
                std::str::from_utf8(&rest[..end]).map_err(|e| MetaError::Storage(e.to_string()))?;
            if !name.starts_with(prefix) {
                return Ok(Step::Stop);
            }
            if entries >= max {
                out.truncated = true;
                return Ok(Step::Stop);
            }
            entries += 1;
            let rolled = delimiter.and_then(|d| {
                name[prefix.len()..]
                    .find(d)
                    .map(|i| name[..prefix.len() + i + d.len()].to_string())
            });
            if let Some(cp) = rolled {
                let mut next = base.clone();
                next.extend_from_slice(cp.as_bytes());
                next.push(0xFF);
                out.next = Some((cp.clone(), None));
                out.prefixes.push(cp);
                return Ok(Step::Seek(next));
            }
            let o: ObjectMeta = serde_json::from_slice(v)?;
            let noncurrent = end < rest.len();
            let first_of_key = last.as_deref() != Some(name);
            let latest = if noncurrent {
                first_of_key && resumed.as_deref() != Some(name)
            } else {
                true
            };
            if first_of_key {
                last = Some(name.to_string());
            }
            out.next = Some((name.to_string(), Some(o.version_id())));
            out.versions.push((o, latest));
            Ok(Step::Next)
        })?;
        if !out.truncated {
            out.next = None;
        }
        Ok(out)
    }
}

/// Where a walk of `base` resumes after every version of key `k`.
fn past_versions(base: &[u8], k: &str) -> Vec<u8> {
    let mut a = base.to_vec();
    a.extend_from_slice(k.as_bytes());
    a.extend_from_slice(&[0, 0xFF]);
    a
}

impl ObjectMeta {
    /// For a rewrite of the same version (recode, compaction): keeps `old`'s place in the
    /// key's history and what was set on it since the rewrite read it (ACL, tags, lock).
    pub fn keep_history_of(&mut self, old: &ObjectMeta) {
        self.acl = old.acl.clone();
        self.tags = old.tags.clone();
        self.retention = old.retention.clone();
        self.legal_hold = old.legal_hold;
        self.seq = old.seq;
        self.null_version = old.null_version;
    }

    /// A delete marker for `bucket`/`k`, the `seq`th commit.
    pub fn delete_marker(
        bucket: &str,
        k: &str,
        version: ObjectVersion,
        seq: u64,
        null_version: bool,
        at_ms: u64,
    ) -> ObjectMeta {
        ObjectMeta {
            seq: Some(seq),
            null_version,
            delete_marker: true,
            ..ObjectMeta::bare(bucket, k, version, at_ms)
        }
    }
}
