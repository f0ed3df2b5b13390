//! Segments of packed small objects: a segment commits with every object in it.

use super::keys::key;
use super::kv::Batch;
use super::records::{BucketMeta, Fill, ObjectMeta, PackEntry, Precondition, ShardSet};
use super::stamp::Stamps;
use super::store::{check_precondition, MetaStore, Release, Result};
use super::versions::Seqs;
use super::MetaError;
use std::collections::BTreeMap;
use tessera_node::ObjectVersion;

impl MetaStore {
    /// Records `next` in flight with shards `set` (as [`MetaStore::begin_put`]), then commits
    /// `seg` (as [`MetaStore::commit_segment`]): a segment's commit carrying the in-flight
    /// record of the segment gathering behind it.
    pub fn commit_segment_and_begin(
        &self,
        seg: &ObjectMeta,
        entries: &[PackEntry],
        next: ObjectVersion,
        set: &ShardSet,
    ) -> Result<Vec<Result<ObjectMeta>>> {
        self.begin_put(next, set)?;
        self.commit_segment(seg, entries)
    }

    /// The commit point of a segment of packed small objects: the segment becomes a committed
    /// object of [`SEGMENTS`] (its in-flight record goes), and each entry whose bucket exists
    /// and whose condition holds is committed as a PUT would be, in order (a key written
    /// twice in one segment: the later entry wins), in one synced batch. Returns one outcome
    /// per entry: the object as committed (with its place in the key's history), or why it did not commit (its bytes are dead space
    /// in the segment). A segment none of whose entries committed is garbage at once. A move
    /// (`Precondition::Moved`) of a noncurrent version rewrites that version in its slot.
    pub fn commit_segment(
        &self,
        seg: &ObjectMeta,
        entries: &[PackEntry],
    ) -> Result<Vec<Result<ObjectMeta>>> {
        let guard = self.lock.lock().unwrap();
        let record = seg.version.to_string();
        self.check_pending(&record)?;
        let mut batch = Batch::default();
        batch.delete(key(b'p', &[&record]));
        let mut release = Release::new(self);
        let mut seg = seg.clone();
        seg.fill = Some(Fill {
            objects: entries.len() as u64,
            bytes: entries.iter().map(|e| e.obj.size).sum(),
            live_objects: 0,
            live_bytes: 0,
        });
        release.segments.insert(seg.version, Some(seg.clone()));
        let mut written: BTreeMap<(String, String), ObjectMeta> = BTreeMap::new();
        let mut out = Vec::with_capacity(entries.len());
        let mut seqs = Seqs::new(self)?;
        // Each bucket is read once (a segment's objects mostly share one).
        let mut buckets: BTreeMap<String, Option<BucketMeta>> = BTreeMap::new();
        let mut stamps = Stamps::new(self);
        for e in entries {
            let (b, k) = (e.obj.bucket.clone(), e.obj.key.clone());
            if !buckets.contains_key(&b) {
                buckets.insert(b.clone(), self.bucket(&b)?);
            }
            let Some(bucket) = buckets.get(&b).and_then(Option::as_ref) else {
                out.push(Err(MetaError::NoSuchBucket(b)));
                continue;
            };
            let cond = match stamps.unstamped(bucket, &e.cond) {
                Ok(c) => c,
                Err(err) => {
                    out.push(Err(err));
                    continue;
                }
            };
            let again = written.get(&(b.clone(), k.clone())).cloned();
            let fresh_key = again.is_none();
            let current = match again {
                Some(o) => Some(o),
                None => self.object(&b, &k)?,
            };
            // Compaction moving a noncurrent version: rewritten in its own slot.
            if let (Precondition::Moved { version, from }, true) =
                (cond, check_precondition(current.as_ref(), cond).is_err())
            {
                let slot = self
                    .packed_slot(&b, &k, *version, *from)?
                    .filter(|(slot, _)| *slot != key(b'o', &[&b, &k]));
                if let Some((slot, old)) = slot {
                    release.live(seg.version, e.obj.size)?;
                    let mut obj = e.obj.clone();
                    obj.keep_history_of(&old);
                    release.object(&mut batch, &old)?;
                    batch.put(slot, serde_json::to_vec(&obj)?);
                    out.push(Ok(obj));
                    continue;
                }
            }
            if let Err(err) = check_precondition(current.as_ref(), cond) {
                out.push(Err(err));
                continue;
            }
            release.live(seg.version, e.obj.size)?;
            let mut obj = e.obj.clone();
            match (cond, &current) {
                // Compaction moves the same version: its place in the key's history and what
                // was set on it stay.
                (Precondition::Moved { .. }, Some(old)) => {
                    obj.keep_history_of(old);
                    release.object(&mut batch, old)?;
                    batch.put(key(b'o', &[&b, &k]), serde_json::to_vec(&obj)?);
                }
                _ => self.supersede(
                    &mut batch,
                    &mut release,
                    &mut seqs,
                    bucket,
                    current.as_ref(),
                    &mut obj,
                    fresh_key,
                )?,
            }
            written.insert((b, k), obj.clone());
            out.push(Ok(obj));
        }
        seqs.finish(&mut batch)?;
        release.finish(&mut batch)?;
        self.write_locked(batch, guard)?;
        Ok(out)
    }
}
