//! Replicated coordinators: the metadata as a state machine driven by a Raft log
//! (openraft), so that any coordinator serves clients and losing a minority of them loses
//! nothing acknowledged.
//!
//! - [`storage`]: the Raft log and the state machine on one RocksDB per coordinator (log
//!   entries, vote, the applied position); `columns` names its column families and the JSON
//!   values it keeps, `snapshot` streams snapshots to and from files.
//! - [`network`]: Raft RPCs over HTTP to the other coordinators' admin ports, with the
//!   cluster secret; [`routes`] serves them (and forwarded writes, read indexes, `hello`).
//! - [`replicated`]: [`Cluster`], the [`crate::meta::Engine`] that proposes writes through
//!   the leader and makes reads linearizable; [`replicated::Fenced`] for leader-only work.
//!   `lease` is the leader's read lease (reads without a quorum round).
//! - [`leader`]: what runs on the leader only (background maintenance, in-flight record
//!   leases) and stops when leadership ends.
//! - [`start`]: opening a member, initialising a new cluster once all peers answer,
//!   membership changes.
//! - [`version`]: the state machine version every request to a peer carries; members of
//!   other versions are refused.

mod columns;
pub mod leader;
mod lease;
pub mod network;
pub mod replicated;
pub mod routes;
mod snapshot;
pub mod start;
pub mod storage;
pub mod version;

use crate::meta::{Command, Context, MetaError, Reply};
use serde::{Deserialize, Serialize};

pub use replicated::Cluster;
pub use start::{ClusterConfig, Peers};

/// A member's Raft id (openraft's node id type).
pub type MemberId = u64;

openraft::declare_raft_types!(
    /// Types of the coordinators' Raft group.
    pub TypeConfig:
        D = Proposal,
        R = Applied,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A coordinator's Raft handle.
pub type Raft = openraft::Raft<TypeConfig>;

/// What a log entry carries: metadata writes, applied in order. Writes proposed
/// concurrently share one entry (one append, one replication round and one fsync on each
/// member for all of them; see [`replicated`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proposal {
    /// The writes, in the order they apply.
    pub writes: Vec<Write>,
}

/// One metadata write with the context it runs in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Write {
    /// Time and proposer, the same on every member that applies it.
    pub ctx: Context,
    /// Leader-only work carries the term its leader decided it in; the write applies only if
    /// its entry was appended in that term (a deposed leader's decision is refused).
    pub fence: Option<u64>,
    /// The write.
    pub cmd: Command,
}

