//! The records the metadata keeps: buckets, grants, keys, objects and their parts, segments,
//! uploads, in-flight and garbage shard sets, nodes, and listing pages.

use super::clock::now_ms;
use super::settings::{Acl, CorsRule, PublicAccessBlock};
use super::settings::{LifecycleRule, ObjectLock, Retention};
use crate::names::EcSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tessera_node::{NodeId, ObjectVersion};

/// A bucket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BucketMeta {
    /// Name.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
    /// Erasure parameters for objects that do not name their own.
    pub ec: EcSpec,
    /// Access key that created the bucket (`None`: created anonymously or before keys).
    #[serde(default)]
    pub owner: Option<String>,
    /// Permissions given to other keys (access key id -> grant).
    #[serde(default)]
    pub grants: BTreeMap<String, Grant>,
    /// Objects below this size are stored as `1+m` replicas instead of packed into segments
    /// (`x-tessera-replicate-below` at creation; `None`: the coordinator's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicate_below: Option<u64>,
    /// The bucket's ACL (`None`: the owner's full control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// The bucket policy (JSON, checked when it was set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// CORS rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Vec<CorsRule>>,
    /// The public access block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<PublicAccessBlock>,
    /// Object ownership (`BucketOwnerEnforced`, `BucketOwnerPreferred`, `ObjectWriter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    /// The `LocationConstraint` the bucket was created with (`None`: the default region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// Versioning: `Enabled` or `Suspended` (`None`: never set; it cannot return to that).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<String>,
    /// The bucket's tags (`None`: none set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Object lock (`None`: not enabled; once enabled it stays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<ObjectLock>,
    /// Lifecycle rules (`None`: none set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Vec<LifecycleRule>>,
    /// When the lifecycle rules were last set (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle_set_ms: Option<u64>,
}

/// What one access key may do in a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Read and list objects.
    pub read: bool,
    /// Write and delete objects.
    pub write: bool,
    /// Everything, including deleting the bucket.
    pub owner: bool,
}

impl BucketMeta {
    /// A new bucket with nothing set beyond its code and owner.
    pub fn new(name: &str, created_ms: u64, ec: EcSpec, owner: Option<String>) -> BucketMeta {
        BucketMeta {
            name: name.to_string(),
            created_ms,
            ec,
            owner,
            grants: BTreeMap::new(),
            replicate_below: None,
            acl: None,
            policy: None,
            cors: None,
            public_access_block: None,
            ownership: None,
            location: None,
            versioning: None,
            tags: None,
            object_lock: None,
            lifecycle: None,
            lifecycle_set_ms: None,
        }
    }

    /// The permissions of `key_id` in this bucket (the creator is owner).
    pub fn grant_of(&self, key_id: &str) -> Grant {
        if self.owner.as_deref() == Some(key_id) {
            return Grant {
                read: true,
                write: true,
                owner: true,
            };
        }
        let g = self.grants.get(key_id).copied().unwrap_or_default();
        Grant {
            read: g.read || g.owner,
            write: g.write || g.owner,
            owner: g.owner,
        }
    }
}

/// An access key: its id, secret and a name for people.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KeyRecord {
    /// Access key id (what clients send in their signature).
    pub id: String,
    /// Secret access key (what clients sign with).
    pub secret: String,
    /// Name given at creation.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_ms: u64,
}

/// A condition a write must meet when it commits, checked atomically with the commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precondition {
    /// No condition.
    #[default]
    None,
    /// The key must not exist (`If-None-Match: *`).
    Absent,
    /// The key must exist with this ETag (`If-Match`).
    ETag(String),
    /// The key must exist (`If-Match: *`).
    Exists,
    /// The key must not exist with this ETag (`If-None-Match` with an ETag): absent, or
    /// another ETag.
    NotETag(String),
    /// Both must hold (`If-Match` and `If-None-Match` together).
    Both(Box<Precondition>, Box<Precondition>),
    /// The key must hold exactly this version, current or noncurrent (a recode replacing
    /// what it read).
    Version(ObjectVersion),
    /// The key must exist at this version, packed in segment `from` (compaction moving it).
    Moved {
        /// The object's version.
        version: ObjectVersion,
        /// The segment it is moved out of.
        from: ObjectVersion,
    },
    /// `cond`, and the bucket's record and the caller's access key as the request's access
    /// check saw them (see [`super::stamp`]).
    Checked {
        /// [`super::access_stamp`] of the bucket and the key.
        stamp: u64,
        /// The access key id (`None`: unsigned).
        caller: Option<String>,
        /// The condition on the object.
        cond: Box<Precondition>,
    },
}

/// What a conditional delete asks of the object it deletes; a key with no object is
/// deleted (a no-op) whatever the condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteCondition {
    /// The ETag the object must have (`*`: any).
    pub etag: Option<String>,
    /// The commit time it must have, in whole seconds since the epoch.
    pub last_modified_secs: Option<i64>,
    /// The size it must have.
    pub size: Option<u64>,
}

