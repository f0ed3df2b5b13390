//! Metadata rebuild: recreates buckets and objects from the self-describing shard headers on
//! the registered nodes, for a coordinator whose metadata was lost.
//!
//! For each key the newest version with at least k distinct shards wins; shards of other
//! versions become garbage. A key whose metadata already exists with the same or a newer
//! version is left alone, so running a rebuild on a healthy coordinator changes nothing.

use crate::meta::{now_ms, ObjectMeta, ShardLoc, ShardSet, ShardState};
use crate::names::EcSpec;
use crate::state::Coordinator;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_node::{NodeId, ObjectVersion, ShardInfo};

/// Shards found on the nodes: (bucket, key) -> version -> (node, shard).
type Found = BTreeMap<(String, String), BTreeMap<ObjectVersion, Vec<(NodeId, ShardInfo)>>>;

/// What a rebuild did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RebuildReport {
    /// The rebuild has finished.
    pub done: bool,
    /// Nodes whose shards were listed.
    pub nodes: usize,
    /// Shards seen.
    pub shards: u64,
    /// Objects restored.
    pub objects: u64,
    /// Keys whose newest version had fewer than k shards (not restored).
    pub unrecoverable: Vec<String>,
}

/// Rebuilds metadata from every node that is up now.
pub async fn rebuild(c: &Arc<Coordinator>) -> Result<RebuildReport, crate::ApiError> {
    let mut report = RebuildReport::default();
    // (bucket, key) -> version -> shards
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
        let mut garbage = Vec::new();
        for (version, shards) in versions.into_iter().rev() {
            let h = shards[0].1.header.clone();
            let n = (h.k + h.m) as usize;
            let mut locs = vec![
                ShardLoc {
                    node: None,
                    state: ShardState::Missing
                };
                n
            ];
            for (node, info) in &shards {
                let i = info.header.shard_index as usize;
                if i < n && locs[i].node.is_none() {
                    locs[i] = ShardLoc {
                        node: Some(node.clone()),
                        state: ShardState::Ok,
                    };
                }
            }
            let have = locs.iter().filter(|l| l.state == ShardState::Ok).count();
            if chosen.is_none() && have >= h.k as usize {
                chosen = Some(ObjectMeta {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    version,
                    size: h.object_length,
                    etag: h.etag.clone().unwrap_or_default(),
                    ec: EcSpec { k: h.k, m: h.m },
                    piece: h.chunk_size as u64,
                    codec: h.codec.clone(),
                    shards: locs,
                    content_type: h.content_type.clone(),
                    user_meta: h.user_meta.clone(),
                    headers: h.headers.clone(),
                    checksums: Default::default(),
                    last_modified_ms: version.millis(),
                });
            } else {
                if chosen.is_none() {
                    report.unrecoverable.push(format!(
                        "{bucket}/{key} (version {version}: {have} of {} shards)",
                        h.k
                    ));
                }
                let set = ShardSet {
                    bucket: bucket.clone(),
                    key: key.clone(),
                    shards: shards
                        .iter()
                        .map(|(n, i)| (i.header.shard_index, n.clone()))
                        .collect(),
                    since_ms: now_ms(),
                };
                garbage.push((version, set));
            }
        }
        let default_ec = c.config.default_ec;
        let restored = c
            .meta(move |m| {
                let restored = match &chosen {
                    Some(obj) => m.restore_object(obj, default_ec)?,
                    None => false,
                };
                for (v, set) in &garbage {
                    m.abort_pending(&format!("{v}.rebuild"), set)?;
                }
                Ok(restored)
            })
            .await?;
        if restored {
            report.objects += 1;
        }
    }
    report.done = true;
    Ok(report)
}
