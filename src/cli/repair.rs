//! `tessera repair`: starts a repair run in the coordinator and follows it to the end.

use super::client::Admin;
use super::global::Global;
use super::progress::Progress;
use anyhow::{anyhow, bail};
use std::time::Duration;
use tessera_coordinator::names::parse_duration;
use tessera_coordinator::repair::{RepairReport, RepairRequest};

/// `tessera repair` options.
#[derive(clap::Args)]
pub struct RepairArgs {
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
}

/// Runs a repair and waits for it: exit code 0 if everything is healthy afterwards.
pub async fn run(a: RepairArgs, g: &Global) -> anyhow::Result<i32> {
    if a.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let node = match a.node {
        Some(n) => Some(n.parse().map_err(|e: String| anyhow!(e))?),
        None => None,
    };
    let req = RepairRequest {
        dry_run: a.dry_run,
        bucket: a.bucket,
        node,
        concurrency: a.concurrency,
        grace_ms: a.grace.map(|g| g.as_millis() as u64),
        verify: a.verify,
    };
    let admin = g.admin().await?;
    #[derive(serde::Deserialize)]
    struct Started {
        run_id: u64,
    }
    let started: Started = admin.post("/repair", &req).await?;
    watch(&admin, started.run_id, g.json).await
}

/// Follows repair run `id` until it ends, then prints its report: exit code 0 if everything
/// is healthy afterwards, 1 otherwise.
pub async fn watch(admin: &Admin, id: u64, json: bool) -> anyhow::Result<i32> {
    let bar = Progress::new("repair", "objects", json);
    let mut unreachable_since: Option<std::time::Instant> = None;
    let report: RepairReport = loop {
        // The run survives a coordinator restart (it resumes under the same id): keep asking
        // for a minute before giving up.
        let r: RepairReport = match admin.get(&format!("/repair/{id}")).await {
            Ok(r) => {
                unreachable_since = None;
                r
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > Duration::from_secs(60) {
                    return Err(e.context(format!("repair run {id}")));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        bar.update(
            r.objects_scanned,
            r.objects_total,
            format!(
                "{} repaired, {:.1} MB written ({:.1} MB/s)",
                r.repaired,
                r.bytes_written as f64 / 1e6,
                r.bytes_written as f64 / 1e6 / bar.elapsed_secs().max(0.001)
            ),
        );
        if r.done {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    bar.finish();
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print(&report);
    }
    Ok(if report.healthy() { 0 } else { 1 })
}

fn print(report: &RepairReport) {
    let secs = report.elapsed_ms as f64 / 1000.0;
    println!(
        "{}objects scanned {}, degraded {}, repaired {}, unrecoverable {}, shards rebuilt {}",
        if report.dry_run { "dry run: " } else { "" },
        report.objects_scanned,
        report.degraded,
        report.repaired,
        report.unrecoverable.len(),
        report.shards_rebuilt
    );
    println!(
        "bytes read {}, written {}, in {secs:.1} s ({:.1} MB/s rebuilt)",
        report.bytes_read,
        report.bytes_written,
        report.bytes_written as f64 / 1e6 / secs.max(0.001)
    );
    if report.shards_verified > 0 || report.corrupt_found > 0 {
        println!(
            "verified {} shards ({} bytes), corrupt found {}",
            report.shards_verified, report.bytes_verified, report.corrupt_found
        );
    }
    for g in &report.within_grace {
        println!(
            "node {} is down ({:.0} s) but inside the repair grace: its shards count as lost in {:.0} s (--grace 0s rebuilds them now)",
            g.node,
            g.down_for_ms as f64 / 1000.0,
            g.lost_in_ms as f64 / 1000.0
        );
    }
    for o in &report.unrecoverable {
        println!("unrecoverable: {o}");
    }
    for o in &report.still_degraded {
        println!("still degraded: {o}");
    }
}
