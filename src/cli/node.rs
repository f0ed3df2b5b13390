//! `tessera node`: runs a storage node, or retires one (drain, activate, remove). Every
//! flag's default is the one `NodeConfig::new` sets.

use super::client::{mb, Admin};
use super::global::Global;
use super::progress::Progress;
use anyhow::{bail, Context};
use bytesize::ByteSize;
use humantime::Duration as Human;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_coordinator::maintenance::retire::{NodeLifecycle, NodeRemoval};
use tessera_node::node::NodeConfig;

/// The defaults every flag shows.
fn d() -> NodeConfig {
    NodeConfig::new(PathBuf::new(), String::new(), String::new())
}

/// `tessera node`: run a node, or act on one.
#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct NodeArgs {
    #[command(subcommand)]
    action: Option<Action>,
    #[command(flatten)]
    run: Run,
}

/// Acting on an existing node.
#[derive(clap::Subcommand)]
enum Action {
    /// Retire a node: it takes no new shards, its shards are copied to other nodes, then it
    /// is drained. Returns when it holds nothing (exit 0) unless --no-wait.
    Drain {
        /// Node id (as `tessera status` lists it).
        id: String,
        /// Start the drain and return.
        #[arg(long)]
        no_wait: bool,
    },
    /// Take a draining or drained node back into service.
    Activate {
        /// Node id.
        id: String,
    },
    /// Forget a drained node, or a dead one once its shards are rebuilt elsewhere (this runs
    /// that repair first and waits for it).
    Remove {
        /// Node id.
        id: String,
    },
    /// Get this host's node a certificate from the cluster CA (a cluster with mutual TLS):
    /// makes a key here, has a coordinator sign a request for it (with the admin token) and
    /// writes node.pem, node.key and cluster-ca.pem into --dir. Run again to renew.
    Join {
        /// Where to write the files (e.g. the node's data dir).
        #[arg(long)]
        dir: PathBuf,
        /// Address or DNS name coordinators reach the node at (its --listen host);
        /// repeatable.
        #[arg(long, required = true)]
        name: Vec<String>,
        /// How long the certificate is valid.
        #[arg(long, default_value = "365days")]
        valid: Human,
    },
}

/// Running a storage node (it reports to `--coordinator`).
#[derive(clap::Args)]
struct Run {
    /// Settings file (TOML; keys are this command's long flags, `tessera config node` prints
    /// them all with their defaults). Flags and environment variables override it.
    #[arg(long, env = "TESSERA_CONFIG")]
    config: Option<PathBuf>,
    /// Print the settings this command would run with (from flags, environment, --config
    /// and defaults, each with its source) and exit.
    #[arg(long)]
    check_config: bool,
    /// Shard API address.
    #[arg(long, env = "TESSERA_NODE_LISTEN")]
    listen: Option<SocketAddr>,
    /// Data directory (node id and shards).
    #[arg(long, env = "TESSERA_NODE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Failure domain reported to the coordinator.
    #[arg(long, default_value_t = d().zone)]
    zone: String,
    /// Capacity limit (e.g. 100GiB; default: the filesystem's free space).
    #[arg(long)]
    capacity: Option<ByteSize>,
    /// Free space kept on the filesystem for the store's index, log and compactions: shard
    /// writes past it are refused (507) before the disk is full (default: 1% of the
    /// filesystem, at most 1GiB).
    #[arg(long)]
    reserve: Option<ByteSize>,
    /// Time between heartbeats.
    #[arg(long, default_value_t = d().heartbeat_interval.into())]
    heartbeat_interval: Human,
    /// Scrub budget: bytes re-verified per second (0 = no scrubbing).
    #[arg(long, default_value_t = ByteSize(d().scrub.rate))]
    scrub_rate: ByteSize,
    /// Pause between scrub passes.
    #[arg(long, default_value_t = d().scrub.interval.into())]
    scrub_interval: Human,
    /// How often to look whether deleted small shards are worth compacting the shard index
    /// for (their space returns to the filesystem only then).
    #[arg(long, default_value_t = d().reclaim_interval.into())]
    reclaim_interval: Human,
    /// Node id to adopt when the data dir is empty (a replaced disk keeping its identity).
    #[arg(long)]
    node_id: Option<String>,
    /// File holding the cluster secret (else env TESSERA_CLUSTER_SECRET).
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// This node's certificate from the cluster CA (`tessera node join` writes node.pem):
    /// the node then serves only mutual TLS, to coordinators' certificates of the cluster CA,
    /// and presents it to coordinators. Read again when the file changes.
    #[arg(long, requires_all = ["tls_key", "cluster_ca_cert"])]
    tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (node.key).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The cluster CA's certificate (cluster-ca.pem).
    #[arg(long, requires = "tls_cert")]
    cluster_ca_cert: Option<PathBuf>,
    /// The cluster CA's revocation list (PEM): certificates it names are refused at their
    /// next handshake. Read again when the file changes.
    #[arg(long, requires = "tls_cert")]
    cluster_crl: Option<PathBuf>,
}

