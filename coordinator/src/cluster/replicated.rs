//! [`Cluster`]: the metadata [`Engine`] of a replicated coordinator.
//!
//! - **Writes** become log entries ([`Proposal`]s). On the leader they are proposed
//!   directly; a follower forwards them to the leader (`POST /raft/write`). A write is
//!   acknowledged once a majority of members have the entry durably and it is applied. A
//!   leader that has not heard from a quorum within an election timeout refuses writes at
//!   once (it is on the minority side of a partition), and a member that finds no leader
//!   within `leader_wait` answers [`MetaError::Unavailable`]. A forwarded write is sent again
//!   only if the first attempt never reached the leader (or the leader answered that it is
//!   not the leader any more), so no write is applied twice by a retry.
//! - **Linearizable reads** first learn a read index: the leader confirms with a quorum that
//!   it still leads (openraft's read-index check) and answers its commit position; a follower
//!   asks the leader for it (`POST /raft/read-index`). The reader then waits until its own
//!   state machine has applied that far and reads locally. Concurrent reads share one
//!   confirmation: a read waits at most for the round after the one in progress.
//! - **Local reads** read whatever this member has applied.

use super::network::Contacts;
use super::{Applied, Proposal, Raft};
use crate::meta::{Command, Context, Engine, Freshness, MetaError, MetaStore, Reply};
use openraft::error::{ClientWriteError, RaftError};
use openraft::ServerState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, RwLock};
use tokio::time::Instant;

type Result<T> = std::result::Result<T, MetaError>;

/// Time limits of a replicated coordinator.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Longest wait for a leader to be known before a request fails.
    pub leader_wait: Duration,
    /// Longest wait for a write to commit or a read index to be confirmed.
    pub quorum_wait: Duration,
    /// A leader that has heard from no quorum for this long refuses writes.
    pub quorum_lost_after: Duration,
}

pub(crate) type ReadWaiter = oneshot::Sender<Result<u64>>;

/// A member of a replicated coordinator group (see the module docs).
pub struct Cluster {
    /// This member's Raft id.
    pub id: u64,
    /// The Raft handle.
    pub raft: Raft,
    /// The applied metadata (reads).
    pub(crate) store: Arc<MetaStore>,
    /// Shared by reads; exclusive while a snapshot is installed.
    pub(crate) gate: Arc<RwLock<()>>,
    /// HTTP client sending the cluster secret (forwarding, read indexes, hello).
    pub(crate) http: reqwest::Client,
    /// When each member last answered.
    pub contacts: Arc<Contacts>,
    /// Time limits.
    pub limits: Limits,
    pub(crate) reads: mpsc::UnboundedSender<ReadWaiter>,
    /// The database of this member's Raft storage.
    pub(crate) db: Arc<rocksdb::DB>,
}

impl Cluster {
    /// Starts serving the read-index rounds requested on `self.reads` (whose receiving end
    /// is `rounds`) and returns the member.
    pub(crate) fn start(self, rounds: mpsc::UnboundedReceiver<ReadWaiter>) -> Arc<Self> {
        let c = Arc::new(self);
        tokio::spawn(read_rounds(Arc::downgrade(&c), rounds));
        c
    }

    /// The leader this member knows of.
    pub fn leader(&self) -> Option<u64> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether this member leads and has heard from a quorum recently.
    pub fn leads(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        // No figure yet (just elected): the write's own quorum wait decides.
        m.state == ServerState::Leader
            && m.millis_since_quorum_ack
                .is_none_or(|ms| ms <= self.limits.quorum_lost_after.as_millis() as u64)
    }

    /// The admin URL of member `id`, from the current membership.
    pub fn url_of(&self, id: u64) -> Option<String> {
        let membership = self.raft.metrics().borrow().membership_config.clone();
        let url = membership
            .nodes()
            .find(|(n, _)| **n == id)
            .map(|(_, node)| node.addr.trim_end_matches('/').to_string());
        url
    }

