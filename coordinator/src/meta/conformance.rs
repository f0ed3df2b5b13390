//! The metadata conformance suite: [`MetaStore`] on every [`super::kv::Kv`] must pass
//! [`run_all`] (the in-memory map and RocksDB today). Each check panics with a message naming
//! the rule it found broken.

use super::*;
use crate::error::ApiError;

/// Runs every check on `m`, which must be empty.
pub fn run_all(m: &MetaStore) {
    buckets(m);
    commits_overwrites_and_conditions(m);
    in_flight_records_and_garbage(m);
    listings(m);
    multipart_uploads(m);
    keys_grants_and_nodes(m);
}

fn node(i: u8) -> NodeId {
    format!("{i:016x}").parse().expect("a valid node id")
}

fn bucket(name: &str) -> BucketMeta {
    BucketMeta {
        name: name.into(),
        created_ms: now_ms(),
        ec: EcSpec { k: 2, m: 1 },
        owner: Some("owner-key".into()),
        grants: BTreeMap::new(),
    }
}

/// A one-part object of `size` bytes at a fresh version on nodes 0..3.
pub fn object(b: &str, k: &str, size: u64) -> ObjectMeta {
    let version = ObjectVersion::new();
    let part = Part {
        number: 1,
        version,
        size,
        etag: format!("{size:032x}"),
        ec: EcSpec { k: 2, m: 1 },
        piece: 1024,
        codec: "test".into(),
        shards: (0..3)
            .map(|i| ShardLoc {
                node: Some(node(i)),
                state: ShardState::Ok,
            })
            .collect(),
        checksums: BTreeMap::new(),
        written_ms: now_ms(),
    };
    ObjectMeta {
        bucket: b.into(),
        key: k.into(),
        version,
        size,
        etag: part.etag.clone(),
        parts: vec![part],
        manifest: None,
        upload: None,
        content_type: None,
        user_meta: BTreeMap::new(),
        headers: BTreeMap::new(),
        checksums: BTreeMap::new(),
        checksum_type: None,
        last_modified_ms: now_ms(),
    }
}

fn garbage_versions(m: &MetaStore) -> Vec<ObjectVersion> {
    m.garbage(10_000)
        .unwrap()
        .into_iter()
        .map(|(_, v, _)| v)
        .collect()
}

/// Creating twice, listing in name order, deleting only empty buckets.
pub fn buckets(m: &MetaStore) {
    assert!(m.create_bucket(&bucket("bk-b")).unwrap(), "first create");
    assert!(
        !m.create_bucket(&bucket("bk-b")).unwrap(),
        "creating an existing bucket changes nothing"
    );
    assert!(m.create_bucket(&bucket("bk-a")).unwrap());
    let names: Vec<String> = m.buckets().unwrap().into_iter().map(|b| b.name).collect();
    assert_eq!(names, ["bk-a", "bk-b"], "buckets in name order");
    m.commit_put(&object("bk-b", "k", 1), &Precondition::None)
        .unwrap();
    assert!(
        matches!(m.delete_bucket("bk-b"), Err(ApiError::BucketNotEmpty(_))),
        "a bucket with objects is not deleted"
    );
    assert!(m.bucket("bk-b").unwrap().is_some());
    assert!(matches!(
        m.delete_bucket("bk-none"),
        Err(ApiError::NoSuchBucket(_))
    ));
    m.delete_object("bk-b", "k").unwrap();
    m.delete_bucket("bk-b").unwrap();
    assert!(m.bucket("bk-b").unwrap().is_none(), "empty bucket deleted");
    m.delete_bucket("bk-a").unwrap();
}