impl DeleteCondition {
    /// Whether `o` meets the condition.
    pub fn holds(&self, o: &ObjectMeta) -> bool {
        self.etag
            .as_deref()
            .is_none_or(|e| e == "*" || e.trim_matches('"') == o.etag)
            && self
                .last_modified_secs
                .is_none_or(|s| s == (o.last_modified_ms / 1000) as i64)
            && self.size.is_none_or(|s| s == o.size)
    }
}

/// State of one shard of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardState {
    /// Written and acknowledged by its node.
    Ok,
    /// Not written (node failed or none available); repair must fill it.
    Missing,
}

/// Where one shard lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardLoc {
    /// Node holding (or meant to hold) the shard; `None` if no node was available.
    pub node: Option<NodeId>,
    /// Whether the shard is there.
    pub state: ShardState,
}

/// One erasure-coded run of an object's bytes: the whole body of a single PUT, or one part
/// of a multipart upload. Its shards are named by its own version.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    /// Part number (1 for a single PUT; 1..=10000 in a multipart upload; 0 for a manifest).
    pub number: u32,
    /// Version naming the part's shards on the nodes.
    pub version: ObjectVersion,
    /// Length in bytes.
    pub size: u64,
    /// MD5 of the part's bytes (hex).
    pub etag: String,
    /// Erasure parameters.
    pub ec: EcSpec,
    /// Bytes of each shard per full stripe.
    pub piece: u64,
    /// Codec that produced the parity.
    pub codec: String,
    /// One entry per shard index, `k + m` in all.
    pub shards: Vec<ShardLoc>,
    /// Checksums given with the part's upload and verified (algorithm -> base64 value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// When the part was written, ms since the epoch.
    pub written_ms: u64,
}

impl Part {
    /// Stripe geometry.
    pub fn layout(&self) -> crate::layout::Layout {
        crate::layout::Layout {
            size: self.size,
            k: self.ec.k as u64,
            piece: self.piece,
        }
    }

    /// The shards that exist and where, as a record of `bucket`/`key`.
    pub fn shard_set(&self, bucket: &str, key: &str) -> ShardSet {
        ShardSet {
            bucket: bucket.to_string(),
            key: key.to_string(),
            shards: self
                .shards
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.node.clone().map(|n| (i as u16, n)))
                .collect(),
            since_ms: now_ms(),
            owner: 0,
        }
    }

    /// Whether shard `index` of this part is recorded on `node`.
    pub fn holds(&self, index: usize, node: &NodeId) -> bool {
        self.shards.get(index).and_then(|l| l.node.as_ref()) == Some(node)
    }
}

/// A committed object: its bytes are its parts in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ObjectMeta {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// Version of the object (a single PUT: its part's version; a multipart object: the
    /// version of its manifest, taken at completion). Newer writes have larger versions.
    pub version: ObjectVersion,
    /// Length in bytes (the sum of the parts).
    pub size: u64,
    /// Entity tag as clients check it: MD5 of the body (hex) for a single PUT, `md5(part
    /// MD5s)-N` for a multipart object.
    pub etag: String,
    /// The parts, in order (none for a packed object).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Part>,
    /// A multipart object's manifest on the nodes (this metadata, for a rebuild).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Part>,
    /// The multipart upload the object was assembled from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<ObjectVersion>,
    /// Content-Type given at PUT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// `x-amz-meta-*` headers given at PUT (names lowercased, without the prefix).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_meta: BTreeMap<String, String>,
    /// Other stored headers (Content-Encoding, -Disposition, -Language, Cache-Control,
    /// Expires), by lowercase name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Checksums of the whole object given with the upload and verified (algorithm name,
    /// e.g. `crc32`, -> the base64 value; composite multipart checksums end in `-N`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// `COMPOSITE` or `FULL_OBJECT` for a multipart object's checksum.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// Commit time, ms since the epoch.
    pub last_modified_ms: u64,
    /// A small object packed into a segment: where its bytes are (its `parts` are empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packed: Option<Packed>,
    /// A segment (an object of [`SEGMENTS`]): how much of it is still referenced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fill: Option<Fill>,
    /// The object's ACL (`None`: its writer's full control).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// Its place in its key's history: the metadata's commit sequence number when it was
    /// committed into a bucket with versioning set (`None`: written while the bucket was
    /// unversioned, older than every numbered version of the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Written while versioning was suspended: its version id is `null`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub null_version: bool,
    /// A delete marker (no bytes; the key reads as deleted while it is the newest version).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete_marker: bool,
    /// The object's tags (key -> value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Object lock retention: no one removes this version before `until_ms` (GOVERNANCE:
    /// unless allowed to bypass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object lock legal hold: no one removes this version while it is on.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// The reserved bucket segments are stored in, each as an object named by its version. No
