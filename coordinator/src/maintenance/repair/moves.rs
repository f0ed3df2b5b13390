//! The shard move repair, drain and rebalance share: shards of a part written to new nodes
//! (rebuilt from k others, or copied from where they are) under an in-flight record, then
//! committed fenced by the part's version, so the old copies stay readable until then.

use crate::data::stripes::StripeReader;
use crate::data::upload::NodeStreams;
use crate::error::ApiError;
use crate::maintenance::Maintenance;
use crate::meta::{now_ms, ObjectMeta, Part, ShardSet};
use crate::placement::repair_targets;
use bytes::Bytes;
use futures::StreamExt;
use std::sync::Arc;
use tessera_node::frame::EndFrame;
use tessera_node::{NodeId, ShardHeader, ShardId};

/// What one object's repair did.
#[derive(Debug, Default)]
pub struct RepairOutcome {
    /// Shards rebuilt and committed.
    pub rebuilt: usize,
    /// Bytes read from healthy shards.
    pub bytes_read: u64,
    /// Bytes written to new shards.
    pub bytes_written: u64,
    /// The commit went through (false: the object changed meanwhile; nothing to do).
    pub committed: bool,
}

/// Where the bytes of the shards a move writes come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Decoded from any k other shards (the shards are lost).
    Rebuild,
    /// Read from the shards themselves, where they are now (a drain or rebalance while
    /// their node is up): one read per shard, nothing decoded.
    Copy,
}

/// Rebuilds shards `lost` of `part` of `obj` onto new nodes and commits them.
pub async fn repair_part(
    c: &Arc<Maintenance>,
    obj: &ObjectMeta,
    part: &Part,
    lost: &[usize],
) -> Result<RepairOutcome, ApiError> {
    let current: Vec<Option<NodeId>> = part.shards.iter().map(|s| s.node.clone()).collect();
    let targets = repair_targets(&c.registry.candidates(), &current, lost);
    if targets.is_empty() {
        return Err(ApiError::ServiceUnavailable(
            "no node available to take the rebuilt shards".into(),
        ));
    }
    move_part(c, obj, part, &targets, Source::Rebuild).await
}

/// Writes shard `i` of `part` of `obj` to `node` for every `(i, node)` of `targets`, with
/// bytes from `source`, and commits the new locations (the old ones become garbage) unless
/// the object changed meanwhile. The writes are recorded in flight first, so a crash leaves
/// garbage, never a leak; the old shards stay readable until the commit.
pub async fn move_part(
    c: &Arc<Maintenance>,
    obj: &ObjectMeta,
    part: &Part,
    targets: &[(u16, NodeId)],
    source: Source,
) -> Result<RepairOutcome, ApiError> {
    let lost: Vec<usize> = targets.iter().map(|(i, _)| *i as usize).collect();
    let lost = &lost[..];
    let record = format!(
        "{}.r{}",
        part.version,
        now_ms() * 1000 + rand::random::<u16>() as u64 % 1000
    );
    let set = ShardSet {
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        shards: targets.to_vec(),
        since_ms: now_ms(),
        owner: 0,
    };
    let (r, s) = (record.clone(), set.clone());
    c.maint().begin_pending(r, s).await?;
    let result = write_shards(c, obj, part, lost, targets, source).await;
    let (ok, read, written) = match result {
        Ok(x) => x,
        Err(e) => {
            let (r, s) = (record.clone(), set.clone());
            c.maint().abort_pending(r, s).await?;
            c.gc_kick.notify_one();
            return Err(e);
        }
    };
    let (r, s, v, moved) = (record.clone(), set.clone(), part.version, ok.clone());
    let committed = c.maint().commit_repair(r, s, v, moved).await?;
    c.gc_kick.notify_one();
    if committed {
        let mut suspects = c.repair.suspects.lock().unwrap();
        for (i, _) in &ok {
            suspects.remove(&ShardId {
                version: part.version,
                index: *i,
            });
        }
        tracing::info!(object = %format!("{}/{}", obj.bucket, obj.key), shards = ok.len(), ?source, "shards moved");
    }
    Ok(RepairOutcome {
        rebuilt: if committed { ok.len() } else { 0 },
        bytes_read: read,
        bytes_written: written,
        committed,
    })
}

