//! The ordered key-value store the metadata lives in: what [`super::MetaStore`] needs of a
//! storage engine, and nothing more. RocksDB ([`super::rocks::RocksKv`]) is the durable one;
//! [`super::memory::MemKv`] keeps everything in a map (tests, and the reference the
//! conformance suite holds the others to).
//!
//! Contract:
//! - **Atomic batches.** [`Kv::apply`] makes every put and delete of a batch visible at once,
//!   or none of them.
//! - **Durable on sync.** When [`Kv::sync`] returns, every batch applied before it was called
//!   survives a crash of the process or host (for durable implementations). Concurrent
//!   callers may share one sync.
//! - **Ordered walks.** [`Kv::walk`] visits keys in byte order from a start key, and can jump
//!   ahead ([`Step::Seek`]) to skip a range.

use crate::meta::MetaError;

type Result<T> = std::result::Result<T, MetaError>;

/// Puts and deletes applied together.
#[derive(Debug, Default)]
pub struct Batch {
    pub(crate) ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// Sets `k` to `v`.
    pub fn put(&mut self, k: impl Into<Vec<u8>>, v: impl Into<Vec<u8>>) {
        self.ops.push((k.into(), Some(v.into())));
    }

    /// Removes `k` (no-op if absent).
    pub fn delete(&mut self, k: impl Into<Vec<u8>>) {
        self.ops.push((k.into(), None));
    }
}

/// What a walk does after visiting a key.
pub enum Step {
    /// Go on with the next key.
    Next,
    /// Go on from the first key at or after this one.
    Seek(Vec<u8>),
    /// Stop.
    Stop,
}

/// What a walk calls with each key and value.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<Step> + 'a;

/// An ordered key-value store (see the module docs for the contract).
pub trait Kv: Send + Sync + 'static {
    /// The value of `k`, if any.
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>>;

    /// Calls `f` with each key and value at or after `from`, in key order, until it says
    /// [`Step::Stop`] or the keys run out.
    fn walk(&self, from: &[u8], f: &mut Visit<'_>) -> Result<()>;

    /// Applies `batch` atomically (visible when this returns; durable after [`Kv::sync`]).
    fn apply(&self, batch: Batch) -> Result<()>;

    /// Makes everything applied so far durable.
    fn sync(&self) -> Result<()>;

    /// The engine's stall and compaction figures for monitoring (`(metric name, value)`);
    /// none for an engine without them.
    fn engine_gauges(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }

    /// Flushes what is in memory to files and compacts them (dropping deleted and replaced
    /// records' space); nothing for an engine without files.
    fn compact(&self) -> Result<()> {
        Ok(())
    }
}

impl<T: Kv> Kv for std::sync::Arc<T> {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        (**self).get(k)
    }

    fn walk(&self, from: &[u8], f: &mut Visit<'_>) -> Result<()> {
        (**self).walk(from, f)
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        (**self).apply(batch)
    }

    fn sync(&self) -> Result<()> {
        (**self).sync()
    }

    fn engine_gauges(&self) -> Vec<(&'static str, u64)> {
        (**self).engine_gauges()
    }

    fn compact(&self) -> Result<()> {
        (**self).compact()
    }
}
