//! The conformance checks of versioning (part of [`super::conformance::run_all`]): a key's
//! history in a versioned bucket, delete markers, suspension's `null` version, version
//! listings and their paging, and what repair and garbage collection see of noncurrent
//! versions.

use super::fixtures::{
    bucket, clear_garbage, commit_segment, fill_of, garbage_versions, object, put, segment,
    version_of,
};
use super::{MetaError, Metadata, ObjectLock, ObjectMeta, Precondition, Retention};

/// The version ids listed for `b` (every key), newest first per key, with `*` on the latest.
pub(super) async fn listed(m: &dyn Metadata, b: &str) -> Vec<String> {
    let l = m
        .list_versions(b.into(), String::new(), None, None, None, 1000)
        .await
        .unwrap();
    assert!(!l.truncated);
    l.versions
        .iter()
        .map(|(o, latest)| {
            let kind = if o.delete_marker { "marker" } else { "v" };
            format!(
                "{}:{kind}:{}{}",
                o.key,
                o.version_id(),
                if *latest { "*" } else { "" }
            )
        })
        .collect()
}

/// Versioning keeps every version in commit order; a delete without a version id writes a
/// delete marker; deleting the newest version brings the next back; suspension writes and
/// replaces only the `null` version; listings page through versions exactly once; repair and
/// garbage collection find noncurrent versions; a bucket with versions is not empty.
pub async fn versions_and_delete_markers(m: &dyn Metadata) {
    m.create_bucket(bucket("vb")).await.unwrap();
    clear_garbage(m).await;
    // Written before versioning: the `null` version, without a number.
    let v1 = object("vb", "k", 1);
    put(m, v1.clone(), Precondition::None).await.unwrap();
    assert!(matches!(
        m.set_versioning("vb".into(), "Sometimes".into()).await,
        Err(MetaError::InvalidArgument(_))
    ));
    let b = m
        .set_versioning("vb".into(), "Enabled".into())
        .await
        .unwrap();
    assert_eq!(b.versioning.as_deref(), Some("Enabled"));
    let c2 = put(m, object("vb", "k", 2), Precondition::None)
        .await
        .unwrap();
    let c3 = put(m, object("vb", "k", 3), Precondition::None)
        .await
        .unwrap();
    let (id2, id3) = (c2.version_id(), c3.version_id());
    assert!(c2.seq < c3.seq, "numbered in commit order");
    assert!(id2 != "null" && id3 != "null" && id2 != id3);
    assert!(id2.chars().all(|c| c.is_ascii_alphanumeric()), "URL-safe");
    assert_eq!(version_of(m, "vb", "k").await, Some(c3.version));
    assert!(
        !garbage_versions(m).await.contains(&v1.version),
        "an overwrite in a versioned bucket keeps the old version's shards"
    );
    assert_eq!(
        listed(m, "vb").await,
        [
            format!("k:v:{id3}*"),
            format!("k:v:{id2}"),
            "k:v:null".to_string()
        ]
    );
    let old = m
        .object_version("vb".into(), "k".into(), "null".into())
        .await
        .unwrap()
        .expect("the version from before versioning");
    assert_eq!(old.version, v1.version);
    let by_id = m
        .object_version("vb".into(), "k".into(), id2.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_id.version, c2.version);
    assert!(m
        .object_version("vb".into(), "k".into(), "00000000000fffff".into())
        .await
        .unwrap()
        .is_none());
    // Repair and garbage collection find a noncurrent version's runs.
    let held = m
        .version_holding("vb".into(), "k".into(), c2.parts[0].version)
        .await
        .unwrap()
        .expect("a noncurrent version holds its runs");
    assert_eq!(held.version_id(), id2);
    let mut seen: Vec<ObjectMeta> = Vec::new();
    let mut from = None;
    loop {
        let (page, next) = m.objects_after(from.take(), 100).await.unwrap();
        seen.extend(page.into_iter().filter(|o| o.bucket == "vb"));
        match next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3, "a walk of the objects meets every version");

    // A delete without a version id: a marker, the key reads as absent, the versions stay.
    let d = m.delete_object("vb".into(), "k".into()).await.unwrap();
    let marker = d.marker.expect("a delete marker");
    assert_eq!(d.removed.map(|r| r.version), Some(c3.version));
    assert!(m.object("vb".into(), "k".into()).await.unwrap().is_none());
    let newest = m
        .newest_version("vb".into(), "k".into())
        .await
        .unwrap()
        .unwrap();
    assert!(newest.delete_marker);
    let mid = marker.version_id();
    assert_eq!(
        listed(m, "vb").await,
        [
            format!("k:marker:{mid}*"),
            format!("k:v:{id3}"),
            format!("k:v:{id2}"),
            "k:v:null".to_string()
        ]
    );
    let plain = m
        .list("vb".into(), String::new(), None, None, 1000)
        .await
        .unwrap();
    assert!(plain.objects.is_empty(), "a deleted key is not listed");
    assert!(matches!(
        m.delete_bucket("vb".into()).await,
        Err(MetaError::BucketNotEmpty(_))
    ));
    // A conditional delete of a version deletes only what meets its condition.
    let wrong = super::DeleteCondition {
        etag: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        m.delete_version("vb".into(), "k".into(), id2.clone(), wrong, false)
            .await,
        Err(MetaError::PreconditionFailed)
    ));
    // Deleting the marker brings the version under it back.
    m.delete_version("vb".into(), "k".into(), mid, Default::default(), false)
        .await
        .unwrap();
    assert_eq!(version_of(m, "vb", "k").await, Some(c3.version));
    // Deleting the current version for good: the next newest becomes current, and only the
    // deleted version's shards are garbage.
    let gone = m
        .delete_version(
            "vb".into(),
            "k".into(),
            id3.clone(),
            Default::default(),
            false,
        )
        .await
        .unwrap();
    assert_eq!(gone.removed.map(|r| r.version), Some(c3.version));
    assert_eq!(version_of(m, "vb", "k").await, Some(c2.version));
    let g = garbage_versions(m).await;
    assert!(g.contains(&c3.version) && !g.contains(&c2.version));
    assert!(
        m.delete_version("vb".into(), "k".into(), id3, Default::default(), false)
            .await
            .unwrap()
            .removed
            .is_none(),
        "a version already gone: nothing happens"
    );

    // Suspended: writes are the `null` version and replace only the previous `null` one.
    clear_garbage(m).await;
    m.set_versioning("vb".into(), "Suspended".into())
        .await
        .unwrap();
    let c4 = put(m, object("vb", "k", 4), Precondition::None)
        .await
        .unwrap();
    assert_eq!(c4.version_id(), "null");
    assert!(
        garbage_versions(m).await.contains(&v1.version),
        "the earlier null version is replaced"
    );
    assert_eq!(
        listed(m, "vb").await,
        ["k:v:null*".to_string(), format!("k:v:{id2}")]
    );
    let c5 = put(m, object("vb", "k", 5), Precondition::None)
        .await
        .unwrap();
    assert!(garbage_versions(m).await.contains(&c4.version));
    assert_eq!(version_of(m, "vb", "k").await, Some(c5.version));
    let d = m.delete_object("vb".into(), "k".into()).await.unwrap();
    assert_eq!(d.marker.map(|x| x.version_id()), Some("null".into()));
    assert!(garbage_versions(m).await.contains(&c5.version));
    assert_eq!(
        listed(m, "vb").await,
        ["k:marker:null*".to_string(), format!("k:v:{id2}")]
    );

    // Listings: paging one entry at a time covers every version once; a delimiter rolls
    // keys up; markers and versions stay out of plain listings.
    m.set_versioning("vb".into(), "Enabled".into())
        .await
        .unwrap();
    for k in ["d/a", "d/b", "e"] {
        for size in [1, 2] {
            put(m, object("vb", k, size), Precondition::None)
                .await
                .unwrap();
        }
    }
    let everything = listed(m, "vb").await;
    assert_eq!(everything.len(), 2 + 6);
    let mut paged = Vec::new();
    let (mut km, mut vm): (Option<String>, Option<String>) = (None, None);
    loop {
        let l = m
            .list_versions("vb".into(), String::new(), km.clone(), vm.clone(), None, 1)
            .await
            .unwrap();
        for (o, latest) in &l.versions {
            let kind = if o.delete_marker { "marker" } else { "v" };
            let star = if *latest { "*" } else { "" };
            paged.push(format!("{}:{kind}:{}{star}", o.key, o.version_id()));
        }
        match l.next {
            Some((k, v)) if l.truncated => (km, vm) = (Some(k), v),
            _ => break,
        }
    }
    assert_eq!(
        paged, everything,
        "pages of one cover everything once, in order"
    );
    let rolled = m
        .list_versions(
            "vb".into(),
            String::new(),
            None,
            None,
            Some("/".into()),
            1000,
        )
        .await
        .unwrap();
    assert_eq!(rolled.prefixes, ["d/"]);
    assert_eq!(
        rolled.versions.len(),
        2 + 2,
        "k's two entries and e's two versions"
    );
    let plain = m
        .list("vb".into(), String::new(), None, None, 1000)
        .await
        .unwrap();
    let names: Vec<&str> = plain.objects.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(names, ["d/a", "d/b", "e"], "one entry per live key");

    // Every version deleted: the bucket is empty and can go.
    for line in listed(m, "vb").await {
        let mut f = line.split(':');
        let (k, _, id) = (f.next().unwrap(), f.next(), f.next().unwrap());
        let id = id.trim_end_matches('*').to_string();
        m.delete_version("vb".into(), k.into(), id, Default::default(), false)
            .await
            .unwrap();
    }
    assert!(listed(m, "vb").await.is_empty());
    m.delete_bucket("vb".into()).await.unwrap();
    clear_garbage(m).await;
}

