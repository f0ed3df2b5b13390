//! Access stamps. A PUT whose access check read this coordinator's applied state (in a
//! replicated group: no read-index round to the leader) carries a stamp of what the check
//! decided on, the bucket's record and the caller's access key
//! ([`Precondition::Checked`]). Its commit refuses it with [`MetaError::Fenced`] if either
//! changed since, so the write takes effect only under the settings that allowed it, as if
//! it had been checked at its commit.

use super::records::{BucketMeta, KeyRecord, Precondition};
use super::store::{MetaStore, Result};
use super::MetaError;
use std::collections::BTreeMap;

/// The stamp of bucket record `bucket` and access key `key` (`None`: an unsigned request).
pub fn access_stamp(bucket: &BucketMeta, key: Option<&KeyRecord>) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(&serde_json::to_vec(bucket).unwrap_or_default());
    h.update(&[0]);
    if let Some(k) = key {
        h.update(&serde_json::to_vec(k).unwrap_or_default());
    }
    let mut head = [0u8; 8];
    head.copy_from_slice(&h.finalize().as_bytes()[..8]);
    u64::from_le_bytes(head)
}

impl MetaStore {
    /// `cond` without its stamp, once the stamp (if it has one) matches `bucket` and the
    /// caller's key as stored now; [`MetaError::Fenced`] if it does not.
    pub(super) fn unstamped<'a>(
        &self,
        bucket: &BucketMeta,
        cond: &'a Precondition,
    ) -> Result<&'a Precondition> {
        Stamps::new(self).unstamped(bucket, cond)
    }
}

/// [`MetaStore::unstamped`] for many writes in one commit (a segment's objects): each
/// bucket and key's stamp is computed once.
pub(super) struct Stamps<'a> {
    store: &'a MetaStore,
    seen: BTreeMap<(String, Option<String>), u64>,
}

impl<'a> Stamps<'a> {
    pub(super) fn new(store: &'a MetaStore) -> Self {
        Stamps {
            store,
            seen: BTreeMap::new(),
        }
    }

    /// See [`MetaStore::unstamped`].
    pub(super) fn unstamped<'c>(
        &mut self,
        bucket: &BucketMeta,
        cond: &'c Precondition,
    ) -> Result<&'c Precondition> {
        let Precondition::Checked {
            stamp,
            caller,
            cond,
        } = cond
        else {
            return Ok(cond);
        };
        let now = match self.seen.get(&(bucket.name.clone(), caller.clone())) {
            Some(s) => *s,
            None => {
                let key = match caller {
                    Some(id) => self.store.key(id)?,
                    None => None,
                };
                let s = access_stamp(bucket, key.as_ref());
                self.seen.insert((bucket.name.clone(), caller.clone()), s);
                s
            }
        };
        if now != *stamp {
            return Err(MetaError::Fenced(format!(
                "the settings of bucket {} or the request's access key changed after its access check; retry",
                bucket.name
            )));
        }
        Ok(cond)
    }
}
