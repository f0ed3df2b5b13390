//! Buckets, access keys, grants and bucket settings (ACLs, policy, CORS, public access
//! block, ownership; object ACLs).

use super::clock::now_ms;
use super::journal::JournalEntry;
use super::keys::key;
use super::kv::Batch;
use super::records::{BucketMeta, Grant, KeyRecord, Upload};
use super::settings::{Acl, BucketSetting};
use super::store::{MetaStore, Result};
use super::MetaError;

impl MetaStore {
    /// Creates a bucket; returns false (and changes nothing) if it exists.
    pub fn create_bucket(&self, b: &BucketMeta) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        let k = key(b'b', &[&b.name]);
        if self.kv.get(&k)?.is_some() {
            return Ok(false);
        }
        let mut batch = Batch::default();
        batch.put(k, serde_json::to_vec(b)?);
        if b.versioning.is_some() {
            self.journal_new(&mut batch, &JournalEntry::bucket(&b.name, Some(b)))?;
        }
        self.write_locked(batch, guard)?;
        Ok(true)
    }

    /// A bucket, if it exists.
    pub fn bucket(&self, name: &str) -> Result<Option<BucketMeta>> {
        self.get(&key(b'b', &[name]))
    }

    /// All buckets in name order.
    pub fn buckets(&self) -> Result<Vec<BucketMeta>> {
        self.all(b'b')
    }

    /// Deletes an empty bucket.
    pub fn delete_bucket(&self, name: &str) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        let Some(b) = self.bucket(name)? else {
            return Err(MetaError::NoSuchBucket(name.into()));
        };
        let mut prefix = key(b'o', &[name]);
        prefix.push(0);
        let mut empty = true;
        self.scan(&prefix, |_, _: serde_json::Value| {
            empty = false;
            false
        })?;
        if !empty {
            return Err(MetaError::BucketNotEmpty(name.into()));
        }
        let mut batch = Batch::default();
        batch.delete(key(b'b', &[name]));
        if b.versioning.is_some() {
            self.journal_new(&mut batch, &JournalEntry::bucket(name, None))?;
        }
        // Uploads left in progress go with the bucket; their parts become garbage.
        let mut prefix = key(b'u', &[name]);
        prefix.push(0);
        let mut uploads = Vec::new();
        self.scan(&prefix, |_, u: Upload| {
            uploads.push(u);
            true
        })?;
        for u in &uploads {
            self.drop_upload(&mut batch, u, &[])?;
        }
        self.write_locked(batch, guard)
    }

    /// Stores a new key; fails with [`MetaError::AlreadyExists`] if its id is taken.
    pub fn create_key(&self, k: &KeyRecord) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        let id = key(b'k', &[&k.id]);
        if self.kv.get(&id)?.is_some() {
            return Err(MetaError::AlreadyExists(format!("access key {}", k.id)));
        }
        let mut batch = Batch::default();
        batch.put(id, serde_json::to_vec(k)?);
        self.write_locked(batch, guard)
    }

    /// A key by id.
    pub fn key(&self, id: &str) -> Result<Option<KeyRecord>> {
        self.get(&key(b'k', &[id]))
    }

    /// All keys in id order.
    pub fn keys(&self) -> Result<Vec<KeyRecord>> {
        self.all(b'k')
    }

    /// Deletes a key and every grant naming it; buckets it owns keep it as their (now
    /// unusable) owner until another key is made owner. Returns whether it existed.
    pub fn delete_key(&self, id: &str) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        if self.key(id)?.is_none() {
            return Ok(false);
        }
        let mut batch = Batch::default();
        batch.delete(key(b'k', &[id]));
        for mut b in self.buckets()? {
            if b.grants.remove(id).is_some() {
                batch.put(key(b'b', &[&b.name]), serde_json::to_vec(&b)?);
            }
        }
        self.write_locked(batch, guard)?;
        Ok(true)
    }

    /// Sets (or, with an all-false grant, removes) what `key_id` may do in `bucket`.
    pub fn set_grant(&self, bucket: &str, key_id: &str, grant: Grant) -> Result<BucketMeta> {
        let guard = self.lock.lock().unwrap();
        let mut b = self
            .bucket(bucket)?
            .ok_or_else(|| MetaError::NoSuchBucket(bucket.into()))?;
        if self.key(key_id)?.is_none() {
            return Err(MetaError::InvalidArgument(format!(
                "no access key {key_id}"
            )));
        }
        if grant == Grant::default() {
            b.grants.remove(key_id);
        } else {
            b.grants.insert(key_id.to_string(), grant);
        }
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.write_locked(batch, guard)?;
        Ok(b)
    }
}

impl MetaStore {
    /// Whether `bucket` exists (without decoding its record: a GET asks this on every read).
    pub fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        Ok(self.kv.get(&key(b'b', &[bucket]))?.is_some())
    }

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
            BucketSetting::Tags(t) => b.tags = t,
            BucketSetting::Lifecycle(l) => {
                b.lifecycle = l;
                b.lifecycle_set_ms = Some(now_ms());
            }
        }
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.write_locked(batch, guard)?;
        Ok(b)
    }

    /// Replaces the ACL of a key's current version (NoSuchBucket, NoSuchKey).
    pub fn set_object_acl(&self, bucket: &str, object: &str, acl: &Acl) -> Result<()> {
        self.update_version(bucket, object, None, |o| o.acl = Some(acl.clone()))?;
        Ok(())
    }
}
