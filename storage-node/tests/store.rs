//! The conformance suite on every ShardStore, and crash recovery of the RocksDB store.

use tessera_node::conformance::{self, header, pattern};
use tessera_node::store::ShardStore;
use tessera_node::{MemoryShardStore, RocksShardStore, StoreError};

#[test]
fn memory_store_conforms() {
    conformance::run_all(&MemoryShardStore::new());
}

#[test]
fn rocks_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run_all(&RocksShardStore::open(dir.path()).unwrap());
}

#[test]
fn memory_store_reports_corruption() {
    let s = MemoryShardStore::new();
    let h = header(0, 1024);
    let id = h.shard_id();
    let mut w = s.begin(h.clone()).unwrap();
    w.write(&pattern(3000, 9)).unwrap();
    w.commit_with(h, 3000).unwrap();
    s.corrupt(id, 1);
    assert!(matches!(s.read(id, 1024, 10), Err(StoreError::Corrupt(_))));
    assert!(
        matches!(raw_read(&s, id, 1024, 10), Err(StoreError::Corrupt(_))),
        "a reader verifying the raw records finds the damage too"
    );
    // Chunks that were not damaged still read.
    assert_eq!(&s.read(id, 0, 1024).unwrap()[..], &pattern(3000, 9)[..1024]);
}

/// A write interrupted by a crash (the writer never commits or aborts: the process is gone)
/// leaves nothing visible and nothing behind after reopening; committed writes, small
/// (inline) and large (file), survive.
#[test]
fn rocks_crash_mid_write_leaves_nothing_or_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (torn, small, large) = {
        let s = RocksShardStore::open(dir.path()).unwrap();
        let h = header(0, 1024);
        let torn = h.shard_id();
        let mut w = s.begin(h).unwrap();
        w.write(&pattern(300_000, 1)).unwrap();
        // Failpoint: the process dies here; the writer's abort cleanup never runs.
        s.set_crash_failpoint(true);
        drop(w);
        s.set_crash_failpoint(false);
        let (_, _, files) = s.counts().unwrap();
        assert_eq!(files, 1, "the interrupted write's partial file is on disk");
        let mut ids = Vec::new();
        for (i, len) in [(1u16, 5000usize), (2, 200_000)] {
            let h = header(i, 1024);
            ids.push(h.shard_id());
            let mut w = s.begin(h.clone()).unwrap();
            w.write(&pattern(len, i as u8)).unwrap();
            w.commit_with(h, len as u64).unwrap();
        }
        (torn, ids[0], ids[1])
    };
    let s = RocksShardStore::open(dir.path()).unwrap();
    assert!(matches!(s.stat(torn), Err(StoreError::NotFound(_))));
    assert_eq!(&s.read(small, 0, 5000).unwrap()[..], &pattern(5000, 1)[..]);
    assert_eq!(
        &s.read(large, 0, 200_000).unwrap()[..],
        &pattern(200_000, 2)[..]
    );
    let (index, inline_chunks, files) = s.counts().unwrap();
    assert_eq!(
        (index, inline_chunks, files),
        (2, 5, 1),
        "only the committed shards remain"
    );
    assert_eq!(s.used_bytes(), 205_000);
}

/// Bytes flipped in the store's files on disk are reported as corruption, never returned.
#[test]
fn rocks_detects_flipped_bytes_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(512 << 10, 3);
    let id = {
        let s = RocksShardStore::open(dir.path()).unwrap();
        let h = header(0, 64 << 10);
        let id = h.shard_id();
        let mut w = s.begin(h.clone()).unwrap();
        w.write(&data).unwrap();
        w.commit_with(h, data.len() as u64).unwrap();
        s.flush().unwrap();
        id
    };
    let flipped = flip_blob_bytes(dir.path());
    assert!(flipped > 0, "found blob files to damage");
    let s = RocksShardStore::open(dir.path()).unwrap();
    let mut corrupt = 0;
    for c in 0..8u64 {
        match s.read(id, c * (64 << 10), 64 << 10) {
            Ok(b) => assert_eq!(
                &b[..],
                &data[(c as usize) << 16..((c as usize) + 1) << 16],
                "chunk {c} returned wrong bytes"
            ),
            Err(StoreError::Corrupt(_)) => corrupt += 1,
            Err(e) => panic!("unexpected error {e}"),
        }
        // The raw records, verified by the reader, agree chunk for chunk.
        let raw = raw_read(&s, id, c * (64 << 10), 64 << 10);
        assert_eq!(
            raw.is_err(),
            s.read(id, c * (64 << 10), 64 << 10).is_err(),
            "chunk {c}: raw records verify as the store's own read does"
        );
    }
    assert!(corrupt > 0, "the damaged chunk was detected");
}

/// What a reader that verifies the raw records itself gets.
fn raw_read(
    s: &dyn ShardStore,
    id: tessera_node::ShardId,
    offset: u64,
    len: u64,
) -> Result<Vec<u8>, StoreError> {
    let r = s.read_records(id, offset, len)?;
    let (cs, first) = (r.chunk_size, r.first);
    Ok(tessera_node::store::verify_records(r.load()?, cs, first, offset, len, &id)?.concat())
}

/// Flips one byte in the middle of every shard and blob file under `dir`; returns how many.
pub fn flip_blob_bytes(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += flip_blob_bytes(&p);
        } else if p.extension().is_some_and(|x| x == "blob" || x == "shard") {
            let mut b = std::fs::read(&p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x5a;
            std::fs::write(&p, b).unwrap();
            n += 1;
        }
    }
    n
}
