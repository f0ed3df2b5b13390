//! The reader side of raw reads: connections to every node kept open between reads, and every
//! chunk verified against its blake3 before a byte is used.

use super::{error_of, Result, ANSWER_HEAD_LEN, PROTOCOL, REQUEST_LEN};
use crate::error::StoreError;
use crate::store::verify_records;
use crate::types::ShardId;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A raw read connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

/// Reader side: raw connections to every node, kept open between reads.
pub struct RawPool {
    secret: Arc<str>,
    /// TLS to the nodes (mutual TLS inside a cluster), if the cluster uses it.
    tls: Option<tokio_rustls::TlsConnector>,
    idle: Mutex<HashMap<String, Vec<Stream>>>,
}

/// Idle connections kept per node.
const MAX_IDLE: usize = 64;

impl RawPool {
    /// A pool whose connections present `secret`, over TLS with `tls`' settings if given.
    pub fn new(secret: &str, tls: &crate::tls::ClientTls) -> Arc<Self> {
        Arc::new(RawPool {
            secret: secret.into(),
            tls: tls.config().map(tokio_rustls::TlsConnector::from),
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

    async fn connect(&self, addr: &str) -> Result<Stream> {
        let unavailable =
            |e: &dyn std::fmt::Display| StoreError::Unavailable(format!("{addr}: {e}"));
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| unavailable(&e))?;
        let _ = tcp.set_nodelay(true);
        let io: Stream = match &self.tls {
            None => Box::new(tcp),
            Some(connector) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| unavailable(&e))?;
                Box::new(
                    connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| unavailable(&e))?,
                )
            }
        };
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
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
            .downcast::<TokioIo<Stream>>()
            .map_err(|_| unavailable(&"upgraded connection is not the one opened"))?;
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
    sock: &mut Stream,
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
    // Over TLS the request may wait in the record buffer until flushed.
    sock.flush().await.map_err(broken)?;
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
