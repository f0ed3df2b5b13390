//! Opening a member, forming a new group, changing membership, and the group's status.
//!
//! **Forming.** Every member of a new group is started with the same `--peers` (id -> admin
//! URL). A member whose storage is empty keeps asking every peer `GET /raft/hello`; once all
//! of them answer, with the same peer list and none of them already in a group, the member
//! with the smallest id initialises the group with all of them, exactly once. A member
//! remembers the list it was first started with and refuses to start with another one.
//!
//! **Joining later.** A new member is started with `--peers` naming the existing members and
//! itself: it finds an initialised group among its peers, so it never initialises one of
//! its own, and waits until `add-coordinator` (on the leader: [`add_member`]) makes it a
//! learner, lets it catch up (by snapshot if the log was compacted), then a voter.

use super::network::{Contacts, Network};
use super::replicated::Limits;
use super::routes::Hello;
use super::Cluster;
use super::{columns, storage, version};
use crate::meta::MetaError;
use openraft::{BasicNode, ChangeMembers, Config, ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

type Result<T> = std::result::Result<T, MetaError>;

/// Member ids and their admin URLs: `1=http://127.0.0.1:7071,2=http://...`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peers(pub BTreeMap<u64, String>);

impl std::str::FromStr for Peers {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let mut out = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (id, url) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: a peer is ID=ADMIN_URL"))?;
            let id: u64 = id
                .trim()
                .parse()
                .map_err(|_| format!("`{id}`: a raft id is a positive integer"))?;
            if id == 0 {
                return Err("raft ids start at 1".into());
            }
            let url = url.trim().trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!("`{url}`: a peer's admin URL starts with http://"));
            }
            if out.insert(id, url.to_string()).is_some() {
                return Err(format!("raft id {id} is listed twice"));
            }
        }
        if out.is_empty() {
            return Err("--peers lists no member".into());
        }
        Ok(Peers(out))
    }
}

/// How a replicated coordinator runs.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    /// This member's id.
    pub id: u64,
    /// Every member of the group at its formation (must include this one).
    pub peers: Peers,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time in this range starts an election.
    pub election_timeout: (Duration, Duration),
    /// A snapshot is taken after this many log entries since the last one, and the log
    /// behind it is purged.
    pub snapshot_every: u64,
    /// In-flight records of a coordinator the leader has not heard from for this long are
    /// expired (their writes are fenced off and their shards collected).
    pub lease: Duration,
    /// Request time limits.
    pub limits: Limits,
    /// What the metadata's storage engine may hold in memory.
    pub engine: crate::meta::rocks::EngineLimits,
}

impl ClusterConfig {
    /// Defaults for member `id` of `peers`.
    pub fn new(id: u64, peers: Peers) -> Self {
        ClusterConfig {
            id,
            peers,
            // openraft gives every append-entries RPC the heartbeat interval as its timeout,
            // so the interval bounds the round trip a member's link may take (a 300 ms round
            // trip broke replication at 150 ms). A follower that has heard a leader stands
            // for election only after the leader's lease (openraft: the largest election
            // timeout) plus its own election timeout, 1.3-1.6 s of silence here: more than
            // three heartbeats, and the most of a failover (it was 3.6-4.8 s with 1.2-2.4 s).
            // While the lease runs a follower also refuses votes, so a member cut off and
            // back cannot depose a leader the others still hear (what pre-vote is for).
            heartbeat: Duration::from_millis(400),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(800)),
            snapshot_every: 5000,
            lease: Duration::from_secs(10),
            limits: Limits {
                leader_wait: Duration::from_secs(4),
                quorum_wait: Duration::from_secs(5),
                quorum_lost_after: Duration::from_millis(1200),
            },
            engine: Default::default(),
        }
    }
}

