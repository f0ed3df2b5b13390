//! Starting a coordinator: background work, then the client (S3) and admin listeners until
//! shutdown.
//!
//! Both listeners share one connection loop: at most `max_connections` connections at once
//! (the rest wait in the kernel's listen queue), a connection that does not deliver a
//! complete request head within `header_read_timeout` is closed, and shutdown lets requests
//! in progress finish.

use crate::error::ApiError;
use crate::maintenance::Maintenance;
use crate::state::{Coordinator, CoordinatorConfig};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the client API on `api` and the admin API on `admin` until `shutdown` completes.
pub async fn run(
    api: TcpListener,
    admin: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let c = Coordinator::open(config).await?;
    if c.config.anonymous {
        tracing::warn!(
            "--anonymous: unsigned requests get full access to every bucket; for local experiments only"
        );
    }
    let stop = CancellationToken::new();
    tokio::spawn(crate::maintenance::retire::follow_states(
        c.upkeep.clone(),
        stop.clone(),
    ));
    tokio::spawn(crate::edge::console::sample_history(
        c.clone(),
        stop.clone(),
    ));
    match c.cluster.clone() {
        None => background(&c.upkeep, stop.clone()),
        Some(cluster) => {
            // Once per group: on the leader, with a handle fenced to its term.
            let (cc, lease) = (
                c.clone(),
                c.config
                    .cluster
                    .as_ref()
                    .map(|x| x.lease)
                    .unwrap_or_default(),
            );
            tokio::spawn(crate::cluster::leader::supervise(
                cluster,
                stop.clone(),
                lease,
                move |fenced, token| {
                    cc.set_maint(fenced);
                    background(&cc.upkeep, token);
                },
            ));
        }
    }
    if c.config.rebuild_metadata {
        spawn_rebuild(c.clone());
    }
    let s = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        s.cancel();
    });
    let tls = match &c.config.tls {
        Some(files) => Some(tokio_rustls::TlsAcceptor::from(
            tessera_node::tls::server_config(files)
                .map_err(|e| ApiError::Internal(format!("TLS: {e}")))?,
        )),
        None => None,
    };
    let limits = ConnLimits {
        header_read_timeout: c.config.header_read_timeout,
        max_connections: c.config.max_connections,
        tls,
    };
    let s3 = crate::edge::observe::Observed::new(
        crate::edge::access::cors::CorsHeaders::new(
            crate::edge::dialect::Dialect::new(
                crate::edge::lengthless::Lengthless::new(
                    crate::edge::service(c.clone())?,
                    c.clone(),
                ),
                c.config.domain.clone(),
            ),
            c.clone(),
        ),
        c.clone(),
    );
    let admin_app =
        hyper_util::service::TowerToHyperService::new(crate::edge::admin::app(c.clone()));
    let (a, b) = tokio::join!(
        serve(api, s3, limits.clone(), stop.clone()),
        serve(admin, admin_app, limits, stop.clone())
    );
    stop.cancel();
    a.and(b).map_err(|e| ApiError::Internal(e.to_string()))
}

/// Starts the once-per-cluster workers: garbage collection (with the orphan scan and
/// multipart expiry), drains, rebalance, recode, compaction, lifecycle, the version journal and background repair; they stop when `stop` is cancelled.
fn background(c: &Arc<Maintenance>, stop: CancellationToken) {
    let resume = c.clone();
    tokio::spawn(async move {
        // Once the nodes have had a heartbeat timeout to report (a run over nodes that
        // look down would find everything lost).
        tokio::time::sleep(resume.config.heartbeat_timeout).await;
        if let Err(e) = crate::maintenance::repair::resume_runs(&resume).await {
            tracing::warn!(error = %e, "could not resume unfinished repair runs");
        }
    });
    tokio::spawn(crate::maintenance::gc::run(c.clone(), stop.clone()));
    tokio::spawn(crate::maintenance::retire::drains(c.clone(), stop.clone()));
    tokio::spawn(crate::maintenance::rebalance::worker(
        c.clone(),
        stop.clone(),
    ));
    tokio::spawn(crate::maintenance::recode::worker(c.clone(), stop.clone()));
    tokio::spawn(crate::maintenance::compact::worker(c.clone(), stop.clone()));
    tokio::spawn(crate::maintenance::lifecycle::worker(
        c.clone(),
        stop.clone(),
    ));
    tokio::spawn(crate::maintenance::journal::worker(c.clone(), stop.clone()));
    if c.config.background_repair {
        tokio::spawn(crate::maintenance::repair::background(c.clone(), stop));
    }
}

