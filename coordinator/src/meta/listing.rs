//! Listings of a bucket's objects (prefix, delimiter, paging).

use super::keys::key;
use super::kv::Step;
use super::records::Listing;
use super::store::{Entry, MetaStore, Result};
use super::MetaError;

impl MetaStore {
    /// S3 listing: keys of `bucket` starting with `prefix`, after `start_after`, rolling up at
    /// `delimiter`, at most `max` entries (objects plus prefixes).
    pub fn list(
        &self,
        bucket: &str,
        prefix: &str,
        start_after: Option<&str>,
        delimiter: Option<&str>,
        max: usize,
    ) -> Result<Listing> {
        let mut base = key(b'o', &[bucket]);
        base.push(0);
        let mut from = base.clone();
        from.extend_from_slice(prefix.as_bytes());
        if let Some(s) = start_after {
            let mut after = base.clone();
            after.extend_from_slice(s.as_bytes());
            // A marker under a common prefix (the prefix itself, as NextMarker gives it, or a
            // key below it): the prefix came before it, so resume past everything under the
            // prefix (0xFF is never in UTF-8); otherwise just past the marker.
            let rolled = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
                let rest = s.strip_prefix(prefix)?;
                rest.find(d).map(|i| prefix.len() + i + d.len())
            });
            match rolled {
                Some(n) => {
                    after.truncate(base.len() + n);
                    after.push(0xFF);
                }
                None => after.push(0),
            }
            from = from.max(after);
        }
        let mut out = Listing::default();
        out.truncated = self.walk_listing(&base, &from, prefix, delimiter, max, true, |e| {
            match e {
                Entry::Prefix(cp) => {
                    out.next = Some(cp.clone());
                    out.prefixes.push(cp);
                }
                Entry::Key(name, v) => {
                    out.next = Some(name.to_string());
                    out.objects.push(serde_json::from_slice(v)?);
                }
            }
            Ok(())
        })?;
        if !out.truncated {
            out.next = None;
        }
        Ok(out)
    }

    /// The walk S3 listings share: names under `base` (up to the first NUL after it) that
    /// start with `prefix`, from `from`, rolled up at `delimiter` into common prefixes (one
    /// entry each; the walk then seeks past everything under it: `prefix` + 0xFF, never in
    /// UTF-8), `f` called for each entry until `max` entries. Returns whether more follow.
    /// With `current_only`, records with more after the name (a key's noncurrent versions
    /// and delete markers) are passed over without counting, and only a current record rolls
    /// its name into a common prefix.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn walk_listing(
        &self,
        base: &[u8],
        from: &[u8],
        prefix: &str,
        delimiter: Option<&str>,
        max: usize,
        current_only: bool,
        mut f: impl FnMut(Entry<'_>) -> Result<()>,
    ) -> Result<bool> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let (mut entries, mut truncated) = (0usize, false);
        self.kv.walk(from, &mut |k, v| {
            if !k.starts_with(base) {
                return Ok(Step::Stop);
            }
            let rest = &k[base.len()..];
            let end = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
            let name =
                std::str::from_utf8(&rest[..end]).map_err(|e| MetaError::Storage(e.to_string()))?;
            if !name.starts_with(prefix) {
                return Ok(Step::Stop);
            }
            if current_only && end < rest.len() {
                let mut past = base.to_vec();
                past.extend_from_slice(&rest[..end]);
                past.extend_from_slice(&[0, 0xFF]);
                return Ok(Step::Seek(past));
            }
            if entries >= max {
                truncated = true;
                return Ok(Step::Stop);
            }
            entries += 1;
            let rolled = delimiter.and_then(|d| {
                name[prefix.len()..]
                    .find(d)
                    .map(|i| name[..prefix.len() + i + d.len()].to_string())
            });
            if let Some(cp) = rolled {
                let mut next = base.to_vec();
                next.extend_from_slice(cp.as_bytes());
                next.push(0xFF);
                f(Entry::Prefix(cp))?;
                return Ok(Step::Seek(next));
            }
            f(Entry::Key(name, v))?;
            Ok(Step::Next)
        })?;
        Ok(truncated)
    }
}
