//! Coordinator metadata: buckets, objects, node registrations, in-flight writes and
//! garbage, kept in an ordered key-value store ([`kv::Kv`]: RocksDB in [`rocks`], a map in
//! [`memory`]; [`conformance`] holds both to the same behaviour). Every mutation is one synced write batch taken under one lock, so a commit is
//! atomic, durable when it returns, and concurrent commits to one key serialise (last wins,
//! the loser's or the old version's shards are recorded as garbage, never leaked).
//!
//! Keys (one byte of kind, then `\0`-separated fields; bucket names and keys never hold NUL):
//! - `b\0{bucket}` -> [`BucketMeta`]
//! - `o\0{bucket}\0{key}` -> [`ObjectMeta`]
//! - `n\0{node id}` -> [`NodeRecord`]
//! - `p\0{version}` -> [`ShardSet`]: a PUT in flight (its shards may exist on nodes)
//! - `g\0{version}` -> [`ShardSet`]: shards to delete from nodes
//! - `k\0{access key id}` -> [`KeyRecord`]: an access key and its secret
//! - `u\0{bucket}\0{key}\0{upload id}` -> [`Upload`]: a multipart upload in progress
//! - `t\0{upload id}\0{part number, 5 digits}` -> [`Part`]: an uploaded part

pub mod api;
pub mod conformance;
pub mod error;
pub mod kv;
pub mod memory;
pub mod rocks;

use crate::names::EcSpec;
pub use api::{Command, Engine, Freshness, Local, Metadata, Reply};
pub use error::MetaError;
use kv::{Batch, Kv, Step};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};
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
    /// The key must exist at exactly this version (a recode replacing what it read).
    Version(ObjectVersion),
    /// The key must exist at this version, packed in segment `from` (compaction moving it).
    Moved {
        /// The object's version.
        version: ObjectVersion,
        /// The segment it is moved out of.
        from: ObjectVersion,
    },
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
    fn garbage_records(&self) -> Vec<(String, ShardSet)> {
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

/// One entry of a listing walk: a key (its name and stored value) or a common prefix.
enum Entry<'a> {
    Key(&'a str, &'a [u8]),
    Prefix(String),
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

/// What a write operation takes from outside the store: the time and who asked.
///
/// A replicated store applies every operation on every member, later and at different
/// times, so an operation must not read the clock of the member applying it: the proposer
/// stamps it with a [`Context`], and [`Context::enter`] makes [`now_ms`] and the owner of
/// new in-flight records come from that stamp while the operation runs on this thread.
/// Outside an entered context (a single coordinator), they come from the system clock and
/// owner 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Time of the operation, ms since the epoch.
    pub at_ms: u64,
    /// Raft id of the coordinator that proposed it (0: single coordinator).
    pub from: u64,
}

thread_local! {
    static CONTEXT: std::cell::Cell<Option<Context>> = const { std::cell::Cell::new(None) };
}

impl Context {
    /// A context of now, from coordinator `from`.
    pub fn now(from: u64) -> Self {
        Context {
            at_ms: system_ms(),
            from,
        }
    }

    /// Runs `f` with this context in force on this thread.
    pub fn enter<R>(self, f: impl FnOnce() -> R) -> R {
        let before = CONTEXT.with(|c| c.replace(Some(self)));
        let out = f();
        CONTEXT.with(|c| c.set(before));
        out
    }

    fn current() -> Option<Context> {
        CONTEXT.with(|c| c.get())
    }
}

fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Milliseconds since the epoch: the operation's time inside an entered [`Context`], the
/// system clock otherwise.
pub fn now_ms() -> u64 {
    Context::current().map_or_else(system_ms, |c| c.at_ms)
}

/// The coordinator an operation comes from (0 outside an entered [`Context`]).
fn proposer() -> u64 {
    Context::current().map_or(0, |c| c.from)
}

/// Fails unless `cond` holds for the committed version `current`.
pub fn check_precondition(current: Option<&ObjectMeta>, cond: &Precondition) -> Result<()> {
    let ok = match cond {
        Precondition::None => true,
        Precondition::Absent => current.is_none(),
        Precondition::ETag(e) => current.is_some_and(|o| &o.etag == e),
        Precondition::Version(v) => current.is_some_and(|o| o.version == *v),
        Precondition::Moved { version, from } => current.is_some_and(|o| {
            o.version == *version && o.packed.as_ref().is_some_and(|p| p.segment == *from)
        }),
    };
    if ok {
        Ok(())
    } else {
        Err(MetaError::PreconditionFailed)
    }
}

fn key(kind: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![kind, 0];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

type Result<T> = std::result::Result<T, MetaError>;

/// What a batch releases: the stored runs of replaced or deleted objects become garbage, and
/// a packed object's bytes become dead space in its segment (a segment left with no live
/// object becomes garbage as a whole). Segments are read once and written once per batch
/// ([`Release::finish`]), however many of their objects the batch releases.
struct Release<'a> {
    store: &'a MetaStore,
    segments: BTreeMap<ObjectVersion, Option<ObjectMeta>>,
}

