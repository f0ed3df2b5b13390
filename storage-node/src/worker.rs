//! One shape for background work: every loop a coordinator runs (garbage collection, the
//! orphan scan, multipart expiry, background repair, drains, rebalance, recode) and every
//! loop a node runs (scrub, heartbeats) is a [`Worker`] with a name, a state, progress,
//! pause/resume and a clean stop, listed by [`Workers`] (`GET /workers` on a node and on the
//! coordinator, which also lists its nodes' workers), `tessera status` and the console.
//!
//! Work that moves shard bytes spends them from a [`Budget`]: on the coordinator one shared by
//! repair, rebalance and recode (`--maintenance-rate`, changeable at run time), so client
//! traffic keeps its share whatever runs at once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// A bytes-per-second budget shared by everyone who spends from it (0: unlimited). Spending
/// reserves the next slot of time the bytes take at the rate and sleeps until it ends, so
/// concurrent spenders together stay within the rate.
pub struct Budget {
    rate: AtomicU64,
    next: Mutex<Instant>,
}

impl Budget {
    /// A budget of `rate` bytes per second (0: unlimited).
    pub fn new(rate: u64) -> Self {
        Budget {
            rate: AtomicU64::new(rate),
            next: Mutex::new(Instant::now()),
        }
    }

    /// Bytes per second (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Changes the rate; spending from now on uses it.
    pub fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
        *self.next.lock().unwrap() = Instant::now();
    }

    /// Waits until `bytes` (just moved) fit in the budget.
    pub async fn spend(&self, bytes: u64) {
        let rate = self.rate();
        if rate == 0 || bytes == 0 {
            return;
        }
        let until = {
            let mut next = self.next.lock().unwrap();
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / rate as f64);
            *next
        };
        tokio::time::sleep_until(until).await;
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a worker is doing, as the admin API shows it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerView {
    /// Name (`gc`, `repair`, `drain`, ...).
    pub name: String,
    /// What it does.
    pub about: String,
    /// `idle` (between passes), `running`, `paused` or `stopped`.
    pub state: String,
    /// The current (or last) pass: what it works on.
    pub activity: String,
    /// Items done in the current pass.
    pub done: u64,
    /// Items the current pass will look at (0: unknown).
    pub total: u64,
    /// Bytes moved in the current pass.
    pub bytes: u64,
    /// Bytes per second moved in the current pass.
    pub bytes_per_s: u64,
    /// When the current pass started (ms since the epoch).
    pub started_ms: Option<u64>,
    /// Estimated time to the end of the current pass.
    pub eta_ms: Option<u64>,
    /// Passes finished since the coordinator started.
    pub passes: u64,
    /// How the last pass ended.
    pub last_result: Option<String>,
}

/// Every worker of a coordinator and its nodes, and the coordinator's budget, as
/// `GET /workers` answers.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct WorkerList {
    /// The workers (a node's named `NAME@NODE`).
    pub workers: Vec<WorkerView>,
    /// The maintenance budget in bytes per second (0: unlimited).
    pub maintenance_rate: u64,
}

/// A new rate for a [`Budget`], as `PUT /maintenance` takes it (on a coordinator and on a
/// node).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct BudgetChange {
    /// Bytes per second (0: unlimited).
    pub rate: u64,
}

/// One background loop.
pub struct Worker {
    paused: AtomicBool,
    resumed: tokio::sync::Notify,
    view: Mutex<WorkerView>,
    started: Mutex<Option<std::time::Instant>>,
}

impl Worker {
    fn new(name: &str, about: &str) -> Self {
        Worker {
            paused: AtomicBool::new(false),
            resumed: tokio::sync::Notify::new(),
            view: Mutex::new(WorkerView {
                name: name.into(),
                about: about.into(),
                state: "idle".into(),
                ..Default::default()
            }),
            started: Mutex::new(None),
        }
    }

    /// Waits while the worker is paused; `false` once `stop` is cancelled (the caller
    /// returns). Loops call it between items, so a pause takes effect within one item.
    pub async fn gate(&self, stop: &CancellationToken) -> bool {
        loop {
            if stop.is_cancelled() {
                return false;
            }
            let resumed = self.resumed.notified();
            if !self.paused.load(Ordering::Acquire) {
                return true;
            }
            self.view.lock().unwrap().state = "paused".into();
            tokio::select! {
                _ = resumed => {}
                _ = stop.cancelled() => return false,
            }
            self.view.lock().unwrap().state = "running".into();
        }
    }

    /// Pauses the worker at its next [`Worker::gate`].
    pub fn pause(&self) {
        self.paused.store(true, Ordering::Release);
        let mut v = self.view.lock().unwrap();
        if v.state == "idle" {
            v.state = "paused".into();
        }
    }

    /// Resumes a paused worker.
    pub fn resume(&self) {
        self.paused.store(false, Ordering::Release);
        self.resumed.notify_waiters();
        let mut v = self.view.lock().unwrap();
        if v.state == "paused" {
            v.state = if self.started.lock().unwrap().is_some() {
                "running"
            } else {
                "idle"
            }
            .into();
        }
    }

