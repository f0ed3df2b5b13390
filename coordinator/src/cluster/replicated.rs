//! [`Cluster`]: the metadata [`Engine`] of a replicated coordinator.
//!
//! - **Writes** become log entries ([`Proposal`]s). Each member batches its writes: while
//!   [`PIPELINE`] batches are out, new writes queue, and the next batch takes all of them
//!   as one entry (one append, one replication round, one fsync per member), so the cost
//!   per write falls as load rises while a lone write goes at once. On the leader a batch
//!   is proposed directly; a follower forwards it to the leader in one request
//!   (`POST /raft/write`), where it joins the leader's next batch. A write is
//!   acknowledged once a majority of members have the entry durably and it is applied. A
//!   leader that has not heard from a quorum within an election timeout refuses writes at
//!   once (it is on the minority side of a partition), and a member that finds no leader
//!   within `leader_wait` answers [`MetaError::Unavailable`]. A forwarded write is sent again
//!   only if the first attempt never reached the leader (or the leader answered that it is
//!   not the leader any more), so no write is applied twice by a retry.
//! - **Linearizable reads** first learn a read index. A leader within its read lease
//!   (`lease.rs`: a quorum acknowledged it less than 800 ms ago) answers its last log index at
//!   once; otherwise it confirms with a quorum that it still leads (openraft's read-index
//!   check) and answers its commit position. A follower asks the leader for it (`POST
//!   /raft/read-index`). The reader then waits until its own state machine has applied that
//!   far and reads locally. Concurrent reads share one request or confirmation: a read waits
//!   at most for the round after the one in progress.
//! - **Local reads** read whatever this member has applied.

use super::lease::Lease;
use super::network::Contacts;
use super::{version, Applied, Proposal, Raft, Write};
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
    pub(crate) proposals: mpsc::UnboundedSender<Queued>,
    /// The database of this member's Raft storage.
    pub(crate) db: Arc<rocksdb::DB>,
    /// Where this member's operation times come from.
    pub clock: Arc<crate::meta::Clock>,
    /// The read lease while this member leads.
    pub(crate) lease: Arc<Lease>,
}

