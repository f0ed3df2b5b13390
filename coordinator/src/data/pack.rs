//! Small objects packed into segments: many objects share one stripe, so parity is amortised
//! and a read touches the one data shard that holds the object.
//!
//! A **segment** is one stripe of at most `k x` [`SEGMENT_PIECE`] bytes, erasure coded like
//! any object and stored as an object of the reserved bucket [`SEGMENTS`], named by its
//! version. Its data is the packed objects' bytes back to back, then a footer
//! ([`super::footer`]) that makes a segment self-describing, so a metadata rebuild restores
//! its objects from the nodes alone.
//!
//! Writing: a PUT below `--pack-below` reads its body, hashes it and hands it to the
//! [`Packer`] at its commit. The packer appends it to the open segment of its code; the
//! segment is written (k+m shards through the per-node batches, its in-flight record first)
//! when it is full, when no other packable PUT is on its way in, or at the latest
//! `--pack-flush` after its first object (in a replicated group, where each segment costs log
//! rounds, not while another segment is being written: then when that write ends). Its
//! in-flight record is written as its first object arrives, while it gathers the others.
//! Once its shards are durable at the write quorum,
//! one metadata commit ([`crate::meta::Metadata::commit_segment`]) makes the segment and every
//! object in it visible, each object's condition checked on its own; only then is each PUT
//! acknowledged. A segment is never appended to after it is written: shards stay immutable,
//! so a crash can tear nothing.
//!
//! Reading: [`super::packed_read`].

use super::footer::{Listed, MAGIC};
use super::write::{at_quorum, plan, put_batched, Planned, PutGuard};
use super::DataPath;
use crate::codec::CODEC_NAME;
use crate::error::ApiError;
use crate::meta::{ObjectMeta, PackEntry, Packed, Part, Precondition, ShardSet, SEGMENTS};
use crate::names::EcSpec;
use bytes::{Bytes, BytesMut};
use md5::{Digest, Md5};

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tessera_node::{ObjectVersion, ShardHeader, ShardRole};
use tokio::sync::oneshot;

/// Largest piece of a segment: segment shards stay small enough for the nodes' batched,
/// RocksDB-held small-shard path (one synced batch for many shards, no file each).
pub const SEGMENT_PIECE: u64 = 64 << 10;
/// Chunk size of segment shards: the unit a node verifies and a range read fetches.
pub const CHUNK: u32 = 4 << 10;

/// What a waiting PUT hears back: its committed object, or why not.
type PackedCommit = Result<ObjectMeta, ApiError>;

/// A segment being filled.
struct Open {
    version: ObjectVersion,
    data: BytesMut,
    entries: Vec<PackEntry>,
    waiting: Vec<oneshot::Sender<PackedCommit>>,
    /// Bytes of the footer's JSON so far.
    index_len: usize,
    /// The segment's nodes and its in-flight record, asked for with its first object so that
    /// the record's metadata write overlaps the gathering (in a replicated group, a log round
    /// fewer on each PUT's way).
    begin: Begin,
}

/// The plan of a segment and the guard of its in-flight record, or why neither.
type Begun = tokio::task::JoinHandle<Result<(Planned, PutGuard), ApiError>>;

/// Where an open segment's in-flight record stands.
enum Begin {
    /// Not asked for (the segment has no object yet).
    No,
    /// Asked for: resolves to the plan and the record's guard.
    Asked(Begun),
    /// Planned and waiting to be carried by the commit of a segment of the same code being
    /// written ([`Metadata::commit_segment_and_begin`](crate::meta::Metadata::commit_segment_and_begin)):
    /// in a replicated group one log entry then records this segment and commits that one,
    /// where two would. Recorded on its own when its segment is written uncarried.
    Deferred(Planned),
}

impl Open {
    fn new() -> Self {
        Open {
            version: ObjectVersion::new(),
            data: BytesMut::new(),
            entries: Vec::new(),
            waiting: Vec::new(),
            index_len: 2,
            begin: Begin::No,
        }
    }

    /// Segment data bytes if `len` more object bytes and `index` more footer bytes joined.
    fn size_with(&self, len: usize, index: usize) -> usize {
        self.data.len() + len + self.index_len + index + 1 + 16
    }
}