    /// Waits (until `deadline`) for a leader to be known.
    async fn await_leader(&self, deadline: Instant) -> Result<u64> {
        let mut rx = self.raft.metrics();
        loop {
            if let Some(l) = rx.borrow_and_update().current_leader {
                return Ok(l);
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return Err(MetaError::Unavailable(
                    "no coordinator leader is known (is a majority of coordinators up and reachable?)"
                        .into(),
                ));
            }
        }
    }

    /// Proposes `p`; with `forward`, a follower sends it to the leader.
    pub async fn propose(&self, p: Proposal, forward: bool) -> Result<Reply> {
        let deadline = Instant::now() + self.limits.leader_wait.max(self.limits.quorum_wait);
        let mut leader_deadline = Instant::now() + self.limits.leader_wait;
        loop {
            let leader = self.await_leader(leader_deadline).await?;
            if leader == self.id {
                if !self.leads() {
                    return Err(MetaError::Unavailable(
                        "this coordinator leads but has not heard from a majority recently: writes are refused".into(),
                    ));
                }
                let remaining = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(remaining, self.raft.client_write(p.clone())).await {
                    Ok(Ok(r)) => return r.data.0,
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                        if !forward {
                            return Err(not_leader());
                        }
                    }
                    Ok(Err(e)) => return Err(MetaError::Unavailable(e.to_string())),
                    Err(_) => {
                        return Err(MetaError::Unavailable(format!(
                            "the write was not confirmed by a majority of coordinators within {:?}",
                            self.limits.quorum_wait
                        )))
                    }
                }
            } else if !forward {
                return Err(not_leader());
            } else {
                match self.forward(leader, &p, deadline).await {
                    Forwarded::Done(r) => return *r,
                    Forwarded::NotApplied(why) => {
                        if Instant::now() >= deadline {
                            return Err(MetaError::Unavailable(why));
                        }
                    }
                }
            }
            // Leadership is moving: look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            leader_deadline = leader_deadline.max(Instant::now() + Duration::from_millis(100));
        }
    }

    async fn forward(&self, leader: u64, p: &Proposal, deadline: Instant) -> Forwarded {
        let Some(url) = self.url_of(leader) else {
            return Forwarded::NotApplied(format!("leader {leader} is not a member"));
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        let sent = self
            .http
            .post(format!("{url}/raft/write"))
            .json(p)
            .timeout(remaining)
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Forwarded::NotApplied(format!("leader {leader} unreachable: {e}"))
            }
            Err(e) => {
                return Forwarded::Done(Box::new(Err(MetaError::Unavailable(format!(
                    "forwarding to leader {leader} failed, the write's outcome is unknown: {e}"
                )))))
            }
        };
        if resp.status() == reqwest::StatusCode::MISDIRECTED_REQUEST {
            return Forwarded::NotApplied(format!("{leader} is no longer the leader"));
        }
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return Forwarded::Done(Box::new(Err(MetaError::Unavailable(format!(
                "leader {leader} answered {status}: {body}"
            )))));
        }
        match resp.json::<Applied>().await {
            Ok(a) => Forwarded::Done(Box::new(a.0)),
            Err(e) => Forwarded::Done(Box::new(Err(MetaError::Unavailable(format!(
                "reading the leader's answer failed, the write's outcome is unknown: {e}"
            ))))),
        }
    }

    /// The read index as the leader: confirms leadership with a quorum, answers the log
    /// position a linearizable read must see applied.
    pub async fn leader_read_index(&self) -> Result<u64> {
        if !self.leads() {
            return Err(not_leader());
        }
        match tokio::time::timeout(self.limits.quorum_wait, self.raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => Ok(read.map_or(0, |l| l.index)),
            Ok(Err(e)) => Err(MetaError::Unavailable(e.to_string())),
            Err(_) => Err(MetaError::Unavailable(
                "leadership not confirmed by a majority in time".into(),
            )),
        }
    }

    /// One read-index round: locally on the leader, else asked of the leader.
    async fn read_index_round(&self) -> Result<u64> {
        let deadline = Instant::now() + self.limits.leader_wait;
        let leader = self.await_leader(deadline).await?;
        if leader == self.id {
            return self.leader_read_index().await;
        }
        let url = self
            .url_of(leader)
            .ok_or_else(|| MetaError::Unavailable(format!("leader {leader} is not a member")))?;
        let resp = self
            .http
            .post(format!("{url}/raft/read-index"))
            .timeout(self.limits.quorum_wait)
            .send()
            .await
            .map_err(|e| MetaError::Unavailable(format!("leader {leader} unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(MetaError::Unavailable(format!(
                "leader {leader} could not confirm a read index ({})",
                resp.status()
            )));
        }
        resp.json::<std::result::Result<u64, MetaError>>()
            .await
            .map_err(|e| MetaError::Unavailable(e.to_string()))?
    }

    /// Waits until this member has applied `index`.
    async fn applied(&self, index: u64) -> Result<()> {
        if self
            .raft
            .metrics()
            .borrow()
            .last_applied
            .is_some_and(|l| l.index >= index)
        {
            return Ok(());
        }
        self.raft
            .wait(Some(self.limits.quorum_wait))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map(|_| ())
            .map_err(|e| MetaError::Unavailable(format!("catching up to the read index: {e}")))
    }

    /// Runs `f` on what this member has applied (no read index).
    pub async fn run_local<T: Send + 'static>(
        &self,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run_read(Freshness::local, f).await
    }

    async fn run_read<T: Send + 'static>(
        &self,
        fresh: Freshness,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        if fresh == Freshness::linear {
            let (tx, rx) = oneshot::channel();
            self.reads
                .send(tx)
                .map_err(|_| MetaError::Unavailable("shutting down".into()))?;
            let index = rx
                .await
                .map_err(|_| MetaError::Unavailable("shutting down".into()))??;
            self.applied(index).await?;
        }
        let shared = self.gate.clone().read_owned().await;
        let store = self.store.clone();
        crate::meta::api::blocking(move || {
            let out = f(&store);
            drop(shared);
            out
        })
        .await
    }
}

