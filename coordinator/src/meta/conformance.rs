//! The metadata conformance suite: every implementation of [`Metadata`] must pass
//! [`run_all`] (today [`Local`] on the in-memory map and on RocksDB). Each check panics with a message naming
//! the rule it found broken.

pub use super::fixtures::object;
use super::fixtures::{
    bucket, clear_garbage, commit_segment, fill_of, garbage_versions, node, put, put_part, segment,
    version_of,
};
use super::{
    now_ms, Fill, Grant, KeyRecord, Listing, MetaError, Metadata, NodeRecord, PackEntry,
    Precondition, ShardSet, Upload, SEGMENTS,
};
use crate::names::EcSpec;
use std::collections::BTreeMap;
use tessera_node::{NodeId, ObjectVersion};

/// Runs every check on `m`, which must be empty.
pub async fn run_all(m: &dyn Metadata) {
    use super::counter_conformance::counters_match;
    buckets(m).await;
    counters_match(m, "buckets").await;
    commits_overwrites_and_conditions(m).await;
    counters_match(m, "commits").await;
    in_flight_records_and_garbage(m).await;
    counters_match(m, "in-flight records and garbage").await;
    listings(m).await;
    multipart_uploads(m).await;
    counters_match(m, "multipart uploads").await;
    keys_grants_and_nodes(m).await;
    node_lifecycle_jobs_and_recodes(m).await;
    counters_match(m, "node lifecycle and recodes").await;
    packed_segments(m).await;
    counters_match(m, "packed segments").await;
    access_settings_and_conditional_deletes(m).await;
    counters_match(m, "conditional deletes").await;
    super::stamp_conformance::stamped_writes(m).await;
    counters_match(m, "stamped writes").await;
    super::version_conformance::versions_and_delete_markers(m).await;
    counters_match(m, "versions and delete markers").await;
    super::version_conformance::object_lock(m).await;
    super::version_conformance::noncurrent_versions_are_rewritten_in_place(m).await;
    counters_match(m, "object lock and rewrites").await;
    super::journal_conformance::the_journal_records_history_and_restores_it(m).await;
    counters_match(m, "journal restores").await;
    super::counter_conformance::counters_follow_the_objects(m).await;
}

/// Bucket settings and object ACLs are stored as given and read back; conditional deletes
/// delete only what meets their condition and leave a missing key alone.
pub async fn access_settings_and_conditional_deletes(m: &dyn Metadata) {
    use super::{Acl, AclGrant, BucketSetting, CorsRule, DeleteCondition, Grantee, Permission};
    m.create_bucket(bucket("cfg")).await.unwrap();
    let acl = Acl {
        owner: Some("owner-key".into()),
        grants: vec![AclGrant {
            grantee: Grantee::AllUsers,
            permission: Permission::Read,
        }],
    };
    let b = m
        .set_bucket_setting("cfg".into(), BucketSetting::Acl(acl.clone()))
        .await
        .unwrap();
    assert_eq!(b.acl, Some(acl.clone()));
    let rule = CorsRule {
        allowed_origins: vec!["*".into()],
        allowed_methods: vec!["GET".into()],
        ..Default::default()
    };
    m.set_bucket_setting("cfg".into(), BucketSetting::Cors(Some(vec![rule.clone()])))
        .await
        .unwrap();
    m.set_bucket_setting("cfg".into(), BucketSetting::Policy(Some("{}".into())))
        .await
        .unwrap();
    let b = m.bucket("cfg".into()).await.unwrap().unwrap();
    assert_eq!(
        (b.cors, b.policy.as_deref()),
        (Some(vec![rule]), Some("{}"))
    );
    assert_eq!(b.acl, Some(acl.clone()), "one setting leaves the others");
    m.set_bucket_setting("cfg".into(), BucketSetting::Policy(None))
        .await
        .unwrap();
    assert!(m
        .bucket("cfg".into())
        .await
        .unwrap()
        .unwrap()
        .policy
        .is_none());
    assert!(matches!(
        m.set_bucket_setting("cfg-none".into(), BucketSetting::Cors(None))
            .await,
        Err(MetaError::NoSuchBucket(_))
    ));
    // Object ACLs.
    let o = object("cfg", "k", 10);
    put(m, o.clone(), Precondition::None).await.unwrap();
    m.set_object_acl("cfg".into(), "k".into(), acl.clone())
        .await
        .unwrap();
    let got = m.object("cfg".into(), "k".into()).await.unwrap().unwrap();
    assert_eq!((got.acl, got.version), (Some(acl.clone()), o.version));
    assert!(matches!(
        m.set_object_acl("cfg".into(), "none".into(), acl).await,
        Err(MetaError::NoSuchKey { .. })
    ));
    // Conditional deletes.
    let wrong = DeleteCondition {
        etag: Some("nope".into()),
        ..Default::default()
    };
    assert!(matches!(
        m.delete_object_if("cfg".into(), "k".into(), wrong.clone())
            .await,
        Err(MetaError::PreconditionFailed)
    ));
    assert!(m.object("cfg".into(), "k".into()).await.unwrap().is_some());
    let right = DeleteCondition {
        etag: Some(format!("\"{}\"", o.etag)),
        size: Some(o.size),
        last_modified_secs: Some((o.last_modified_ms / 1000) as i64),
    };
    let gone = m
        .delete_object_if("cfg".into(), "k".into(), right)
        .await
        .unwrap();
    assert_eq!(gone.removed.map(|g| g.version), Some(o.version));
    assert!(m
        .delete_object_if("cfg".into(), "k".into(), wrong)
        .await
        .unwrap()
        .removed
        .is_none());
    m.delete_bucket("cfg".into()).await.unwrap();
    clear_garbage(m).await;
}

