//! How records are keyed in the ordered store.
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

/// The key of part `number` of upload `id`.
pub fn part_key(id: ObjectVersion, number: u32) -> Vec<u8> {
    key(b't', &[&id.to_string(), &format!("{number:05}")])
}
