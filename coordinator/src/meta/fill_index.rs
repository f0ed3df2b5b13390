//! The index of segments by live fraction: `f\0{percent, 3 digits}\0{segment}` (empty value)
//! for every segment that compaction could rewrite (bytes written, some still live), where
//! `percent` is its live fraction rounded down. [`super::derived`] keeps it in the batch of
//! every change, so compaction's candidates below a threshold are a walk of the entries below
//! it (O(candidates)) instead of a walk of every segment.

use super::keys::key;
use super::kv::Batch;
use super::records::{ObjectMeta, SEGMENTS};

/// The entry of segment `o`, if compaction could rewrite it.
pub(super) fn entry_of(o: Option<&ObjectMeta>) -> Option<Vec<u8>> {
    let o = o.filter(|o| o.bucket == SEGMENTS)?;
    let f = o.fill.filter(|f| f.bytes > 0 && f.live_objects > 0)?;
    let percent = ((f.live_fraction() * 100.0).floor() as u64).min(100);
    Some(key(b'f', &[&format!("{percent:03}"), &o.key]))
}

/// Adds to `batch` the index change of a segment record going from `old` to `new`.
pub(super) fn change(batch: &mut Batch, old: Option<&ObjectMeta>, new: Option<&ObjectMeta>) {
    let (before, after) = (entry_of(old), entry_of(new));
    if before != after {
        if let Some(k) = before {
            batch.delete(k);
        }
        if let Some(k) = after {
            batch.put(k, Vec::new());
        }
    }
}
