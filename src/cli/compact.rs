//! `tessera compact`: rewrites segments of small objects that are mostly dead space.

use super::client::mb;
use super::global::Global;
use super::maintenance::follow;
use tessera_coordinator::maintenance::compact::{CompactRequest, CompactStatus};

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

fn print_segments(s: &CompactStatus) {
    println!(
        "{} segments, {} of {} object bytes live; {} below {:.2} live: {} dead to give back, {} live to move",
        s.segments,
        mb(s.live_bytes),
        mb(s.bytes),
        s.candidates,
        s.below,
        mb(s.reclaimable_bytes),
        mb(s.bytes_to_move),
    );
}

/// Runs `tessera compact`.
pub async fn run(a: CompactArgs, g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    let req = CompactRequest {
        bucket: a.bucket,
        below: a.below,
        dry_run: a.dry_run,
    };
    let s: CompactStatus = admin.post("/compact", &req).await?;
    if a.dry_run {
        print!("dry run: ");
    }
    print_segments(&s);
    if a.dry_run || a.no_wait {
        return Ok(0);
    }
    follow(&admin, "compact", || async {
        Ok(!admin.get::<CompactStatus>("/compact").await?.running)
    })
    .await?;
    print!("compacted: ");
    print_segments(&admin.get("/compact").await?);
    Ok(0)
}
