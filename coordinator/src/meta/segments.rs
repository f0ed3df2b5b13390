//! Segments of packed small objects: a segment commits with every object in it.

use super::keys::key;
use super::kv::Batch;
use super::records::{Fill, ObjectMeta, PackEntry};
use super::store::{check_precondition, MetaStore, Release, Result};
use super::MetaError;
use std::collections::BTreeMap;

impl MetaStore {
    /// The commit point of a segment of packed small objects: the segment becomes a committed
    /// object of [`SEGMENTS`] (its in-flight record goes), and each entry whose bucket exists
    /// and whose condition holds is committed as a PUT would be, in order (a key written
    /// twice in one segment: the later entry wins), in one synced batch. Returns one outcome
    /// per entry: the version it replaced, or why it did not commit (its bytes are dead space
    /// in the segment). A segment none of whose entries committed is garbage at once.
    pub fn commit_segment(
        &self,
        seg: &ObjectMeta,
        entries: &[PackEntry],
    ) -> Result<Vec<Result<Option<ObjectMeta>>>> {
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
        for e in entries {
            let (b, k) = (e.obj.bucket.clone(), e.obj.key.clone());
            if self.bucket(&b)?.is_none() {
                out.push(Err(MetaError::NoSuchBucket(b)));
                continue;
            }
            let current = match written.get(&(b.clone(), k.clone())) {
                Some(o) => Some(o.clone()),
                None => self.object(&b, &k)?,
            };
            if let Err(err) = check_precondition(current.as_ref(), &e.cond) {
                out.push(Err(err));
                continue;
            }
            release.live(seg.version, e.obj.size)?;
            if let Some(old) = &current {
                release.object(&mut batch, old)?;
            }
            batch.put(key(b'o', &[&b, &k]), serde_json::to_vec(&e.obj)?);
            written.insert((b, k), e.obj.clone());
            out.push(Ok(current));
        }
        release.finish(&mut batch)?;
        self.write_locked(batch, guard)?;
        Ok(out)
    }
}
