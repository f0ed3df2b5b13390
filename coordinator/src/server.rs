//! Starting a coordinator: background work, then the client (S3) and admin listeners until
//! shutdown.
//!
//! Both listeners are served by the one connection loop ([`tessera_node::listen`]): at most
//! `max_connections` connections at once, a connection that does not deliver a complete
//! request head within `header_read_timeout` is closed, and shutdown gives requests in
//! progress 10 s.

use crate::error::ApiError;
use crate::maintenance::Maintenance;
use crate::state::{Coordinator, CoordinatorConfig};
use hyper::body::Incoming;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tessera_node::listen::{serve, ConnLimits, Peer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

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
    if let (Some(ct), Some(ca)) = (&c.config.cluster_tls, &c.config.cluster_ca) {
        tokio::spawn(renew_cluster_certificate(
            ct.identity.clone(),
            ca.clone(),
            c.config.cluster_names.clone(),
            stop.clone(),
        ));
    }
    let s = stop.clone();
    tokio::spawn(async move {
        shutdown.await;
        s.cancel();
    });
    let (api_tls, admin_tls) = listener_tls(&c.config)?;
    let limits = |tls| ConnLimits {
        header_read_timeout: Some(c.config.header_read_timeout),
        max_connections: c.config.max_connections,
        tls,
        require: None,
        drain: Duration::from_secs(10),
    };
    let (api_limits, admin_limits) = (limits(api_tls), limits(admin_tls));
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
        serve(
            api,
            move |peer| CloseUnsent(s3.clone(), peer),
            api_limits,
            stop.clone()
        ),
        serve(
            admin,
            move |peer| CloseUnsent(admin_app.clone(), peer),
            admin_limits,
            stop.clone()
        )
    );
    stop.cancel();
    a.and(b).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The TLS of the client and the admin listener. Both serve `--tls-cert` if given, else,
/// inside a cluster with mutual TLS, the coordinator's cluster certificate (clients trust the
/// cluster CA), else plain HTTP. Inside a cluster with mutual TLS the admin listener also
/// asks clients for a cluster certificate (nodes and peers present one, operators need none).
fn listener_tls(
    config: &CoordinatorConfig,
) -> Result<(Option<TlsAcceptor>, Option<TlsAcceptor>), ApiError> {
    use tessera_node::tls::{server_config, ClientAuth, Trust};
    let tls_err = |e: std::io::Error| ApiError::Internal(format!("TLS: {e}"));
    let files = config
        .tls
        .as_ref()
        .or(config.cluster_tls.as_ref().map(|ct| &ct.identity));
    let Some(files) = files else {
        return Ok((None, None));
    };
    let api = server_config(files, ClientAuth::None).map_err(tls_err)?;
    let admin = match &config.cluster_tls {
        Some(ct) => {
            let trust =
                Trust::new(std::slice::from_ref(&ct.ca), ct.crl.as_deref()).map_err(tls_err)?;
            server_config(files, ClientAuth::Optional(trust)).map_err(tls_err)?
        }
        None => api.clone(),
    };
    Ok((Some(api.into()), Some(admin.into())))
}

/// How long a coordinator's cluster certificate is issued for.
pub const CLUSTER_CERT_VALID: Duration = Duration::from_secs(365 * 86_400);

/// Issues this coordinator's cluster certificate again when it has less than a third of its
/// validity left (looked at hourly); the listeners and clients read the new files at their
/// next handshake.
async fn renew_cluster_certificate(
    identity: tessera_node::tls::CertFiles,
    ca: tessera_node::tls::CertFiles,
    names: Vec<String>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
        }
        let (identity, ca, names) = (identity.clone(), ca.clone(), names.clone());
        let renewed =
            tokio::task::spawn_blocking(move || renew_if_due(&identity, &ca, &names)).await;
        match renewed {
            Ok(Ok(true)) => tracing::info!("cluster certificate renewed"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not renew the cluster certificate"),
            Err(e) => tracing::warn!(error = %e, "certificate renewal task failed"),
        }
    }
}

/// Issues the certificate `identity` again from the CA `ca` for `names` when less than a third
/// of [`CLUSTER_CERT_VALID`] is left; whether it did.
fn renew_if_due(
    identity: &tessera_node::tls::CertFiles,
    ca: &tessera_node::tls::CertFiles,
    names: &[String],
) -> std::io::Result<bool> {
    use tessera_node::tls::{ca::valid_for, LocalCa, Role};
    if valid_for(&identity.cert)? > CLUSTER_CERT_VALID / 3 {
        return Ok(false);
    }
    let dir = identity.cert.parent().unwrap_or(std::path::Path::new("."));
    let stem = identity
        .cert
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("coordinator");
    let issued = LocalCa::load(ca)?.issue(
        dir,
        stem,
        names,
        Some(Role::Coordinator),
        CLUSTER_CERT_VALID,
    )?;
    debug_assert_eq!(&issued, identity);
    Ok(true)
}

/// Starts the once-per-cluster workers: garbage collection (with the orphan scan and
/// multipart expiry), drains, rebalance, the high watermark, recode, compaction, lifecycle, the version journal and background repair; they stop when `stop` is cancelled.
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
    tokio::spawn(crate::maintenance::watermark::worker(
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

/// Puts the connection's [`Peer`] (address, TLS, the role its certificate names) into each
/// request, and closes the connection after a refusal of a request that asked `Expect:
/// 100-continue`.
///
/// A client that sent that header and gets a final answer instead of `100 Continue` may keep
/// its body to itself (botocore does) and send the next request on the same connection. The
/// server cannot tell those bytes from the body it was promised: hyper reads as many bytes as
/// the promised `Content-Length` "in case a tiny body was included", eating the start of the
/// next request, which then fails to parse (seen: 400 for a plain PUT after a conditional PUT
/// got 412). Every answer but a success may come before the body is read, so those get
/// `Connection: close`; the client opens a fresh connection for its next request.
#[derive(Clone)]
struct CloseUnsent<S>(S, Peer);

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
        req.extensions_mut().insert(self.1);
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

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_node::tls::{ca::valid_for, CertFiles, LocalCa, Role};

    /// A coordinator certificate with a month left is issued again for a year (same files);
    /// one with most of its year left is kept.
    #[test]
    fn a_cluster_certificate_is_renewed_before_it_expires() {
        let dir = tempfile::tempdir().unwrap();
        let ca = LocalCa::load_or_create(dir.path(), "test CA").unwrap();
        let names = vec!["127.0.0.1".to_string()];
        let tls = dir.path().join("tls");
        let month = Duration::from_secs(30 * 86_400);
        let identity = ca
            .issue(&tls, "coordinator", &names, Some(Role::Coordinator), month)
            .unwrap();
        let ca_files = CertFiles {
            cert: dir.path().join("ca.pem"),
            key: dir.path().join("ca.key"),
        };
        assert!(valid_for(&identity.cert).unwrap() <= month);
        assert!(renew_if_due(&identity, &ca_files, &names).unwrap());
        let left = valid_for(&identity.cert).unwrap();
        assert!(
            left > CLUSTER_CERT_VALID - Duration::from_secs(3600),
            "{left:?}"
        );
        assert!(!renew_if_due(&identity, &ca_files, &names).unwrap());
        // The renewed pair is a certificate and its key, of the coordinator's role.
        let der = tessera_node::tls::read_certs(&identity.cert)
            .unwrap()
            .remove(0);
        assert_eq!(tessera_node::tls::role_of(&der), Some(Role::Coordinator));
        tessera_node::tls::server_config(&identity, tessera_node::tls::ClientAuth::None).unwrap();
    }
}
