//! Small objects packed into segments, with real processes: concurrency, flushes, ranges,
//! degraded reads, compaction, crashes, metadata rebuild, scrub and repair.

mod common;
use common::procs::*;
use common::*;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const KIB: usize = 1 << 10;

/// A 6-node 4+2 cluster packing objects below 128 KiB.
async fn packed(dir: &std::path::Path, extra: &[&str]) -> ProcCluster {
    let mut args = vec!["--pack-below", "128KiB", "--repair-grace", "1s"];
    args.extend_from_slice(extra);
    ProcCluster::start_with(dir, 6, &args).await
}

/// The segment an object is packed into (`x-tessera-segment`), if it is packed.
async fn segment_of(url: &str) -> Option<String> {
    let r = http().head(url).send().await.unwrap();
    r.headers()
        .get("x-tessera-segment")
        .map(|v| v.to_str().unwrap().to_string())
}

/// Every key: 200 with exactly the expected bytes, or 404 where it was deleted.
async fn check_all(expected: &BTreeMap<String, Option<Vec<u8>>>, what: &str) {
    for (url, want) in expected {
        let (status, body) = get(url).await;
        match want {
            Some(b) => {
                assert_eq!(status, 200, "{what}: {url}");
                assert!(body == *b, "{what}: {url} returned other bytes");
            }
            None => assert_eq!(status, 404, "{what}: {url} was deleted and came back"),
        }
    }
}

async fn compact_status(c: &ProcCluster) -> serde_json::Value {
    c.admin_json("/compact").await
}

