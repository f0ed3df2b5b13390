//! Object lock: a bucket's lock configuration and default retention, retention and legal
//! holds of versions, and the rule every removal of a version obeys. The rules run inside
//! the store, on the operation's time (the log's time on a replicated store, the same on
//! every member), so no path that removes versions (S3 deletes, suspension's `null`
//! replacement, lifecycle, admin commands) can step around them.

use super::clock::now_ms;
use super::journal::JournalEntry;
use super::keys::key;
use super::kv::Batch;
use super::records::{BucketMeta, ObjectMeta};
use super::settings::{ObjectLock, Retention, COMPLIANCE, ENABLED, GOVERNANCE};
use super::store::{MetaStore, Result};
use super::MetaError;

/// Whether `v` may be removed now (`bypass`: the caller may bypass GOVERNANCE retention);
/// ObjectLocked if not. Delete markers are never locked.
pub fn check_removable(v: &ObjectMeta, now: u64, bypass: bool) -> Result<()> {
    if v.delete_marker {
        return Ok(());
    }
    if v.legal_hold {
        return Err(MetaError::ObjectLocked(format!(
            "version {} of {}/{} is under a legal hold",
            v.version_id(),
            v.bucket,
            v.key
        )));
    }
    match &v.retention {
        Some(r) if r.until_ms > now && !(r.mode == GOVERNANCE && bypass) => {
            Err(MetaError::ObjectLocked(format!(
                "version {} of {}/{} is retained ({}) for {} s more",
                v.version_id(),
                v.bucket,
                v.key,
                r.mode,
                (r.until_ms - now).div_ceil(1000)
            )))
        }
        _ => Ok(()),
    }
}

/// Whether `old` (the retention a version has) may become `new` at `now`: an active
/// COMPLIANCE retention may only be extended; an active GOVERNANCE one may be extended, and
/// anything else (shortened, removed, its mode changed) only with `bypass`.
fn may_change(old: Option<&Retention>, new: Option<&Retention>, now: u64, bypass: bool) -> bool {
    let Some(old) = old.filter(|o| o.until_ms > now) else {
        return true;
    };
    let keeps = new.is_some_and(|n| n.until_ms >= old.until_ms);
    match old.mode.as_str() {
        COMPLIANCE => keeps && new.is_some_and(|n| n.mode == COMPLIANCE),
        _ => (keeps && new.is_some_and(|n| n.mode == GOVERNANCE)) || bypass,
    }
}

impl MetaStore {
    /// The bucket `bucket`, which must have object lock (InvalidArgument otherwise).
    fn locked_bucket(&self, bucket: &str) -> Result<BucketMeta> {
        let b = self
            .bucket(bucket)?
            .ok_or_else(|| MetaError::NoSuchBucket(bucket.into()))?;
        if b.object_lock.is_none() {
            return Err(MetaError::InvalidArgument(format!(
                "bucket {bucket} is missing an object lock configuration"
            )));
        }
        Ok(b)
    }

    /// Enables object lock on a bucket with versioning enabled (InvalidBucketState
    /// otherwise) or replaces its default retention; returns the bucket.
    pub fn set_object_lock(&self, bucket: &str, lock: &ObjectLock) -> Result<BucketMeta> {
        let guard = self.lock.lock().unwrap();
        let mut b = self
            .bucket(bucket)?
            .ok_or_else(|| MetaError::NoSuchBucket(bucket.into()))?;
        if b.versioning.as_deref() != Some(ENABLED) {
            return Err(MetaError::InvalidBucketState(format!(
                "object lock needs versioning enabled on {bucket}"
            )));
        }
        b.object_lock = Some(lock.clone());
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.journal_new(&mut batch, &JournalEntry::bucket(bucket, Some(&b)))?;
        self.write_locked(batch, guard)?;
        Ok(b)
    }

    /// Sets (or with `None` removes) the retention of version `id` (or the current version)
    /// of `bucket`/`k`, under the rules of [`may_change`]; returns the version.
    pub fn set_retention(
        &self,
        bucket: &str,
        k: &str,
        id: Option<&str>,
        retention: Option<&Retention>,
        bypass: bool,
    ) -> Result<ObjectMeta> {
        self.locked_bucket(bucket)?;
        let now = now_ms();
        let mut refused = None;
        let out = self.update_version(bucket, k, id, |o| {
            if may_change(o.retention.as_ref(), retention, now, bypass) {
                o.retention = retention.cloned();
            } else {
                refused = Some(format!(
                    "the retention of {}/{} version {} cannot be shortened, removed or weakened",
                    o.bucket,
                    o.key,
                    o.version_id()
                ));
            }
        });
        match refused {
            // The record was written back unchanged: nothing changed.
            Some(why) => Err(MetaError::ObjectLocked(why)),
            None => out,
        }
    }

    /// Turns the legal hold of version `id` (or the current version) of `bucket`/`k` on or
    /// off; returns the version.
    pub fn set_legal_hold(
        &self,
        bucket: &str,
        k: &str,
        id: Option<&str>,
        on: bool,
    ) -> Result<ObjectMeta> {
        self.locked_bucket(bucket)?;
        self.update_version(bucket, k, id, |o| o.legal_hold = on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(mode: &str, until_ms: u64) -> Retention {
        Retention {
            mode: mode.into(),
            until_ms,
        }
    }

    #[test]
    fn compliance_only_extends_governance_needs_bypass_to_weaken() {
        let now = 1_000;
        let c = r(COMPLIANCE, 5_000);
        assert!(may_change(
            Some(&c),
            Some(&r(COMPLIANCE, 6_000)),
            now,
            false
        ));
        assert!(!may_change(
            Some(&c),
            Some(&r(COMPLIANCE, 4_000)),
            now,
            true
        ));
        assert!(!may_change(
            Some(&c),
            Some(&r(GOVERNANCE, 9_000)),
            now,
            true
        ));
        assert!(!may_change(Some(&c), None, now, true));
        let g = r(GOVERNANCE, 5_000);
        assert!(may_change(
            Some(&g),
            Some(&r(GOVERNANCE, 6_000)),
            now,
            false
        ));
        assert!(!may_change(
            Some(&g),
            Some(&r(COMPLIANCE, 6_000)),
            now,
            false
        ));
        assert!(may_change(Some(&g), Some(&r(COMPLIANCE, 6_000)), now, true));
        assert!(!may_change(
            Some(&g),
            Some(&r(GOVERNANCE, 2_000)),
            now,
            false
        ));
        assert!(may_change(Some(&g), Some(&r(GOVERNANCE, 2_000)), now, true));
        assert!(may_change(Some(&g), None, now, true));
        // A retention that has passed no longer binds.
        assert!(may_change(Some(&c), None, 6_000, false));
    }
}
