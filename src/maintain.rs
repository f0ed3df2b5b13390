//! Operator commands that move data between nodes or change how it is stored: `tessera node
//! drain|activate|remove`, `tessera rebalance`, `tessera recode` and `tessera maintenance`
//! (workers and the shared budget). Each starts a job in the coordinator and, unless told
//! not to wait, follows it to the end.

use crate::ops::{client, get_json, send_json};
use anyhow::{bail, Context};
use std::time::Duration;

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// `tessera node drain ID`: starts the drain and, unless `no_wait`, follows it until the
/// node holds nothing. Returns the exit code.
pub async fn drain(admin: &str, id: &str, no_wait: bool) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    let url = format!("{admin}/cluster/nodes/{id}");
    let v = send_json(client().post(format!("{url}/drain")), admin).await?;
    println!(
        "node {id}: {} ({} objects, {} shards, {} to move)",
        v["state"].as_str().unwrap_or("?"),
        v["objects"],
        v["shards"],
        mb(v["bytes"].as_u64().unwrap_or(0))
    );
    if no_wait {
        return Ok(0);
    }
    let mut last = String::new();
    let mut warned_down = false;
    loop {
        let v = get_json(&url).await?;
        let state = v["state"].as_str().unwrap_or("?").to_string();
        if state == "drained" {
            println!("node {id} drained: it holds nothing; `tessera node remove {id}` forgets it");
            return Ok(0);
        }
        if state != "draining" {
            bail!("node {id} is {state}: the drain was cancelled");
        }
        if !v["up"].as_bool().unwrap_or(true) && !warned_down {
            warned_down = true;
            println!("node {id} is down: repair rebuilds its shards elsewhere once the repair grace has passed (`tessera repair --node {id} --grace 0s` does it now)");
        }
        let line = format!(
            "  {} objects, {} shards, {} left",
            v["objects"],
            v["shards"],
            mb(v["bytes"].as_u64().unwrap_or(0))
        );
        if line != last {
            println!("{line}");
            last = line;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `tessera node activate ID`.
pub async fn activate(admin: &str, id: &str) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    let v = send_json(
        client().post(format!("{admin}/cluster/nodes/{id}/activate")),
        admin,
    )
    .await?;
    println!("node {id}: {}", v["state"].as_str().unwrap_or("?"));
    Ok(0)
}

/// `tessera node remove ID`: a dead node still named by objects gets a repair first, which
/// this follows before asking again.
pub async fn remove(admin: &str, id: &str) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    let url = format!("{admin}/cluster/nodes/{id}/remove");
    let v = send_json(client().post(&url).json(&serde_json::json!({})), admin).await?;
    let Some(run) = v["repair_run"].as_u64() else {
        return removed(id, &v);
    };
    println!("{}", v["message"].as_str().unwrap_or(""));
    if crate::ops::watch_repair(admin, run, false).await? != 0 {
        println!("the repair left objects degraded");
    }
    let again = client()
        .post(&url)
        .json(&serde_json::json!({"repair": false}));
    let v = send_json(again, admin).await?;
    removed(id, &v)
}

fn removed(id: &str, v: &serde_json::Value) -> anyhow::Result<i32> {
    if v["removed"].as_bool() != Some(true) {
        bail!("node {id} was not removed: {v}");
    }
    println!(
        "node {id} removed ({} garbage entries on it dropped); its heartbeats are refused from now on",
        v["garbage_entries_dropped"].as_u64().unwrap_or(0)
    );
    Ok(0)
}

/// `tessera rebalance` options.
#[derive(clap::Args)]
pub struct RebalanceArgs {
    /// Accepted spread between the fullest and emptiest node's used fraction.
    #[arg(long, default_value_t = 0.10)]
    band: f64,
    #[command(flatten)]
    job: JobArgs,
    /// Stop a running rebalance (what moved stays moved).
    #[arg(long)]
    cancel: bool,
}

fn print_balance(v: &serde_json::Value) {
    for n in v["nodes"].as_array().into_iter().flatten() {
        println!(
            "  {}  zone {:<10} {:>10} of {:>10}  {:5.1}%",
            n["node"].as_str().unwrap_or("?"),
            n["zone"].as_str().unwrap_or("?"),
            mb(n["used"].as_u64().unwrap_or(0)),
            mb(n["capacity"].as_u64().unwrap_or(0)),
            n["fraction"].as_f64().unwrap_or(0.0) * 100.0
        );
    }
    println!(
        "spread {:.1} points (band {:.1}), about {} to move",
        v["spread"].as_f64().unwrap_or(0.0) * 100.0,
        v["band"].as_f64().unwrap_or(0.0) * 100.0,
        mb(v["bytes_to_move"].as_u64().unwrap_or(0))
    );
}

