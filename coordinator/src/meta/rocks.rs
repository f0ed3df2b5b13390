//! The metadata's RocksDB store.
//!
//! A single coordinator's store ([`RocksKv::open`]) writes batches without a sync of their
//! own and makes them durable with the WAL group commit ([`WalSync`]), so that concurrent
//! commits share one fsync. A replicated coordinator's state machine ([`RocksKv::on_log`])
//! lives in the default column family of the database that also holds its Raft log: the log
//! makes commands durable, so [`Kv::sync`] has nothing to do, and the state machine's
//! bookkeeping (the last applied log id) is stamped into the same atomic batch as the
//! command's writes ([`RocksKv::stamp`]).

use super::kv::{Batch, Kv, Step, Visit};
use crate::meta::MetaError;
use rocksdb::{BlockBasedOptions, Cache, Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use std::sync::{Arc, Mutex};
use tessera_node::store::WalSync;

type Result<T> = std::result::Result<T, MetaError>;

/// What the metadata's RocksDB may hold in memory: a block cache of data blocks and
/// memtables, whatever the number of records (plus each file's index and Bloom filter, about
/// 2.5 bytes per record).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineLimits {
    /// Block cache bytes.
    pub cache_bytes: u64,
    /// Bytes of one memtable; at most two per database are in memory (the one being
    /// written and the one being flushed).
    pub memtable_bytes: u64,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            cache_bytes: 64 << 20,
            memtable_bytes: 16 << 20,
        }
    }
}

impl EngineLimits {
    /// Options of a database (`db`) or of one of its column families holding metadata:
    /// compression, the shared block cache `cache`, memtable size.
    pub fn apply(&self, o: &mut Options, cache: &Cache) {
        // LZ4 where records are young (cheap to read back), zstd where most of them end up.
        o.set_compression_type(rocksdb::DBCompressionType::Lz4);
        o.set_bottommost_compression_type(super::METADATA_COMPRESSION);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(cache);
        // A lookup of a key that is not there (every new object's commit) reads no block.
        table.set_bloom_filter(10.0, false);
        // Index and filter blocks stay with their open files, outside the cache (about 2.5
        // bytes per record): a lookup that had to read and decompress its file's index block
        // again whenever the cache dropped it cost more than its data block.
        o.set_block_based_table_factory(&table);
        o.set_write_buffer_size(self.memtable_bytes as usize);
        o.set_max_write_buffer_number(2);
    }

    /// The block cache these limits allow (shared by every column family of a database).
    pub fn cache(&self) -> Cache {
        Cache::new_lru_cache(self.cache_bytes as usize)
    }
}

/// A RocksDB database holding the metadata.
pub struct RocksKv {
    db: Arc<DB>,
    /// `None`: durability comes from a replicated log.
    wal: Option<WalSync>,
    /// (column family, key, value) written with the next batch.
    stamp: Mutex<Vec<Stamp>>,
}

/// A write added to the next batch: (column family, key, value).
type Stamp = (&'static str, Vec<u8>, Vec<u8>);

impl RocksKv {
    /// Opens or creates the database in `dir` (a single coordinator's store).
    pub fn open(dir: &Path, limits: &EngineLimits) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        limits.apply(&mut opts, &limits.cache());
        Ok(RocksKv {
            db: Arc::new(DB::open(&opts, dir)?),
            wal: Some(WalSync::default()),
            stamp: Mutex::default(),
        })
    }

    /// The default column family of `db`, made durable by a log kept beside it.
    pub fn on_log(db: Arc<DB>) -> Self {
        RocksKv {
            db,
            wal: None,
            stamp: Mutex::default(),
        }
    }

    /// Adds `k = v` in column family `cf` to the next batch applied, so that it is written
    /// atomically with it.
    pub fn stamp(&self, cf: &'static str, k: &[u8], v: Vec<u8>) {
        self.stamp.lock().unwrap().push((cf, k.to_vec(), v));
    }

    /// Writes stamps no batch took (the operation wrote nothing).
    pub fn flush_stamp(&self) -> Result<()> {
        if self.stamp.lock().unwrap().is_empty() {
            return Ok(());
        }
        self.apply(Batch::default())
    }
}

impl Kv for RocksKv {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_pinned(k)?.map(|v| v.to_vec()))
    }

    fn walk(&self, from: &[u8], f: &mut Visit<'_>) -> Result<()> {
        let mut iter = self.db.raw_iterator();
        iter.seek(from);
        while iter.valid() {
            let (k, v) = (
                iter.key().unwrap_or_default(),
                iter.value().unwrap_or_default(),
            );
            match f(k, v)? {
                Step::Next => iter.next(),
                Step::Seek(to) => iter.seek(&to),
                Step::Stop => return Ok(()),
            }
        }
        Ok(iter.status()?)
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let mut b = WriteBatch::default();
        for (k, v) in batch.ops {
            match v {
                Some(v) => b.put(k, v),
                None => b.delete(k),
            }
        }
        for (cf, k, v) in self.stamp.lock().unwrap().drain(..) {
            let cf = self
                .db
                .cf_handle(cf)
                .ok_or_else(|| MetaError::Storage(format!("no column family {cf}")))?;
            b.put_cf(cf, k, v);
        }
        let mut w = WriteOptions::default();
        w.set_sync(false);
        Ok(self.db.write_opt(b, &w)?)
    }

    fn sync(&self) -> Result<()> {
        match &self.wal {
            Some(wal) => Ok(wal.sync(&self.db)?),
            None => Ok(()),
        }
    }
    fn engine_gauges(&self) -> Vec<(&'static str, u64)> {
        tessera_node::store::rocksdb_gauges(&self.db)
    }

    fn compact(&self) -> Result<()> {
        self.db.flush()?;
        // Every file rewritten, the last level's too (so it gets the last level's compression).
        let mut o = rocksdb::CompactOptions::default();
        o.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
        self.db.compact_range_opt(None::<&[u8]>, None::<&[u8]>, &o);
        Ok(())
    }
}

impl From<rocksdb::Error> for MetaError {
    fn from(e: rocksdb::Error) -> Self {
        MetaError::Storage(e.to_string())
    }
}