/// Waits until the nodes hold exactly the shards of the segments the metadata lists (after
/// a repair run restores any shard a quorum write left out): nothing leaked.
async fn no_leaked_shards(c: &ProcCluster) {
    let (code, out, err) = c.repair_cli(&["--json"]);
    assert_eq!(code, 0, "repair: {out} {err}");
    let secret = c.secrets().cluster_secret;
    let addrs = c.node_addrs();
    let last = Mutex::new((0, 0));
    let ok = eventually(Duration::from_secs(30), || async {
        let segments = compact_status(c).await["segments"].as_u64().unwrap() as usize;
        let shards = shard_count(&secret, &addrs).await;
        *last.lock().unwrap() = (segments, shards);
        shards == 6 * segments
    })
    .await;
    if !ok {
        let m = c.metrics_text().await;
        let records: Vec<&str> = m
            .lines()
            .filter(|l| !l.starts_with('#') && (l.contains("backlog") || l.contains("in_flight")))
            .collect();
        panic!(
            "segments and shards on the nodes: {:?}; {records:?}",
            last.lock().unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn packing_under_64_writers_with_overwrites_deletes_and_racing_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let c = packed(dir.path(), &[]).await;
    assert_eq!(put(&c.url("pkd"), vec![]).await.0, 200);
    let expected: Arc<Mutex<BTreeMap<String, Option<Vec<u8>>>>> = Default::default();
    // Each writer owns its keys, so the last acknowledged operation on a key is its state.
    let round = |r: u64| {
        let expected = expected.clone();
        let base = c.url("pkd");
        async move {
            let writers = (0..64u64).map(|w| {
                let (expected, base) = (expected.clone(), base.clone());
                tokio::spawn(async move {
                    for step in 0..6u64 {
                        let seed = r * 10_000 + w * 100 + step;
                        // Even writers overwrite and delete their keys, odd ones only add:
                        // writers move in near lockstep, so a segment holds one step of
                        // many writers, and only this mix leaves it part dead, part live.
                        let keys = if w % 2 == 0 { 3 } else { 6 };
                        let url = format!("{base}/w{w}/k{}", step % keys);
                        if seed % 4 == 3 {
                            let s = http().delete(&url).send().await.unwrap().status();
                            assert_eq!(s, 204, "DELETE {url}");
                            expected.lock().unwrap().insert(url, None);
                        } else {
                            // 1 B to 100 KiB: many straddle the pieces of their segment.
                            let len = ((seed * 7919) % (100 * KIB as u64)) as usize + 1;
                            let body = data(len, seed);
                            let (s, text) = put(&url, body.clone()).await;
                            assert_eq!(s, 200, "PUT {url}: {text}");
                            expected.lock().unwrap().insert(url, Some(body));
                        }
                    }
                })
            });
            for w in futures::future::join_all(writers).await {
                w.unwrap();
            }
        }
    };
    round(1).await;
    let snapshot = expected.lock().unwrap().clone();
    check_all(&snapshot, "after 64 writers").await;
    // Objects share segments.
    let mut segments = std::collections::BTreeSet::new();
    let mut live = 0;
    for (url, want) in &snapshot {
        if want.is_some() {
            live += 1;
            segments.insert(segment_of(url).await.expect("packed"));
        }
    }
    assert!(
        segments.len() < live,
        "{live} objects in {} segments: none shared",
        segments.len()
    );
    // Compaction of every segment with any dead byte, racing another round of writers.
    // (Overwrites and deletes left dead bytes; whether a segment is below the default
    // threshold depends on how the writers' objects fell into segments.)
    let status = compact_status(&c).await;
    assert!(
        status["bytes"].as_u64().unwrap() > status["live_bytes"].as_u64().unwrap(),
        "{status}"
    );
    let r = c
        .admin_http()
        .post(format!("http://{}/compact", c.admin))
        .json(&serde_json::json!({"below": 1.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    round(2).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            compact_status(&c).await["running"] == false
        })
        .await,
        "compaction did not finish"
    );
    let snapshot = expected.lock().unwrap().clone();
    check_all(&snapshot, "after compaction raced writers").await;
    // One more compaction with no writers leaves no dead byte.
    let (code, out, err) = c.cli(&["compact", "--below", "1.0"]);
    assert_eq!(code, 0, "{out} {err}");
    let status = compact_status(&c).await;
    assert_eq!(status["reclaimable_bytes"], 0, "{status}");
    check_all(&snapshot, "after the second compaction").await;
    no_leaked_shards(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lone_small_put_is_not_held_for_the_flush_interval() {
    let dir = tempfile::tempdir().unwrap();
    let c = packed(dir.path(), &["--pack-flush", "60s"]).await;
    put(&c.url("lone"), vec![]).await;
    for i in 0..3 {
        let url = c.url(&format!("lone/o{i}"));
        let body = data(1 + i * 1000, i as u64);
        let r = tokio::time::timeout(Duration::from_secs(20), put(&url, body.clone())).await;
        let (status, text) = r.expect("a lone PUT waited for the 60 s flush interval");
        assert_eq!(status, 200, "{text}");
        assert!(segment_of(&url).await.is_some(), "packed");
        assert_eq!(get(&url).await.1, body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn straddling_objects_ranges_and_degraded_reads_with_m_nodes_down() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = packed(dir.path(), &[]).await;
    put(&c.url("str"), vec![]).await;
    // Sent together, so they share segments; sizes around piece boundaries.
    let sizes = [
        1,
        4095,
        4096,
        4097,
        20_000,
        33_333,
        65_535,
        65_536,
        90_001,
        100 * KIB,
    ];
    let objs: Vec<(String, Vec<u8>)> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (c.url(&format!("str/o{i}")), data(n, 500 + i as u64)))
        .collect();
    let puts = objs.iter().map(|(u, b)| put(u, b.clone()));
    for (s, text) in futures::future::join_all(puts).await {
        assert_eq!(s, 200, "{text}");
    }
    let check = |what: &'static str| {
        let objs = objs.clone();
        async move {
            for (u, b) in &objs {
                let (s, got) = get(u).await;
                assert_eq!(s, 200, "{what}: {u}");
                assert!(got == *b, "{what}: {u} returned other bytes");
                // Ranges: the middle, a suffix, one byte, across 4 KiB chunk edges.
                let n = b.len();
                for (a, z) in [
                    (n / 3, 2 * n / 3),
                    (n.saturating_sub(5000), n - 1),
                    (n / 2, n / 2),
                    (4000, 8200.min(n - 1)),
                ] {
                    if a > z || z >= n {
                        continue;
                    }
                    let r = http()
                        .get(u)
                        .header("range", format!("bytes={a}-{z}"))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 206, "{what}: {u} bytes={a}-{z}");
                    let got = r.bytes().await.unwrap();
                    assert!(got[..] == b[a..=z], "{what}: {u} bytes={a}-{z}");
                }
            }
        }
    };
    check("healthy").await;
    let before = c
        .metric(r#"tessera_stripes_total{kind="reconstructed"}"#)
        .await;
    c.kill_node_until_down(1).await;
    c.kill_node_until_down(4).await;
    check("with 2 of 6 nodes down").await;
    assert!(
        c.metric(r#"tessera_stripes_total{kind="reconstructed"}"#)
            .await
            > before,
        "degraded reads decoded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_and_coordinator_sigkilled_with_open_segments_lose_no_acknowledged_object() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = packed(dir.path(), &["--pack-flush", "300ms"]).await;
    put(&c.url("crash"), vec![]).await;
    let acked: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Default::default();
    let failed: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Default::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..32u64)
        .map(|w| {
            let (acked, failed, stop) = (acked.clone(), failed.clone(), stop.clone());
            let base = c.url("crash");
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()
                    .unwrap();
                let mut i = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let url = format!("{base}/w{w}-{i}");
                    let body = data(100 + ((w * 131 + i * 977) % 30_000) as usize, w * 1000 + i);
                    match client.put(&url).body(body.clone()).send().await {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().insert(url, body),
                        _ => failed.lock().unwrap().insert(url, body),
                    };
                    i += 1;
                }
            })
        })
        .collect();
    // A node dies mid-append first (its batches of segment shards are atomic: nothing torn
    // becomes visible), then the coordinator with segments open and in flight.
    tokio::time::sleep(Duration::from_millis(800)).await;
    c.kill_node(3);
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.coordinator.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    c.restart_coordinator();
    c.restart_node(3);
    c.wait_up(6).await;
    let acked = acked.lock().unwrap().clone();
    let failed = failed.lock().unwrap().clone();
    assert!(acked.len() > 50, "only {} PUTs acknowledged", acked.len());
    for (u, b) in &acked {
        let (s, got) = get(u).await;
        assert_eq!(s, 200, "acknowledged {u} lost");
        assert!(got == *b, "acknowledged {u} returned other bytes");
    }
    // An unacknowledged PUT is absent, or (its commit won the race with the kill) whole.
    let mut visible = 0;
    for (u, b) in &failed {
        let (s, got) = get(u).await;
        match s {
            404 => {}
            200 => {
                visible += 1;
                assert!(got == *b, "unacknowledged {u} is visible with other bytes");
            }
            other => panic!("unacknowledged {u}: {other}"),
        }
    }
    assert!(
        visible <= failed.len(),
        "{visible} of {} unacknowledged PUTs visible",
        failed.len()
    );
    // The segments that were open or in flight left shards that become garbage.
    no_leaked_shards(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_of_packed_objects_is_rebuilt_from_the_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = packed(dir.path(), &["--no-background-repair"]).await;
    put(&c.url("rbd"), vec![]).await;
    let mut objs: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let puts = (0..60u64).map(|i| {
        let url = c.url(&format!("rbd/dir/o{i}"));
        let body = data((i as usize * 1777) % (90 * KIB) + 1, 900 + i);
        async move {
            let r = http()
                .put(&url)
                .header("content-type", "text/x-test")
                .header("x-amz-meta-color", format!("c{i}"))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            (url, body)
        }
    });
    objs.extend(futures::future::join_all(puts).await);
    // Overwrites (the newest version wins) and a large coded object beside them.
    for i in 0..10u64 {
        let url = c.url(&format!("rbd/dir/o{i}"));
        let body = data(5000 + i as usize, 7700 + i);
        assert_eq!(put(&url, body.clone()).await.0, 200);
        objs.insert(url, body);
    }
    // One key overwritten back to back, packed and coded: each write is acknowledged before
    // the next starts, so the last one is what the rebuild must bring back (versions made in
    // one millisecond are ordered as made; see ObjectVersion::new).
    for (key, len) in [("rbd/hot", 700usize), ("rbd/hot-coded", 200 * KIB)] {
        let url = c.url(key);
        for i in 0..40u64 {
            let body = data(len + i as usize, 31_000 + i);
            assert_eq!(put(&url, body.clone()).await.0, 200);
            objs.insert(url.clone(), body);
        }
    }
    let big = c.url("rbd/big");
    objs.insert(big.clone(), data(3 << 20, 5));
    assert_eq!(put(&big, objs[&big].clone()).await.0, 200);
    let mut etags = BTreeMap::new();
    for u in objs.keys() {
        let r = http().head(u).send().await.unwrap();
        etags.insert(u.clone(), r.headers()["etag"].clone());
    }
    let report = c.wipe_metadata_and_rebuild(6).await;
    assert!(report["packed"].as_u64().unwrap() >= 60, "{report}");
    for (u, b) in &objs {
        let r = http().get(u).send().await.unwrap();
        assert_eq!(r.status(), 200, "{u} after rebuild: {report}");
        assert_eq!(r.headers()["etag"], etags[u], "{u}: ETag");
        // (The first ten were overwritten without these headers.)
        if u.contains("/dir/") && !(0..10).any(|i| u.ends_with(&format!("/o{i}"))) {
            assert_eq!(r.headers()["content-type"], "text/x-test");
            assert!(r.headers().contains_key("x-amz-meta-color"));
        }
        assert!(r.bytes().await.unwrap()[..] == b[..], "{u} after rebuild");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scrub_finds_a_corrupt_packed_shard_and_repair_fixes_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = packed(dir.path(), &["--no-background-repair"]).await;
    put(&c.url("rot"), vec![]).await;
    let objs: Vec<(String, Vec<u8>)> = (0..40u64)
        .map(|i| {
            (
                c.url(&format!("rot/o{i}")),
                data(3000 + i as usize * 997, 300 + i),
            )
        })
        .collect();
    for (s, t) in futures::future::join_all(objs.iter().map(|(u, b)| put(u, b.clone()))).await {
        assert_eq!(s, 200, "{t}");
    }
    // Damage node 2's stored chunks on disk after a clean stop, restart it scrubbing fast.
    c.stop_node_gracefully(2).await;
    assert!(flip_blob_bytes(&dir.path().join("n2/shards")) > 0);
    c.node_args = vec![
        "--scrub-interval".into(),
        "500ms".into(),
        "--scrub-rate".into(),
        "1GiB".into(),
    ];
    let port = c.node_ports[2];
    c.nodes[2] = Some(c.spawn_node(2, port));
    c.wait_up(6).await;
    for (u, b) in &objs {
        assert!(get(u).await.1 == *b, "{u} with corrupt chunks on node 2");
    }
    let port = port.to_string();
    let corrupt = || async {
        let cl = c.cluster_json().await;
        cl["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"].as_str().unwrap().ends_with(&port))
            .map(|n| n["scrub"]["corrupt_found"].as_u64().unwrap_or(0))
            .unwrap_or(0)
    };
    assert!(
        eventually(Duration::from_secs(20), || async { corrupt().await > 0 }).await,
        "scrub found nothing"
    );
    let (code, out, err) = c.repair_cli(&["--json"]);
    assert_eq!(code, 0, "{out} {err}");
    let r: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert!(r["shards_rebuilt"].as_u64().unwrap() > 0, "{out}");
    // Every copy reads again: the rebuilt shards, then with two other nodes gone.
    c.kill_node_until_down(0).await;
    c.kill_node_until_down(5).await;
    for (u, b) in &objs {
        assert!(get(u).await.1 == *b, "{u} after repair, 2 nodes down");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deleting_most_small_objects_and_compacting_gives_the_space_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = packed(dir.path(), &["--compact-interval", "0s"]).await;
    put(&c.url("del"), vec![]).await;
    let objs: Vec<(String, Vec<u8>)> = (0..400u64)
        .map(|i| (c.url(&format!("del/o{i:04}")), data(4096, 40 + i)))
        .collect();
    for chunk in objs.chunks(32) {
        for (s, t) in futures::future::join_all(chunk.iter().map(|(u, b)| put(u, b.clone()))).await
        {
            assert_eq!(s, 200, "{t}");
        }
    }
    let used = || async {
        c.cluster_json().await["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["used"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(
        eventually(Duration::from_secs(10), || async { used().await > 0 }).await,
        "nodes report their use"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let full = used().await;
    let mut expected = BTreeMap::new();
    for (i, (u, b)) in objs.iter().enumerate() {
        if i % 10 == 0 {
            expected.insert(u.clone(), Some(b.clone()));
        } else {
            assert_eq!(http().delete(u).send().await.unwrap().status(), 204);
            expected.insert(u.clone(), None);
        }
    }
    // Refused and changing nothing: no admin token, a threshold that is not a fraction.
    let before = compact_status(&c).await;
    let r = http()
        .post(format!("http://{}/compact", c.admin))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let (code, _, err) = c.cli(&["compact", "--below", "2"]);
    assert_ne!(code, 0, "--below 2 accepted: {err}");
    // Only another bucket's objects: nothing of this one moves.
    let (code, out, err) = c.cli(&["compact", "--bucket", "someother"]);
    assert_eq!(code, 0, "{out} {err}");
    let after = compact_status(&c).await;
    assert_eq!(
        (&after["candidates"], &after["live_bytes"]),
        (&before["candidates"], &before["live_bytes"]),
        "{before} then {after}"
    );
    check_all(&expected, "after refused and other-bucket compactions").await;
    let (code, out, err) = c.cli(&["compact", "--dry-run"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.starts_with("dry run:"), "{out}");
    assert!(compact_status(&c).await["candidates"].as_u64().unwrap() > 0);
    let (code, out, err) = c.cli(&["compact"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(out.contains("compacted:"), "{out}");
    check_all(&expected, "after compaction").await;
    // The shards of emptied segments are collected: at least 80% of the deleted bytes leave
    // the nodes (as the nodes count their shards).
    let now = Mutex::new(full);
    let freed = eventually(Duration::from_secs(30), || async {
        let n = used().await;
        *now.lock().unwrap() = n;
        (full - n.min(full)) as f64 >= 0.8 * 0.9 * full as f64
    })
    .await;
    assert!(
        freed,
        "nodes held {full} bytes, {} after deleting 90% and compacting",
        now.lock().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bucket_replicas_conditions_and_bad_input_on_the_packed_path() {
    let dir = tempfile::tempdir().unwrap();
    let c = packed(dir.path(), &[]).await;
    // A bucket that prefers replicas for its small objects.
    let r = http()
        .put(c.url("reps"))
        .header("x-tessera-replicate-below", "65536")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .put(c.url("reps/small"))
        .body(data(4096, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-tessera-ec"], "1+2");
    assert!(r.headers().get("x-tessera-segment").is_none());
    let r = http()
        .put(c.url("reps/mid"))
        .body(data(100 * KIB, 2))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers().get("x-tessera-segment").is_some(),
        "above the bucket's threshold: packed"
    );
    // A malformed threshold: 400, and no bucket.
    let r = http()
        .put(c.url("badrep"))
        .header("x-tessera-replicate-below", "lots")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        http().head(c.url("badrep")).send().await.unwrap().status(),
        404
    );
    // Conditional PUTs: If-None-Match on an existing packed key fails and changes nothing;
    // of 8 racing creators exactly one wins.
    put(&c.url("cond"), vec![]).await;
    let first = data(1000, 3);
    assert_eq!(put(&c.url("cond/a"), first.clone()).await.0, 200);
    let r = http()
        .put(c.url("cond/a"))
        .header("if-none-match", "*")
        .body(data(10, 4))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert_eq!(get(&c.url("cond/a")).await.1, first);
    let racers = (0..8u64).map(|i| {
        let url = c.url("cond/race");
        async move {
            let body = data(2000, 100 + i);
            let r = http()
                .put(&url)
                .header("if-none-match", "*")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), body)
        }
    });
    let results = futures::future::join_all(racers).await;
    let winners: Vec<_> = results.iter().filter(|(s, _)| *s == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "{:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert!(results.iter().all(|(s, _)| *s == 200 || *s == 412));
    assert_eq!(get(&c.url("cond/race")).await.1, winners[0].1);
    // A body cut short of its Content-Length: an error, and nothing stored.
    let addr: std::net::SocketAddr = c.api.parse().unwrap();
    let answer = raw(
        addr,
        b"PUT /cond/short HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\nonly this",
        true,
        Duration::from_secs(10),
    )
    .await;
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(get(&c.url("cond/short")).await.0, 404);
}

/// Three replicated coordinators packing small objects: 24 writers put and overwrite small
/// objects through every member while the leader is SIGKILLed; segments are shared, every
/// acknowledged object reads back exact from both survivors (or, where the write in flight
/// at the kill got no answer, that write's bytes), and no write stays in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicated_coordinators_share_segments_and_lose_nothing_when_the_leader_dies() {
    use common::group::Group;
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &["--pack-below", "128KiB"]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    assert_eq!(put(&g.url(0, "grp"), vec![]).await.0, 200);
    let apis = Arc::new(g.api.clone());
    let dead = Arc::new(Mutex::new(None::<usize>));
    // Per key: the bytes that may be there (the last acknowledged write, then any that
    // failed without an answer after it).
    let possible = Arc::new(Mutex::new(BTreeMap::<String, Vec<Vec<u8>>>::new()));
    let writers = (0..24u64).map(|w| {
        let (apis, dead, possible) = (apis.clone(), dead.clone(), possible.clone());
        tokio::spawn(async move {
            for i in 0..30u64 {
                let c = ((w + i) % 3) as usize;
                let key = format!("grp/w{w}/k{}", i % 6);
                let len = [3 * KIB, 20 * KIB, 90 * KIB][(i % 3) as usize];
                let data = common::data(len, w << 32 | i);
                // Retried through the next member while the group elects a new leader.
                for attempt in 0..100 {
                    let c = (c + attempt) % 3;
                    if *dead.lock().unwrap() == Some(c) {
                        continue;
                    }
                    let url = format!("http://{}/{key}", apis[c]);
                    // A connection to the killed leader fails: no answer, like a 503.
                    let status = match http().put(&url).body(data.clone()).send().await {
                        Ok(r) => r.status().as_u16(),
                        Err(_) => 0,
                    };
                    {
                        let mut p = possible.lock().unwrap();
                        let may = p.entry(key.clone()).or_default();
                        if status == 200 {
                            *may = vec![data];
                            break;
                        }
                        may.push(data.clone());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    tokio::time::sleep(Duration::from_millis(400)).await;
    *dead.lock().unwrap() = Some(leader);
    g.kill(leader);
    for w in writers {
        w.await.unwrap();
    }
    g.leader(Duration::from_secs(30)).await;
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let possible = possible.lock().unwrap().clone();
    assert_eq!(possible.len(), 24 * 6);
    for &i in &survivors {
        for (key, may) in &possible {
            let (status, body) = get(&g.url(i, key)).await;
            assert_eq!(status, 200, "{key} from coordinator {i}");
            assert!(
                may.contains(&body),
                "{key} from coordinator {i}: bytes no acknowledged write left there"
            );
            if may.len() == 1 {
                let seg = segment_of(&g.url(i, key)).await;
                assert!(seg.is_some(), "{key} is not packed");
            }
        }
    }
    // Segments were shared (fewer segments than packed objects) and nothing stays in flight.
    let (mut segments, mut puts) = (0.0, 0.0);
    for &i in &survivors {
        let text = g.metrics_text(i).await;
        segments += sample(&text, "tessera_stripes_total{kind=\"encoded\"}").unwrap_or(0.0);
        puts += sample(
            &text,
            "tessera_requests_total{op=\"PutObject\",status=\"200\"}",
        )
        .unwrap_or(0.0);
    }
    assert!(
        puts > 0.0 && segments < puts,
        "{segments} segments for the survivors' {puts} PUTs: none shared"
    );
    let settled = eventually(Duration::from_secs(30), || async {
        let text = g.metrics_text(survivors[0]).await;
        sample(&text, "tessera_writes_in_flight") == Some(0.0)
    })
    .await;
    assert!(
        settled,
        "writes still in flight after the storm (the dead leader's records expire with its lease)"
    );
}
