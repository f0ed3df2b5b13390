//! [`ShardStore`] on RocksDB with blob files.
//!
//! Layout (one column family, keys prefixed by one byte):
//! - `s` + shard id (18 B) -> JSON [`Committed`]: the index entry; its presence is visibility.
//! - `p` + shard id + generation (8 B) -> JSON header: a write in progress.
//! - `c` + shard id + generation + chunk number (8 B) -> `blake3 || data`: shard bytes.
//!
//! Chunk values larger than 4 KiB live in RocksDB blob files, so large shards are written
//! sequentially and small shards do not cost a file each. Every write of a shard uses a fresh
//! generation, so a rewrite never touches the chunks readers of the old one use.
//!
//! Durability: chunks go through the WAL unsynced; the commit is one write batch with
//! `sync = true` (index entry in, pending marker out). A synced WAL write also makes every
//! earlier WAL record durable, so when commit returns the chunks are on disk too. A crash
//! before the commit leaves a pending marker, and opening the store deletes its chunks.

use super::chunk::{assemble, verify_chunk, ChunkBuffer};
use super::{check_final, chunk_span, validate_header, ShardStore, ShardWriter};
use crate::error::{Result, StoreError};
use crate::types::{ShardHeader, ShardId, ShardInfo};
use bytes::Bytes;
use rocksdb::{Direction, IteratorMode, Options, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Index entry of a committed shard.
#[derive(Serialize, Deserialize)]
struct Committed {
    info: ShardInfo,
    generation: u64,
}

/// A RocksDB-backed shard store. Cheap to clone.
#[derive(Clone)]
pub struct RocksShardStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: DB,
    next_generation: AtomicU64,
    used: AtomicU64,
    /// Serialises read-modify-write of index entries (commit and delete of the same id).
    index_lock: Mutex<()>,
    /// Failpoint for crash tests: aborted writers skip their cleanup, as if the process died.
    crash_failpoint: std::sync::atomic::AtomicBool,
}

fn index_key(id: ShardId) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(b's');
    k.extend_from_slice(&id.to_key());
    k
}
fn pending_key(id: ShardId, generation: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(27);
    k.push(b'p');
    k.extend_from_slice(&id.to_key());
    k.extend_from_slice(&generation.to_be_bytes());
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
fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}
fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("index entry: {e}"))
}

