//! An in-process Tessera cluster: one coordinator (or a replicated group of them) and N
//! storage nodes on loopback.
//!
//! Each storage node runs on its own single-threaded Tokio runtime on its own thread, so
//! [`LocalCluster::kill_node`] can stop it abruptly (its runtime is dropped with every task and
//! connection in it, as a killed process would lose them) while the rest keeps running.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tessera_coordinator::{CoordinatorConfig, EcSpec, Secrets};
use tessera_node::node::NodeConfig;
use tokio::sync::oneshot;

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct LocalClusterConfig {
    /// Number of storage nodes.
    pub nodes: usize,
    /// Root directory: `coordinator/` and `node-N/` go inside.
    pub data_dir: PathBuf,
    /// Client API address (`127.0.0.1:0` for any free port).
    pub listen: SocketAddr,
    /// Admin API address.
    pub admin_listen: SocketAddr,
    /// Coordinator settings (its `data_dir` is replaced by `data_dir/coordinator`).
    pub coordinator: CoordinatorConfig,
    /// Interval between node heartbeats.
    pub heartbeat_interval: Duration,
    /// Capacity limit of every node in bytes (0 = the filesystem's free space).
    pub node_capacity: u64,
    /// Scrub settings of every node.
    pub scrub: tessera_node::maintenance::scrub::ScrubConfig,
    /// Coordinators: 1 runs one with its own metadata; more form a replicated group (the
    /// others listen on the ports after `listen` and `admin_listen`, two apart, or on free
    /// ports when those are 0).
    pub coordinators: usize,
}

impl LocalClusterConfig {
    /// `nodes` nodes with erasure code `ec`, on free loopback ports, under `data_dir`.
    pub fn new(nodes: usize, ec: EcSpec, data_dir: &Path) -> Self {
        let mut coordinator = CoordinatorConfig::new(data_dir.join("coordinator"));
        coordinator.default_ec = ec;
        LocalClusterConfig {
            nodes,
            data_dir: data_dir.to_path_buf(),
            listen: "127.0.0.1:0".parse().unwrap(),
            admin_listen: "127.0.0.1:0".parse().unwrap(),
            coordinator,
            heartbeat_interval: Duration::from_millis(500),
            node_capacity: 0,
            scrub: NodeConfig::new(PathBuf::new(), String::new(), String::new()).scrub,
            coordinators: 1,
        }
    }
}

/// A storage node running on its own runtime thread.
struct NodeHandle {
    stop: Option<oneshot::Sender<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
    dir: PathBuf,
}

/// A running cluster. Dropping it stops everything.
pub struct LocalCluster {
    /// Client API address.
    pub api: SocketAddr,
    /// Admin API address.
    pub admin: SocketAddr,
    nodes: Vec<NodeHandle>,
    coordinator_stop: Option<oneshot::Sender<()>>,
    coordinator_task: Option<tokio::task::JoinHandle<()>>,
    /// The other coordinators of a replicated group.
    others: Vec<(oneshot::Sender<()>, tokio::task::JoinHandle<()>)>,
    /// Client API addresses of every coordinator (the first is `api`).
    pub apis: Vec<SocketAddr>,
    /// Admin API addresses of every coordinator (the first is `admin`).
    pub admins: Vec<SocketAddr>,
    config: LocalClusterConfig,
    secrets: Secrets,
}