/// The names of all buckets, in the order listed.
pub async fn bucket_names(m: &dyn Metadata) -> Vec<String> {
    m.buckets()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect()
}

/// Creating twice, listing in name order, deleting only empty buckets.
pub async fn buckets(m: &dyn Metadata) {
    assert!(
        m.create_bucket(bucket("bk-b")).await.unwrap(),
        "first create"
    );
    assert!(
        !m.create_bucket(bucket("bk-b")).await.unwrap(),
        "creating an existing bucket changes nothing"
    );
    assert!(m.create_bucket(bucket("bk-a")).await.unwrap());
    assert_eq!(
        bucket_names(m).await,
        ["bk-a", "bk-b"],
        "buckets in name order"
    );
    put(m, object("bk-b", "k", 1), Precondition::None)
        .await
        .unwrap();
    assert!(
        matches!(
            m.delete_bucket("bk-b".into()).await,
            Err(MetaError::BucketNotEmpty(_))
        ),
        "a bucket with objects is not deleted"
    );
    assert!(m.bucket("bk-b".into()).await.unwrap().is_some());
    assert!(matches!(
        m.delete_bucket("bk-none".into()).await,
        Err(MetaError::NoSuchBucket(_))
    ));
    m.delete_object("bk-b".into(), "k".into()).await.unwrap();
    m.delete_bucket("bk-b".into()).await.unwrap();
    assert!(
        m.bucket("bk-b".into()).await.unwrap().is_none(),
        "empty bucket deleted"
    );
    m.delete_bucket("bk-a".into()).await.unwrap();
}

/// The last commit wins, the replaced version becomes garbage, conditions are checked at the
/// commit, and commits to a missing bucket are refused.
pub async fn commits_overwrites_and_conditions(m: &dyn Metadata) {
    m.create_bucket(bucket("cm")).await.unwrap();
    let first = object("cm", "key", 10);
    let committed = put(m, first.clone(), Precondition::Absent).await.unwrap();
    assert_eq!(committed.version, first.version);
    assert_eq!(
        committed.seq, None,
        "an unversioned bucket numbers no versions"
    );
    assert!(
        matches!(
            put(m, object("cm", "key", 11), Precondition::Absent).await,
            Err(MetaError::PreconditionFailed)
        ),
        "If-None-Match: * on an existing key"
    );
    assert!(matches!(
        put(
            m,
            object("cm", "key", 12),
            Precondition::ETag("nope".into())
        )
        .await,
        Err(MetaError::PreconditionFailed)
    ));
    assert_eq!(
        version_of(m, "cm", "key").await,
        Some(first.version),
        "refused commits change nothing"
    );
    let second = object("cm", "key", 13);
    put(m, second.clone(), Precondition::ETag(first.etag.clone()))
        .await
        .unwrap();
    assert_eq!(version_of(m, "cm", "key").await, Some(second.version));
    assert!(
        garbage_versions(m).await.contains(&first.version),
        "the replaced version's shards are garbage"
    );
    // If-None-Match with an ETag, If-Match: *, and both headers together.
    let refused = [
        Precondition::NotETag(second.etag.clone()),
        Precondition::Both(
            Box::new(Precondition::Exists),
            Box::new(Precondition::NotETag(second.etag.clone())),
        ),
        Precondition::Both(
            Box::new(Precondition::ETag(second.etag.clone())),
            Box::new(Precondition::Absent),
        ),
    ];
    for cond in refused {
        assert!(
            matches!(
                put(m, object("cm", "key", 14), cond.clone()).await,
                Err(MetaError::PreconditionFailed)
            ),
            "{cond:?}"
        );
    }
    assert_eq!(version_of(m, "cm", "key").await, Some(second.version));
    assert!(matches!(
        put(m, object("cm", "absent", 15), Precondition::Exists).await,
        Err(MetaError::PreconditionFailed)
    ));
    let third = object("cm", "key", 16);
    let both = Precondition::Both(
        Box::new(Precondition::Exists),
        Box::new(Precondition::NotETag("other".into())),
    );
    put(m, third.clone(), both).await.unwrap();
    assert_eq!(version_of(m, "cm", "key").await, Some(third.version));
    let fresh = object("cm", "fresh", 17);
    put(m, fresh.clone(), Precondition::NotETag("any".into()))
        .await
        .unwrap();
    assert_eq!(version_of(m, "cm", "fresh").await, Some(fresh.version));
    m.delete_object("cm".into(), "fresh".into()).await.unwrap();
    let second = third;
    assert!(matches!(
        put(m, object("cm-none", "key", 1), Precondition::None).await,
        Err(MetaError::NoSuchBucket(_))
    ));
    assert_eq!(
        m.lookup("cm".into(), "key".into())
            .await
            .unwrap()
            .map(|o| o.version),
        Some(second.version)
    );
    assert!(m
        .lookup("cm".into(), "other".into())
        .await
        .unwrap()
        .is_none());
    assert!(matches!(
        m.lookup("cm-none".into(), "key".into()).await,
        Err(MetaError::NoSuchBucket(_))
    ));
    let gone = m
        .delete_object("cm".into(), "key".into())
        .await
        .unwrap()
        .removed
        .expect("deleted");
    assert_eq!(gone.version, second.version);
    assert!(m.object("cm".into(), "key".into()).await.unwrap().is_none());
    assert!(garbage_versions(m).await.contains(&second.version));
    assert!(
        m.delete_object("cm".into(), "key".into())
            .await
            .unwrap()
            .removed
            .is_none(),
        "deleting again is a no-op"
    );
    m.delete_bucket("cm".into()).await.unwrap();
    clear_garbage(m).await;
    assert!(
        garbage_versions(m).await.is_empty(),
        "collected garbage is gone"
    );
}

