//! [`Metadata`]: the named metadata operations the rest of the coordinator uses, as an async
//! trait, so that where the metadata lives (one local store, or a store replicated by a log
//! across coordinators) is hidden behind it. Every implementation is an [`Engine`]: it
//! performs write [`Command`]s and runs reads; [`Local`] does both on a [`MetaStore`] on
//! the blocking pool, the replicated store (`cluster/`, above this module) through Raft.
//!
//! Every write operation is one atomic, durable step with the semantics documented on the
//! [`MetaStore`] method of the same name (and checked by [`super::conformance`]); there is no
//! way to run arbitrary code inside the store.

use super::clock::{Clock, Context};
use super::counters::Counters;
use super::derived::DerivedCheck;
use super::journal::{JournalEntry, RestoredKey};
use super::store::Result;
use super::{
    Acl, BucketMeta, BucketSetting, CompletedUpload, DeleteCondition, Deleted, Grant, KeyRecord,
    Listing, MetaError, MetaStore, NodeRecord, ObjectLock, ObjectMeta, PackEntry, Part,
    Precondition, Retention, ShardSet, Upload, UploadListing, VersionListing,
};
use crate::names::EcSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use tessera_node::{NodeId, ObjectVersion};

/// Declares the operations once. Each becomes a [`Metadata`] method taking owned arguments;
/// a write also becomes a [`Command`] variant (what a replicated log carries) whose
/// [`Command::apply`] calls the [`MetaStore`] method, with a [`Reply`] variant of the same
/// name; a read runs its [`MetaStore`] call through [`Engine::read`] with the freshness it
/// is declared with.
macro_rules! operations {
    (
        writes { $( $(#[$wdoc:meta])* fn $w:ident(&self $(, $wa:ident: $wt:ty)*) -> $wr:ty = |$wm:ident| $wcall:expr; )* }
        reads { $( $(#[$rdoc:meta])* $fresh:ident fn $r:ident(&self $(, $ra:ident: $rt:ty)*) -> $rr:ty = |$rm:ident| $rcall:expr; )* }
    ) => {
        /// The coordinator's metadata operations (see the module docs).
        #[async_trait::async_trait]
        pub trait Metadata: Send + Sync + 'static {
            $( $(#[$wdoc])* async fn $w(&self $(, $wa: $wt)*) -> Result<$wr>; )*
            $( $(#[$rdoc])* async fn $r(&self $(, $ra: $rt)*) -> Result<$rr>; )*
        }

        /// A write operation with its arguments: what a replicated log carries and every
        /// member applies.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum Command {
            $( $(#[$wdoc])* $w { $($wa: $wt),* }, )*
        }

        /// The result of a [`Command`] (the variant of the same name).
        #[allow(non_camel_case_types)]
        #[derive(Clone, Debug, Serialize, Deserialize)]
        pub enum Reply {
            $( $(#[$wdoc])* $w($wr), )*
        }

        impl Command {
            /// Applies the write to `store` (deterministic given the store's contents and the
            /// entered [`super::Context`]).
            pub fn apply(self, store: &MetaStore) -> Result<Reply> {
                match self {
                    $( Command::$w { $($wa),* } => { let $wm = store; Ok(Reply::$w($wcall?)) } )*
                }
            }

            /// The operation's name.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Command::$w { .. } => stringify!($w), )*
                }
            }
        }

        #[async_trait::async_trait]
        impl<E: Engine> Metadata for E {
            $( async fn $w(&self $(, $wa: $wt)*) -> Result<$wr> {
                match self.write(Command::$w { $($wa),* }).await? {
                    Reply::$w(v) => Ok(v),
                    #[allow(unreachable_patterns)]
                    other => Err(MetaError::Storage(format!(
                        "{} answered with {other:?}", stringify!($w)
                    ))),
                }
            } )*
            $( async fn $r(&self $(, $ra: $rt)*) -> Result<$rr> {
                self.read(Freshness::$fresh, move |$rm: &MetaStore| $rcall).await
            } )*
        }
    };
}

/// How recent the state a read sees must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum Freshness {
    /// Every write acknowledged before the read began (linearizable).
    linear,
    /// Whatever this coordinator has applied (may lag the latest writes by a moment; for
    /// background work that tolerates it).
    local,
}

/// Where the operations run: one local store ([`Local`]), or a replicated log.
pub trait Engine: Send + Sync + 'static {
    /// Performs a write.
    fn write(&self, cmd: Command) -> impl Future<Output = Result<Reply>> + Send;

    /// Runs the read `f` on a store at least as fresh as `fresh` asks.
    fn read<T: Send + 'static>(
        &self,
        fresh: Freshness,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> impl Future<Output = Result<T>> + Send;
}

/// The metadata in one local store (RocksDB on disk, or a map in memory), its writes timed
/// by a [`Clock`].
pub struct Local(pub Arc<MetaStore>, pub Arc<Clock>);

impl Local {
    /// Serves `store` with the own clock only.
    pub fn serve(store: MetaStore) -> Arc<dyn Metadata> {
        Local::serve_with(store, Arc::new(Clock::default()))
    }

    /// Serves `store`, timing writes by `clock`.
    pub fn serve_with(store: MetaStore, clock: Arc<Clock>) -> Arc<dyn Metadata> {
        Arc::new(Local(Arc::new(store), clock))
    }
}

impl Engine for Local {
    async fn write(&self, cmd: Command) -> Result<Reply> {
        let m = self.0.clone();
        let ctx = Context::now(0, &self.1);
        blocking(move || ctx.enter(|| cmd.apply(&m))).await
    }

    async fn read<T: Send + 'static>(
        &self,
        _fresh: Freshness,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let m = self.0.clone();
        blocking(move || f(&m)).await
    }
}

/// Runs `f` on the blocking pool.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| MetaError::Storage(format!("metadata task: {e}")))?
}

operations! {
    writes {
        /// Creates a bucket; false (and nothing changed) if it exists.
        fn create_bucket(&self, b: BucketMeta) -> bool = |m| m.create_bucket(&b);
        /// Deletes an empty bucket (NoSuchBucket, BucketNotEmpty); its uploads go with it.
        fn delete_bucket(&self, name: String) -> () = |m| m.delete_bucket(&name);
        /// Records a PUT in flight before any shard is written.
        fn begin_put(&self, version: ObjectVersion, set: ShardSet) -> () = |m| m.begin_put(version, &set);
        /// Records shard writes in flight under `record` (a repair's).
        fn begin_pending(&self, record: String, set: ShardSet) -> () = |m| m.begin_pending(&record, &set);
        /// The commit point of a PUT, if `cond` holds; returns the object as committed.
        fn commit_put(&self, obj: ObjectMeta, cond: Precondition) -> ObjectMeta = |m| m.commit_put(&obj, &cond);
        /// The commit point of a segment and the small objects packed into it (one outcome each).
        fn commit_segment(&self, seg: ObjectMeta, entries: Vec<PackEntry>) -> Vec<Result<ObjectMeta>> = |m| m.commit_segment(&seg, &entries);
        /// Records the PUT of the next segment `next` in flight (shards `set`), then commits
        /// `seg` as [`Metadata::commit_segment`] does: one write, one log entry in a replicated
        /// group, where a separate `begin_put` would make two. The record is made whatever the
        /// commit's outcome.
        fn commit_segment_and_begin(&self, seg: ObjectMeta, entries: Vec<PackEntry>, next: ObjectVersion, set: ShardSet) -> Vec<Result<ObjectMeta>> = |m| m.commit_segment_and_begin(&seg, &entries, next, &set);
        /// A PUT that will not commit: its in-flight record becomes garbage.
        fn abort_put(&self, version: ObjectVersion, set: ShardSet) -> () = |m| m.abort_put(version, &set);
        /// A repair that will not commit: its in-flight record becomes garbage.
        fn abort_pending(&self, record: String, set: ShardSet) -> () = |m| m.abort_pending(&record, &set);
        /// Moves shards of `version` to their new nodes if the object is still that version.
        fn commit_repair(&self, record: String, set: ShardSet, version: ObjectVersion, moved: Vec<(u16, NodeId)>) -> bool = |m| m.commit_repair(&record, &set, version, &moved);
        /// Restores an object found by the metadata rebuild unless a newer version exists.
        fn restore_object(&self, obj: ObjectMeta, default_ec: EcSpec) -> bool = |m| m.restore_object(&obj, default_ec);
        /// Restores many objects found by a metadata rebuild in one step: whether each was
        /// written.
        fn restore_objects(&self, objs: Vec<ObjectMeta>, default_ec: EcSpec) -> Vec<bool> = |m| m.restore_objects(&objs, default_ec);
        /// Restores a key's versions found by the metadata rebuild unless it has one.
        fn restore_key(&self, r: RestoredKey) -> bool = |m| m.restore_key(&r);
        /// Raises the commit counter to at least `n` (after a rebuild read the journal).
        fn raise_seq(&self, n: u64) -> () = |m| m.raise_seq(n);
        /// Drops the version journal's entries up to `upto` (written to the nodes); how many.
        fn drop_journal(&self, upto: u64) -> usize = |m| m.drop_journal(upto);
        /// Deletes a key's current version (a delete marker in a versioned bucket).
        fn delete_object(&self, bucket: String, key: String) -> Deleted = |m| m.delete_object(&bucket, &key);
        /// Deletes a key's current version if it meets `cond` (PreconditionFailed if not).
        fn delete_object_if(&self, bucket: String, key: String, cond: DeleteCondition) -> Deleted = |m| m.delete_object_if(&bucket, &key, &cond);
        /// Deletes one version (or delete marker) of a key for good, if it meets `cond`.
        fn delete_version(&self, bucket: String, key: String, version_id: String, cond: DeleteCondition, bypass_governance: bool) -> Deleted = |m| m.delete_version(&bucket, &key, &version_id, &cond, bypass_governance);
        /// Enables object lock on a versioned bucket or replaces its default retention.
        fn set_object_lock(&self, bucket: String, lock: ObjectLock) -> BucketMeta = |m| m.set_object_lock(&bucket, &lock);
        /// Sets or removes a version's retention (only extended unless bypassing GOVERNANCE).
        fn set_retention(&self, bucket: String, key: String, version_id: Option<String>, retention: Option<Retention>, bypass_governance: bool) -> ObjectMeta = |m| m.set_retention(&bucket, &key, version_id.as_deref(), retention.as_ref(), bypass_governance);
        /// Turns a version's legal hold on or off.
        fn set_legal_hold(&self, bucket: String, key: String, version_id: Option<String>, on: bool) -> ObjectMeta = |m| m.set_legal_hold(&bucket, &key, version_id.as_deref(), on);
        /// Replaces the tags of a version (without an id: the current one); returns it.
        fn set_object_tags(&self, bucket: String, key: String, version_id: Option<String>, tags: BTreeMap<String, String>) -> ObjectMeta = |m| m.set_object_tags(&bucket, &key, version_id.as_deref(), &tags);
        /// Sets a bucket's versioning (`Enabled`, `Suspended`); returns the bucket.
        fn set_versioning(&self, bucket: String, state: String) -> BucketMeta = |m| m.set_versioning(&bucket, &state);
        /// Records a new multipart upload.
        fn create_upload(&self, u: Upload) -> () = |m| m.create_upload(&u);
        /// The commit point of a part (replacing a part of the same number).
        fn commit_part(&self, bucket: String, key: String, upload: ObjectVersion, part: Part) -> () = |m| m.commit_part(&bucket, &key, upload, &part);
        /// Aborts an upload; its parts become garbage.
        fn abort_upload(&self, bucket: String, key: String, id: ObjectVersion) -> () = |m| m.abort_upload(&bucket, &key, id);
        /// The commit point of a multipart object, if `cond` holds and no part changed.
        fn complete_upload(&self, obj: ObjectMeta, upload: ObjectVersion, cond: Precondition) -> ObjectMeta = |m| m.complete_upload(&obj, upload, &cond);
        /// Forgets completed uploads older than `before_ms`.
        fn expire_completed(&self, before_ms: u64) -> usize = |m| m.expire_completed(before_ms);
        /// Stores a new access key (fails if the id exists).
        fn create_key(&self, k: KeyRecord) -> () = |m| m.create_key(&k);
        /// Deletes a key and its grants; whether it existed.
        fn delete_key(&self, id: String) -> bool = |m| m.delete_key(&id);
        /// Sets a key's grant on a bucket; returns the bucket.
        fn set_grant(&self, bucket: String, key_id: String, grant: Grant) -> BucketMeta = |m| m.set_grant(&bucket, &key_id, grant);
        /// Changes one of a bucket's settings (ACL, policy, CORS, public access block,
        /// ownership); returns the bucket.
        fn set_bucket_setting(&self, bucket: String, setting: BucketSetting) -> BucketMeta = |m| m.set_bucket_setting(&bucket, &setting);
        /// Replaces the ACL of a key's committed version (NoSuchKey).
        fn set_object_acl(&self, bucket: String, key: String, acl: Acl) -> () = |m| m.set_object_acl(&bucket, &key, &acl);
        /// Registers (or moves) a node.
        fn put_node(&self, n: NodeRecord) -> () = |m| m.put_node(&n);
        /// Sets (or with `None` clears) a node's lifecycle state (`draining`, `drained`).
        fn set_node_state(&self, node: NodeId, state: Option<String>) -> () = |m| m.set_node_state(&node, state.as_deref());
        /// Forgets a node: its registration and its entries in garbage records go (shards on
        /// a removed node can never be deleted); its state becomes `removed`.
        fn remove_node(&self, node: NodeId) -> usize = |m| m.remove_node(&node);
        /// Stores (or with `None` ends) a maintenance job (rebalance, recode) so the leader
        /// resumes it after a restart.
        fn set_job(&self, name: String, spec: Option<serde_json::Value>) -> () = |m| m.set_job(&name, spec.as_ref());
        /// Changes the code new objects of a bucket get.
        fn set_bucket_ec(&self, bucket: String, ec: EcSpec) -> BucketMeta = |m| m.set_bucket_ec(&bucket, ec);
        /// Turns the writes left in flight by coordinator `owner` (all, with `None`) before
        /// `before_ms` into garbage; how many.
        fn expire_pending(&self, owner: Option<u64>, before_ms: u64) -> usize = |m| m.expire_pending(owner, before_ms);
        /// Records shards no metadata names as garbage.
        fn add_garbage(&self, record: String, set: ShardSet) -> () = |m| m.add_garbage(&record, &set);
        /// Replaces (or with `None` removes) a garbage record.
        fn update_garbage(&self, record: String, rest: Option<ShardSet>) -> () = |m| m.update_garbage(&record, rest.as_ref());
    }
    reads {
        /// A bucket, if it exists.
        linear fn bucket(&self, name: String) -> Option<BucketMeta> = |m| m.bucket(&name);
        /// A bucket as this coordinator last applied it (a replicated member may lag).
        local fn bucket_applied(&self, name: String) -> Option<BucketMeta> = |m| m.bucket(&name);
        /// All buckets in name order.
        linear fn buckets(&self) -> Vec<BucketMeta> = |m| m.buckets();
        /// The committed version of a key, if any.
        linear fn object(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.object(&bucket, &key);
        /// A key's committed version as this coordinator last applied it (a packed object's
        /// segment, after the linearizable lookup of the object).
        local fn object_applied(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.object(&bucket, &key);
        /// The committed version of a key in a bucket that must exist (NoSuchBucket).
        linear fn lookup(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.lookup(&bucket, &key);
        /// Versions with a write in flight.
        linear fn pending_versions(&self) -> HashSet<ObjectVersion> = |m| m.pending_versions();
        /// Committed versions in (bucket, key, newest first) order after the cursor `after`,
        /// at most `limit`, and the cursor after them.
        linear fn objects_after(&self, after: Option<Vec<u8>>, limit: usize) -> (Vec<ObjectMeta>, Option<Vec<u8>>) = |m| m.objects_after(after.as_deref(), limit);
        /// [`Metadata::objects_after`] within the keys of `bucket` starting with `prefix`.
        linear fn objects_under(&self, bucket: String, prefix: String, after: Option<Vec<u8>>, limit: usize) -> (Vec<ObjectMeta>, Option<Vec<u8>>) = |m| m.objects_under(&bucket, &prefix, after.as_deref(), limit);
        /// Version `version_id` of a key (a delete marker too) in a bucket that must exist.
        linear fn object_version(&self, bucket: String, key: String, version_id: String) -> Option<ObjectMeta> = |m| m.object_version(&bucket, &key, &version_id);
        /// A key's newest version, current or a delete marker, in a bucket that must exist.
        linear fn newest_version(&self, bucket: String, key: String) -> Option<ObjectMeta> = |m| m.newest_version(&bucket, &key);
        /// An S3 version listing page.
        linear fn list_versions(&self, bucket: String, prefix: String, key_marker: Option<String>, version_marker: Option<String>, delimiter: Option<String>, max: usize) -> VersionListing = |m| m.list_versions(&bucket, &prefix, key_marker.as_deref(), version_marker.as_deref(), delimiter.as_deref(), max);
        /// Version `version` of a key (current or noncurrent), if it is packed in `segment`.
        linear fn packed_version(&self, bucket: String, key: String, version: ObjectVersion, segment: ObjectVersion) -> Option<ObjectMeta> = |m| m.packed_version(&bucket, &key, version, segment);
        /// The version of a key (current or noncurrent) holding the stored run `version`.
        linear fn version_holding(&self, bucket: String, key: String, version: ObjectVersion) -> Option<ObjectMeta> = |m| m.version_holding(&bucket, &key, version);
        /// An S3 listing page.
        linear fn list(&self, bucket: String, prefix: String, start_after: Option<String>, delimiter: Option<String>, max: usize) -> Listing = |m| m.list(&bucket, &prefix, start_after.as_deref(), delimiter.as_deref(), max);
        /// An upload in progress (NoSuchUpload).
        linear fn upload(&self, bucket: String, key: String, id: ObjectVersion) -> Upload = |m| m.upload(&bucket, &key, id);
        /// A page of the uploads in progress of a bucket (prefix, delimiter, markers).
        linear fn uploads(&self, bucket: String, prefix: String, delimiter: Option<String>, after: Option<(String, Option<ObjectVersion>)>, max: usize) -> UploadListing = |m| m.uploads(&bucket, &prefix, delimiter.as_deref(), after.as_ref().map(|(k, id)| (k.as_str(), *id)), max);
        /// The parts of an upload in number order.
        linear fn upload_parts(&self, id: ObjectVersion) -> Vec<Part> = |m| m.upload_parts(id);
        /// Earlier uploads of an upload's part numbers, replaced by later ones.
        linear fn superseded_parts(&self, id: ObjectVersion) -> Vec<Part> = |m| m.superseded_parts(id);
        /// How upload `id` was completed, while that is remembered.
        linear fn completed_upload(&self, id: ObjectVersion) -> Option<CompletedUpload> = |m| m.completed_upload(id);
        /// Uploads started before `before_ms`.
        linear fn uploads_older_than(&self, before_ms: u64, limit: usize) -> Vec<Upload> = |m| m.uploads_older_than(before_ms, limit);
        /// Whether an upload in progress still holds shard `index` of `version` on `node`.
        linear fn upload_references(&self, upload: ObjectVersion, version: ObjectVersion, index: usize, node: NodeId) -> bool = |m| m.upload_references(upload, version, index, &node);
        /// An access key, if it exists.
        linear fn key(&self, id: String) -> Option<KeyRecord> = |m| m.key(&id);
        /// An access key as this coordinator last applied it (a replicated member may lag).
        local fn key_applied(&self, id: String) -> Option<KeyRecord> = |m| m.key(&id);
        /// All access keys in id order.
        linear fn keys(&self) -> Vec<KeyRecord> = |m| m.keys();
        /// Registered nodes.
        linear fn nodes(&self) -> Vec<NodeRecord> = |m| m.nodes();
        /// The oldest version journal entries not yet written to the nodes.
        linear fn journal_page(&self, limit: usize) -> Vec<(u64, JournalEntry)> = |m| m.journal_page(limit);
        /// Maintenance jobs by name.
        linear fn jobs(&self) -> BTreeMap<String, serde_json::Value> = |m| m.jobs();
        /// Lifecycle states as this coordinator last applied them (a replicated member may lag).
        local fn node_states_applied(&self) -> BTreeMap<NodeId, String> = |m| m.node_states();
        /// Nodes with a lifecycle state (`draining`, `drained`, `removed`).
        linear fn node_states(&self) -> BTreeMap<NodeId, String> = |m| m.node_states();
        /// Whether any object, upload part or in-flight write has a shard on `node`.
        linear fn references_node(&self, node: NodeId) -> bool = |m| m.references_node(&node);
        /// Garbage records: (record, version, shards), at most `limit`.
        linear fn garbage(&self, limit: usize) -> Vec<(String, ObjectVersion, ShardSet)> = |m| m.garbage(limit);
        /// Owners of in-flight records and how many each has.
        local fn pending_owners(&self) -> BTreeMap<u64, usize> = |m| m.pending_owners();
        /// Counts of in-flight and garbage records.
        linear fn pending_and_garbage(&self) -> (usize, usize) = |m| m.pending_and_garbage();
        /// The counters kept on commit (O(buckets + nodes)).
        linear fn counters(&self) -> Counters = |m| m.counters();
        /// The derived records (counters, index by node) recomputed from every record against
        /// those kept (O(objects): checks only).
        linear fn check_derived(&self) -> DerivedCheck = |m| m.check_derived();
        /// Segments below live fraction `below` with live objects, least live first, at most
        /// `limit` (from the index by live fraction: O(candidates)).
        linear fn segments_below(&self, below: f64, limit: usize) -> Vec<ObjectMeta> = |m| m.segments_below(below, limit);
        /// Versions and segments with a shard on `node`, a page at a time after the cursor
        /// `after` (from the index by node: O(what the node holds)).
        linear fn objects_on_node(&self, node: NodeId, after: Option<Vec<u8>>, limit: usize) -> (Vec<ObjectMeta>, Option<Vec<u8>>) = |m| m.objects_on_node(&node, after.as_deref(), limit);
        /// The storage engine's stall and compaction figures (monitoring).
        local fn engine_gauges(&self) -> Vec<(String, u64)> = |m| Ok(m.engine_gauges());
        /// Flushes and compacts this coordinator's storage engine (changes no record).
        local fn compact_engine(&self) -> () = |m| m.compact_engine();
    }
}