/// Streams shards `lost` (rebuilt, or copied from where they are) to their targets, within
/// the maintenance budget; returns the ones acknowledged whole, bytes read and written.
async fn write_shards(
    c: &Arc<Maintenance>,
    obj: &ObjectMeta,
    part: &Part,
    lost: &[usize],
    targets: &[(u16, NodeId)],
    source: Source,
) -> Result<(Vec<(u16, NodeId)>, u64, u64), ApiError> {
    let layout = part.layout();
    let shard_len = layout.shard_len();
    let header = |i: u16| ShardHeader {
        bucket: obj.bucket.clone(),
        key: obj.key.clone(),
        version: part.version,
        shard_index: i,
        k: part.ec.k,
        m: part.ec.m,
        stripe_size: layout.stripe_size(),
        object_length: part.size,
        codec: part.codec.clone(),
        // Segments keep their small chunks (a packed object's read fetches one or two).
        chunk_size: if obj.bucket == crate::meta::SEGMENTS {
            crate::data::pack::CHUNK
        } else {
            part.piece as u32
        },
        etag: Some(part.etag.clone()),
        checksums: part.checksums.clone(),
        content_type: obj.content_type.clone(),
        user_meta: obj.user_meta.clone(),
        headers: obj.headers.clone(),
        role: obj.role_of(part),
        // The lock and tags as they are now (a move refreshes what a rebuild would find).
        retention: obj.retention.as_ref().map(|r| (r.mode.clone(), r.until_ms)),
        legal_hold: obj.legal_hold,
        tags: obj.tags.clone(),
    };
    let mut streams = NodeStreams::open(c, targets, header).await?;
    let (mut read, mut written) = (0u64, 0u64);
    let fetch = Fetch::new(c, obj, part, lost, source)?;
    let fetch = &fetch;
    // Stripes are read a few ahead of the one being written.
    let mut stripes = futures::stream::iter(fetch.groups(layout))
        .map(|g| fetch.get(g))
        .buffered(c.config.read_ahead.max(1));
    while let Some(fetched) = stripes.next().await {
        let (all, r) = fetched?;
        read += r;
        let piece_len = lost.first().map_or(0, |&i| all[i].len()) as u64;
        let sent = piece_len * streams.send(&all).await as u64;
        written += sent;
        c.budget.spend(sent).await;
        if streams.live() == 0 {
            break;
        }
    }
    let ok = streams
        .finish(|i| EndFrame {
            header: header(i),
            length: shard_len,
        })
        .await
        .into_iter()
        .filter_map(|(target, outcome)| match outcome {
            Ok(info) if info.length == shard_len => Some(target),
            _ => None,
        })
        .collect();
    Ok((ok, read, written))
}

/// Reads the pieces a move writes, a group of stripes at a time.
enum Fetch {
    Rebuild(StripeReader),
    Copy {
        /// (shard index, where it is now) of the shards moved.
        from: Vec<(usize, tessera_node::NodeClient)>,
        version: tessera_node::ObjectVersion,
        n: usize,
        layout: crate::layout::Layout,
        timeout: std::time::Duration,
    },
}

/// Shard bytes a copy reads per request.
const COPY_READ: u64 = 4 << 20;

impl Fetch {
    fn new(
        c: &Arc<Maintenance>,
        obj: &ObjectMeta,
        part: &Part,
        moved: &[usize],
        source: Source,
    ) -> Result<Self, ApiError> {
        Ok(match source {
            Source::Rebuild => Fetch::Rebuild(StripeReader::excluding(
                c.data.clone(),
                &obj.bucket,
                &obj.key,
                part,
                moved,
            )?),
            Source::Copy => Fetch::Copy {
                from: moved
                    .iter()
                    .map(|&i| {
                        part.shards[i]
                            .node
                            .as_ref()
                            .and_then(|n| c.registry.client(n))
                            .map(|client| (i, client))
                            .ok_or_else(|| {
                                ApiError::ServiceUnavailable(format!(
                                    "shard {i} of {}/{} has no node to copy from",
                                    obj.bucket, obj.key
                                ))
                            })
                    })
                    .collect::<Result<_, _>>()?,
                version: part.version,
                n: part.shards.len(),
                layout: part.layout(),
                timeout: c.config.shard_read_timeout,
            },
        })
    }

    /// The stripe ranges read at once: one stripe to rebuild; up to [`COPY_READ`] of each
    /// shard to copy.
    fn groups(&self, layout: crate::layout::Layout) -> Vec<std::ops::Range<u64>> {
        let per = match self {
            Fetch::Rebuild(_) => 1,
            Fetch::Copy { .. } => (COPY_READ / layout.piece.max(1)).max(1),
        };
        (0..layout.stripes())
            .step_by(per as usize)
            .map(|s| s..(s + per).min(layout.stripes()))
            .collect()
    }

    /// Every piece of stripes `g` indexed by shard (only the moved ones need bytes), and
    /// the bytes read.
    async fn get(&self, g: std::ops::Range<u64>) -> Result<(Vec<Bytes>, u64), ApiError> {
        match self {
            Fetch::Rebuild(reader) => {
                debug_assert_eq!(g.end - g.start, 1);
                reader.fetch_all(g.start).await
            }
            Fetch::Copy {
                from,
                version,
                n,
                layout,
                timeout,
            } => {
                let offset = layout.shard_offset(g.start);
                let len: u64 = g.clone().map(|s| layout.piece_len(s)).sum();
                let reads = from.iter().map(|(i, client)| async move {
                    let id = ShardId {
                        version: *version,
                        index: *i as u16,
                    };
                    client
                        .read_verified(id, offset, len, *timeout)
                        .await
                        .map(|chunks| (*i, crate::data::stripes::Chunks(chunks).contiguous()))
                        .map_err(|e| {
                            ApiError::ServiceUnavailable(format!("copying shard {id}: {e}"))
                        })
                });
                let mut pieces = vec![Bytes::new(); *n];
                let mut read = 0;
                for r in futures::future::join_all(reads).await {
                    let (i, b) = r?;
                    read += b.len() as u64;
                    pieces[i] = b;
                }
                Ok((pieces, read))
            }
        }
    }
}
