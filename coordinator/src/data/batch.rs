//! Batching of small shard writes: concurrent small PUTs share node requests and fsyncs.
//!
//! A 4 KiB object costs each of its nodes one HTTP request and one fsync if written alone,
//! and those, not the bytes, bound small-object throughput. Here every node gets one queue and
//! one task: the task takes whatever is queued (up to [`MAX_ITEMS`] shards or [`MAX_BYTES`]),
//! sends it as one `POST /shards/batch`, and answers each waiting PUT with its own shard's
//! outcome. Nothing waits on purpose: a lone PUT goes out at once, and shards that arrive
//! while a batch is in flight form the next one (natural batching), so batches grow with
//! load and latency does not.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tessera_node::{NodeClient, ShardHeader, ShardInfo, StoreError};
use tokio::sync::{mpsc, oneshot};

/// Most shards in one batch request.
pub const MAX_ITEMS: usize = 64;
/// Most shard bytes in one batch request.
pub const MAX_BYTES: usize = 4 << 20;

struct Item {
    header: ShardHeader,
    data: bytes::Bytes,
    /// The client request the shard is written for.
    request: Option<tessera_node::trace::RequestId>,
    done: oneshot::Sender<Result<ShardInfo, StoreError>>,
}

/// Per-node queues of small shard writes.
#[derive(Default)]
pub struct ShardBatcher {
    /// Keyed by the node's address, so a node that comes back elsewhere gets a new queue.
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Item>>>,
}

impl ShardBatcher {
    /// Writes a whole shard (`header` is its final header) to the node behind `client`,
    /// batched with other shards for that node; gives up after `timeout`.
    pub async fn put(
        &self,
        client: &NodeClient,
        header: ShardHeader,
        data: bytes::Bytes,
        timeout: Duration,
    ) -> Result<ShardInfo, StoreError> {
        let (done, rx) = oneshot::channel();
        let queue = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues
                .entry(client.base().to_string())
                .or_insert_with(|| spawn_queue(client.clone(), timeout))
                .clone()
        };
        queue
            .send(Item {
                header,
                data,
                request: tessera_node::trace::current(),
                done,
            })
            .map_err(|_| StoreError::Unavailable("node write queue stopped".into()))?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "node write queue dropped a shard".into(),
            )),
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer from {} within {timeout:?}",
                client.base()
            ))),
        }
    }
}

/// Starts the task that drains one node's queue; it ends when the batcher is dropped.
fn spawn_queue(client: NodeClient, timeout: Duration) -> mpsc::UnboundedSender<Item> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Item>();
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut bytes = first.data.len();
            let mut items = vec![first];
            while items.len() < MAX_ITEMS && bytes < MAX_BYTES {
                match rx.try_recv() {
                    Ok(item) => {
                        bytes += item.data.len();
                        items.push(item);
                    }
                    Err(_) => break,
                }
            }
            // PUTs whose callers gave up need not be written.
            items.retain(|i| !i.done.is_closed());
            if items.is_empty() {
                continue;
            }
            let shards: Vec<(ShardHeader, bytes::Bytes)> = items
                .iter()
                .map(|i| (i.header.clone(), i.data.clone()))
                .collect();
            let requests: Vec<_> = items.iter().filter_map(|i| i.request).collect();
            match tokio::time::timeout(timeout, client.put_shards(&shards, &requests)).await {
                Ok(Ok(outcomes)) => {
                    for (item, outcome) in items.into_iter().zip(outcomes) {
                        let _ = item.done.send(outcome);
                    }
                }
                Ok(Err(e)) => {
                    let msg = e.to_string();
                    for item in items {
                        let _ = item.done.send(Err(StoreError::Unavailable(msg.clone())));
                    }
                }
                Err(_) => {
                    for item in items {
                        let _ = item.done.send(Err(StoreError::Unavailable(format!(
                            "batch write to {} timed out",
                            client.base()
                        ))));
                    }
                }
            }
        }
    });
    tx
}
