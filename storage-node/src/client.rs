//! Typed HTTP client for a storage node's shard API (see [`crate::server`]).
//!
//! One `reqwest::Client` is shared by every `NodeClient`, so connections to each node are
//! pooled and reused across requests.

use crate::error::StoreError;
use crate::types::{BatchOutcome, Heartbeat, ShardHeader, ShardId, ShardInfo};
use bytes::Bytes;
use futures::Stream;
use std::time::Duration;

/// Client for one node, sharing a connection pool with its clones.
#[derive(Clone)]
pub struct NodeClient {
    http: reqwest::Client,
    base: String,
    addr: String,
    /// Raw reads ([`crate::raw`]) for [`NodeClient::read_verified`], if enabled.
    raw: Option<std::sync::Arc<crate::raw::RawPool>>,
}

type Result<T> = std::result::Result<T, StoreError>;

/// Builds the pooled HTTP client used for cluster traffic; every request carries
/// `cluster_secret` (nodes refuse requests without it) and `https://` URLs are verified
/// with `tls`.
pub fn http_client(cluster_secret: &str, tls: &crate::tls::ClientTls) -> reqwest::Client {
    tls.apply(reqwest::Client::builder())
        .default_headers(crate::auth::headers(cluster_secret))
        .connect_timeout(Duration::from_secs(2))
        .pool_idle_timeout(Duration::from_secs(60))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .expect("http client")
}

/// How a coordinator reaches every node: one pooled HTTP client, raw reads if enabled, and
/// whether nodes are spoken to over (mutual) TLS.
#[derive(Clone)]
pub struct Transport {
    /// The pooled HTTP client ([`http_client`]).
    pub http: reqwest::Client,
    /// Raw reads ([`crate::raw`]) for [`NodeClient::read_verified`], if enabled.
    pub raw: Option<std::sync::Arc<crate::raw::RawPool>>,
    /// `https://` to every node.
    pub tls: bool,
}

impl Transport {
    /// Cluster traffic presenting `cluster_secret`, with `tls`' settings (`https://` to nodes
    /// when they hold a client certificate, i.e. inside a cluster with mutual TLS), and raw
    /// reads if `raw_reads`.
    pub fn new(cluster_secret: &str, tls: &crate::tls::ClientTls, raw_reads: bool) -> Self {
        // Nodes speak TLS only inside a cluster with mutual TLS; otherwise `tls` is for
        // other coordinators' `https://` URLs and raw reads stay plain.
        let mutual = tls.is_mutual();
        let raw_tls = if mutual {
            tls.clone()
        } else {
            Default::default()
        };
        Transport {
            http: http_client(cluster_secret, tls),
            raw: raw_reads.then(|| crate::raw::RawPool::new(cluster_secret, &raw_tls)),
            tls: mutual,
        }
    }

    /// A client for the node at `addr` (`host:port`).
    pub fn client(&self, addr: &str) -> NodeClient {
        let mut c = NodeClient::new(self.http.clone(), addr);
        if self.tls {
            c.base = format!("https://{addr}");
        }
        c.raw = self.raw.clone();
        c
    }
}

/// The request-id header of the client request being served, if any ([`crate::trace`]).
fn traced() -> reqwest::header::HeaderMap {
    traced_for(crate::trace::current())
}

/// The request-id header naming `ids`.
fn traced_for(
    ids: impl IntoIterator<Item = crate::trace::RequestId>,
) -> reqwest::header::HeaderMap {
    let mut h = reqwest::header::HeaderMap::new();
    if let Some(v) = crate::trace::header_value(ids)
        .and_then(|v| reqwest::header::HeaderValue::from_str(&v).ok())
    {
        h.insert(crate::trace::HEADER, v);
    }
    h
}