impl<'a> Release<'a> {
    fn new(store: &'a MetaStore) -> Self {
        Release {
            store,
            segments: BTreeMap::new(),
        }
    }

    /// Releases `obj` (a version leaving the namespace).
    fn object(&mut self, batch: &mut Batch, obj: &ObjectMeta) -> Result<()> {
        for (record, set) in obj.garbage_records() {
            batch.put(key(b'g', &[&record]), serde_json::to_vec(&set)?);
        }
        if let Some(p) = &obj.packed {
            if let Some(seg) = self.segment(p.segment)? {
                let f = seg.fill.get_or_insert_with(Fill::default);
                f.live_objects = f.live_objects.saturating_sub(1);
                f.live_bytes = f.live_bytes.saturating_sub(obj.size);
            }
        }
        Ok(())
    }

    /// Counts one more live object of `size` bytes in segment `v`.
    fn live(&mut self, v: ObjectVersion, size: u64) -> Result<()> {
        if let Some(seg) = self.segment(v)? {
            let f = seg.fill.get_or_insert_with(Fill::default);
            f.live_objects += 1;
            f.live_bytes += size;
        }
        Ok(())
    }

    /// Segment `v` as this batch leaves it (read from the store the first time).
    fn segment(&mut self, v: ObjectVersion) -> Result<Option<&mut ObjectMeta>> {
        if !self.segments.contains_key(&v) {
            let seg = self.store.object(SEGMENTS, &v.to_string())?;
            self.segments.insert(v, seg);
        }
        Ok(self.segments.get_mut(&v).and_then(|s| s.as_mut()))
    }

    /// Writes the segments touched: updated, or garbage once nothing in them lives.
    fn finish(self, batch: &mut Batch) -> Result<()> {
        for seg in self.segments.into_values().flatten() {
            let k = key(b'o', &[SEGMENTS, &seg.key]);
            if seg.fill.is_some_and(|f| f.live_objects == 0) {
                batch.delete(k);
                for (record, set) in seg.garbage_records() {
                    batch.put(key(b'g', &[&record]), serde_json::to_vec(&set)?);
                }
            } else {
                batch.put(k, serde_json::to_vec(&seg)?);
            }
        }
        Ok(())
    }
}

/// Records `obj` as released in `batch` (see [`Release`]).
fn put_garbage(store: &MetaStore, batch: &mut Batch, obj: &ObjectMeta) -> Result<()> {
    let mut r = Release::new(store);
    r.object(batch, obj)?;
    r.finish(batch)
}

/// The key of part `number` of upload `id`.
fn part_key(id: ObjectVersion, number: u32) -> Vec<u8> {
    key(b't', &[&id.to_string(), &format!("{number:05}")])
}

/// The metadata database. All methods block (call them from `spawn_blocking`).
pub struct MetaStore {
    kv: Box<dyn Kv>,
    lock: Mutex<()>,
}

impl MetaStore {
    /// Opens or creates the RocksDB database in `dir`.
    pub fn open(dir: &Path) -> Result<Self> {
        Ok(Self::on(Box::new(rocks::RocksKv::open(dir)?)))
    }

    /// An empty store in memory (nothing survives the process).
    pub fn in_memory() -> Self {
        Self::on(Box::<memory::MemKv>::default())
    }

    /// A store on `kv`.
    pub fn on(kv: Box<dyn Kv>) -> Self {
        MetaStore {
            kv,
            lock: Mutex::new(()),
        }
    }

    fn get<T: DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>> {
        match self.kv.get(k)? {
            Some(v) => Ok(Some(serde_json::from_slice(&v)?)),
            None => Ok(None),
        }
    }

