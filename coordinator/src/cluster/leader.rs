//! Work that must run once per group runs on the leader only: [`supervise`] starts it when
//! this member becomes leader, hands it a [`Fenced`] metadata handle for that term, and
//! cancels it when the term ends (leadership lost or a new election). What the work is
//! (garbage collection, repair scans, the orphan scan, multipart expiry) is the caller's;
//! the in-flight record leases are here ([`leases`]).

use super::replicated::Fenced;
use super::Cluster;
use crate::meta::Metadata;
use openraft::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Runs `start(handle, token)` for every term this member leads, until `stop`. The token is
/// cancelled when the term ends; `start` spawns what it needs and returns.
pub async fn supervise(
    c: Arc<Cluster>,
    stop: CancellationToken,
    lease: Duration,
    start: impl Fn(Arc<dyn Metadata>, CancellationToken),
) {
    let mut rx = c.raft.metrics();
    loop {
        let term = loop {
            {
                let m = rx.borrow_and_update();
                if m.state == ServerState::Leader {
                    break m.current_term;
                }
            }
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = stop.cancelled() => return,
            }
        };
        tracing::info!(
            term,
            "leading the coordinator group: starting leader-only work"
        );
        let fenced: Arc<dyn Metadata> = Arc::new(Fenced {
            cluster: c.clone(),
            term,
        });
        let token = stop.child_token();
        start(fenced.clone(), token.clone());
        tokio::spawn(leases(c.clone(), fenced, lease, token.clone()));
        loop {
            tokio::select! {
                r = rx.changed() => {
                    if r.is_err() {
                        token.cancel();
                        return;
                    }
                    let m = rx.borrow_and_update();
                    if m.state != ServerState::Leader || m.current_term != term {
                        break;
                    }
                }
                _ = stop.cancelled() => {
                    token.cancel();
                    return;
                }
            }
        }
        token.cancel();
        tracing::info!(term, "no longer leading: leader-only work stopped");
    }
}

/// Expires the in-flight records of every coordinator the leader has not heard from for
/// `lease` (counted from when this term began, for members never heard from): their writes
/// will not commit, their shards become garbage.
async fn leases(
    c: Arc<Cluster>,
    meta: Arc<dyn Metadata>,
    lease: Duration,
    stop: CancellationToken,
) {
    let since = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        let owners = match meta.pending_owners().await {
            Ok(o) => o,
            Err(e) => {
                tracing::debug!(error = %e, "lease check");
                continue;
            }
        };
        for (owner, n) in owners {
            if owner == c.id {
                continue;
            }
            let last = c
                .contacts
                .last(owner)
                .map_or(since, |t| Instant::from_std(t).max(since));
            if last.elapsed() < lease {
                continue;
            }
            match meta.expire_pending(Some(owner), u64::MAX).await {
                Ok(expired) => tracing::warn!(
                    coordinator = owner,
                    expired,
                    records = n,
                    "lease expired: writes in flight on an unresponsive coordinator handed to garbage collection"
                ),
                Err(e) => tracing::warn!(error = %e, coordinator = owner, "expiring a lease"),
            }
        }
    }
}
