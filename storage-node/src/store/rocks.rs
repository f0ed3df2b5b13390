//! [`ShardStore`] on local disk: small shards inside RocksDB, large shards one file each, and
//! a RocksDB index that decides what is visible.
//!
//! Layout under the store's directory:
//! - `index/`: RocksDB. Keys are prefixed by one byte:
//!   - `s` + shard id (18 B) -> JSON [`Committed`]: the index entry; its presence is visibility.
//!   - `c` + shard id + generation (8 B) + chunk number (8 B) -> `blake3 || data`: the chunks
//!     of a small shard (at most [`INLINE_MAX`] bytes), written in the commit batch itself.
//! - `files/{shard id hex}-{generation hex}.shard`: a large shard, its chunks stored back to
//!   back as `blake3 || data`.
//!
//! Why this split (measured, see BENCHMARKS.md): putting every shard in RocksDB makes each
//! byte go to disk twice (WAL, then the flushed blob file), which halved large PUTs; a file per
//! large shard writes each byte once, sequentially. Small shards stay in RocksDB, so they do not
//! cost a file (or an fsync of their own) each.
//!
//! Durability: a small shard is committed by one synced batch (chunks + index entry). A large
//! shard's file is fsynced, then its directory, then the index entry goes in with a synced
//! batch. Every write of a shard id uses a new generation, so a rewrite never touches what
//! readers of the old one use. A crash leaves at worst a file no index entry names; opening the
//! store deletes those.

use super::chunk::{verify_records, ChunkBuffer, CHUNK_HASH_LEN};
use super::WalSync;
use super::{
    check_final, chunk_span, validate_header, Records, RecordsAt, ShardStore, ShardWriter,
    WholeShard,
};
use crate::error::{Result, StoreError};
use crate::types::{ShardHeader, ShardId, ShardInfo};
use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Shards up to this size live inside RocksDB; larger ones get a file.
pub const INLINE_MAX: u64 = 64 << 10;

/// Index entry of a committed shard.
#[derive(Serialize, Deserialize)]
struct Committed {
    info: ShardInfo,
    generation: u64,
    /// The chunks are in a file (else inline in RocksDB).
    #[serde(default)]
    file: bool,
}

/// A disk-backed shard store. Cheap to clone.
#[derive(Clone)]
pub struct RocksShardStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    files: PathBuf,
    next_generation: AtomicU64,
    used: AtomicU64,
    /// Bytes of inline (RocksDB-held) shards deleted since the last reclaim.
    deleted_inline: AtomicU64,
    /// Serialises read-modify-write of index entries (commit and delete of the same id).
    index_lock: Mutex<()>,
    /// Group commit of index writes.
    wal: WalSync,
    /// Failpoint for crash tests: aborted writers skip their cleanup, as if the process died.
    crash_failpoint: AtomicBool,
}

fn index_key(id: ShardId) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(b's');
    k.extend_from_slice(&id.to_key());
    k
}
fn chunk_key(id: ShardId, generation: u64, n: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(35);
    k.push(b'c');
    k.extend_from_slice(&id.to_key());
    k.extend_from_slice(&generation.to_be_bytes());
    k.extend_from_slice(&n.to_be_bytes());
    k
}
fn delete_chunks(batch: &mut WriteBatch, id: ShardId, generation: u64) {
    batch.delete_range(
        chunk_key(id, generation, 0),
        chunk_key(id, generation, u64::MAX),
    );
}
fn file_name(id: ShardId, generation: u64) -> String {
    format!("{}-{generation:016x}.shard", hex::encode(id.to_key()))
}
fn parse_file_name(name: &str) -> Option<(ShardId, u64)> {
    let stem = name.strip_suffix(".shard")?;
    let (id, g) = stem.split_once('-')?;
    let id = ShardId::from_key(&hex::decode(id).ok()?)?;
    Some((id, u64::from_str_radix(g, 16).ok()?))
}
/// Index writes are applied unsynced under the index lock, then made durable by the group
/// commit ([`WalSync`]) after the lock is released.
fn unsynced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(false);
    w
}
fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("index entry: {e}"))
}

