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
            }
        }
        None => serve(a.run, g).await,
    }
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
    config.heartbeat_interval = r.heartbeat_interval.into();
    config.scrub.rate = r.scrub_rate.0;
    config.scrub.interval = r.scrub_interval.into();
    config.reclaim_interval = r.reclaim_interval.into();
    config.client_tls = g.client_tls()?;
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
