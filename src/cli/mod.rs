//! The `tessera` command line: one file per command, every operator command through the one
//! typed admin client ([`client::Admin`]) and the one progress display ([`progress`]).
//!
//! Shared flags (`--coordinator`, `--admin-token-file`, `--json`, `--ca-cert`) are global:
//! they work before or after the subcommand. `tessera coordinator` and `tessera node` also read
//! their settings from a TOML file (`--config`, [`config`]). Every default is defined once, by the configuration it sets
//! (`CoordinatorConfig::new`, `NodeConfig::new`), and `--help` shows it from there.

pub mod bench;
pub mod bucket;
pub mod client;
pub mod compact;
pub mod config;
pub mod coordinator;
pub mod dev;
pub mod global;
pub mod key;
pub mod maintenance;
pub mod members;
pub mod node;
pub mod progress;
pub mod rebalance;
pub mod recode;
pub mod repair;
pub mod status;

use clap::{Parser, Subcommand};
use global::Global;

/// The command line.
#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Erasure-coded distributed blob store"
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub cmd: Cmd,
}

/// The commands.
#[derive(Subcommand)]
pub enum Cmd {
    /// Run a local cluster (coordinator + N storage nodes) in one process.
    Dev(dev::DevArgs),
    /// Run the coordinator.
    Coordinator(Box<coordinator::CoordinatorArgs>),
    /// Run a storage node (`tessera node --listen ...`), or retire one (`tessera node
    /// drain|activate|remove ID`).
    Node(Box<node::NodeArgs>),
    /// Find and rebuild lost or corrupt shards (runs in the coordinator; this drives and
    /// watches it). Exit code 0 when everything is healthy afterwards.
    Repair(repair::RepairArgs),
    /// Show nodes, degraded objects, the repair queue, scrub progress and workers.
    Status,
    /// Manage access keys.
    Key {
        /// What to do.
        #[command(subcommand)]
        cmd: key::KeyCmd,
    },
    /// Manage who may use a bucket.
    Bucket {
        /// What to do.
        #[command(subcommand)]
        cmd: bucket::BucketCmd,
    },
    /// Change the members of a replicated coordinator group.
    Cluster {
        /// What to do.
        #[command(subcommand)]
        cmd: members::ClusterCmd,
    },
    /// Move shards from fuller to emptier nodes (after adding nodes) until their used
    /// fractions are within a band.
    Rebalance(rebalance::RebalanceArgs),
    /// Re-encode the objects of a bucket (or prefix) into another erasure code; the bucket's
    /// code for new writes changes too.
    Recode(recode::RecodeArgs),
    /// Give back the space of deleted and overwritten small objects: rewrite the segments
    /// whose live fraction fell below a threshold.
    Compact(compact::CompactArgs),
    /// List the background workers; pause or resume one; set the bandwidth budget repair,
    /// rebalance and recode share.
    Maintenance(maintenance::MaintenanceArgs),
    /// Load generator (PUT then GET phase) for any S3 path-style endpoint; `--ceiling` also
    /// measures this machine's limits in the same run.
    Bench(Box<bench::BenchArgs>),
    /// Print the reference settings file of `tessera coordinator` or `tessera node` (every
    /// setting with its help, environment variable and default) for `--config FILE`.
    Config {
        /// The command whose settings to print.
        #[arg(value_parser = ["coordinator", "node"])]
        command: String,
    },
}

/// Runs `cli`; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<i32> {
    let g = &cli.global;
    match cli.cmd {
        Cmd::Dev(a) => dev::run(a).await,
        Cmd::Coordinator(a) => coordinator::run(*a, g).await,
        Cmd::Node(a) => node::run(*a, g).await,
        Cmd::Repair(a) => repair::run(a, g).await,
        Cmd::Status => status::run(g).await,
        Cmd::Key { cmd } => key::run(cmd, g).await,
        Cmd::Bucket { cmd } => bucket::run(cmd, g).await,
        Cmd::Cluster { cmd } => members::run(cmd, g).await,
        Cmd::Rebalance(a) => rebalance::run(a, g).await,
        Cmd::Recode(a) => recode::run(a, g).await,
        Cmd::Compact(a) => compact::run(a, g).await,
        Cmd::Maintenance(a) => maintenance::run(a, g).await,
        Cmd::Bench(a) => bench::run(*a, g).await,
        Cmd::Config { command } => {
            use clap::CommandFactory;
            print!("{}", config::reference(&Cli::command(), &command));
            Ok(0)
        }
    }
}