/// Opens member `config.id` with its storage in `dir` and starts forming the group if it is
/// new, talking to the other members with `http` (which presents the cluster secret). Fails
/// if the member was first started with other peers.
pub async fn open(
    dir: &Path,
    config: ClusterConfig,
    http: reqwest::Client,
    clock: Arc<crate::meta::Clock>,
) -> Result<Arc<Cluster>> {
    if !config.peers.0.contains_key(&config.id) {
        return Err(MetaError::InvalidArgument(format!(
            "--peers does not list this member's --raft-id {}",
            config.id
        )));
    }
    let storage::Opened {
        log,
        machine,
        store,
        gate,
        db,
    } = storage::open(dir, &config.engine)?;
    let stored: Option<Peers> = columns::get(&db, b"peers").map_err(storage_err)?;
    match stored {
        Some(p) if p != config.peers => {
            return Err(MetaError::InvalidArgument(format!(
                "this member was first started with --peers {}; it was given {} (members change with `tessera cluster add-coordinator` / `remove-coordinator`, not by editing --peers)",
                show(&p),
                show(&config.peers)
            )))
        }
        Some(_) => {}
        None => columns::put_synced(&db, b"peers", &config.peers).map_err(storage_err)?,
    }
    let raft_config = Config {
        cluster_name: "tessera".into(),
        heartbeat_interval: config.heartbeat.as_millis() as u64,
        election_timeout_min: config.election_timeout.0.as_millis() as u64,
        election_timeout_max: config.election_timeout.1.as_millis() as u64,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_every),
        max_in_snapshot_log_to_keep: 0,
        snapshot_max_chunk_size: 1 << 20,
        install_snapshot_timeout: 10_000,
        max_payload_entries: 512,
        ..Default::default()
    }
    .validate()
    .map_err(|e| MetaError::InvalidArgument(e.to_string()))?;
    let contacts = Arc::new(Contacts::default());
    let network = Network {
        http: http.clone(),
        contacts: contacts.clone(),
    };
    let raft = openraft::Raft::new(config.id, Arc::new(raft_config), network, log, machine)
        .await
        .map_err(|e| MetaError::Storage(format!("starting raft: {e}")))?;
    let (reads, rounds) = tokio::sync::mpsc::unbounded_channel();
    let (proposals, batches) = tokio::sync::mpsc::unbounded_channel();
    let cluster = Cluster {
        id: config.id,
        raft,
        store,
        gate,
        http,
        contacts,
        limits: config.limits,
        reads,
        proposals,
        db,
        clock,
        lease: Default::default(),
    }
    .start(rounds, batches);
    if !cluster
        .raft
        .is_initialized()
        .await
        .map_err(|e| MetaError::Storage(e.to_string()))?
    {
        tokio::spawn(form(cluster.clone(), config.peers.clone()));
    }
    Ok(cluster)
}

/// Why `who`, which applies state machine version `theirs`, cannot join this member's group.
fn different_build(who: &str, theirs: u32) -> String {
    format!(
        "{who} applies state machine version {theirs}, this member {}: the coordinators of a group must run one build",
        version::STATE_MACHINE
    )
}

fn storage_err(e: impl std::fmt::Display) -> MetaError {
    MetaError::Storage(e.to_string())
}

