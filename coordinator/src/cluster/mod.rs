//! Replicated coordinators: the metadata as a state machine driven by a Raft log
//! (openraft), so that any coordinator serves clients and losing a minority of them loses
//! nothing acknowledged.
//!
//! - [`storage`]: the Raft log and the state machine on one RocksDB per coordinator (log
//!   entries, vote, the applied position, snapshots streamed to and from files).
//! - [`network`]: Raft RPCs over HTTP to the other coordinators' admin ports, with the
//!   cluster secret; [`routes`] serves them (and forwarded writes, read indexes, `hello`).
//! - [`replicated`]: [`Cluster`], the [`crate::meta::Engine`] that proposes writes through
//!   the leader and makes reads linearizable; [`replicated::Fenced`] for leader-only work.
//! - [`leader`]: what runs on the leader only (background maintenance, in-flight record
//!   leases) and stops when leadership ends.
//! - [`start`]: opening a member, initialising a new cluster once all peers answer,
//!   membership changes.

pub mod leader;
pub mod network;
pub mod replicated;
pub mod routes;
pub mod start;
pub mod storage;

use crate::meta::{Command, Context, MetaError, Reply};
use serde::{Deserialize, Serialize};

pub use replicated::Cluster;
pub use start::{ClusterConfig, Peers};

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

/// What a log entry carries: a metadata write with the context it runs in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Proposal {
    /// Time and proposer, the same on every member that applies it.
    pub ctx: Context,
    /// Leader-only work carries the term its leader decided it in; the entry applies only if
    /// it was appended in that term (a deposed leader's decision is refused).
    pub fence: Option<u64>,
    /// The write.
    pub cmd: Command,
}

/// The result of applying a [`Proposal`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Applied(pub Result<Reply, MetaError>);
