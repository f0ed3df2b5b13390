//! The `tessera` binary: `dev`, `coordinator` and `node`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera::cluster::{Cluster, ClusterConfig};
use tessera::duration::parse_duration;
use tessera_coordinator::names::parse_size;
use tessera_coordinator::{CoordinatorConfig, EcSpec};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Erasure-coded distributed blob store"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a local cluster (coordinator + N storage nodes) in one process.
    Dev {
        /// Number of storage nodes.
        #[arg(long, default_value_t = 6)]
        nodes: usize,
        /// Default erasure code K+M.
        #[arg(long, default_value = "4+2")]
        ec: EcSpec,
        /// Root data directory (persistent across restarts).
        #[arg(long, default_value = "./tessera-data")]
        data_dir: PathBuf,
        /// Client API address.
        #[arg(long, default_value = "127.0.0.1:7070")]
        listen: SocketAddr,
        /// Admin API address.
        #[arg(long, default_value = "127.0.0.1:7071")]
        admin_listen: SocketAddr,
        /// Objects smaller than this are stored as m+1 replicas (0 = never).
        #[arg(long, default_value = "0", value_parser = parse_size)]
        replicate_below: u64,
        /// Objects smaller than this are packed into shared segments (0 = never).
        #[arg(long, default_value = "128KiB", value_parser = parse_size)]
        pack_below: u64,
        /// Unsigned requests get full access (local experiments only).
        #[arg(long)]
        anonymous: bool,
        /// Coordinators: more than one form a replicated group (client ports 7070, 7072,
        /// 7074..., admin ports 7071, 7073, 7075... by default).
        #[arg(long, default_value_t = 1)]
        coordinators: usize,
    },
    /// Run the coordinator.
    Coordinator(CoordinatorArgs),
    /// Find and rebuild lost or corrupt shards (runs in the coordinator; this drives and
    /// watches it). Exit code 0 when everything is healthy afterwards.
    Repair {
        /// Coordinator admin URL, e.g. http://127.0.0.1:7071.
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        /// Report what would be repaired; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Only this bucket.
        #[arg(long)]
        bucket: Option<String>,
        /// Only objects with a shard on this node.
        #[arg(long)]
        node: Option<String>,
        /// Objects repaired at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Repair grace for this run (e.g. `0s`): shards on nodes down longer than this are
        /// rebuilt now (default: the coordinator's --repair-grace).
        #[arg(long, value_parser = parse_duration)]
        grace: Option<Duration>,
        /// Read every shard of the selected objects and check its chunk hashes, then rebuild
        /// what is corrupt (within the coordinator's repair rate).
        #[arg(long)]
        verify: bool,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Load generator (PUT then GET phase) for any S3 path-style endpoint; `--ceiling` also
    /// measures this machine's limits in the same run.
    Bench {
        #[command(flatten)]
        config: tessera::bench::BenchConfig,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Show nodes, degraded objects, the repair queue and scrub progress.
    Status {
        /// Coordinator admin URL.
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Manage access keys (admin API).
    Key {
        /// Coordinator admin URL.
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        #[command(subcommand)]
        cmd: tessera::ops::KeyCmd,
    },
    /// Manage who may use a bucket (admin API).
    Bucket {
        /// Coordinator admin URL.
        #[arg(long, env = "TESSERA_COORDINATOR", global = true)]
        coordinator: Option<String>,
        #[command(flatten)]
        token: AdminToken,
        #[command(subcommand)]
        cmd: tessera::ops::BucketCmd,
    },
    /// Change the members of a replicated coordinator group.
    Cluster {
        /// Admin URL of any coordinator of the group (comma-separated list accepted).
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        #[command(subcommand)]
        cmd: tessera::ops::ClusterCmd,
    },
    /// Run a storage node (`tessera node --listen ...`), or retire one (`tessera node
    /// drain|activate|remove ID --coordinator ADMIN_URL`).
    Node(NodeCmd),
    /// Move shards from fuller to emptier nodes (after adding nodes) until their used
    /// fractions are within a band.
    Rebalance {
        /// Coordinator admin URL (comma-separated list accepted).
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        #[command(flatten)]
        args: tessera::maintain::RebalanceArgs,
    },
    /// Re-encode the objects of a bucket (or prefix) into another erasure code; the bucket's
    /// code for new writes changes too.
    Recode {
        /// Coordinator admin URL (comma-separated list accepted).
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        #[command(flatten)]
        args: tessera::maintain::RecodeArgs,
    },
    /// Give back the space of deleted and overwritten small objects: rewrite the segments
    /// whose live fraction fell below a threshold.
    Compact {
        /// Coordinator admin URL (comma-separated list accepted).
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        #[command(flatten)]
        args: tessera::maintain::CompactArgs,
    },
    /// List the coordinator's background workers; pause or resume one; set the bandwidth
    /// budget repair, rebalance and recode share.
    Maintenance {
        /// Coordinator admin URL (comma-separated list accepted).
        #[arg(long, env = "TESSERA_COORDINATOR")]
        coordinator: String,
        #[command(flatten)]
        token: AdminToken,
        #[command(flatten)]
        args: tessera::maintain::MaintenanceArgs,
    },
}

/// `tessera node`: run a node, or act on one.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct NodeCmd {
    #[command(subcommand)]
    action: Option<NodeAction>,
    #[command(flatten)]
    run: NodeRun,
}

/// Acting on an existing node.
#[derive(clap::Subcommand)]
enum NodeAction {
    /// Retire a node: it takes no new shards, its shards are copied to other nodes, then it
    /// is drained. Returns when it holds nothing (exit 0) unless --no-wait.
    Drain {
        /// Node id (as `tessera status` lists it).
        id: String,
        /// Start the drain and return.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        at: NodeOpArgs,
    },
    /// Take a draining or drained node back into service.
    Activate {
        /// Node id.
        id: String,
        #[command(flatten)]
        at: NodeOpArgs,
    },
    /// Forget a drained node, or a dead one once its shards are rebuilt elsewhere (this runs
    /// that repair first and waits for it).
    Remove {
        /// Node id.
        id: String,
        #[command(flatten)]
        at: NodeOpArgs,
    },
}

/// The coordinator a node operation goes to.
#[derive(clap::Args)]
struct NodeOpArgs {
    /// Coordinator admin URL (comma-separated list accepted).
    #[arg(long, env = "TESSERA_COORDINATOR")]
    coordinator: String,
    #[command(flatten)]
    token: AdminToken,
}

/// Running a storage node.
#[derive(clap::Args)]
struct NodeRun {
    /// Shard API address.
    #[arg(long, env = "TESSERA_NODE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory (node id and shards).
    #[arg(long, env = "TESSERA_NODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Coordinator admin URL, e.g. http://127.0.0.1:7071; every coordinator of a
    /// replicated group, comma-separated.
    #[arg(long, env = "TESSERA_COORDINATOR")]
    coordinator: Option<String>,
    /// Failure domain reported to the coordinator.
    #[arg(long, default_value = "default")]
    zone: String,
    /// Capacity limit (e.g. 100GiB; default: the filesystem's free space).
    #[arg(long, value_parser = parse_size)]
    capacity: Option<u64>,
    /// Time between heartbeats.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    heartbeat_interval: Duration,
    /// Scrub budget: bytes re-verified per second (0 = no scrubbing).
    #[arg(long, default_value = "16MiB", value_parser = parse_size)]
    scrub_rate: u64,
    /// Pause between scrub passes.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    scrub_interval: Duration,
    /// How often to look whether deleted small shards are worth compacting the shard index
    /// for (their space returns to the filesystem only then).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    reclaim_interval: Duration,
    /// Node id to adopt when the data dir is empty (a replaced disk keeping its identity).
    #[arg(long)]
    node_id: Option<String>,
    /// File holding the cluster secret (else env TESSERA_CLUSTER_SECRET).
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
}

/// Where the admin token comes from: `--admin-token-file`, else env `TESSERA_ADMIN_TOKEN`,
/// else `./tessera-data/coordinator/admin.token` (what `tessera dev` writes).
#[derive(clap::Args)]
struct AdminToken {
    /// File holding the admin token.
    #[arg(long, global = true)]
    admin_token_file: Option<PathBuf>,
}

impl AdminToken {
    fn apply(&self) -> anyhow::Result<()> {
        let token = match (&self.admin_token_file, std::env::var("TESSERA_ADMIN_TOKEN")) {
            (Some(f), _) => Some(
                tessera_coordinator::secrets::read_secret(f)
                    .with_context(|| format!("reading {}", f.display()))?,
            ),
            (None, Ok(t)) if !t.trim().is_empty() => Some(t.trim().to_string()),
            _ => tessera_coordinator::secrets::read_secret(std::path::Path::new(
                "./tessera-data/coordinator/admin.token",
            ))
            .ok(),
        };
        if let Some(t) = token {
            tessera::ops::set_admin_token(t);
        }
        Ok(())
    }

    /// Presents the token from now on and picks the coordinator to talk to from the
    /// comma-separated admin URLs (the leader of a replicated group).
    async fn coordinator(&self, list: &str) -> anyhow::Result<String> {
        self.apply()?;
        tessera::ops::resolve(list).await
    }
}

#[derive(clap::Args)]
struct CoordinatorArgs {
    /// Client API address.
    #[arg(long, default_value = "127.0.0.1:7070", env = "TESSERA_LISTEN")]
    listen: SocketAddr,
    /// Admin API address (node heartbeats, GET /cluster).
    #[arg(long, default_value = "127.0.0.1:7071", env = "TESSERA_ADMIN_LISTEN")]
    admin_listen: SocketAddr,
    /// Metadata directory.
    #[arg(long, env = "TESSERA_DATA_DIR")]
    data_dir: PathBuf,
    /// Default erasure code K+M for new buckets.
    #[arg(long, default_value = "4+2")]
    ec: EcSpec,
    /// Shards per stripe that must be durable before a PUT is acknowledged (default k+1).
    #[arg(long)]
    write_quorum: Option<u16>,
    /// A node silent for this long is marked down.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    heartbeat_timeout: Duration,
    /// Age at which orphaned shards are deleted from nodes.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    gc_grace: Duration,
    /// Bytes of each shard per stripe (stripe = k x piece).
    #[arg(long, default_value = "256KiB", value_parser = parse_size)]
    piece_size: u64,
    /// How often nodes' shards are checked against the metadata for orphans.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    orphan_scan_interval: Duration,
    /// A shard on a node down for this long is rebuilt elsewhere.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    repair_grace: Duration,
    /// Time between background scans for degraded objects.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    repair_interval: Duration,
    /// Bytes per second that repair, rebalance and recode may move together (0 = unlimited);
    /// changeable at run time (`tessera maintenance --rate`).
    #[arg(long, alias = "repair-rate", default_value = "64MiB", value_parser = parse_size)]
    maintenance_rate: u64,
    /// Rebalance in the background whenever nodes' used fractions spread wider than 10
    /// percentage points (off: `tessera rebalance` runs it on demand).
    #[arg(long)]
    auto_rebalance: bool,
    /// Do not repair in the background (operators run `tessera repair`).
    #[arg(long)]
    no_background_repair: bool,
    /// Objects smaller than this are stored as m+1 replicas instead of packed or coded
    /// (0 = never; a bucket created with `x-tessera-replicate-below` has its own).
    #[arg(long, default_value = "0", value_parser = parse_size)]
    replicate_below: u64,
    /// Objects smaller than this are packed into shared segments: one stripe holds many
    /// objects, a read touches one node (0 = never).
    #[arg(long, default_value = "128KiB", value_parser = parse_size)]
    pack_below: u64,
    /// Longest time an open segment waits for more small objects before it is written (with
    /// replicated coordinators: unless another segment is being written, whose end writes it).
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pack_flush: Duration,
    /// Segments with less than this fraction of their bytes live are compacted.
    #[arg(long, default_value_t = 0.5)]
    compact_below: f64,
    /// How often the leader compacts segments in the background (0s = only on demand).
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    compact_interval: Duration,
    /// Rebuild buckets and objects from the shard headers on the nodes (after losing the
    /// metadata directory). Progress and outcome appear under "rebuild" in GET /cluster.
    #[arg(long)]
    rebuild_metadata: bool,
    /// Unsigned client requests get full access (local experiments only; a warning at start).
    #[arg(long)]
    anonymous: bool,
    /// Base domain for virtual-hosted-style requests (`BUCKET.DOMAIN`).
    #[arg(long)]
    domain: Option<String>,
    /// File holding the admin token (default: DATA_DIR/admin.token, created on first start).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
    /// File holding the cluster secret (default: DATA_DIR/cluster.secret, created on first
    /// start).
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// A client connection without a complete request head after this long is closed.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    header_read_timeout: Duration,
    /// A request body that sends nothing for this long fails (RequestTimeout).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    body_idle_timeout: Duration,
    /// Connections served at once per listener.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Multipart uploads not completed or aborted this long after creation are aborted and
    /// their parts collected.
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    multipart_expiry: Duration,
    /// Read shards through the nodes' verified HTTP reads instead of raw reads (where nodes
    /// send stored chunks with sendfile and the coordinator verifies them).
    #[arg(long)]
    no_raw_reads: bool,
    /// This coordinator's id in a replicated group (with --peers).
    #[arg(long, requires = "peers")]
    raft_id: Option<u64>,
    /// Every coordinator of the group at its formation: ID=ADMIN_URL,... (the same list on
    /// every member).
    #[arg(long, requires = "raft_id")]
    peers: Option<tessera_coordinator::cluster::Peers>,
    /// Writes in flight on a coordinator the leader has not heard from for this long are
    /// abandoned (their shards collected).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    raft_lease: Duration,
    /// Log entries between snapshots (the log behind a snapshot is dropped).
    #[arg(long, default_value_t = 5000)]
    snapshot_every: u64,
}

fn coordinator_config(a: &CoordinatorArgs) -> anyhow::Result<CoordinatorConfig> {
    let mut c = CoordinatorConfig::new(a.data_dir.clone());
    c.default_ec = a.ec;
    c.write_quorum = a.write_quorum;
    c.heartbeat_timeout = a.heartbeat_timeout;
    c.gc_grace = a.gc_grace;
    c.orphan_scan_interval = a.orphan_scan_interval;
    c.repair_grace = a.repair_grace;
    c.repair_interval = a.repair_interval;
    c.maintenance_rate = a.maintenance_rate;
    c.auto_rebalance = a.auto_rebalance;
    c.background_repair = !a.no_background_repair;
    c.raw_reads = !a.no_raw_reads;
    c.rebuild_metadata = a.rebuild_metadata;
    c.replicate_below = a.replicate_below;
    c.pack_below = a.pack_below;
    c.pack_flush = a.pack_flush;
    c.compact_below = a.compact_below;
    c.compact_interval = a.compact_interval;
    c.anonymous = a.anonymous;
    c.domain = a.domain.clone();
    c.header_read_timeout = a.header_read_timeout;
    c.body_idle_timeout = a.body_idle_timeout;
    c.max_connections = a.max_connections;
    c.multipart_expiry = a.multipart_expiry;
    c.secrets = Some(
        tessera_coordinator::Secrets::resolve(
            &a.data_dir,
            a.admin_token_file.as_deref(),
            a.cluster_secret_file.as_deref(),
        )
        .context("reading or creating the admin token and cluster secret")?,
    );
    anyhow::ensure!(
        (4096..=(8 << 20)).contains(&a.piece_size),
        "--piece-size must be between 4KiB and 8MiB"
    );
    c.piece_size = a.piece_size;
    if let (Some(id), Some(peers)) = (a.raft_id, a.peers.clone()) {
        let mut cc = tessera_coordinator::cluster::ClusterConfig::new(id, peers);
        cc.lease = a.raft_lease;
        cc.snapshot_every = a.snapshot_every.max(1);
        c.cluster = Some(cc);
    }
    Ok(c)
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

/// glibc's malloc trims the heap whenever a little more than the largest recently freed
/// block sits free at its top; stripes allocate and free a few hundred KiB of parity each,
/// so every stripe page-faulted fresh memory (parity 10x slower for 4+2; BENCHMARKS.md,
/// "Allocator"). Fixed thresholds keep up to 64 MiB of freed memory for reuse.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread
    // allocates.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 << 20);
    }
}

