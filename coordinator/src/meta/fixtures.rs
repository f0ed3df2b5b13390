//! What the conformance suites build their cases from: buckets, objects on fixed nodes,
//! commits as the data path makes them, and the garbage and versions they leave.

use super::store::Result;
use super::{
    now_ms, BucketMeta, Fill, Metadata, ObjectMeta, PackEntry, Packed, Part, Precondition,
    ShardLoc, ShardState, SEGMENTS,
};
use crate::names::EcSpec;
use std::collections::BTreeMap;
use tessera_node::{NodeId, ObjectVersion};

pub(super) fn node(i: u8) -> NodeId {
    format!("{i:016x}").parse().expect("a valid node id")
}

pub(super) fn bucket(name: &str) -> BucketMeta {
    BucketMeta::new(
        name,
        now_ms(),
        EcSpec { k: 2, m: 1 },
        Some("owner-key".into()),
    )
}

/// A one-part object of `size` bytes at a fresh version on nodes 0..3.
pub fn object(b: &str, k: &str, size: u64) -> ObjectMeta {
    let version = ObjectVersion::new();
    let part = Part {
        number: 1,
        version,
        size,
        etag: format!("{size:032x}"),
        ec: EcSpec { k: 2, m: 1 },
        piece: 1024,
        codec: "test".into(),
        shards: (0..3)
            .map(|i| ShardLoc {
                node: Some(node(i)),
                state: ShardState::Ok,
            })
            .collect(),
        checksums: BTreeMap::new(),
        written_ms: now_ms(),
    };
    ObjectMeta::of_part(b, k, part, now_ms())
}

pub(super) async fn garbage_versions(m: &dyn Metadata) -> Vec<ObjectVersion> {
    m.garbage(10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, v, _)| v)
        .collect()
}

/// Records `obj`'s PUT in flight and commits it, as the data path does (a commit needs its
/// in-flight record); a refused commit aborts, so its shards become garbage.
pub(super) async fn put(
    m: &dyn Metadata,
    obj: ObjectMeta,
    cond: Precondition,
) -> Result<ObjectMeta> {
    let set = obj.parts[0].shard_set(&obj.bucket, &obj.key);
    m.begin_put(obj.version, set.clone()).await?;
    let out = m.commit_put(obj.clone(), cond).await;
    if out.is_err() {
        m.abort_put(obj.version, set).await?;
    }
    out
}

/// [`put`] for a part of upload `upload`.
pub(super) async fn put_part(
    m: &dyn Metadata,
    bucket: String,
    key: String,
    upload: ObjectVersion,
    part: Part,
) -> Result<()> {
    let set = part.shard_set(&bucket, &key);
    m.begin_put(part.version, set.clone()).await?;
    let out = m.commit_part(bucket, key, upload, part.clone()).await;
    if out.is_err() {
        m.abort_put(part.version, set).await?;
    }
    out
}

/// Collects every garbage record (as the collector would once the shards are gone).
pub(super) async fn clear_garbage(m: &dyn Metadata) {
    for (record, _, _) in m.garbage(10_000).await.unwrap() {
        m.update_garbage(record, None).await.unwrap();
    }
}

/// The committed version of `b`/`k`, if any.
pub(super) async fn version_of(m: &dyn Metadata, b: &str, k: &str) -> Option<ObjectVersion> {
    m.object(b.into(), k.into())
        .await
        .unwrap()
        .map(|o| o.version)
}

/// A segment of `sizes` packed objects (keys `k0`, `k1`, ... of bucket `b`, unless named in
/// `keys`): the segment's metadata and the entries to commit with it (no condition).
pub(super) fn segment(b: &str, keys: &[&str], sizes: &[u64]) -> (ObjectMeta, Vec<PackEntry>) {
    let mut seg = object(SEGMENTS, "", sizes.iter().sum::<u64>() + 100);
    seg.key = seg.version.to_string();
    let mut offset = 0;
    let entries = sizes
        .iter()
        .enumerate()
        .map(|(i, &size)| {
            let mut obj = object(b, keys.get(i).copied().unwrap_or(&format!("k{i}")), size);
            obj.parts.clear();
            obj.packed = Some(Packed {
                segment: seg.version,
                offset,
                blake3: String::new(),
                ec: EcSpec { k: 2, m: 1 },
            });
            offset += size;
            PackEntry {
                obj,
                cond: Precondition::None,
            }
        })
        .collect();
    (seg, entries)
}

pub(super) async fn commit_segment(
    m: &dyn Metadata,
    seg: &ObjectMeta,
    entries: Vec<PackEntry>,
) -> Vec<Result<ObjectMeta>> {
    let set = seg.parts[0].shard_set(SEGMENTS, &seg.key);
    m.begin_put(seg.version, set).await.unwrap();
    m.commit_segment(seg.clone(), entries).await.unwrap()
}

pub(super) async fn fill_of(m: &dyn Metadata, seg: &ObjectMeta) -> Option<Fill> {
    m.object(SEGMENTS.into(), seg.key.clone())
        .await
        .unwrap()
        .map(|s| s.fill.expect("a committed segment has a fill"))
}
