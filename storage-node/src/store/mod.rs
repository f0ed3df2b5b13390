//! The shard store contract and its implementations.
//!
//! # Contract (checked by [`crate::conformance`] for every implementation)
//! - **Atomic put.** A shard written through a [`ShardWriter`] becomes visible only when
//!   [`ShardWriter::commit`] returns `Ok`; then all of it is visible. A writer dropped or
//!   aborted before commit (or a process that dies before commit) leaves nothing visible, and
//!   its partial bytes are reclaimed (at once, or when the store is next opened).
//! - **Durable commit.** When `commit` returns `Ok`, the bytes and the index entry are on stable
//!   storage (for persistent implementations).
//! - **Replace.** Committing a shard id that already exists replaces it atomically: readers
//!   see the old shard or the new one, never a mix.
//! - **Verified reads.** [`ShardStore::read_chunks`] (and [`ShardStore::read`]) check every
//!   chunk they return against its blake3 checksum and return [`StoreError::Corrupt`] instead
//!   of bad bytes.
//! - **Idempotent delete.** Deleting a missing shard is `Ok`.
//! - **Ordered listing.** [`ShardStore::list`] returns shards in [`ShardId`] order.
//! - **Independent batch puts.** [`ShardStore::put_many`] stores each shard as a writer would
//!   and reports each outcome on its own: one bad shard fails alone.
//!
//! All methods block; async callers run them in `spawn_blocking`.

mod chunk;
mod memory;
mod rocks;
mod wal_sync;

pub use chunk::{verify_records, ChunkBuffer, CHUNK_HASH_LEN};
pub use memory::MemoryShardStore;
pub use rocks::{rocksdb_gauges, RocksShardStore, ROCKSDB_GAUGES};
pub use wal_sync::WalSync;

use crate::error::Result;
use crate::types::{ShardHeader, ShardId, ShardInfo};

/// A store of shards. See the module docs for the contract.
pub trait ShardStore: Send + Sync + 'static {
    /// Starts writing the shard described by `header`. Nothing is visible until commit.
    fn begin(&self, header: ShardHeader) -> Result<Box<dyn ShardWriter>>;

    /// Reads `len` bytes at `offset` of a committed shard, verified, as consecutive pieces
    /// (slices of the stored chunks, so a read spanning chunks copies nothing); together they
    /// are exactly `len` bytes. A range that ends past the shard is
    /// [`StoreError::InvalidArgument`](crate::error::StoreError::InvalidArgument).
    fn read_chunks(&self, id: ShardId, offset: u64, len: u64) -> Result<Vec<bytes::Bytes>>;

    /// [`ShardStore::read_chunks`] as one buffer (a copy when the range spans chunks).
    fn read(&self, id: ShardId, offset: u64, len: u64) -> Result<bytes::Bytes> {
        let chunks = self.read_chunks(id, offset, len)?;
        Ok(match chunks.len() {
            0 => bytes::Bytes::new(),
            1 => chunks.into_iter().next().expect("one chunk"),
            _ => chunks.concat().into(),
        })
    }

    /// The stored chunks (each `blake3(data) || data`) that cover `len` bytes at `offset` of a
    /// committed shard, **not verified**: for a reader that verifies them itself (the
    /// coordinator's raw reads, [`crate::raw`]), so the node can send them without touching
    /// them. A range that ends past the shard is
    /// [`StoreError::InvalidArgument`](crate::error::StoreError::InvalidArgument).
    fn read_records(&self, id: ShardId, offset: u64, len: u64) -> Result<Records>;

    /// The header and length of a committed shard.
    fn stat(&self, id: ShardId) -> Result<ShardInfo>;

    /// Removes a shard; `Ok` if it was not there.
    fn delete(&self, id: ShardId) -> Result<()>;

    /// Up to `limit` committed shards with id greater than `after`, in id order.
    fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>>;

    /// Total length of committed shards, in bytes.
    fn used_bytes(&self) -> u64;

    /// Gives back to the filesystem the space of shards deleted since the last call, where
    /// the engine keeps it until it compacts (RocksDB: small shards' chunks in its tables and
    /// blob files); returns the bytes of deleted shards this covered (0: nothing to do).
    fn reclaim(&self) -> Result<u64> {
        Ok(0)
    }

    /// Bytes of deleted shards whose space [`ShardStore::reclaim`] would give back.
    fn reclaimable(&self) -> u64 {
        0
    }

    /// (writes, syncs) of the store's write-ahead log since it was opened, for monitoring;
    /// `(0, 0)` for a store without one.
    fn log_counts(&self) -> (u64, u64) {
        (0, 0)
    }

    /// The storage engine's health figures for monitoring, as (name, value) pairs (RocksDB:
    /// pending compaction bytes, running compactions, whether writes are stopped or
    /// delayed); none for a store without an engine.
    fn engine_gauges(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Stores whole shards held in memory, each as if by [`ShardStore::begin`],
    /// [`ShardWriter::write`] and [`ShardWriter::commit_with`], and returns each outcome in
    /// order; one failing leaves the others unaffected. Each `Ok` is durable when this
    /// returns; an implementation may make them durable together (one sync for all).
    fn put_many(&self, shards: Vec<WholeShard>) -> Vec<Result<ShardInfo>> {
        shards
            .into_iter()
            .map(|s| {
                let mut w = self.begin(s.header)?;
                for d in &s.data {
                    w.write(d)?;
                }
                w.commit_with(s.final_header, s.length)
            })
            .collect()
    }
}

