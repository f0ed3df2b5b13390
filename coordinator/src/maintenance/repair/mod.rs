//! Repair: finds shards that are lost and writes them back.
//!
//! A shard is **lost** when it was recorded missing at write time, its node is gone (not
//! registered, or down for longer than `repair_grace`), its node says it does not have it, or
//! a read or a scrub found it corrupt (the *suspects*). Repair reads any k healthy shards per
//! stripe, rebuilds the lost ones, streams them to nodes chosen like placement does (distinct
//! nodes, fewest shards per zone, the shard's original node first when it is up), and commits
//! the new locations with [`Metadata::commit_repair`](crate::meta::Metadata::commit_repair),
//! which refuses if the object was overwritten or deleted meanwhile. The shards a repair writes
//! are recorded in flight first, so a crash leaves garbage, never a leak; running repair again
//! finishes the job.
//!
//! The work runs inside the coordinator: in the background (read-repair queue, lost nodes'
//! objects, a paced full scan, within the maintenance budget) and on demand through the admin API, which `tessera repair` drives.
//!
//! - [`queue`]: the repair state shared by the API, the data path (damage reports) and the
//!   workers; request and report types.
//! - [`runs`]: runs: selection, assessment, verification.
//! - [`background`]: the background worker: the queue, lost nodes, the paced full scan.
//! - [`moves`]: writing a part's shards to new nodes and committing them (also used by drain
//!   and rebalance).

mod background;
mod moves;
mod queue;
mod runs;

pub use background::background;
pub use moves::{move_part, repair_part, RepairOutcome, Source};
pub use queue::{
    RepairCounts, RepairReport, RepairRequest, RepairStatus, Repairer, ScanSummary, WithinGrace,
};
pub use runs::{resume_runs, run, start_run, Pages};
