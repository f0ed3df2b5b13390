//! Identifiers and the self-describing shard header.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A storage node's persistent identity (kept in its data dir; survives restarts and port
/// changes). 16 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodeId(String);

impl NodeId {
    /// A fresh random id.
    pub fn random() -> Self {
        let bytes: [u8; 8] = rand_bytes();
        NodeId(hex::encode(bytes))
    }
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn rand_bytes<const N: usize>() -> [u8; N] {
    // blake3 over time, pid and a counter: unique enough for ids without another dependency.
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = blake3::Hasher::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    h.update(&now.as_nanos().to_le_bytes());
    h.update(&std::process::id().to_le_bytes());
    h.update(&COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let addr = &h as *const _ as usize;
    h.update(&addr.to_le_bytes());
    let mut out = [0u8; N];
    h.finalize_xof().fill(&mut out);
    out
}

impl TryFrom<String> for NodeId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}
impl From<NodeId> for String {
    fn from(n: NodeId) -> String {
        n.0
    }
}
impl FromStr for NodeId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            Ok(NodeId(s.to_string()))
        } else {
            Err(format!("invalid node id {s:?}"))
        }
    }
}
impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.0)
    }
}

/// One version of one object. Time-ordered: the high 48 bits are milliseconds since the
/// epoch, the low 80 bits random, so a newer write of a key has a larger version (which is
/// what metadata rebuild uses to pick the newest version).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectVersion(pub u128);

impl ObjectVersion {
    /// A fresh version for a write happening now: wall-clock milliseconds in the high bits,
    /// random low bits, and larger than every version this process made before (as a
    /// monotonic ULID generator does), so two writes of one key in the same millisecond, or
    /// after the clock stepped back, are still ordered as they were made.
    pub fn new() -> Self {
        static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let r: [u8; 10] = rand_bytes();
        let mut low = [0u8; 16];
        low[6..].copy_from_slice(&r);
        let fresh = (ms << 80) | u128::from_be_bytes(low);
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        // Within one millisecond the random part would order versions by chance: step on
        // from the last one instead (by a random amount below 2^32, so versions stay hard to
        // guess).
        let v = if fresh > *last {
            fresh
        } else {
            *last + 1 + (u128::from_be_bytes(low) & 0xffff_ffff)
        };
        *last = v;
        ObjectVersion(v)
    }
    /// Milliseconds since the epoch at which this version was created.
    pub fn millis(&self) -> u64 {
        (self.0 >> 80) as u64
    }
    /// Big-endian bytes (sort order equals numeric order).
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0.to_be_bytes()
    }
    /// The version whose [`ObjectVersion::to_bytes`] is `b`.
    pub fn from_bytes(b: [u8; 16]) -> Self {
        ObjectVersion(u128::from_be_bytes(b))
    }
}
impl Default for ObjectVersion {
    fn default() -> Self {
        Self::new()
    }
}
impl fmt::Display for ObjectVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}
impl fmt::Debug for ObjectVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{:032x}", self.0)
    }
}
impl FromStr for ObjectVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.len() != 32 {
            return Err(format!("invalid version {s:?}"));
        }
        u128::from_str_radix(s, 16)
            .map(ObjectVersion)
            .map_err(|_| format!("invalid version {s:?}"))
    }
}
impl TryFrom<String> for ObjectVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}
impl From<ObjectVersion> for String {
    fn from(v: ObjectVersion) -> String {
        v.to_string()
    }
}

/// A shard: shard `index` of object version `version`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Debug)]
pub struct ShardId {
    /// Object version the shard belongs to.
    pub version: ObjectVersion,
    /// Position in the stripe: `0..k` data, `k..k+m` parity.
    pub index: u16,
}

impl ShardId {
    /// 18-byte big-endian key: version then index.
    pub fn to_key(&self) -> [u8; 18] {
        let mut k = [0u8; 18];
        k[..16].copy_from_slice(&self.version.to_bytes());
        k[16..].copy_from_slice(&self.index.to_be_bytes());
        k
    }
    /// Inverse of [`ShardId::to_key`].
    pub fn from_key(k: &[u8]) -> Option<Self> {
        if k.len() != 18 {
            return None;
        }
        let v = u128::from_be_bytes(k[..16].try_into().ok()?);
        let i = u16::from_be_bytes(k[16..].try_into().ok()?);
        Some(ShardId {
            version: ObjectVersion(v),
            index: i,
        })
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.version, self.index)
    }
}

