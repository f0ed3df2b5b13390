//! `tessera maintenance`: the workers, pausing and resuming them, and the shared budget.

use super::client::{mb, Admin};
use super::global::Global;
use super::progress::Progress;
use anyhow::Context;
use serde_json::Value;
use std::time::Duration;
use tessera_coordinator::edge::admin::ScrubBudgets;
use tessera_coordinator::names::parse_size;
use tessera_node::worker::{BudgetChange, WorkerList};

/// `tessera maintenance` options.
#[derive(clap::Args)]
pub struct MaintenanceArgs {
    /// Set the budget repair, rebalance and recode share (bytes per second, e.g. 50MB; 0 =
    /// unlimited).
    #[arg(long, value_parser = parse_size)]
    rate: Option<u64>,
    /// Set every up node's scrub budget (bytes per second re-verified, e.g. 32MB; 0 =
    /// unlimited; a node started later uses its own --scrub-rate).
    #[arg(long, value_parser = parse_size)]
    scrub_rate: Option<u64>,
    /// Pause a worker (as listed).
    #[arg(long)]
    pause: Option<String>,
    /// Resume a paused worker.
    #[arg(long)]
    resume: Option<String>,
}

/// Steers, then lists the workers.
pub async fn run(a: MaintenanceArgs, g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    if let Some(rate) = a.rate {
        let _: Value = admin.put("/maintenance", &BudgetChange { rate }).await?;
    }
    if let Some(rate) = a.scrub_rate {
        let r: ScrubBudgets = admin.put("/scrub", &BudgetChange { rate }).await?;
        println!("scrub budget {}/s on {} nodes", mb(rate), r.set.len());
        for f in &r.failed {
            eprintln!("not set: {f}");
        }
    }
    for (name, action) in [(&a.pause, "pause"), (&a.resume, "resume")] {
        if let Some(n) = name {
            let _: Value = admin
                .post(&format!("/workers/{n}/{action}"), &())
                .await
                .with_context(|| format!("{action} {n}"))?;
        }
    }
    let v: WorkerList = admin.get("/workers").await?;
    if g.json {
        println!("{}", serde_json::to_string(&v)?);
        return Ok(0);
    }
    print_workers(&v);
    Ok(0)
}

/// The workers table (`tessera maintenance`, `tessera status`).
pub fn print_workers(v: &WorkerList) {
    let rate = v.maintenance_rate;
    println!(
        "maintenance budget: {}",
        if rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{}/s", mb(rate))
        }
    );
    println!(
        "{:<18} {:<8} {:>12} {:>10}  ACTIVITY / LAST RESULT",
        "WORKER", "STATE", "PROGRESS", "MOVED"
    );
    for w in &v.workers {
        let progress = match (w.done, w.total) {
            (d, t) if t > 0 => format!("{d}/{t}"),
            (d, _) if d > 0 => d.to_string(),
            _ => "-".into(),
        };
        let what = if w.state == "running" {
            w.activity.as_str()
        } else {
            w.last_result.as_deref().unwrap_or("")
        };
        println!(
            "{:<18} {:<8} {:>12} {:>10}  {}",
            w.name,
            w.state,
            progress,
            mb(w.bytes),
            what
        );
    }
}

/// Polls `done` every second, showing worker `worker`'s progress, until it says the job is
/// over.
pub async fn follow<F, Fut>(admin: &Admin, worker: &str, done: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let bar = Progress::new(worker, "objects", false);
    loop {
        if done().await? {
            bar.finish();
            return Ok(());
        }
        let list: WorkerList = admin.get("/workers").await?;
        if let Some(w) = list.workers.iter().find(|w| w.name == worker) {
            bar.update(
                w.done,
                w.total,
                format!(
                    "{}: {} moved, {}/s",
                    w.activity,
                    mb(w.bytes),
                    mb(w.bytes_per_s)
                ),
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// What every data-moving job takes.
#[derive(clap::Args)]
pub struct JobArgs {
    /// This job's own limit (bytes per second, e.g. 50MB; 0 = only the maintenance budget).
    #[arg(long, default_value = "0", value_parser = parse_size)]
    pub rate: u64,
    /// Report what would move (a recode: the space it saves or costs); change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Start and return.
    #[arg(long)]
    pub no_wait: bool,
}