/// Runs `tessera node ...`; returns the exit code.
pub async fn run(a: NodeArgs, g: &Global) -> anyhow::Result<i32> {
    match a.action {
        Some(action) => {
            let admin = g.admin().await?;
            match action {
                Action::Drain { id, no_wait } => drain(&admin, &id, no_wait).await,
                Action::Activate { id } => {
                    let path = format!("/cluster/nodes/{id}/activate");
                    let v: NodeLifecycle = admin.post(&path, &()).await?;
                    println!("node {id}: {}", v.state);
                    Ok(0)
                }
                Action::Remove { id } => remove(&admin, &id).await,
                Action::Join { dir, name, valid } => join(&admin, &dir, name, valid.into()).await,
            }
        }
        None => serve(a.run, g).await,
    }
}

/// `tessera node join`: a key made here, a certificate for it from the cluster CA.
async fn join(
    admin: &Admin,
    dir: &std::path::Path,
    names: Vec<String>,
    valid: Duration,
) -> anyhow::Result<i32> {
    use tessera_coordinator::edge::admin::{CertificateRequest, IssuedCertificate};
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let (key, csr) = tessera_node::tls::ca::request(&names)?;
    let issued: IssuedCertificate = admin
        .post(
            "/cluster/certificates",
            &CertificateRequest {
                csr,
                names: names.clone(),
                valid_secs: Some(valid.as_secs()),
            },
        )
        .await?;
    let write = |name: &str, text: &str, private: bool| -> anyhow::Result<()> {
        use tessera_node::tls::ca::{write_private, write_public};
        let path = dir.join(name);
        let write = if private { write_private } else { write_public };
        write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    // The key first: a certificate never sits beside a key it does not belong to.
    write("node.key", &key, true)?;
    write("node.pem", &issued.certificate, false)?;
    write("cluster-ca.pem", &issued.ca, false)?;
    println!(
        "wrote {0}/node.pem, {0}/node.key and {0}/cluster-ca.pem for {1}; start the node with --tls-cert {0}/node.pem --tls-key {0}/node.key --cluster-ca-cert {0}/cluster-ca.pem",
        dir.display(),
        names.join(", ")
    );
    Ok(0)
}

async fn serve(r: Run, g: &Global) -> anyhow::Result<i32> {
    let (Some(listen), Some(data_dir)) = (r.listen, r.data_dir) else {
        bail!(
            "tessera node needs --listen and --data-dir to run a node, or a command (drain, activate, remove); see tessera node --help"
        );
    };
    let secret = match (r.cluster_secret_file, std::env::var("TESSERA_CLUSTER_SECRET")) {
        (Some(f), _) => tessera_coordinator::secrets::read_secret(&f)
            .with_context(|| format!("reading {}", f.display()))?,
        (None, Ok(s)) if !s.trim().is_empty() => s.trim().to_string(),
        _ => bail!(
            "a node needs the cluster secret: --cluster-secret-file FILE or env TESSERA_CLUSTER_SECRET (the coordinator writes it to DATA_DIR/cluster.secret)"
        ),
    };
    let mut config = NodeConfig::new(data_dir, g.coordinator.clone(), secret);
    config.zone = r.zone;
    config.capacity = r.capacity.map_or(0, |c| c.0);
    config.reserve = r.reserve.map(|b| b.0);
    config.heartbeat_interval = r.heartbeat_interval.into();
    config.scrub.rate = r.scrub_rate.0;
    config.scrub.interval = r.scrub_interval.into();
    config.reclaim_interval = r.reclaim_interval.into();
    config.client_tls = g.client_tls()?;
    if let (Some(cert), Some(key), Some(ca)) = (r.tls_cert, r.tls_key, r.cluster_ca_cert) {
        let ct = tessera_node::tls::ClusterTls {
            identity: tessera_node::tls::CertFiles { cert, key },
            ca,
            crl: r.cluster_crl,
        };
        config.client_tls = tessera_node::tls::ClientTls::cluster(&ct, &g.ca_cert)?;
        config.tls = Some(ct);
    }
    config.node_id = match r.node_id {
        Some(n) => Some(n.parse().map_err(|e: String| anyhow::anyhow!(e))?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    tessera_node::node::serve(config, listener, super::global::stop_signal()).await?;
    Ok(0)
}

/// `tessera node drain ID`: starts the drain and, unless `no_wait`, follows it until the
/// node holds nothing.
async fn drain(admin: &Admin, id: &str, no_wait: bool) -> anyhow::Result<i32> {
    let path = format!("/cluster/nodes/{id}");
    let v: NodeLifecycle = admin.post(&format!("{path}/drain"), &()).await?;
    println!(
        "node {id}: {} ({} objects, {} shards, {} to move)",
        v.state,
        v.objects,
        v.shards,
        mb(v.bytes)
    );
    if no_wait {
        return Ok(0);
    }
    let bar = Progress::new("drain", "shards", false);
    let total = v.shards;
    let mut warned_down = false;
    loop {
        let v: NodeLifecycle = admin.get(&path).await?;
        if v.state == "drained" {
            bar.finish();
            println!("node {id} drained: it holds nothing; `tessera node remove {id}` forgets it");
            return Ok(0);
        }
        if v.state != "draining" {
            bar.finish();
            bail!("node {id} is {}: the drain was cancelled", v.state);
        }
        if !v.up && !warned_down {
            warned_down = true;
            println!("node {id} is down: repair rebuilds its shards elsewhere once the repair grace has passed (`tessera repair --node {id} --grace 0s` does it now)");
        }
        bar.update(
            total.saturating_sub(v.shards),
            total,
            format!("{} objects, {} left", v.objects, mb(v.bytes)),
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `tessera node remove ID`: a dead node still named by objects gets a repair first, which
/// this follows before asking again.
async fn remove(admin: &Admin, id: &str) -> anyhow::Result<i32> {
    let path = format!("/cluster/nodes/{id}/remove");
    let v: NodeRemoval = admin.post(&path, &serde_json::json!({})).await?;
    let Some(run) = v.repair_run else {
        return removed(id, &v);
    };
    println!("{}", v.message.as_deref().unwrap_or(""));
    if super::repair::watch(admin, run, false).await? != 0 {
        println!("the repair left objects degraded");
    }
    let v: NodeRemoval = admin
        .post(&path, &serde_json::json!({"repair": false}))
        .await?;
    removed(id, &v)
}

fn removed(id: &str, v: &NodeRemoval) -> anyhow::Result<i32> {
    if !v.removed {
        bail!(
            "node {id} was not removed: {}",
            v.message.as_deref().unwrap_or("?")
        );
    }
    println!(
        "node {id} removed ({} garbage entries on it dropped); its heartbeats are refused from now on",
        v.garbage_entries_dropped
    );
    Ok(0)
}