    /// Every record of `kind`, in key order.
    fn all<T: DeserializeOwned>(&self, kind: u8) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.scan(&key(kind, &[]), |_, v: T| {
            out.push(v);
            true
        })?;
        Ok(out)
    }

    /// Calls `f` with each entry under `prefix` (the key without the prefix, the decoded
    /// value) until it returns false.
    fn scan<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], T) -> bool,
    ) -> Result<()> {
        self.scan_from(prefix, prefix, |k, v| Ok(f(k, v)))
    }

    /// [`MetaStore::scan`] starting at `from` (at or after `prefix`).
    fn scan_from<T: DeserializeOwned>(
        &self,
        prefix: &[u8],
        from: &[u8],
        mut f: impl FnMut(&[u8], T) -> Result<bool>,
    ) -> Result<()> {
        self.kv.walk(from, &mut |k, v| {
            if !k.starts_with(prefix) || !f(&k[prefix.len()..], serde_json::from_slice(v)?)? {
                return Ok(Step::Stop);
            }
            Ok(Step::Next)
        })
    }

    /// Applies `batch`; when this returns, the change survives a crash of the coordinator or
    /// host. Concurrent writers share syncs (group commit).
    fn write(&self, batch: Batch) -> Result<()> {
        self.kv.apply(batch)?;
        self.kv.sync()
    }

    /// [`MetaStore::write`] for a read-modify-write under the metadata lock: the batch is
    /// applied under the lock, which is released before waiting for the sync so that other
    /// commits can join it.
    fn write_locked(&self, batch: Batch, guard: MutexGuard<'_, ()>) -> Result<()> {
        self.kv.apply(batch)?;
        drop(guard);
        self.kv.sync()
    }

    // ----- buckets -----

    /// Creates a bucket; returns false (and changes nothing) if it exists.
    pub fn create_bucket(&self, b: &BucketMeta) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        let k = key(b'b', &[&b.name]);
        if self.kv.get(&k)?.is_some() {
            return Ok(false);
        }
        let mut batch = Batch::default();
        batch.put(k, serde_json::to_vec(b)?);
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
        if self.bucket(name)?.is_none() {
            return Err(MetaError::NoSuchBucket(name.into()));
        }
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

    // ----- objects -----

    /// The committed version of a key, if any.
    pub fn object(&self, bucket: &str, k: &str) -> Result<Option<ObjectMeta>> {
        self.get(&key(b'o', &[bucket, k]))
    }

    /// [`MetaStore::object`], after checking that the bucket exists (NoSuchBucket): what a
    /// GET or HEAD looks up, in one step.
    pub fn lookup(&self, bucket: &str, k: &str) -> Result<Option<ObjectMeta>> {
        if self.bucket(bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket(bucket.into()));
        }
        self.object(bucket, k)
    }

    /// Records a PUT in flight before any shard is written, so a coordinator crash leaves a
    /// record of shards to collect.
    pub fn begin_put(&self, version: ObjectVersion, set: &ShardSet) -> Result<()> {
        self.begin_pending(&version.to_string(), set)
    }

    /// Records shard writes in flight under `record` (`{version}` for a PUT,
    /// `{version}.{suffix}` for a repair).
    ///
    /// Not synced: this saves one fsync per PUT. If a crash loses the record, the shards the
    /// nodes committed for it are unreferenced and the orphan scan ([`crate::maintenance::gc::orphan_scan`])
    /// deletes them; the record's job before that is only to keep the orphan scan away from a
    /// write still in flight, and a live process always sees its own unsynced writes.
    pub fn begin_pending(&self, record: &str, set: &ShardSet) -> Result<()> {
        let set = ShardSet {
            owner: proposer(),
            ..set.clone()
        };
        let mut batch = Batch::default();
        batch.put(key(b'p', &[record]), serde_json::to_vec(&set)?);
        self.kv.apply(batch)
    }

    /// Fails with [`MetaError::Fenced`] unless the in-flight record `record` exists: a
    /// write whose record was expired (its coordinator's lease ran out, or a restart) has had
    /// its shards handed to garbage collection and must not commit.
    fn check_pending(&self, record: &str) -> Result<()> {
        if self.has_pending(record)? {
            return Ok(());
        }
        Err(MetaError::Fenced(format!(
            "the write's in-flight record {record} is gone (expired); its shards are garbage"
        )))
    }

    /// Whether the in-flight record `record` exists.
    fn has_pending(&self, record: &str) -> Result<bool> {
        Ok(self.kv.get(&key(b'p', &[record]))?.is_some())
    }

    /// Versions with a write in flight (PUT or repair).
    pub fn pending_versions(&self) -> Result<std::collections::HashSet<ObjectVersion>> {
        let mut out = std::collections::HashSet::new();
        self.scan(&key(b'p', &[]), |id, _: serde_json::Value| {
            if let Ok(v) = String::from_utf8_lossy(id)
                .split('.')
                .next()
                .unwrap_or("")
                .parse()
            {
                out.insert(v);
            }
            true
        })?;
        Ok(out)
    }

    /// The commit point of a PUT: the object becomes visible, the in-flight record goes, and
    /// the version it replaces becomes garbage, in one synced batch.
    ///
    /// `cond` is checked under the same lock as the commit, so of two conditional writers
    /// only one can succeed; the other gets [`MetaError::PreconditionFailed`] and its shards
    /// become garbage through its drop guard.
    pub fn commit_put(&self, obj: &ObjectMeta, cond: &Precondition) -> Result<Option<ObjectMeta>> {
        let guard = self.lock.lock().unwrap();
        if self.bucket(&obj.bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket(obj.bucket.clone()));
        }
        self.check_pending(&obj.version.to_string())?;
        let old = self.object(&obj.bucket, &obj.key)?;
        check_precondition(old.as_ref(), cond)?;
        let mut batch = Batch::default();
        batch.put(
            key(b'o', &[&obj.bucket, &obj.key]),
            serde_json::to_vec(obj)?,
        );
        // Every stored run's in-flight record: a single PUT has one (its version); a
        // recoded multipart object one per part and its manifest.
        batch.delete(key(b'p', &[&obj.version.to_string()]));
        for p in obj.extents() {
            batch.delete(key(b'p', &[&p.version.to_string()]));
        }
        if let Some(old) = &old {
            put_garbage(self, &mut batch, old)?;
        }
        self.write_locked(batch, guard)?;
        Ok(old)
    }

    /// The commit point of a segment of packed small objects: the segment becomes a committed
    /// object of [`SEGMENTS`] (its in-flight record goes), and each entry whose bucket exists
    /// and whose condition holds is committed as a PUT would be, in order (a key written
    /// twice in one segment: the later entry wins), in one synced batch. Returns one outcome
    /// per entry: the version it replaced, or why it did not commit (its bytes are dead space
    /// in the segment). A segment none of whose entries committed is garbage at once.
    pub fn commit_segment(
        &self,
        seg: &ObjectMeta,
        entries: &[PackEntry],
    ) -> Result<Vec<Result<Option<ObjectMeta>>>> {
        let guard = self.lock.lock().unwrap();
        let record = seg.version.to_string();
        self.check_pending(&record)?;
        let mut batch = Batch::default();
        batch.delete(key(b'p', &[&record]));
        let mut release = Release::new(self);
        let mut seg = seg.clone();
        seg.fill = Some(Fill {
            objects: entries.len() as u64,
            bytes: entries.iter().map(|e| e.obj.size).sum(),
            live_objects: 0,
            live_bytes: 0,
        });
        release.segments.insert(seg.version, Some(seg.clone()));
        let mut written: BTreeMap<(String, String), ObjectMeta> = BTreeMap::new();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let (b, k) = (e.obj.bucket.clone(), e.obj.key.clone());
            if self.bucket(&b)?.is_none() {
                out.push(Err(MetaError::NoSuchBucket(b)));
                continue;
            }
            let current = match written.get(&(b.clone(), k.clone())) {
                Some(o) => Some(o.clone()),
                None => self.object(&b, &k)?,
            };
            if let Err(err) = check_precondition(current.as_ref(), &e.cond) {
                out.push(Err(err));
                continue;
            }
            release.live(seg.version, e.obj.size)?;
            if let Some(old) = &current {
                release.object(&mut batch, old)?;
            }
            batch.put(key(b'o', &[&b, &k]), serde_json::to_vec(&e.obj)?);
            written.insert((b, k), e.obj.clone());
            out.push(Ok(current));
        }
        release.finish(&mut batch)?;
        self.write_locked(batch, guard)?;
        Ok(out)
    }

    /// A PUT that will not commit: its shards become garbage.
    pub fn abort_put(&self, version: ObjectVersion, set: &ShardSet) -> Result<()> {
        self.abort_pending(&version.to_string(), set)
    }

    /// Turns the in-flight record `record` into garbage (shards `set`). Nothing happens if
    /// the record is gone: the write committed (an answer lost on the way) or the record
    /// already expired into garbage.
    pub fn abort_pending(&self, record: &str, set: &ShardSet) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        if !self.has_pending(record)? {
            return Ok(());
        }
        let mut batch = Batch::default();
        batch.delete(key(b'p', &[record]));
        batch.put(key(b'g', &[record]), serde_json::to_vec(set)?);
        self.write_locked(batch, guard)
    }

    /// Records shards `set` as garbage under `record` (shards found on nodes that no
    /// metadata names, e.g. by a metadata rebuild).
    pub fn add_garbage(&self, record: &str, set: &ShardSet) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(key(b'g', &[record]), serde_json::to_vec(set)?);
        self.write(batch)
    }

    /// The commit point of a repair: if `version` still names a part (or the manifest) of the
    /// committed version of the key, shard `i` of it moves to node `n` for every `(i, n)` in `moved` (state ok), the copies they
    /// replace become garbage, and the in-flight record goes, in one synced batch. If the object
    /// was overwritten or deleted meanwhile, the new shards become garbage instead and `false`
    /// is returned: a repair never resurrects or mixes versions.
    pub fn commit_repair(
        &self,
        record: &str,
        set: &ShardSet,
        version: ObjectVersion,
        moved: &[(u16, NodeId)],
    ) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        self.check_pending(record)?;
        let mut batch = Batch::default();
        batch.delete(key(b'p', &[record]));
        let mut current = self.object(&set.bucket, &set.key)?;
        let Some(part) = current.as_mut().and_then(|o| o.extent_mut(version)) else {
            batch.put(key(b'g', &[record]), serde_json::to_vec(set)?);
            self.write_locked(batch, guard)?;
            return Ok(false);
        };
        let mut replaced = Vec::new();
        for (i, node) in moved {
            let loc = &mut part.shards[*i as usize];
            if let Some(old) = loc.node.replace(node.clone()) {
                if &old != node {
                    replaced.push((*i, old));
                }
            }
            loc.state = ShardState::Ok;
        }
        // Targets that did not make it are garbage too.
        let mut garbage: Vec<(u16, NodeId)> = set
            .shards
            .iter()
            .filter(|e| !moved.contains(e))
            .cloned()
            .collect();
        garbage.extend(replaced);
        if !garbage.is_empty() {
            let g = ShardSet {
                shards: garbage,
                since_ms: now_ms(),
                ..set.clone()
            };
            batch.put(key(b'g', &[record]), serde_json::to_vec(&g)?);
        }
        let obj = current.expect("the part was found in it");
        batch.put(
            key(b'o', &[&obj.bucket, &obj.key]),
            serde_json::to_vec(&obj)?,
        );
        self.write_locked(batch, guard)?;
        Ok(true)
    }

    /// Restores an object found by a metadata rebuild (creating its bucket with `default_ec`
    /// if needed), unless the key already has this or a newer version. Returns whether it
    /// was written.
    pub fn restore_object(&self, obj: &ObjectMeta, default_ec: EcSpec) -> Result<bool> {
        let guard = self.lock.lock().unwrap();
        let current = self.object(&obj.bucket, &obj.key)?;
        if current.as_ref().is_some_and(|o| o.version >= obj.version) {
            return Ok(false);
        }
        let mut batch = Batch::default();
        if obj.bucket != SEGMENTS && self.bucket(&obj.bucket)?.is_none() {
            let b = BucketMeta {
                name: obj.bucket.clone(),
                created_ms: now_ms(),
                ec: default_ec,
                owner: None,
                grants: BTreeMap::new(),
                replicate_below: None,
            };
            batch.put(key(b'b', &[&obj.bucket]), serde_json::to_vec(&b)?);
        }
        let mut release = Release::new(self);
        if let Some(p) = &obj.packed {
            release.live(p.segment, obj.size)?;
        }
        if let Some(old) = current.as_ref().filter(|o| o.packed.is_some()) {
            release.object(&mut batch, old)?;
        }
        release.finish(&mut batch)?;
        batch.put(
            key(b'o', &[&obj.bucket, &obj.key]),
            serde_json::to_vec(obj)?,
        );
        self.write_locked(batch, guard)?;
        Ok(true)
    }

    /// Every committed object, in (bucket, key) order, after `after`, at most `limit`.
    pub fn objects_after(
        &self,
        after: Option<(&str, &str)>,
        limit: usize,
    ) -> Result<Vec<ObjectMeta>> {
        let prefix = key(b'o', &[]);
        let start = match after {
            Some((b, k)) => {
                let mut s = key(b'o', &[b, k]);
                s.push(0);
                s
            }
            None => prefix.clone(),
        };
        let mut out = Vec::new();
        self.scan_from(&prefix, &start, |_, o| {
            if out.len() >= limit {
                return Ok(false);
            }
            out.push(o);
            Ok(true)
        })?;
        Ok(out)
    }

    /// Deletes a key's committed version (no-op if absent); its shards become garbage.
    pub fn delete_object(&self, bucket: &str, k: &str) -> Result<Option<ObjectMeta>> {
        let guard = self.lock.lock().unwrap();
        let Some(old) = self.object(bucket, k)? else {
            return Ok(None);
        };
        let mut batch = Batch::default();
        batch.delete(key(b'o', &[bucket, k]));
        put_garbage(self, &mut batch, &old)?;
        self.write_locked(batch, guard)?;
        Ok(Some(old))
    }

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
            after.push(0); // just past `s`
            from = from.max(after);
        }
        let mut out = Listing::default();
        out.truncated = self.walk_listing(&base, &from, prefix, delimiter, max, |e| {
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
    fn walk_listing(
        &self,
        base: &[u8],
        from: &[u8],
        prefix: &str,
        delimiter: Option<&str>,
        max: usize,
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

    // ----- multipart uploads -----

    /// Records a new upload; fails if its bucket does not exist.
    pub fn create_upload(&self, u: &Upload) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        if self.bucket(&u.bucket)?.is_none() {
            return Err(MetaError::NoSuchBucket(u.bucket.clone()));
        }
        let mut batch = Batch::default();
        batch.put(
            key(b'u', &[&u.bucket, &u.key, &u.id.to_string()]),
            serde_json::to_vec(u)?,
        );
        self.write_locked(batch, guard)
    }

    /// An upload in progress, or [`MetaError::NoSuchUpload`].
    pub fn upload(&self, bucket: &str, k: &str, id: ObjectVersion) -> Result<Upload> {
        self.get(&key(b'u', &[bucket, k, &id.to_string()]))?
            .ok_or_else(|| MetaError::NoSuchUpload(id.to_string()))
    }

    /// Uploads of `bucket` whose key starts with `prefix`, in (key, upload id) order, after
    /// `(key_marker, id_marker)`, rolled up at `delimiter` into common prefixes (one entry
    /// each, whatever the number of uploads under it), at most `max` entries (uploads plus
    /// prefixes). A key marker that is a common prefix (ends with the delimiter) resumes past
    /// everything under it.
    pub fn uploads(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<(&str, Option<ObjectVersion>)>,
        max: usize,
    ) -> Result<UploadListing> {
        let delimiter = delimiter.filter(|d| !d.is_empty());
        let mut base = key(b'u', &[bucket]);
        base.push(0);
        let mut from = base.clone();
        from.extend_from_slice(prefix.as_bytes());
        if let Some((k, id)) = after {
            let mut a = base.clone();
            a.extend_from_slice(k.as_bytes());
            match id {
                Some(id) => {
                    a.push(0);
                    a.extend_from_slice(id.to_string().as_bytes());
                    a.push(0);
                }
                // A common prefix: past every key under it (0xFF is never in UTF-8).
                None if delimiter.is_some_and(|d| k.ends_with(d)) => a.push(0xFF),
                // Past every upload of the key.
                None => {
                    a.push(0);
                    a.push(0xFF);
                }
            }
            from = from.max(a);
        }
        let mut out = UploadListing::default();
        out.truncated = self.walk_listing(&base, &from, prefix, delimiter, max, |e| {
            match e {
                Entry::Prefix(cp) => {
                    out.next = Some((cp.clone(), None));
                    out.prefixes.push(cp);
                }
                Entry::Key(_, v) => {
                    let u: Upload = serde_json::from_slice(v)?;
                    out.next = Some((u.key.clone(), Some(u.id)));
                    out.uploads.push(u);
                }
            }
            Ok(())
        })?;
        if !out.truncated {
            out.next = None;
        }
        Ok(out)
    }

    /// Every part of upload `id`, in part number order.
    pub fn upload_parts(&self, id: ObjectVersion) -> Result<Vec<Part>> {
        let mut prefix = key(b't', &[&id.to_string()]);
        prefix.push(0);
        let mut out = Vec::new();
        self.scan(&prefix, |_, p: Part| {
            out.push(p);
            true
        })?;
        Ok(out)
    }

    /// The commit point of an uploaded part: it joins the upload (replacing a part of the same
    /// number, which becomes garbage) and its in-flight record goes, in one synced batch.
    /// Fails with [`MetaError::NoSuchUpload`] if the upload was completed or aborted meanwhile.
    pub fn commit_part(
        &self,
        bucket: &str,
        k: &str,
        upload: ObjectVersion,
        part: &Part,
    ) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        self.upload(bucket, k, upload)?;
        self.check_pending(&part.version.to_string())?;
        let pk = part_key(upload, part.number);
        let mut batch = Batch::default();
        if let Some(old) = self.get::<Part>(&pk)? {
            batch.put(
                key(b'g', &[&old.version.to_string()]),
                serde_json::to_vec(&old.shard_set(bucket, k))?,
            );
        }
        batch.put(pk, serde_json::to_vec(part)?);
        batch.delete(key(b'p', &[&part.version.to_string()]));
        self.write_locked(batch, guard)
    }

    /// Removes upload `u` and its part records in `batch`; every part not in `keep` becomes
    /// garbage.
    fn drop_upload(&self, batch: &mut Batch, u: &Upload, keep: &[ObjectVersion]) -> Result<()> {
        batch.delete(key(b'u', &[&u.bucket, &u.key, &u.id.to_string()]));
        for p in self.upload_parts(u.id)? {
            batch.delete(part_key(u.id, p.number));
            if !keep.contains(&p.version) {
                batch.put(
                    key(b'g', &[&p.version.to_string()]),
                    serde_json::to_vec(&p.shard_set(&u.bucket, &u.key))?,
                );
            }
        }
        Ok(())
    }

    /// Aborts an upload: it and its parts go, the parts' shards become garbage.
    pub fn abort_upload(&self, bucket: &str, k: &str, id: ObjectVersion) -> Result<()> {
        let guard = self.lock.lock().unwrap();
        let u = self.upload(bucket, k, id)?;
        let mut batch = Batch::default();
        self.drop_upload(&mut batch, &u, &[])?;
        self.write_locked(batch, guard)
    }

    /// The commit point of a multipart upload: `obj` (assembled by the caller from a snapshot
    /// of the upload's parts) becomes the key's committed version if `cond` holds and every
    /// part it names is still the upload's part of that number. The upload and its part
    /// records go; parts left out, the version replaced and the manifest's in-flight record
    /// are settled in the same synced batch.
    pub fn complete_upload(
        &self,
        obj: &ObjectMeta,
        upload: ObjectVersion,
        cond: &Precondition,
    ) -> Result<Option<ObjectMeta>> {
        let guard = self.lock.lock().unwrap();
        let u = self.upload(&obj.bucket, &obj.key, upload)?;
        if let Some(m) = &obj.manifest {
            self.check_pending(&m.version.to_string())?;
        }
        for p in &obj.parts {
            let current: Option<Part> = self.get(&part_key(upload, p.number))?;
            if current.as_ref().map(|c| c.version) != Some(p.version) {
                return Err(MetaError::InvalidPart(format!(
                    "part {} changed while the upload was being completed",
                    p.number
                )));
            }
        }
        let old = self.object(&obj.bucket, &obj.key)?;
        check_precondition(old.as_ref(), cond)?;
        let mut batch = Batch::default();
        let keep: Vec<ObjectVersion> = obj.parts.iter().map(|p| p.version).collect();
        self.drop_upload(&mut batch, &u, &keep)?;
        batch.put(
            key(b'o', &[&obj.bucket, &obj.key]),
            serde_json::to_vec(obj)?,
        );
        if let Some(m) = &obj.manifest {
            batch.delete(key(b'p', &[&m.version.to_string()]));
        }
        if let Some(old) = &old {
            put_garbage(self, &mut batch, old)?;
        }
        self.write_locked(batch, guard)?;
        Ok(old)
    }

    /// Uploads created before `before_ms` (at most `limit`), for expiry.
    pub fn uploads_older_than(&self, before_ms: u64, limit: usize) -> Result<Vec<Upload>> {
        let mut out = Vec::new();
        self.scan(&key(b'u', &[]), |_, u: Upload| {
            if u.initiated_ms < before_ms {
                out.push(u);
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Whether shard `index` of `version` on `node` is held by upload `upload`'s parts.
    pub fn upload_references(
        &self,
        upload: ObjectVersion,
        version: ObjectVersion,
        index: usize,
        node: &NodeId,
    ) -> Result<bool> {
        Ok(self
            .upload_parts(upload)?
            .iter()
            .any(|p| p.version == version && p.holds(index, node)))
    }

    // ----- access keys -----

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

    // ----- nodes -----

    /// Remembers a node (idempotent).
    pub fn put_node(&self, n: &NodeRecord) -> Result<()> {
        let mut batch = Batch::default();
        batch.put(key(b'n', &[n.id.as_str()]), serde_json::to_vec(n)?);
        self.write(batch)
    }

    /// All remembered nodes.
    pub fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.all(b'n')
    }

    /// Sets (`Some`) or clears a node's lifecycle state.
    pub fn set_node_state(&self, node: &NodeId, state: Option<&str>) -> Result<()> {
        let mut batch = Batch::default();
        let k = key(b'd', &[node.as_str()]);
        match state {
            Some(s) => batch.put(k, serde_json::to_vec(s)?),
            None => batch.delete(k),
        }
        self.write(batch)
    }

    /// Nodes with a lifecycle state.
    pub fn node_states(&self) -> Result<BTreeMap<NodeId, String>> {
        let mut out = BTreeMap::new();
        self.scan(&key(b'd', &[]), |id, s: String| {
            if let Ok(id) = String::from_utf8_lossy(id).parse() {
                out.insert(id, s);
            }
            true
        })?;
        Ok(out)
    }

    /// Whether an object (any part), an upload's part or an in-flight write places a shard on
    /// `node`.
    pub fn references_node(&self, node: &NodeId) -> Result<bool> {
        let mut found = false;
        let on = |shards: &[ShardLoc]| shards.iter().any(|s| s.node.as_ref() == Some(node));
        self.scan(&key(b'o', &[]), |_, o: ObjectMeta| {
            found = o.extents().any(|p| on(&p.shards));
            !found
        })?;
        if !found {
            self.scan(&key(b't', &[]), |_, p: Part| {
                found = on(&p.shards);
                !found
            })?;
        }
        if !found {
            self.scan(&key(b'p', &[]), |_, s: ShardSet| {
                found = s.shards.iter().any(|(_, n)| n == node);
                !found
            })?;
        }
        Ok(found)
    }

    /// Forgets `node`: its registration and garbage entries go, its state becomes `removed`
    /// (so its heartbeats are refused from now on); returns the garbage entries dropped.
    pub fn remove_node(&self, node: &NodeId) -> Result<usize> {
        let guard = self.lock.lock().unwrap();
        let mut batch = Batch::default();
        batch.delete(key(b'n', &[node.as_str()]));
        batch.put(key(b'd', &[node.as_str()]), serde_json::to_vec("removed")?);
        let mut dropped = 0;
        let mut updates = Vec::new();
        self.scan(&key(b'g', &[]), |id, mut s: ShardSet| {
            let before = s.shards.len();
            s.shards.retain(|(_, n)| n != node);
            if s.shards.len() != before {
                dropped += before - s.shards.len();
                updates.push((String::from_utf8_lossy(id).to_string(), s));
            }
            true
        })?;
        for (id, s) in updates {
            let k = key(b'g', &[&id]);
            if s.shards.is_empty() {
                batch.delete(k);
            } else {
                batch.put(k, serde_json::to_vec(&s)?);
            }
        }
        self.write_locked(batch, guard)?;
        Ok(dropped)
    }

    // ----- maintenance jobs -----

    /// Stores (`Some`) or removes maintenance job `name`'s description.
    pub fn set_job(&self, name: &str, spec: Option<&serde_json::Value>) -> Result<()> {
        let mut batch = Batch::default();
        let k = key(b'j', &[name]);
        match spec {
            Some(s) => batch.put(k, serde_json::to_vec(s)?),
            None => batch.delete(k),
        }
        self.write(batch)
    }

    /// Maintenance jobs by name.
    pub fn jobs(&self) -> Result<BTreeMap<String, serde_json::Value>> {
        let mut out = BTreeMap::new();
        self.scan(&key(b'j', &[]), |name, v: serde_json::Value| {
            out.insert(String::from_utf8_lossy(name).to_string(), v);
            true
        })?;
        Ok(out)
    }

    /// Changes the code new objects of `bucket` get.
    pub fn set_bucket_ec(&self, bucket: &str, ec: EcSpec) -> Result<BucketMeta> {
        let guard = self.lock.lock().unwrap();
        let mut b = self
            .bucket(bucket)?
            .ok_or_else(|| MetaError::NoSuchBucket(bucket.into()))?;
        b.ec = ec;
        let mut batch = Batch::default();
        batch.put(key(b'b', &[bucket]), serde_json::to_vec(&b)?);
        self.write_locked(batch, guard)?;
        Ok(b)
    }

    // ----- in-flight writes and garbage -----

    /// Turns the in-flight records of coordinator `owner` (every one, with `None`) written
    /// before `before_ms` into garbage: that coordinator restarted, or its lease expired, so
    /// none of those writes is still going to commit (and if its process is in fact alive,
    /// its commit is now refused with [`MetaError::Fenced`]). Returns how many.
    pub fn expire_pending(&self, owner: Option<u64>, before_ms: u64) -> Result<usize> {
        let guard = self.lock.lock().unwrap();
        let mut batch = Batch::default();
        let mut n = 0;
        self.scan(&key(b'p', &[]), |v, s: ShardSet| {
            if owner.is_some_and(|o| o != s.owner) || s.since_ms >= before_ms {
                return true;
            }
            let version = String::from_utf8_lossy(v).to_string();
            batch.delete(key(b'p', &[&version]));
            batch.put(key(b'g', &[&version]), serde_json::to_vec(&s).unwrap());
            n += 1;
            true
        })?;
        if n > 0 {
            self.write_locked(batch, guard)?;
        }
        Ok(n)
    }

    /// Owners of in-flight records, with how many each has.
    pub fn pending_owners(&self) -> Result<BTreeMap<u64, usize>> {
        let mut out = BTreeMap::new();
        self.scan(&key(b'p', &[]), |_, s: ShardSet| {
            *out.entry(s.owner).or_default() += 1;
            true
        })?;
        Ok(out)
    }

    /// Up to `limit` garbage records: (record id, version, shards).
    pub fn garbage(&self, limit: usize) -> Result<Vec<(String, ObjectVersion, ShardSet)>> {
        let mut out = Vec::new();
        self.scan(&key(b'g', &[]), |id, s: ShardSet| {
            let id = String::from_utf8_lossy(id).to_string();
            if let Ok(v) = id.split('.').next().unwrap_or("").parse() {
                out.push((id, v, s));
            }
            out.len() < limit
        })?;
        Ok(out)
    }

    /// Replaces (or, if `rest` is empty, removes) a garbage record after some deletions.
    pub fn update_garbage(&self, record: &str, rest: Option<&ShardSet>) -> Result<()> {
        let mut batch = Batch::default();
        let k = key(b'g', &[record]);
        match rest {
            Some(s) if !s.shards.is_empty() => batch.put(k, serde_json::to_vec(s)?),
            _ => batch.delete(k),
        }
        self.write(batch)
    }

    /// The storage engine's stall and compaction figures (see [`Kv::engine_gauges`]).
    pub fn engine_gauges(&self) -> Vec<(String, u64)> {
        self.kv
            .engine_gauges()
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect()
    }

    /// Number of in-flight and garbage records (for status and tests).
    pub fn pending_and_garbage(&self) -> Result<(usize, usize)> {
        let (mut p, mut g) = (0, 0);
        self.scan(&key(b'p', &[]), |_, _: serde_json::Value| {
            p += 1;
            true
        })?;
        self.scan(&key(b'g', &[]), |_, _: serde_json::Value| {
            g += 1;
            true
        })?;
        Ok((p, g))
    }
}
