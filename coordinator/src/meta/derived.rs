//! Records derived from others, kept in the same batch as the change they follow: the
//! counters ([`super::counters`]), the index of objects by node ([`super::node_index`]) and
//! of segments by live fraction ([`super::fill_index`]).
//!
//! Every batch the store applies passes through [`derive`], which reads the value each
//! object, in-flight or garbage record in the batch replaces and adds to the batch the
//! changes that make the derived records follow (what the new value contributes minus what
//! the old one did). They are therefore a function of the records alone: exact after any mix
//! of operations, replicated with them (a replicated store applies the same batches on every
//! member), carried by snapshots (they are records like any other), rebuilt with the records
//! by a metadata rebuild, and unchanged when a batch is applied twice. A store made before
//! they existed (or with an older [`FORMAT`]) gets them in one pass when opened
//! ([`ensure`]); [`check`] recomputes them all to compare.

use super::counters::{self, CounterChanges, Counters};
use super::keys::key;
use super::kv::Step;
use super::kv::{Batch, Kv};
use super::records::{ObjectMeta, ShardSet};
use super::MetaError;
use super::{fill_index, node_index};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

type Result<T> = std::result::Result<T, MetaError>;

/// The format of the derived records (bumped when what they hold changes: they are made
/// again when a store is opened).
const FORMAT: u64 = 2;

/// Whether records of this key have derived records.
fn followed(k: &[u8]) -> bool {
    matches!(k.first(), Some(b'o' | b'p' | b'g')) && k.get(1) == Some(&0)
}

/// A record as the derived records see it.
enum Record {
    /// A version or segment (`noncurrent`: a noncurrent version or delete marker).
    Object(Box<ObjectMeta>, bool),
    /// An in-flight (`p`) or garbage (`g`) record.
    Shards(u8, ShardSet),
}

impl Record {
    fn parse(k: &[u8], v: &[u8]) -> Result<Self> {
        Ok(if k[0] == b'o' {
            let noncurrent = k[2..].iter().filter(|&&b| b == 0).count() > 1;
            Record::Object(Box::new(serde_json::from_slice(v)?), noncurrent)
        } else {
            Record::Shards(k[0], serde_json::from_slice(v)?)
        })
    }

    fn count(&self, tally: &mut CounterChanges, sign: i64) {
        match self {
            Record::Object(o, noncurrent) => tally.object(o, *noncurrent, sign),
            Record::Shards(kind, s) => tally.shard_set(*kind, s, sign),
        }
    }

    fn object(r: &Option<Record>) -> Option<&ObjectMeta> {
        match r {
            Some(Record::Object(o, _)) => Some(o.as_ref()),
            _ => None,
        }
    }
}

/// Adds to `batch` the changes it makes to the derived records in `kv` (see the module
/// docs). The caller keeps other batches from being applied between this and the batch.
pub fn derive(kv: &dyn Kv, batch: &mut Batch) -> Result<()> {
    let mut tally = CounterChanges::default();
    let mut index = Batch::default();
    // What each key holds as the batch goes along (a batch may write one key twice).
    let mut now: HashMap<&[u8], Option<&[u8]>> = HashMap::new();
    let mut stored: HashMap<&[u8], Vec<u8>> = HashMap::new();
    for (k, _) in batch.ops.iter().filter(|(k, _)| followed(k)) {
        if !stored.contains_key(k.as_slice()) {
            if let Some(v) = kv.get(k)? {
                stored.insert(k, v);
            }
        }
    }
    for (k, v) in batch.ops.iter().filter(|(k, _)| followed(k)) {
        let old = match now.get(k.as_slice()) {
            Some(old) => *old,
            None => stored.get(k.as_slice()).map(Vec::as_slice),
        };
        let old = old.map(|o| Record::parse(k, o)).transpose()?;
        let new = v.as_deref().map(|n| Record::parse(k, n)).transpose()?;
        for (r, sign) in [(&old, -1), (&new, 1)] {
            if let Some(r) = r {
                r.count(&mut tally, sign);
            }
        }
        if k[0] == b'o' {
            let (old, new) = (Record::object(&old), Record::object(&new));
            node_index::change(&mut index, k, old, new);
            fill_index::change(&mut index, old, new);
        }
        now.insert(k, v.as_deref());
    }
    tally.finish(kv, batch)?;
    batch.ops.extend(index.ops);
    Ok(())
}