/// client can name it (bucket names start with a letter or digit), and no bucket record
/// exists for it; everything that works on objects' shards (repair, scrub reports, drain,
/// rebalance, the orphan scan, garbage collection) works on segments as on any object.
pub const SEGMENTS: &str = ".segments";

/// Where a packed object's bytes are: `size` bytes at `offset` of segment `segment`'s data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed {
    /// Version of the segment (its key in [`SEGMENTS`]).
    pub segment: ObjectVersion,
    /// Offset of the object's first byte in the segment's data.
    pub offset: u64,
    /// blake3 of the object's bytes (hex), checked by whole-object reads.
    pub blake3: String,
    /// The segment's code.
    pub ec: EcSpec,
}

/// How much of a segment's data is still referenced by committed objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    /// Objects written into the segment.
    pub objects: u64,
    /// Object bytes written into it.
    pub bytes: u64,
    /// Objects that still live in it.
    pub live_objects: u64,
    /// Their bytes.
    pub live_bytes: u64,
}

impl Fill {
    /// The fraction of the segment's object bytes still live (1 for an empty segment).
    pub fn live_fraction(&self) -> f64 {
        if self.bytes == 0 {
            return 1.0;
        }
        self.live_bytes as f64 / self.bytes as f64
    }
}

/// One object of a segment being committed: a new small object (a PUT, with its condition),
/// or a live object moved there by compaction (`cond` is [`Precondition::Moved`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PackEntry {
    /// The object as it will be committed (`packed` names the new segment).
    pub obj: ObjectMeta,
    /// Its condition, checked at the commit.
    pub cond: Precondition,
}

impl ObjectMeta {
    /// A version of `bucket`/`k` stored as `version` at `at_ms`, with no bytes and nothing
    /// else set: what [`ObjectMeta::of_part`] and delete markers are made from.
    pub fn bare(bucket: &str, k: &str, version: ObjectVersion, at_ms: u64) -> ObjectMeta {
        ObjectMeta {
            bucket: bucket.to_string(),
            key: k.to_string(),
            version,
            size: 0,
            etag: String::new(),
            parts: Vec::new(),
            manifest: None,
            upload: None,
            content_type: None,
            user_meta: Default::default(),
            headers: Default::default(),
            checksums: Default::default(),
            checksum_type: None,
            last_modified_ms: at_ms,
            packed: None,
            fill: None,
            acl: None,
            seq: None,
            null_version: false,
            delete_marker: false,
            tags: Default::default(),
            retention: None,
            legal_hold: false,
        }
    }

    /// A plain object of `bucket`/`k` whose bytes are the one stored run `part` (its version,
    /// size and ETag), written at `at_ms`, with nothing else set.
    pub fn of_part(bucket: &str, k: &str, part: Part, at_ms: u64) -> ObjectMeta {
        let (version, size, etag) = (part.version, part.size, part.etag.clone());
        ObjectMeta {
            size,
            etag,
            parts: vec![part],
            ..ObjectMeta::bare(bucket, k, version, at_ms)
        }
    }

    /// The version id clients name it by: `null` for a version written while the bucket was
    /// unversioned or suspended, else its sequence number in hex (opaque to clients).
    pub fn version_id(&self) -> String {
        match self.seq {
            Some(seq) if !self.null_version => format!("{seq:016x}"),
            _ => "null".to_string(),
        }
    }

    /// Whether this is the key's `null` version.
    pub fn is_null(&self) -> bool {
        self.seq.is_none() || self.null_version
    }

    /// Every stored run of the object: its parts, then its manifest.
    pub fn extents(&self) -> impl Iterator<Item = &Part> {
        self.parts.iter().chain(self.manifest.as_ref())
    }

    /// The stored run whose shards are named `version`.
    pub fn extent_mut(&mut self, version: ObjectVersion) -> Option<&mut Part> {
        self.parts
            .iter_mut()
            .chain(self.manifest.as_mut())
            .find(|p| p.version == version)
    }

    /// Whether shard `index` of version `version` on `node` belongs to this object.
    pub fn references(&self, version: ObjectVersion, index: usize, node: &NodeId) -> bool {
        self.extents()
            .any(|p| p.version == version && p.holds(index, node))
    }

    /// What the shards of `part` say they are in their headers.
    pub fn role_of(&self, part: &Part) -> tessera_node::ShardRole {
        use tessera_node::ShardRole;
        match self.upload {
            None => ShardRole::Object,
            Some(upload) if part.number == 0 => ShardRole::Manifest { upload },
            Some(upload) => ShardRole::Part {
                upload,
                number: part.number,
            },
        }
    }

    /// Whether the object was assembled from a multipart upload.
    pub fn is_multipart(&self) -> bool {
        self.manifest.is_some()
    }