/// A PUT in flight is recorded until it commits or aborts; an abort makes its shards garbage.
pub async fn in_flight_records_and_garbage(m: &dyn Metadata) {
    m.create_bucket(bucket("fl")).await.unwrap();
    let done = object("fl", "a", 5);
    let set = done.parts[0].shard_set("fl", "a");
    m.begin_put(done.version, set.clone()).await.unwrap();
    assert!(m.pending_versions().await.unwrap().contains(&done.version));
    m.commit_put(done.clone(), Precondition::None)
        .await
        .unwrap();
    assert!(
        !m.pending_versions().await.unwrap().contains(&done.version),
        "the commit removes the in-flight record"
    );
    m.abort_put(done.version, set.clone()).await.unwrap();
    assert!(
        !garbage_versions(m).await.contains(&done.version),
        "an abort after the commit (its answer lost) changes nothing"
    );
    // An expired in-flight record fences its commit off.
    let late = object("fl", "late", 5);
    let lset = late.parts[0].shard_set("fl", "late");
    m.begin_put(late.version, lset.clone()).await.unwrap();
    // `pending_owners` reads local state, which on a replicated follower may lag the
    // acknowledged write by a heartbeat.
    let mut owners = m.pending_owners().await.unwrap();
    for _ in 0..100 {
        if !owners.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        owners = m.pending_owners().await.unwrap();
    }
    let (&owner, &n) = owners
        .iter()
        .next()
        .expect("one writer has a record in flight");
    assert_eq!(n, 1);
    assert_eq!(
        m.expire_pending(Some(owner + 1), u64::MAX).await.unwrap(),
        0,
        "another coordinator's expiry leaves the record"
    );
    assert_eq!(
        m.expire_pending(Some(owner), lset.since_ms).await.unwrap(),
        0,
        "records written at or after the cutoff stay"
    );
    assert_eq!(m.expire_pending(Some(owner), u64::MAX).await.unwrap(), 1);
    assert!(
        matches!(
            m.commit_put(late.clone(), Precondition::None).await,
            Err(MetaError::Fenced(_))
        ),
        "a commit whose in-flight record expired is refused"
    );
    assert!(
        m.object("fl".into(), "late".into())
            .await
            .unwrap()
            .is_none(),
        "the fenced write is not visible"
    );
    assert!(
        garbage_versions(m).await.contains(&late.version),
        "an expired write's shards are garbage"
    );
    clear_garbage(m).await;
    let failed = object("fl", "b", 5);
    let set = failed.parts[0].shard_set("fl", "b");
    m.begin_put(failed.version, set.clone()).await.unwrap();
    m.abort_put(failed.version, set.clone()).await.unwrap();
    assert!(!m
        .pending_versions()
        .await
        .unwrap()
        .contains(&failed.version));
    assert!(
        garbage_versions(m).await.contains(&failed.version),
        "an aborted PUT's shards are garbage"
    );
    let (pending, garbage) = m.pending_and_garbage().await.unwrap();
    assert_eq!(pending, 0);
    assert!(garbage >= 1);
    // A repair: new locations are committed only while the object is still that version.
    let record = format!("{}.r1", done.version);
    let moved = vec![(0u16, node(9))];
    let rset = ShardSet {
        bucket: "fl".into(),
        key: "a".into(),
        shards: moved.clone(),
        since_ms: now_ms(),
        owner: 0,
    };
    m.begin_pending(record.clone(), rset.clone()).await.unwrap();
    assert!(m
        .commit_repair(record.clone(), rset.clone(), done.version, moved.clone())
        .await
        .unwrap());
    let now = m.object("fl".into(), "a".into()).await.unwrap().unwrap();
    assert_eq!(now.parts[0].shards[0].node, Some(node(9)), "shard moved");
    let stale = format!("{}.r2", done.version);
    m.begin_pending(stale.clone(), rset.clone()).await.unwrap();
    m.delete_object("fl".into(), "a".into()).await.unwrap();
    assert!(
        !m.commit_repair(stale.clone(), rset.clone(), done.version, moved.clone())
            .await
            .unwrap(),
        "a repair of a deleted object is refused"
    );
    assert!(
        m.object("fl".into(), "a".into()).await.unwrap().is_none(),
        "no resurrection"
    );
    clear_garbage(m).await;
    m.delete_bucket("fl".into()).await.unwrap();
}

