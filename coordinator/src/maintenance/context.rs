//! What background and operator-driven upkeep works with: the data path's context, the
//! repair state, the shared byte budget, the worker list, and the metadata handle background
//! work writes through (fenced to the leader's term in a replicated group).

use super::repair::Repairer;
use super::worker::{Budget, Workers};
use crate::data::DataPath;
use crate::meta::Metadata;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The maintenance layer's context. It holds the data path (and reads its fields through
/// `Deref`, so `m.meta` is the data path's metadata); the data path knows nothing of it.
pub struct Maintenance {
    /// The data path every service reads and writes shards through.
    pub data: Arc<DataPath>,
    /// Repair queue, suspects and runs (also the data path's damage sink).
    pub repair: Arc<Repairer>,
    /// The bytes-per-second budget of repair, rebalance, recode and compaction together.
    pub budget: Budget,
    /// Background loops, for listing and steering.
    pub workers: Workers,
    /// A metadata rebuild from the nodes is running (garbage collection and the orphan scan
    /// wait: until it ends every shard looks unreferenced).
    rebuilding: AtomicBool,
    /// The metadata as background work must use it: the data path's for a single
    /// coordinator; in a group, a handle fenced to the term this member leads in (refusing
    /// everything while it does not lead).
    maint: RwLock<Arc<dyn Metadata>>,
}

impl Maintenance {
    /// The maintenance context over `data`, whose damage reports go to `repair`; background
    /// work writes through `maint` until [`Maintenance::set_maint`] replaces it.
    pub fn new(data: Arc<DataPath>, repair: Arc<Repairer>, maint: Arc<dyn Metadata>) -> Self {
        let budget = Budget::new(data.config.maintenance_rate);
        Maintenance {
            data,
            repair,
            budget,
            workers: Default::default(),
            rebuilding: AtomicBool::new(false),
            maint: RwLock::new(maint),
        }
    }

    /// The metadata handle background work uses (see the field).
    pub fn maint(&self) -> Arc<dyn Metadata> {
        self.maint.read().unwrap().clone()
    }

    /// Sets the handle background work uses (the leader's fenced one).
    pub fn set_maint(&self, m: Arc<dyn Metadata>) {
        *self.maint.write().unwrap() = m;
    }

    /// The stored maintenance job `name` (a rebalance, a compaction, a cursor) as `T`; `None`
    /// when there is none or it is not understood.
    pub async fn job<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, crate::error::ApiError> {
        Ok(self
            .meta
            .jobs()
            .await?
            .remove(name)
            .and_then(|v| serde_json::from_value(v).ok()))
    }

    /// Whether a metadata rebuild is running.
    pub fn rebuilding(&self) -> bool {
        self.rebuilding.load(Ordering::SeqCst)
    }

    /// Marks a metadata rebuild as running or ended.
    pub fn set_rebuilding(&self, on: bool) {
        self.rebuilding.store(on, Ordering::SeqCst);
    }
}

impl std::ops::Deref for Maintenance {
    type Target = DataPath;

    fn deref(&self) -> &DataPath {
        &self.data
    }
}
