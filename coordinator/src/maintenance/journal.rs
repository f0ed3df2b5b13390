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

/// The leader's `journal` worker (see the module docs).
pub async fn worker(c: Arc<Maintenance>, stop: CancellationToken) {
    let w = c.workers.get_or_add(
        "journal",
        "writes the version journal (commit order, delete markers, versioning states) to the nodes for a metadata rebuild",
    );
    periodic(w.clone(), stop, Schedule::every(EVERY), || {
        let (c, w) = (c.clone(), w.clone());
        async move { pass(&c, &w).await }
    })
    .await;
}

/// Writes every waiting entry; says how many.
async fn pass(c: &Arc<Maintenance>, w: &Worker) -> Result<String, ApiError> {
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
    Ok(match written {
        0 => "nothing waiting".into(),
        n => format!("wrote {n} entries; nothing waiting"),
    })
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
