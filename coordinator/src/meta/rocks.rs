//! The metadata's RocksDB store: batches written without a sync of their own, made durable by
//! the WAL group commit ([`WalSync`]), so that concurrent commits share one fsync.

use super::kv::{Batch, Kv, Step, Visit};
use crate::meta::MetaError;
use rocksdb::{Options, WriteBatch, WriteOptions, DB};
use std::path::Path;
use tessera_node::store::WalSync;

type Result<T> = std::result::Result<T, MetaError>;

/// A RocksDB database holding the metadata.
pub struct RocksKv {
    db: DB,
    wal: WalSync,
}

impl RocksKv {
    /// Opens or creates the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_max_background_jobs(2);
        Ok(RocksKv {
            db: DB::open(&opts, dir)?,
            wal: WalSync::default(),
        })
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
        let mut w = WriteOptions::default();
        w.set_sync(false);
        Ok(self.db.write_opt(b, &w)?)
    }

    fn sync(&self) -> Result<()> {
        Ok(self.wal.sync(&self.db)?)
    }
}

impl From<rocksdb::Error> for MetaError {
    fn from(e: rocksdb::Error) -> Self {
        MetaError::Storage(e.to_string())
    }
}
