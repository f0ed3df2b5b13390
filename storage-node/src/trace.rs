//! Request ids: the coordinator gives every client request an id (returned to the client as
//! `x-amz-request-id`), and every node request made on its behalf carries it
//! ([`HEADER`], or inside a raw read), so a node's access log names the client request a
//! shard was read or written for.
//!
//! The id of the request being served travels with the task serving it ([`scope`]); work
//! spawned for that request keeps it through [`spawn`]. The node logs each request it serves
//! that carries an id at `debug` level under the `tessera_node::access` target
//! (`RUST_LOG=tessera_node::access=debug`).

use std::future::Future;

/// The header carrying request ids on node requests: one id, or several comma-separated
/// (a batch of shard writes made for several client requests).
pub const HEADER: &str = "x-tessera-request-id";

/// One client request's id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

impl RequestId {
    /// A new random id.
    pub fn new() -> Self {
        RequestId(rand::random::<u64>() | 1)
    }
}

impl Default for RequestId {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}

impl std::str::FromStr for RequestId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        u64::from_str_radix(s, 16)
            .map(RequestId)
            .map_err(|_| format!("bad request id {s:?}"))
    }
}

tokio::task_local! {
    static CURRENT: RequestId;
}

/// The id of the request the current task serves, if any.
pub fn current() -> Option<RequestId> {
    CURRENT.try_with(|r| *r).ok()
}

/// Runs `f` as serving request `id`.
pub async fn scope<F: Future>(id: RequestId, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// Runs the synchronous `f` (a poll of a body, say) as serving request `id`.
pub fn sync_scope<R>(id: RequestId, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(id, f)
}

/// `tokio::spawn` that keeps the current request id in the spawned task.
pub fn spawn<F>(f: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match current() {
        Some(id) => tokio::spawn(CURRENT.scope(id, f)),
        None => tokio::spawn(f),
    }
}

/// The [`HEADER`] value naming `ids` (deduplicated, in order), `None` for no ids.
pub fn header_value(ids: impl IntoIterator<Item = RequestId>) -> Option<String> {
    let mut seen = Vec::new();
    for id in ids {
        if !seen.contains(&id) {
            seen.push(id);
        }
    }
    (!seen.is_empty()).then(|| {
        seen.iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_id_follows_the_task_and_spawned_work() {
        assert_eq!(current(), None);
        let id = RequestId(0xABCD);
        let seen = scope(id, async { spawn(async { current() }).await.unwrap() }).await;
        assert_eq!(seen, Some(id));
        assert_eq!(current(), None);
        assert_eq!(id.to_string(), "000000000000ABCD");
        assert_eq!("000000000000ABCD".parse::<RequestId>(), Ok(id));
        assert_eq!(
            header_value([id, RequestId(1), id]).as_deref(),
            Some("000000000000ABCD,0000000000000001")
        );
    }
}