/// The open segments (one per code) and the small PUTs on their way to them.
#[derive(Default)]
pub struct Packer {
    open: Mutex<HashMap<(u16, u16), Open>>,
    /// Packable PUTs reading their bodies: while there are some, an open segment waits (at
    /// most `--pack-flush`) for them.
    inbound: AtomicUsize,
    /// Segments being written: while one is, the open segment waits (at most `--pack-flush`)
    /// for more objects, as shards wait for a node batch in flight.
    writing: AtomicUsize,
    /// Segments being written that have not reached their commit: in a replicated group, an
    /// open segment's in-flight record waits for one of them to carry it ([`Begin::Deferred`]).
    /// Lowered only under the `open` lock, where deferring reads it.
    carriers: AtomicUsize,
    /// Segments' metadata as last read, so a small GET costs one metadata read, not two.
    known: Mutex<HashMap<ObjectVersion, Arc<ObjectMeta>>>,
}

/// Segments remembered at most (the map is emptied when full).
const REMEMBERED: usize = 16_384;

/// Counts a packable PUT as on its way to the packer until dropped.
pub struct Inbound(Arc<DataPath>);

impl Inbound {
    /// Marks a packable PUT as on its way (reading its body, checking its checksums).
    pub fn new(c: &Arc<DataPath>) -> Self {
        c.packer.inbound.fetch_add(1, Ordering::SeqCst);
        Inbound(c.clone())
    }
}

impl Drop for Inbound {
    fn drop(&mut self) {
        self.0.packer.inbound.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Packer {
    pub(super) fn remembered(&self, v: ObjectVersion) -> Option<Arc<ObjectMeta>> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&v)
            .cloned()
    }

    pub(super) fn remember(&self, seg: Arc<ObjectMeta>) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= REMEMBERED {
            known.clear();
        }
        known.insert(seg.version, seg);
    }

    pub(super) fn forget(&self, v: ObjectVersion) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&v);
    }

    /// Packs `data` (the object `obj`, whose `packed` this fills in) into a segment of `ec`
    /// and waits for the segment's commit: the object as committed, or why it was not.
    pub async fn commit(
        &self,
        c: &Arc<DataPath>,
        ec: EcSpec,
        mut obj: ObjectMeta,
        data: Bytes,
        cond: Precondition,
        inbound: Inbound,
    ) -> PackedCommit {
        let capacity = (ec.k as u64 * SEGMENT_PIECE) as usize;
        let (tx, rx) = oneshot::channel();
        // Hashing and sizing the footer entry need no lock (the offset's digits: +20 at most).
        let listed = serde_json::to_vec(&Listed::of(&obj, 0))?.len() + 20;
        let blake3 = blake3::hash(&data).to_hex().to_string();
        {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let seg = open.entry((ec.k, ec.m)).or_insert_with(Open::new);
            if !seg.entries.is_empty() && seg.size_with(data.len(), listed) > capacity {
                let full = std::mem::replace(seg, Open::new());
                flush(c.clone(), ec, full);
            }
            obj.packed = Some(Packed {
                segment: seg.version,
                offset: seg.data.len() as u64,
                blake3,
                ec,
            });
            seg.index_len += listed;
            seg.data.extend_from_slice(&data);
            seg.entries.push(PackEntry { obj, cond });
            seg.waiting.push(tx);
            drop(inbound);
            let (version, first) = (seg.version, seg.entries.len() == 1);
            if first {
                let carrier =
                    c.config.cluster.is_some() && self.carriers.load(Ordering::SeqCst) > 0;
                seg.begin = match plan_segment(c, ec, version) {
                    Ok(planned) if carrier => Begin::Deferred(planned),
                    planned => Begin::Asked(tokio::spawn(record(c.clone(), version, planned))),
                };
            }
            let full = seg.size_with(0, 0) + 512 >= capacity;
            // Nothing else on its way: write now (natural batching, as for node batches);
            // otherwise give the others up to `--pack-flush` to join.
            let idle = self.inbound.load(Ordering::SeqCst) == 0
                && self.writing.load(Ordering::SeqCst) == 0;
            if full || idle {
                let seg = std::mem::replace(seg, Open::new());
                flush(c.clone(), ec, seg);
            } else if first {
                let c2 = c.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(c2.config.pack_flush).await;
                    if c2.config.cluster.is_some() && c2.packer.writing.load(Ordering::SeqCst) > 0 {
                        // Replicated metadata: every segment costs log rounds, so while one
                        // is being written this one keeps gathering; its end writes this one.
                        return;
                    }
                    let seg = {
                        let mut open = c2.packer.open.lock().unwrap_or_else(|e| e.into_inner());
                        match open.get_mut(&(ec.k, ec.m)) {
                            Some(s) if s.version == version && !s.entries.is_empty() => {
                                Some(std::mem::replace(s, Open::new()))
                            }
                            _ => None,
                        }
                    };
                    if let Some(seg) = seg {
                        flush(c2, ec, seg);
                    }
                });
            }
        }
        rx.await
            .unwrap_or_else(|_| Err(ApiError::Internal("segment writer ended".into())))
    }
}

