//! `tessera coordinator`: runs a coordinator. Every flag's default is the one
//! `CoordinatorConfig::new` (or, for a replicated group, `ClusterConfig::new`) sets.

use super::global::Global;
use anyhow::Context;
use bytesize::ByteSize;
use humantime::Duration as Human;
use std::net::SocketAddr;
use std::path::PathBuf;
use tessera_coordinator::cluster::{ClusterConfig, Peers};
use tessera_coordinator::{CoordinatorConfig, EcSpec};

/// The defaults every flag shows.
fn d() -> CoordinatorConfig {
    CoordinatorConfig::new(PathBuf::new())
}

/// The defaults of a replicated group's flags.
fn raft() -> ClusterConfig {
    ClusterConfig::new(0, Peers(Default::default()))
}

/// A size flag's default as `--help` shows it.
fn size(bytes: u64) -> ByteSize {
    ByteSize(bytes)
}

/// `tessera coordinator` options.
#[derive(clap::Args)]
pub struct CoordinatorArgs {
    /// Settings file (TOML; keys are this command's long flags, `tessera config coordinator` prints
    /// them all with their defaults). Flags and environment variables override it.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the settings this command would run with (from flags, environment, --config
    /// and defaults, each with its source) and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Client API address.
    #[arg(long, default_value = "127.0.0.1:7070", env = "TESSERA_LISTEN")]
    pub listen: SocketAddr,
    /// Admin API address (node heartbeats, GET /cluster).
    #[arg(long, default_value = "127.0.0.1:7071", env = "TESSERA_ADMIN_LISTEN")]
    pub admin_listen: SocketAddr,
    /// Metadata directory.
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Default erasure code K+M for new buckets.
    #[arg(long, default_value_t = d().default_ec)]
    pub ec: EcSpec,
    /// Shards per stripe that must be durable before a PUT is acknowledged (default k+1).
    #[arg(long)]
    pub write_quorum: Option<u16>,
    /// A node silent for this long is marked down.
    #[arg(long, default_value_t = d().heartbeat_timeout.into())]
    pub heartbeat_timeout: Human,
    /// Age at which orphaned shards are deleted from nodes.
    #[arg(long, default_value_t = d().gc_grace.into())]
    pub gc_grace: Human,
    /// Age at which the version journal's objects (one a second while versioned writes go
    /// on) are merged into larger ones.
    #[arg(long, default_value_t = d().journal_merge_after.into())]
    pub journal_merge_after: Human,
    /// Bytes of each shard per stripe (stripe = k x piece).
    #[arg(long, default_value_t = size(d().piece_size))]
    pub piece_size: ByteSize,
    /// How often nodes' shards are checked against the metadata for orphans.
    #[arg(long, default_value_t = d().orphan_scan_interval.into())]
    pub orphan_scan_interval: Human,
    /// A shard on a node down for this long is rebuilt elsewhere.
    #[arg(long, default_value_t = d().repair_grace.into())]
    pub repair_grace: Human,
    /// A node that stopped gracefully (SIGTERM: its last heartbeat says so) is not counted
    /// as failed for --repair-grace until this long after it stopped (restarts, upgrades).
    #[arg(long, default_value_t = d().stopped_grace.into())]
    pub stopped_grace: Human,
    /// Nodes with less free space than this get new shards only when too few others have
    /// more; they show as full in /cluster, /health/ready and `tessera status`.
    #[arg(long, default_value_t = size(d().min_free))]
    pub min_free: ByteSize,
    /// Nodes fuller than this fraction (of the shards they hold plus the room they report)
    /// have shards moved off them until they are 0.05 below (1 = never).
    #[arg(long, default_value_t = d().high_watermark, value_parser = fraction)]
    pub high_watermark: f64,
    /// Time between the starts of background scans for degraded objects (and between looks
    /// at a lost node's objects).
    #[arg(long, default_value_t = d().repair_interval.into())]
    pub repair_interval: Human,
    /// Objects a second the background full scan looks at, at most (0 = no limit; an object
    /// whose shards it asks the nodes about counts once per shard, a packed object once): its cost
    /// stays bounded whatever the store holds; lost nodes' objects are found through the
    /// index by node instead, reported damage at once.
    #[arg(long, default_value_t = d().repair_scan_rate)]
    pub repair_scan_rate: u64,
    /// Bytes per second that repair, rebalance and recode may move together (0 = unlimited);
    /// changeable at run time (`tessera maintenance --rate`).
    #[arg(long, alias = "repair-rate", default_value_t = size(d().maintenance_rate))]
    pub maintenance_rate: ByteSize,
    /// Rebalance in the background whenever nodes' used fractions spread wider than 10
    /// percentage points (off: `tessera rebalance` runs it on demand).
    #[arg(long)]
    pub auto_rebalance: bool,
    /// Do not repair in the background (operators run `tessera repair`).
    #[arg(long)]
    pub no_background_repair: bool,
    /// Objects smaller than this are stored as m+1 replicas instead of packed or coded
    /// (0 = never; a bucket created with `x-tessera-replicate-below` has its own).
    #[arg(long, default_value_t = size(d().replicate_below))]
    pub replicate_below: ByteSize,
    /// Objects smaller than this are packed into shared segments: one stripe holds many
    /// objects, a read touches one node (0 = never).
    #[arg(long, default_value_t = size(d().pack_below))]
    pub pack_below: ByteSize,
    /// Longest time an open segment waits for more small objects before it is written (with
    /// replicated coordinators: unless another segment is being written, whose end writes it).
    #[arg(long, default_value_t = d().pack_flush.into())]
    pub pack_flush: Human,
    /// Block cache of the metadata's RocksDB: with --meta-memtable, what the metadata engine
    /// holds in memory besides its files' indexes and filters (about 2.5 bytes per object).
    #[arg(long, default_value_t = size(d().engine.cache_bytes))]
    pub meta_cache: ByteSize,
    /// Size of one memtable of the metadata's RocksDB (at most two in memory).
    #[arg(long, default_value_t = size(d().engine.memtable_bytes))]
    pub meta_memtable: ByteSize,
    /// Segments with less than this fraction of their bytes live are compacted.
    #[arg(long, default_value_t = d().compact_below)]
    pub compact_below: f64,
    /// How often the leader compacts segments in the background (0s = only on demand).
    #[arg(long, default_value_t = d().compact_interval.into())]
    pub compact_interval: Human,
    /// Read this coordinator's clock this far ahead of the system clock (for tests of the
    /// clock guard: a coordinator whose clock was set forward).
    #[arg(long, hide = true, default_value = "0s")]
    pub clock_ahead: Human,
    /// How long a day lasts for lifecycle rules (for tests: `--lifecycle-day 2s` makes a rule
    /// of one day expire objects after two seconds).
    #[arg(long, default_value_t = d().lifecycle_day.into())]
    pub lifecycle_day: Human,
    /// Rebuild buckets and objects from the shard headers on the nodes (after losing the
    /// metadata directory). Progress and outcome appear under "rebuild" in GET /cluster.
    #[arg(long)]
    pub rebuild_metadata: bool,
    /// Unsigned client requests get full access (local experiments only; a warning at start).
    #[arg(long)]
    pub anonymous: bool,
    /// Base domain for virtual-hosted-style requests (`BUCKET.DOMAIN`).
    #[arg(long)]
    pub domain: Option<String>,
    /// File holding the cluster secret (default: DATA_DIR/cluster.secret, created on first
    /// start).
    #[arg(long)]
    pub cluster_secret_file: Option<PathBuf>,
    /// A client connection without a complete request head after this long is closed.
    #[arg(long, default_value_t = d().header_read_timeout.into())]
    pub header_read_timeout: Human,
    /// A request body that sends nothing for this long fails (RequestTimeout).
    #[arg(long, default_value_t = d().body_idle_timeout.into())]
    pub body_idle_timeout: Human,
    /// Connections served at once per listener.
    #[arg(long, default_value_t = d().max_connections)]
    pub max_connections: usize,
    /// Multipart uploads not completed or aborted this long after creation are aborted and
    /// their parts collected.
    #[arg(long, default_value_t = d().multipart_expiry.into())]
    pub multipart_expiry: Human,
    /// Largest file a browser form upload (POST object), or an unsigned upload sent chunked
    /// without Content-Length, may carry (it is held in memory while it is stored).
    #[arg(long, default_value_t = size(d().post_max_size))]
    pub post_max_size: ByteSize,
    /// Read shards through the nodes' verified HTTP reads instead of raw reads (where nodes
    /// send stored chunks with sendfile and the coordinator verifies them).
    #[arg(long)]
    pub no_raw_reads: bool,
    /// Certificate chain (PEM) the client and admin listeners serve over TLS (with
    /// --tls-key; the files are read again when they change, for rotation without a restart).
    #[arg(long, requires = "tls_key", env = "TESSERA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert.
    #[arg(long, requires = "tls_cert", env = "TESSERA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS inside the cluster: nodes and the other coordinators are spoken to over
    /// TLS with certificates of the cluster CA (made in DATA_DIR on first start unless
    /// --cluster-ca-cert/--cluster-ca-key name it); both listeners serve HTTPS, with
    /// --tls-cert if given, else this coordinator's certificate of the cluster CA.
    #[arg(long)]
    pub cluster_tls: bool,
    /// The cluster CA's certificate (PEM; default DATA_DIR/cluster-ca.pem).
    #[arg(long, requires = "cluster_tls")]
    pub cluster_ca_cert: Option<PathBuf>,
    /// The cluster CA's private key (PEM; default DATA_DIR/cluster-ca.key).
    #[arg(long, requires = "cluster_tls")]
    pub cluster_ca_key: Option<PathBuf>,
    /// The cluster CA's certificate revocation list (PEM, `tessera cluster revoke` writes
    /// it): certificates it names are refused at their next handshake.
    #[arg(long, requires = "cluster_tls")]
    pub cluster_crl: Option<PathBuf>,
    /// A DNS name or address nodes and peers reach this coordinator by, for its cluster
    /// certificate (besides the admin listen address and its own --peers URL); repeatable.
    #[arg(long, requires = "cluster_tls")]
    pub cluster_tls_name: Vec<String>,
    /// This coordinator's id in a replicated group (with --peers).
    #[arg(long, requires = "peers")]
    pub raft_id: Option<u64>,
    /// Every coordinator of the group at its formation: ID=ADMIN_URL,... (the same list on
    /// every member).
    #[arg(long, requires = "raft_id")]
    pub peers: Option<Peers>,
    /// Writes in flight on a coordinator the leader has not heard from for this long are
    /// abandoned (their shards collected).
    #[arg(long, default_value_t = raft().lease.into())]
    pub raft_lease: Human,
    /// Log entries between snapshots (the log behind a snapshot is dropped).
    #[arg(long, default_value_t = raft().snapshot_every)]
    pub snapshot_every: u64,
}

