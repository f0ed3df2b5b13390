//! Operator commands that talk to a running coordinator's admin API: `tessera repair` and
//! `tessera status`.

use anyhow::{anyhow, bail, Context};
use std::io::IsTerminal;
use std::time::Duration;
use tessera_coordinator::repair::{RepairReport, RepairRequest};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    let r = client()
        .get(url)
        .send()
        .await
        .with_context(|| format!("cannot reach the coordinator at {url}"))?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.context("coordinator sent no JSON")?;
    if !status.is_success() {
        bail!("{}", v["error"].as_str().unwrap_or("request failed"));
    }
    Ok(v)
}

/// Runs a repair through the coordinator and waits for it. Returns the process exit code:
/// 0 if everything is healthy afterwards, 1 otherwise.
pub async fn repair(admin: &str, req: RepairRequest, json: bool) -> anyhow::Result<i32> {
    if req.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let admin = admin.trim_end_matches('/');
    let r = client()
        .post(format!("{admin}/repair"))
        .json(&req)
        .send()
        .await
        .with_context(|| format!("cannot reach the coordinator at {admin}"))?;
    let status = r.status();
    let v: serde_json::Value = r.json().await.context("coordinator sent no JSON")?;
    if !status.is_success() {
        bail!("{}", v["error"].as_str().unwrap_or("repair refused"));
    }
    let id = v["run_id"]
        .as_u64()
        .ok_or_else(|| anyhow!("no run id in {v}"))?;
    let bar = (!json && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(0);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} repair [{bar:30}] {pos}/{len} objects, {msg} ({eta} left)",
            )
            .unwrap()
            .progress_chars("=> "),
        );
        b
    });
    let report: RepairReport = loop {
        let r: RepairReport =
            serde_json::from_value(get_json(&format!("{admin}/repair/{id}")).await?)?;
        if let Some(b) = &bar {
            b.set_length(r.objects_total);
            b.set_position(r.objects_scanned);
            b.set_message(format!(
                "{} repaired, {:.1} MB written ({:.1} MB/s)",
                r.repaired,
                r.bytes_written as f64 / 1e6,
                r.bytes_written as f64 / 1e6 / b.elapsed().as_secs_f64().max(0.001)
            ));
        }
        if r.done {
            break r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
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
        for o in &report.unrecoverable {
            println!("unrecoverable: {o}");
        }
        for o in &report.still_degraded {
            println!("still degraded: {o}");
        }
    }
    Ok(if report.healthy() { 0 } else { 1 })
}

/// Prints the cluster's state: nodes, repair queue and scrub progress.
pub async fn status(admin: &str, json: bool) -> anyhow::Result<()> {
    let admin = admin.trim_end_matches('/');
    let cluster = get_json(&format!("{admin}/cluster")).await?;
    let repair = get_json(&format!("{admin}/repair")).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "cluster": cluster, "repair": repair })
        );
        return Ok(());
    }
    println!(
        "{:<18} {:<22} {:<10} {:<5} {:>14} {:>16} {:>8}",
        "NODE", "ADDRESS", "ZONE", "STATE", "USED", "FREE", "SCRUBBED"
    );
    for n in cluster["nodes"].as_array().into_iter().flatten() {
        println!(
            "{:<18} {:<22} {:<10} {:<5} {:>14} {:>16} {:>8}",
            n["id"].as_str().unwrap_or(""),
            n["address"].as_str().unwrap_or(""),
            n["zone"].as_str().unwrap_or(""),
            n["state"].as_str().unwrap_or(""),
            n["used"].as_u64().unwrap_or(0),
            n["free"].as_u64().unwrap_or(0),
            n["scrub"]["shards_checked"].as_u64().unwrap_or(0)
        );
    }
    println!(
        "in-flight writes {}, garbage records {}, repair queue {}, suspect shards {}",
        cluster["objects_in_flight"], cluster["garbage"], repair["queue"], repair["suspect_shards"]
    );
    if let Some(scan) = repair["last_scan"].as_object() {
        let ago = tessera_coordinator::meta::now_ms()
            .saturating_sub(scan["finished_ms"].as_u64().unwrap_or(0));
        println!(
            "last background scan ({} s ago): {} objects, degraded {}, unrecoverable {}",
            ago / 1000,
            scan["objects_scanned"],
            scan["degraded"],
            scan["unrecoverable"].as_array().map_or(0, |a| a.len())
        );
        for o in scan["unrecoverable"].as_array().into_iter().flatten() {
            println!("  unrecoverable: {}", o.as_str().unwrap_or(""));
        }
    }
    if let Some(last) = repair["last_run"].as_object() {
        println!(
            "last repair run: degraded {}, repaired {}, unrecoverable {}",
            last["degraded"],
            last["repaired"],
            last["unrecoverable"].as_array().map_or(0, |a| a.len())
        );
    }
    Ok(())
}
