//! Scrubbing: re-reads and re-verifies every stored shard in the background within the node's
//! byte budget,
//! and reports corrupt shards to the coordinator, which queues them for repair.

use crate::error::StoreError;
use crate::state::{coordinators, NodeState};
use crate::types::{ShardHeader, ShardId};
use crate::worker::{periodic, Schedule, Worker};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Scrub settings.
#[derive(Clone, Debug)]
pub struct ScrubConfig {
    /// Verification budget in bytes per second at start (0 disables scrubbing; the rate
    /// can be changed at run time through the node's budget).
    pub rate: u64,
    /// Pause between passes.
    pub interval: Duration,
}

/// Bytes verified per store read.
const STEP: u64 = 1 << 20;

/// Worker `scrub`: a pass over every shard every `config.interval` until `stop`, spending
/// the node's budget for every byte it verifies; corrupt shards are reported to every
/// coordinator. Does nothing when `config.rate` is 0 (scrubbing off).
pub async fn run(
    state: NodeState,
    config: ScrubConfig,
    coordinator: String,
    stop: CancellationToken,
) {
    if config.rate == 0 {
        return;
    }
    let client = crate::client::http_client(&state.secret, &state.client_tls);
    let urls: Vec<String> = coordinators(&coordinator)
        .map(|c| format!("{}/nodes/corrupt", c.trim_end_matches('/')))
        .collect();
    let w = state.workers.get_or_add(
        "scrub",
        "re-reads every stored shard and checks its chunk hashes, within --scrub-rate",
    );
    let schedule = Schedule {
        first_after: config.interval,
        ..Schedule::every(config.interval)
    };
    let (w2, stop2) = (w.clone(), stop.clone());
    periodic(w, stop, schedule, || async {
        w2.begin("pass over every shard", 0);
        let corrupt = pass(&state, &w2, &stop2).await;
        if !corrupt.is_empty() {
            tracing::warn!(count = corrupt.len(), "scrub found corrupt shards");
            // Best effort: the next pass reports them again if the coordinator missed it.
            for url in &urls {
                let _ = client.post(url).json(&corrupt).send().await;
            }
        }
        let mut s = state.scrub.lock().unwrap();
        s.passes += 1;
        s.last_pass_corrupt = corrupt.len() as u64;
        s.current_pass_checked = 0;
        Ok::<_, std::convert::Infallible>(format!("{} corrupt shards found", corrupt.len()))
    })
    .await;
}

/// One pass over every shard (until `stop`); returns the headers of the corrupt ones.
async fn pass(state: &NodeState, w: &Worker, stop: &CancellationToken) -> Vec<ShardHeader> {
    let stats = &state.scrub;
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
            // A pause takes effect between shards.
            if !w.gate(stop).await {
                return corrupt;
            }
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
                state.budget.spend(n).await;
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
