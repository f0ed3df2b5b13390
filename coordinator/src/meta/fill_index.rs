//! The index of segments by live fraction: `f\0{percent, 3 digits}\0{segment}` (empty value)
//! for every segment that compaction could rewrite (bytes written, some still live), where
//! `percent` is its live fraction rounded down. [`super::derived`] keeps it in the batch of
//! every change, so compaction's candidates below a threshold are a walk of the entries below
//! it (O(candidates)) instead of a walk of every segment.

use super::keys::key;
use super::kv::{Batch, Step};
use super::records::{ObjectMeta, SEGMENTS};
use super::store::{MetaStore, Result};

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

impl MetaStore {
    /// Segments whose live fraction is below `below` (and that hold live objects), at most
    /// `limit`, least live first.
    pub fn segments_below(&self, below: f64, limit: usize) -> Result<Vec<ObjectMeta>> {
        let prefix = key(b'f', &[]);
        let top = (below * 100.0).ceil() as u64;
        let mut names = Vec::new();
        self.kv.walk(&prefix, &mut |k, _| {
            let rest = match k.strip_prefix(prefix.as_slice()) {
                Some(r) if names.len() < limit => r,
                _ => return Ok(Step::Stop),
            };
            let percent: u64 = std::str::from_utf8(&rest[..3.min(rest.len())])
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(u64::MAX);
            if percent > top {
                return Ok(Step::Stop);
            }
            names.push(String::from_utf8_lossy(&rest[4.min(rest.len())..]).into_owned());
            Ok(Step::Next)
        })?;
        let mut out = Vec::new();
        for n in names {
            if let Some(seg) = self.object(SEGMENTS, &n)? {
                if seg.fill.is_some_and(|f| f.live_fraction() < below) {
                    out.push(seg);
                }
            }
        }
        Ok(out)
    }
}
