//! The time and proposer of a metadata operation (the same on every member of a group).

use serde::{Deserialize, Serialize};

/// What a write operation takes from outside the store: the time and who asked.
///
/// A replicated store applies every operation on every member, later and at different
/// times, so an operation must not read the clock of the member applying it: the proposer
/// stamps it with a [`Context`], and [`Context::enter`] makes [`now_ms`] and the owner of
/// new in-flight records come from that stamp while the operation runs on this thread.
/// Outside an entered context (a single coordinator), they come from the system clock and
/// owner 0.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    /// Time of the operation, ms since the epoch.
    pub at_ms: u64,
    /// Raft id of the coordinator that proposed it (0: single coordinator).
    pub from: u64,
}

thread_local! {
    static CONTEXT: std::cell::Cell<Option<Context>> = const { std::cell::Cell::new(None) };
}

impl Context {
    /// A context of now, from coordinator `from`.
    pub fn now(from: u64) -> Self {
        Context {
            at_ms: system_ms(),
            from,
        }
    }

    /// Runs `f` with this context in force on this thread.
    pub fn enter<R>(self, f: impl FnOnce() -> R) -> R {
        let before = CONTEXT.with(|c| c.replace(Some(self)));
        let out = f();
        CONTEXT.with(|c| c.set(before));
        out
    }

    fn current() -> Option<Context> {
        CONTEXT.with(|c| c.get())
    }
}

pub(super) fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Milliseconds since the epoch: the operation's time inside an entered [`Context`], the
/// system clock otherwise.
pub fn now_ms() -> u64 {
    Context::current().map_or_else(system_ms, |c| c.at_ms)
}

/// The coordinator an operation comes from (0 outside an entered [`Context`]).
pub(super) fn proposer() -> u64 {
    Context::current().map_or(0, |c| c.from)
}
