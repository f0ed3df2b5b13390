//! The metadata store: one ordered key-value store, one lock for read-modify-writes, and the
//! helpers every family of operations uses (reads, scans, synced batches, releasing what a
//! batch replaces). The operations themselves live in one file per family.

use super::keys::key;
use super::kv::{Batch, Kv, Step};
use super::records::{Fill, ObjectMeta, Precondition, SEGMENTS};
use super::{counters, derived, memory, rocks, MetaError};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use tessera_node::ObjectVersion;

/// Fails unless `cond` holds for the committed version `current`.
pub fn check_precondition(current: Option<&ObjectMeta>, cond: &Precondition) -> Result<()> {
    let ok = match cond {
        Precondition::None => true,
        Precondition::Absent => current.is_none(),
        Precondition::ETag(e) => current.is_some_and(|o| &o.etag == e),
        Precondition::Exists => current.is_some(),
        Precondition::NotETag(e) => current.is_none_or(|o| &o.etag != e),
        Precondition::Both(a, b) => {
            return check_precondition(current, a).and(check_precondition(current, b))
        }
        Precondition::Version(v) => current.is_some_and(|o| o.version == *v),
        Precondition::Moved { version, from } => current.is_some_and(|o| {
            o.version == *version && o.packed.as_ref().is_some_and(|p| p.segment == *from)
        }),
        // The stamp is checked by the commits, which read the bucket.
        Precondition::Checked { cond, .. } => return check_precondition(current, cond),
    };
    if ok {
        Ok(())
    } else {
        Err(MetaError::PreconditionFailed)
    }
}

pub type Result<T> = std::result::Result<T, MetaError>;

/// What a batch releases: the stored runs of replaced or deleted objects become garbage, and
/// a packed object's bytes become dead space in its segment (a segment left with no live
/// object becomes garbage as a whole). Segments are read once and written once per batch
/// ([`Release::finish`]), however many of their objects the batch releases.
pub struct Release<'a> {
    store: &'a MetaStore,
    pub(super) segments: BTreeMap<ObjectVersion, Option<ObjectMeta>>,
}

impl<'a> Release<'a> {
    pub(super) fn new(store: &'a MetaStore) -> Self {
        Release {
            store,
            segments: BTreeMap::new(),
        }
    }

    /// Releases `obj` (a version leaving the namespace).
    pub(super) fn object(&mut self, batch: &mut Batch, obj: &ObjectMeta) -> Result<()> {
        for (record, set) in obj.garbage_records() {
            batch.put(key(b'g', &[&record]), serde_json::to_vec(&set)?);
        }
        if let Some(p) = &obj.packed {
            if let Some(seg) = self.segment(p.segment)? {
                let f = seg.fill.get_or_insert_with(Fill::default);
                f.live_objects = f.live_objects.saturating_sub(1);
                f.live_bytes = f.live_bytes.saturating_sub(obj.size);
            }
        }
        Ok(())
    }

    /// Counts one more live object of `size` bytes in segment `v`.
    pub(super) fn live(&mut self, v: ObjectVersion, size: u64) -> Result<()> {
        if let Some(seg) = self.segment(v)? {
            let f = seg.fill.get_or_insert_with(Fill::default);
            f.live_objects += 1;
            f.live_bytes += size;
        }
        Ok(())
    }

    /// Segment `v` as this batch leaves it (read from the store the first time).
    pub(super) fn segment(&mut self, v: ObjectVersion) -> Result<Option<&mut ObjectMeta>> {
        if !self.segments.contains_key(&v) {
            let seg = self.store.object(SEGMENTS, &v.to_string())?;
            self.segments.insert(v, seg);
        }
        Ok(self.segments.get_mut(&v).and_then(|s| s.as_mut()))
    }

    /// Writes the segments touched: updated, or garbage once nothing in them lives.
    pub(super) fn finish(self, batch: &mut Batch) -> Result<()> {
        for seg in self.segments.into_values().flatten() {
            let k = key(b'o', &[SEGMENTS, &seg.key]);
            if seg.fill.is_some_and(|f| f.live_objects == 0) {
                batch.delete(k);
                for (record, set) in seg.garbage_records() {
                    batch.put(key(b'g', &[&record]), serde_json::to_vec(&set)?);
                }
            } else {
                batch.put(k, serde_json::to_vec(&seg)?);
            }
        }
        Ok(())
    }
}