/// The configuration `a` (with the admin token file of `g`) describes.
pub fn config(a: &CoordinatorArgs, g: &Global) -> anyhow::Result<CoordinatorConfig> {
    let mut c = CoordinatorConfig::new(a.data_dir.clone());
    c.default_ec = a.ec;
    c.write_quorum = a.write_quorum;
    c.heartbeat_timeout = a.heartbeat_timeout.into();
    c.gc_grace = a.gc_grace.into();
    c.journal_merge_after = a.journal_merge_after.into();
    c.orphan_scan_interval = a.orphan_scan_interval.into();
    c.repair_grace = a.repair_grace.into();
    c.stopped_grace = a.stopped_grace.into();
    c.min_free = a.min_free.0;
    c.high_watermark = a.high_watermark;
    c.repair_interval = a.repair_interval.into();
    c.repair_scan_rate = a.repair_scan_rate;
    c.maintenance_rate = a.maintenance_rate.0;
    c.auto_rebalance = a.auto_rebalance;
    c.background_repair = !a.no_background_repair;
    c.raw_reads = !a.no_raw_reads;
    c.rebuild_metadata = a.rebuild_metadata;
    c.replicate_below = a.replicate_below.0;
    c.pack_below = a.pack_below.0;
    c.pack_flush = a.pack_flush.into();
    c.compact_below = a.compact_below;
    c.engine = tessera_coordinator::meta::rocks::EngineLimits {
        cache_bytes: a.meta_cache.0,
        memtable_bytes: a.meta_memtable.0,
    };
    c.compact_interval = a.compact_interval.into();
    c.lifecycle_day = a.lifecycle_day.into();
    c.clock_ahead = a.clock_ahead.into();
    anyhow::ensure!(
        !c.lifecycle_day.is_zero(),
        "--lifecycle-day must be longer than zero"
    );
    c.anonymous = a.anonymous;
    c.domain = a.domain.clone();
    c.header_read_timeout = a.header_read_timeout.into();
    c.body_idle_timeout = a.body_idle_timeout.into();
    c.max_connections = a.max_connections;
    c.multipart_expiry = a.multipart_expiry.into();
    c.post_max_size = a.post_max_size.0;
    if let (Some(cert), Some(key)) = (&a.tls_cert, &a.tls_key) {
        c.tls = Some(tessera_node::tls::CertFiles {
            cert: cert.clone(),
            key: key.clone(),
        });
    }
    c.client_tls = g.client_tls()?;
    if a.cluster_tls {
        cluster_tls(&mut c, a, g)?;
    }
    c.secrets = Some(
        tessera_coordinator::Secrets::resolve(
            &a.data_dir,
            g.admin_token_file.as_deref(),
            a.cluster_secret_file.as_deref(),
        )
        .context("reading or creating the admin token and cluster secret")?,
    );
    anyhow::ensure!(
        (4096..=(8 << 20)).contains(&a.piece_size.0),
        "--piece-size must be between 4KiB and 8MiB"
    );
    c.piece_size = a.piece_size.0;
    if let (Some(id), Some(peers)) = (a.raft_id, a.peers.clone()) {
        let mut cc = ClusterConfig::new(id, peers);
        cc.lease = a.raft_lease.into();
        cc.engine = c.engine;
        cc.snapshot_every = a.snapshot_every.max(1);
        c.cluster = Some(cc);
    }
    Ok(c)
}

