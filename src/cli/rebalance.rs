//! `tessera rebalance`: moves shards from fuller to emptier nodes.

use super::client::mb;
use super::global::Global;
use super::maintenance::{follow, JobArgs};
use tessera_coordinator::maintenance::rebalance::{Balance, RebalanceRequest, DEFAULT_BAND};

/// `tessera rebalance` options.
#[derive(clap::Args)]
pub struct RebalanceArgs {
    /// Accepted spread between the fullest and emptiest node's used fraction.
    #[arg(long, default_value_t = DEFAULT_BAND)]
    band: f64,
    #[command(flatten)]
    job: JobArgs,
    /// Stop a running rebalance (what moved stays moved).
    #[arg(long)]
    cancel: bool,
}

fn print_balance(b: &Balance) {
    for n in &b.nodes {
        println!(
            "  {}  zone {:<10} {:>10} of {:>10}  {:5.1}%",
            n.node,
            n.zone,
            mb(n.used),
            mb(n.capacity),
            n.fraction * 100.0
        );
    }
    println!(
        "spread {:.1} points (band {:.1}), about {} to move",
        b.spread * 100.0,
        b.band * 100.0,
        mb(b.bytes_to_move)
    );
}

/// Runs `tessera rebalance`.
pub async fn run(a: RebalanceArgs, g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    if a.cancel {
        let _: serde_json::Value = admin.delete("/rebalance").await?;
        println!("rebalance stopped");
        return Ok(0);
    }
    let req = RebalanceRequest {
        band: a.band,
        rate: a.job.rate,
        dry_run: a.job.dry_run,
    };
    let b: Balance = admin.post("/rebalance", &req).await?;
    print_balance(&b);
    if a.job.dry_run || a.job.no_wait {
        return Ok(0);
    }
    follow(&admin, "rebalance", || async {
        Ok(!admin.get::<Balance>("/rebalance").await?.running)
    })
    .await?;
    print_balance(&admin.get("/rebalance").await?);
    Ok(0)
}
