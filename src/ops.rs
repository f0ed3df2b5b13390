//! Operator commands that talk to a running coordinator's admin API: `tessera repair`,
//! `tessera status`, `tessera key` and `tessera bucket`. Every request carries the admin
//! token set once by [`set_admin_token`].

use anyhow::{anyhow, bail, Context};
use std::io::IsTerminal;
use std::time::Duration;
use tessera_coordinator::repair::{RepairReport, RepairRequest};

static ADMIN_TOKEN: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The admin token every later request presents.
pub fn set_admin_token(token: String) {
    let _ = ADMIN_TOKEN.set(token);
}

pub(crate) fn client() -> reqwest::Client {
    let headers = ADMIN_TOKEN
        .get()
        .map(|t| tessera_node::auth::headers(t))
        .unwrap_or_default();
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Picks the coordinator to talk to from a comma-separated list of admin URLs: the
/// group's leader when the first coordinator that answers knows one (leader-only work such
/// as repair runs there), else that coordinator.
pub async fn resolve(list: &str) -> anyhow::Result<String> {
    let urls: Vec<&str> = list
        .split(',')
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| !u.is_empty())
        .collect();
    if urls.len() == 1 {
        return Ok(urls[0].to_string());
    }
    let mut errors = Vec::new();
    for url in &urls {
        let cluster = client()
            .get(format!("{url}/cluster"))
            .timeout(Duration::from_secs(3))
            .send()
            .await;
        match cluster {
            Ok(r) if r.status().is_success() => {
                let v: serde_json::Value = r.json().await.unwrap_or_default();
                let leader = v["raft"]["leader"].as_u64();
                let leader_url = v["raft"]["members"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|m| m["id"].as_u64() == leader && leader.is_some())
                    .and_then(|m| m["admin_url"].as_str());
                return Ok(leader_url.unwrap_or(url).trim_end_matches('/').to_string());
            }
            Ok(r) => errors.push(format!("{url}: {}", r.status())),
            Err(e) => errors.push(format!("{url}: {e}")),
        }
    }
    bail!("no coordinator answered: {}", errors.join("; "))
}

/// `tessera cluster ...`: changes the members of a replicated coordinator group.
#[derive(clap::Subcommand)]
pub enum ClusterCmd {
    /// Adds a coordinator (started with --raft-id ID and empty data) to the group.
    AddCoordinator {
        /// Its Raft id.
        #[arg(long)]
        raft_id: u64,
        /// Its admin URL.
        #[arg(long)]
        admin_url: String,
    },
    /// Removes a coordinator from the group.
    RemoveCoordinator {
        /// Its Raft id.
        #[arg(long)]
        raft_id: u64,
    },
}

/// Runs a [`ClusterCmd`] (on the leader: a follower's `421` names it).
pub async fn cluster(admin: &str, cmd: ClusterCmd) -> anyhow::Result<()> {
    let mut admin = admin.trim_end_matches('/').to_string();
    for _ in 0..3 {
        let req = match &cmd {
            ClusterCmd::AddCoordinator { raft_id, admin_url } => client()
                .post(format!("{admin}/cluster/coordinators"))
                .json(&serde_json::json!({ "raft_id": raft_id, "admin_url": admin_url })),
            ClusterCmd::RemoveCoordinator { raft_id } => {
                client().delete(format!("{admin}/cluster/coordinators/{raft_id}"))
            }
        };
        let r = req
            .timeout(Duration::from_secs(120))
            .send()
            .await
            .with_context(|| format!("cannot reach the coordinator at {admin}"))?;
        if r.status() == reqwest::StatusCode::MISDIRECTED_REQUEST {
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            admin = v["leader_admin_url"]
                .as_str()
                .context("the coordinator is not the leader and knows none")?
                .to_string();
            continue;
        }
        if r.status().is_success() {
            println!("ok");
            return Ok(());
        }
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        bail!("{}", v["error"].as_str().unwrap_or("request failed"));
    }
    bail!("the leader moved while the change was being asked for; try again")
}

pub(crate) async fn get_json(url: &str) -> anyhow::Result<serde_json::Value> {
    send_json(client().get(url), url).await
}

/// Sends an admin request and returns its JSON answer (an error with the coordinator's
/// message if it refused).
pub(crate) async fn send_json(
    req: reqwest::RequestBuilder,
    url: &str,
) -> anyhow::Result<serde_json::Value> {
    let r = req
        .send()
        .await
        .with_context(|| format!("cannot reach the coordinator at {url}"))?;
    let status = r.status();
    if status == reqwest::StatusCode::NO_CONTENT {
        return Ok(serde_json::Value::Null);
    }
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
    watch_repair(admin, id, json).await
}