/// Mutual TLS inside the cluster: the cluster CA (made on first start like the cluster
/// secret), this coordinator's certificate from it (issued at every start, and again by the
/// running coordinator before it expires), and clients that present it.
fn cluster_tls(c: &mut CoordinatorConfig, a: &CoordinatorArgs, g: &Global) -> anyhow::Result<()> {
    use tessera_node::tls::{CertFiles, ClientTls, ClusterTls, LocalCa, Role};
    let ca = CertFiles {
        cert: a
            .cluster_ca_cert
            .clone()
            .unwrap_or_else(|| a.data_dir.join("cluster-ca.pem")),
        key: a
            .cluster_ca_key
            .clone()
            .unwrap_or_else(|| a.data_dir.join("cluster-ca.key")),
    };
    std::fs::create_dir_all(&a.data_dir)?;
    let authority = LocalCa::at_or_create(&ca.cert, &ca.key, "Tessera cluster CA")
        .context("reading or creating the cluster CA")?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    if !a.admin_listen.ip().is_unspecified() {
        names.push(a.admin_listen.ip().to_string());
    }
    let own = a
        .raft_id
        .and_then(|id| a.peers.as_ref()?.0.get(&id).cloned());
    if let Some(host) =
        own.and_then(|u| reqwest::Url::parse(&u).ok()?.host_str().map(str::to_string))
    {
        names.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
    }
    names.extend(a.cluster_tls_name.iter().cloned());
    names.sort();
    names.dedup();
    let identity = authority
        .issue(
            &a.data_dir.join("tls"),
            "coordinator",
            &names,
            Some(Role::Coordinator),
            tessera_coordinator::server::CLUSTER_CERT_VALID,
        )
        .context("issuing this coordinator's cluster certificate")?;
    c.cluster_names = names;
    let ct = ClusterTls {
        identity,
        ca: ca.cert.clone(),
        crl: a.cluster_crl.clone(),
    };
    c.client_tls = ClientTls::cluster(&ct, &g.ca_cert)?;
    c.cluster_tls = Some(ct);
    c.cluster_ca = Some(ca);
    Ok(())
}

/// Runs a coordinator until Ctrl-C or SIGTERM.
pub async fn run(a: CoordinatorArgs, g: &Global) -> anyhow::Result<i32> {
    let config = config(&a, g)?;
    let api = tokio::net::TcpListener::bind(a.listen)
        .await
        .with_context(|| format!("binding {}", a.listen))?;
    let admin = tokio::net::TcpListener::bind(a.admin_listen)
        .await
        .with_context(|| format!("binding {}", a.admin_listen))?;
    let scheme = config.scheme();
    tracing::info!(api = %a.listen, admin = %a.admin_listen, %scheme, "coordinator serving");
    tessera_coordinator::run(api, admin, config, super::global::stop_signal()).await?;
    Ok(0)
}

/// A fraction in (0, 1].
fn fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1.0 => Ok(f),
        _ => Err(format!("{s:?} is not a fraction in (0, 1], e.g. 0.9")),
    }
}
