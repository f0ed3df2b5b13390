//! How records are keyed in the ordered store.
//!
//! Keys (one byte of kind, then `\0`-separated fields; bucket names and keys never hold NUL):
//! - `b\0{bucket}` -> [`BucketMeta`]
//! - `o\0{bucket}\0{key}` -> [`ObjectMeta`]: the key's current version (absent when the key
//!   has none, or its newest version is a delete marker)
//! - `o\0{bucket}\0{key}\0{slot}` -> [`ObjectMeta`]: a noncurrent version or a delete marker
//!   of a versioned bucket; `slot` is `u64::MAX - seq` in 16 hex digits, so a key's versions
//!   follow its current version newest first, and a plain walk of a bucket's objects meets
//!   every version (repair, scrub, drain and rebalance keep them all; listings skip them)
//! - `q\0seq` -> u64: the last commit sequence number given to a version
//! - `v\0{n, 16 hex}` -> [`super::journal::Entry`]: a version journal entry not yet written
//!   to the nodes (numbered from the same counter)
//! - `n\0{node id}` -> [`NodeRecord`]
//! - `p\0{version}` -> [`ShardSet`]: a PUT in flight (its shards may exist on nodes)
//! - `g\0{version}` -> [`ShardSet`]: shards to delete from nodes
//! - `k\0{access key id}` -> [`KeyRecord`]: an access key and its secret
//! - `u\0{bucket}\0{key}\0{upload id}` -> [`Upload`]: a multipart upload in progress
//! - `t\0{upload id}\0{part number, 5 digits}` -> [`Part`]: an uploaded part
//! - `r\0{upload id}\0{part number, 5 digits}\0{version}` -> [`Part`]: an earlier upload
//!   of a part number, replaced by a later one but still nameable by its ETag at completion
//!   (an upload retried while the first attempt was still running may finish first)
//! - `c\0{upload id}` -> [`CompletedUpload`]: a completed upload, until it expires

use tessera_node::ObjectVersion;

/// The key of a record of `kind` named by `parts`.
pub fn key(kind: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![kind, 0];
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// The key of an earlier upload (`version`) of part `number` of upload `id`.
pub fn superseded_key(id: ObjectVersion, number: u32, version: ObjectVersion) -> Vec<u8> {
    key(
        b'r',
        &[
            &id.to_string(),
            &format!("{number:05}"),
            &version.to_string(),
        ],
    )
}

/// The key of the noncurrent version or delete marker of `bucket`/`k` numbered `seq` (a
/// version from before versioning, which has no number, is slot `u64::MAX`: the oldest).
pub fn version_key(bucket: &str, k: &str, seq: Option<u64>) -> Vec<u8> {
    let slot = u64::MAX - seq.unwrap_or(0);
    key(b'o', &[bucket, k, &format!("{slot:016x}")])
}

/// The prefix of every noncurrent version and delete marker of `bucket`/`k`.
pub fn versions_prefix(bucket: &str, k: &str) -> Vec<u8> {
    let mut p = key(b'o', &[bucket, k]);
    p.push(0);
    p
}

/// The key of the commit sequence counter.
pub fn seq_key() -> Vec<u8> {
    key(b'q', &["seq"])
}

/// The key of part `number` of upload `id`.
pub fn part_key(id: ObjectVersion, number: u32) -> Vec<u8> {
    key(b't', &[&id.to_string(), &format!("{number:05}")])
}

/// Where a paged walk of the keys under `prefix` goes on: past `after` (the last key a page
/// returned) and every key that extends it by a `\0`-separated field, or from `prefix`.
pub fn resume_at(prefix: &[u8], after: Option<&[u8]>) -> Vec<u8> {
    match after {
        Some(a) => {
            let mut s = a.to_vec();
            s.extend_from_slice(&[0, 0]);
            s
        }
        None => prefix.to_vec(),
    }
}