    /// Whether the worker is paused.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Acquire)
    }

    /// A pass starts: `activity` over `total` items (0: unknown yet).
    pub fn begin(&self, activity: impl Into<String>, total: u64) {
        *self.started.lock().unwrap() = Some(std::time::Instant::now());
        let mut v = self.view.lock().unwrap();
        v.state = if self.is_paused() {
            "paused"
        } else {
            "running"
        }
        .into();
        v.activity = activity.into();
        v.done = 0;
        v.total = total;
        v.bytes = 0;
        v.started_ms = Some(now_ms());
    }

    /// The pass turns out to have `total` items.
    pub fn set_total(&self, total: u64) {
        self.view.lock().unwrap().total = total;
    }

    /// `items` more done, `bytes` more moved.
    pub fn advance(&self, items: u64, bytes: u64) {
        let mut v = self.view.lock().unwrap();
        v.done += items;
        v.bytes += bytes;
    }

    /// The pass ended with `result`.
    pub fn end(&self, result: impl Into<String>) {
        *self.started.lock().unwrap() = None;
        let mut v = self.view.lock().unwrap();
        v.state = if self.is_paused() { "paused" } else { "idle" }.into();
        v.passes += 1;
        v.last_result = Some(result.into());
    }

    /// The loop returned (shutdown, or leadership lost).
    pub fn stopped(&self) {
        *self.started.lock().unwrap() = None;
        self.view.lock().unwrap().state = "stopped".into();
    }

    /// The admin view, with rate and ETA worked out now.
    pub fn view(&self) -> WorkerView {
        let mut v = self.view.lock().unwrap().clone();
        if let Some(t) = *self.started.lock().unwrap() {
            let secs = t.elapsed().as_secs_f64();
            if secs > 0.0 {
                v.bytes_per_s = (v.bytes as f64 / secs) as u64;
            }
            if v.done > 0 && v.total >= v.done {
                let per_item = secs / v.done as f64;
                v.eta_ms = Some((per_item * (v.total - v.done) as f64 * 1000.0) as u64);
            }
        }
        v
    }
}

/// Every worker of this coordinator, by name.
#[derive(Default)]
pub struct Workers {
    list: Mutex<BTreeMap<String, Arc<Worker>>>,
}

impl Workers {
    /// The worker called `name`, made (with description `about`) the first time.
    pub fn get_or_add(&self, name: &str, about: &str) -> Arc<Worker> {
        self.list
            .lock()
            .unwrap()
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(Worker::new(name, about)))
            .clone()
    }

    /// The worker called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Worker>> {
        self.list.lock().unwrap().get(name).cloned()
    }

    /// Every worker's view, by name.
    pub fn views(&self) -> Vec<WorkerView> {
        self.list
            .lock()
            .unwrap()
            .values()
            .map(|w| w.view())
            .collect()
    }
}

/// When a periodic worker runs: after `first_after`, then every `every`, and `settle` after a
/// `kick`.
pub struct Schedule<'a> {
    /// Wait before the first pass.
    pub first_after: Duration,
    /// Time between passes.
    pub every: Duration,
    /// Wakes the worker early.
    pub kick: Option<&'a tokio::sync::Notify>,
    /// Wait after a kick before the pass (what woke it may need time to ripen).
    pub settle: Duration,
}

impl Schedule<'_> {
    /// Every `every`, no kick.
    pub fn every(every: Duration) -> Self {
        Schedule {
            first_after: Duration::ZERO,
            every,
            kick: None,
            settle: Duration::ZERO,
        }
    }
}

/// Runs `pass` as worker `w` on `schedule` until `stop`: the one loop every periodic worker
/// shares. A pass returns a one-line result for the worker's view, or an error that is
/// logged and shown.
pub async fn periodic<F, Fut, E>(
    w: Arc<Worker>,
    stop: CancellationToken,
    schedule: Schedule<'_>,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<String, E>>,
    E: std::fmt::Display,
{
    tokio::select! {
        _ = stop.cancelled() => {
            w.stopped();
            return;
        }
        _ = tokio::time::sleep(schedule.first_after) => {}
    }
    loop {
        if !w.gate(&stop).await {
            break;
        }
        let outcome = tokio::select! {
            r = pass() => r,
            _ = stop.cancelled() => break,
        };
        match outcome {
            Ok(r) => w.end(r),
            Err(e) => {
                tracing::warn!(worker = %w.view().name, error = %e, "background pass failed");
                w.end(format!("failed: {e}"));
            }
        }
        let kicked = async {
            match schedule.kick {
                Some(k) => k.notified().await,
                None => std::future::pending().await,
            }
            tokio::time::sleep(schedule.settle).await;
        };
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(schedule.every) => {}
            _ = kicked => {}
        }
    }
    w.stopped();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_shared_budget_holds_concurrent_spenders_to_its_rate() {
        let b = Arc::new(Budget::new(1 << 20));
        let t = Instant::now();
        let spenders: Vec<_> = (0..4)
            .map(|_| {
                let b = b.clone();
                tokio::spawn(async move {
                    for _ in 0..4 {
                        b.spend(128 << 10).await;
                    }
                })
            })
            .collect();
        for s in spenders {
            s.await.unwrap();
        }
        // 4 x 4 x 128 KiB = 2 MiB at 1 MiB/s.
        assert_eq!(t.elapsed().as_millis(), 2000);
        b.set_rate(0);
        let t = Instant::now();
        b.spend(1 << 30).await;
        assert_eq!(t.elapsed(), Duration::ZERO, "0 is unlimited");
    }

    #[tokio::test(start_paused = true)]
    async fn a_paused_worker_waits_at_its_gate_until_resumed_or_stopped() {
        let w = Arc::new(Worker::new("t", "test"));
        let stop = CancellationToken::new();
        w.pause();
        let (w2, s2) = (w.clone(), stop.clone());
        let gate = tokio::spawn(async move { w2.gate(&s2).await });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!gate.is_finished(), "paused: still waiting");
        assert_eq!(w.view().state, "paused");
        w.resume();
        assert!(gate.await.unwrap(), "resumed: passes");
        w.pause();
        let (w2, s2) = (w.clone(), stop.clone());
        let gate = tokio::spawn(async move { w2.gate(&s2).await });
        stop.cancel();
        assert!(!gate.await.unwrap(), "stopped while paused: told to return");
    }
}