/// The last commit wins, the replaced version becomes garbage, conditions are checked at the
/// commit, and commits to a missing bucket are refused.
pub fn commits_overwrites_and_conditions(m: &MetaStore) {
    m.create_bucket(&bucket("cm")).unwrap();
    let first = object("cm", "key", 10);
    assert!(m
        .commit_put(&first, &Precondition::Absent)
        .unwrap()
        .is_none());
    assert!(
        matches!(
            m.commit_put(&object("cm", "key", 11), &Precondition::Absent),
            Err(ApiError::PreconditionFailed)
        ),
        "If-None-Match: * on an existing key"
    );
    assert!(matches!(
        m.commit_put(&object("cm", "key", 12), &Precondition::ETag("nope".into())),
        Err(ApiError::PreconditionFailed)
    ));
    assert_eq!(
        m.object("cm", "key").unwrap().unwrap().version,
        first.version,
        "refused commits change nothing"
    );
    let second = object("cm", "key", 13);
    let replaced = m
        .commit_put(&second, &Precondition::ETag(first.etag.clone()))
        .unwrap()
        .expect("the first version is replaced");
    assert_eq!(replaced.version, first.version);
    assert_eq!(
        m.object("cm", "key").unwrap().unwrap().version,
        second.version
    );
    assert!(
        garbage_versions(m).contains(&first.version),
        "the replaced version's shards are garbage"
    );
    assert!(matches!(
        m.commit_put(&object("cm-none", "key", 1), &Precondition::None),
        Err(ApiError::NoSuchBucket(_))
    ));
    assert_eq!(
        m.lookup("cm", "key").unwrap().map(|o| o.version),
        Some(second.version)
    );
    assert!(m.lookup("cm", "other").unwrap().is_none());
    assert!(matches!(
        m.lookup("cm-none", "key"),
        Err(ApiError::NoSuchBucket(_))
    ));
    let gone = m.delete_object("cm", "key").unwrap().expect("deleted");
    assert_eq!(gone.version, second.version);
    assert!(m.object("cm", "key").unwrap().is_none());
    assert!(garbage_versions(m).contains(&second.version));
    assert!(
        m.delete_object("cm", "key").unwrap().is_none(),
        "deleting again is a no-op"
    );
    m.delete_bucket("cm").unwrap();
    for (record, _, _) in m.garbage(10_000).unwrap() {
        m.update_garbage(&record, None).unwrap();
    }
    assert!(garbage_versions(m).is_empty(), "collected garbage is gone");
}

/// A PUT in flight is recorded until it commits or aborts; an abort makes its shards garbage.
pub fn in_flight_records_and_garbage(m: &MetaStore) {
    m.create_bucket(&bucket("fl")).unwrap();
    let done = object("fl", "a", 5);
    let set = done.parts[0].shard_set("fl", "a");
    m.begin_put(done.version, &set).unwrap();
    assert!(m.pending_versions().unwrap().contains(&done.version));
    m.commit_put(&done, &Precondition::None).unwrap();
    assert!(
        !m.pending_versions().unwrap().contains(&done.version),
        "the commit removes the in-flight record"
    );
    let failed = object("fl", "b", 5);
    let set = failed.parts[0].shard_set("fl", "b");
    m.begin_put(failed.version, &set).unwrap();
    m.abort_put(failed.version, &set).unwrap();
    assert!(!m.pending_versions().unwrap().contains(&failed.version));
    assert!(
        garbage_versions(m).contains(&failed.version),
        "an aborted PUT's shards are garbage"
    );
    let (pending, garbage) = m.pending_and_garbage().unwrap();
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
    };
    m.begin_pending(&record, &rset).unwrap();
    assert!(m
        .commit_repair(&record, &rset, done.version, &moved)
        .unwrap());
    let now = m.object("fl", "a").unwrap().unwrap();
    assert_eq!(now.parts[0].shards[0].node, Some(node(9)), "shard moved");
    let stale = format!("{}.r2", done.version);
    m.begin_pending(&stale, &rset).unwrap();
    m.delete_object("fl", "a").unwrap();
    assert!(
        !m.commit_repair(&stale, &rset, done.version, &moved)
            .unwrap(),
        "a repair of a deleted object is refused"
    );
    assert!(m.object("fl", "a").unwrap().is_none(), "no resurrection");
    for (record, _, _) in m.garbage(10_000).unwrap() {
        m.update_garbage(&record, None).unwrap();
    }
    m.delete_bucket("fl").unwrap();
}

