//! Coordinator metadata: buckets, objects, node registrations, in-flight writes and
//! garbage, kept in an ordered key-value store ([`kv::Kv`]: RocksDB in [`rocks`], a map in
//! [`memory`]; [`conformance`] holds both to the same behaviour). Every mutation is one synced write batch taken under one lock, so a commit is
//! atomic, durable when it returns, and concurrent commits to one key serialise (last wins,
//! the loser's or the old version's shards are recorded as garbage, never leaked).
//!
//! - [`records`]: the record types ([`settings`]: those of a bucket's access configuration:
//!   ACLs, policy, CORS, public access block, ownership); [`keys`]: how they are keyed;
//!   [`clock`]: an operation's time and proposer.
//! - [`store`]: [`MetaStore`] and the helpers its operations share; the operations by family:
//!   [`buckets`] (and keys, grants, bucket settings, object ACLs), [`objects`], [`segments`],
//!   [`listing`], [`multipart`], [`nodes`] (and jobs), [`garbage`] (in-flight writes and
//!   garbage), [`versions`] (a key's history in a versioned bucket: noncurrent versions,
//!   delete markers, version listings), [`lock`] (object lock: retention, legal holds),
//!   [`journal`] (what a rebuild from the nodes needs of a versioned key's history);
//!   [`lifecycle`]: lifecycle rules and what they say about a version; [`stamp`]: what a
//!   PUT's access check decided on, checked again at its commit.
//! - [`api`]: the [`Metadata`] trait the rest of the coordinator uses (local or replicated).
//! - [`kv`]: the ordered key-value store underneath ([`rocks`], [`memory`]); [`conformance`]
//!   holds every implementation to the same behaviour ([`version_conformance`]: versions and
//!   delete markers; [`journal_conformance`]: the version journal; [`counter_conformance`]:
//!   the counters; [`stamp_conformance`]: stamped writes; [`fixtures`]: what they build
//!   their cases from).
//! - [`derived`]: records kept in the batch of every change they follow: [`counters`] (what
//!   the store holds per bucket, node, code, in segments and in in-flight and garbage
//!   records; read in O(buckets + nodes)), [`node_index`] (objects by node) and
//!   [`fill_index`] (segments by live fraction), read through [`by_index`].

pub mod api;
mod buckets;
mod by_index;
pub mod clock;
pub mod conformance;
pub mod counter_conformance;
pub mod counters;
pub mod derived;
pub mod error;
mod fill_index;
mod fixtures;
mod garbage;
pub mod journal;
pub mod journal_conformance;
pub mod keys;
pub mod kv;
pub mod lifecycle;
mod listing;
mod lock;
pub mod memory;
mod multipart;
mod node_index;
mod nodes;
mod objects;
pub mod records;
pub mod rocks;
mod segments;
pub mod settings;
mod stamp;
pub mod stamp_conformance;
pub mod store;
pub mod version_conformance;
pub mod versions;

pub use api::{Command, Engine, Freshness, Local, Metadata, Reply};

/// How the metadata's RocksDB files of the last level (most of the records) are compressed.
/// The records are JSON full of hex (ids, ETags, digests): zstd entropy-codes it where LZ4
/// only finds repeats (a packed 4 KiB object takes 122 bytes after compaction instead of
/// 196; BENCHMARKS.md). Younger levels keep LZ4, cheaper to read back.
pub const METADATA_COMPRESSION: rocksdb::DBCompressionType = rocksdb::DBCompressionType::Zstd;
pub use clock::{now_ms, Clock, Context};
pub use error::MetaError;
pub use records::{
    BucketMeta, CompletedUpload, DeleteCondition, Deleted, Fill, Grant, KeyRecord, Listing,
    NodeRecord, ObjectMeta, PackEntry, Packed, Part, Precondition, ShardLoc, ShardSet, ShardState,
    Upload, UploadListing, VersionListing, SEGMENTS,
};
pub use settings::{
    Acl, AclGrant, BucketSetting, CorsRule, Grantee, LifecycleFilter, LifecycleRule, ObjectLock,
    Permission, PublicAccessBlock, Retention,
};
pub use stamp::access_stamp;
pub use store::{check_precondition, MetaStore};