/// The counters and index entries computed from the records, against those kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DerivedCheck {
    /// The counters as kept.
    pub kept: Counters,
    /// The counters recomputed from every record.
    pub recounted: Counters,
    /// Index entries the records call for that are not kept.
    pub index_missing: u64,
    /// Index entries kept that no record calls for.
    pub index_extra: u64,
}

/// Tallies every object, in-flight and garbage record of `kv`.
fn tally_all(kv: &dyn Kv) -> Result<CounterChanges> {
    let mut tally = CounterChanges::default();
    for kind in [b'o', b'p', b'g'] {
        counters::walk_kind(kv, kind, |k, v| {
            Record::parse(k, v)?.count(&mut tally, 1);
            Ok(())
        })?;
    }
    Ok(tally)
}

/// Recomputes every derived record by walking all the records (O(objects): for checks).
pub fn check(kv: &dyn Kv) -> Result<DerivedCheck> {
    let kept = counters::read(kv)?;
    let recounted = counters::from_rows(tally_all(kv)?.rows());
    let mut want = node_index::expected(kv)?;
    let mut extra = 0;
    for kind in [b'i', b'f'] {
        counters::walk_kind(kv, kind, |k, _| {
            if !want.remove(k) {
                extra += 1;
            }
            Ok(())
        })?;
    }
    Ok(DerivedCheck {
        kept,
        recounted,
        index_missing: want.len() as u64,
        index_extra: extra,
    })
}

/// Makes the derived records of a store that has none (or an older [`FORMAT`]): drops what
/// there is, recounts, and writes the index and the counters, the format marker last.
/// Nothing else may write meanwhile.
pub fn ensure(kv: &dyn Kv) -> Result<()> {
    let current = kv
        .get(&counters::format_key())?
        .map(|v| serde_json::from_slice::<u64>(&v))
        .transpose()?;
    if current == Some(FORMAT) {
        return Ok(());
    }
    let mut batch = Batch::default();
    for kind in [b's', b'i', b'f'] {
        in_pages(kv, kind, |k, _| {
            batch.delete(k.to_vec());
            Ok(())
        })?;
    }
    kv.apply(std::mem::take(&mut batch))?;
    in_pages(kv, b'o', |k, v| {
        let o: ObjectMeta = serde_json::from_slice(v)?;
        let mut b = Batch::default();
        node_index::change(&mut b, k, None, Some(&o));
        fill_index::change(&mut b, None, Some(&o));
        kv.apply(b)
    })?;
    for (k, row) in tally_all(kv)?.rows() {
        counters::store_row(&mut batch, k, row)?;
    }
    batch.put(counters::format_key(), serde_json::to_vec(&FORMAT)?);
    kv.apply(batch)?;
    kv.sync()
}

/// Calls `f` with every record of `kind`, read a page at a time (so that `f` may write).
fn in_pages(kv: &dyn Kv, kind: u8, mut f: impl FnMut(&[u8], &[u8]) -> Result<()>) -> Result<()> {
    let prefix = key(kind, &[]);
    let mut from = prefix.clone();
    loop {
        let mut page: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        kv.walk(&from, &mut |k, v| {
            if !k.starts_with(&prefix) || page.len() >= 4096 {
                return Ok(Step::Stop);
            }
            page.push((k.to_vec(), v.to_vec()));
            Ok(Step::Next)
        })?;
        let Some((last, _)) = page.last() else {
            return Ok(());
        };
        from = last.clone();
        from.push(0);
        for (k, v) in &page {
            f(k, v)?;
        }
    }
}
