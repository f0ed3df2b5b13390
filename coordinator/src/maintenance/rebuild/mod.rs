//! Metadata rebuild: recreates buckets and objects from the self-describing shard headers on
//! the registered nodes, for a coordinator whose metadata was lost.
//!
//! Every shard header says what its version is ([`ShardRole`]): a whole object, a part of a
//! multipart upload, or the manifest of a completed multipart object (the object's metadata,
//! stored as a small replicated blob when the upload completed). The version journal
//! (objects of the reserved bucket `.journal`, see `meta/journal.rs`) is read first: it says
//! which buckets are versioned and, for their keys, each version's number (its id), `null`
//! mark, the delete markers and the versions deleted for good ([`history`]). Segments come
//! next: their footers give back the small objects packed in them. Then each key: in a
//! versioned bucket every version the journal numbers (and those it had not yet written out)
//! comes back in commit order; elsewhere the newest version that can be read whole wins (an
//! object needs k distinct shards, a manifest one readable copy and k shards of every part
//! it lists). Stored versions no restored version references become garbage, except parts
//! of uploads still in progress. A key whose metadata already exists is left alone, so
//! running a rebuild on a healthy coordinator changes nothing.

mod history;
mod scratch;

use super::Maintenance;
use crate::data::footer::footer;
use crate::data::packed_read::segment_data;
use crate::error::ApiError;
use crate::meta::journal::{is_reserved, JournalEntry, RestoredKey, JOURNAL};
use crate::meta::settings::COMPLIANCE;
use crate::meta::{
    now_ms, Fill, ObjectMeta, Part, Retention, ShardLoc, ShardSet, ShardState, SEGMENTS,
};
use crate::names::EcSpec;
use history::History;
use scratch::{Group, Scratch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tessera_node::{NodeId, ObjectVersion, ShardInfo, ShardRole};

/// Shards of one version found on the nodes.
type Shards = Vec<(NodeId, ShardInfo)>;

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
    /// How long the rebuild took, from listing the nodes' shards to the last restore (not
    /// counting the wait for nodes to register first).
    #[serde(default)]
    pub elapsed_ms: u64,
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

/// Rebuilds metadata from every node that is up now: the version journal first (what it
/// says of versioned buckets' histories), then the segments (the small objects packed in
/// them), then every key. What the nodes list goes to a [`Scratch`] space on disk first, so
/// memory holds one page of it at a time whatever the number of objects.
pub async fn rebuild(c: &Arc<Maintenance>) -> Result<RebuildReport, ApiError> {
    let started = std::time::Instant::now();
    let mut report = RebuildReport::default();
    let w = c.workers.get_or_add(
        "rebuild",
        "restores the metadata from the nodes' shards (--rebuild-metadata)",
    );
    let scratch = Scratch::open(&c.config.data_dir.join("rebuild-scratch")).await?;
    // Versions seen with their first shard (an estimate of the work, for progress).
    let (mut segment_versions, mut key_versions) = (0u64, 0u64);
    w.begin("listing the nodes' shards", 0);
    for cand in c.registry.candidates() {
        let client = c
            .registry
            .client(&cand.id)
            .expect("candidate is registered");
        report.nodes += 1;
        let mut pages = client.pages(1000);
        while let Some(page) = pages.next().await? {
            report.shards += page.len() as u64;
            w.advance(page.len() as u64, 0);
            for info in page.iter().filter(|i| i.header.shard_index == 0) {
                match info.header.bucket == SEGMENTS {
                    true => segment_versions += 1,
                    false => key_versions += 1,
                }
            }
            scratch.add_shards(&cand.id, page).await?;
        }
    }
    let mut entries = Vec::new();
    let mut walk = scratch.walk(Some(JOURNAL));
    while let Some(g) = walk.next().await? {
        entries.extend(restore_journal(c, &g.bucket, &g.key, &g.shards, &mut report).await?);
    }
    let history = History::of(entries);
    scratch
        .add_journaled(history.keys().cloned().collect())
        .await?;
    // Unversioned keys' objects, restored RESTORE_BATCH at a time (one metadata write each).
    // A restore keeps the newest version of a key whatever the order, so the small objects of
    // unversioned buckets are restored segment by segment, not held; versioned buckets' go
    // to the scratch space and wait for their keys' histories.
    // SEGMENT_READS segments are read and restored at once, in tasks of their own, so the
    // reads go on while their objects are written.
    let mut batch = Vec::new();
    w.begin("restoring segments", segment_versions);
    let mut walk = scratch.walk(Some(SEGMENTS));
    let (mut reads, mut listed) = (tokio::task::JoinSet::new(), true);
    loop {
        while listed && reads.len() < SEGMENT_READS {
            let Some(g) = walk.next().await? else {
                listed = false;
                break;
            };
            w.advance(g.shards.len() as u64, 0);
            if let Some(seg) = newest_whole(&g.bucket, &g.key, &g.shards, &mut report) {
                let c = c.clone();
                reads.spawn(async move { restore_segment(&c, seg).await });
            }
        }
        let Some(read) = reads.join_next().await else {
            break;
        };
        let objects =
            read.map_err(|e| ApiError::Internal(format!("restoring a segment: {e}")))??;
        let (versioned, plain): (Vec<_>, Vec<_>) = objects
            .into_iter()
            .partition(|o| history.bucket(&o.bucket).is_some());
        scratch.add_packed(versioned).await?;
        for o in plain {
            batch.push(o);
            if batch.len() >= RESTORE_BATCH {
                restore_batch(c, &mut batch, &mut report).await?;
            }
        }
    }
    restore_batch(c, &mut batch, &mut report).await?;
    let mut fresh = history.top;
    w.begin("restoring keys", key_versions);
    let mut walk = scratch.walk(None);
    while let Some(g) = walk.next().await? {
        if is_reserved(&g.bucket) {
            continue;
        }
        w.advance(g.shards.len() as u64, 0);
        restore_key(c, g, &history, &mut batch, &mut report, &mut fresh).await?;
    }
    restore_batch(c, &mut batch, &mut report).await?;
    // Numbers from now on come after every one the journal holds.
    c.meta.raise_seq(fresh).await?;
    // A segment none of whose objects came back is garbage.
    let mut walk = scratch.walk(Some(SEGMENTS));
    while let Some(g) = walk.next().await? {
        let seg = c.meta.object(SEGMENTS.into(), g.key.clone()).await?;
        if seg
            .and_then(|s| s.fill)
            .is_some_and(|f| f.live_objects == 0)
        {
            c.meta.delete_object(SEGMENTS.into(), g.key).await?;
        }
    }
    report.done = true;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Restores one key from its group: in a versioned bucket every version its history
/// numbers, in commit order; elsewhere the newest version that can be read whole (joining
/// `batch`). Stored versions nothing restored references become garbage.
async fn restore_key(
    c: &Arc<Maintenance>,
    g: Group,
    history: &History,
    batch: &mut Vec<ObjectMeta>,
    report: &mut RebuildReport,
    fresh: &mut u64,
) -> Result<(), ApiError> {
    let Group {
        bucket,
        key,
        shards: versions,
        packed,
        ..
    } = g;
    let restored = match history.bucket(&bucket) {
        Some(state) => {
            let mut all = packed;
            for (&version, shards) in versions.iter() {
                if let Some(o) = whole(c, &bucket, &key, version, shards, &versions).await {
                    all.insert(version, o);
                }
            }
            let list =
                history.versions_of(&bucket, &key, state, all, fresh, &mut report.unrecoverable);
            let r = RestoredKey {
                bucket: bucket.clone(),
                key: key.clone(),
                versioning: Some(state.versioning.clone()),
                lock: state.lock.clone(),
                versions: list.clone(),
                ec: c.config.default_ec,
            };
            if c.meta.restore_key(r).await? {
                report.objects += list.iter().filter(|o| !o.delete_marker).count() as u64;
                report.packed += list.iter().filter(|o| o.packed.is_some()).count() as u64;
            }
            list
        }
        None => {
            // Unversioned: the newest version that can be read whole, packed or not.
            let mut chosen = None;
            for (&version, shards) in versions.iter().rev() {
                if matches!(shards[0].1.header.role, ShardRole::Part { .. }) {
                    continue;
                }
                match whole(c, &bucket, &key, version, shards, &versions).await {
                    Some(o) => {
                        chosen = Some(o);
                        break;
                    }
                    None => report.unrecoverable.push(format!(
                        "{bucket}/{key} (version {version}: fewer than k readable shards)"
                    )),
                }
            }
            // A small object of the key restored from its segment, if newer, stays.
            if let Some(p) = c.meta.object(bucket.clone(), key.clone()).await? {
                if chosen.as_ref().is_none_or(|o| o.version <= p.version) {
                    chosen = Some(p);
                }
            }
            let mut list = Vec::new();
            if let Some(obj) = chosen {
                batch.push(obj.clone());
                if batch.len() >= RESTORE_BATCH {
                    restore_batch(c, batch, report).await?;
                }
                list.push(obj);
            }
            list
        }
    };
    collect_garbage(c, &bucket, &key, &versions, &restored).await
}

/// Segments read and restored at once (each a read of k shards from the nodes).
const SEGMENT_READS: usize = 8;

/// Objects of unversioned keys restored in one metadata write.
const RESTORE_BATCH: usize = 1000;

/// Restores the objects in `batch` (emptied) and counts what was written.
async fn restore_batch(
    c: &Maintenance,
    batch: &mut Vec<ObjectMeta>,
    report: &mut RebuildReport,
) -> Result<(), ApiError> {
    if batch.is_empty() {
        return Ok(());
    }
    let objs = std::mem::take(batch);
    let packed: Vec<bool> = objs.iter().map(|o| o.packed.is_some()).collect();
    let written = c.meta.restore_objects(objs, c.config.default_ec).await?;
    for (w, p) in written.into_iter().zip(packed) {
        report.objects += u64::from(w);
        report.packed += u64::from(w && p);
    }
    Ok(())
}

/// The newest version of a reserved object (a segment, a journal object) that can be read
/// whole, restored; its other versions become garbage.
fn newest_whole(
    bucket: &str,
    key: &str,
    versions: &BTreeMap<ObjectVersion, Shards>,
    report: &mut RebuildReport,
) -> Option<ObjectMeta> {
    for (&version, shards) in versions.iter().rev() {
        match part_of(version, shards, 1) {
            Some(p) => return Some(object_of(bucket, key, version, shards, p)),
            None => report.unrecoverable.push(format!(
                "{bucket}/{key} (version {version}: fewer than k readable shards)"
            )),
        }
    }
    None
}

/// Restores journal object `bucket`/`key` and returns its entries.
async fn restore_journal(
    c: &Arc<Maintenance>,
    bucket: &str,
    key: &str,
    versions: &BTreeMap<ObjectVersion, Shards>,
    report: &mut RebuildReport,
) -> Result<Vec<(u64, JournalEntry)>, ApiError> {
    let Some(obj) = newest_whole(bucket, key, versions, report) else {
        return Ok(Vec::new());
    };
    let data = match segment_data(&c.data, &obj).await {
        Ok(d) => d,
        Err(e) => {
            report
                .unrecoverable
                .push(format!("{bucket}/{key} (version journal unreadable: {e})"));
            return Ok(Vec::new());
        }
    };
    let entries: Vec<(u64, JournalEntry)> = match serde_json::from_slice(&data) {
        Ok(e) => e,
        Err(e) => {
            report.unrecoverable.push(format!(
                "{bucket}/{key} (version journal not understood: {e})"
            ));
            return Ok(Vec::new());
        }
    };
    c.meta.restore_object(obj, c.config.default_ec).await?;
    Ok(entries)
}

/// The object stored as `version` of `bucket`/`key` (a whole object or a multipart
/// object's manifest), if it can be read whole.
async fn whole(
    c: &Maintenance,
    bucket: &str,
    key: &str,
    version: ObjectVersion,
    shards: &Shards,
    versions: &BTreeMap<ObjectVersion, Shards>,
) -> Option<ObjectMeta> {
    match shards[0].1.header.role {
        ShardRole::Part { .. } => None,
        ShardRole::Object => {
            part_of(version, shards, 1).map(|p| object_of(bucket, key, version, shards, p))
        }
        ShardRole::Manifest { .. } => {
            restore_multipart(c, bucket, key, version, shards, versions).await
        }
    }
}

/// A single-part object from its shards' headers.
fn object_of(
    bucket: &str,
    key: &str,
    version: ObjectVersion,
    shards: &Shards,
    p: Part,
) -> ObjectMeta {
    let h = &shards[0].1.header;
    ObjectMeta {
        content_type: h.content_type.clone(),
        user_meta: h.user_meta.clone(),
        headers: h.headers.clone(),
        checksums: h.checksums.clone(),
        tags: h.tags.clone(),
        retention: strongest_retention(shards),
        legal_hold: shards.iter().any(|(_, s)| s.header.legal_hold),
        ..ObjectMeta::of_part(bucket, key, p, version.millis())
    }
}

/// Records as garbage every stored version of `bucket`/`key` that no restored version
/// references, except the parts of uploads still in progress.
async fn collect_garbage(
    c: &Arc<Maintenance>,
    bucket: &str,
    key: &str,
    versions: &BTreeMap<ObjectVersion, Shards>,
    restored: &[ObjectMeta],
) -> Result<(), ApiError> {
    for (&version, shards) in versions {
        if restored
            .iter()
            .any(|o| o.extents().any(|p| p.version == version))
        {
            continue;
        }
        if let ShardRole::Part { upload, .. } = shards[0].1.header.role {
            if c.meta
                .upload(bucket.to_string(), key.to_string(), upload)
                .await
                .is_ok()
            {
                continue;
            }
        }
        let set = ShardSet {
            bucket: bucket.to_string(),
            key: key.to_string(),
            shards: shards
                .iter()
                .map(|(n, i)| (i.header.shard_index, n.clone()))
                .collect(),
            since_ms: now_ms(),
            owner: 0,
        };
        c.meta
            .add_garbage(format!("{version}.rebuild"), set)
            .await?;
    }
    Ok(())
}

/// Restores segment `seg` and returns the objects its footer lists (restored by their keys'
/// turn); none if the segment cannot be read.
async fn restore_segment(
    c: &Arc<Maintenance>,
    mut seg: ObjectMeta,
) -> Result<Vec<ObjectMeta>, ApiError> {
    let data = match segment_data(&c.data, &seg).await {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!(segment = %seg.key, error = %e, "segment unreadable; its objects are not restored");
            return Ok(Vec::new());
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
    if !c.meta.restore_object(seg, c.config.default_ec).await? {
        return Ok(Vec::new());
    }
    Ok(objects)
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
