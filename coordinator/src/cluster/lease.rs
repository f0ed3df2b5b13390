//! The leader's read lease: how a leader serves linearizable reads without a quorum round.
//!
//! A follower that has heard the leader stands for election, and grants its vote to another,
//! only after the leader's lease plus its own election timeout of silence: at least 1.3 s
//! with the default [`super::ClusterConfig`] (openraft waits the largest election timeout as
//! the lease, then its own). So once a quorum has acknowledged a heartbeat or an append the
//! leader sent at instant `T`, no other leader can be elected before `T + 1.3 s`, and
//! whatever this leader has appended by then is everything that can have been committed.
//! For [`READ_LEASE`] after `T` (less, by a margin for scheduling delays and clock rates) a
//! read index is the leader's last log index, answered at once; after that a read pays a
//! heartbeat round again (openraft's read-index check), and a leader cut off from its
//! quorum refuses (see `replicated.rs`).
//!
//! `T` comes from openraft's metrics (milliseconds since the newest quorum-acknowledged send
//! time, as of the report). The watcher turns each report into an instant as it arrives, so
//! a report read late does not make the lease look younger than it is by more than the
//! watcher's own wake-up delay, which the margin covers.

use super::Raft;
use openraft::ServerState;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after a quorum-acknowledged send a leader answers read indexes without a round
/// (against at least 1.3 s before another leader can exist).
pub const READ_LEASE: Duration = Duration::from_millis(800);

/// The lease as last reported (see the module docs).
#[derive(Default)]
pub struct Lease {
    /// The term and the instant of the newest quorum-acknowledged send while leading.
    acked: Mutex<Option<(u64, Instant)>>,
}

impl Lease {
    /// The read index (this leader's last log index) if the lease holds now in `term`.
    pub fn read_index(&self, raft: &Raft) -> Option<u64> {
        let m = raft.metrics();
        let m = m.borrow();
        if m.state != ServerState::Leader {
            return None;
        }
        let (term, at) = (*self.acked.lock().unwrap())?;
        (term == m.current_term && at.elapsed() < READ_LEASE).then(|| m.last_log_index.unwrap_or(0))
    }

    /// Follows `raft`'s metrics until the member shuts down.
    pub async fn watch(lease: std::sync::Weak<Lease>, raft: Raft) {
        let mut rx = raft.metrics();
        loop {
            let seen = {
                let m = rx.borrow_and_update();
                match (m.state, m.millis_since_quorum_ack) {
                    (ServerState::Leader, Some(ms)) => Instant::now()
                        .checked_sub(Duration::from_millis(ms))
                        .map(|at| (m.current_term, at)),
                    _ => None,
                }
            };
            let Some(lease) = lease.upgrade() else { return };
            *lease.acked.lock().unwrap() = seen;
            drop(lease);
            if rx.changed().await.is_err() {
                return;
            }
        }
    }
}