/// Prefix, delimiter, start-after and paging of listings; the scan of all objects.
pub async fn listings(m: &dyn Metadata) {
    m.create_bucket(bucket("ls")).await.unwrap();
    m.create_bucket(bucket("ls2")).await.unwrap();
    let keys = ["a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"];
    for k in keys {
        put(m, object("ls", k, 1), Precondition::None)
            .await
            .unwrap();
    }
    put(m, object("ls2", "z", 1), Precondition::None)
        .await
        .unwrap();
    let names = |l: &Listing| -> Vec<String> { l.objects.iter().map(|o| o.key.clone()).collect() };
    let all = m
        .list("ls".into(), "".into(), None, None, 1000)
        .await
        .unwrap();
    assert_eq!(names(&all), keys, "every key, in order, only this bucket");
    assert!(!all.truncated && all.next.is_none());
    let rolled = m
        .list("ls".into(), "".into(), None, Some("/".into()), 1000)
        .await
        .unwrap();
    assert_eq!(names(&rolled), ["b", "d"]);
    assert_eq!(rolled.prefixes, ["a/", "c/"], "common prefixes rolled up");
    let under_a = m
        .list("ls".into(), "a/".into(), None, Some("/".into()), 1000)
        .await
        .unwrap();
    assert_eq!(names(&under_a), ["a/1", "a/2"]);
    assert_eq!(under_a.prefixes, ["a/b/"]);
    // Pages of two entries (objects and prefixes alike), resumed after `next`.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = m
            .list("ls".into(), "".into(), after.clone(), Some("/".into()), 2)
            .await
            .unwrap();
        seen.extend(names(&page));
        seen.extend(page.prefixes.clone());
        if !page.truncated {
            break;
        }
        after = page.next.clone();
        assert!(after.is_some(), "a truncated page says where to go on");
    }
    seen.sort();
    assert_eq!(seen, ["a/", "b", "c/", "d"], "pages cover everything once");
    let mut scanned = Vec::new();
    let mut from: Option<Vec<u8>> = None;
    loop {
        let (page, next) = m.objects_after(from.take(), 3).await.unwrap();
        scanned.extend(page.into_iter().map(|o| format!("{}/{}", o.bucket, o.key)));
        match next {
            Some(n) => from = Some(n),
            None => break,
        }
    }
    assert_eq!(
        scanned.len(),
        keys.len() + 1,
        "objects_after visits all: {scanned:?}"
    );
    assert!(
        scanned.windows(2).all(|w| w[0] < w[1]),
        "in order: {scanned:?}"
    );
    for k in keys {
        m.delete_object("ls".into(), k.into()).await.unwrap();
    }
    m.delete_object("ls2".into(), "z".into()).await.unwrap();
    m.delete_bucket("ls".into()).await.unwrap();
    m.delete_bucket("ls2".into()).await.unwrap();
    clear_garbage(m).await;
}

fn upload(b: &str, k: &str) -> Upload {
    Upload {
        bucket: b.into(),
        key: k.into(),
        id: ObjectVersion::new(),
        initiated_ms: now_ms(),
        ec: EcSpec { k: 2, m: 1 },
        content_type: None,
        user_meta: BTreeMap::new(),
        headers: BTreeMap::new(),
        checksum_algorithm: None,
        checksum_type: None,
        owner: None,
        acl: None,
        tags: BTreeMap::new(),
        retention: None,
        legal_hold: false,
    }
}