fn spawn_rebuild(c: Arc<Coordinator>) {
    *c.rebuild.lock().unwrap() = Some(Default::default());
    c.set_rebuilding(true);
    tokio::spawn(async move {
        // Give every node a chance to register first: a heartbeat timeout, then until no
        // new node has registered for another one (a busy machine delays some nodes'
        // first heartbeat, and a rebuild without a node misses the objects it holds).
        tokio::time::sleep(c.config.heartbeat_timeout).await;
        loop {
            let (registered, up) = (c.registry.registered(), c.registry.candidates().len());
            tokio::time::sleep(c.config.heartbeat_timeout).await;
            if c.registry.registered() == registered && c.registry.candidates().len() == up {
                break;
            }
        }
        match crate::maintenance::rebuild::rebuild(&c.upkeep).await {
            Ok(r) => {
                tracing::info!(
                    objects = r.objects,
                    shards = r.shards,
                    nodes = r.nodes,
                    "metadata rebuilt"
                );
                *c.rebuild.lock().unwrap() = Some(r);
                c.set_rebuilding(false);
            }
            // Garbage collection stays paused: with the metadata half rebuilt, every shard
            // it lacks would look unreferenced.
            Err(e) => tracing::error!(error = %e, "metadata rebuild failed"),
        }
    });
}

/// Connection limits and transport of a listener.
#[derive(Clone)]
pub struct ConnLimits {
    /// Longest wait for a complete request head (and for a TLS handshake).
    pub header_read_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// TLS on every connection (`None`: plain HTTP).
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Serves HTTP/1.1 on `listener` with `svc` until `stop`, within `limits`.
pub async fn serve<S, B>(
    listener: TcpListener,
    svc: S,
    limits: ConnLimits,
    stop: CancellationToken,
) -> std::io::Result<()>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("semaphore is never closed"),
            _ = stop.cancelled() => break,
        };
        let (stream, peer) = tokio::select! {
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
        let (svc, watcher, limits) = (svc.clone(), graceful.watcher(), limits.clone());
        tokio::spawn(async move {
            // The connection's slot is held until this task ends, however it ends.
            let _permit = permit;
            let io: Box<dyn Io> = match &limits.tls {
                None => Box::new(stream),
                Some(acceptor) => {
                    match tessera_node::tls::accept(acceptor, stream, limits.header_read_timeout)
                        .await
                    {
                        Ok(Some(tls)) => Box::new(tls),
                        Ok(None) => return,
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    }
                }
            };
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let svc = CloseUnsent(svc, peer, limits.tls.is_some());
            let _ = watcher
                .watch(builder.serve_connection(TokioIo::new(io), svc))
                .await;
        });
    }
    // Requests in progress get a while to finish.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

/// A client connection, plain or TLS.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// Puts the client's address into each request ([`crate::edge::observe::PeerAddr`]), and
/// [`crate::edge::observe::OverTls`] when it came over TLS, and closes the connection
/// after a refusal of a request that asked `Expect: 100-continue`.
///
/// A client that sent that header and gets a final answer instead of `100 Continue` may keep
/// its body to itself (botocore does) and send the next request on the same connection. The
/// server cannot tell those bytes from the body it was promised: hyper reads as many bytes as
/// the promised `Content-Length` "in case a tiny body was included", eating the start of the
/// next request, which then fails to parse (seen: 400 for a plain PUT after a conditional PUT
/// got 412). Every answer but a success may come before the body is read, so those get
/// `Connection: close`; the client opens a fresh connection for its next request.
#[derive(Clone)]
struct CloseUnsent<S>(S, std::net::SocketAddr, bool);

impl<S, B> hyper::service::Service<http::Request<Incoming>> for CloseUnsent<S>
where
    S: hyper::service::Service<http::Request<Incoming>, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<B>, S::Error>> + Send + 'static>,
    >;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        req.extensions_mut()
            .insert(crate::edge::observe::PeerAddr(self.1));
        if self.2 {
            req.extensions_mut().insert(crate::edge::observe::OverTls);
        }
        let expects = req
            .headers()
            .get(http::header::EXPECT)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        let fut = self.0.call(req);
        Box::pin(async move {
            let mut resp = fut.await?;
            if expects && !resp.status().is_success() {
                resp.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            Ok(resp)
        })
    }
}