fn transport(e: reqwest::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// Maps an error response back to the variant the node's `IntoResponse` produced.
/// A JSON answer of the node, or the error it (or the transport) reported.
async fn json_answer<T: serde::de::DeserializeOwned>(
    resp: reqwest::Result<reqwest::Response>,
) -> Result<T> {
    let resp = resp.map_err(transport)?;
    if !resp.status().is_success() {
        return Err(error_from(resp).await);
    }
    resp.json().await.map_err(transport)
}

async fn error_from(resp: reqwest::Response) -> StoreError {
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    let msg = body["message"].as_str().unwrap_or("").to_string();
    match body["error"].as_str().unwrap_or("") {
        "not_found" => StoreError::NotFound(msg),
        "corrupt" => StoreError::Corrupt(msg),
        "invalid_argument" => StoreError::InvalidArgument(msg),
        "incomplete" => StoreError::Incomplete(msg),
        "no_space" => StoreError::NoSpace(msg),
        "io" => StoreError::Io(msg),
        _ => StoreError::Unavailable(format!("status {status}: {msg}")),
    }
}

impl NodeClient {
    /// A client for the node at `addr` (`host:port`) using the shared pool `http`.
    pub fn new(http: reqwest::Client, addr: &str) -> Self {
        NodeClient {
            http,
            base: format!("http://{addr}"),
            addr: addr.to_string(),
            raw: None,
        }
    }

    /// This client with [`NodeClient::read_verified`] going through raw reads from `pool`.
    pub fn with_raw_reads(mut self, pool: std::sync::Arc<crate::raw::RawPool>) -> Self {
        self.raw = Some(pool);
        self
    }

    /// `len` bytes at `offset` of shard `id`, every chunk verified against its blake3: through
    /// a raw read (the node sends the stored chunks untouched, this side verifies) when raw
    /// reads are enabled, else through [`NodeClient::read_chunks`] (the node verifies).
    pub async fn read_verified(
        &self,
        id: ShardId,
        offset: u64,
        len: u64,
        timeout: Duration,
    ) -> Result<Vec<Bytes>> {
        match &self.raw {
            Some(pool) => pool.read(&self.addr, id, offset, len, timeout).await,
            None => self.read_chunks(id, offset, len, timeout).await,
        }
    }

    /// The node's base URL (`http://host:port`, or `https://`).
    pub fn base(&self) -> &str {
        &self.base
    }

    fn url(&self, id: ShardId) -> String {
        format!("{}/shards/{}/{}", self.base, id.version, id.index)
    }

    /// Streams a shard upload to the node. `frames` must be a complete framed body (see
    /// [`crate::frame`]); if it ends without an end frame, or yields an error, the node
    /// discards what it received.
    pub async fn put_shard<S>(&self, id: ShardId, frames: S) -> Result<ShardInfo>
    where
        S: Stream<Item = std::io::Result<Bytes>> + Send + 'static,
    {
        let resp = self
            .http
            .put(self.url(id))
            .headers(traced())
            .body(reqwest::Body::wrap_stream(frames))
            .send()
            .await;
        json_answer(resp).await
    }

    /// Writes a whole shard held in memory (header, data, end frame in one request).
    pub async fn put_shard_bytes(&self, header: &ShardHeader, data: Bytes) -> Result<ShardInfo> {
        let frames = crate::frame::whole_shard(header, data);
        self.put_shard(
            header.shard_id(),
            futures::stream::iter(frames.into_iter().map(Ok)),
        )
        .await
    }

    /// Writes several whole shards held in memory in one request (`(final header, bytes)`
    /// each); the node stores each or fails it on its own and syncs them together. Returns one
    /// outcome per shard, in order; `Err` if the request as a whole failed. `requests` are
    /// the client requests the shards are written for ([`crate::trace`]).
    pub async fn put_shards(
        &self,
        shards: &[(ShardHeader, Bytes)],
        requests: &[crate::trace::RequestId],
    ) -> Result<Vec<Result<ShardInfo>>> {
        // One contiguous body (small shards: the copy is cheaper than a chunked stream).
        let mut body = bytes::BytesMut::new();
        for (header, data) in shards {
            for frame in crate::frame::whole_shard(header, data.clone()) {
                body.extend_from_slice(&frame);
            }
        }
        let resp = self
            .http
            .post(format!("{}/shards/batch", self.base))
            .headers(traced_for(requests.iter().copied()))
            .body(body.freeze())
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        let out: Vec<BatchOutcome> = resp.json().await.map_err(transport)?;
        if out.len() != shards.len() {
            return Err(StoreError::Unavailable(format!(
                "node answered {} outcomes for {} shards",
                out.len(),
                shards.len()
            )));
        }
        Ok(out
            .into_iter()
            .map(|o| match o {
                BatchOutcome::Stored(info) => Ok(*info),
                BatchOutcome::Failed(m) => Err(StoreError::Io(m)),
            })
            .collect())
    }

    /// Reads `len` verified bytes at `offset` of a shard.
    pub async fn read(
        &self,
        id: ShardId,
        offset: u64,
        len: u64,
        timeout: Duration,
    ) -> Result<Bytes> {
        let chunks = self.read_chunks(id, offset, len, timeout).await?;
        Ok(match chunks.len() {
            1 => chunks.into_iter().next().expect("one chunk"),
            _ => chunks.concat().into(),
        })
    }

    /// [`NodeClient::read`] returning the bytes as the chunks they arrived in, without
    /// copying them into one buffer.
    pub async fn read_chunks(
        &self,
        id: ShardId,
        offset: u64,
        len: u64,
        timeout: Duration,
    ) -> Result<Vec<Bytes>> {
        let fut = async {
            let mut resp = self
                .http
                .get(self.url(id))
                .headers(traced())
                .query(&[("offset", offset), ("len", len)])
                .send()
                .await
                .map_err(transport)?;
            if !resp.status().is_success() {
                return Err(error_from(resp).await);
            }
            // A body cut short (corruption found mid-stream, node died) is an error here.
            let mut chunks = Vec::new();
            let mut got = 0u64;
            while let Some(c) = resp.chunk().await.map_err(transport)? {
                got += c.len() as u64;
                chunks.push(c);
            }
            if got != len {
                return Err(StoreError::Unavailable(format!("short read of {id}")));
            }
            Ok(chunks)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| StoreError::Unavailable(format!("read of {id} timed out")))?
    }

    /// Header and length of a shard.
    pub async fn info(&self, id: ShardId) -> Result<ShardInfo> {
        let resp = self
            .http
            .get(format!("{}/info", self.url(id)))
            .headers(traced())
            .send()
            .await;
        json_answer(resp).await
    }

    /// The node's background workers.
    pub async fn workers(&self) -> Result<Vec<crate::worker::WorkerView>> {
        let resp = self
            .http
            .get(format!("{}/workers", self.base))
            .timeout(std::time::Duration::from_secs(2))
            .send()
            .await;
        json_answer(resp).await
    }

    /// Pauses or resumes (`action`) the node's worker `name`.
    pub async fn steer_worker(
        &self,
        name: &str,
        action: &str,
    ) -> Result<crate::worker::WorkerView> {
        let resp = self
            .http
            .post(format!("{}/workers/{name}/{action}", self.base))
            .send()
            .await;
        json_answer(resp).await
    }

    /// Sets the node's scrub budget (bytes per second; 0: unlimited); the rate now in force.
    pub async fn set_scrub_rate(&self, rate: u64) -> Result<crate::worker::BudgetChange> {
        let resp = self
            .http
            .put(format!("{}/maintenance", self.base))
            .json(&crate::worker::BudgetChange { rate })
            .send()
            .await;
        json_answer(resp).await
    }

    /// Deletes a shard (`Ok` if it was not there).
    pub async fn delete(&self, id: ShardId) -> Result<()> {
        let resp = self
            .http
            .delete(self.url(id))
            .headers(traced())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(transport)?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        Ok(())
    }

    /// Up to `limit` shards after `after`, in id order.
    pub async fn list(&self, after: Option<ShardId>, limit: usize) -> Result<Vec<ShardInfo>> {
        let mut req = self
            .http
            .get(format!("{}/shards", self.base))
            .query(&[("limit", limit)]);
        if let Some(a) = after {
            req = req.query(&[("after", format!("{}/{}", a.version, a.index))]);
        }
        let resp = req.send().await.map_err(transport)?;
        if !resp.status().is_success() {
            return Err(error_from(resp).await);
        }
        resp.json().await.map_err(transport)
    }

    /// Every shard of the node, a page at a time, in id order.
    pub fn pages(&self, page_size: usize) -> ShardPages {
        ShardPages {
            client: self.clone(),
            after: None,
            page_size,
            done: false,
        }
    }

    /// The node's current heartbeat view of itself.
    pub async fn health(&self) -> Result<Heartbeat> {
        let resp = self
            .http
            .get(format!("{}/health", self.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        json_answer(resp).await
    }
}

/// Pages of a node's shard list (see [`NodeClient::pages`]).
pub struct ShardPages {
    client: NodeClient,
    after: Option<ShardId>,
    page_size: usize,
    done: bool,
}

impl ShardPages {
    /// The next non-empty page, or `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<ShardInfo>>> {
        if self.done {
            return Ok(None);
        }
        let page = self.client.list(self.after, self.page_size).await?;
        match page.last() {
            Some(last) => {
                self.after = Some(last.header.shard_id());
                Ok(Some(page))
            }
            None => {
                self.done = true;
                Ok(None)
            }
        }
    }
}