impl LocalCluster {
    /// Starts the coordinator and the nodes and waits until every node is registered and up.
    pub async fn start(config: LocalClusterConfig) -> std::io::Result<LocalCluster> {
        let n = config.coordinators.max(1);
        let shifted = |a: SocketAddr, i: usize| -> SocketAddr {
            match a.port() {
                0 => a,
                p => SocketAddr::new(a.ip(), p + 2 * i as u16),
            }
        };
        let mut listeners = Vec::new();
        for i in 0..n {
            let api = tokio::net::TcpListener::bind(shifted(config.listen, i)).await?;
            let admin = tokio::net::TcpListener::bind(shifted(config.admin_listen, i)).await?;
            listeners.push((api, admin));
        }
        let apis: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.0.local_addr())
            .collect::<Result<_, _>>()?;
        let admins: Vec<SocketAddr> = listeners
            .iter()
            .map(|l| l.1.local_addr())
            .collect::<Result<_, _>>()?;
        let mut cc = config.coordinator.clone();
        cc.data_dir = config.data_dir.join("coordinator");
        // The harness reads (or creates) the secrets first, so its nodes can present them.
        let secrets = match &cc.secrets {
            Some(s) => s.clone(),
            None => Secrets::load_or_create(&cc.data_dir)?,
        };
        cc.secrets = Some(secrets.clone());
        let peers = tessera_coordinator::cluster::Peers(
            admins
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    (
                        i as u64 + 1,
                        format!("{}://{a}", config.coordinator.scheme()),
                    )
                })
                .collect(),
        );
        let mut tasks = Vec::new();
        for (i, (api, admin)) in listeners.into_iter().enumerate() {
            let mut cc = cc.clone();
            if n > 1 {
                cc.data_dir = config.data_dir.join(format!("coordinator-{}", i + 1));
                cc.cluster = Some(tessera_coordinator::cluster::ClusterConfig::new(
                    i as u64 + 1,
                    peers.clone(),
                ));
            }
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stop_rx.await;
                };
                if let Err(e) = tessera_coordinator::run(api, admin, cc, shutdown).await {
                    tracing::error!(error = %e, "coordinator stopped");
                }
            });
            tasks.push((stop_tx, task));
        }
        let (stop_tx, task) = tasks.remove(0);
        let mut cluster = LocalCluster {
            api: apis[0],
            admin: admins[0],
            nodes: Vec::new(),
            coordinator_stop: Some(stop_tx),
            coordinator_task: Some(task),
            others: tasks,
            apis,
            admins,
            config,
            secrets,
        };
        for i in 0..cluster.config.nodes {
            let dir = cluster.config.data_dir.join(format!("node-{i}"));
            let h = cluster.spawn_node(i, dir, "127.0.0.1:0".parse().unwrap())?;
            cluster.nodes.push(h);
        }
        cluster
            .wait_up(cluster.config.nodes, Duration::from_secs(30))
            .await?;
        Ok(cluster)
    }

    fn spawn_node(&self, i: usize, dir: PathBuf, addr: SocketAddr) -> std::io::Result<NodeHandle> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let coordinators = self
            .admins
            .iter()
            .map(|a| self.url_of(*a))
            .collect::<Vec<_>>()
            .join(",");
        let mut config = NodeConfig::new(
            dir.clone(),
            coordinators,
            self.secrets.cluster_secret.clone(),
        );
        config.client_tls = self.config.coordinator.client_tls.clone();
        if let (Some(ct), Some(ca)) = (
            &self.config.coordinator.cluster_tls,
            &self.config.coordinator.cluster_ca,
        ) {
            // Mutual TLS inside the cluster: this node's certificate from the cluster CA.
            let identity = tessera_node::tls::LocalCa::load(ca)?.issue(
                &dir.join("tls"),
                "node",
                &["127.0.0.1".to_string()],
                Some(tessera_node::tls::Role::Node),
                Duration::from_secs(365 * 24 * 3600),
            )?;
            let node = tessera_node::tls::ClusterTls {
                identity,
                ca: ct.ca.clone(),
                crl: ct.crl.clone(),
            };
            config.client_tls = tessera_node::tls::ClientTls::cluster(&node, &[])?;
            config.tls = Some(node);
        }
        config.zone = format!("zone-{i}");
        config.capacity = self.config.node_capacity;
        config.heartbeat_interval = self.config.heartbeat_interval;
        config.scrub = self.config.scrub.clone();
        let (stop_tx, stop_rx) = oneshot::channel::<bool>();
        let thread = std::thread::Builder::new()
            .name(format!("node-{i}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .expect("node runtime");
                let (graceful_tx, graceful_rx) = oneshot::channel::<()>();
                let server = rt.spawn(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                    let shutdown = async move {
                        let _ = graceful_rx.await;
                    };
                    if let Err(e) = tessera_node::node::serve(config, listener, shutdown).await {
                        tracing::error!(error = %e, "storage node stopped");
                    }
                });
                let graceful = rt.block_on(async { stop_rx.await.unwrap_or(true) });
                if graceful {
                    let _ = graceful_tx.send(());
                    let _ = rt.block_on(server);
                }
                // Abrupt stop: every task and connection of this node is dropped mid-flight.
                // Blocking calls already running (a RocksDB write) cannot be interrupted; they
                // are waited for, so the store is closed before this thread ends (a store
                // left open on a detached thread can abort the process at exit).
                rt.shutdown_timeout(Duration::from_secs(10));
            })?;
        Ok(NodeHandle {
            stop: Some(stop_tx),
            thread: Some(thread),
            addr,
            dir,
        })
    }

    /// The URL of a listener at `addr` of this cluster's coordinators (`https://` with TLS).
    pub fn url_of(&self, addr: SocketAddr) -> String {
        format!("{}://{addr}", self.config.coordinator.scheme())
    }

    /// Client API base URL.
    pub fn endpoint(&self) -> String {
        self.url_of(self.api)
    }

    /// Admin API base URL.
    pub fn admin_endpoint(&self) -> String {
        self.url_of(self.admin)
    }

    /// The admin token and cluster secret.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// A client that presents the admin token (for the admin API).
    pub fn admin_client(&self) -> reqwest::Client {
        self.config
            .coordinator
            .client_tls
            .apply(reqwest::Client::builder())
            .default_headers(tessera_node::auth::headers(&self.secrets.admin_token))
            .build()
            .expect("http client")
    }

    /// Creates an access key named `name`; returns (access key id, secret).
    pub async fn create_key(&self, name: &str) -> std::io::Result<(String, String)> {
        let r = self
            .admin_client()
            .post(format!("{}/keys", self.admin_endpoint()))
            .json(&serde_json::json!({ "name": name }))
            .send()
            .await
            .map_err(std::io::Error::other)?;
        let v: serde_json::Value = r.json().await.map_err(std::io::Error::other)?;
        match (v["access_key_id"].as_str(), v["secret_access_key"].as_str()) {
            (Some(id), Some(secret)) => Ok((id.to_string(), secret.to_string())),
            _ => Err(std::io::Error::other(format!("key not created: {v}"))),
        }
    }

    /// The key `tessera dev` prints: created on first start and kept in `data_dir/dev.key`
    /// (mode 0600), so restarts print the same one.
    pub async fn dev_key(&self) -> std::io::Result<(String, String)> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.config.data_dir.join("dev.key");
        if let Ok(text) = std::fs::read_to_string(&path) {
            if let Some((id, secret)) = text.trim().split_once(':') {
                return Ok((id.to_string(), secret.to_string()));
            }
        }
        let (id, secret) = self.create_key("dev").await?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(format!("{id}:{secret}\n").as_bytes())?;
        f.sync_all()?;
        Ok((id, secret))
    }

    /// Data directory of node `i`.
    pub fn node_dir(&self, i: usize) -> &Path {
        &self.nodes[i].dir
    }

    /// Shard API address of node `i`.
    pub fn node_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].addr
    }

    /// Number of nodes started.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Stops node `i` abruptly, dropping its in-flight requests.
    pub fn kill_node(&mut self, i: usize) {
        self.stop_node(i, false);
    }

    /// Stops node `i` gracefully (flushing its store).
    pub fn stop_node(&mut self, i: usize, graceful: bool) {
        let n = &mut self.nodes[i];
        if let Some(tx) = n.stop.take() {
            let _ = tx.send(graceful);
        }
        if let Some(t) = n.thread.take() {
            let _ = t.join();
        }
    }

    /// Restarts a stopped node on the same address with the same data dir.
    pub async fn restart_node(&mut self, i: usize) -> std::io::Result<()> {
        self.stop_node(i, true);
        let (dir, addr) = (self.nodes[i].dir.clone(), self.nodes[i].addr);
        // The store's lock is released once the old runtime's tasks are gone; retry briefly.
        let mut last = None;
        for _ in 0..50 {
            match self.spawn_node(i, dir.clone(), addr) {
                Ok(h) => {
                    self.nodes[i] = h;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.unwrap())
    }

    /// Waits until at least `n` nodes are reported up by `GET /cluster`.
    pub async fn wait_up(&self, n: usize, timeout: Duration) -> std::io::Result<()> {
        wait_nodes_up_with(&self.admin_client(), &self.admin_endpoint(), n, timeout).await
    }

    /// Stops the coordinator and every node gracefully.
    pub async fn shutdown(mut self) {
        for i in 0..self.nodes.len() {
            tokio::task::block_in_place(|| self.stop_node(i, true));
        }
        if let Some(tx) = self.coordinator_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.coordinator_task.take() {
            let _ = t.await;
        }
        for (tx, t) in self.others.drain(..) {
            let _ = tx.send(());
            let _ = t.await;
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            if let Some(tx) = n.stop.take() {
                let _ = tx.send(false);
            }
        }
        // Wait for the node threads, so no store outlives the cluster.
        for n in &mut self.nodes {
            if let Some(t) = n.thread.take() {
                let _ = t.join();
            }
        }
        if let Some(tx) = self.coordinator_stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = &self.coordinator_task {
            t.abort();
        }
        for (tx, t) in self.others.drain(..) {
            let _ = tx.send(());
            t.abort();
        }
    }
}

/// Polls `admin/cluster` (with the admin token) until `n` nodes are up or `timeout` passes.
pub async fn wait_nodes_up(
    admin: &str,
    token: &str,
    n: usize,
    timeout: Duration,
) -> std::io::Result<()> {
    let client = reqwest::Client::builder()
        .default_headers(tessera_node::auth::headers(token))
        .build()
        .map_err(std::io::Error::other)?;
    wait_nodes_up_with(&client, admin, n, timeout).await
}

/// [`wait_nodes_up`] asking with `client` (which presents the admin token).
pub async fn wait_nodes_up_with(
    client: &reqwest::Client,
    admin: &str,
    n: usize,
    timeout: Duration,
) -> std::io::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(r) = client.get(format!("{admin}/cluster")).send().await {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                let up = v["nodes"]
                    .as_array()
                    .map_or(0, |a| a.iter().filter(|x| x["state"] == "up").count());
                if up >= n {
                    return Ok(());
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("fewer than {n} nodes up after {timeout:?}"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