/// Self-describing header stored with every shard, so that coordinator metadata can be rebuilt
/// from the nodes alone.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct ShardHeader {
    /// Bucket of the object.
    pub bucket: String,
    /// Key of the object.
    pub key: String,
    /// Version of the object.
    pub version: ObjectVersion,
    /// Index of this shard in each stripe.
    pub shard_index: u16,
    /// Data shards per stripe.
    pub k: u16,
    /// Parity shards per stripe.
    pub m: u16,
    /// Object bytes per full stripe (a multiple of `k`).
    pub stripe_size: u64,
    /// Length of the whole object in bytes.
    pub object_length: u64,
    /// Erasure codec that produced the parity (recorded so a codec switch keeps old data
    /// readable).
    pub codec: String,
    /// Bytes per checksummed chunk on the node (the writer picks it; the coordinator uses the
    /// per-stripe piece size so one stripe read verifies exactly one chunk).
    pub chunk_size: u32,
    /// MD5 of the version's bytes, hex (known at the end of the upload; in the end frame).
    #[serde(default)]
    pub etag: Option<String>,
    /// Checksums of the version's bytes computed at upload (`crc32`, `sha256`, ... -> the
    /// base64 value S3 clients see), in the end frame, so a metadata rebuild restores them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub checksums: std::collections::BTreeMap<String, String>,
    /// Content-Type of the object.
    #[serde(default)]
    pub content_type: Option<String>,
    /// `x-amz-meta-*` of the object.
    #[serde(default)]
    pub user_meta: std::collections::BTreeMap<String, String>,
    /// Other stored headers of the object (Content-Encoding, Cache-Control, ...), so a
    /// metadata rebuild restores them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub headers: std::collections::BTreeMap<String, String>,
    /// What the shard's version is: a whole object, one part of a multipart upload, or the
    /// manifest of a completed multipart object.
    #[serde(default, skip_serializing_if = "ShardRole::is_object")]
    pub role: ShardRole,
    /// Object lock retention of the version when the shard was written (mode, retain-until
    /// ms since the epoch), so a metadata rebuild never restores it unlocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<(String, u64)>,
    /// Object lock legal hold of the version when the shard was written.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub legal_hold: bool,
    /// The version's tags when the shard was written.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub tags: std::collections::BTreeMap<String, String>,
}

/// What a shard's version holds, so that a metadata rebuild can tell an object from the parts
/// it is assembled of.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardRole {
    /// The whole body of a single-PUT object.
    #[default]
    Object,
    /// Part `number` of multipart upload `upload`.
    Part {
        /// Upload id.
        upload: ObjectVersion,
        /// Part number (1..=10000).
        number: u32,
    },
    /// The manifest of a completed multipart upload: the object's metadata (JSON) with the
    /// list of its parts.
    Manifest {
        /// Upload id.
        upload: ObjectVersion,
    },
}

impl ShardRole {
    /// A whole object (the default, not written to headers).
    pub fn is_object(&self) -> bool {
        *self == ShardRole::Object
    }
}

impl ShardHeader {
    /// The shard this header describes.
    pub fn shard_id(&self) -> ShardId {
        ShardId {
            version: self.version,
            index: self.shard_index,
        }
    }
}

/// A committed shard as the store reports it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct ShardInfo {
    /// The header given at write time.
    pub header: ShardHeader,
    /// Shard length in bytes.
    pub length: u64,
}

/// One shard's outcome in a batch upload (`POST /shards/batch`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum BatchOutcome {
    /// Stored and durable.
    Stored(Box<ShardInfo>),
    /// Not stored; the node's error message.
    Failed(String),
}

/// Smallest and largest accepted chunk sizes.
pub const MIN_CHUNK: u32 = 1024;
/// See [`MIN_CHUNK`].
pub const MAX_CHUNK: u32 = 8 << 20;

/// What a node tells the coordinator every heartbeat interval.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Debug)]
pub struct Heartbeat {
    /// Persistent node id.
    pub node_id: NodeId,
    /// `host:port` the node's shard API listens on.
    pub addr: String,
    /// Failure domain (rack, host, disk group) used by placement.
    pub zone: String,
    /// Configured capacity in bytes (0 = the filesystem's size).
    pub capacity: u64,
    /// Bytes of committed shards.
    pub used: u64,
    /// Bytes still available for shards.
    pub free: u64,
    /// Scrub progress.
    #[serde(default)]
    pub scrub: ScrubStats,
    /// Commits to the store's write-ahead log so far.
    #[serde(default)]
    pub log_writes: u64,
    /// Syncs of that log so far (fewer than writes when commits share syncs).
    #[serde(default)]
    pub log_syncs: u64,
    /// The node's clock when it sent the heartbeat, ms since the epoch (0: not reported):
    /// coordinators bound their operation times by the nodes' clocks.
    #[serde(default)]
    pub clock_ms: u64,
    /// The node's last heartbeat: it stopped gracefully (SIGTERM, a planned restart) and is
    /// down until its next heartbeat, without counting as failed for the repair grace until
    /// the coordinator's `--stopped-grace` has passed.
    #[serde(default)]
    pub stopping: bool,
}

/// Scrub progress, reported in every heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStats {
    /// Complete passes over all shards.
    pub passes: u64,
    /// Shards verified in all passes.
    pub shards_checked: u64,
    /// Bytes verified in all passes.
    pub bytes_checked: u64,
    /// Corrupt shards found in all passes.
    pub corrupt_found: u64,
    /// Corrupt shards found by the last complete pass.
    pub last_pass_corrupt: u64,
    /// Shards verified so far in the current pass.
    pub current_pass_checked: u64,
}

#[cfg(test)]
mod tests {
    use super::ObjectVersion;

    #[test]
    fn versions_made_in_one_millisecond_are_ordered_as_made() {
        let vs: Vec<ObjectVersion> = (0..20_000).map(|_| ObjectVersion::new()).collect();
        // Thousands of versions share a millisecond here; each is still larger than the last.
        let same_ms = vs
            .windows(2)
            .filter(|w| w[0].millis() == w[1].millis())
            .count();
        assert!(same_ms > 1000, "only {same_ms} pairs shared a millisecond");
        assert!(vs.windows(2).all(|w| w[0] < w[1]), "versions out of order");
    }
}
