//! Metadata in a map in memory: nothing survives the process. For tests, and as the reference
//! implementation the conformance suite checks the others against.

use super::kv::{Batch, Kv, Step, Visit};
use crate::meta::MetaError;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

type Result<T> = std::result::Result<T, MetaError>;

/// An ordered map behind a mutex (held for map operations only, never while a walk's callback
/// runs).
#[derive(Default)]
pub struct MemKv {
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl Kv for MemKv {
    fn get(&self, k: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.lock().unwrap().get(k).cloned())
    }

    fn walk(&self, from: &[u8], f: &mut Visit<'_>) -> Result<()> {
        let mut at = Bound::Included(from.to_vec());
        loop {
            let next = self
                .map
                .lock()
                .unwrap()
                .range((at.clone(), Bound::Unbounded))
                .next()
                .map(|(k, v)| (k.clone(), v.clone()));
            let Some((k, v)) = next else {
                return Ok(());
            };
            at = match f(&k, &v)? {
                Step::Next => Bound::Excluded(k),
                Step::Seek(to) => Bound::Included(to),
                Step::Stop => return Ok(()),
            };
        }
    }

    fn apply(&self, batch: Batch) -> Result<()> {
        let mut map = self.map.lock().unwrap();
        for (k, v) in batch.ops {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
        Ok(())
    }

    fn sync(&self) -> Result<()> {
        Ok(())
    }
}