/// Records `obj` as released in `batch` (see [`Release`]).
pub fn put_garbage(store: &MetaStore, batch: &mut Batch, obj: &ObjectMeta) -> Result<()> {
    let mut r = Release::new(store);
    r.object(batch, obj)?;
    r.finish(batch)
}

/// The metadata database. All methods block (call them from `spawn_blocking`).
pub struct MetaStore {
    pub(super) kv: Box<dyn Kv>,
    pub(super) lock: Mutex<()>,
    /// Held from reading what a batch replaces to applying it, so that the derived records
    /// each batch changes ([`super::derived::derive`]) follow the records it replaces.
    applying: Mutex<()>,
    /// Every journal entry below this number is dropped: walks of the journal start here
    /// instead of stepping over the deleted entries the engine has not compacted away yet.
    pub(super) journal_floor: std::sync::atomic::AtomicU64,
}

impl MetaStore {
    /// Opens or creates the RocksDB database in `dir`, with the default memory limits.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, &rocks::EngineLimits::default())
    }

    /// Opens or creates the RocksDB database in `dir`, holding at most `limits` in memory.
    pub fn open_with(dir: &Path, limits: &rocks::EngineLimits) -> Result<Self> {
        Self::on(Box::new(rocks::RocksKv::open(dir, limits)?))
    }

    /// An empty store in memory (nothing survives the process).
    pub fn in_memory() -> Self {
        Self::on(Box::<memory::MemKv>::default()).expect("an empty store needs no recount")
    }

    /// A store on `kv` (its derived records made first if it was made without them).
    pub fn on(kv: Box<dyn Kv>) -> Result<Self> {
        derived::ensure(kv.as_ref())?;
        Ok(MetaStore {
            kv,
            lock: Mutex::new(()),
            applying: Mutex::new(()),
            journal_floor: Default::default(),
        })
    }

    /// Applies `batch` with the changes it makes to the derived records, without waiting
    /// for a sync.
    pub(super) fn apply(&self, mut batch: Batch) -> Result<()> {
        let _applying = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        derived::derive(self.kv.as_ref(), &mut batch)?;
        self.kv.apply(batch)
    }

    /// The counters as kept (O(buckets + nodes)).
    pub fn counters(&self) -> Result<counters::Counters> {
        counters::read(self.kv.as_ref())
    }

    /// The derived records recomputed from every record against those kept (O(objects):
    /// for checks).
    pub fn check_derived(&self) -> Result<derived::DerivedCheck> {
        // No batch lands (every one is applied under `applying`) between reading the kept
        // counters and the recount: background collection would otherwise make them differ
        // by its last step. Writes wait for the walk.
        let _applying = self.applying.lock().unwrap_or_else(|e| e.into_inner());
        derived::check(self.kv.as_ref())
    }

    pub(super) fn get<T: DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>> {
        match self.kv.get(k)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Every record of `kind`, in key order.
    pub(super) fn all<T: DeserializeOwned>(&self, kind: u8) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.scan(&key(kind, &[]), |_, v: T| {
            out.push(v);
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each entry under `prefix` (the key without the prefix, the decoded
    /// value) until it returns false.
    pub(super) fn scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], T) -> bool,
    ) -> Result<()> {
        self.scan_from(prefix, prefix, |k, v| Ok(f(k, v)))
    }

    /// [`MetaStore::scan`] starting at `from` (at or after `prefix`).
    pub(super) fn scan_from<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        from: &[u8],
        mut f: impl FnMut(&[u8], T) -> Result<bool>,
    ) -> Result<()> {
        self.kv.walk(from, &mut |k, v| {
            if !k.starts_with(prefix) || !f(&k[prefix.len()..], serde_json::from_slice(v)?)? {
                return Ok(Step::Stop);
            }
            Ok(Step::Next)
        })
    }

    /// Applies `batch`; when this returns, the change survives a crash of the coordinator or
    /// host. Concurrent writers share syncs (group commit).
    pub(super) fn write(&self, batch: Batch) -> Result<()> {
        self.apply(batch)?;
        self.kv.sync()
    }

    /// [`MetaStore::write`] for a read-modify-write under the metadata lock: the batch is
    /// applied under the lock, which is released before waiting for the sync so that other
    /// commits can join it.
    pub(super) fn write_locked(&self, batch: Batch, guard: MutexGuard<'_, ()>) -> Result<()> {
        self.apply(batch)?;
        drop(guard);
        self.kv.sync()
    }
}

/// One entry of a listing walk: a key (its name and stored value) or a common prefix.
pub(super) enum Entry<'a> {
    Key(&'a str, &'a [u8]),
    Prefix(String),
}