/// Runs `tessera rebalance`.
pub async fn rebalance(admin: &str, a: RebalanceArgs) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    let url = format!("{admin}/rebalance");
    if a.cancel {
        send_json(client().delete(&url), admin).await?;
        println!("rebalance stopped");
        return Ok(0);
    }
    let req = serde_json::json!({"band": a.band, "rate": a.job.rate, "dry_run": a.job.dry_run});
    let v = send_json(client().post(&url).json(&req), admin).await?;
    print_balance(&v);
    if a.job.dry_run || a.job.no_wait {
        return Ok(0);
    }
    follow(admin, "rebalance", || async {
        Ok(get_json(&url).await?["running"].as_bool() == Some(false))
    })
    .await?;
    print_balance(&get_json(&url).await?);
    Ok(0)
}

/// `tessera recode` options.
#[derive(clap::Args)]
pub struct RecodeArgs {
    /// Bucket whose objects (and default code) change.
    #[arg(long)]
    bucket: String,
    /// Only keys with this prefix.
    #[arg(long, default_value = "")]
    prefix: String,
    /// The new code, K+M.
    #[arg(long)]
    ec: String,
    #[command(flatten)]
    job: JobArgs,
}

/// What every data-moving job takes.
#[derive(clap::Args)]
pub struct JobArgs {
    /// This job's own limit (bytes per second, e.g. 50MB; 0 = only the maintenance budget).
    #[arg(long, default_value = "0", value_parser = tessera_coordinator::names::parse_size)]
    rate: u64,
    /// Report what would move (a recode: the space it saves or costs); change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Start and return.
    #[arg(long)]
    no_wait: bool,
}

/// Runs `tessera recode`.
pub async fn recode(admin: &str, a: RecodeArgs) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    let req = serde_json::json!({
        "bucket": a.bucket, "prefix": a.prefix, "ec": a.ec, "rate": a.job.rate, "dry_run": a.job.dry_run,
    });
    let v = send_json(client().post(format!("{admin}/recode")).json(&req), admin).await?;
    let now = v["stored_bytes_now"].as_u64().unwrap_or(0);
    let after = v["stored_bytes_after"].as_u64().unwrap_or(0);
    println!(
        "{}{} objects ({} logical) to {}: stored {} now, {} after: {} {}",
        if a.job.dry_run { "dry run: " } else { "" },
        v["objects"],
        mb(v["logical_bytes"].as_u64().unwrap_or(0)),
        a.ec,
        mb(now),
        mb(after),
        mb(now.abs_diff(after)),
        if after <= now { "saved" } else { "more" }
    );
    if v["multipart"].as_u64().unwrap_or(0) > 0 {
        println!(
            "{} of them multipart (re-encoded part by part)",
            v["multipart"]
        );
    }
    if a.job.dry_run || a.job.no_wait {
        return Ok(0);
    }
    let job = v["job"].as_str().unwrap_or_default().to_string();
    follow(admin, "recode", || async {
        let jobs = get_json(&format!("{admin}/recode")).await?;
        let running = jobs["jobs"].as_array().into_iter().flatten().any(|j| {
            format!(
                "recode/{}/{}",
                j["bucket"].as_str().unwrap_or(""),
                j["prefix"].as_str().unwrap_or("")
            ) == job
        });
        Ok(!running)
    })
    .await?;
    println!("recode finished: bucket {} is {} now", a.bucket, a.ec);
    Ok(0)
}

/// `tessera compact` options.
#[derive(clap::Args)]
pub struct CompactArgs {
    /// Only move objects of this bucket.
    #[arg(long)]
    bucket: Option<String>,
    /// Compact segments with less than this fraction of their bytes live (default: the
    /// coordinator's `--compact-below`).
    #[arg(long)]
    below: Option<f64>,
    /// Report what would be compacted; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Start and return.
    #[arg(long)]
    no_wait: bool,
}