fn not_leader() -> MetaError {
    MetaError::Fenced("this coordinator is not the leader".into())
}

enum Forwarded {
    /// The leader answered (or the outcome is unknown): do not send it again.
    Done(Box<Result<Reply>>),
    /// Not applied; may be sent again.
    NotApplied(String),
}

/// Serves read-index requests in rounds: every request that arrives while a round runs
/// waits for the next one, which covers them all.
async fn read_rounds(c: std::sync::Weak<Cluster>, mut rx: mpsc::UnboundedReceiver<ReadWaiter>) {
    while let Some(first) = rx.recv().await {
        let mut waiting = vec![first];
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        let Some(c) = c.upgrade() else { return };
        let r = c.read_index_round().await;
        for w in waiting {
            let _ = w.send(r.clone());
        }
    }
}

impl Engine for Cluster {
    async fn write(&self, cmd: Command) -> Result<Reply> {
        let p = Proposal {
            ctx: Context::now(self.id),
            fence: None,
            cmd,
        };
        self.propose(p, true).await
    }

    async fn read<T: Send + 'static>(
        &self,
        fresh: Freshness,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.run_read(fresh, f).await
    }
}

/// The metadata as leader-only work sees it: writes are proposed only on this member and
/// only while it leads in `term`, and apply only if they reach the log in that term.
pub struct Fenced {
    /// The member.
    pub cluster: Arc<Cluster>,
    /// The term the work was started in.
    pub term: u64,
}

impl Engine for Fenced {
    async fn write(&self, cmd: Command) -> Result<Reply> {
        let p = Proposal {
            ctx: Context::now(self.cluster.id),
            fence: Some(self.term),
            cmd,
        };
        self.cluster.propose(p, false).await
    }

    async fn read<T: Send + 'static>(
        &self,
        fresh: Freshness,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.cluster.run_read(fresh, f).await
    }
}
