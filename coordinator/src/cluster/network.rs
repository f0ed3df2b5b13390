//! Raft RPCs to the other coordinators: HTTP `POST {admin url}/raft/{append,vote,snapshot}`
//! with the cluster secret (served by [`super::routes`]). Append and vote carry JSON;
//! snapshot chunks carry their bytes as the body and the rest of the request as JSON in the
//! `x-tessera-raft-snapshot` header. Each carries this build's state machine version
//! ([`super::version`]).
//!
//! Every answered RPC counts as a sign of life of its target ([`Contacts`]): the leader
//! reaches every member at least once per heartbeat interval, so this is how it knows which
//! coordinators are alive (their in-flight records' leases).

use super::{version, MemberId, TypeConfig};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{AnyError, BasicNode, SnapshotMeta, Vote};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header carrying a snapshot chunk's request without its bytes.
pub const SNAPSHOT_HEADER: &str = "x-tessera-raft-snapshot";

/// A snapshot chunk's request without its bytes.
#[derive(Serialize, Deserialize)]
pub struct ChunkHead {
    /// Sender's vote.
    pub vote: Vote<MemberId>,
    /// The snapshot.
    pub meta: SnapshotMeta<MemberId, BasicNode>,
    /// Offset of the chunk in the snapshot file.
    pub offset: u64,
    /// Last chunk.
    pub done: bool,
}

/// When each member last answered an RPC.
#[derive(Debug, Default)]
pub struct Contacts(Mutex<HashMap<MemberId, Instant>>);

impl Contacts {
    /// Records an answer from `id`.
    pub fn seen(&self, id: MemberId) {
        self.0.lock().unwrap().insert(id, Instant::now());
    }

    /// When `id` last answered, if ever.
    pub fn last(&self, id: MemberId) -> Option<Instant> {
        self.0.lock().unwrap().get(&id).copied()
    }
}

/// Makes [`Conn`]s to members.
pub struct Network {
    /// HTTP client sending the cluster secret.
    pub http: reqwest::Client,
    /// Signs of life.
    pub contacts: Arc<Contacts>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Conn;

    async fn new_client(&mut self, target: MemberId, node: &BasicNode) -> Conn {
        Conn {
            http: self.http.clone(),
            base: node.addr.trim_end_matches('/').to_string(),
            target,
            contacts: self.contacts.clone(),
        }
    }
}

/// RPCs to one member.
pub struct Conn {
    http: reqwest::Client,
    base: String,
    target: MemberId,
    contacts: Arc<Contacts>,
}

type Rpc<T, E = openraft::error::Infallible> =
    Result<T, RPCError<MemberId, BasicNode, RaftError<MemberId, E>>>;

fn transport<E: std::error::Error>(e: reqwest::Error) -> RPCError<MemberId, BasicNode, E> {
    if e.is_connect() {
        RPCError::Unreachable(Unreachable::new(&e))
    } else {
        RPCError::Network(NetworkError::new(&e))
    }
}

impl Conn {
    async fn call<Resp, E>(&self, req: reqwest::RequestBuilder, ttl: Duration) -> Rpc<Resp, E>
    where
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let resp = req.timeout(ttl).send().await.map_err(transport)?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(RPCError::Network(NetworkError::new(&AnyError::error(
                format!("member {} answered {status}: {body}", self.target),
            ))));
        }
        let answer: Result<Resp, RaftError<MemberId, E>> = resp.json().await.map_err(transport)?;
        self.contacts.seen(self.target);
        answer.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }

    fn post(&self, what: &str) -> reqwest::RequestBuilder {
        version::to_peer(self.http.post(format!("{}/raft/{what}", self.base)))
    }
}

impl RaftNetwork<TypeConfig> for Conn {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<MemberId>> {
        self.call(self.post("append").json(&req), option.hard_ttl())
            .await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<MemberId>, InstallSnapshotError> {
        let head = ChunkHead {
            vote: req.vote,
            meta: req.meta,
            offset: req.offset,
            done: req.done,
        };
        let head =
            serde_json::to_string(&head).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let builder = self
            .post("snapshot")
            .header(SNAPSHOT_HEADER, head)
            .body(req.data);
        self.call(builder, option.hard_ttl()).await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<MemberId>,
        option: RPCOption,
    ) -> Rpc<VoteResponse<MemberId>> {
        self.call(self.post("vote").json(&req), option.hard_ttl())
            .await
    }
}
