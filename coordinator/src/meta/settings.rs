//! What a bucket's owner configures beyond its objects: access control lists (bucket and
//! object), the bucket policy, CORS rules, the public access block and object ownership
//! (the record types are in [`super::records`]). Kept in the metadata (replicated through
//! the log like every write); evaluated by the edge, which is the only part that knows what
//! a request asks for.

use super::keys::key;
use super::kv::Batch;
use super::records::{Acl, BucketMeta, BucketSetting, PublicAccessBlock};
use super::store::{MetaStore, Result};
use super::MetaError;

impl BucketMeta {
    /// The bucket's ACL (the owner's full control unless replaced).
    pub fn acl(&self) -> Acl {
        self.acl
            .clone()
            .unwrap_or_else(|| Acl::private(self.owner.clone()))
    }

    /// Whether ACLs are switched off (`BucketOwnerEnforced`): only the owner, the store's
    /// grants and the policy decide.
    pub fn acls_disabled(&self) -> bool {
        self.ownership.as_deref() == Some("BucketOwnerEnforced")
    }

    /// The public access block, all off unless set.
    pub fn public_access(&self) -> PublicAccessBlock {
        self.public_access_block.unwrap_or_default()
    }
}

impl MetaStore {
    /// Applies one change to a bucket's settings (NoSuchBucket); returns the bucket.
    pub fn set_bucket_setting(&self, bucket: &str, setting: &BucketSetting) -> Result<BucketMeta> {
        let guard = self.lock.lock().unwrap();
        let mut b = self
            .bucket(bucket)?
            .ok_or_else(|| MetaError::NoSuchBucket(bucket.into()))?;
        match setting.clone() {
            BucketSetting::Acl(acl) => b.acl = Some(acl),
            BucketSetting::Policy(p) => b.policy = p,
            BucketSetting::Cors(c) => b.cors = c,
            BucketSetting::PublicAccessBlock(p) => b.public_access_block = p,
            BucketSetting::Ownership(o) => b.ownership = o,
        }
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.write_locked(batch, guard)?;
        Ok(b)
    }

    /// Replaces the ACL of a key's committed version (NoSuchBucket, NoSuchKey).
    pub fn set_object_acl(&self, bucket: &str, object: &str, acl: &Acl) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        let mut o = self
            .lookup(bucket, object)?
            .ok_or_else(|| MetaError::NoSuchKey {
                bucket: bucket.into(),
                key: object.into(),
            })?;
        o.acl = Some(acl.clone());
        let mut batch = Batch::default();
        batch.put(key(b'o', &[bucket, object]), serde_json::to_vec(&o)?);
        self.write_locked(batch, guard)
    }
}