impl RocksShardStore {
    /// Opens (creating if needed) the store in `dir`, discarding writes a crash interrupted.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_enable_blob_files(true);
        opts.set_min_blob_size(4096);
        opts.set_blob_file_size(256 << 20);
        opts.set_enable_blob_gc(true);
        opts.set_write_buffer_size(32 << 20);
        opts.set_max_background_jobs(2);
        opts.set_max_open_files(512);
        let db = DB::open(&opts, dir)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let store = RocksShardStore {
            inner: Arc::new(Inner {
                db,
                next_generation: AtomicU64::new(now),
                used: AtomicU64::new(0),
                index_lock: Mutex::new(()),
                crash_failpoint: Default::default(),
            }),
        };
        store.recover()?;
        Ok(store)
    }

    /// Deletes the chunks of interrupted writes and recomputes the used-bytes counter.
    fn recover(&self) -> Result<()> {
        let db = &self.inner.db;
        let mut batch = WriteBatch::default();
        let mut interrupted = 0;
        for item in db.iterator(IteratorMode::From(b"p", Direction::Forward)) {
            let (k, _) = item?;
            if k.first() != Some(&b'p') {
                break;
            }
            if let (Some(id), Ok(g)) = (ShardId::from_key(&k[1..19]), k[19..].try_into()) {
                delete_chunks(&mut batch, id, u64::from_be_bytes(g));
            }
            batch.delete(&k);
            interrupted += 1;
        }
        if interrupted > 0 {
            tracing::info!(
                interrupted,
                "discarding shard writes interrupted by a crash"
            );
            db.write_opt(batch, &synced())?;
        }
        let mut used = 0;
        for item in db.iterator(IteratorMode::From(b"s", Direction::Forward)) {
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

    /// Flushes memtables to SST and blob files (used before a clean shutdown so the data
    /// lives in its final files).
    pub fn flush(&self) -> Result<()> {
        Ok(self.inner.db.flush()?)
    }

    /// Failpoint for crash tests: from now on, a writer dropped before commit leaves its
    /// pending marker and chunks behind, exactly as a process killed mid-write would.
    pub fn set_crash_failpoint(&self, on: bool) {
        self.inner.crash_failpoint.store(on, Ordering::Relaxed);
    }

    /// Number of keys of each kind (`s`, `p`, `c`), for crash-recovery tests.
    pub fn key_counts(&self) -> Result<(usize, usize, usize)> {
        let (mut s, mut p, mut c) = (0, 0, 0);
        for item in self.inner.db.iterator(IteratorMode::Start) {
            let (k, _) = item?;
            match k.first() {
                Some(b's') => s += 1,
                Some(b'p') => p += 1,
                Some(b'c') => c += 1,
                _ => {}
            }
        }
        Ok((s, p, c))
    }

    fn committed(&self, id: ShardId) -> Result<Committed> {
        let v = self
            .inner
            .db
            .get_pinned(index_key(id))?
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        serde_json::from_slice(&v).map_err(json_err)
    }
}

impl ShardStore for RocksShardStore {
    fn begin(&self, header: ShardHeader) -> Result<Box<dyn ShardWriter>> {
        validate_header(&header)?;
        let id = header.shard_id();
        let generation = self.inner.next_generation.fetch_add(1, Ordering::Relaxed);
        // The pending marker goes in before any chunk, so a crash at any later point leaves a
        // record of what to clean up.
        let h = serde_json::to_vec(&header).map_err(|e| StoreError::Io(e.to_string()))?;
        self.inner.db.put(pending_key(id, generation), h)?;
        Ok(Box::new(RocksWriter {
            store: self.clone(),
            id,
            generation,
            buf: ChunkBuffer::new(header.chunk_size),
            header,
            next_chunk: 0,
            done: false,
        }))
    }

    fn read(&self, id: ShardId, offset: u64, len: u64) -> Result<Bytes> {
        let c = self.committed(id)?;
        let cs = c.info.header.chunk_size;
        let (first, end) = chunk_span(c.info.length, cs, offset, len)?;
        if len == 0 {
            return Ok(Bytes::new());
        }
        let keys: Vec<_> = (first..end)
            .map(|n| chunk_key(id, c.generation, n))
            .collect();
        let mut chunks = Vec::with_capacity(keys.len());
        for (n, v) in self.inner.db.multi_get(keys).into_iter().enumerate() {
            let v = v?.ok_or_else(|| {
                StoreError::Corrupt(format!("{id}: chunk {} missing", first + n as u64))
            })?;
            chunks.push(verify_chunk(Bytes::from(v), &id)?);
        }
        Ok(assemble(chunks, cs, first, offset, len))
    }

    fn stat(&self, id: ShardId) -> Result<ShardInfo> {
        Ok(self.committed(id)?.info)
    }

    fn delete(&self, id: ShardId) -> Result<()> {
        let _guard = self.inner.index_lock.lock().unwrap();
        let c = match self.committed(id) {
            Ok(c) => c,
            Err(StoreError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut batch = WriteBatch::default();
        batch.delete(index_key(id));
        delete_chunks(&mut batch, id, c.generation);
        // Synced so that a deleted shard does not come back after a crash.
        self.inner.db.write_opt(batch, &synced())?;
        self.inner.used.fetch_sub(c.info.length, Ordering::Relaxed);
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
}

struct RocksWriter {
    store: RocksShardStore,
    id: ShardId,
    generation: u64,
    header: ShardHeader,
    buf: ChunkBuffer,
    next_chunk: u64,
    done: bool,
}

impl RocksWriter {
    fn put_chunk(&mut self, chunk: Bytes) -> Result<()> {
        let key = chunk_key(self.id, self.generation, self.next_chunk);
        self.store.inner.db.put(key, &chunk)?;
        self.next_chunk += 1;
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
            self.put_chunk(c)?;
        }
        Ok(())
    }

    fn commit_with(mut self: Box<Self>, header: ShardHeader, length: u64) -> Result<ShardInfo> {
        check_final(&self.header, &header, self.buf.length, length)?;
        if let Some(c) = self.buf.finish() {
            self.put_chunk(c)?;
        }
        let info = ShardInfo { header, length };
        let entry = serde_json::to_vec(&Committed {
            info: info.clone(),
            generation: self.generation,
        })
        .map_err(|e| StoreError::Io(e.to_string()))?;
        let inner = &self.store.inner;
        let _guard = inner.index_lock.lock().unwrap();
        let old = match self.store.committed(self.id) {
            Ok(c) => Some(c),
            Err(StoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let mut batch = WriteBatch::default();
        batch.put(index_key(self.id), entry);
        batch.delete(pending_key(self.id, self.generation));
        if let Some(old) = &old {
            delete_chunks(&mut batch, self.id, old.generation);
        }
        // The commit point: one synced batch (see the module docs for why this also makes the
        // chunks durable).
        inner.db.write_opt(batch, &synced())?;
        self.done = true;
        inner.used.fetch_add(info.length, Ordering::Relaxed);
        if let Some(old) = old {
            inner.used.fetch_sub(old.info.length, Ordering::Relaxed);
        }
        Ok(info)
    }
}

impl Drop for RocksWriter {
    fn drop(&mut self) {
        if self.done || self.store.inner.crash_failpoint.load(Ordering::Relaxed) {
            return;
        }
        // Aborted write: drop its chunks and marker. If this fails (or the process dies before
        // it runs) the marker remains and `recover` cleans up on the next open.
        let mut batch = WriteBatch::default();
        delete_chunks(&mut batch, self.id, self.generation);
        batch.delete(pending_key(self.id, self.generation));
        if let Err(e) = self.store.inner.db.write(batch) {
            tracing::warn!(shard = %self.id, error = %e, "could not discard aborted shard write");
        }
    }
}
