//! Shard uploads: one streaming upload per target node, fed stripe by stripe. A PUT, a part
//! of a multipart upload and a repair all write their shards through [`NodeStreams`].
//!
//! Each upload is a header frame, then one length-prefixed piece per stripe, then an end frame
//! carrying the final header and the shard's length (see `tessera_node::frame`). The node
//! keeps the shard only if the end frame arrives; a stream dropped without one is discarded.
//! At most [`QUEUE_STRIPES`] pieces wait per node, so memory does not grow with the shard.

use super::DataPath;
use crate::error::ApiError;
use bytes::Bytes;
use std::time::Duration;
use tessera_node::frame::{data_prefix, end_frame, header_frame, EndFrame};
use tessera_node::{NodeId, ShardHeader, ShardId, ShardInfo, StoreError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Pieces queued per node stream before the writer waits for that node.
pub const QUEUE_STRIPES: usize = 4;

/// One upload per target shard, all fed the same stripes.
pub struct NodeStreams {
    streams: Vec<NodeStream>,
    /// Longest wait for one node to take one piece, and for its final answer.
    timeout: Duration,
}

struct NodeStream {
    index: u16,
    node: NodeId,
    /// `None` once the stream failed or stalled: the shard is lost for this write.
    tx: Option<mpsc::Sender<std::io::Result<Bytes>>>,
    task: JoinHandle<Result<ShardInfo, StoreError>>,
}

impl NodeStreams {
    /// Opens an upload of shard `index` (of version `header(index).version`) to `node` for
    /// each `(index, node)` of `targets`, starting with the header frame `header(index)`.
    pub async fn open(
        c: &DataPath,
        targets: &[(u16, NodeId)],
        header: impl Fn(u16) -> ShardHeader,
    ) -> Result<Self, ApiError> {
        let mut streams = Vec::with_capacity(targets.len());
        for (index, node) in targets {
            let client = c
                .registry
                .client(node)
                .ok_or_else(|| ApiError::ServiceUnavailable(format!("node {node} vanished")))?;
            let first = header(*index);
            let id: ShardId = first.shard_id();
            let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(2 * QUEUE_STRIPES + 2);
            let frames =
                futures::stream::unfold(
                    rx,
                    |mut rx| async move { rx.recv().await.map(|x| (x, rx)) },
                );
            let task =
                tessera_node::trace::spawn(async move { client.put_shard(id, frames).await });
            let _ = tx.send(Ok(header_frame(&first))).await;
            streams.push(NodeStream {
                index: *index,
                node: node.clone(),
                tx: Some(tx),
                task,
            });
        }
        Ok(NodeStreams {
            streams,
            timeout: c.config.shard_write_timeout,
        })
    }

    /// Sends every live stream its piece of one stripe, `pieces[index]` (all pieces of the
    /// stripe, indexed by shard). A stream whose node ended the upload or did not take the
    /// piece within the write timeout is dropped. Returns how many streams are still live.
    pub async fn send(&mut self, pieces: &[Bytes]) -> usize {
        for s in &mut self.streams {
            let Some(tx) = &s.tx else { continue };
            let piece = pieces[s.index as usize].clone();
            let sent = async {
                tx.send(Ok(data_prefix(piece.len()))).await?;
                tx.send(Ok(piece)).await
            };
            if !matches!(tokio::time::timeout(self.timeout, sent).await, Ok(Ok(()))) {
                tracing::warn!(shard = s.index, node = %s.node, "node stream failed");
                s.tx = None;
            }
        }
        self.live()
    }

    /// Streams still being written.
    pub fn live(&self) -> usize {
        self.streams.iter().filter(|s| s.tx.is_some()).count()
    }

    /// Ends every live stream with its end frame `end(index)` and waits for the nodes'
    /// answers. Returns one outcome per target, in the order of `targets`; a stream dropped
    /// earlier answers with an error.
    pub async fn finish(
        self,
        end: impl Fn(u16) -> EndFrame,
    ) -> Vec<((u16, NodeId), Result<ShardInfo, StoreError>)> {
        let mut outcomes = Vec::with_capacity(self.streams.len());
        for s in self.streams {
            if let Some(tx) = s.tx {
                let _ = tx.send(Ok(end_frame(&end(s.index)))).await;
            }
            let outcome = match tokio::time::timeout(self.timeout, s.task).await {
                Ok(Ok(outcome)) => outcome,
                Ok(Err(e)) => Err(StoreError::Io(format!("shard upload task: {e}"))),
                Err(_) => Err(StoreError::Unavailable("shard upload timed out".into())),
            };
            outcomes.push(((s.index, s.node), outcome));
        }
        outcomes
    }
}