fn show(p: &Peers) -> String {
    p.0.iter()
        .map(|(id, url)| format!("{id}={url}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Asks `url` who it is.
pub async fn hello_of(http: &reqwest::Client, url: &str) -> std::result::Result<Hello, String> {
    let resp = http
        .get(format!("{}/raft/hello", url.trim_end_matches('/')))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .map_err(|e| format!("unreachable: {e}"))?;
    match resp.status() {
        s if s.is_success() => resp.json().await.map_err(|e| e.to_string()),
        reqwest::StatusCode::UNAUTHORIZED => {
            Err("refused our cluster secret (every member must be started with the same --cluster-secret-file)".into())
        }
        reqwest::StatusCode::NOT_FOUND => Err("is not a replicated coordinator (no /raft/hello)".into()),
        s => Err(format!("answered {s}")),
    }
}

/// Forms the group once every peer answers (see the module docs).
async fn form(c: Arc<Cluster>, peers: Peers) {
    let mut last_problem = String::new();
    loop {
        if c.raft.is_initialized().await.unwrap_or(true) {
            return;
        }
        let mut problem = None;
        let mut others_initialized = false;
        for (&id, url) in &peers.0 {
            if id == c.id {
                continue;
            }
            match hello_of(&c.http, url).await {
                Ok(h) if h.id != id => {
                    problem = Some(format!("peer {url} says it is raft id {}, not {id}", h.id))
                }
                Ok(h) if h.state_machine != version::STATE_MACHINE => {
                    problem = Some(different_build(&format!("peer {id}"), h.state_machine))
                }
                Ok(h) if h.initialized => others_initialized = true,
                Ok(h) if h.peers != peers.0 => {
                    problem = Some(format!(
                        "peer {id} was started with --peers {}, this member with {}",
                        show(&Peers(h.peers)),
                        show(&peers)
                    ))
                }
                Ok(_) => {}
                Err(e) => problem = Some(format!("peer {id} ({url}) {e}")),
            }
        }
        if others_initialized {
            tracing::info!("a peer already belongs to a group: waiting to be added to it");
            return;
        }
        match problem {
            Some(p) if p != last_problem => {
                tracing::warn!(problem = %p, "waiting for every peer before forming the coordinator group");
                last_problem = p;
            }
            Some(_) => {}
            None if peers.0.keys().next() == Some(&c.id) => {
                let members: BTreeMap<u64, BasicNode> = peers
                    .0
                    .iter()
                    .map(|(&id, url)| (id, BasicNode { addr: url.clone() }))
                    .collect();
                match c.raft.initialize(members).await {
                    Ok(()) => tracing::info!(members = peers.0.len(), "coordinator group formed"),
                    Err(e) => tracing::warn!(error = %e, "forming the coordinator group"),
                }
                return;
            }
            None => {}
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

impl Cluster {
    /// What this member says about itself.
    pub async fn hello(&self) -> Hello {
        let peers: Peers = columns::get(&self.db, b"peers")
            .ok()
            .flatten()
            .unwrap_or_default();
        let m = self.raft.metrics().borrow().clone();
        Hello {
            id: self.id,
            peers: peers.0,
            initialized: m
                .membership_config
                .membership()
                .voter_ids()
                .next()
                .is_some(),
            role: role(m.state).into(),
            term: m.current_term,
            leader: m.current_leader,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            state_machine: version::STATE_MACHINE,
        }
    }

    /// The group as `GET /cluster` shows it: leader, term and every member as it describes
    /// itself (members that do not answer are listed as `unreachable`).
    pub async fn status(&self) -> RaftStatus {
        let m = self.raft.metrics().borrow().clone();
        let voters: BTreeSet<u64> = m.membership_config.membership().voter_ids().collect();
        let nodes: Vec<(u64, String)> = m
            .membership_config
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect();
        let asks = nodes.iter().map(|(id, url)| async move {
            if *id == self.id {
                return (*id, url.clone(), Ok(self.hello().await));
            }
            (*id, url.clone(), hello_of(&self.http, url).await)
        });
        let members = futures::future::join_all(asks)
            .await
            .into_iter()
            .map(|(id, url, h)| {
                let (role, last, applied, state_machine) = match h {
                    Ok(h) => {
                        let role = if voters.contains(&id) {
                            h.role
                        } else {
                            "learner".to_string()
                        };
                        (
                            role,
                            h.last_log_index,
                            h.applied_index,
                            Some(h.state_machine),
                        )
                    }
                    Err(_) => ("unreachable".into(), None, None, None),
                };
                MemberStatus {
                    id,
                    admin_url: url,
                    role,
                    last_log_index: last,
                    applied_index: applied,
                    state_machine,
                }
            })
            .collect();
        RaftStatus {
            id: self.id,
            leader: m.current_leader,
            term: m.current_term,
            members,
        }
    }
}

fn role(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

/// The `raft` section of `GET /cluster`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RaftStatus {
    /// The member answering.
    pub id: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Its term.
    pub term: u64,
    /// Every member.
    pub members: Vec<MemberStatus>,
}

/// One member in [`RaftStatus`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Raft id.
    pub id: u64,
    /// Admin URL.
    pub admin_url: String,
    /// `leader`, `follower`, `candidate`, `learner` or `unreachable`.
    pub role: String,
    /// Index of its last log entry.
    pub last_log_index: Option<u64>,
    /// Index of the last entry it applied.
    pub applied_index: Option<u64>,
    /// The state machine version it applies (members of other versions do not exchange
    /// Raft messages with this one: [`version`]).
    pub state_machine: Option<u32>,
}

/// Why a membership change was refused.
#[derive(Debug)]
pub enum Refused {
    /// Ask the leader (its admin URL, if known).
    NotLeader(Option<String>),
    /// Something the operator must fix.
    Invalid(String),
    /// The group could not do it now.
    Unavailable(String),
}

/// Adds member `id` at `url` (on the leader): checks that it answers as `id` with our
/// cluster secret, makes it a learner, waits for it to catch up, then a voter.
pub async fn add_member(c: &Cluster, id: u64, url: &str) -> std::result::Result<(), Refused> {
    if c.leader() != Some(c.id) {
        return Err(Refused::NotLeader(c.leader().and_then(|l| c.url_of(l))));
    }
    let url = url.trim_end_matches('/').to_string();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(Refused::Invalid(format!(
            "`{url}`: an admin URL starts with http://"
        )));
    }
    let h = hello_of(&c.http, &url)
        .await
        .map_err(|e| Refused::Invalid(format!("the new coordinator at {url} {e}")))?;
    if h.id != id {
        return Err(Refused::Invalid(format!(
            "the coordinator at {url} was started with --raft-id {}, not {id}",
            h.id
        )));
    }
    if h.state_machine != version::STATE_MACHINE {
        return Err(Refused::Invalid(different_build(
            &format!("the coordinator at {url}"),
            h.state_machine,
        )));
    }
    let current = c.raft.metrics().borrow().membership_config.clone();
    if current.membership().voter_ids().any(|v| v == id) {
        return Err(Refused::Invalid(format!(
            "raft id {id} is already a member"
        )));
    }
    if h.initialized {
        return Err(Refused::Invalid(format!(
            "the coordinator at {url} already belongs to a group (its data dir is not new)"
        )));
    }
    c.raft
        .add_learner(id, BasicNode { addr: url }, true)
        .await
        .map_err(|e| Refused::Unavailable(format!("adding {id} as a learner: {e}")))?;
    c.raft
        .change_membership(ChangeMembers::AddVoterIds([id].into()), false)
        .await
        .map_err(|e| Refused::Unavailable(format!("making {id} a voter: {e}")))?;
    Ok(())
}

/// Removes member `id` (on the leader). Refuses to remove the last member.
pub async fn remove_member(c: &Cluster, id: u64) -> std::result::Result<(), Refused> {
    if c.leader() != Some(c.id) {
        return Err(Refused::NotLeader(c.leader().and_then(|l| c.url_of(l))));
    }
    let current = c.raft.metrics().borrow().membership_config.clone();
    let voters: BTreeSet<u64> = current.membership().voter_ids().collect();
    if !voters.contains(&id) {
        return Err(Refused::Invalid(format!("raft id {id} is not a member")));
    }
    if voters.len() == 1 {
        return Err(Refused::Invalid(
            "that is the last member: a group cannot remove its last coordinator".into(),
        ));
    }
    c.raft
        .change_membership(ChangeMembers::RemoveVoters([id].into()), false)
        .await
        .map_err(|e| Refused::Unavailable(format!("removing {id}: {e}")))?;
    Ok(())
}