impl RocksShardStore {
    /// Opens (creating if needed) the store in `dir`, discarding what a crash left half-done.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_enable_blob_files(true);
        opts.set_min_blob_size(4096);
        opts.set_enable_blob_gc(true);
        opts.set_write_buffer_size(32 << 20);
        opts.set_max_background_jobs(2);
        opts.set_max_open_files(512);
        // Index entries are JSON (chunk data goes to blob files, uncompressed).
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        let files = dir.join("files");
        std::fs::create_dir_all(&files)?;
        let db = DB::open(&opts, dir.join("index"))?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let store = RocksShardStore {
            inner: Arc::new(Inner {
                db,
                files,
                next_generation: AtomicU64::new(now),
                used: AtomicU64::new(0),
                deleted_inline: AtomicU64::new(0),
                index_lock: Mutex::new(()),
                wal: WalSync::default(),
                crash_failpoint: AtomicBool::new(false),
            }),
        };
        store.recover()?;
        Ok(store)
    }

    /// A writer for `header` (what `begin` boxes).
    fn writer(&self, header: ShardHeader) -> Result<RocksWriter> {
        validate_header(&header)?;
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        Ok(RocksWriter {
            store: self.clone(),
            id: header.shard_id(),
            generation,
            buf: ChunkBuffer::new(header.chunk_size),
            header,
            held: Vec::new(),
            held_bytes: 0,
            file: None,
            done: false,
        })
    }

    /// What remains of a commit once its WAL sync is done: drop the file of the shard it
    /// replaced.
    fn after_sync(&self, a: AppliedWrite) -> ShardInfo {
        if let Some(old) = &a.old {
            self.discard_file(a.info.header.shard_id(), old);
        }
        a.info
    }

    /// Deletes shard files no index entry names (writes a crash interrupted, deletes it cut
    /// short) and recomputes the used-bytes counter.
    fn recover(&self) -> Result<()> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.inner.files)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().to_string();
            let keep = match parse_file_name(&name) {
                Some((id, generation)) => match self.committed(id) {
                    Ok(c) => c.file && c.generation == generation,
                    Err(StoreError::NotFound(_)) => false,
                    Err(e) => return Err(e),
                },
                None => false,
            };
            if !keep {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        if removed > 0 {
            tracing::info!(removed, "discarded shard files left by interrupted writes");
        }
        let mut used = 0;
        for item in self
            .inner
            .db
            .iterator(IteratorMode::From(b"s", Direction::Forward))
        {
            let (k, v) = item?;
            if k.first() != Some(&b's') {
                break;
            }
            let c: Committed = serde_json::from_slice(&v).map_err(json_err)?;
            used += c.info.length;
        }
        self.inner.used.store(used, Ordering::Relaxed);
        Ok(())
    }

    /// Flushes memtables to their final files (used before a clean shutdown).
    pub fn flush(&self) -> Result<()> {
        Ok(self.inner.db.flush()?)
    }

    /// Failpoint for crash tests: from now on, a writer dropped before commit leaves its
    /// partial file behind, exactly as a process killed mid-write would.
    pub fn set_crash_failpoint(&self, on: bool) {
        self.inner.crash_failpoint.store(on, Ordering::Relaxed);
    }

    /// Number of index entries, inline chunks and shard files, for crash-recovery tests.
    pub fn counts(&self) -> Result<(usize, usize, usize)> {
        let (mut s, mut c) = (0, 0);
        for item in self.inner.db.iterator(IteratorMode::Start) {
            let (k, _) = item?;
            match k.first() {
                Some(b's') => s += 1,
                Some(b'c') => c += 1,
                _ => {}
            }
        }
        let files = std::fs::read_dir(&self.inner.files)?.count();
        Ok((s, c, files))
    }

    fn committed(&self, id: ShardId) -> Result<Committed> {
        let v = self
            .inner
            .db
            .get_pinned(index_key(id))?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        serde_json::from_slice(&v).map_err(json_err)
    }

    fn path(&self, id: ShardId, generation: u64) -> PathBuf {
        self.inner.files.join(file_name(id, generation))
    }

    /// Removes what an old or deleted index entry pointed to, after the index change is durable.
    fn discard_file(&self, id: ShardId, old: &Committed) {
        if old.file {
            let _ = std::fs::remove_file(self.path(id, old.generation));
        }
    }
}

