//! Metadata rebuild: recreates buckets and objects from the self-describing shard headers on
//! the registered nodes, for a coordinator whose metadata was lost.
//!
//! Every shard header says what its version is ([`ShardRole`]): a whole object, a part of a
//! multipart upload, or the manifest of a completed multipart object (the object's metadata,
//! stored as a small replicated blob when the upload completed). For each key the newest
//! object or manifest version that can be read whole wins: an object needs k distinct shards,
//! a manifest one readable copy and k shards of every part it lists. Shards of other object
//! and manifest versions become garbage, as do parts that the winner does not list and whose
//! upload is not in progress. A key whose metadata already exists with the same or a newer
//! version is left alone, so running a rebuild on a healthy coordinator changes nothing.

use super::Maintenance;
use crate::data::footer::footer;
use crate::data::pack::segment_data;
use crate::meta::settings::COMPLIANCE;
use crate::meta::{
    now_ms, Fill, ObjectMeta, Part, Retention, ShardLoc, ShardSet, ShardState, SEGMENTS,
};
use crate::names::EcSpec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_node::{NodeId, ObjectVersion, ShardInfo, ShardRole};

/// Shards of one version found on the nodes.
type Shards = Vec<(NodeId, ShardInfo)>;
/// Shards found on the nodes: (bucket, key) -> version -> shards.
type Found = BTreeMap<(String, String), BTreeMap<ObjectVersion, Shards>>;

/// What a rebuild did.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RebuildReport {
    /// The rebuild has finished.
    pub done: bool,
    /// Nodes whose shards were listed.
    pub nodes: usize,
    /// Shards seen.
    pub shards: u64,
    /// Objects restored (segments included).
    pub objects: u64,
    /// Small objects restored from the segments they were packed into.
    pub packed: u64,
    /// Keys whose newest version had fewer than k shards (not restored).
    pub unrecoverable: Vec<String>,
}

/// Where the shards of a version are, and how many distinct ones were found.
fn locations(shards: &Shards) -> (Vec<ShardLoc>, usize) {
    let h = &shards[0].1.header;
    let n = (h.k + h.m) as usize;
    let mut locs = vec![
        ShardLoc {
            node: None,
            state: ShardState::Missing
        };
        n
    ];
    for (node, info) in shards {
        let i = info.header.shard_index as usize;
        if i < n && locs[i].node.is_none() {
            locs[i] = ShardLoc {
                node: Some(node.clone()),
                state: ShardState::Ok,
            };
        }
    }
    let have = locs.iter().filter(|l| l.state == ShardState::Ok).count();
    (locs, have)
}

/// The part a version's shards describe, if k of them were found.
fn part_of(version: ObjectVersion, shards: &Shards, number: u32) -> Option<Part> {
    let h = &shards[0].1.header;
    let (locs, have) = locations(shards);
    (have >= h.k as usize).then(|| Part {
        number,
        version,
        size: h.object_length,
        etag: h.etag.clone().unwrap_or_default(),
        ec: EcSpec { k: h.k, m: h.m },
        // The piece of a full stripe (a segment's chunks are smaller than its piece).
        piece: h.stripe_size / h.k.max(1) as u64,
        codec: h.codec.clone(),
        shards: locs,
        checksums: h.checksums.clone(),
        written_ms: version.millis(),
    })
}

/// The strongest object lock retention any shard of a version carries (moves rewrite a
/// shard's header with the lock as it is then, so shards may differ): the latest date, and
/// COMPLIANCE over GOVERNANCE. A rebuild never restores a version less locked than a shard
/// says it was.
fn strongest_retention(shards: &Shards) -> Option<Retention> {
    shards
        .iter()
        .filter_map(|(_, s)| s.header.retention.clone())
        .max_by_key(|(mode, until)| (mode == COMPLIANCE, *until))
        .map(|(mode, until_ms)| Retention { mode, until_ms })
}

/// Reads a manifest's bytes from the first node that answers.
async fn read_manifest(
    c: &Maintenance,
    version: ObjectVersion,
    shards: &Shards,
) -> Option<ObjectMeta> {
    for (node, info) in shards {
        let Some(client) = c.registry.client(node) else {
            continue;
        };
        let id = info.header.shard_id();
        let len = info.header.object_length;
        match client.read(id, 0, len, c.config.shard_read_timeout).await {
            Ok(b) => match serde_json::from_slice::<ObjectMeta>(&b) {
                Ok(m) => return Some(m),
                Err(e) => tracing::warn!(%version, error = %e, "unreadable manifest"),
            },
            Err(e) => tracing::debug!(%version, error = %e, "manifest copy unreadable"),
        }
    }
    None
}

