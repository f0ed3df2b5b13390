//! [`Metadata`]: the named metadata operations the rest of the coordinator uses, as an async
//! trait, so that where the metadata lives (one local store today, a replicated log next) is
//! hidden behind it. [`Local`] serves them from a [`MetaStore`] on the blocking pool.
//!
//! Every write operation is one atomic, durable step with the semantics documented on the
//! [`MetaStore`] method of the same name (and checked by [`super::conformance`]); there is no
//! way to run arbitrary code inside the store.

use super::*;
use std::collections::HashSet;
use std::sync::Arc;

/// Declares the trait's operations once: each becomes a trait method taking owned arguments
/// and, in [`Local`], a call of the [`MetaStore`] method on the blocking pool.
macro_rules! operations {
    ($( $(#[$doc:meta])* fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty = |$m:ident| $call:expr; )*) => {
        /// The coordinator's metadata operations (see the module docs).
        #[async_trait::async_trait]
        pub trait Metadata: Send + Sync + 'static {
            $( $(#[$doc])* async fn $name(&self $(, $arg: $ty)*) -> Result<$ret>; )*
        }

        #[async_trait::async_trait]
        impl Metadata for Local {
            $( async fn $name(&self $(, $arg: $ty)*) -> Result<$ret> {
                let $m = self.0.clone();
                tokio::task::spawn_blocking(move || $call)
                    .await
                    .map_err(|e| MetaError::Storage(format!("metadata task: {e}")))?
            } )*
        }
    };
}

/// The metadata in one local store (RocksDB on disk, or a map in memory).
pub struct Local(pub Arc<MetaStore>);

impl Local {
    /// Serves `store`.
    pub fn serve(store: MetaStore) -> Arc<dyn Metadata> {
        Arc::new(Local(Arc::new(store)))
    }
}

operations! {
    /// Creates a bucket; false (and nothing changed) if it exists.
    fn create_bucket(&self, b: BucketMeta) -> bool = |m| m.create_bucket(&b);
    /// A bucket, if it exists.
    fn bucket(&self, name: String) -> Option<BucketMeta> = |m| m.bucket(&name);
    /// All buckets in name order.
    fn buckets(&self) -> Vec<BucketMeta> = |m| m.buckets();
    /// Deletes an empty bucket (NoSuchBucket, BucketNotEmpty); its uploads go with it.
    fn delete_bucket(&self, name: String) -> () = |m| m.delete_bucket(&name);
    /// The committed version of a key, if any.
    fn object(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.object(&bucket, &key);
    /// The committed version of a key in a bucket that must exist (NoSuchBucket).
    fn lookup(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.lookup(&bucket, &key);
    /// Records a PUT in flight before any shard is written.
    fn begin_put(&self, version: ObjectVersion, set: ShardSet) -> () = |m| m.begin_put(version, &set);
    /// Records shard writes in flight under `record` (a repair's).
    fn begin_pending(&self, record: String, set: ShardSet) -> () = |m| m.begin_pending(&record, &set);
    /// Versions with a write in flight.
    fn pending_versions(&self) -> HashSet<ObjectVersion> = |m| m.pending_versions();
    /// The commit point of a PUT, if `cond` holds; returns the version it replaced.
    fn commit_put(&self, obj: ObjectMeta, cond: Precondition) -> Option<ObjectMeta> = |m| m.commit_put(&obj, &cond);
    /// A PUT that will not commit: its in-flight record becomes garbage.
    fn abort_put(&self, version: ObjectVersion, set: ShardSet) -> () = |m| m.abort_put(version, &set);
    /// A repair that will not commit: its in-flight record becomes garbage.
    fn abort_pending(&self, record: String, set: ShardSet) -> () = |m| m.abort_pending(&record, &set);
    /// Moves shards of `version` to their new nodes if the object is still that version.
    fn commit_repair(&self, record: String, set: ShardSet, version: ObjectVersion, moved: Vec<(u16, NodeId)>) -> bool = |m| m.commit_repair(&record, &set, version, &moved);
    /// Restores an object found by the metadata rebuild unless a newer version exists.
    fn restore_object(&self, obj: ObjectMeta, default_ec: EcSpec) -> bool = |m| m.restore_object(&obj, default_ec);
    /// Committed objects in (bucket, key) order after `after`, at most `limit`.
    fn objects_after(&self, after: Option<(String, String)>, limit: usize) -> Vec<ObjectMeta> = |m| m.objects_after(after.as_ref().map(|(b, k)| (b.as_str(), k.as_str())), limit);
    /// Deletes a key's committed version; returns it (its shards become garbage).
    fn delete_object(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.delete_object(&bucket, &key);
    /// An S3 listing page.
    fn list(&self, bucket: String, prefix: String, start_after: Option<String>, delimiter: Option<String>, max: usize) -> Listing = |m| m.list(&bucket, &prefix, start_after.as_deref(), delimiter.as_deref(), max);
    /// Records a new multipart upload.
    fn create_upload(&self, u: Upload) -> () = |m| m.create_upload(&u);
    /// An upload in progress (NoSuchUpload).
    fn upload(&self, bucket: String, key: String, id: ObjectVersion) -> Upload = |m| m.upload(&bucket, &key, id);
    /// A page of the uploads in progress of a bucket (prefix, delimiter, markers).
    fn uploads(&self, bucket: String, prefix: String, delimiter: Option<String>, after: Option<(String, Option<ObjectVersion>)>, max: usize) -> UploadListing = |m| m.uploads(&bucket, &prefix, delimiter.as_deref(), after.as_ref().map(|(k, id)| (k.as_str(), *id)), max);
    /// The parts of an upload in number order.
    fn upload_parts(&self, id: ObjectVersion) -> Vec<Part> = |m| m.upload_parts(id);
    /// The commit point of a part (replacing a part of the same number).
    fn commit_part(&self, bucket: String, key: String, upload: ObjectVersion, part: Part) -> () = |m| m.commit_part(&bucket, &key, upload, &part);
    /// Aborts an upload; its parts become garbage.
    fn abort_upload(&self, bucket: String, key: String, id: ObjectVersion) -> () = |m| m.abort_upload(&bucket, &key, id);
    /// The commit point of a multipart object, if `cond` holds and no part changed.
    fn complete_upload(&self, obj: ObjectMeta, upload: ObjectVersion, cond: Precondition) -> Option<ObjectMeta> = |m| m.complete_upload(&obj, upload, &cond);
    /// Uploads started before `before_ms`.
    fn uploads_older_than(&self, before_ms: u64, limit: usize) -> Vec<Upload> = |m| m.uploads_older_than(before_ms, limit);
    /// Whether an upload in progress still holds shard `index` of `version` on `node`.
    fn upload_references(&self, upload: ObjectVersion, version: ObjectVersion, index: usize, node: NodeId) -> bool = |m| m.upload_references(upload, version, index, &node);
    /// Stores a new access key (fails if the id exists).
    fn create_key(&self, k: KeyRecord) -> () = |m| m.create_key(&k);
    /// An access key, if it exists.
    fn key(&self, id: String) -> Option<KeyRecord> = |m| m.key(&id);
    /// All access keys in id order.
    fn keys(&self) -> Vec<KeyRecord> = |m| m.keys();
    /// Deletes a key and its grants; whether it existed.
    fn delete_key(&self, id: String) -> bool = |m| m.delete_key(&id);
    /// Sets a key's grant on a bucket; returns the bucket.
    fn set_grant(&self, bucket: String, key_id: String, grant: Grant) -> BucketMeta = |m| m.set_grant(&bucket, &key_id, grant);
    /// Registers (or moves) a node.
    fn put_node(&self, n: NodeRecord) -> () = |m| m.put_node(&n);
    /// Registered nodes.
    fn nodes(&self) -> Vec<NodeRecord> = |m| m.nodes();
    /// Turns every write left in flight by an earlier run into garbage; how many.
    fn orphan_pending(&self) -> usize = |m| m.orphan_pending();
    /// Garbage records: (record, version, shards), at most `limit`.
    fn garbage(&self, limit: usize) -> Vec<(String, ObjectVersion, ShardSet)> = |m| m.garbage(limit);
    /// Replaces (or with `None` removes) a garbage record.
    fn update_garbage(&self, record: String, rest: Option<ShardSet>) -> () = |m| m.update_garbage(&record, rest.as_ref());
    /// Counts of in-flight and garbage records.
    fn pending_and_garbage(&self) -> (usize, usize) = |m| m.pending_and_garbage();
}