/// Object lock: only a versioned bucket takes it and it cannot be suspended after; a retained
/// or held version cannot be deleted (GOVERNANCE: unless bypassed), COMPLIANCE retention only
/// grows; a delete without a version id still writes a marker; default retention applies to
/// new versions.
pub async fn object_lock(m: &dyn Metadata) {
    m.create_bucket(bucket("lk")).await.unwrap();
    assert!(matches!(
        m.set_object_lock("lk".into(), ObjectLock::default()).await,
        Err(MetaError::InvalidBucketState(_))
    ));
    m.set_versioning("lk".into(), "Enabled".into())
        .await
        .unwrap();
    let lock = ObjectLock {
        default_mode: Some("GOVERNANCE".into()),
        default_days: Some(1),
        default_years: None,
    };
    m.set_object_lock("lk".into(), lock).await.unwrap();
    assert!(matches!(
        m.set_versioning("lk".into(), "Suspended".into()).await,
        Err(MetaError::InvalidBucketState(_))
    ));
    // Default retention: GOVERNANCE for a day.
    let v = put(m, object("lk", "k", 1), Precondition::None)
        .await
        .unwrap();
    let default = v.retention.clone().expect("the default retention");
    assert_eq!(default.mode, "GOVERNANCE");
    assert!(
        default.until_ms > super::now_ms() + 23 * 3600 * 1000,
        "a day"
    );
    let id = v.version_id();
    assert!(matches!(
        m.delete_version(
            "lk".into(),
            "k".into(),
            id.clone(),
            Default::default(),
            false
        )
        .await,
        Err(MetaError::ObjectLocked(_))
    ));
    // A delete without a version id writes a marker; the version stays.
    let d = m.delete_object("lk".into(), "k".into()).await.unwrap();
    assert!(d.marker.is_some());
    assert!(m
        .object_version("lk".into(), "k".into(), id.clone())
        .await
        .unwrap()
        .is_some());
    // GOVERNANCE can be shortened only bypassing; COMPLIANCE only grows, whoever asks.
    let soon = |ms: u64, mode: &str| Retention {
        mode: mode.into(),
        until_ms: super::now_ms() + ms,
    };
    assert!(matches!(
        m.set_retention(
            "lk".into(),
            "k".into(),
            Some(id.clone()),
            Some(soon(1000, "GOVERNANCE")),
            false
        )
        .await,
        Err(MetaError::ObjectLocked(_))
    ));
    let short = soon(1000, "GOVERNANCE");
    m.set_retention("lk".into(), "k".into(), Some(id.clone()), Some(short), true)
        .await
        .unwrap();
    // Changing the mode of GOVERNANCE retention needs the bypass too.
    let r = soon(1500, "COMPLIANCE");
    m.set_retention(
        "lk".into(),
        "k".into(),
        Some(id.clone()),
        Some(r.clone()),
        true,
    )
    .await
    .unwrap();
    let shorter = Retention {
        until_ms: r.until_ms - 500,
        ..r.clone()
    };
    for (weaker, bypass) in [(None, true), (Some(shorter), true)] {
        assert!(matches!(
            m.set_retention("lk".into(), "k".into(), Some(id.clone()), weaker, bypass)
                .await,
            Err(MetaError::ObjectLocked(_))
        ));
    }
    assert!(matches!(
        m.delete_version(
            "lk".into(),
            "k".into(),
            id.clone(),
            Default::default(),
            true
        )
        .await,
        Err(MetaError::ObjectLocked(_))
    ));
    // GOVERNANCE bypassed, and a legal hold that holds until it is lifted.
    let g = put(m, object("lk", "g", 2), Precondition::None)
        .await
        .unwrap();
    let gid = g.version_id();
    m.set_legal_hold("lk".into(), "g".into(), Some(gid.clone()), true)
        .await
        .unwrap();
    assert!(matches!(
        m.delete_version(
            "lk".into(),
            "g".into(),
            gid.clone(),
            Default::default(),
            true
        )
        .await,
        Err(MetaError::ObjectLocked(_))
    ));
    m.set_legal_hold("lk".into(), "g".into(), Some(gid.clone()), false)
        .await
        .unwrap();
    m.delete_version("lk".into(), "g".into(), gid, Default::default(), true)
        .await
        .unwrap();
    // Legal holds and retention need a bucket with object lock.
    m.create_bucket(bucket("unlocked")).await.unwrap();
    assert!(matches!(
        m.set_legal_hold("unlocked".into(), "x".into(), None, true)
            .await,
        Err(MetaError::InvalidArgument(_))
    ));
    m.delete_bucket("unlocked".into()).await.unwrap();
    // Once the retention has passed, the version can go, and with it the bucket.
    tokio::time::sleep(std::time::Duration::from_millis(
        r.until_ms.saturating_sub(super::now_ms()) + 100,
    ))
    .await;
    m.delete_version("lk".into(), "k".into(), id, Default::default(), false)
        .await
        .unwrap();
    let marker = d.marker.unwrap().version_id();
    m.delete_version("lk".into(), "k".into(), marker, Default::default(), false)
        .await
        .unwrap();
    m.delete_bucket("lk".into()).await.unwrap();
    clear_garbage(m).await;
}

