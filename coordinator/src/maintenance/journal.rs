//! The leader's `journal` worker: writes the version journal's waiting entries to the nodes
//! (see `meta/journal.rs` for what they are and why a rebuild needs them).
//!
//! Every [`EVERY`], a pass takes the oldest waiting entries (at most [`PER_OBJECT`] per
//! object), writes them as one erasure-coded object of the reserved bucket `.journal`
//! (named by its first and last entry number: JSON, one `[n, entry]` pair per entry, in
//! order), commits it, and only then drops those entries from the metadata; it goes on until
//! none wait. A leader that dies between the write and the drop leaves the entries waiting,
//! and the next leader writes them again: a rebuild reads entries by number, so a repeat
//! changes nothing. A metadata loss can therefore take back at most the entries of the last
//! [`EVERY`] (versions committed then get new numbers in a rebuild, in the order of their
//! stored versions; a delete marker written then is not restored).
//!
//! A pass also merges journal objects ([`compact`]): a pass writes one object a second while
//! versioned writes go on, and each is a metadata record and k+m shard files, so runs of
//! small journal objects older than `--journal-merge-after` (a minute) are read back,
//! written again as one object (named by its first and last entry number) of at most
//! [`MERGED_BYTES`], and only then deleted. A crash between leaves both; a rebuild reads
//! entries by number, so the repeat changes nothing. The entries themselves are kept (what
//! they say is the history).

use super::periodic;
use super::worker::{Schedule, Worker};
use super::Maintenance;
use crate::data::put::{write_object, ObjectAttrs, PutRequest};
use crate::error::ApiError;
use crate::meta::journal::{JournalEntry, JOURNAL};
use crate::meta::{ObjectMeta, Precondition};
use crate::names::{BucketName, ObjectKey};
use std::sync::Arc;
use std::time::Duration;
use tessera_node::ShardRole;
use tokio_util::sync::CancellationToken;

/// Time between passes: the most a metadata loss can take back of the journal.
pub const EVERY: Duration = Duration::from_secs(1);
/// Entries per journal object at most.
pub const PER_OBJECT: usize = 4096;
/// A merged journal object's size at most (about 80,000 entries).
pub const MERGED_BYTES: u64 = 8 << 20;

/// The leader's `journal` worker (see the module docs).
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "journal",
        "writes the version journal (commit order, delete markers, versioning states) to the nodes for a metadata rebuild",
    );
    // Merges are looked for once every --journal-merge-after, not every pass.
    let last_merge = std::sync::Mutex::new(std::time::Instant::now());
    periodic(w.clone(), stop, Schedule::every(EVERY), || {
        let (c, w) = (c.clone(), w.clone());
        let merge = {
            let mut last = last_merge.lock().unwrap();
            let due = last.elapsed() >= c.config.journal_merge_after;
            if due {
                *last = std::time::Instant::now();
            }
            due
        };
        async move { pass(&c, &w, merge).await }
    })
    .await;
}

/// Writes every waiting entry, then (if `merge`) merges journal objects; says what it did.
async fn pass(c: &Arc<Maintenance>, w: &Worker, merge: bool) -> Result<String, ApiError> {
    let mut written = 0usize;
    loop {
        let page = c.meta.journal_page(PER_OBJECT).await?;
        let (Some((first, _)), Some((last, _))) = (page.first(), page.last()) else {
            break;
        };
        let (first, last) = (*first, *last);
        if written == 0 {
            w.begin("writing the version journal", page.len() as u64);
        }
        write(c, first, last, &page).await?;
        c.maint().drop_journal(last).await?;
        written += page.len();
        w.advance(page.len() as u64, 0);
    }
    let merged = if merge { compact(c).await? } else { 0 };
    let wrote = match written {
        0 => "nothing waiting".to_string(),
        n => format!("wrote {n} entries; nothing waiting"),
    };
    Ok(match merged {
        0 => wrote,
        n => format!("merged {n} journal objects into one; {wrote}"),
    })
}

/// Merges the first run of at least two consecutive journal objects (in entry order) that
/// are each older than `--journal-merge-after` and together at most [`MERGED_BYTES`]: reads
/// them, writes their entries as one object, then deletes them. Objects over half of
/// [`MERGED_BYTES`] are left as they are. Returns how many were merged (0: none to merge).
pub async fn compact(c: &Arc<Maintenance>) -> Result<usize, ApiError> {
    let now = crate::meta::now_ms();
    let settled = c.config.journal_merge_after.as_millis() as u64;
    let mut run: Vec<ObjectMeta> = Vec::new();
    let mut bytes = 0;
    let mut after = None;
    'pages: loop {
        let (page, next) = c
            .meta
            .objects_under(JOURNAL.into(), String::new(), after, 256)
            .await?;
        for o in page {
            if now.saturating_sub(o.last_modified_ms) < settled {
                break 'pages;
            }
            if bytes + o.size > MERGED_BYTES {
                if run.len() >= 2 {
                    break 'pages;
                }
                // A run of one (or an object too large to join) merges nothing: start anew.
                run.clear();
                bytes = 0;
                if o.size > MERGED_BYTES / 2 {
                    continue;
                }
            }
            bytes += o.size;
            run.push(o);
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    if run.len() < 2 {
        return Ok(0);
    }
    let mut entries: Vec<(u64, JournalEntry)> = Vec::new();
    for o in &run {
        let data = crate::data::packed_read::segment_data(&c.data, o).await?;
        let part: Vec<(u64, JournalEntry)> = serde_json::from_slice(&data).map_err(|e| {
            ApiError::Internal(format!("journal object {} not understood: {e}", o.key))
        })?;
        entries.extend(part);
    }
    entries.sort_by_key(|(n, _)| *n);
    entries.dedup_by_key(|(n, _)| *n);
    let (Some((first, _)), Some((last, _))) = (entries.first(), entries.last()) else {
        return Ok(0);
    };
    let (first, last) = (*first, *last);
    write(c, first, last, &entries).await?;
    let maint = c.maint();
    let name = format!("{first:016x}-{last:016x}");
    for o in run.iter().filter(|o| o.key != name) {
        // (An object of the same name is the one just written: a merge a crash interrupted
        // after its write is done again and replaces it.)
        maint.delete_object(JOURNAL.into(), o.key.clone()).await?;
    }
    tracing::info!(
        objects = run.len(),
        entries = entries.len(),
        "journal objects merged"
    );
    Ok(run.len())
}

/// Writes entries `first..=last` as one object of the journal bucket and commits it.
async fn write(
    c: &Arc<Maintenance>,
    first: u64,
    last: u64,
    page: &[(u64, JournalEntry)],
) -> Result<ObjectMeta, ApiError> {
    let bytes = serde_json::to_vec(page)?;
    let req = PutRequest {
        bucket: BucketName::reserved(JOURNAL),
        key: ObjectKey::parse(&format!("{first:016x}-{last:016x}"))?,
        ec: Some(c.config.default_ec),
        content_length: Some(bytes.len() as u64),
        attrs: ObjectAttrs::default(),
        role: ShardRole::Object,
    };
    let body = futures::stream::once(async move { Ok(bytes::Bytes::from(bytes)) });
    let staged = write_object(c.data.clone(), req, Box::pin(body), ()).await?;
    let name = format!("{first:016x}-{last:016x}");
    let obj = ObjectMeta::of_part(JOURNAL, &name, staged.part.clone(), crate::meta::now_ms());
    let maint = c.maint();
    staged
        .commit_with(maint.commit_put(obj, Precondition::None))
        .await
}
