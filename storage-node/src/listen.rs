//! The one way Tessera serves HTTP/1.1 connections, plain or TLS: a node's listener and both
//! of a coordinator's.
//!
//! At most `max_connections` connections at once (the rest wait in the kernel's listen
//! queue); a TLS handshake (and, where set, a request head) must complete within
//! `header_read_timeout`; a listener that `require`s a role answers requests on connections
//! whose client certificate does not name it with a `403` and closes them; on stop,
//! accepting ends, requests in progress get `drain` to finish, and connections still open
//! then are dropped.

use crate::tls::{role_of, Role};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a listener accepts and serves connections.
#[derive(Clone)]
pub struct ConnLimits {
    /// Longest wait for a TLS handshake and, if set, for a complete request head.
    pub header_read_timeout: Option<Duration>,
    /// Connections served at once.
    pub max_connections: usize,
    /// TLS on every connection (`None`: plain HTTP).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// The role a client's certificate must name to be served (`None`: any client).
    pub require: Option<Role>,
    /// How long requests in progress get to finish once stopping.
    pub drain: Duration,
}

/// Who is at the other end of a connection.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    /// Its address.
    pub addr: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The role its client certificate names (mutual TLS), if any.
    pub role: Option<Role>,
}

/// A served connection, plain or TLS. Raw reads ([`crate::raw`]) take it over after an
/// upgrade and use `sendfile` on a plain one.
pub enum PeerStream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

macro_rules! delegate {
    ($self:ident, $s:ident => $e:expr) => {
        match $self.get_mut() {
            PeerStream::Plain($s) => {
                let $s = Pin::new($s);
                $e
            }
            PeerStream::Tls($s) => {
                let $s = Pin::new(&mut **$s);
                $e
            }
        }
    };
}

impl AsyncRead for PeerStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_read(cx, buf))
    }
}

impl AsyncWrite for PeerStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write(cx, b))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        delegate!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            PeerStream::Plain(s) => s.is_write_vectored(),
            PeerStream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        delegate!(self, s => s.poll_shutdown(cx))
    }
}

/// Serves a connection whose client certificate lacks the role `required`: each request gets
/// a `403` saying so (after its head is read, so the client sees the answer rather than a
/// connection closed under its request), and the connection closes.
async fn refuse(io: PeerStream, required: Role) {
    let msg = format!(
        "This listener serves only clients with a certificate of the role {}.\n",
        required.unit()
    );
    let svc = hyper::service::service_fn(move |_req: http::Request<Incoming>| {
        let answer = http::Response::builder()
            .status(http::StatusCode::FORBIDDEN)
            .header(http::header::CONTENT_TYPE, "text/plain")
            .header(http::header::CONNECTION, "close")
            .body(msg.clone());
        async move { answer }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    let _ = builder.serve_connection(TokioIo::new(io), svc).await;
}

/// The TLS handshake (if any) and the role check of one accepted connection; `None` when the
/// connection was answered already or failed.
async fn establish(
    stream: TcpStream,
    addr: SocketAddr,
    limits: &ConnLimits,
) -> Option<(PeerStream, Peer)> {
    let Some(acceptor) = &limits.tls else {
        let peer = Peer {
            addr,
            tls: false,
            role: None,
        };
        return Some((PeerStream::Plain(stream), peer));
    };
    let deadline = limits
        .header_read_timeout
        .unwrap_or(Duration::from_secs(30));
    let tls = match crate::tls::accept(acceptor, stream, deadline).await {
        Ok(Some(tls)) => tls,
        Ok(None) => return None,
        Err(e) => {
            tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
            return None;
        }
    };
    let role = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| role_of(c));
    if let Some(required) = limits.require {
        if role != Some(required) {
            tracing::warn!(peer = %addr, ?role, "client certificate without the required role refused");
            refuse(PeerStream::Tls(Box::new(tls)), required).await;
            return None;
        }
    }
    let peer = Peer {
        addr,
        tls: true,
        role,
    };
    Some((PeerStream::Tls(Box::new(tls)), peer))
}

/// Serves HTTP/1.1 on `listener` until `stop`, within `limits`: each connection is served by
/// the service `make` returns for its [`Peer`].
pub async fn serve<F, S, B>(
    listener: TcpListener,
    make: F,
    limits: ConnLimits,
    stop: CancellationToken,
) -> io::Result<()>
where
    F: Fn(Peer) -> S + Send + Sync + 'static,
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let make = Arc::new(make);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut open = tokio::task::JoinSet::new();
    loop {
        while open.try_join_next().is_some() {}
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let (make, limits, stop) = (make.clone(), limits.clone(), stop.clone());
        open.spawn(async move {
            // The connection's slot is held until this task ends, however it ends.
            let _permit = permit;
            let Some((io, peer)) = establish(stream, addr, &limits).await else {
                return;
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder
                .serve_connection(TokioIo::new(io), make(peer))
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let drained = tokio::time::timeout(limits.drain, async {
        while open.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = open.len(),
            "connections still open {:?} after the stop was asked for: dropped",
            limits.drain
        );
        open.abort_all();
    }
    Ok(())
}