/// Parts replace parts, completion publishes the chosen parts and makes the rest garbage,
/// aborts and deleted buckets take their uploads with them.
pub async fn multipart_uploads(m: &dyn Metadata) {
    m.create_bucket(bucket("mp")).await.unwrap();
    let u = upload("mp", "obj");
    m.create_upload(u.clone()).await.unwrap();
    assert!(matches!(
        m.create_upload(upload("mp-none", "obj")).await,
        Err(MetaError::NoSuchBucket(_))
    ));
    assert_eq!(m.upload("mp".into(), "obj".into(), u.id).await.unwrap(), u);
    assert!(matches!(
        m.upload("mp".into(), "obj".into(), ObjectVersion::new())
            .await,
        Err(MetaError::NoSuchUpload(_))
    ));
    let part = |n: u32| {
        let mut p = object("mp", "obj", 100).parts.remove(0);
        p.number = n;
        p
    };
    let (p1, p2, p2b, p3) = (part(1), part(2), part(2), part(3));
    for p in [&p1, &p2, &p2b, &p3] {
        put_part(m, "mp".into(), "obj".into(), u.id, p.clone())
            .await
            .unwrap();
    }
    let parts = m.upload_parts(u.id).await.unwrap();
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.number, p.version))
            .collect::<Vec<_>>(),
        [(1, p1.version), (2, p2b.version), (3, p3.version)],
        "parts in number order, a part uploaded again replaces the old one"
    );
    // The replaced upload stays nameable (a retry that finished first is not lost).
    assert_eq!(
        m.superseded_parts(u.id)
            .await
            .unwrap()
            .iter()
            .map(|p| p.version)
            .collect::<Vec<_>>(),
        [p2.version]
    );
    assert!(!garbage_versions(m).await.contains(&p2.version));
    assert!(m
        .upload_references(u.id, p2.version, 0, node(0))
        .await
        .unwrap());
    assert!(m
        .upload_references(u.id, p3.version, 0, node(0))
        .await
        .unwrap());
    let page = m
        .uploads("mp".into(), "".into(), None, None, 10)
        .await
        .unwrap();
    assert_eq!((page.uploads.len(), page.truncated), (1, false));
    // Rolled up at "/", one entry a page: a common prefix counts once however many uploads
    // are under it, and the next page starts past it.
    let mut rolled = Vec::new();
    for k in ["roll/a/1", "roll/a/2", "roll/a/3", "roll/b", "roll/c/x"] {
        let u = upload("mp", k);
        m.create_upload(u.clone()).await.unwrap();
        rolled.push(u);
    }
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = m
            .uploads(
                "mp".into(),
                "roll/".into(),
                Some("/".into()),
                after.clone(),
                1,
            )
            .await
            .unwrap();
        seen.extend(page.prefixes.clone());
        seen.extend(page.uploads.iter().map(|u| u.key.clone()));
        if !page.truncated {
            break;
        }
        after = page.next.clone();
        assert!(after.is_some(), "a truncated page says where to go on");
    }
    assert_eq!(
        seen,
        ["roll/a/", "roll/b", "roll/c/"],
        "one entry per prefix, in order"
    );
    for u in &rolled {
        m.abort_upload(u.bucket.clone(), u.key.clone(), u.id)
            .await
            .unwrap();
    }
    // Complete with part 1 and the first upload of part 2: part 3 and the later upload of
    // part 2 are left out and become garbage.
    let mut obj = object("mp", "obj", 200);
    obj.parts = vec![p1.clone(), p2.clone()];
    obj.upload = Some(u.id);
    m.complete_upload(obj.clone(), u.id, Precondition::Absent)
        .await
        .unwrap();
    let got = m.object("mp".into(), "obj".into()).await.unwrap().unwrap();
    assert_eq!(got.parts.len(), 2);
    let garbage = garbage_versions(m).await;
    assert!(garbage.contains(&p3.version), "the part left out");
    assert!(
        garbage.contains(&p2b.version),
        "the upload of part 2 not named"
    );
    assert!(!garbage.contains(&p2.version), "the upload of part 2 named");
    assert!(m.superseded_parts(u.id).await.unwrap().is_empty());
    assert!(
        matches!(
            m.upload("mp".into(), "obj".into(), u.id).await,
            Err(MetaError::NoSuchUpload(_))
        ),
        "a completed upload is gone"
    );
    // ... but its completion is remembered (for a retried Complete) until it expires.
    let done = m.completed_upload(u.id).await.unwrap().expect("remembered");
    assert_eq!((done.bucket.as_str(), done.key.as_str()), ("mp", "obj"));
    assert_eq!(done.etag, obj.etag);
    assert_eq!(
        done.parts,
        vec![(p1.number, p1.etag.clone()), (p2.number, p2.etag.clone())]
    );
    assert_eq!(m.expire_completed(done.completed_ms).await.unwrap(), 0);
    assert_eq!(m.expire_completed(done.completed_ms + 1).await.unwrap(), 1);
    assert!(m.completed_upload(u.id).await.unwrap().is_none());
    // An aborted upload's parts are garbage; a bucket's deletion aborts what is left.
    let a = upload("mp", "other");
    m.create_upload(a.clone()).await.unwrap();
    let pa = part(1);
    put_part(m, "mp".into(), "other".into(), a.id, pa.clone())
        .await
        .unwrap();
    m.abort_upload("mp".into(), "other".into(), a.id)
        .await
        .unwrap();
    assert!(garbage_versions(m).await.contains(&pa.version));
    assert!(m.upload_parts(a.id).await.unwrap().is_empty());
    let old = upload("mp", "left");
    m.create_upload(old.clone()).await.unwrap();
    assert_eq!(
        m.uploads_older_than(now_ms() + 1, 10).await.unwrap().len(),
        1,
        "uploads past their expiry are found"
    );
    m.delete_object("mp".into(), "obj".into()).await.unwrap();
    m.delete_bucket("mp".into()).await.unwrap();
    assert!(matches!(
        m.upload("mp".into(), "left".into(), old.id).await,
        Err(MetaError::NoSuchUpload(_))
    ));
    clear_garbage(m).await;
}