impl ShardStore for RocksShardStore {
    fn begin(&self, header: ShardHeader) -> Result<Box<dyn ShardWriter>> {
        Ok(Box::new(self.writer(header)?))
    }

    fn log_counts(&self) -> (u64, u64) {
        self.inner.wal.counts()
    }

    fn put_many(&self, shards: Vec<WholeShard>) -> Vec<Result<ShardInfo>> {
        let applied: Vec<Result<AppliedWrite>> = shards
            .into_iter()
            .map(|s| {
                let mut w = self.writer(s.header)?;
                for d in &s.data {
                    w.write(d)?;
                }
                w.apply(s.final_header, s.length)
            })
            .collect();
        // One WAL sync makes every applied shard durable.
        let ok = applied.iter().filter(|a| a.is_ok()).count() as u64;
        if ok > 0 {
            if let Err(e) = self.inner.wal.sync_writes(&self.inner.db, ok) {
                let e = StoreError::from(e);
                return applied
                    .into_iter()
                    .map(|a| a.and_then(|_| Err(StoreError::Io(e.to_string()))))
                    .collect();
            }
        }
        applied
            .into_iter()
            .map(|a| a.map(|a| self.after_sync(a)))
            .collect()
    }

    fn read_chunks(&self, id: ShardId, offset: u64, len: u64) -> Result<Vec<Bytes>> {
        let r = self.read_records(id, offset, len)?;
        let (cs, first) = (r.chunk_size, r.first);
        verify_records(r.load()?, cs, first, offset, len, &id)
    }

    fn read_records(&self, id: ShardId, offset: u64, len: u64) -> Result<Records> {
        let c = self.committed(id)?;
        let cs = c.info.header.chunk_size;
        let (first, end) = chunk_span(c.info.length, cs, offset, len)?;
        let at = if len == 0 {
            RecordsAt::Memory(Vec::new())
        } else if c.file {
            let stored = (CHUNK_HASH_LEN as u64) + cs as u64;
            let data_end = (end * cs as u64).min(c.info.length);
            let start = first * stored;
            let stop =
                (end - 1) * stored + CHUNK_HASH_LEN as u64 + (data_end - (end - 1) * cs as u64);
            let file = std::fs::File::open(self.path(id, c.generation))
                .map_err(|e| StoreError::Corrupt(format!("{id}: shard file: {e}")))?;
            RecordsAt::File {
                file,
                offset: start,
                len: stop - start,
            }
        } else {
            let keys: Vec<_> = (first..end)
                .map(|n| chunk_key(id, c.generation, n))
                .collect();
            let mut records = Vec::with_capacity(keys.len());
            for (n, v) in self.inner.db.multi_get(keys).into_iter().enumerate() {
                records.push(Bytes::from(v?.ok_or_else(|| {
                    StoreError::Corrupt(format!("{id}: chunk {} missing", first + n as u64))
                })?));
            }
            RecordsAt::Memory(records)
        };
        Ok(Records {
            chunk_size: cs,
            first,
            at,
        })
    }

    fn stat(&self, id: ShardId) -> Result<ShardInfo> {
        Ok(self.committed(id)?.info)
    }

