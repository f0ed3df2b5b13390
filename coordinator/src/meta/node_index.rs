//! The index of versions and segments by node: `i\0{node}\0{bucket}\0{key}[\0{slot}]`
//! (empty value) for every object record `o\0{bucket}\0{key}[\0{slot}]` that places a shard
//! (written or missing) on that node. [`super::derived`] keeps it in the batch of every
//! change, so drain, node removal and a lost node's repair walk one node's entries (O(what
//! the node holds)) instead of every object.

use super::keys::key;
use super::kv::{Batch, Kv};
use super::records::ObjectMeta;
use super::MetaError;

type Result<T> = std::result::Result<T, MetaError>;
use std::collections::BTreeSet;

/// The nodes `o` places shards on.
pub(super) fn nodes_of(o: Option<&ObjectMeta>) -> BTreeSet<&str> {
    o.into_iter()
        .flat_map(|o| o.extents())
        .flat_map(|p| p.shards.iter().filter_map(|s| s.node.as_ref()))
        .map(|n| n.as_str())
        .collect()
}

/// The index entry of object record `okey` (an `o\0...` key) on `node`.
pub(super) fn entry_key(node: &str, okey: &[u8]) -> Vec<u8> {
    let mut k = node_prefix(node);
    k.extend_from_slice(&okey[2..]);
    k
}

/// The prefix of `node`'s entries.
pub(super) fn node_prefix(node: &str) -> Vec<u8> {
    let mut k = key(b'i', &[node]);
    k.push(0);
    k
}

/// Adds to `batch` the index changes of object record `okey` going from `old` to `new`.
pub(super) fn change(
    batch: &mut Batch,
    okey: &[u8],
    old: Option<&ObjectMeta>,
    new: Option<&ObjectMeta>,
) {
    let (before, after) = (nodes_of(old), nodes_of(new));
    for n in before.difference(&after) {
        batch.delete(entry_key(n, okey));
    }
    for n in after.difference(&before) {
        batch.put(entry_key(n, okey), Vec::new());
    }
}

/// Every entry of this index and of the index by live fraction the records in `kv` call
/// for.
pub(super) fn expected(kv: &dyn Kv) -> Result<BTreeSet<Vec<u8>>> {
    let mut want = BTreeSet::new();
    super::counters::walk_kind(kv, b'o', |k, v| {
        let o: ObjectMeta = serde_json::from_slice(v)?;
        for n in nodes_of(Some(&o)) {
            want.insert(entry_key(n, k));
        }
        want.extend(super::fill_index::entry_of(Some(&o)));
        Ok(())
    })?;
    Ok(want)
}