/// Whether a PUT of `len` bytes in a bucket of code `ec` is packed: below `--pack-below`
/// (and not below the replication threshold, which wins), a code with k > 1, and room in one
/// segment.
pub fn packable(c: &DataPath, ec: EcSpec, replicate_below: u64, len: u64) -> bool {
    ec.k > 1
        && len < c.config.pack_below
        && len >= replicate_below
        && len + 4096 < ec.k as u64 * SEGMENT_PIECE
}

/// Starts writing `seg` (counted in `writing` from now until its PUTs are answered).
/// When the last write in flight ends, what gathered meanwhile is written at once (as a node
/// batch goes when the one before it returns), not after `--pack-flush`.
fn flush(c: Arc<DataPath>, ec: EcSpec, seg: Open) {
    c.packer.writing.fetch_add(1, Ordering::SeqCst);
    c.packer.carriers.fetch_add(1, Ordering::SeqCst);
    tokio::spawn(async move {
        write_and_commit(&c, ec, seg).await;
        if c.packer.writing.fetch_sub(1, Ordering::SeqCst) == 1 {
            let gathered: Vec<((u16, u16), Open)> = {
                let mut open = c.packer.open.lock().unwrap_or_else(|e| e.into_inner());
                open.iter_mut()
                    .filter(|(_, s)| !s.entries.is_empty())
                    .map(|(code, s)| (*code, std::mem::replace(s, Open::new())))
                    .collect()
            };
            for ((k, m), seg) in gathered {
                flush(c.clone(), EcSpec { k, m }, seg);
            }
        }
    });
}

/// Writes `seg` and commits it with its objects; answers every waiting PUT.
async fn write_and_commit(c: &Arc<DataPath>, ec: EcSpec, seg: Open) {
    let Open {
        version,
        mut data,
        entries,
        waiting,
        begin,
        ..
    } = seg;
    let written = write(c, ec, version, &mut data, &entries, begin).await;
    let carried = reach_commit(c, ec, written.is_ok());
    let outcomes = match written {
        Ok((meta, mut guard)) => match commit(c, meta, entries.clone(), carried).await {
            Ok(results) => {
                guard.committed = true;
                c.gc_kick.notify_one();
                results.into_iter().map(|r| r.map_err(Into::into)).collect()
            }
            Err(e) => {
                let e: ApiError = e.into();
                vec![Err(e); waiting.len()]
            }
        },
        Err(e) => vec![Err(e); waiting.len()],
    };
    for (tx, out) in waiting.into_iter().zip(outcomes) {
        let _ = tx.send(out);
    }
}

/// The in-flight record of the next segment, carried by a commit, and where the commit
/// says whether it was made.
type Carried = (ObjectVersion, ShardSet, oneshot::Sender<bool>);

/// A segment of `ec` being written reached its commit (`ok`) or failed before it: it is a
/// carrier no more. If it will commit, it takes the open segment's deferred record along;
/// if it will not and no other carrier is left, the record is asked for on its own now.
fn reach_commit(c: &Arc<DataPath>, ec: EcSpec, ok: bool) -> Option<Carried> {
    let mut open = c.packer.open.lock().unwrap_or_else(|e| e.into_inner());
    let left = c.packer.carriers.fetch_sub(1, Ordering::SeqCst) - 1;
    let seg = open.get_mut(&(ec.k, ec.m))?;
    if !matches!(seg.begin, Begin::Deferred(_)) || !(ok || left == 0) {
        return None;
    }
    let (version, Begin::Deferred(planned)) =
        (seg.version, std::mem::replace(&mut seg.begin, Begin::No))
    else {
        return None;
    };
    if !ok {
        seg.begin = Begin::Asked(tokio::spawn(record(c.clone(), version, Ok(planned))));
        return None;
    }
    let (tx, rx) = oneshot::channel();
    let set = planned.set.clone();
    let c2 = c.clone();
    seg.begin = Begin::Asked(tokio::spawn(async move {
        match rx.await {
            Ok(true) => {
                let guard = PutGuard {
                    c: c2,
                    version,
                    set: planned.set.clone(),
                    committed: false,
                };
                Ok((planned, guard))
            }
            // The commit failed or its outcome is unknown: recording again is harmless.
            _ => record(c2, version, Ok(planned)).await,
        }
    }));
    Some((version, set, tx))
}

