//! A storage node process: its configuration, its identity on disk, and [`serve`], which opens
//! the store, starts the background workers and serves until shut down.

use crate::maintenance::{heartbeat, reclaim, scrub};
use crate::state::{coordinators, NodeState};
use crate::types::NodeId;
use crate::worker::Budget;
use std::future::Future;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Loads the node id kept in `dir/node_id`, creating it on first start (as `wanted` if
/// given). Written to a temp file, fsynced and renamed so a crash never leaves a half-written
/// id. A stored id different from `wanted` is an error: the data dir belongs to another node.
pub fn load_or_create_node_id(
    dir: &std::path::Path,
    wanted: Option<NodeId>,
) -> std::io::Result<NodeId> {
    use std::io::Write;
    let path = dir.join("node_id");
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id: NodeId = s
                .trim()
                .parse()
                .map_err(|e: String| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            match wanted {
                Some(w) if w != id => Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("data dir belongs to node {id}, not {w}"),
                )),
                _ => Ok(id),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = wanted.unwrap_or_else(NodeId::random);
            let tmp = dir.join("node_id.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(id.as_str().as_bytes())?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)?;
            std::fs::File::open(dir)?.sync_all()?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Configuration of a storage node process.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// Directory holding the node id and the shard database.
    pub data_dir: std::path::PathBuf,
    /// Coordinator admin URL (`http://host:port`) to send heartbeats to; a comma-separated list
    /// for a replicated group (each gets heartbeats and scrub reports).
    pub coordinator: String,
    /// Zone reported to the coordinator.
    pub zone: String,
    /// Capacity limit in bytes (0 = whole filesystem).
    pub capacity: u64,
    /// Free space kept on the filesystem, refused to shard writes (`None`: 1% of the
    /// filesystem, at most 1 GiB).
    pub reserve: Option<u64>,
    /// Time between heartbeats.
    pub heartbeat_interval: std::time::Duration,
    /// Background verification of stored shards.
    pub scrub: scrub::ScrubConfig,
    /// Identity to adopt when the data dir holds none (a replaced disk keeps its node's id).
    pub node_id: Option<NodeId>,
    /// The cluster secret (from `--cluster-secret-file` or `TESSERA_CLUSTER_SECRET`).
    pub cluster_secret: String,
    /// How often the node looks whether deleted small shards are worth a compaction.
    pub reclaim_interval: std::time::Duration,
    /// What the node trusts when a coordinator URL is `https://` (`--ca-cert`; with `tls`,
    /// the cluster CA too, and the node presents its certificate).
    pub client_tls: crate::tls::ClientTls,
    /// Mutual TLS inside the cluster: the node's certificate (role node), the cluster CA its
    /// clients' certificates must chain to (role coordinator), and the CA's revocation list.
    /// `None`: plain HTTP.
    pub tls: Option<crate::tls::ClusterTls>,
}

impl NodeConfig {
    /// Defaults for a node keeping its data in `data_dir`, reporting to `coordinator` and
    /// presenting `cluster_secret`: zone `default`, the whole filesystem, a heartbeat a
    /// second, scrubbing 16 MiB/s with an hour between passes, reclaim checks every 10 s.
    pub fn new(data_dir: std::path::PathBuf, coordinator: String, cluster_secret: String) -> Self {
        NodeConfig {
            data_dir,
            coordinator,
            zone: "default".into(),
            capacity: 0,
            reserve: None,
            heartbeat_interval: std::time::Duration::from_secs(1),
            scrub: scrub::ScrubConfig {
                rate: 16 << 20,
                interval: std::time::Duration::from_secs(3600),
            },
            node_id: None,
            cluster_secret,
            reclaim_interval: std::time::Duration::from_secs(10),
            client_tls: Default::default(),
            tls: None,
        }
    }
}

/// How long requests in flight get to finish once a node is asked to stop.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Opens the node's store in `config.data_dir`, registers with the coordinator and serves on
/// `listener` until `shutdown` completes; requests in flight then get [`DRAIN`] to finish,
/// background work stops and the store is flushed.
pub async fn serve(
    config: NodeConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let dir = config.data_dir.clone();
    let wanted_id = config.node_id.clone();
    let (node_id, store) = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(dir.join("shards"))?;
        let id = load_or_create_node_id(&dir, wanted_id)?;
        let store = crate::store::RocksShardStore::open(&dir.join("shards"))
            .map_err(std::io::Error::other)?;
        Ok::<_, std::io::Error>((id, store))
    })
    .await??;
    let addr = listener.local_addr()?.to_string();
    tracing::info!(node = %node_id, %addr, zone = %config.zone, "storage node serving");
    let state = NodeState {
        store: Arc::new(store.clone()),
        node_id,
        zone: config.zone.clone(),
        capacity: config.capacity,
        reserve: config
            .reserve
            .unwrap_or_else(|| crate::state::default_reserve(&config.data_dir)),
        data_dir: config.data_dir.clone(),
        scrub: Default::default(),
        secret: config.cluster_secret.as_str().into(),
        metrics: Default::default(),
        workers: Default::default(),
        budget: Arc::new(Budget::new(config.scrub.rate)),
        client_tls: config.client_tls.clone(),
    };
    // One way to stop: every background worker watches this token, cancelled once the
    // service has shut down; the store is flushed after they have all ended.
    let stop = CancellationToken::new();
    let mut tasks = Vec::new();
    // Every coordinator of a replicated group keeps its own view of which nodes are up.
    for url in coordinators(&config.coordinator) {
        tasks.push(tokio::spawn(heartbeat::run(
            state.clone(),
            addr.clone(),
            url.to_string(),
            config.heartbeat_interval,
            stop.clone(),
        )));
    }
    tasks.push(tokio::spawn(scrub::run(
        state.clone(),
        config.scrub.clone(),
        config.coordinator.clone(),
        stop.clone(),
    )));
    tasks.push(tokio::spawn(reclaim::run(
        state.clone(),
        config.reclaim_interval,
        stop.clone(),
    )));
    // Stopping: the listener closes and requests in flight get `DRAIN` to finish; whatever
    // is still open then is dropped (a client stalled mid-body cannot hold the stop).
    let serving = CancellationToken::new();
    let s = serving.clone();
    tokio::spawn(async move {
        shutdown.await;
        s.cancel();
    });
    let acceptor = match &config.tls {
        None => None,
        Some(t) => Some(tokio_rustls::TlsAcceptor::from(crate::tls::server_config(
            &t.identity,
            crate::tls::ClientAuth::Required(crate::tls::Trust::new(
                std::slice::from_ref(&t.ca),
                t.crl.as_deref(),
            )?),
        )?)),
    };
    let r = crate::http::run(listener, state, acceptor, DRAIN, serving).await;
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    tokio::task::spawn_blocking(move || store.flush())
        .await?
        .map_err(std::io::Error::other)?;
    r
}