/// Follows repair run `id` until it ends, then prints its report. Returns the process exit
/// code: 0 if everything is healthy afterwards, 1 otherwise.
pub async fn watch_repair(admin: &str, id: u64, json: bool) -> anyhow::Result<i32> {
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
    let mut unreachable_since: Option<std::time::Instant> = None;
    let report: RepairReport = loop {
        // The run survives a coordinator restart (it resumes under the same id): keep asking
        // for a minute before giving up.
        let r: RepairReport = match get_json(&format!("{admin}/repair/{id}")).await {
            Ok(v) => {
                unreachable_since = None;
                serde_json::from_value(v)?
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
    Ok(if report.healthy() { 0 } else { 1 })
}

/// Prints the cluster's state: nodes, repair queue and scrub progress.
pub async fn status(admin: &str, json: bool) -> anyhow::Result<()> {
    let admin = admin.trim_end_matches('/');
    let cluster = get_json(&format!("{admin}/cluster")).await?;
    let repair = get_json(&format!("{admin}/repair")).await?;
    let workers = get_json(&format!("{admin}/workers")).await?;
    if json {
        println!(
            "{}",
            serde_json::json!({ "cluster": cluster, "repair": repair, "workers": workers })
        );
        return Ok(());
    }
    println!(
        "{:<18} {:<22} {:<10} {:<9} {:>14} {:>16} {:>8}",
        "NODE", "ADDRESS", "ZONE", "STATE", "USED", "FREE", "SCRUBBED"
    );
    for n in cluster["nodes"].as_array().into_iter().flatten() {
        println!(
            "{:<18} {:<22} {:<10} {:<9} {:>14} {:>16} {:>8}",
            n["id"].as_str().unwrap_or(""),
            n["address"].as_str().unwrap_or(""),
            n["zone"].as_str().unwrap_or(""),
            n["state"].as_str().unwrap_or(""),
            n["used"].as_u64().unwrap_or(0),
            n["free"].as_u64().unwrap_or(0),
            n["scrub"]["shards_checked"].as_u64().unwrap_or(0)
        );
    }
    if let Some(raft) = cluster["raft"].as_object() {
        println!(
            "\ncoordinators: leader {}, term {}",
            raft["leader"], raft["term"]
        );
        println!(
            "{:<6} {:<30} {:<12} {:>14} {:>14}",
            "ID", "ADMIN URL", "ROLE", "LAST LOG", "APPLIED"
        );
        for m in raft["members"].as_array().into_iter().flatten() {
            println!(
                "{:<6} {:<30} {:<12} {:>14} {:>14}",
                m["id"],
                m["admin_url"].as_str().unwrap_or(""),
                m["role"].as_str().unwrap_or(""),
                m["last_log_index"],
                m["applied_index"]
            );
        }
        println!();
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
    println!();
    crate::maintain::print_workers(&workers);
    Ok(())
}

/// `tessera key ...`: prints the coordinator's answer as JSON.
pub async fn key(admin: &str, cmd: KeyCmd) -> anyhow::Result<()> {
    let admin = admin.trim_end_matches('/');
    let c = client();
    let (req, url) = match cmd {
        KeyCmd::Create { name } => {
            let url = format!("{admin}/keys");
            (c.post(&url).json(&serde_json::json!({ "name": name })), url)
        }
        KeyCmd::Import {
            access_key_id,
            secret_access_key,
            name,
        } => {
            let url = format!("{admin}/keys/import");
            let body = serde_json::json!({
                "access_key_id": access_key_id,
                "secret_access_key": secret_access_key,
                "name": name,
            });
            (c.post(&url).json(&body), url)
        }
        KeyCmd::List => {
            let url = format!("{admin}/keys");
            (c.get(&url), url)
        }
        KeyCmd::Delete { id } => {
            let url = format!("{admin}/keys/{id}");
            (c.delete(&url), url)
        }
    };
    let v = send_json(req, &url).await?;
    if !v.is_null() {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(())
}

/// `tessera bucket ...`: prints the bucket's owner and grants as JSON.
pub async fn bucket(admin: &str, cmd: BucketCmd) -> anyhow::Result<()> {
    let admin = admin.trim_end_matches('/');
    let c = client();
    let (req, url) = match cmd {
        BucketCmd::Info { bucket } => {
            let url = format!("{admin}/buckets/{bucket}");
            (c.get(&url), url)
        }
        BucketCmd::Allow(g) => {
            let url = format!("{admin}/buckets/{}/allow", g.bucket);
            (c.post(&url).json(&g.body()), url)
        }
        BucketCmd::Deny(g) => {
            let url = format!("{admin}/buckets/{}/deny", g.bucket);
            (c.post(&url).json(&g.body()), url)
        }
    };
    let v = send_json(req, &url).await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Access key commands.
#[derive(clap::Subcommand)]
pub enum KeyCmd {
    /// Create a key (its secret is printed once).
    Create {
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// Import a key from another store, keeping its id and secret.
    Import {
        /// Access key id.
        #[arg(long)]
        access_key_id: String,
        /// Secret access key.
        #[arg(long)]
        secret_access_key: String,
        /// A name for people.
        #[arg(long)]
        name: String,
    },
    /// List keys (without secrets).
    List,
    /// Delete a key and its grants.
    Delete {
        /// Access key id.
        id: String,
    },
}

/// Bucket permission commands.
#[derive(clap::Subcommand)]
pub enum BucketCmd {
    /// Give a key permissions in a bucket (all three if none is named).
    Allow(GrantArgs),
    /// Take permissions away (all three if none is named).
    Deny(GrantArgs),
    /// Show a bucket's owner, grants and erasure code.
    Info {
        /// Bucket name.
        bucket: String,
    },
}

/// Which key, which bucket, which permissions.
#[derive(clap::Args)]
pub struct GrantArgs {
    /// Access key id.
    #[arg(long)]
    pub key: String,
    /// Bucket name.
    #[arg(long)]
    pub bucket: String,
    /// Read and list objects.
    #[arg(long)]
    pub read: bool,
    /// Write and delete objects.
    #[arg(long)]
    pub write: bool,
    /// Everything, including deleting the bucket.
    #[arg(long)]
    pub owner: bool,
}

impl GrantArgs {
    fn body(&self) -> serde_json::Value {
        serde_json::json!({ "key": self.key, "read": self.read, "write": self.write, "owner": self.owner })
    }
}