/// Rebuilds metadata from every node that is up now.
pub async fn rebuild(c: &Arc<Maintenance>) -> Result<RebuildReport, crate::error::ApiError> {
    let mut report = RebuildReport::default();
    let mut found: Found = BTreeMap::new();
    for cand in c.registry.candidates() {
        let client = c
            .registry
            .client(&cand.id)
            .expect("candidate is registered");
        report.nodes += 1;
        let mut pages = client.pages(1000);
        while let Some(page) = pages.next().await? {
            for info in page {
                report.shards += 1;
                let h = &info.header;
                found
                    .entry((h.bucket.clone(), h.key.clone()))
                    .or_default()
                    .entry(h.version)
                    .or_default()
                    .push((cand.id.clone(), info));
            }
        }
    }
    for ((bucket, key), versions) in found {
        let mut chosen: Option<ObjectMeta> = None;
        // Newest first: objects and manifests compete; parts are settled after.
        for (&version, shards) in versions.iter().rev() {
            let h = &shards[0].1.header;
            let candidate = match h.role {
                ShardRole::Part { .. } => continue,
                ShardRole::Object => part_of(version, shards, 1).map(|p| ObjectMeta {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version,
                    size: p.size,
                    etag: p.etag.clone(),
                    parts: vec![p],
                    manifest: None,
                    upload: None,
                    content_type: h.content_type.clone(),
                    user_meta: h.user_meta.clone(),
                    headers: h.headers.clone(),
                    checksums: h.checksums.clone(),
                    checksum_type: None,
                    last_modified_ms: version.millis(),
                    packed: None,
                    fill: None,
                    acl: None,
                    seq: None,
                    null_version: false,
                    delete_marker: false,
                    tags: h.tags.clone(),
                    retention: strongest_retention(shards),
                    legal_hold: shards.iter().any(|(_, s)| s.header.legal_hold),
                }),
                ShardRole::Manifest { .. } => {
                    restore_multipart(c, &bucket, &key, version, shards, &versions).await
                }
            };
            match candidate {
                Some(obj) => {
                    chosen = Some(obj);
                    break;
                }
                None => report.unrecoverable.push(format!(
                    "{bucket}/{key} (version {version}: fewer than k readable shards)"
                )),
            }
        }
        // Everything the winner does not reference is garbage, except the parts of uploads
        // still in progress.
        let mut garbage = Vec::new();
        for (&version, shards) in &versions {
            if chosen
                .as_ref()
                .is_some_and(|o| o.extents().any(|p| p.version == version))
            {
                continue;
            }
            let upload = match shards[0].1.header.role {
                ShardRole::Part { upload, .. } => Some(upload),
                _ => None,
            };
            let set = ShardSet {
                bucket: bucket.clone(),
                key: key.clone(),
                shards: shards
                    .iter()
                    .map(|(n, i)| (i.header.shard_index, n.clone()))
                    .collect(),
                since_ms: now_ms(),
                owner: 0,
            };
            garbage.push((version, upload, set));
        }
        let default_ec = c.config.default_ec;
        let restored = match chosen {
            Some(obj) if bucket == SEGMENTS => {
                report.packed += restore_segment(c, obj).await?;
                true
            }
            Some(obj) => c.meta.restore_object(obj, default_ec).await?,
            None => false,
        };
        for (v, upload, set) in garbage {
            if let Some(u) = upload {
                if c.meta.upload(bucket.clone(), key.clone(), u).await.is_ok() {
                    continue;
                }
            }
            c.meta.add_garbage(format!("{v}.rebuild"), set).await?;
        }
        if restored {
            report.objects += 1;
        }
    }
    report.done = true;
    Ok(report)
}

/// Restores segment `seg` and the objects its footer lists (each unless its key has the
/// same or a newer version); a segment none of whose objects is restored becomes garbage.
/// Returns how many objects were restored.
async fn restore_segment(
    c: &Arc<Maintenance>,
    mut seg: ObjectMeta,
) -> Result<u64, crate::error::ApiError> {
    let data = match segment_data(&c.data, &seg).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(segment = %seg.key, error = %e, "segment unreadable; its objects are not restored");
            return Ok(0);
        }
    };
    let listed = footer(&data)?;
    let objects: Vec<ObjectMeta> = listed
        .into_iter()
        .filter_map(|l| l.restore(&seg, &data))
        .collect();
    seg.fill = Some(Fill {
        objects: objects.len() as u64,
        bytes: objects.iter().map(|o| o.size).sum(),
        live_objects: 0,
        live_bytes: 0,
    });
    let default_ec = c.config.default_ec;
    let key = seg.key.clone();
    if !c.meta.restore_object(seg, default_ec).await? {
        return Ok(0);
    }
    let mut restored = 0;
    for obj in objects {
        if c.meta.restore_object(obj, default_ec).await? {
            restored += 1;
        }
    }
    if restored == 0 {
        c.meta.delete_object(SEGMENTS.into(), key).await?;
    }
    Ok(restored)
}

/// A multipart object from its manifest, with its parts' and manifest's shard locations as
/// found now; `None` if the manifest or any part cannot be read.
async fn restore_multipart(
    c: &Maintenance,
    bucket: &str,
    key: &str,
    version: ObjectVersion,
    shards: &Shards,
    versions: &BTreeMap<ObjectVersion, Shards>,
) -> Option<ObjectMeta> {
    let mut obj = read_manifest(c, version, shards).await?;
    if obj.bucket != bucket || obj.key != key {
        tracing::warn!(%version, "manifest names another object");
        return None;
    }
    // The manifest is written before its own version is known to it.
    obj.version = version;
    for p in &mut obj.parts {
        let found = part_of(p.version, versions.get(&p.version)?, p.number)?;
        p.shards = found.shards;
    }
    obj.manifest = Some(part_of(version, shards, 0)?);
    Some(obj)
}