/// Prefix, delimiter, start-after and paging of listings; the scan of all objects.
pub fn listings(m: &MetaStore) {
    m.create_bucket(&bucket("ls")).unwrap();
    m.create_bucket(&bucket("ls2")).unwrap();
    let keys = ["a/1", "a/2", "a/b/3", "b", "c/x", "c/y", "d"];
    for k in keys {
        m.commit_put(&object("ls", k, 1), &Precondition::None)
            .unwrap();
    }
    m.commit_put(&object("ls2", "z", 1), &Precondition::None)
        .unwrap();
    let names = |l: &Listing| -> Vec<String> { l.objects.iter().map(|o| o.key.clone()).collect() };
    let all = m.list("ls", "", None, None, 1000).unwrap();
    assert_eq!(names(&all), keys, "every key, in order, only this bucket");
    assert!(!all.truncated && all.next.is_none());
    let rolled = m.list("ls", "", None, Some("/"), 1000).unwrap();
    assert_eq!(names(&rolled), ["b", "d"]);
    assert_eq!(rolled.prefixes, ["a/", "c/"], "common prefixes rolled up");
    let under_a = m.list("ls", "a/", None, Some("/"), 1000).unwrap();
    assert_eq!(names(&under_a), ["a/1", "a/2"]);
    assert_eq!(under_a.prefixes, ["a/b/"]);
    // Pages of two entries (objects and prefixes alike), resumed after `next`.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = m.list("ls", "", after.as_deref(), Some("/"), 2).unwrap();
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
    let mut from: Option<(String, String)> = None;
    loop {
        let page = m
            .objects_after(from.as_ref().map(|(b, k)| (b.as_str(), k.as_str())), 3)
            .unwrap();
        let Some(last) = page.last() else { break };
        from = Some((last.bucket.clone(), last.key.clone()));
        scanned.extend(page.into_iter().map(|o| format!("{}/{}", o.bucket, o.key)));
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
        m.delete_object("ls", k).unwrap();
    }
    m.delete_object("ls2", "z").unwrap();
    m.delete_bucket("ls").unwrap();
    m.delete_bucket("ls2").unwrap();
    for (record, _, _) in m.garbage(10_000).unwrap() {
        m.update_garbage(&record, None).unwrap();
    }
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
    }
}

