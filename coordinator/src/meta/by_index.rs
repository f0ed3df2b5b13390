//! Reads through the derived indexes: the versions and segments on one node
//! ([`super::node_index`]) and the segments below a live fraction ([`super::fill_index`]).

use super::keys::{key, resume_at};
use super::kv::Step;
use super::node_index::node_prefix;
use super::records::{ObjectMeta, SEGMENTS};
use super::store::{MetaStore, Result};
use tessera_node::NodeId;

impl MetaStore {
    /// Versions and segments with a shard on `node`, in (bucket, key, newest first) order,
    /// after the cursor `after` (as the previous page returned it), at most `limit`; and
    /// the cursor after the last one (`None`: no more).
    pub fn objects_on_node(
        &self,
        node: &NodeId,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<(Vec<ObjectMeta>, Option<Vec<u8>>)> {
        let prefix = node_prefix(node.as_str());
        let start = resume_at(&prefix, after);
        let mut keys = Vec::new();
        let mut more = false;
        self.kv.walk(&start, &mut |k, _| {
            if !k.starts_with(&prefix) {
                return Ok(Step::Stop);
            }
            if keys.len() >= limit {
                more = true;
                return Ok(Step::Stop);
            }
            keys.push(k.to_vec());
            Ok(Step::Next)
        })?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            let mut okey = key(b'o', &[]);
            okey.extend_from_slice(&k[prefix.len()..]);
            // An entry is written with its record; a record gone between the walk and this
            // read (a concurrent delete) is simply not listed.
            if let Some(o) = self.get(&okey)? {
                out.push(o);
            }
        }
        Ok((out, more.then(|| keys.pop()).flatten()))
    }

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