    fn delete(&self, id: ShardId) -> Result<()> {
        let guard = self.inner.index_lock.lock().unwrap();
        let c = match self.committed(id) {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut batch = WriteBatch::default();
        batch.delete(index_key(id));
        delete_chunks(&mut batch, id, c.generation);
        self.inner.db.write_opt(batch, &unsynced())?;
        drop(guard);
        self.inner.used.fetch_sub(c.info.length, Ordering::Relaxed);
        if !c.file {
            self.inner
                .deleted_inline
                .fetch_add(c.info.length, Ordering::Relaxed);
        }
        // Durable before the file goes, so that a deleted shard does not come back after a
        // crash with its data missing.
        self.inner.wal.sync(&self.inner.db)?;
        self.discard_file(id, &c);
        Ok(())
    }

    fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>> {
        let start = match after {
            Some(id) => {
                let mut k = index_key(id);
                k.push(0);
                k
            }
            None => b"s".to_vec(),
        };
        let mut out = Vec::new();
        for item in self
            .inner
            .db
            .iterator(IteratorMode::From(&start, Direction::Forward))
        {
            let (k, v) = item?;
            if k.first() != Some(&b's') || out.len() >= limit {
                break;
            }
            let c: Committed = serde_json::from_slice(&v).map_err(json_err)?;
            out.push(c.info);
        }
        Ok(out)
    }

    fn used_bytes(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    fn reclaimable(&self) -> u64 {
        self.inner.deleted_inline.load(Ordering::Relaxed)
    }

    /// A full compaction with blob garbage collection over every blob file (normally only
    /// the oldest quarter is collected), so deleted chunks leave the tables and blob files.
    fn reclaim(&self) -> Result<u64> {
        let n = self.inner.deleted_inline.swap(0, Ordering::Relaxed);
        if n == 0 {
            return Ok(0);
        }
        let db = &self.inner.db;
        db.set_options(&[("blob_garbage_collection_age_cutoff", "1.0")])?;
        db.compact_range(None::<&[u8]>, None::<&[u8]>);
        db.set_options(&[("blob_garbage_collection_age_cutoff", "0.25")])?;
        Ok(n)
    }

    fn engine_gauges(&self) -> Vec<(&'static str, u64)> {
        rocksdb_gauges(&self.inner.db)
    }
}

/// The RocksDB properties Tessera reports for any RocksDB it keeps: (metric name, property,
/// help).
pub const ROCKSDB_GAUGES: [(&str, &str, &str); 8] = [
    (
        "rocksdb_pending_compaction_bytes",
        "rocksdb.estimate-pending-compaction-bytes",
        "Bytes RocksDB estimates compaction must rewrite",
    ),
    (
        "rocksdb_running_compactions",
        "rocksdb.num-running-compactions",
        "RocksDB compactions running",
    ),
    (
        "rocksdb_write_stopped",
        "rocksdb.is-write-stopped",
        "1 while RocksDB stops writes (stall)",
    ),
    (
        "rocksdb_delayed_write_rate_bytes",
        "rocksdb.actual-delayed-write-rate",
        "Write rate RocksDB slows writers to, bytes/s (0: not delayed)",
    ),
    (
        "rocksdb_immutable_memtables",
        "rocksdb.num-immutable-mem-table",
        "Memtables waiting to be flushed",
    ),
    (
        "rocksdb_live_sst_bytes",
        "rocksdb.live-sst-files-size",
        "Bytes of the SST files the current version of the database uses",
    ),
    (
        "rocksdb_memtable_bytes",
        "rocksdb.cur-size-all-mem-tables",
        "Bytes of the active and unflushed memtables",
    ),
    (
        "rocksdb_block_cache_bytes",
        "rocksdb.block-cache-usage",
        "Bytes the block cache holds",
    ),
];

/// The [`ROCKSDB_GAUGES`] of `db`: `(metric name, value)`.
pub fn rocksdb_gauges(db: &DB) -> Vec<(&'static str, u64)> {
    ROCKSDB_GAUGES
        .iter()
        .filter_map(|(name, prop, _)| Some((*name, db.property_int_value(*prop).ok()??)))
        .collect()
}

struct RocksWriter {
    store: RocksShardStore,
    id: ShardId,
    generation: u64,
    header: ShardHeader,
    buf: ChunkBuffer,
    /// Sealed chunks kept in memory while the shard is still small enough to go inline.
    held: Vec<Bytes>,
    held_bytes: u64,
    /// Open once the shard outgrew [`INLINE_MAX`].
    file: Option<std::fs::File>,
    done: bool,
}

impl RocksWriter {
    fn push_chunk(&mut self, chunk: Bytes) -> Result<()> {
        if let Some(f) = &mut self.file {
            f.write_all(&chunk)?;
            return Ok(());
        }
        self.held_bytes += chunk.len() as u64;
        self.held.push(chunk);
        if self.held_bytes > INLINE_MAX + CHUNK_HASH_LEN as u64 {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.store.path(self.id, self.generation))?;
            for c in self.held.drain(..) {
                f.write_all(&c)?;
            }
            self.file = Some(f);
        }
        Ok(())
    }
}

impl ShardWriter for RocksWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let mut sealed = Vec::new();
        self.buf.push(data, |c| {
            sealed.push(c);
            Ok(())
        })?;
        for c in sealed {
            self.push_chunk(c)?;
        }
        Ok(())
    }

    fn commit_with(self: Box<Self>, header: ShardHeader, length: u64) -> Result<ShardInfo> {
        let store = self.store.clone();
        let applied = self.apply(header, length)?;
        store.inner.wal.sync(&store.inner.db)?;
        Ok(store.after_sync(applied))
    }
}