fn main() -> anyhow::Result<()> {
    tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,hyper=warn,reqwest=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().cmd {
        Cmd::Repair {
            coordinator,
            token,
            dry_run,
            bucket,
            node,
            concurrency,
            grace,
            verify,
            json,
        } => {
            let node = match node {
                Some(n) => Some(n.parse().map_err(|e: String| anyhow::anyhow!(e))?),
                None => None,
            };
            let req = tessera_coordinator::repair::RepairRequest {
                dry_run,
                bucket,
                node,
                concurrency,
                grace_ms: grace.map(|g| g.as_millis() as u64),
                verify,
            };
            let coordinator = token.coordinator(&coordinator).await?;
            let code = tessera::ops::repair(&coordinator, req, json).await?;
            std::process::exit(code);
        }
        Cmd::Cluster {
            coordinator,
            token,
            cmd,
        } => {
            let coordinator = token.coordinator(&coordinator).await?;
            tessera::ops::cluster(&coordinator, cmd).await?
        }
        Cmd::Bench { config: cfg, json } => {
            anyhow::ensure!(
                cfg.endpoint.is_some() || cfg.ceiling,
                "give --endpoint, --ceiling or both"
            );
            let report = tessera::bench::run(cfg, json).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                tessera::bench::print(&report);
            }
            let failed = report.put.iter().chain(&report.get).any(|p| p.errors > 0);
            anyhow::ensure!(!failed, "some requests failed");
        }
        Cmd::Status {
            coordinator,
            token,
            json,
        } => {
            let coordinator = token.coordinator(&coordinator).await?;
            tessera::ops::status(&coordinator, json).await?
        }
        Cmd::Key {
            coordinator,
            token,
            cmd,
        } => {
            let coordinator = token.coordinator(&coordinator).await?;
            tessera::ops::key(&coordinator, cmd).await?
        }
        Cmd::Bucket {
            coordinator,
            token,
            cmd,
        } => {
            let coordinator =
                coordinator.context("give --coordinator ADMIN_URL (or env TESSERA_COORDINATOR)")?;
            let coordinator = token.coordinator(&coordinator).await?;
            tessera::ops::bucket(&coordinator, cmd).await?
        }
        Cmd::Coordinator(a) => {
            let config = coordinator_config(&a)?;
            let api = tokio::net::TcpListener::bind(a.listen)
                .await
                .with_context(|| format!("binding {}", a.listen))?;
            let admin = tokio::net::TcpListener::bind(a.admin_listen)
                .await
                .with_context(|| format!("binding {}", a.admin_listen))?;
            tracing::info!(api = %a.listen, admin = %a.admin_listen, "coordinator serving");
            tessera_coordinator::run(api, admin, config, ctrl_c()).await?;
        }
        Cmd::Node(NodeCmd {
            action: Some(action),
            ..
        }) => {
            let (id, at) = match &action {
                NodeAction::Drain { id, at, .. }
                | NodeAction::Activate { id, at }
                | NodeAction::Remove { id, at } => (id.clone(), at),
            };
            let admin = at.token.coordinator(&at.coordinator).await?;
            let code = match action {
                NodeAction::Drain { no_wait, .. } => {
                    tessera::maintain::drain(&admin, &id, no_wait).await?
                }
                NodeAction::Activate { .. } => tessera::maintain::activate(&admin, &id).await?,
                NodeAction::Remove { .. } => tessera::maintain::remove(&admin, &id).await?,
            };
            std::process::exit(code);
        }
        Cmd::Node(NodeCmd {
            run:
                NodeRun {
                    listen,
                    data_dir,
                    coordinator,
                    zone,
                    capacity,
                    heartbeat_interval,
                    scrub_rate,
                    scrub_interval,
                    reclaim_interval,
                    node_id,
                    cluster_secret_file,
                },
            ..
        }) => {
            let (Some(listen), Some(data_dir), Some(coordinator)) = (listen, data_dir, coordinator)
            else {
                anyhow::bail!(
                    "tessera node needs --listen, --data-dir and --coordinator to run a node, or a command (drain, activate, remove); see tessera node --help"
                );
            };
            let cluster_secret = match (cluster_secret_file, std::env::var("TESSERA_CLUSTER_SECRET")) {
                (Some(f), _) => tessera_coordinator::secrets::read_secret(&f)
                    .with_context(|| format!("reading {}", f.display()))?,
                (None, Ok(s)) if !s.trim().is_empty() => s.trim().to_string(),
                _ => anyhow::bail!(
                    "a node needs the cluster secret: --cluster-secret-file FILE or env TESSERA_CLUSTER_SECRET (the coordinator writes it to DATA_DIR/cluster.secret)"
                ),
            };
            let node_id = match node_id {
                Some(n) => Some(n.parse().map_err(|e: String| anyhow::anyhow!(e))?),
                None => None,
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let config = tessera_node::server::NodeConfig {
                data_dir,
                coordinator,
                zone,
                capacity: capacity.unwrap_or(0),
                heartbeat_interval,
                scrub: tessera_node::scrub::ScrubConfig {
                    rate: scrub_rate,
                    interval: scrub_interval,
                },
                node_id,
                cluster_secret,
                reclaim_interval,
            };
            tessera_node::server::serve(config, listener, ctrl_c()).await?;
        }
        Cmd::Rebalance {
            coordinator,
            token,
            args,
        } => {
            let admin = token.coordinator(&coordinator).await?;
            std::process::exit(tessera::maintain::rebalance(&admin, args).await?);
        }
        Cmd::Recode {
            coordinator,
            token,
            args,
        } => {
            let admin = token.coordinator(&coordinator).await?;
            std::process::exit(tessera::maintain::recode(&admin, args).await?);
        }
        Cmd::Compact {
            coordinator,
            token,
            args,
        } => {
            let admin = token.coordinator(&coordinator).await?;
            std::process::exit(tessera::maintain::compact(&admin, args).await?);
        }
        Cmd::Maintenance {
            coordinator,
            token,
            args,
        } => {
            let admin = token.coordinator(&coordinator).await?;
            std::process::exit(tessera::maintain::maintenance(&admin, args).await?);
        }
        Cmd::Dev {
            nodes,
            ec,
            data_dir,
            listen,
            admin_listen,
            replicate_below,
            pack_below,
            anonymous,
            coordinators,
        } => {
            anyhow::ensure!(
                nodes >= ec.total(),
                "--ec {ec} needs at least {} nodes (--nodes {nodes})",
                ec.total()
            );
            let mut config = ClusterConfig::new(nodes, ec, &data_dir);
            config.listen = listen;
            config.admin_listen = admin_listen;
            config.coordinator.replicate_below = replicate_below;
            config.coordinator.pack_below = pack_below;
            config.coordinator.anonymous = anonymous;
            config.coordinators = coordinators.max(1);
            let cluster = Cluster::start(config).await?;
            let url = cluster.endpoint();
            let key = cluster.dev_key().await?;
            println!(
                "tessera dev: coordinator {url} (admin {}), {nodes} nodes, ec {ec}, data in {}",
                cluster.admin_endpoint(),
                data_dir.display()
            );
            if coordinators > 1 {
                let list = |v: &[std::net::SocketAddr]| {
                    v.iter()
                        .map(|a| format!("http://{a}"))
                        .collect::<Vec<_>>()
                        .join(",")
                };
                println!(
                    "  {coordinators} replicated coordinators: clients {}, admin {}",
                    list(&cluster.apis),
                    list(&cluster.admins)
                );
            }
            println!(
                "\nPaste this to use awscli, boto3 or rclone:\n  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={} AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION=us-east-1\n",
                key.0, key.1
            );
            println!("try:\n  aws s3 mb s3://demo\n  aws s3 cp ./README.md s3://demo/readme.md\n  aws s3 ls s3://demo\n  curl --aws-sigv4 aws:amz:us-east-1:s3 --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" {url}/demo/readme.md");
            println!("Ctrl-C stops the cluster.");
            ctrl_c().await;
            println!("stopping...");
            cluster.shutdown().await;
        }
    }
    Ok(())
}
