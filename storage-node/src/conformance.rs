//! The conformance suite for [`ShardStore`]: every implementation's tests call [`run_all`].
//! Each check panics with a message naming the violated rule.

use crate::error::StoreError;
use crate::store::{ShardStore, WholeShard};
use crate::types::{ObjectVersion, ShardHeader, ShardId};

/// A header for shard `index` of a fresh version, with the given chunk size.
pub fn header(index: u16, chunk_size: u32) -> ShardHeader {
    ShardHeader {
        bucket: "bucket".into(),
        key: "dir/key".into(),
        version: ObjectVersion::new(),
        shard_index: index,
        k: 4,
        m: 2,
        stripe_size: 4 * chunk_size as u64,
        object_length: 0,
        codec: "test".into(),
        chunk_size,
        etag: None,
        checksums: Default::default(),
        content_type: None,
        user_meta: Default::default(),
        headers: Default::default(),
        role: Default::default(),
        retention: Some(("GOVERNANCE".into(), 42)),
        legal_hold: true,
        tags: [("k".to_string(), "v".to_string())].into(),
    }
}

/// Deterministic test bytes.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

fn write(store: &dyn ShardStore, h: ShardHeader, data: &[u8], piece: usize) -> ShardId {
    let id = h.shard_id();
    let mut w = store.begin(h.clone()).expect("begin");
    for p in data.chunks(piece.max(1)) {
        w.write(p).expect("write");
    }
    let info = w.commit_with(h, data.len() as u64).expect("commit");
    assert_eq!(
        info.length,
        data.len() as u64,
        "commit reports the written length"
    );
    id
}

/// Runs every check against `store`, which must start empty.
pub fn run_all(store: &dyn ShardStore) {
    round_trip_and_ranges(store);
    invisible_until_commit(store);
    replace_is_atomic(store);
    delete_is_idempotent(store);
    list_is_ordered_and_paged(store);
    rejects_bad_input(store);
    put_many_is_per_shard(store);
}

/// Whole and ranged reads return exactly the written bytes, across chunk boundaries.
pub fn round_trip_and_ranges(store: &dyn ShardStore) {
    for (len, piece) in [
        (0usize, 1usize),
        (1, 1),
        (1023, 100),
        (1024, 1024),
        (1025, 7),
        (10_000, 333),
    ] {
        let data = pattern(len, len as u8);
        let id = write(store, header(0, 1024), &data, piece);
        assert_eq!(store.stat(id).unwrap().length, len as u64);
        assert_eq!(
            &store.read(id, 0, len as u64).unwrap()[..],
            &data[..],
            "whole read of {len}"
        );
        for (off, l) in [
            (0, 1),
            (1000, 50),
            (1023, 2),
            (len / 2, len / 3),
            (len.saturating_sub(3000), 3000),
        ] {
            if off + l <= len {
                let got = store.read(id, off as u64, l as u64).unwrap();
                assert_eq!(&got[..], &data[off..off + l], "range {off}+{l} of {len}");
                let pieces = store.read_chunks(id, off as u64, l as u64).unwrap();
                assert!(
                    pieces.iter().all(|p| !p.is_empty()),
                    "read_chunks returns no empty pieces"
                );
                assert_eq!(
                    pieces.concat(),
                    &data[off..off + l],
                    "read_chunks of range {off}+{l} of {len}: the same bytes, in order"
                );
                let r = store.read_records(id, off as u64, l as u64).unwrap();
                let (cs, first) = (r.chunk_size, r.first);
                let verified = crate::store::verify_records(
                    r.load().unwrap(),
                    cs,
                    first,
                    off as u64,
                    l as u64,
                    &id,
                )
                .unwrap();
                assert_eq!(
                    verified.concat(),
                    &data[off..off + l],
                    "read_records of range {off}+{l} of {len}, verified by the reader"
                );
            }
        }
        assert!(
            matches!(
                store.read(id, len as u64, 1),
                Err(StoreError::InvalidArgument(_))
            ),
            "a range past the end is InvalidArgument"
        );
        store.delete(id).unwrap();
    }
}

/// A shard is invisible until commit, and a dropped writer leaves nothing.
pub fn invisible_until_commit(store: &dyn ShardStore) {
    let h = header(1, 1024);
    let id = h.shard_id();
    let before = store.used_bytes();
    let mut w = store.begin(h).unwrap();
    w.write(&pattern(5000, 1)).unwrap();
    assert!(
        matches!(store.stat(id), Err(StoreError::NotFound(_))),
        "visible before commit"
    );
    assert!(matches!(store.read(id, 0, 1), Err(StoreError::NotFound(_))));
    drop(w);
    assert!(
        matches!(store.stat(id), Err(StoreError::NotFound(_))),
        "visible after abort"
    );
    assert_eq!(
        store.used_bytes(),
        before,
        "an aborted write counts no bytes"
    );
    // A commit claiming more bytes than were written fails and publishes nothing.
    let h = header(1, 1024);
    let id = h.shard_id();
    let mut w = store.begin(h.clone()).unwrap();
    w.write(&pattern(100, 1)).unwrap();
    assert!(matches!(
        w.commit_with(h, 101),
        Err(StoreError::Incomplete(_))
    ));
    assert!(
        matches!(store.stat(id), Err(StoreError::NotFound(_))),
        "visible after short commit"
    );
    // The final header may carry the object length, but not name another shard.
    let h = header(1, 1024);
    let mut other = h.clone();
    other.shard_index = 2;
    let w = store.begin(h).unwrap();
    assert!(matches!(
        w.commit_with(other, 0),
        Err(StoreError::InvalidArgument(_))
    ));
}