fn print_segments(v: &serde_json::Value) {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    println!(
        "{} segments, {} of {} object bytes live; {} below {:.2} live: {} dead to give back, {} live to move",
        n("segments"),
        mb(n("live_bytes")),
        mb(n("bytes")),
        n("candidates"),
        v["below"].as_f64().unwrap_or(0.0),
        mb(n("reclaimable_bytes")),
        mb(n("bytes_to_move")),
    );
}

/// Runs `tessera compact`.
pub async fn compact(admin: &str, a: CompactArgs) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    let url = format!("{admin}/compact");
    let req = serde_json::json!({"bucket": a.bucket, "below": a.below, "dry_run": a.dry_run});
    let v = send_json(client().post(&url).json(&req), admin).await?;
    if a.dry_run {
        print!("dry run: ");
    }
    print_segments(&v);
    if a.dry_run || a.no_wait {
        return Ok(0);
    }
    follow(admin, "compact", || async {
        Ok(get_json(&url).await?["running"].as_bool() == Some(false))
    })
    .await?;
    print!("compacted: ");
    print_segments(&get_json(&url).await?);
    Ok(0)
}

/// Polls `done` every second, printing worker `worker`'s progress when it changes.
async fn follow<F, Fut>(admin: &str, worker: &str, done: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let mut last = String::new();
    loop {
        if done().await? {
            return Ok(());
        }
        let workers = get_json(&format!("{admin}/workers")).await?;
        if let Some(w) = workers["workers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|w| w["name"] == worker)
        {
            let line = format!(
                "  {}: {}/{} objects, {} moved, {}/s{}",
                w["activity"].as_str().unwrap_or(""),
                w["done"],
                w["total"],
                mb(w["bytes"].as_u64().unwrap_or(0)),
                mb(w["bytes_per_s"].as_u64().unwrap_or(0)),
                w["eta_ms"]
                    .as_u64()
                    .map(|e| format!(", about {:.0} s left", e as f64 / 1000.0))
                    .unwrap_or_default()
            );
            if line != last && w["state"] != "idle" {
                println!("{line}");
                last = line;
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `tessera maintenance` options.
#[derive(clap::Args)]
pub struct MaintenanceArgs {
    /// Set the budget repair, rebalance and recode share (bytes per second, e.g. 50MB; 0 =
    /// unlimited).
    #[arg(long, value_parser = tessera_coordinator::names::parse_size)]
    rate: Option<u64>,
    /// Pause a worker (as listed).
    #[arg(long)]
    pause: Option<String>,
    /// Resume a paused worker.
    #[arg(long)]
    resume: Option<String>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

/// Runs `tessera maintenance`: steers, then lists the workers.
pub async fn maintenance(admin: &str, a: MaintenanceArgs) -> anyhow::Result<i32> {
    let admin = admin.trim_end_matches('/');
    if let Some(rate) = a.rate {
        send_json(
            client()
                .put(format!("{admin}/maintenance"))
                .json(&serde_json::json!({ "rate": rate })),
            admin,
        )
        .await?;
    }
    for (name, action) in [(&a.pause, "pause"), (&a.resume, "resume")] {
        if let Some(n) = name {
            send_json(
                client().post(format!("{admin}/workers/{n}/{action}")),
                admin,
            )
            .await
            .with_context(|| format!("{action} {n}"))?;
        }
    }
    let v = get_json(&format!("{admin}/workers")).await?;
    if a.json {
        println!("{v}");
        return Ok(0);
    }
    print_workers(&v);
    Ok(0)
}

/// The workers table (`tessera maintenance`, `tessera status`).
pub fn print_workers(v: &serde_json::Value) {
    let rate = v["maintenance_rate"].as_u64().unwrap_or(0);
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
    for w in v["workers"].as_array().into_iter().flatten() {
        let progress = match (w["done"].as_u64(), w["total"].as_u64()) {
            (Some(d), Some(t)) if t > 0 => format!("{d}/{t}"),
            (Some(d), _) if d > 0 => d.to_string(),
            _ => "-".into(),
        };
        let state = w["state"].as_str().unwrap_or("?");
        let what = if state == "running" {
            w["activity"].as_str().unwrap_or("")
        } else {
            w["last_result"].as_str().unwrap_or("")
        };
        println!(
            "{:<18} {:<8} {:>12} {:>10}  {}",
            w["name"].as_str().unwrap_or("?"),
            state,
            progress,
            mb(w["bytes"].as_u64().unwrap_or(0)),
            what
        );
    }
}
