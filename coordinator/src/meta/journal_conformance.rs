//! The conformance check of the version journal (part of [`super::conformance::run_all`]):
//! what commits add to it, dropping it, and restoring a key's history from it.

use super::fixtures::{bucket, clear_garbage, object, put};
use super::version_conformance::listed;
use super::{Metadata, Precondition};

/// The version journal records every decision about a versioned key's history in commit
/// order (numbers, `null` versions, delete markers, versions deleted for good, versioning
/// states), entries go only when dropped, and a key's history restored from it lists as it
/// was.
pub async fn the_journal_records_history_and_restores_it(m: &dyn Metadata) {
    use super::journal::{JournalEntry, RestoredKey};
    let drain = || async {
        if let Some((n, _)) = m.journal_page(usize::MAX).await.unwrap().last() {
            m.drop_journal(*n).await.unwrap();
        }
    };
    drain().await;
    m.create_bucket(bucket("jb")).await.unwrap();
    // Unversioned writes are not journaled.
    put(m, object("jb", "k", 1), Precondition::None)
        .await
        .unwrap();
    assert!(m.journal_page(10).await.unwrap().is_empty());
    m.set_versioning("jb".into(), "Enabled".into())
        .await
        .unwrap();
    let v2 = put(m, object("jb", "k", 2), Precondition::None)
        .await
        .unwrap();
    let marker = m.delete_object("jb".into(), "k".into()).await.unwrap();
    let marker = marker.marker.expect("a delete marker");
    m.delete_version(
        "jb".into(),
        "k".into(),
        v2.version_id(),
        Default::default(),
        false,
    )
    .await
    .unwrap();
    let page = m.journal_page(10).await.unwrap();
    let kinds: Vec<&JournalEntry> = page.iter().map(|(_, e)| e).collect();
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert!(matches!(kinds[0], JournalEntry::Bucket { versioning: Some(s), .. } if s == "Enabled"));
    assert_eq!(kinds[1], &JournalEntry::of(&v2).unwrap());
    assert_eq!(kinds[2], &JournalEntry::of(&marker).unwrap());
    assert!(matches!(kinds[3], JournalEntry::Gone { v, .. } if *v == v2.version));
    assert!(
        page.windows(2).all(|w| w[0].0 < w[1].0),
        "entries in commit order"
    );
    assert_eq!(
        page[1].0,
        v2.seq.unwrap(),
        "a version's entry is its number"
    );
    // Dropped only up to where asked.
    assert_eq!(m.drop_journal(page[1].0).await.unwrap(), 2);
    assert_eq!(m.journal_page(10).await.unwrap().len(), 2);
    // Restored: a key with history comes back as it was, only where the key has none.
    let mut old = object("jr", "r", 3);
    old.seq = Some(1_000_000);
    let mut new = object("jr", "r", 4);
    new.seq = Some(1_000_002);
    let mut gone = super::ObjectMeta::delete_marker("jr", "r", new.version, 1_000_003, false, 1);
    gone.version = tessera_node::ObjectVersion::new();
    let r = RestoredKey {
        bucket: "jr".into(),
        key: "r".into(),
        versioning: Some("Enabled".into()),
        lock: None,
        versions: vec![gone.clone(), new.clone(), old.clone()],
        ec: crate::names::EcSpec { k: 2, m: 1 },
    };
    assert!(m.restore_key(r.clone()).await.unwrap());
    assert!(
        !m.restore_key(r).await.unwrap(),
        "a key with versions is left alone"
    );
    assert_eq!(
        listed(m, "jr").await,
        [
            format!("r:marker:{}*", gone.version_id()),
            format!("r:v:{}", new.version_id()),
            format!("r:v:{}", old.version_id()),
        ]
    );
    let b = m.bucket("jr".into()).await.unwrap().unwrap();
    assert_eq!(b.versioning.as_deref(), Some("Enabled"));
    let next = put(m, object("jr", "r", 5), Precondition::None)
        .await
        .unwrap();
    assert!(
        next.seq > Some(1_000_003),
        "numbers go on after the restored ones"
    );
    m.raise_seq(2_000_000).await.unwrap();
    m.raise_seq(5).await.unwrap();
    let raised = put(m, object("jr", "r", 6), Precondition::None)
        .await
        .unwrap();
    assert!(raised.seq > Some(2_000_000), "the counter only rises");
    // Leave nothing behind.
    for id in [
        raised.version_id(),
        next.version_id(),
        gone.version_id(),
        new.version_id(),
        old.version_id(),
    ] {
        m.delete_version("jr".into(), "r".into(), id, Default::default(), false)
            .await
            .unwrap();
    }
    m.delete_version(
        "jb".into(),
        "k".into(),
        marker.version_id(),
        Default::default(),
        false,
    )
    .await
    .unwrap();
    m.delete_version(
        "jb".into(),
        "k".into(),
        "null".into(),
        Default::default(),
        false,
    )
    .await
    .unwrap();
    m.delete_bucket("jr".into()).await.unwrap();
    m.delete_bucket("jb".into()).await.unwrap();
    drain().await;
    clear_garbage(m).await;
}
