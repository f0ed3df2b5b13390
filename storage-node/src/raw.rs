//! Raw shard reads: the GET path's node reads without the node touching the bytes.
//!
//! A reader opens `GET /raw` with the cluster secret and `Upgrade: tessera-raw-read/1`; the
//! node answers `101 Switching Protocols`, and the connection then carries any number of
//! reads, one after the other:
//!
//! - request, 42 bytes: version (16), shard index (2, big-endian), offset (8), length (8),
//!   the client request it is made for ([`crate::trace`], 8; 0 for none);
//! - answer: status (1: 0 = ok, else an error kind), chunk size (4), first chunk (8), byte
//!   count `n` (8), then `n` bytes: for ok, the stored chunk records (`blake3(data) || data`,
//!   see [`crate::store::verify_records`]) that cover the range; for an error, its message.
//!
//! The node sends a file-backed shard's records with `sendfile`, so they go from the page
//! cache to the socket without a copy through user space, and does not verify them: the
//! reader verifies every chunk against its blake3 ([`RawPool::read`]) before using a byte, so
//! a flipped bit on disk or on the way is still found, reported as
//! [`StoreError::Corrupt`], and repaired. The node's scrub keeps verifying at rest.

use crate::error::StoreError;
use crate::store::{verify_records, Records, RecordsAt};
use crate::types::{ObjectVersion, ShardId};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The `Upgrade` protocol name.
pub const PROTOCOL: &str = "tessera-raw-read/2";

const REQUEST_LEN: usize = 42;
const ANSWER_HEAD_LEN: usize = 21;

/// An idle raw connection is closed by the node after this long without a request.
const IDLE: Duration = Duration::from_secs(60);

/// Longest time the node spends sending one answer.
const SEND_TIMEOUT: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, StoreError>;

fn kind_code(e: &StoreError) -> u8 {
    match e {
        StoreError::NotFound(_) => 1,
        StoreError::InvalidArgument(_) => 2,
        StoreError::Corrupt(_) => 3,
        StoreError::Io(_) => 4,
        _ => 5,
    }
}

fn error_of(code: u8, msg: String) -> StoreError {
    match code {
        1 => StoreError::NotFound(msg),
        2 => StoreError::InvalidArgument(msg),
        3 => StoreError::Corrupt(msg),
        4 => StoreError::Io(msg),
        _ => StoreError::Unavailable(msg),
    }
}

fn answer_head(status: u8, chunk_size: u32, first: u64, n: u64) -> [u8; ANSWER_HEAD_LEN] {
    let mut h = [0u8; ANSWER_HEAD_LEN];
    let mut w = &mut h[..];
    w.put_u8(status);
    w.put_u32(chunk_size);
    w.put_u64(first);
    w.put_u64(n);
    h
}