/// Compaction and recode rewrite a noncurrent version as they rewrite a current one: in its
/// own slot with its number, tags and lock, the old bytes released; a second move out of the
/// old segment fails.
pub async fn noncurrent_versions_are_rewritten_in_place(m: &dyn Metadata) {
    m.create_bucket(bucket("vc")).await.unwrap();
    m.set_versioning("vc".into(), "Enabled".into())
        .await
        .unwrap();
    clear_garbage(m).await;
    let (seg, old) = segment("vc", &["k"], &[10]);
    let v1 = commit_segment(m, &seg, old).await.remove(0).unwrap();
    let (seg_b, newer) = segment("vc", &["k"], &[20]);
    let v2 = commit_segment(m, &seg_b, newer).await.remove(0).unwrap();
    let tags: std::collections::BTreeMap<String, String> =
        [("kept".to_string(), "yes".to_string())].into();
    m.set_object_tags("vc".into(), "k".into(), Some(v1.version_id()), tags.clone())
        .await
        .unwrap();
    let (seg2, mut moved) = segment("vc", &["k"], &[10]);
    moved[0].obj.version = v1.version;
    moved[0].cond = Precondition::Moved {
        version: v1.version,
        from: seg.version,
    };
    let out = commit_segment(m, &seg2, moved.clone()).await;
    let after = out[0].as_ref().expect("the noncurrent version moves");
    assert_eq!(
        (after.seq, &after.tags),
        (v1.seq, &tags),
        "its place in history and tags stay"
    );
    let read = m
        .object_version("vc".into(), "k".into(), v1.version_id())
        .await
        .unwrap()
        .expect("still listed by its id");
    assert_eq!(read.packed.as_ref().unwrap().segment, seg2.version);
    let current = m.object("vc".into(), "k".into()).await.unwrap().unwrap();
    assert_eq!(
        current.version_id(),
        v2.version_id(),
        "the current version is untouched"
    );
    assert_eq!(
        fill_of(m, &seg).await,
        None,
        "the old segment emptied is gone"
    );
    assert!(garbage_versions(m).await.contains(&seg.version));
    let again = commit_segment(m, &segment("vc", &["x"], &[1]).0, moved).await;
    assert!(
        matches!(again[0], Err(MetaError::PreconditionFailed)),
        "a second move out of the old segment fails: {:?}",
        again[0]
    );
    assert_eq!(
        m.packed_version("vc".into(), "k".into(), v1.version, seg2.version)
            .await
            .unwrap()
            .map(|o| o.version_id()),
        Some(v1.version_id())
    );
    // Recode: a noncurrent erasure-coded version rewritten in a new run keeps its place.
    let r1 = put(m, object("vc", "r", 5), Precondition::None)
        .await
        .unwrap();
    let r2 = put(m, object("vc", "r", 6), Precondition::None)
        .await
        .unwrap();
    let mut recoded = object("vc", "r", 5);
    recoded.etag = r1.etag.clone();
    let out = put(m, recoded.clone(), Precondition::Version(r1.version))
        .await
        .expect("a recode of a noncurrent version commits");
    assert_eq!((out.seq, out.version), (r1.seq, recoded.version));
    let read = m
        .object_version("vc".into(), "r".into(), r1.version_id())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        read.parts[0].version, recoded.parts[0].version,
        "the new run is its"
    );
    let current = m.object("vc".into(), "r".into()).await.unwrap().unwrap();
    assert_eq!(
        current.version, r2.version,
        "the current version is untouched"
    );
    assert!(
        garbage_versions(m).await.contains(&r1.version),
        "the old run is garbage"
    );
    // Leave nothing behind (the suite runs twice on a replicated store).
    for (k, id) in [
        ("k", v1.version_id()),
        ("k", v2.version_id()),
        ("r", r1.version_id()),
        ("r", r2.version_id()),
    ] {
        m.delete_version("vc".into(), k.into(), id, Default::default(), false)
            .await
            .unwrap();
    }
    m.delete_bucket("vc".into()).await.unwrap();
}