impl Cluster {
    /// Starts serving the read-index rounds requested on `self.reads` (whose receiving end
    /// is `rounds`) and the write batches queued on `self.proposals` (received on
    /// `proposals`), and returns the member.
    pub(crate) fn start(
        self,
        rounds: mpsc::UnboundedReceiver<ReadWaiter>,
        proposals: mpsc::UnboundedReceiver<Queued>,
    ) -> Arc<Self> {
        let c = Arc::new(self);
        tokio::spawn(Lease::watch(Arc::downgrade(&c.lease), c.raft.clone()));
        tokio::spawn(read_rounds(Arc::downgrade(&c), rounds));
        tokio::spawn(batch_writes(Arc::downgrade(&c), proposals));
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

    /// (leads, current term, last applied log index) as this member sees them now.
    pub fn local_state(&self) -> (bool, u64, u64) {
        let m = self.raft.metrics();
        let m = m.borrow();
        (
            m.state == ServerState::Leader,
            m.current_term,
            m.last_applied.map_or(0, |l| l.index),
        )
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

    /// Waits (until `deadline`) for a leader to be known, with its address.
    async fn await_leader(&self, deadline: Instant) -> Result<u64> {
        let mut rx = self.raft.metrics();
        loop {
            {
                // A leader this member cannot address yet (the membership entry has not
                // reached it) is waited for like no leader.
                let m = rx.borrow_and_update();
                if let Some(l) = m.current_leader {
                    if l == self.id || m.membership_config.nodes().any(|(n, _)| *n == l) {
                        return Ok(l);
                    }
                }
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

    /// Writes `w` through the batcher, retrying while leadership moves. `here_only`: only
    /// while this member leads (leader-only work, writes forwarded to this member), else
    /// [`not_leader`].
    async fn write_one(&self, w: Write, here_only: bool) -> Result<Reply> {
        let deadline = Instant::now() + self.limits.leader_wait.max(self.limits.quorum_wait);
        let mut leader_deadline = Instant::now() + self.limits.leader_wait;
        loop {
            self.await_leader(leader_deadline).await?;
            match self.enqueue(vec![w.clone()], here_only).await {
                Outcome::Done(mut r) => {
                    return r.pop().unwrap_or_else(|| Err(unknown("no answer")));
                }
                Outcome::NotApplied(_) if here_only => return Err(not_leader()),
                Outcome::NotApplied(why) if Instant::now() >= deadline => {
                    return Err(MetaError::Unavailable(why));
                }
                Outcome::NotApplied(_) => {}
            }
            // Leadership is moving: look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
            leader_deadline = leader_deadline.max(Instant::now() + Duration::from_millis(100));
        }
    }

    /// Hands `writes` to the batcher and waits for their outcome (one attempt).
    pub(crate) async fn enqueue(&self, writes: Vec<Write>, here_only: bool) -> Outcome {
        let (done, rx) = oneshot::channel();
        let q = Queued {
            writes,
            here_only,
            done,
        };
        if self.proposals.send(q).is_err() {
            return Outcome::NotApplied("shutting down".into());
        }
        rx.await
            .unwrap_or_else(|_| Outcome::NotApplied("shutting down".into()))
    }

    /// One attempt at a batch: proposed here if this member leads, else forwarded to the
    /// leader as one request (writes that must stay here are refused).
    async fn submit(&self, batch: Vec<Queued>) {
        let leader = self.leader();
        let (mut batch, refused): (Vec<_>, Vec<_>) = batch
            .into_iter()
            .partition(|q| leader == Some(self.id) || !q.here_only);
        for q in refused {
            let _ = q.done.send(Outcome::NotApplied("not the leader".into()));
        }
        if batch.is_empty() {
            return;
        }
        let (counts, writes): (Vec<usize>, Vec<Vec<Write>>) = batch
            .iter_mut()
            .map(|q| (q.writes.len(), std::mem::take(&mut q.writes)))
            .unzip();
        let p = Proposal {
            writes: writes.into_iter().flatten().collect(),
        };
        let n = p.writes.len();
        let outcome = match leader {
            Some(l) if l == self.id => self.propose_here(p).await,
            Some(l) => self.forward(l, &p).await,
            None => Outcome::NotApplied("no coordinator leader is known".into()),
        };
        match outcome {
            Outcome::Done(results) => {
                let mut results = if results.len() == n {
                    results
                } else {
                    failed(n, unknown("the answer does not match the writes"))
                }
                .into_iter();
                for (q, count) in batch.into_iter().zip(counts) {
                    let mine = results.by_ref().take(count).collect();
                    let _ = q.done.send(Outcome::Done(mine));
                }
            }
            Outcome::NotApplied(why) => {
                for q in batch {
                    let _ = q.done.send(Outcome::NotApplied(why.clone()));
                }
            }
        }
    }

    /// Appends `p` as one entry, this member being the leader.
    async fn propose_here(&self, p: Proposal) -> Outcome {
        let n = p.writes.len();
        let all = |e| Outcome::Done(failed(n, e));
        if !self.leads() {
            return all(MetaError::Unavailable(
                "this coordinator leads but has not heard from a majority recently: writes are refused".into(),
            ));
        }
        match self.while_leading(self.raft.client_write(p)).await {
            Ok(Ok(r)) => Outcome::Done(r.data.0),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Outcome::NotApplied("leadership moved before the writes were appended".into())
            }
            Ok(Err(e)) => all(MetaError::Unavailable(e.to_string())),
            Err(why) => all(unknown(&why)),
        }
    }

    /// Runs `f` (waiting on a quorum) for at most `quorum_wait`, and gives up as soon as
    /// this leader has not heard from a majority for `quorum_lost_after` (it is cut off:
    /// waiting longer only delays the refusal).
    async fn while_leading<F: std::future::Future>(
        &self,
        f: F,
    ) -> std::result::Result<F::Output, String> {
        let cut_off = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if !self.leads() {
                    return;
                }
            }
        };
        tokio::select! {
            out = tokio::time::timeout(self.limits.quorum_wait, f) => out.map_err(|_| format!(
                "not confirmed by a majority of coordinators within {:?}",
                self.limits.quorum_wait
            )),
            () = cut_off => Err(format!(
                "this leader has heard from no majority of coordinators for {:?}",
                self.limits.quorum_lost_after
            )),
        }
    }

    async fn forward(&self, leader: u64, p: &Proposal) -> Outcome {
        let n = p.writes.len();
        let all = |e| Outcome::Done(failed(n, e));
        let Some(url) = self.url_of(leader) else {
            return Outcome::NotApplied(format!("leader {leader} is not a member"));
        };
        let sent = version::to_peer(self.http.post(format!("{url}/raft/write")))
            .json(p)
            .timeout(self.limits.leader_wait.max(self.limits.quorum_wait))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Outcome::NotApplied(format!("leader {leader} unreachable: {e}"))
            }
            Err(e) => {
                return all(unknown(&format!(
                    "forwarding to leader {leader} failed: {e}"
                )))
            }
        };
        if resp.status() == reqwest::StatusCode::MISDIRECTED_REQUEST {
            return Outcome::NotApplied(format!("{leader} is no longer the leader"));
        }
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp.text().await.unwrap_or_default();
            return all(MetaError::Unavailable(format!(
                "leader {leader} answered {status}: {body}"
            )));
        }
        match resp.json::<Applied>().await {
            Ok(a) => Outcome::Done(a.0),
            Err(e) => all(unknown(&format!("reading the leader's answer failed: {e}"))),
        }
    }

    /// The read index as the leader: confirms leadership with a quorum, answers the log
    /// position a linearizable read must see applied.
    pub async fn leader_read_index(&self) -> Result<u64> {
        if !self.leads() {
            return Err(not_leader());
        }
        match self.while_leading(self.raft.get_read_log_id()).await {
            Ok(Ok((read, _applied))) => Ok(read.map_or(0, |l| l.index)),
            Ok(Err(e)) => Err(MetaError::Unavailable(e.to_string())),
            Err(why) => Err(MetaError::Unavailable(format!(
                "leadership not confirmed: {why}"
            ))),
        }
    }

    /// The read index asked of this member by a follower: answered within the lease, else
    /// joins this member's next round, so that concurrent requests from followers and local
    /// reads share one confirmation.
    pub async fn shared_read_index(&self) -> Result<u64> {
        if !self.leads() {
            return Err(not_leader());
        }
        self.read_index().await
    }

    /// A read index: at once within the leader's lease, else from the next round (see
    /// [`read_rounds`]).
    async fn read_index(&self) -> Result<u64> {
        if let Some(index) = self.lease.read_index(&self.raft) {
            return Ok(index);
        }
        let (tx, rx) = oneshot::channel();
        self.reads
            .send(tx)
            .map_err(|_| MetaError::Unavailable("shutting down".into()))?;
        rx.await
            .map_err(|_| MetaError::Unavailable("shutting down".into()))?
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
        let resp = version::to_peer(self.http.post(format!("{url}/raft/read-index")))
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
            let index = self.read_index().await?;
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

/// A write whose outcome is unknown (it may or may not have been applied).
fn unknown(why: &str) -> MetaError {
    MetaError::Unavailable(format!("the write's outcome is unknown: {why}"))
}

/// The same error as the answer to each of `n` writes.
fn failed(n: usize, e: MetaError) -> Vec<Result<Reply>> {
    vec![Err(e); n]
}

/// Writes waiting for the batcher.
pub(crate) struct Queued {
    writes: Vec<Write>,
    /// Refused, not forwarded, when this member does not lead.
    here_only: bool,
    done: oneshot::Sender<Outcome>,
}

/// What became of queued writes.
pub(crate) enum Outcome {
    /// Proposed: one result per write (an error for each if the outcome is unknown); not
    /// to be sent again.
    Done(Vec<Result<Reply>>),
    /// Certainly not applied; may be sent again.
    NotApplied(String),
}

/// Most writes in one log entry.
const MAX_BATCH: usize = 256;

/// Batches submitted at once. While one is out, new writes queue and go together in the
/// next entry, so a busy member sends few large entries and a lone write goes at once
/// (measured on the bench of BENCHMARKS.md: 1, 2 and 4 were within noise of each other;
/// 1 makes the largest entries).
const PIPELINE: usize = 1;

/// Turns the writes queued on `rx` into batches: each waits for a free slot of the
/// pipeline, then takes everything queued meanwhile (up to [`MAX_BATCH`]).
async fn batch_writes(c: std::sync::Weak<Cluster>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(PIPELINE));
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut n = first.writes.len();
        let mut batch = vec![first];
        while n < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => {
                    n += q.writes.len();
                    batch.push(q);
                }
                Err(_) => break,
            }
        }
        let Some(c) = c.upgrade() else { return };
        tokio::spawn(async move {
            c.submit(batch).await;
            drop(slot);
        });
    }
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
        let w = Write {
            ctx: Context::now(self.id, &self.clock),
            fence: None,
            cmd,
        };
        self.write_one(w, false).await
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
        let w = Write {
            ctx: Context::now(self.cluster.id, &self.cluster.clock),
            fence: Some(self.term),
            cmd,
        };
        self.cluster.write_one(w, true).await
    }

    async fn read<T: Send + 'static>(
        &self,
        fresh: Freshness,
        f: impl FnOnce(&MetaStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        self.cluster.run_read(fresh, f).await
    }
}