/// Access keys, grants (removed with their key) and node registrations.
pub async fn keys_grants_and_nodes(m: &dyn Metadata) {
    let k = KeyRecord {
        id: "AKID1".into(),
        secret: "s".into(),
        name: "one".into(),
        created_ms: now_ms(),
    };
    m.create_key(k.clone()).await.unwrap();
    assert!(
        m.create_key(k.clone()).await.is_err(),
        "a key id is created once"
    );
    assert_eq!(m.key("AKID1".into()).await.unwrap(), Some(k.clone()));
    m.create_bucket(bucket("gr")).await.unwrap();
    let g = Grant {
        read: true,
        write: false,
        owner: false,
    };
    let b = m.set_grant("gr".into(), "AKID1".into(), g).await.unwrap();
    assert_eq!(b.grant_of("AKID1"), g);
    assert!(m.delete_key("AKID1".into()).await.unwrap());
    assert!(
        !m.delete_key("AKID1".into()).await.unwrap(),
        "deleting again: false"
    );
    assert!(m.keys().await.unwrap().is_empty());
    assert_eq!(
        m.bucket("gr".into())
            .await
            .unwrap()
            .unwrap()
            .grant_of("AKID1"),
        Grant::default(),
        "the key's grants went with it"
    );
    m.delete_bucket("gr".into()).await.unwrap();
    let n = NodeRecord {
        id: node(1),
        addr: "127.0.0.1:1".into(),
        zone: "z".into(),
    };
    m.put_node(n.clone()).await.unwrap();
    let moved = NodeRecord {
        addr: "127.0.0.1:2".into(),
        ..n.clone()
    };
    m.put_node(moved.clone()).await.unwrap();
    assert_eq!(
        m.nodes().await.unwrap(),
        [moved],
        "a node re-registers in place"
    );
}

