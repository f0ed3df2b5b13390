//! The time and proposer of a metadata operation (the same on every member of a group), and
//! the [`Clock`] it is taken from.

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
    /// A context of `clock`'s now, from coordinator `from`.
    pub fn now(from: u64, clock: &Clock) -> Self {
        Context {
            at_ms: clock.now_ms(),
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

/// How far a coordinator's clock may run ahead of the storage nodes' before its operation
/// times stop following it.
pub const TOLERANCE_MS: i64 = 60_000;

/// Where a coordinator's operation times come from: its own clock, but never more than
/// [`TOLERANCE_MS`] ahead of the storage nodes' clocks (their median, as their heartbeats
/// report it). Object lock retention is judged on operation times, so a coordinator whose
/// clock is set forward (by mistake, or by someone with root on its host) cannot by itself
/// bring a retention to an early end: it would need most nodes' clocks moved as well. A
/// clock behind the nodes' is followed (it only makes retention last longer). Before any
/// node has reported, the own clock is used.
#[derive(Debug)]
pub struct Clock {
    /// How far this coordinator's clock reads ahead of the system clock (tests: a
    /// coordinator with a wrong clock).
    ahead_ms: u64,
    /// The nodes' median clock minus this coordinator's own (`i64::MIN`: none known).
    nodes_offset: std::sync::atomic::AtomicI64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new(0)
    }
}

impl Clock {
    /// A clock reading `ahead_ms` ahead of the system clock.
    pub fn new(ahead_ms: u64) -> Self {
        Clock {
            ahead_ms,
            nodes_offset: std::sync::atomic::AtomicI64::new(i64::MIN),
        }
    }

    /// This coordinator's own clock.
    pub fn own_ms(&self) -> u64 {
        system_ms().saturating_add(self.ahead_ms)
    }

    /// Records the nodes' median clock minus the own clock (`None`: no node reports one).
    pub fn set_nodes_offset(&self, offset: Option<i64>) {
        self.nodes_offset.store(
            offset.unwrap_or(i64::MIN),
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The time operations are stamped with (see the type).
    pub fn now_ms(&self) -> u64 {
        let own = self.own_ms();
        match self.nodes_offset.load(std::sync::atomic::Ordering::Relaxed) {
            i64::MIN => own,
            off => own.min(
                (own as i64)
                    .saturating_add(off)
                    .saturating_add(TOLERANCE_MS)
                    .max(0) as u64,
            ),
        }
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
