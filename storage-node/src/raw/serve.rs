//! The node side of raw reads: stored chunk records sent as they are (`sendfile` for a
//! file-backed shard on a plain connection), unverified; the reader verifies.

use super::{answer_head, kind_code, Result, IDLE, REQUEST_LEN, SEND_TIMEOUT};
use crate::error::StoreError;
use crate::listen::PeerStream;
use crate::state::NodeState;
use crate::store::{Records, RecordsAt};
use crate::types::{ObjectVersion, ShardId};
use bytes::{Buf, BytesMut};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Node side: serves reads on an upgraded connection until the reader closes it, goes idle
/// for a minute, or a send fails.
pub async fn serve(state: NodeState, upgraded: hyper::upgrade::Upgraded) {
    let store = state.store.clone();
    let (mut sock, read_buf) = match upgraded.downcast::<TokioIo<PeerStream>>() {
        Ok(p) => (p.io.into_inner(), p.read_buf),
        Err(_) => {
            tracing::warn!("raw read connection is not one the node's listener made");
            return;
        }
    };
    // Answers are a small head then the records: without this, Nagle's algorithm holds the
    // tail of each answer until the reader's delayed acknowledgement.
    let _ = match &sock {
        PeerStream::Plain(s) => s.set_nodelay(true),
        PeerStream::Tls(s) => s.get_ref().0.set_nodelay(true),
    };
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
        let tls = matches!(sock, PeerStream::Tls(_));
        let records = tokio::task::spawn_blocking(move || {
            let r = st.read_records(id, offset, len)?;
            // TLS encrypts in user space, so a file's records are read here, off the runtime.
            if !tls || matches!(r.at, RecordsAt::Memory(_)) {
                return Ok(r);
            }
            let (chunk_size, first) = (r.chunk_size, r.first);
            let at = RecordsAt::Memory(vec![r.load()?]);
            Ok(Records {
                chunk_size,
                first,
                at,
            })
        })
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

/// Writes the answer to `records`, then flushes (TLS holds the last record until then).
async fn send_answer(sock: &mut PeerStream, records: Result<Records>) -> std::io::Result<()> {
    write_answer(sock, records).await?;
    sock.flush().await
}

async fn write_answer(sock: &mut PeerStream, records: Result<Records>) -> std::io::Result<()> {
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
        RecordsAt::File { file, offset, len } => match sock {
            PeerStream::Plain(tcp) => send_file(tcp, &file, offset, len).await,
            // `serve` reads them into memory for a TLS connection.
            PeerStream::Tls(_) => Err(std::io::Error::other("file records on a TLS connection")),
        },
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
    let mut off = offset;
    let mut left = len as usize;
    while left > 0 {
        sock.writable().await?;
        let r = sock.try_io(tokio::io::Interest::WRITABLE, || {
            rustix::fs::sendfile(&*sock, file, Some(&mut off), left).map_err(Into::into)
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