/// Node states, which records name a node, removing one (its garbage entries go, it stays
/// `removed`), stored jobs, changing a bucket's code, and a commit fenced on a version.
pub async fn node_lifecycle_jobs_and_recodes(m: &dyn Metadata) {
    m.create_bucket(bucket("lc")).await.unwrap();
    for i in 0..4 {
        let rec = NodeRecord {
            id: node(i),
            addr: format!("127.0.0.1:{}", 100 + i as u16),
            zone: "z".into(),
        };
        m.put_node(rec).await.unwrap();
    }
    m.set_node_state(node(3), Some("draining".into()))
        .await
        .unwrap();
    let state_of = |n: NodeId| async move { m.node_states().await.unwrap().get(&n).cloned() };
    assert_eq!(state_of(node(3)).await.as_deref(), Some("draining"));
    assert_eq!(state_of(node(2)).await, None);
    m.set_node_state(node(3), None).await.unwrap();
    assert_eq!(state_of(node(3)).await, None, "a state clears");
    // `object` places shards on nodes 0..3: node 3 holds nothing.
    let first = object("lc", "a", 10);
    put(m, first.clone(), Precondition::None).await.unwrap();
    assert!(m.references_node(node(0)).await.unwrap());
    assert!(!m.references_node(node(3)).await.unwrap());
    // An in-flight write names its nodes too.
    let mut inflight = object("lc", "b", 10).parts[0].shard_set("lc", "b");
    inflight.shards[0].1 = node(3);
    let v = ObjectVersion::new();
    m.begin_put(v, inflight.clone()).await.unwrap();
    assert!(m.references_node(node(3)).await.unwrap());
    m.abort_put(v, inflight).await.unwrap();
    assert!(
        !m.references_node(node(3)).await.unwrap(),
        "garbage is not a reference"
    );
    // Overwriting makes garbage on nodes 0..3; removing node 0 drops its entries.
    clear_garbage(m).await;
    put(m, object("lc", "a", 11), Precondition::None)
        .await
        .unwrap();
    let on = |g: &[(String, ObjectVersion, ShardSet)], n: NodeId| {
        g.iter()
            .flat_map(|(_, _, s)| s.shards.iter())
            .filter(|(_, x)| *x == n)
            .count()
    };
    let g = m.garbage(100).await.unwrap();
    assert_eq!(on(&g, node(0)), 1);
    assert_eq!(m.remove_node(node(0)).await.unwrap(), 1);
    let g = m.garbage(100).await.unwrap();
    assert_eq!(
        on(&g, node(0)),
        0,
        "a removed node's garbage entries are dropped"
    );
    assert_eq!(on(&g, node(1)), 1, "other nodes' entries stay");
    assert!(m.nodes().await.unwrap().iter().all(|n| n.id != node(0)));
    assert_eq!(
        state_of(node(0)).await.as_deref(),
        Some("removed"),
        "a removed node stays known as removed"
    );
    // Jobs.
    let spec = serde_json::json!({"kind": "rebalance", "band": 0.1});
    m.set_job("rebalance".into(), Some(spec.clone()))
        .await
        .unwrap();
    assert_eq!(
        m.jobs().await.unwrap(),
        BTreeMap::from([("rebalance".to_string(), spec)])
    );
    m.set_job("rebalance".into(), None).await.unwrap();
    assert!(m.jobs().await.unwrap().is_empty());
    // A bucket's code changes; a commit fenced on a version loses to an overwrite.
    let b = m
        .set_bucket_ec("lc".into(), EcSpec { k: 3, m: 2 })
        .await
        .unwrap();
    assert_eq!(b.ec, EcSpec { k: 3, m: 2 });
    assert_eq!(
        m.bucket("lc".into()).await.unwrap().unwrap().ec,
        EcSpec { k: 3, m: 2 }
    );
    let current = m.object("lc".into(), "a".into()).await.unwrap().unwrap();
    let recoded = object("lc", "a", 11);
    put(m, recoded.clone(), Precondition::Version(current.version))
        .await
        .unwrap();
    assert_eq!(version_of(m, "lc", "a").await, Some(recoded.version));
    let stale = object("lc", "a", 11);
    assert!(
        matches!(
            put(m, stale, Precondition::Version(current.version)).await,
            Err(MetaError::PreconditionFailed)
        ),
        "a commit fenced on a replaced version is refused"
    );
    assert_eq!(version_of(m, "lc", "a").await, Some(recoded.version));
    m.delete_object("lc".into(), "a".into()).await.unwrap();
    assert!(
        put(
            m,
            object("lc", "a", 11),
            Precondition::Version(recoded.version)
        )
        .await
        .is_err(),
        "nor resurrects a deleted key"
    );
    assert_eq!(version_of(m, "lc", "a").await, None);
    // Leave the store as found (the suite may run again on the same store).
    for i in 0..4 {
        m.remove_node(node(i)).await.unwrap();
        m.set_node_state(node(i), None).await.unwrap();
    }
    clear_garbage(m).await;
    m.delete_bucket("lc".into()).await.unwrap();
}

