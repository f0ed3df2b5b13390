//! Multipart uploads and their parts.

use super::clock::now_ms;
use super::keys::{key, part_key, superseded_key};
use super::kv::Batch;
use super::records::{CompletedUpload, ObjectMeta, Part, Precondition, Upload, UploadListing};
use super::store::{check_precondition, Entry, MetaStore, Result};
use super::MetaError;
use tessera_node::{NodeId, ObjectVersion};

/// How many replaced uploads of one part number an upload keeps nameable.
pub const SUPERSEDED_PER_PART: usize = 4;

impl MetaStore {
    /// Records a new upload; fails if its bucket does not exist.
    pub fn create_upload(&self, u: &Upload) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        if self.bucket(&u.bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket(u.bucket.clone()));
        }
        let mut batch = Batch::default();
        batch.put(
            key(b'u', &[&u.bucket, &u.key, &u.id.to_string()]),
            serde_json::to_vec(u)?,
        );
        self.write_locked(batch, guard)
    }

    /// An upload in progress, or [`MetaError::NoSuchUpload`].
    pub fn upload(&self, bucket: &str, k: &str, id: ObjectVersion) -> Result<Upload> {
        self.get(&key(b'u', &[bucket, k, &id.to_string()]))?
            .ok_or_else(|| MetaError::NoSuchUpload(id.to_string()))
    }

    /// Uploads of `bucket` whose key starts with `prefix`, in (key, upload id) order, after
    /// `(key_marker, id_marker)`, rolled up at `delimiter` into common prefixes (one entry
    /// each, whatever the number of uploads under it), at most `max` entries (uploads plus
    /// prefixes). A key marker that is a common prefix (ends with the delimiter) resumes past
    /// everything under it.
    pub fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<(&str, Option<ObjectVersion>)>,
        max: usize,
    ) -> Result<UploadListing> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut base = key(b'u', &[bucket]);
        base.push(0);
        let mut from = base.clone();
        from.extend_from_slice(prefix.as_bytes());
        if let Some((k, id)) = after {
            let mut a = base.clone();
            a.extend_from_slice(k.as_bytes());
            match id {
                Some(id) => {
                    a.push(0);
                    a.extend_from_slice(id.to_string().as_bytes());
                    a.push(0);
                }
                // A common prefix: past every key under it (0xFF is never in UTF-8).
                None if delimiter.is_some_and(|d| k.ends_with(d)) => a.push(0xFF),
                // Past every upload of the key.
                None => {
                    a.push(0);
                    a.push(0xFF);
                }
            }
            from = from.max(a);
        }
        let mut out = UploadListing::default();
        out.truncated = self.walk_listing(&base, &from, prefix, delimiter, max, false, |e| {
            match e {
                Entry::Prefix(cp) => {
                    out.next = Some((cp.clone(), None));
                    out.prefixes.push(cp);
                }
                Entry::Key(_, v) => {
                    let u: Upload = serde_json::from_slice(v)?;
                    out.next = Some((u.key.clone(), Some(u.id)));
                    out.uploads.push(u);
                }
            }
            Ok(())
        })?;
        if !out.truncated {
            out.next = None;
        }
        Ok(out)
    }

    /// Every part of upload `id`, in part number order.
    pub fn upload_parts(&self, id: ObjectVersion) -> Result<Vec<Part>> {
        self.parts_of(b't', id)
    }

    /// Every part record of `kind` (`t` current, `r` superseded) of upload `id`.
    fn parts_of(&self, kind: u8, id: ObjectVersion) -> Result<Vec<Part>> {
        let mut prefix = key(kind, &[&id.to_string()]);
        prefix.push(0);
        let mut out = Vec::new();
        self.scan(&prefix, |_, p: Part| {
            out.push(p);
            true
        })?;
        Ok(out)
    }

    /// Earlier uploads of the upload's part numbers that later ones replaced, in key order.
    pub fn superseded_parts(&self, id: ObjectVersion) -> Result<Vec<Part>> {
        self.parts_of(b'r', id)
    }

    /// The commit point of an uploaded part: it joins the upload and its in-flight record
    /// goes, in one synced batch. A part of the same number it replaces is kept as
    /// superseded (a completion may still name it by its ETag), at most
    /// [`SUPERSEDED_PER_PART`] per number; older ones become garbage.
    /// Fails with [`MetaError::NoSuchUpload`] if the upload was completed or aborted meanwhile.
    pub fn commit_part(
        &self,
        bucket: &str,
        k: &str,
        upload: ObjectVersion,
        part: &Part,
    ) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        self.upload(bucket, k, upload)?;
        self.check_pending(&part.version.to_string())?;
        let pk = part_key(upload, part.number);
        let mut batch = Batch::default();
        if let Some(old) = self.get::<Part>(&pk)? {
            batch.put(
                superseded_key(upload, old.number, old.version),
                serde_json::to_vec(&old)?,
            );
            let mut earlier: Vec<Part> = self
                .superseded_parts(upload)?
                .into_iter()
                .filter(|p| p.number == part.number)
                .collect();
            earlier.sort_by_key(|p| p.version);
            let excess = (earlier.len() + 1).saturating_sub(SUPERSEDED_PER_PART);
            for gone in earlier.iter().take(excess) {
                batch.delete(superseded_key(upload, gone.number, gone.version));
                batch.put(
                    key(b'g', &[&gone.version.to_string()]),
                    serde_json::to_vec(&gone.shard_set(bucket, k))?,
                );
            }
        }
        batch.put(pk, serde_json::to_vec(part)?);
        batch.delete(key(b'p', &[&part.version.to_string()]));
        self.write_locked(batch, guard)
    }

    /// Removes upload `u` and its part records in `batch`; every part not in `keep` becomes
    /// garbage.
    pub(super) fn drop_upload(
        &self,
        batch: &mut Batch,
        u: &Upload,
        keep: &[ObjectVersion],
    ) -> Result<()> {
        batch.delete(key(b'u', &[&u.bucket, &u.key, &u.id.to_string()]));
        for p in self.superseded_parts(u.id)? {
            batch.delete(superseded_key(u.id, p.number, p.version));
            if !keep.contains(&p.version) {
                batch.put(
                    key(b'g', &[&p.version.to_string()]),
                    serde_json::to_vec(&p.shard_set(&u.bucket, &u.key))?,
                );
            }
        }
        for p in self.upload_parts(u.id)? {
            batch.delete(part_key(u.id, p.number));
            if !keep.contains(&p.version) {
                batch.put(
                    key(b'g', &[&p.version.to_string()]),
                    serde_json::to_vec(&p.shard_set(&u.bucket, &u.key))?,
                );
            }
        }
        Ok(())
    }

    /// Aborts an upload: it and its parts go, the parts' shards become garbage.
    pub fn abort_upload(&self, bucket: &str, k: &str, id: ObjectVersion) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        let u = self.upload(bucket, k, id)?;
        let mut batch = Batch::default();
        self.drop_upload(&mut batch, &u, &[])?;
        self.write_locked(batch, guard)
    }

    /// The commit point of a multipart upload: `obj` (assembled by the caller from a snapshot
    /// of the upload's parts) becomes the key's committed version if `cond` holds and every
    /// part it names is still the upload's part of that number. The upload and its part
    /// records go; parts left out, the version replaced and the manifest's in-flight record
    /// are settled in the same synced batch.
    pub fn complete_upload(
        &self,
        obj: &ObjectMeta,
        upload: ObjectVersion,
        cond: &Precondition,
    ) -> Result<ObjectMeta> {
        let guard = self.lock.lock().unwrap();
        let u = self.upload(&obj.bucket, &obj.key, upload)?;
        if let Some(m) = &obj.manifest {
            self.check_pending(&m.version.to_string())?;
        }
        for p in &obj.parts {
            let current: Option<Part> = self.get(&part_key(upload, p.number))?;
            let earlier: Option<Part> = self.get(&superseded_key(upload, p.number, p.version))?;
            if current.as_ref().map(|c| c.version) != Some(p.version) && earlier.is_none() {
                return Err(MetaError::InvalidPart(format!(
                    "part {} changed while the upload was being completed",
                    p.number
                )));
            }
        }
        let Some(bucket) = self.bucket(&obj.bucket)? else {
            return Err(MetaError::NoSuchBucket(obj.bucket.clone()));
        };
        let cond = self.unstamped(&bucket, cond)?;
        let old = self.object(&obj.bucket, &obj.key)?;
        check_precondition(old.as_ref(), cond)?;
        let mut batch = Batch::default();
        let keep: Vec<ObjectVersion> = obj.parts.iter().map(|p| p.version).collect();
        self.drop_upload(&mut batch, &u, &keep)?;
        if let Some(m) = &obj.manifest {
            batch.delete(key(b'p', &[&m.version.to_string()]));
        }
        let mut obj = obj.clone();
        self.supersede_one(&mut batch, &bucket, old.as_ref(), &mut obj)?;
        // Kept so a retried completion gets the same answer (see `completed_upload`).
        let done = CompletedUpload {
            bucket: obj.bucket.clone(),
            key: obj.key.clone(),
            etag: obj.etag.clone(),
            parts: obj
                .parts
                .iter()
                .map(|p| (p.number, p.etag.clone()))
                .collect(),
            completed_ms: now_ms(),
            checksums: obj.checksums.clone(),
            checksum_type: obj.checksum_type.clone(),
            version_id: (!obj.is_null()).then(|| obj.version_id()),
        };
        batch.put(
            key(b'c', &[&upload.to_string()]),
            serde_json::to_vec(&done)?,
        );
        self.write_locked(batch, guard)?;
        Ok(obj)
    }

    /// The completion of upload `id`, while it is remembered (until
    /// [`MetaStore::expire_completed`] drops it).
    pub fn completed_upload(&self, id: ObjectVersion) -> Result<Option<CompletedUpload>> {
        self.get(&key(b'c', &[&id.to_string()]))
    }

    /// Forgets completions older than `before_ms` (at most 10,000 a call); returns how many.
    /// Cost: the expired records and one more: records are keyed by upload id, whose high
    /// bits are the upload's creation time, never after its completion, so the walk stops at
    /// the first upload created after `before_ms`.
    pub fn expire_completed(&self, before_ms: u64) -> Result<usize> {
        let guard = self.lock.lock().unwrap();
        let mut old = Vec::new();
        self.scan(&key(b'c', &[]), |id, c: CompletedUpload| {
            let created = std::str::from_utf8(id)
                .ok()
                .and_then(|i| i.parse::<ObjectVersion>().ok())
                .map_or(0, |v| v.millis());
            if created >= before_ms || old.len() >= 10_000 {
                return false;
            }
            if c.completed_ms < before_ms {
                old.push(id.to_vec());
            }
            true
        })?;
        let mut batch = Batch::default();
        for id in &old {
            let mut k = key(b'c', &[]);
            k.extend_from_slice(id);
            batch.delete(k);
        }
        self.write_locked(batch, guard)?;
        Ok(old.len())
    }

    /// Uploads created before `before_ms` (at most `limit`), for expiry.
    pub fn uploads_older_than(&self, before_ms: u64, limit: usize) -> Result<Vec<Upload>> {
        let mut out = Vec::new();
        self.scan(&key(b'u', &[]), |_, u: Upload| {
            if u.initiated_ms < before_ms {
                out.push(u);
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Whether shard `index` of `version` on `node` is held by upload `upload`'s parts.
    pub fn upload_references(
        &self,
        upload: ObjectVersion,
        version: ObjectVersion,
        index: usize,
        node: &NodeId,
    ) -> Result<bool> {
        Ok(self
            .upload_parts(upload)?
            .iter()
            .chain(self.superseded_parts(upload)?.iter())
            .any(|p| p.version == version && p.holds(index, node)))
    }
}
