//! Heartbeats: how a node tells each coordinator it is up, where it is and how much room it
//! has.

use crate::state::NodeState;
use tokio_util::sync::CancellationToken;

/// Worker `heartbeat` (one per coordinator): sends a heartbeat to `coordinator` every
/// `interval` until `stop`.
pub async fn run(
    state: NodeState,
    addr: String,
    coordinator: String,
    interval: std::time::Duration,
    stop: CancellationToken,
) {
    let mut builder = state
        .client_tls
        .apply(reqwest::Client::builder())
        .default_headers(crate::auth::headers(&state.secret))
        .timeout(std::time::Duration::from_secs(5));
    if state.client_tls.is_mutual() {
        // A fresh handshake per heartbeat: a certificate revoked or expired stops this node's
        // heartbeats within one interval (and the coordinators count it down).
        builder = builder.pool_max_idle_per_host(0);
    }
    let client = builder.build().expect("http client");
    let url = format!("{}/nodes/heartbeat", coordinator.trim_end_matches('/'));
    let mut warned = false;
    let w = state.workers.get_or_add(
        "heartbeat",
        "reports this node (address, zone, space, scrub) to every coordinator each interval",
    );
    loop {
        // A paused node stops reporting: coordinators count it down after their timeout.
        if !w.gate(&stop).await {
            break;
        }
        let st = state.clone();
        let a = addr.clone();
        let hb = tokio::task::spawn_blocking(move || st.heartbeat(a)).await;
        if let Ok(hb) = hb {
            match client.post(&url).json(&hb).send().await {
                Ok(r) if r.status().is_success() => {
                    warned = false;
                    w.end(format!("reported to {coordinator}"));
                }
                Ok(r) if r.status() == reqwest::StatusCode::GONE && !warned => {
                    tracing::error!(
                        "this node was removed from the cluster: the coordinator refuses it; give a replacement a fresh data dir"
                    );
                    warned = true;
                }
                Ok(r) if !warned => {
                    tracing::warn!(status = %r.status(), "coordinator refused heartbeat");
                    warned = true;
                }
                Err(e) if !warned => {
                    tracing::warn!(error = %e, "coordinator unreachable");
                    warned = true;
                }
                _ => {}
            }
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(interval) => {}
        }
    }
    // Stopping gracefully: a last heartbeat says so, and the coordinator counts the node
    // down at once but does not take it for failed (no repair) for its stopped grace.
    let st = state.clone();
    if let Ok(mut hb) = tokio::task::spawn_blocking(move || st.heartbeat(addr)).await {
        hb.stopping = true;
        match client.post(&url).json(&hb).send().await {
            Ok(r) if r.status().is_success() => {
                tracing::info!(%coordinator, "told the coordinator this node is stopping")
            }
            Ok(r) => tracing::warn!(status = %r.status(), "coordinator refused the last heartbeat"),
            Err(e) => tracing::warn!(error = %e, "coordinator unreachable for the last heartbeat"),
        }
    }
    w.stopped();
}