/// Commits segment `meta` with its objects, carrying the next segment's record if `carried`.
async fn commit(
    c: &Arc<DataPath>,
    meta: ObjectMeta,
    entries: Vec<PackEntry>,
    carried: Option<Carried>,
) -> Result<Vec<Result<ObjectMeta, crate::meta::MetaError>>, crate::meta::MetaError> {
    let Some((next, set, made)) = carried else {
        return c.meta.commit_segment(meta, entries).await;
    };
    let out = c
        .meta
        .commit_segment_and_begin(meta, entries, next, set)
        .await;
    let _ = made.send(out.is_ok());
    out
}

/// Plans segment `version` of `ec`: its nodes and in-flight record.
fn plan_segment(c: &DataPath, ec: EcSpec, version: ObjectVersion) -> Result<Planned, ApiError> {
    plan(
        c,
        ec,
        Some(ec),
        false,
        version,
        SEGMENTS.into(),
        version.to_string(),
    )
}

/// Records segment `version` in flight as `planned`.
async fn record(
    c: Arc<DataPath>,
    version: ObjectVersion,
    planned: Result<Planned, ApiError>,
) -> Result<(Planned, PutGuard), ApiError> {
    let planned = planned?;
    let guard = PutGuard {
        c: c.clone(),
        version,
        set: planned.set.clone(),
        committed: false,
    };
    c.meta.begin_put(version, planned.set.clone()).await?;
    Ok((planned, guard))
}

/// Writes segment `version` (`data` gets its footer) as k+m shards once its in-flight record
/// is made (asked for by `begin`, else now), and waits for the write quorum: the segment's
/// metadata and the guard of its in-flight record.
async fn write(
    c: &Arc<DataPath>,
    ec: EcSpec,
    version: ObjectVersion,
    data: &mut BytesMut,
    entries: &[PackEntry],
    begin: Begin,
) -> Result<(ObjectMeta, PutGuard), ApiError> {
    let listed: Vec<Listed> = entries
        .iter()
        .map(|e| Listed::of(&e.obj, e.obj.packed.as_ref().map_or(0, |p| p.offset)))
        .collect();
    let index = serde_json::to_vec(&listed)?;
    data.extend_from_slice(&index);
    data.extend_from_slice(&(index.len() as u64).to_le_bytes());
    data.extend_from_slice(MAGIC);
    let size = data.len() as u64;
    let key = version.to_string();
    let (planned, guard) = match begin {
        Begin::Asked(b) => b
            .await
            .map_err(|e| ApiError::Internal(format!("segment's in-flight record: {e}")))??,
        Begin::Deferred(planned) => record(c.clone(), version, Ok(planned)).await?,
        Begin::No => record(c.clone(), version, plan_segment(c, ec, version)).await?,
    };
    let etag = hex::encode(Md5::digest(&data[..]));
    let pieces = planned.codec.encode(std::mem::take(data));
    let outcomes = put_batched(c, &planned.nodes, pieces, |i| ShardHeader {
        bucket: SEGMENTS.into(),
        key: key.clone(),
        version,
        shard_index: i,
        k: ec.k,
        m: ec.m,
        stripe_size: ec.k as u64 * SEGMENT_PIECE,
        object_length: size,
        codec: CODEC_NAME.into(),
        chunk_size: CHUNK,
        etag: Some(etag.clone()),
        checksums: BTreeMap::new(),
        content_type: None,
        user_meta: BTreeMap::new(),
        headers: BTreeMap::new(),
        role: ShardRole::Object,
        retention: None,
        legal_hold: false,
        tags: BTreeMap::new(),
    })
    .await;
    let shard_len = size.div_ceil(ec.k as u64);
    let shards = at_quorum(
        c,
        (SEGMENTS, &key),
        ec.total(),
        &planned.nodes,
        outcomes,
        shard_len,
        planned.w,
    )?;
    c.metrics.stripes("encoded", 1);
    let now = crate::meta::now_ms();
    let part = Part {
        number: 1,
        version,
        size,
        etag,
        ec,
        piece: SEGMENT_PIECE,
        codec: CODEC_NAME.into(),
        shards,
        checksums: BTreeMap::new(),
        written_ms: now,
    };
    let meta = ObjectMeta::of_part(SEGMENTS, &key, part, now);
    Ok((meta, guard))
}