/// Rewriting a shard id replaces it whole.
pub fn replace_is_atomic(store: &dyn ShardStore) {
    let h = header(2, 1024);
    let a = pattern(300_000, 1);
    let b = pattern(1500, 2);
    let id = write(store, h.clone(), &a, 512);
    let mut w = store.begin(h.clone()).unwrap();
    w.write(&b).unwrap();
    assert_eq!(
        &store.read(id, 0, 300_000).unwrap()[..],
        &a[..],
        "old shard readable during rewrite"
    );
    w.commit_with(h, 1500).unwrap();
    assert_eq!(store.stat(id).unwrap().length, 1500);
    assert_eq!(
        &store.read(id, 0, 1500).unwrap()[..],
        &b[..],
        "new shard after commit"
    );
    store.delete(id).unwrap();
}

/// Deleting twice, or deleting what never existed, is fine.
pub fn delete_is_idempotent(store: &dyn ShardStore) {
    let id = write(store, header(3, 1024), &pattern(10, 3), 10);
    store.delete(id).unwrap();
    store.delete(id).unwrap();
    assert!(matches!(store.stat(id), Err(StoreError::NotFound(_))));
    store.delete(header(0, 1024).shard_id()).unwrap();
}

/// Listing returns committed shards in id order, paged by `after`.
pub fn list_is_ordered_and_paged(store: &dyn ShardStore) {
    let mut ids: Vec<ShardId> = (0..5u16)
        .map(|i| write(store, header(i, 1024), &pattern(100, i as u8), 100))
        .collect();
    ids.sort();
    let first = store.list(None, 3).unwrap();
    assert_eq!(first.len(), 3);
    let rest = store.list(Some(first[2].header.shard_id()), 100).unwrap();
    let all: Vec<ShardId> = first
        .iter()
        .chain(&rest)
        .map(|i| i.header.shard_id())
        .collect();
    assert_eq!(all, ids, "list pages cover every shard in order");
    assert_eq!(store.used_bytes(), 500);
    for id in ids {
        store.delete(id).unwrap();
    }
    assert_eq!(store.used_bytes(), 0);
}

/// Bad headers are refused before anything is stored.
pub fn rejects_bad_input(store: &dyn ShardStore) {
    let mut h = header(0, 1024);
    h.chunk_size = 1;
    assert!(matches!(
        store.begin(h),
        Err(StoreError::InvalidArgument(_))
    ));
    let mut h = header(6, 1024);
    h.k = 4;
    h.m = 2;
    assert!(matches!(
        store.begin(h),
        Err(StoreError::InvalidArgument(_))
    ));
    assert!(store.list(None, 10).unwrap().is_empty());
}

/// `put_many` stores every good shard (readable, listed, replacing an existing one) and fails
/// exactly the bad ones (wrong length, bad header), leaving nothing of them.
pub fn put_many_is_per_shard(store: &dyn ShardStore) {
    let whole = |h: ShardHeader, data: &[u8], length: u64| WholeShard {
        final_header: h.clone(),
        header: h,
        data: data
            .chunks(700)
            .map(bytes::Bytes::copy_from_slice)
            .collect(),
        length,
    };
    let existing = header(3, 1024);
    write(store, existing.clone(), &pattern(100, 9), 100);
    let good: Vec<(ShardHeader, Vec<u8>)> = [(0usize, 1u8), (1, 2), (5000, 3)]
        .iter()
        .enumerate()
        .map(|(i, &(len, seed))| (header(i as u16, 1024), pattern(len, seed)))
        .collect();
    let short = header(0, 1024);
    let mut bad_header = header(1, 1024);
    bad_header.chunk_size = 1;
    let replaced = pattern(3000, 4);
    let mut batch: Vec<WholeShard> = good
        .iter()
        .map(|(h, d)| whole(h.clone(), d, d.len() as u64))
        .collect();
    batch.insert(1, whole(short.clone(), &pattern(10, 5), 11));
    batch.push(whole(bad_header, &pattern(10, 6), 10));
    batch.push(whole(existing.clone(), &replaced, replaced.len() as u64));
    let out = store.put_many(batch);
    assert_eq!(out.len(), 6, "one outcome per shard");
    assert!(out[0].is_ok() && out[2].is_ok() && out[3].is_ok() && out[5].is_ok());
    assert!(
        matches!(out[1], Err(StoreError::Incomplete(_))),
        "a length mismatch fails that shard: {:?}",
        out[1]
    );
    assert!(
        matches!(out[4], Err(StoreError::InvalidArgument(_))),
        "a bad header fails that shard"
    );
    for (h, d) in &good {
        let got = store.read(h.shard_id(), 0, d.len() as u64).unwrap();
        assert_eq!(&got[..], &d[..], "batched shard reads back");
    }
    assert!(
        matches!(store.stat(short.shard_id()), Err(StoreError::NotFound(_))),
        "the failed shard left nothing"
    );
    let got = store
        .read(existing.shard_id(), 0, replaced.len() as u64)
        .unwrap();
    assert_eq!(
        &got[..],
        &replaced[..],
        "a batched shard replaces an old one"
    );
    for (h, _) in &good {
        store.delete(h.shard_id()).unwrap();
    }
    store.delete(existing.shard_id()).unwrap();
    assert_eq!(store.used_bytes(), 0);
}