    /// The erasure code of the object's (first) part, or of its segment.
    pub fn ec(&self) -> Option<EcSpec> {
        self.parts
            .first()
            .map(|p| p.ec)
            .or(self.packed.as_ref().map(|p| p.ec))
    }

    /// Garbage records for every stored run of the object: (record id, shards).
    pub(super) fn garbage_records(&self) -> Vec<(String, ShardSet)> {
        self.extents()
            .map(|p| (p.version.to_string(), p.shard_set(&self.bucket, &self.key)))
            .collect()
    }
}

/// A multipart upload in progress.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Upload {
    /// Bucket.
    pub bucket: String,
    /// Key the object will have.
    pub key: String,
    /// Upload id.
    pub id: ObjectVersion,
    /// When the upload was created, ms since the epoch.
    pub initiated_ms: u64,
    /// Erasure code of every part.
    pub ec: EcSpec,
    /// Content-Type of the object.
    pub content_type: Option<String>,
    /// `x-amz-meta-*` of the object.
    pub user_meta: BTreeMap<String, String>,
    /// Other stored headers of the object.
    pub headers: BTreeMap<String, String>,
    /// Checksum algorithm every part must carry (lowercase), if the client chose one.
    pub checksum_algorithm: Option<String>,
    /// `COMPOSITE` or `FULL_OBJECT`.
    pub checksum_type: Option<String>,
    /// Access key that created the upload.
    pub owner: Option<String>,
    /// The ACL the object gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<Acl>,
    /// The tags the object gets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// The retention the object gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Whether the object gets a legal hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
}

/// A set of shards of one version: an in-flight PUT, or garbage to delete.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ShardSet {
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// (shard index, node) pairs.
    pub shards: Vec<(u16, NodeId)>,
    /// When the record was written, ms since the epoch.
    pub since_ms: u64,
    /// Coordinator whose write this is (its Raft id; 0 with a single coordinator). Set by the
    /// store when the record is written, from the operation's [`Context`].
    #[serde(default)]
    pub owner: u64,
}

/// A registered node, as remembered across coordinator restarts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeRecord {
    /// Node id.
    pub id: NodeId,
    /// Shard API address.
    pub addr: String,
    /// Zone.
    pub zone: String,
}

/// A completed multipart upload, kept until `--multipart-expiry` after its completion so a
/// retried CompleteMultipartUpload (whose first answer was lost) gets the same answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletedUpload {
    /// Bucket.
    pub bucket: String,
    /// Key.
    pub key: String,
    /// The object's ETag as the completion answered it.
    pub etag: String,
    /// The parts the completion named: (part number, the part's ETag).
    pub parts: Vec<(u32, String)>,
    /// When it completed, ms since the epoch.
    pub completed_ms: u64,
    /// The object's checksums as the completion answered them (algorithm -> value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub checksums: BTreeMap<String, String>,
    /// Their type (`COMPOSITE` or `FULL_OBJECT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// The version id the object got (a versioned bucket).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// A page of a bucket's versions (see `MetaStore::list_versions`).
#[derive(Debug, Default)]
pub struct VersionListing {
    /// Versions and delete markers in (key, newest first) order, with whether each is its
    /// key's latest.
    pub versions: Vec<(ObjectMeta, bool)>,
    /// Rolled-up prefixes (with a delimiter), in order.
    pub prefixes: Vec<String>,
    /// More results follow.
    pub truncated: bool,
    /// Where the next page starts: key marker and version id marker.
    pub next: Option<(String, Option<String>)>,
}

/// What a delete did: the version it removed from the namespace (its bytes released, or
/// kept as a noncurrent version) and the delete marker it wrote, if any.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Deleted {
    /// The version that was current (or the version named), if there was one.
    pub removed: Option<ObjectMeta>,
    /// The delete marker written (versioned buckets).
    pub marker: Option<ObjectMeta>,
}

/// A page of multipart uploads (see [`MetaStore::uploads`]).
#[derive(Debug, Default)]
pub struct UploadListing {
    /// Uploads, in (key, upload id) order.
    pub uploads: Vec<Upload>,
    /// Common prefixes rolled up at the delimiter.
    pub prefixes: Vec<String>,
    /// More entries follow.
    pub truncated: bool,
    /// Where the next page starts (key marker, upload id marker), when truncated.
    pub next: Option<(String, Option<ObjectVersion>)>,
}

/// Result of a listing.
#[derive(Debug, Default)]
pub struct Listing {
    /// Objects in key order.
    pub objects: Vec<ObjectMeta>,
    /// Rolled-up prefixes (with a delimiter), in order.
    pub prefixes: Vec<String>,
    /// More results follow.
    pub truncated: bool,
    /// Where the next page starts (exclusive), if truncated.
    pub next: Option<String>,
}

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
