//! The conformance checks of the counters kept on commit (part of
//! [`super::conformance::run_all`]): after every step of the suite they equal a recount of
//! the records, and a bucket's and a node's counts follow writes, overwrites, versions,
//! delete markers, segments and deletes exactly.

use super::counters::{BucketCounts, Counters, NodeCounts};
use super::fixtures::{bucket, clear_garbage, commit_segment, node, object, put, segment};
use super::{Metadata, Precondition};

/// Fails unless the counters and the index by node kept equal what the records say.
pub async fn counters_match(m: &dyn Metadata, after: &str) {
    let c = m.check_derived().await.unwrap();
    assert_eq!(
        c.kept, c.recounted,
        "counters kept vs a recount, after {after}"
    );
    assert_eq!(
        (c.index_missing, c.index_extra),
        (0, 0),
        "index by node entries missing and extra, after {after}"
    );
}

fn of_bucket(c: &Counters, b: &str) -> BucketCounts {
    c.buckets.get(b).cloned().unwrap_or_default()
}

fn of_node(c: &Counters, i: u8) -> NodeCounts {
    c.nodes.get(node(i).as_str()).cloned().unwrap_or_default()
}

/// A bucket's counts follow its objects; a node's follow the shards placed on it.
pub async fn counters_follow_the_objects(m: &dyn Metadata) {
    m.create_bucket(bucket("cnt")).await.unwrap();
    let before = m.counters().await.unwrap();
    let obj = object("cnt", "a", 1000);
    let shard = obj.parts[0].layout().shard_len();
    put(m, obj, Precondition::None).await.unwrap();
    let c = m.counters().await.unwrap();
    let expect = BucketCounts {
        objects: 1,
        logical_bytes: 1000,
        stored_bytes: 3 * shard,
        replica_bytes: 2000,
        ..Default::default()
    };
    assert_eq!(
        of_bucket(&c, "cnt"),
        expect,
        "one object of 1000 bytes, 2+1"
    );
    let n0 = (of_node(&before, 0), of_node(&c, 0));
    assert_eq!(
        (n0.1.objects - n0.0.objects, n0.1.shards - n0.0.shards),
        (1, 1),
        "its shard on node 0"
    );
    assert_eq!(n0.1.bytes - n0.0.bytes, shard);
    assert_eq!(
        c.records.pending, before.records.pending,
        "a commit retires its in-flight record"
    );
    put(m, object("cnt", "a", 3000), Precondition::None)
        .await
        .unwrap();
    let c = m.counters().await.unwrap();
    assert_eq!(
        (
            of_bucket(&c, "cnt").objects,
            of_bucket(&c, "cnt").logical_bytes
        ),
        (1, 3000),
        "an overwrite replaces the counts"
    );
    assert!(
        c.records.garbage > before.records.garbage,
        "and leaves garbage"
    );
    // Versions: the overwritten one turns noncurrent, a delete writes a marker.
    m.set_versioning("cnt".into(), "Enabled".into())
        .await
        .unwrap();
    put(m, object("cnt", "a", 500), Precondition::None)
        .await
        .unwrap();
    m.delete_object("cnt".into(), "a".into()).await.unwrap();
    let b = of_bucket(&m.counters().await.unwrap(), "cnt");
    assert_eq!(
        (
            b.objects,
            b.noncurrent_objects,
            b.noncurrent_bytes,
            b.delete_markers
        ),
        (0, 2, 3500, 1),
        "a versioned key's history"
    );
    // Packed objects count their share of the segment; the segment counts on its own.
    let (seg, entries) = segment("cnt", &["p0", "p1"], &[100, 200]);
    commit_segment(m, &seg, entries).await;
    let c = m.counters().await.unwrap();
    assert_eq!(of_bucket(&c, "cnt").objects, 2);
    assert_eq!(of_bucket(&c, "cnt").logical_bytes, 300);
    let s = c.segments.clone();
    assert!(s.segments >= 1 && s.live_bytes >= 300, "{s:?}");
    counters_match(m, "the counted bucket's writes").await;
    // The index by node pages through exactly what a walk of every object finds there.
    let (mut by_index, mut after) = (Vec::new(), None);
    loop {
        let (page, next) = m.objects_on_node(node(0), after, 2).await.unwrap();
        assert!(page.len() <= 2);
        by_index.extend(page.into_iter().map(|o| (o.bucket, o.key, o.version)));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let (mut by_walk, mut after) = (Vec::new(), None);
    loop {
        let (page, next) = m.objects_after(after, 1000).await.unwrap();
        by_walk.extend(
            page.into_iter()
                .filter(|o| {
                    o.extents()
                        .any(|p| p.shards.iter().any(|s| s.node == Some(node(0))))
                })
                .map(|o| (o.bucket, o.key, o.version)),
        );
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert!(by_walk.len() >= 3, "{by_walk:?}");
    assert_eq!(by_index, by_walk, "objects on node 0: index vs walk");
    let versions = m
        .list_versions("cnt".into(), String::new(), None, None, None, 1000)
        .await
        .unwrap();
    for (o, _) in versions.versions {
        m.delete_version(
            "cnt".into(),
            o.key.clone(),
            o.version_id(),
            Default::default(),
            false,
        )
        .await
        .unwrap();
    }
    m.delete_bucket("cnt".into()).await.unwrap();
    clear_garbage(m).await;
    let c = m.counters().await.unwrap();
    assert_eq!(
        (c.records.garbage, c.records.garbage_shards),
        (0, 0),
        "collected garbage is uncounted"
    );
    assert!(
        !c.buckets.contains_key("cnt"),
        "a deleted bucket has no counts"
    );
    assert_eq!(of_node(&c, 0), of_node(&before, 0), "nor shards on nodes");
    assert_eq!(c.segments, before.segments, "its segment is collected");
}
