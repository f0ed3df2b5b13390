//! Scrubbing: re-reads and re-verifies every stored shard in the background at a bounded rate,
//! and reports corrupt shards to the coordinator, which queues them for repair.

use crate::error::StoreError;
use crate::server::NodeState;
use crate::types::{ShardHeader, ShardId};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Scrub progress, reported in every heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubStats {
    /// Complete passes over all shards.
    pub passes: u64,
    /// Shards verified in all passes.
    pub shards_checked: u64,
    /// Bytes verified in all passes.
    pub bytes_checked: u64,
    /// Corrupt shards found in all passes.
    pub corrupt_found: u64,
    /// Corrupt shards found by the last complete pass.
    pub last_pass_corrupt: u64,
    /// Shards verified so far in the current pass.
    pub current_pass_checked: u64,
}

/// Scrub settings.
#[derive(Clone, Debug)]
pub struct ScrubConfig {
    /// Verification budget in bytes per second (0 disables scrubbing).
    pub rate: u64,
    /// Pause between passes.
    pub interval: Duration,
}

/// Bytes verified per store read.
const STEP: u64 = 1 << 20;

/// Runs scrub passes forever (until the task is dropped).
pub async fn run(
    state: NodeState,
    config: ScrubConfig,
    coordinator: String,
    stats: Arc<Mutex<ScrubStats>>,
) {
    if config.rate == 0 {
        return;
    }
    let client = crate::client::http_client(&state.secret);
    let urls: Vec<String> = crate::server::coordinators(&coordinator)
        .map(|c| format!("{}/nodes/corrupt", c.trim_end_matches('/')))
        .collect();
    let w = state.workers.get_or_add(
        "scrub",
        "re-reads every stored shard and checks its chunk hashes, within --scrub-rate",
    );
    loop {
        tokio::time::sleep(config.interval).await;
        w.begin("pass over every shard", 0);
        let corrupt = pass(&state, &config, &stats, &w).await;
        w.end(format!("{} corrupt shards found", corrupt.len()));
        if !corrupt.is_empty() {
            tracing::warn!(count = corrupt.len(), "scrub found corrupt shards");
            // Best effort: the next pass reports them again if the coordinator missed it.
            for url in &urls {
                let _ = client.post(url).json(&corrupt).send().await;
            }
        }
        let mut s = stats.lock().unwrap();
        s.passes += 1;
        s.last_pass_corrupt = corrupt.len() as u64;
        s.current_pass_checked = 0;
    }
}

/// One pass over every shard; returns the headers of the corrupt ones.
async fn pass(
    state: &NodeState,
    config: &ScrubConfig,
    stats: &Arc<Mutex<ScrubStats>>,
    w: &crate::worker::Worker,
) -> Vec<ShardHeader> {
    let never = tokio_util::sync::CancellationToken::new();
    let mut corrupt = Vec::new();
    let mut after: Option<ShardId> = None;
    loop {
        let store = state.store.clone();
        let a = after;
        let page = match tokio::task::spawn_blocking(move || store.list(a, 256)).await {
            Ok(Ok(p)) => p,
            _ => break,
        };
        let Some(last) = page.last() else { break };
        after = Some(last.header.shard_id());
        for info in page {
            // A pause takes effect between shards (the task is dropped at shutdown).
            w.gate(&never).await;
            w.advance(1, info.length);
            let id = info.header.shard_id();
            let mut offset = 0;
            let mut bad = false;
            while offset < info.length && !bad {
                let n = STEP.min(info.length - offset);
                let store = state.store.clone();
                let r = tokio::task::spawn_blocking(move || store.read(id, offset, n)).await;
                match r {
                    Ok(Err(StoreError::Corrupt(_))) => bad = true,
                    Ok(Err(StoreError::NotFound(_))) => break, // deleted meanwhile
                    _ => {}
                }
                offset += n;
                stats.lock().unwrap().bytes_checked += n;
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / config.rate as f64)).await;
            }
            let mut s = stats.lock().unwrap();
            s.shards_checked += 1;
            s.current_pass_checked += 1;
            if bad {
                s.corrupt_found += 1;
                corrupt.push(info.header);
            }
        }
    }
    corrupt
}