/// Node side: serves reads on an upgraded connection until the reader closes it, goes idle
/// for a minute, or a send fails.
pub async fn serve(state: crate::server::NodeState, upgraded: hyper::upgrade::Upgraded) {
    let store = state.store.clone();
    // axum serves through hyper-util's auto builder, which wraps the connection.
    let (io, read_buf) =
        match hyper_util::server::conn::auto::upgrade::downcast::<TokioIo<TcpStream>>(upgraded) {
            Ok(p) => (p.io, p.read_buf),
            Err(up) => match up.downcast::<TokioIo<TcpStream>>() {
                Ok(p) => (p.io, p.read_buf),
                Err(_) => {
                    tracing::warn!("raw read connection is not a TCP stream");
                    return;
                }
            },
        };
    let mut sock = io.into_inner();
    // Answers are a small head then the records: without this, Nagle's algorithm holds the
    // tail of each answer until the reader's delayed acknowledgement.
    let _ = sock.set_nodelay(true);
    let mut pending = BytesMut::from(&read_buf[..]);
    loop {
        while pending.len() < REQUEST_LEN {
            match tokio::time::timeout(IDLE, sock.read_buf(&mut pending)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
        }
        let mut req = pending.split_to(REQUEST_LEN).freeze();
        let mut v = [0u8; 16];
        req.copy_to_slice(&mut v);
        let id = ShardId {
            version: ObjectVersion::from_bytes(v),
            index: req.get_u16(),
        };
        let (offset, len, request) = (req.get_u64(), req.get_u64(), req.get_u64());
        let started = std::time::Instant::now();
        let st = store.clone();
        let records = tokio::task::spawn_blocking(move || st.read_records(id, offset, len))
            .await
            .unwrap_or_else(|e| Err(StoreError::Io(format!("blocking task failed: {e}"))));
        let (ok, sent_bytes) = match &records {
            Ok(r) => (true, r.len()),
            Err(_) => (false, 0),
        };
        let sent = tokio::time::timeout(SEND_TIMEOUT, send_answer(&mut sock, records)).await;
        let sent_ok = matches!(sent, Ok(Ok(())));
        let status = if ok && sent_ok { 200 } else { 500 };
        state
            .metrics
            .request("raw_read", status, started.elapsed().as_secs_f64());
        if ok && sent_ok {
            state.metrics.read_bytes.inc_by(sent_bytes);
        }
        if request != 0 {
            tracing::debug!(
                target: "tessera_node::access",
                node = %state.node_id,
                request_id = %crate::trace::RequestId(request),
                op = "raw_read",
                shard = %id,
                offset,
                len,
                status,
                "shard request"
            );
        }
        if !sent_ok {
            return;
        }
    }
}

async fn send_answer(sock: &mut TcpStream, records: Result<Records>) -> std::io::Result<()> {
    let r = match records {
        Ok(r) => r,
        Err(e) => {
            let msg = e.to_string();
            sock.write_all(&answer_head(kind_code(&e), 0, 0, msg.len() as u64))
                .await?;
            return sock.write_all(msg.as_bytes()).await;
        }
    };
    sock.write_all(&answer_head(0, r.chunk_size, r.first, r.len()))
        .await?;
    match r.at {
        RecordsAt::Memory(v) => {
            for b in v {
                sock.write_all(&b).await?;
            }
            Ok(())
        }
        RecordsAt::File { file, offset, len } => send_file(sock, &file, offset, len).await,
    }
}

/// `len` bytes at `offset` of `file` to `sock` with `sendfile` (page cache -> socket, no
/// copy through user space). A file shorter than that is an error: the answer is cut short and
/// the connection closed, which the reader sees.
async fn send_file(
    sock: &mut TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let (out, inp) = (sock.as_raw_fd(), file.as_raw_fd());
    let mut off = offset as libc::off_t;
    let mut left = len as usize;
    while left > 0 {
        sock.writable().await?;
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call; `off` is a
            // valid offset pointer that sendfile advances.
            let n = unsafe { libc::sendfile(out, inp, &mut off, left) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        });
        match r {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => left -= n,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reader side: raw connections to every node, kept open between reads.
pub struct RawPool {
    secret: Arc<str>,
    idle: Mutex<HashMap<String, Vec<TcpStream>>>,
}

/// Idle connections kept per node.
const MAX_IDLE: usize = 64;

impl RawPool {
    /// A pool whose connections present `secret`.
    pub fn new(secret: &str) -> Arc<Self> {
        Arc::new(RawPool {
            secret: secret.into(),
            idle: Mutex::new(HashMap::new()),
        })
    }

    /// `len` bytes at `offset` of shard `id` on the node at `addr` (`host:port`), every
    /// chunk verified against its blake3 here, as slices of the received records.
    pub async fn read(
        &self,
        addr: &str,
        id: ShardId,
        offset: u64,
        len: u64,
        timeout: Duration,
    ) -> Result<Vec<Bytes>> {
        let pooled = self.idle.lock().unwrap().get_mut(addr).and_then(Vec::pop);
        let attempt = async {
            // A pooled connection may have been closed by the node since its last use (a
            // restart, the node's idle close): reads are idempotent, so a transport failure on
            // one is retried once on a fresh connection.
            if let Some(mut sock) = pooled {
                match exchange(&mut sock, id, offset, len).await {
                    Ok(out) => return Ok((sock, out)),
                    Err(e) => {
                        tracing::debug!(error = %e, "pooled raw connection failed; reconnecting")
                    }
                }
            }
            let mut sock = self.connect(addr).await?;
            let out = exchange(&mut sock, id, offset, len).await?;
            Ok::<_, StoreError>((sock, out))
        };
        let (sock, out) = tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| StoreError::Unavailable(format!("raw read of {id} timed out")))??;
        // The whole answer was read: the connection is clean and can serve the next read.
        let mut idle = self.idle.lock().unwrap();
        let list = idle.entry(addr.to_string()).or_default();
        if list.len() < MAX_IDLE {
            list.push(sock);
        }
        drop(idle);
        let (records, chunk_size, first) = out?;
        verify_records(records, chunk_size, first, offset, len, &id)
    }

    async fn connect(&self, addr: &str) -> Result<TcpStream> {
        let unavailable =
            |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("{addr}: {e}"));
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| unavailable(&e))?;
        let _ = tcp.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| unavailable(&e))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let req = http::Request::get("/raw")
            .header(http::header::HOST, addr)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", self.secret),
            )
            .header(http::header::CONNECTION, "upgrade")
            .header(http::header::UPGRADE, PROTOCOL)
            .body(String::new())
            .map_err(|e| unavailable(&e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| unavailable(&e))?;
        if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS {
            return Err(unavailable(&format!(
                "raw reads refused: {}",
                resp.status()
            )));
        }
        let up = hyper::upgrade::on(resp)
            .await
            .map_err(|e| unavailable(&e))?;
        let parts = up
            .downcast::<TokioIo<TcpStream>>()
            .map_err(|_| unavailable(&"upgraded connection is not TCP"))?;
        if !parts.read_buf.is_empty() {
            return Err(unavailable(&"bytes before the first raw request"));
        }
        Ok(parts.io.into_inner())
    }
}

