//! The write primitives every writer of shards shares (streamed PUTs, small PUTs, segments of
//! packed objects): where a write goes ([`plan`]), the guard that turns an interrupted
//! write's in-flight record into garbage ([`PutGuard`]), whole shards through the per-node
//! batches ([`put_batched`]), and the quorum check on the nodes' answers ([`at_quorum`]).
//! Nothing here knows of client bodies or segments.

use super::DataPath;
use crate::codec::ErasureCodec;
use crate::error::ApiError;
use crate::meta::{ShardLoc, ShardSet, ShardState};
use crate::names::EcSpec;
use crate::placement::place_with_room;
use bytes::Bytes;
use std::sync::Arc;
use tessera_node::{NodeId, ObjectVersion, ShardHeader, ShardInfo, StoreError};

/// Turns the in-flight record into garbage unless the PUT committed.
pub struct PutGuard {
    pub c: Arc<DataPath>,
    pub version: ObjectVersion,
    pub set: ShardSet,
    pub committed: bool,
}

impl Drop for PutGuard {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        let (meta, version, set) = (self.c.meta.clone(), self.version, self.set.clone());
        // A task of its own (drop cannot wait), retried while the metadata is unavailable
        // (a leader election); if the process dies first, its restart (or, in a replicated
        // group, its lease running out) turns the in-flight record into garbage instead.
        tokio::spawn(async move {
            let mut wait = std::time::Duration::from_millis(200);
            for attempt in 0.. {
                match meta.abort_put(version, set.clone()).await {
                    Ok(()) => return,
                    Err(e) if attempt < 60 => {
                        tracing::debug!(%version, error = %e, "aborted PUT not recorded yet; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(std::time::Duration::from_secs(10));
                    }
                    Err(e) => {
                        tracing::warn!(%version, error = %e, "could not record aborted PUT as garbage");
                        return;
                    }
                }
            }
        });
        self.c.gc_kick.notify_one();
    }
}

/// Where each shard of a write is, from the nodes' answers: `ok` if acknowledged with
/// `shard_len` bytes, else `missing` (counted as a write error of its node). Fails unless at
/// least `w` are `ok`; a write acknowledged with fewer than `want` (k+m: nodes down or full,
/// or a shard write failed) is counted (`writes_short`), logged, and reported for repair as
/// `bucket`/`key`.
pub fn at_quorum(
    c: &DataPath,
    (bucket, key): (&str, &str),
    want: usize,
    nodes: &[NodeId],
    outcomes: Vec<Result<ShardInfo, StoreError>>,
    shard_len: u64,
    w: usize,
) -> Result<Vec<ShardLoc>, ApiError> {
    let mut durable = 0;
    let mut shards = Vec::with_capacity(nodes.len());
    for (i, outcome) in outcomes.into_iter().enumerate() {
        let state = match outcome {
            Ok(info) if info.length == shard_len => {
                durable += 1;
                ShardState::Ok
            }
            other => {
                c.metrics.shard_error(nodes[i].as_str(), "write");
                tracing::warn!(shard = i, node = %nodes[i], outcome = ?other, "shard write failed");
                ShardState::Missing
            }
        };
        shards.push(ShardLoc {
            node: Some(nodes[i].clone()),
            state,
        });
    }
    // Fewer nodes than shards (nodes down when the write was placed): the shards no node
    // took are recorded missing too, so repair sees them (a part always lists k+m shards).
    shards.resize(
        shards.len().max(want),
        ShardLoc {
            node: None,
            state: ShardState::Missing,
        },
    );
    if durable < w {
        return Err(ApiError::ServiceUnavailable(format!(
            "only {durable} of {} shards were stored; {w} needed",
            nodes.len()
        )));
    }
    if durable < want {
        c.metrics.write_short();
        c.damage.report_short(bucket, key);
        tracing::warn!(
            durable,
            want,
            "write acknowledged with fewer shards than asked (nodes down or full): degraded until repaired"
        );
    }
    Ok(shards)
}

/// Where and how a PUT will write.
pub struct Planned {
    pub ec: EcSpec,
    pub codec: Arc<ErasureCodec>,
    pub w: usize,
    pub nodes: Vec<NodeId>,
    pub set: ShardSet,
}

/// Chooses the code (`x-tessera-ec`, else m+1 replicas for objects below `replicate_below`,
/// else the bucket's), the quorum and the nodes of `version`. Fails if too few nodes are
/// registered or up.
pub fn plan(
    c: &DataPath,
    bucket_ec: EcSpec,
    req_ec: Option<EcSpec>,
    replicate: bool,
    version: ObjectVersion,
    bucket: String,
    key: String,
) -> Result<Planned, ApiError> {
    let ec = match req_ec {
        Some(ec) => ec,
        // Small objects: m+1 replicas cost one node write per copy instead of k+m pieces, and
        // a read needs one node instead of k.
        None if replicate && bucket_ec.k > 1 => EcSpec {
            k: 1,
            m: bucket_ec.m,
        },
        None => bucket_ec,
    };
    let n = ec.total();
    check_registered(c, ec)?;
    let codec = Arc::new(
        ErasureCodec::new(ec.k as usize, ec.m as usize)
            .map_err(|e| ApiError::InvalidArgument(e.to_string()))?,
    );
    let w = c.config.quorum(ec);
    let nodes = place_with_room(
        &c.registry.candidates(),
        &version.to_bytes(),
        n,
        c.config.min_free,
    );
    if nodes.len() < w {
        return Err(ApiError::ServiceUnavailable(format!(
            "{} storage nodes are up; a {ec} write needs {w}",
            nodes.len()
        )));
    }
    let set = ShardSet {
        bucket,
        key,
        shards: nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u16, n.clone()))
            .collect(),
        since_ms: crate::meta::now_ms(),
        owner: 0,
    };
    Ok(Planned {
        ec,
        codec,
        w,
        nodes,
        set,
    })
}

/// Fails if `ec` needs more nodes than are registered (InvalidArgument: no cluster state
/// would ever let such a write succeed).
pub fn check_registered(c: &DataPath, ec: EcSpec) -> Result<(), ApiError> {
    let registered = c.registry.registered();
    if ec.total() > registered {
        return Err(ApiError::InvalidArgument(format!(
            "erasure code {ec} needs {} nodes but {registered} are registered",
            ec.total()
        )));
    }
    Ok(())
}

/// Writes whole shard `i` (`pieces[i]`, final header `header(i)`) to `nodes[i]` through
/// the node's batch queue, for every i; each node's answer, in order.
pub async fn put_batched(
    c: &DataPath,
    nodes: &[NodeId],
    pieces: Vec<Bytes>,
    header: impl Fn(u16) -> ShardHeader,
) -> Vec<Result<ShardInfo, StoreError>> {
    let timeout = c.config.shard_write_timeout;
    let writes = nodes
        .iter()
        .zip(pieces)
        .enumerate()
        .map(|(i, (node, piece))| {
            let h = header(i as u16);
            let client = c
                .registry
                .client(node)
                .expect("placed nodes are registered");
            async move { c.batcher.put(&client, h, piece, timeout).await }
        });
    futures::future::join_all(writes).await
}
