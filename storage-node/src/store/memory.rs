//! In-memory [`ShardStore`], for tests and as the reference implementation of the contract.

use super::chunk::{assemble, verify_chunk, ChunkBuffer};
use super::{
    check_final, chunk_span, validate_header, Records, RecordsAt, ShardStore, ShardWriter,
};
use crate::error::{Result, StoreError};
use crate::types::{ShardHeader, ShardId, ShardInfo};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
struct Stored {
    info: ShardInfo,
    chunks: Vec<Bytes>,
}

/// Shards kept in a map behind a mutex (held only for map operations, never across I/O).
#[derive(Clone, Default)]
pub struct MemoryShardStore {
    shards: Arc<Mutex<BTreeMap<ShardId, Stored>>>,
}

impl MemoryShardStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flips one bit in the stored bytes of a shard (for corruption tests).
    pub fn corrupt(&self, id: ShardId, chunk: usize) {
        let mut map = self.shards.lock().unwrap();
        if let Some(s) = map.get_mut(&id) {
            let mut v = s.chunks[chunk].to_vec();
            let last = v.len() - 1;
            v[last] ^= 1;
            s.chunks[chunk] = Bytes::from(v);
        }
    }
}

impl ShardStore for MemoryShardStore {
    fn begin(&self, header: ShardHeader) -> Result<Box<dyn ShardWriter>> {
        validate_header(&header)?;
        Ok(Box::new(MemoryWriter {
            store: self.clone(),
            buf: ChunkBuffer::new(header.chunk_size),
            header,
            chunks: Vec::new(),
        }))
    }

    fn read_chunks(&self, id: ShardId, offset: u64, len: u64) -> Result<Vec<Bytes>> {
        let r = self.read_records(id, offset, len)?;
        let RecordsAt::Memory(records) = r.at else {
            unreachable!("the memory store keeps its records in memory")
        };
        let chunks = records
            .into_iter()
            .map(|c| verify_chunk(c, &id))
            .collect::<Result<Vec<_>>>()?;
        Ok(assemble(chunks, r.chunk_size, r.first, offset, len))
    }

    fn read_records(&self, id: ShardId, offset: u64, len: u64) -> Result<Records> {
        let stored = self
            .shards
            .lock()
            .unwrap()
            .get(&id)
            .cloned()
            .ok_or_else(|| StoreError::NotFound(id.to_string()))?;
        let cs = stored.info.header.chunk_size;
        let (first, end) = chunk_span(stored.info.length, cs, offset, len)?;
        Ok(Records {
            chunk_size: cs,
            first,
            at: RecordsAt::Memory(stored.chunks[first as usize..end as usize].to_vec()),
        })
    }

    fn stat(&self, id: ShardId) -> Result<ShardInfo> {
        self.shards
            .lock()
            .unwrap()
            .get(&id)
            .map(|s| s.info.clone())
            .ok_or_else(|| StoreError::NotFound(id.to_string()))
    }

    fn delete(&self, id: ShardId) -> Result<()> {
        self.shards.lock().unwrap().remove(&id);
        Ok(())
    }

    fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>> {
        use std::ops::Bound::*;
        let map = self.shards.lock().unwrap();
        let lower = after.map_or(Unbounded, Excluded);
        Ok(map
            .range((lower, Unbounded))
            .take(limit)
            .map(|(_, s)| s.info.clone())
            .collect())
    }

    fn used_bytes(&self) -> u64 {
        self.shards
            .lock()
            .unwrap()
            .values()
            .map(|s| s.info.length)
            .sum()
    }
}

struct MemoryWriter {
    store: MemoryShardStore,
    header: ShardHeader,
    buf: ChunkBuffer,
    chunks: Vec<Bytes>,
}

impl ShardWriter for MemoryWriter {
    fn write(&mut self, data: &[u8]) -> Result<()> {
        let chunks = &mut self.chunks;
        self.buf.push(data, |c| {
            chunks.push(c);
            Ok(())
        })
    }

    fn commit_with(mut self: Box<Self>, header: ShardHeader, length: u64) -> Result<ShardInfo> {
        check_final(&self.header, &header, self.buf.length, length)?;
        if let Some(c) = self.buf.finish() {
            self.chunks.push(c);
        }
        let info = ShardInfo { header, length };
        let stored = Stored {
            info: info.clone(),
            chunks: std::mem::take(&mut self.chunks),
        };
        self.store
            .shards
            .lock()
            .unwrap()
            .insert(self.header.shard_id(), stored);
        Ok(info)
    }
}