/// One request and its whole answer: `Ok(Ok((records, chunk size, first chunk)))`, or
/// `Ok(Err(e))` for an error the node answered (the connection stays usable), or `Err` for a
/// broken connection.
async fn exchange(
    sock: &mut TcpStream,
    id: ShardId,
    offset: u64,
    len: u64,
) -> Result<Result<(Bytes, u32, u64)>> {
    let broken = |e: std::io::Error| StoreError::Unavailable(format!("raw read of {id}: {e}"));
    let mut req = BytesMut::with_capacity(REQUEST_LEN);
    req.put_slice(&id.version.to_bytes());
    req.put_u16(id.index);
    req.put_u64(offset);
    req.put_u64(len);
    req.put_u64(crate::trace::current().map_or(0, |r| r.0));
    sock.write_all(&req).await.map_err(broken)?;
    let mut head = [0u8; ANSWER_HEAD_LEN];
    sock.read_exact(&mut head).await.map_err(broken)?;
    let mut h = &head[..];
    let (status, chunk_size, first, n) = (h.get_u8(), h.get_u32(), h.get_u64(), h.get_u64());
    // A range's records are at most its length plus one chunk's hash per chunk and a chunk
    // either side; anything larger is not an answer to this request.
    let limit = len + 2 * chunk_size as u64 + 64 * (len / chunk_size.max(1) as u64 + 2);
    if n > limit.max(1 << 16) {
        return Err(StoreError::Unavailable(format!(
            "raw read of {id}: answer of {n} bytes for {len}"
        )));
    }
    let mut body = BytesMut::with_capacity(n as usize);
    while (body.len() as u64) < n {
        let got = (&mut *sock)
            .take(n - body.len() as u64)
            .read_buf(&mut body)
            .await
            .map_err(broken)?;
        if got == 0 {
            return Err(broken(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
    if status != 0 {
        let msg = String::from_utf8_lossy(&body).into_owned();
        return Ok(Err(error_of(status, msg)));
    }
    Ok(Ok((body.freeze(), chunk_size, first)))
}