/// A commit applied to the index but not yet synced.
struct AppliedWrite {
    info: ShardInfo,
    /// The entry it replaced, whose file goes once the commit is durable.
    old: Option<Committed>,
}

impl RocksWriter {
    /// Everything of a commit but the WAL sync: checks, file sync, and the index batch
    /// applied under the index lock. Durable only after [`WalSync::sync`].
    fn apply(mut self, header: ShardHeader, length: u64) -> Result<AppliedWrite> {
        check_final(&self.header, &header, self.buf.length, length)?;
        if let Some(c) = self.buf.finish() {
            self.push_chunk(c)?;
        }
        let mut batch = WriteBatch::default();
        let in_file = self.file.is_some();
        if let Some(f) = self.file.take() {
            // Data, then the directory entry, on stable storage before the index names them.
            f.sync_all()?;
            std::fs::File::open(&self.store.inner.files)?.sync_all()?;
        } else {
            for (n, c) in self.held.iter().enumerate() {
                batch.put(chunk_key(self.id, self.generation, n as u64), c);
            }
        }
        let info = ShardInfo { header, length };
        let entry = Committed {
            info: info.clone(),
            generation: self.generation,
            file: in_file,
        };
        let entry = serde_json::to_vec(&entry).map_err(|e| StoreError::Io(e.to_string()))?;
        let inner = &self.store.inner;
        let guard = inner.index_lock.lock().unwrap();
        let old = match self.store.committed(self.id) {
            Ok(c) => Some(c),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        batch.put(index_key(self.id), entry);
        if let Some(old) = &old {
            delete_chunks(&mut batch, self.id, old.generation);
        }
        // The commit point: one batch, durable once the group commit returns.
        inner.db.write_opt(batch, &unsynced())?;
        drop(guard);
        // AppliedWrite: the index names this write's data now, so it must not be cleaned up.
        self.done = true;
        inner.used.fetch_add(info.length, Ordering::Relaxed);
        if let Some(old) = &old {
            inner.used.fetch_sub(old.info.length, Ordering::Relaxed);
        }
        Ok(AppliedWrite { info, old })
    }
}

impl Drop for RocksWriter {
    fn drop(&mut self) {
        if self.done || self.store.inner.crash_failpoint.load(Ordering::Relaxed) {
            return;
        }
        // Aborted write: nothing is in the index; drop the partial file if there is one. If
        // this does not run (the process died), the next open removes the file.
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(self.store.path(self.id, self.generation));
        }
    }
}