/// The result of applying a [`Proposal`]: one per write, in order.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Applied(pub Vec<Result<Reply, MetaError>>);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Metadata;
    use std::sync::Arc;

    /// Starts a group of `n` members in-process, each serving its Raft routes on its own
    /// loopback port, and waits for a leader.
    async fn group(n: u64, root: &std::path::Path) -> Vec<Arc<Cluster>> {
        let secret = "test-cluster-secret";
        let mut listeners = Vec::new();
        let mut peers = std::collections::BTreeMap::new();
        for id in 1..=n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            peers.insert(id, format!("http://{}", l.local_addr().unwrap()));
            listeners.push(l);
        }
        let mut members = Vec::new();
        for (id, l) in (1..=n).zip(listeners) {
            let mut cfg = ClusterConfig::new(id, Peers(peers.clone()));
            cfg.snapshot_every = 50;
            let dir = root.join(format!("c{id}"));
            let http = tessera_node::client::http_client(secret, &Default::default());
            let c = start::open(&dir, cfg, http, Default::default())
                .await
                .unwrap();
            let app = routes::router(c.clone(), secret);
            tokio::spawn(async move { axum::serve(l, app).await });
            members.push(c);
        }
        members[0]
            .raft
            .wait(Some(std::time::Duration::from_secs(20)))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .unwrap();
        members
    }

    /// The replicated metadata passes the same conformance suite as the local stores, asked
    /// through a follower (writes forwarded, reads behind a read index) and through the
    /// leader; followers' state machines hold the same state; snapshots are taken and the
    /// log behind them purged.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replicated_metadata_conforms() {
        let dir = tempfile::tempdir().unwrap();
        let members = group(3, dir.path()).await;
        let leader = members[0].leader().unwrap();
        let follower = members.iter().find(|m| m.id != leader).unwrap().clone();
        let on_follower: Arc<dyn Metadata> = follower.clone();
        crate::meta::conformance::run_all(&*on_follower).await;
        let on_leader: Arc<dyn Metadata> = members.iter().find(|m| m.id == leader).unwrap().clone();
        crate::meta::conformance::run_all(&*on_leader).await;
        // Every member applies the same commands to the same state.
        on_leader
            .create_bucket(crate::meta::BucketMeta::new(
                "last",
                1,
                crate::names::EcSpec { k: 2, m: 1 },
                None,
            ))
            .await
            .unwrap();
        for m in &members {
            let linear: Arc<dyn Metadata> = m.clone();
            assert_eq!(
                crate::meta::conformance::bucket_names(&*linear).await,
                ["last"],
                "member {} after a linearizable read",
                m.id
            );
            // Having applied that far, the member's own state machine holds the same.
            let local = m
                .run_local(|s| Ok(s.buckets()?.into_iter().map(|b| b.name).collect::<Vec<_>>()))
                .await
                .unwrap();
            assert_eq!(local, ["last"], "member {}'s applied state", m.id);
        }
        let snap = members
            .iter()
            .find(|m| m.id == leader)
            .unwrap()
            .raft
            .metrics()
            .borrow()
            .snapshot;
        assert!(snap.is_some(), "a snapshot every 50 entries");
    }

    fn bucket(name: &str) -> crate::meta::BucketMeta {
        crate::meta::BucketMeta::new(name, 1, crate::names::EcSpec { k: 2, m: 1 }, None)
    }

    /// Concurrent writes through every member share log entries, and each caller gets the
    /// answer to its own write: half the buckets exist already (`false`), half are new.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_entries_and_keep_their_answers() {
        let dir = tempfile::tempdir().unwrap();
        let members = group(3, dir.path()).await;
        let first: Arc<dyn Metadata> = members[0].clone();
        for i in (0..120).step_by(2) {
            assert!(first
                .create_bucket(bucket(&format!("b{i:03}")))
                .await
                .unwrap());
        }
        let leader = members[0].leader().unwrap();
        let on_leader = members.iter().find(|m| m.id == leader).unwrap().clone();
        let before = on_leader.raft.metrics().borrow().last_log_index.unwrap();
        let mut writes = Vec::new();
        for i in 0..120 {
            let m: Arc<dyn Metadata> = members[i % 3].clone();
            writes.push(tokio::spawn(async move {
                (i, m.create_bucket(bucket(&format!("b{i:03}"))).await)
            }));
        }
        for w in writes {
            let (i, created) = w.await.unwrap();
            assert_eq!(created.unwrap(), i % 2 == 1, "answer to creating b{i:03}");
        }
        let after = on_leader.raft.metrics().borrow().last_log_index.unwrap();
        assert!(
            after - before < 120,
            "120 concurrent writes took {} log entries",
            after - before
        );
        assert_eq!(
            crate::meta::conformance::bucket_names(&*first).await.len(),
            120
        );
    }

    /// A crash between the writes of one entry: the entry is applied again from the first
    /// write not yet applied, so none runs twice (running the PUT's two writes again would
    /// recreate its in-flight record and commit the object over itself, sending its own
    /// shards to garbage).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_interrupted_by_a_crash_resumes_after_its_last_applied_write() {
        use crate::meta::{conformance::object, Precondition};
        use openraft::storage::RaftStateMachine;
        use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
        let dir = tempfile::tempdir().unwrap();
        let mut opened = storage::open(dir.path(), &Default::default()).unwrap();
        opened.store.create_bucket(&bucket("one")).unwrap();
        let (first, second) = (object("one", "k", 10), object("one", "k2", 10));
        let set = |o: &crate::meta::ObjectMeta| o.parts[0].shard_set(&o.bucket, &o.key);
        let write = |cmd| Write {
            ctx: Context { at_ms: 5, from: 1 },
            fence: None,
            cmd,
        };
        let id = LogId::new(CommittedLeaderId::new(1, 1), 7);
        let entry = Entry::<TypeConfig> {
            log_id: id,
            payload: EntryPayload::Normal(Proposal {
                writes: vec![
                    write(Command::begin_put {
                        version: first.version,
                        set: set(&first),
                    }),
                    write(Command::commit_put {
                        obj: first.clone(),
                        cond: Precondition::default(),
                    }),
                    write(Command::begin_put {
                        version: second.version,
                        set: set(&second),
                    }),
                ],
            }),
        };
        // As if the first two writes were applied when the process died.
        opened.store.begin_put(first.version, &set(&first)).unwrap();
        opened
            .store
            .commit_put(&first, &Precondition::default())
            .unwrap();
        storage::stamp_partial(&opened.db, Some((7, 2))).unwrap();
        let out = opened.machine.apply(vec![entry]).await.unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].0[0].is_err() && out[0].0[1].is_err(), "skipped");
        assert!(out[0].0[2].is_ok());
        let pending = opened.store.pending_versions().unwrap();
        assert_eq!(pending.into_iter().collect::<Vec<_>>(), [second.version]);
        assert_eq!(
            opened.store.garbage(10).unwrap().len(),
            0,
            "no shard of k is garbage"
        );
        let (applied, _) = opened.machine.applied_state().await.unwrap();
        assert_eq!(applied, Some(id));
    }
}