/// Stored chunk records covering a range (see [`ShardStore::read_records`]).
#[derive(Debug)]
pub struct Records {
    /// Data bytes per chunk (the last chunk of the shard may be shorter).
    pub chunk_size: u32,
    /// Number of the first chunk.
    pub first: u64,
    /// Where the records are, back to back.
    pub at: RecordsAt,
}

/// Where [`Records`] are.
#[derive(Debug)]
pub enum RecordsAt {
    /// `len` bytes at `offset` of a file.
    File {
        /// The shard file, open.
        file: std::fs::File,
        /// Where the first record starts.
        offset: u64,
        /// Bytes of records.
        len: u64,
    },
    /// In memory, one record per element.
    Memory(Vec<bytes::Bytes>),
}

impl Records {
    /// Bytes of records.
    pub fn len(&self) -> u64 {
        match &self.at {
            RecordsAt::File { len, .. } => *len,
            RecordsAt::Memory(v) => v.iter().map(|b| b.len() as u64).sum(),
        }
    }

    /// No records (an empty range).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records as bytes (reads the file range).
    pub fn load(self) -> Result<bytes::Bytes> {
        match self.at {
            RecordsAt::File { file, offset, len } => chunk::read_at(&file, offset, len as usize)
                .map_err(|e| crate::error::StoreError::Corrupt(format!("shard file short: {e}"))),
            RecordsAt::Memory(v) => Ok(v.concat().into()),
        }
    }
}

/// A complete shard held in memory, for [`ShardStore::put_many`].
#[derive(Clone, Debug)]
pub struct WholeShard {
    /// The header the write opens with.
    pub header: ShardHeader,
    /// The shard's bytes, in order.
    pub data: Vec<bytes::Bytes>,
    /// The final header (as given to `commit_with`).
    pub final_header: ShardHeader,
    /// The length the sender says it sent; the put fails unless `data` has exactly this many.
    pub length: u64,
}

/// An in-progress shard write. Bytes are appended in order; `commit` publishes the shard.
/// Dropping the writer without committing aborts the write.
pub trait ShardWriter: Send {
    /// Appends bytes to the shard.
    fn write(&mut self, data: &[u8]) -> Result<()>;
    /// Makes the whole shard visible and durable with `header` as its final header (the
    /// object length is known only at the end of a streamed upload). Fails, leaving nothing
    /// visible, unless exactly `length` bytes were written and `header` names the same shard
    /// and chunk size as the one given to `begin`.
    fn commit_with(self: Box<Self>, header: ShardHeader, length: u64) -> Result<ShardInfo>;
}

/// Checks the final header and length given to `commit_with` against the write.
pub(crate) fn check_final(
    begun: &ShardHeader,
    fin: &ShardHeader,
    written: u64,
    length: u64,
) -> Result<()> {
    use crate::error::StoreError;
    if fin.shard_id() != begun.shard_id() || fin.chunk_size != begun.chunk_size {
        return Err(StoreError::InvalidArgument(
            "final header does not match the write".into(),
        ));
    }
    if written != length {
        return Err(StoreError::Incomplete(format!(
            "received {written} bytes, sender sent {length}"
        )));
    }
    Ok(())
}

/// Checks that a header is acceptable before any byte is stored.
pub(crate) fn validate_header(h: &ShardHeader) -> Result<()> {
    use crate::error::StoreError::InvalidArgument;
    if h.chunk_size < crate::types::MIN_CHUNK || h.chunk_size > crate::types::MAX_CHUNK {
        return Err(InvalidArgument(format!(
            "chunk_size {} out of range",
            h.chunk_size
        )));
    }
    if h.k == 0 || h.shard_index >= h.k + h.m {
        return Err(InvalidArgument(format!(
            "shard index {} invalid for {}+{}",
            h.shard_index, h.k, h.m
        )));
    }
    Ok(())
}

/// Chunk numbers covering `[offset, offset+len)` for a shard of `length` with `chunk` bytes
/// per chunk, after checking the range.
pub(crate) fn chunk_span(length: u64, chunk: u32, offset: u64, len: u64) -> Result<(u64, u64)> {
    let end = offset
        .checked_add(len)
        .filter(|e| *e <= length)
        .ok_or_else(|| {
            crate::error::StoreError::InvalidArgument(format!(
                "range {offset}+{len} past shard length {length}"
            ))
        })?;
    if len == 0 {
        return Ok((0, 0));
    }
    let c = chunk as u64;
    Ok((offset / c, (end - 1) / c + 1))
}