/// Parts replace parts, completion publishes the chosen parts and makes the rest garbage,
/// aborts and deleted buckets take their uploads with them.
pub fn multipart_uploads(m: &MetaStore) {
    m.create_bucket(&bucket("mp")).unwrap();
    let u = upload("mp", "obj");
    m.create_upload(&u).unwrap();
    assert!(matches!(
        m.create_upload(&upload("mp-none", "obj")),
        Err(ApiError::NoSuchBucket(_))
    ));
    assert_eq!(m.upload("mp", "obj", u.id).unwrap(), u);
    assert!(matches!(
        m.upload("mp", "obj", ObjectVersion::new()),
        Err(ApiError::NoSuchUpload(_))
    ));
    let part = |n: u32| {
        let mut p = object("mp", "obj", 100).parts.remove(0);
        p.number = n;
        p
    };
    let (p1, p2, p2b, p3) = (part(1), part(2), part(2), part(3));
    for p in [&p1, &p2, &p2b, &p3] {
        m.commit_part("mp", "obj", u.id, p).unwrap();
    }
    let parts = m.upload_parts(u.id).unwrap();
    assert_eq!(
        parts
            .iter()
            .map(|p| (p.number, p.version))
            .collect::<Vec<_>>(),
        [(1, p1.version), (2, p2b.version), (3, p3.version)],
        "parts in number order, a part uploaded again replaces the old one"
    );
    assert!(
        garbage_versions(m).contains(&p2.version),
        "the replaced part"
    );
    assert!(m.upload_references(u.id, p3.version, 0, &node(0)).unwrap());
    let (list, truncated) = m.uploads("mp", "", None, 10).unwrap();
    assert_eq!((list.len(), truncated), (1, false));
    // Complete with parts 1 and 2: part 3 is left out and becomes garbage.
    let mut obj = object("mp", "obj", 200);
    obj.parts = vec![p1.clone(), p2b.clone()];
    obj.upload = Some(u.id);
    m.complete_upload(&obj, u.id, &Precondition::Absent)
        .unwrap();
    let got = m.object("mp", "obj").unwrap().unwrap();
    assert_eq!(got.parts.len(), 2);
    assert!(
        garbage_versions(m).contains(&p3.version),
        "the part left out"
    );
    assert!(
        matches!(m.upload("mp", "obj", u.id), Err(ApiError::NoSuchUpload(_))),
        "a completed upload is gone"
    );
    // An aborted upload's parts are garbage; a bucket's deletion aborts what is left.
    let a = upload("mp", "other");
    m.create_upload(&a).unwrap();
    let pa = part(1);
    m.commit_part("mp", "other", a.id, &pa).unwrap();
    m.abort_upload("mp", "other", a.id).unwrap();
    assert!(garbage_versions(m).contains(&pa.version));
    assert!(m.upload_parts(a.id).unwrap().is_empty());
    let old = upload("mp", "left");
    m.create_upload(&old).unwrap();
    assert_eq!(
        m.uploads_older_than(now_ms() + 1, 10).unwrap().len(),
        1,
        "uploads past their expiry are found"
    );
    m.delete_object("mp", "obj").unwrap();
    m.delete_bucket("mp").unwrap();
    assert!(matches!(
        m.upload("mp", "left", old.id),
        Err(ApiError::NoSuchUpload(_))
    ));
    for (record, _, _) in m.garbage(10_000).unwrap() {
        m.update_garbage(&record, None).unwrap();
    }
}

/// Access keys, grants (removed with their key) and node registrations.
pub fn keys_grants_and_nodes(m: &MetaStore) {
    let k = KeyRecord {
        id: "AKID1".into(),
        secret: "s".into(),
        name: "one".into(),
        created_ms: now_ms(),
    };
    m.create_key(&k).unwrap();
    assert!(m.create_key(&k).is_err(), "a key id is created once");
    assert_eq!(m.key("AKID1").unwrap(), Some(k.clone()));
    m.create_bucket(&bucket("gr")).unwrap();
    let g = Grant {
        read: true,
        write: false,
        owner: false,
    };
    let b = m.set_grant("gr", "AKID1", g).unwrap();
    assert_eq!(b.grant_of("AKID1"), g);
    assert!(m.delete_key("AKID1").unwrap());
    assert!(!m.delete_key("AKID1").unwrap(), "deleting again: false");
    assert!(m.keys().unwrap().is_empty());
    assert_eq!(
        m.bucket("gr").unwrap().unwrap().grant_of("AKID1"),
        Grant::default(),
        "the key's grants went with it"
    );
    m.delete_bucket("gr").unwrap();
    let n = NodeRecord {
        id: node(1),
        addr: "127.0.0.1:1".into(),
        zone: "z".into(),
    };
    m.put_node(&n).unwrap();
    let moved = NodeRecord {
        addr: "127.0.0.1:2".into(),
        ..n.clone()
    };
    m.put_node(&moved).unwrap();
    assert_eq!(m.nodes().unwrap(), [moved], "a node re-registers in place");
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_metadata_conforms() {
        super::run_all(&super::MetaStore::in_memory());
    }

    #[test]
    fn rocksdb_metadata_conforms() {
        let dir = tempfile::tempdir().unwrap();
        super::run_all(&super::MetaStore::open(dir.path()).unwrap());
    }
}