pub async fn packed_segments(m: &dyn Metadata) {
    m.create_bucket(bucket("pk")).await.unwrap();
    clear_garbage(m).await;
    // A segment commits with its objects, each checked on its own.
    put(m, object("pk", "taken", 5), Precondition::None)
        .await
        .unwrap();
    let (seg, mut entries) = segment("pk", &["a", "b", "taken", "a"], &[10, 20, 30, 40]);
    entries[2].cond = Precondition::Absent;
    entries.push(PackEntry {
        obj: {
            let mut o = entries[0].obj.clone();
            o.bucket = "no-such-bucket".into();
            o
        },
        cond: Precondition::None,
    });
    let out = commit_segment(m, &seg, entries.clone()).await;
    assert!(out[0].is_ok(), "a new key");
    assert!(out[1].is_ok());
    assert!(
        matches!(out[2], Err(MetaError::PreconditionFailed)),
        "If-None-Match on an existing key fails alone: {:?}",
        out[2]
    );
    assert_eq!(
        out[3].as_ref().map(|o| o.size).ok(),
        Some(40),
        "a key twice in one segment: the later entry replaces the earlier"
    );
    assert!(matches!(out[4], Err(MetaError::NoSuchBucket(_))));
    let a = m.object("pk".into(), "a".into()).await.unwrap().unwrap();
    assert_eq!((a.size, a.packed.as_ref().unwrap().offset), (40, 60));
    assert_eq!(
        m.object("pk".into(), "taken".into())
            .await
            .unwrap()
            .unwrap()
            .size,
        5,
        "the failed entry changed nothing"
    );
    assert_eq!(
        fill_of(m, &seg).await,
        Some(Fill {
            objects: 5,
            bytes: 110,
            live_objects: 2,
            live_bytes: 60
        }),
        "only committed, unreplaced objects live"
    );
    assert!(
        !garbage_versions(m).await.contains(&seg.version),
        "the segment is not garbage"
    );
    // Overwriting a packed object with a coded one, and deleting one, count dead space.
    put(m, object("pk", "b", 7), Precondition::None)
        .await
        .unwrap();
    assert_eq!(fill_of(m, &seg).await.unwrap().live_bytes, 40);
    // Compaction moves "a" to a new segment, unless it changed meanwhile.
    let (seg2, mut moved) = segment("pk", &["a"], &[40]);
    moved[0].obj.version = a.version;
    moved[0].cond = Precondition::Moved {
        version: a.version,
        from: seg.version,
    };
    let stale = PackEntry {
        cond: Precondition::Moved {
            version: ObjectVersion::new(),
            from: seg.version,
        },
        ..moved[0].clone()
    };
    let out = commit_segment(m, &seg2, vec![stale, moved[0].clone()]).await;
    assert!(
        matches!(out[0], Err(MetaError::PreconditionFailed)),
        "a move of another version fails"
    );
    assert!(out[1].is_ok(), "{:?}", out[1]);
    assert_eq!(fill_of(m, &seg).await, None, "the emptied segment is gone");
    assert!(
        garbage_versions(m).await.contains(&seg.version),
        "and its shards are garbage"
    );
    let a2 = m.object("pk".into(), "a".into()).await.unwrap().unwrap();
    assert_eq!(a2.version, a.version, "a move keeps the version");
    assert_eq!(a2.packed.unwrap().segment, seg2.version);
    let again = commit_segment(m, &segment("pk", &["x"], &[1]).0, moved.clone()).await;
    assert!(
        matches!(again[0], Err(MetaError::PreconditionFailed)),
        "a second move out of the old segment fails"
    );
    // Deleting the last object of a segment makes it garbage.
    clear_garbage(m).await;
    m.delete_object("pk".into(), "a".into()).await.unwrap();
    assert_eq!(fill_of(m, &seg2).await, None);
    assert!(garbage_versions(m).await.contains(&seg2.version));
    // A segment none of whose entries commit is garbage at once (the segment `again` was
    // committed with is too).
    let (seg3, mut lost) = segment("pk", &["taken"], &[3]);
    lost[0].cond = Precondition::Absent;
    let out = commit_segment(m, &seg3, lost).await;
    assert!(out[0].is_err());
    assert_eq!(fill_of(m, &seg3).await, None);
    assert!(garbage_versions(m).await.contains(&seg3.version));
    // A commit whose in-flight record is gone is fenced off entirely.
    let (seg4, entries) = segment("pk", &["late"], &[3]);
    assert!(matches!(
        m.commit_segment(seg4, entries).await,
        Err(MetaError::Fenced(_))
    ));
    assert_eq!(version_of(m, "pk", "late").await, None);
    // A commit that carries the next segment's in-flight record: the record is made with
    // the commit, and also when the commit is fenced off.
    let (seg5, entries) = segment("pk", &["carried"], &[3]);
    let (seg6, _) = segment("pk", &["next"], &[3]);
    let set5 = seg5.parts[0].shard_set(SEGMENTS, &seg5.key);
    let set6 = seg6.parts[0].shard_set(SEGMENTS, &seg6.key);
    m.begin_put(seg5.version, set5).await.unwrap();
    let out = m
        .commit_segment_and_begin(seg5.clone(), entries.clone(), seg6.version, set6.clone())
        .await
        .unwrap();
    assert!(out[0].is_ok(), "{:?}", out[0]);
    let pending = m.pending_versions().await.unwrap();
    assert!(
        pending.contains(&seg6.version),
        "the carried record is made"
    );
    assert!(
        !pending.contains(&seg5.version),
        "the carrier's record goes"
    );
    let (seg7, _) = segment("pk", &["after"], &[3]);
    let set7 = seg7.parts[0].shard_set(SEGMENTS, &seg7.key);
    assert!(matches!(
        m.commit_segment_and_begin(seg5.clone(), entries, seg7.version, set7.clone())
            .await,
        Err(MetaError::Fenced(_))
    ));
    assert!(
        m.pending_versions().await.unwrap().contains(&seg7.version),
        "a fenced carrier's record is made all the same"
    );
    m.abort_put(seg6.version, set6).await.unwrap();
    m.abort_put(seg7.version, set7).await.unwrap();
    m.delete_object("pk".into(), "carried".into())
        .await
        .unwrap();
    // Leave the store as found.
    for k in ["taken", "b"] {
        m.delete_object("pk".into(), k.into()).await.unwrap();
    }
    clear_garbage(m).await;
    m.delete_bucket("pk".into()).await.unwrap();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Local, MetaStore};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_metadata_conforms() {
        run_all(&*Local::serve(MetaStore::in_memory())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rocksdb_metadata_conforms() {
        let dir = tempfile::tempdir().unwrap();
        run_all(&*Local::serve(MetaStore::open(dir.path()).unwrap())).await;
    }
}
