//! `tessera recode`: re-encodes a bucket's (or prefix's) objects into another code.

use super::client::mb;
use super::global::Global;
use super::maintenance::{follow, JobArgs};
use tessera_coordinator::maintenance::recode::{RecodePlan, RecodeRequest};

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

/// The stored recode jobs, as `GET /recode` answers.
#[derive(serde::Deserialize)]
struct Jobs {
    jobs: Vec<RecodeRequest>,
}

/// Runs `tessera recode`.
pub async fn run(a: RecodeArgs, g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    let req = RecodeRequest {
        bucket: a.bucket.clone(),
        prefix: a.prefix.clone(),
        ec: a.ec.clone(),
        rate: a.job.rate,
        dry_run: a.job.dry_run,
    };
    let p: RecodePlan = admin.post("/recode", &req).await?;
    let (now, after) = (p.stored_bytes_now, p.stored_bytes_after);
    println!(
        "{}{} objects ({} logical) to {}: stored {} now, {} after: {} {}",
        if a.job.dry_run { "dry run: " } else { "" },
        p.objects,
        mb(p.logical_bytes),
        a.ec,
        mb(now),
        mb(after),
        mb(now.abs_diff(after)),
        if after <= now { "saved" } else { "more" }
    );
    if p.multipart > 0 {
        println!(
            "{} of them multipart (re-encoded part by part)",
            p.multipart
        );
    }
    if a.job.dry_run || a.job.no_wait {
        return Ok(0);
    }
    let (bucket, prefix) = (a.bucket.as_str(), a.prefix.as_str());
    follow(&admin, "recode", || async {
        let jobs: Jobs = admin.get("/recode").await?;
        Ok(!jobs
            .jobs
            .iter()
            .any(|j| j.bucket == bucket && j.prefix == prefix))
    })
    .await?;
    println!("recode finished: bucket {} is {} now", a.bucket, a.ec);
    Ok(0)
}
