//! Repair, scrub, crash safety and metadata rebuild, with real processes.

mod common;
use common::procs::*;
use common::*;
use futures::StreamExt;
use std::process::Command;
use std::time::Duration;

const MIB: usize = 1 << 20;

/// Flags that make repair and GC act quickly; background repair off so the CLI does the work.
const MANUAL: &[&str] = &["--repair-grace", "1s", "--no-background-repair"];

fn objects(c: &ProcCluster, bucket: &str) -> Vec<(String, Vec<u8>)> {
    [0, 1, 100_000, MIB + 7, 3 * MIB + 5, 9 * MIB]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            (
                c.url(&format!("{bucket}/obj-{i}")),
                data(len, 1000 + i as u64),
            )
        })
        .collect()
}

async fn put_all(objs: &[(String, Vec<u8>)]) {
    for (u, b) in objs {
        assert_eq!(put(u, b.clone()).await.0, 200, "PUT {u}");
    }
}

async fn all_exact(objs: &[(String, Vec<u8>)], what: &str) {
    for (u, b) in objs {
        let (s, got) = get(u).await;
        assert_eq!(s, 200, "{what}: {u}");
        assert!(got == *b, "{what}: {u} returned different bytes");
    }
}

fn report(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("repair --json printed {stdout:?}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_restores_full_redundancy_after_two_nodes_die() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 8, MANUAL).await;
    put(&c.url("heal"), vec![]).await;
    let mut objs = objects(&c, "heal");
    put_all(&objs).await;
    let parts = vec![data(5 * MIB, 61), data(2 * MIB + 1, 62)];
    put_multipart(&c.url("heal/multipart"), &parts).await;
    objs.push((c.url("heal/multipart"), parts.concat()));
    c.kill_node(2);
    c.kill_node(5);
    tokio::time::sleep(Duration::from_millis(2500)).await; // heartbeat timeout + repair grace
                                                           // Dry run: reports the damage, changes nothing, exits non-zero.
    let (code, out, _) = c.repair_cli(&["--dry-run", "--json"]);
    let r = report(&out);
    assert_eq!(code, 1, "{out}");
    assert!(r["degraded"].as_u64().unwrap() > 0);
    assert_eq!(r["shards_rebuilt"], 0);
    let (_, out2, _) = c.repair_cli(&["--dry-run", "--json"]);
    assert_eq!(
        report(&out2)["degraded"],
        r["degraded"],
        "dry run changed nothing"
    );
    // The real run.
    let (code, out, err) = c.repair_cli(&["--json", "--concurrency", "3"]);
    assert_eq!(code, 0, "repair failed: {out} {err}");
    let r = report(&out);
    assert!(r["repaired"].as_u64().unwrap() > 0);
    assert!(r["bytes_written"].as_u64().unwrap() > 0);
    assert_eq!(r["unrecoverable"].as_array().unwrap().len(), 0);
    let (code, _, _) = c.repair_cli(&["--dry-run"]);
    assert_eq!(code, 0, "healthy after repair");
    // Two more die: full redundancy was restored, so everything still reads.
    c.kill_node(0);
    c.kill_node(7);
    all_exact(&objs, "4 of 8 nodes dead after repair").await;
    // Text summary, too.
    let (_, out, _) = c.repair_cli(&["--dry-run"]);
    assert!(out.contains("objects scanned"), "{out}");
}

/// A write placed while a node is down (six nodes for 4+2: one shard has nowhere to go) is
/// acknowledged at its quorum with the shard it could not place recorded missing, so repair
/// finds it once the node is back and rebuilds it: afterwards two other nodes can die.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_short_of_nodes_is_found_and_completed_by_repair() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("short"), vec![]).await;
    c.kill_node_until_down(0).await;
    let mut objs = objects(&c, "short");
    put_all(&objs).await;
    let parts = vec![data(5 * MIB, 71), data(MIB, 72)];
    put_multipart(&c.url("short/multipart"), &parts).await;
    objs.push((c.url("short/multipart"), parts.concat()));
    c.restart_node(0);
    c.wait_up(6).await;
    let (code, out, _) = c.repair_cli(&["--dry-run", "--json"]);
    assert_eq!(code, 1, "a repair found nothing degraded: {out}");
    let (code, out, err) = c.repair_cli(&["--json"]);
    assert_eq!(code, 0, "repair failed: {out} {err}");
    // One shard per object with bytes (the empty one too has shards), and per part.
    assert!(
        report(&out)["shards_rebuilt"].as_u64().unwrap() >= objs.len() as u64,
        "{out}"
    );
    assert_eq!(c.repair_cli(&["--dry-run"]).0, 0, "healthy after repair");
    c.kill_node(1);
    c.kill_node(2);
    all_exact(&objs, "two nodes dead after the short writes were repaired").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_repair_heals_without_an_operator() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(
        dir.path(),
        8,
        &["--repair-grace", "1s", "--repair-interval", "1s"],
    )
    .await;
    put(&c.url("auto"), vec![]).await;
    let objs = objects(&c, "auto");
    put_all(&objs).await;
    // Both seen down first, so that the wait below cannot pass before repair had work.
    c.kill_node_until_down(1).await;
    c.kill_node_until_down(6).await;
    let healthy = eventually(Duration::from_secs(30), || async {
        c.repair_cli(&["--dry-run"]).0 == 0
    })
    .await;
    assert!(healthy, "background repair did not finish");
    // `tessera status` reports the background scans: a later one finds nothing degraded.
    let status = || {
        let out = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .env("TESSERA_ADMIN_TOKEN", c.secrets().admin_token)
            .env("TESSERA_CLUSTER_SECRET", c.secrets().cluster_secret)
            .args([
                "status",
                "--coordinator",
                &format!("http://{}", c.admin),
                "--json",
            ])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let clean = eventually(Duration::from_secs(15), || async {
        let v = status();
        v["repair"]["last_scan"]["objects_scanned"] == 6
            && v["repair"]["last_scan"]["degraded"] == 0
    })
    .await;
    assert!(clean, "{}", status());
    assert!(
        status()["repair"]["background"]["shards_rebuilt"]
            .as_u64()
            .unwrap()
            > 0
    );
    c.kill_node(3);
    c.kill_node(4);
    all_exact(&objs, "after background repair and two more deaths").await;
}

/// With the full scan an hour away, a node down past the grace still has its objects
/// rebuilt: background repair finds them through the index by node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_repair_finds_a_lost_nodes_objects_without_a_full_scan() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(
        dir.path(),
        8,
        &["--repair-grace", "1s", "--repair-interval", "1h"],
    )
    .await;
    put(&c.url("lost"), vec![]).await;
    let objs = objects(&c, "lost");
    put_all(&objs).await;
    // The first scan (at start) has run; the next is an hour away.
    let scanned = eventually(Duration::from_secs(30), || async {
        !c.admin_json("/repair").await["last_scan"].is_null()
    })
    .await;
    assert!(scanned, "{}", c.admin_json("/repair").await);
    let lost = c.kill_node_until_down(2).await;
    assert!(
        c.admin_json(&format!("/cluster/nodes/{lost}")).await["objects"]
            .as_u64()
            .unwrap()
            > 0
    );
    // Every object with a shard on it gets that shard rebuilt elsewhere.
    let moved = eventually(Duration::from_secs(40), || async {
        c.admin_json(&format!("/cluster/nodes/{lost}")).await["objects"] == 0
    })
    .await;
    assert!(moved, "not repaired: {}", c.admin_json("/repair").await);
    assert_eq!(c.repair_cli(&["--dry-run"]).0, 0);
    assert!(
        c.admin_json("/repair").await["background"]["shards_rebuilt"]
            .as_u64()
            .unwrap()
            > 0
    );
    c.kill_node(3);
    c.kill_node(4);
    all_exact(
        &objs,
        "after the lost node's objects were rebuilt and two more deaths",
    )
    .await;
}

/// The background full scan, paced to a page per ~1000 s, keeps its place across a
/// coordinator SIGKILL: the restarted coordinator finishes the scan from its stored cursor
/// (looking at what is left, not everything again).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_paced_full_scan_resumes_after_a_coordinator_kill() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["--repair-interval", "1h", "--repair-scan-rate", "1"];
    let mut c = ProcCluster::start_with(dir.path(), 6, &flags).await;
    put(&c.url("scan"), vec![]).await;
    let puts = (0..1500).map(|i| {
        let url = c.url(&format!("scan/o{i:04}"));
        async move { assert_eq!(put(&url, vec![7; 10]).await.0, 200) }
    });
    futures::stream::iter(puts)
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    // A scan that begins with every object stored: restart, then wait for its first page.
    c.restart_coordinator();
    c.wait_up(6).await;
    let scan_done = |v: serde_json::Value| {
        v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "repair" && w["activity"] == "full scan")
            .and_then(|w| w["done"].as_u64())
    };
    let first_page = eventually(Duration::from_secs(30), || async {
        scan_done(c.admin_json("/workers").await).unwrap_or(0) >= 1000
    })
    .await;
    assert!(first_page, "{}", c.admin_json("/workers").await);
    assert!(c.admin_json("/repair").await["last_scan"].is_null());
    c.restart_coordinator(); // SIGKILL between two pages
    c.wait_up(6).await;
    let finished = eventually(Duration::from_secs(30), || async {
        !c.admin_json("/repair").await["last_scan"].is_null()
    })
    .await;
    let last = c.admin_json("/repair").await["last_scan"].clone();
    assert!(
        finished,
        "the scan did not go on: {}",
        c.admin_json("/workers").await
    );
    let looked = last["objects_scanned"].as_u64().unwrap();
    assert!(
        looked > 0 && looked < 1000,
        "the resumed scan looked at {looked} objects (a new one would take 1000 first): {last}"
    );
}

async fn scrub_stats(c: &ProcCluster, i: usize) -> serde_json::Value {
    let cl = c.cluster_json().await;
    let port = c.node_ports[i].to_string();
    cl["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["address"].as_str().unwrap().ends_with(&port))
        .map(|n| n["scrub"].clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flipped_bytes_are_flagged_repaired_and_a_second_scrub_finds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("rot"), vec![]).await;
    let objs = objects(&c, "rot");
    put_all(&objs).await;
    // Damage node 2's stored bytes on disk (after a clean stop flushed them to blob files),
    // and restart it with a fast scrub.
    c.stop_node_gracefully(2).await;
    assert!(flip_blob_bytes(&dir.path().join("n2/shards")) > 0);
    let port = c.node_ports[2];
    let node = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("TESSERA_ADMIN_TOKEN", c.secrets().admin_token)
        .env("TESSERA_CLUSTER_SECRET", c.secrets().cluster_secret)
        .args(["node", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir.path().join("n2"))
        .args([
            "--coordinator",
            &format!("http://{}", c.admin),
            "--zone",
            "z2",
        ])
        .args([
            "--heartbeat-interval",
            "200ms",
            "--scrub-interval",
            "500ms",
            "--scrub-rate",
            "1GiB",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    c.nodes[2] = Some(Proc(node));
    c.wait_up(6).await;
    // Reads stay correct.
    all_exact(&objs, "with corrupt shards on node 2").await;
    // The scrub flags the damage.
    assert!(
        eventually(Duration::from_secs(20), || async {
            scrub_stats(&c, 2).await["corrupt_found"]
                .as_u64()
                .unwrap_or(0)
                > 0
        })
        .await,
        "scrub found nothing"
    );
    // Repair fixes it.
    let (code, out, err) = c.repair_cli(&["--json"]);
    assert_eq!(code, 0, "{out} {err}");
    assert!(
        report(&out)["shards_rebuilt"].as_u64().unwrap() > 0,
        "{out}"
    );
    // A later complete scrub pass finds nothing.
    let passes = scrub_stats(&c, 2).await["passes"].as_u64().unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            let s = scrub_stats(&c, 2).await;
            s["passes"].as_u64().unwrap() >= passes + 2 && s["last_pass_corrupt"] == 0
        })
        .await,
        "second scrub still finds corruption: {}",
        scrub_stats(&c, 2).await
    );
    all_exact(&objs, "after repair").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wiped_node_gets_its_shards_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("wipe"), vec![]).await;
    let objs = objects(&c, "wipe");
    put_all(&objs).await;
    let node_dir = dir.path().join("n4");
    let id = std::fs::read_to_string(node_dir.join("node_id")).unwrap();
    let node = node_client(&c.secrets().cluster_secret, c.node_addrs()[4]);
    let before = node.list(None, 1000).await.unwrap().len();
    assert!(before > 0);
    c.kill_node(4);
    std::fs::remove_dir_all(&node_dir).unwrap();
    // The replacement disk comes up empty under the same identity.
    let port = c.node_ports[4];
    let p = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .env("TESSERA_ADMIN_TOKEN", c.secrets().admin_token)
        .env("TESSERA_CLUSTER_SECRET", c.secrets().cluster_secret)
        .args([
            "node",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--node-id",
            id.trim(),
        ])
        .arg("--data-dir")
        .arg(&node_dir)
        .args([
            "--coordinator",
            &format!("http://{}", c.admin),
            "--zone",
            "z4",
            "--heartbeat-interval",
            "200ms",
        ])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    c.nodes[4] = Some(Proc(p));
    assert!(
        eventually(Duration::from_secs(20), || async {
            node.health().await.is_ok()
        })
        .await
    );
    assert_eq!(node.list(None, 1000).await.unwrap().len(), 0, "wiped");
    let (code, out, err) = c.repair_cli(&[]);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(
        node.list(None, 1000).await.unwrap().len(),
        before,
        "the node holds its shards again"
    );
    c.kill_node(0);
    c.kill_node(1);
    all_exact(
        &objs,
        "two other nodes dead after the wiped node was repaired",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_racing_overwrites_and_deletes_never_resurrects_or_mixes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 8, MANUAL).await;
    put(&c.url("race"), vec![]).await;
    let keys: Vec<String> = (0..12).map(|i| c.url(&format!("race/k{i}"))).collect();
    for (i, k) in keys.iter().enumerate() {
        assert_eq!(put(k, data(2 * MIB + i, i as u64)).await.0, 200);
    }
    c.kill_node(3);
    c.kill_node(6);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let admin = c.admin.clone();
    let token = c.secrets().admin_token;
    let repair = std::thread::spawn(move || repair_cli_at(&admin, &token, &["--concurrency", "2"]));
    // Meanwhile: overwrite even keys, delete odd ones.
    let mut expect: Vec<Option<Vec<u8>>> = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        if i % 2 == 0 {
            let b = data(MIB + 3 * i, 500 + i as u64);
            assert_eq!(put(k, b.clone()).await.0, 200);
            expect.push(Some(b));
        } else {
            assert_eq!(http().delete(k).send().await.unwrap().status(), 204);
            expect.push(None);
        }
    }
    repair.join().unwrap();
    let (code, out, err) = c.repair_cli(&[]);
    assert_eq!(code, 0, "{out} {err}");
    for (k, e) in keys.iter().zip(&expect) {
        let (s, got) = get(k).await;
        match e {
            Some(b) => assert!(s == 200 && got == *b, "{k}: not the latest version"),
            None => assert_eq!(s, 404, "{k}: deleted key resurrected"),
        }
    }
    // Nothing left behind: exactly the 6 live objects' shards remain on the live nodes.
    let addrs: Vec<_> = c
        .node_addrs()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 6)
        .map(|(_, a)| a)
        .collect();
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&c.secrets().cluster_secret, &addrs).await == 6 * 6
        })
        .await,
        "stale shards collected (have {})",
        shard_count(&c.secrets().cluster_secret, &addrs).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_killed_during_repair_then_repair_finishes_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 8, MANUAL).await;
    put(&c.url("crash"), vec![]).await;
    let objs: Vec<(String, Vec<u8>)> = (0..10)
        .map(|i| {
            (
                c.url(&format!("crash/o{i}")),
                data(3 * MIB + i, 70 + i as u64),
            )
        })
        .collect();
    put_all(&objs).await;
    c.kill_node(0);
    c.kill_node(1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let admin = c.admin.clone();
    let token = c.secrets().admin_token;
    let repair = std::thread::spawn(move || repair_cli_at(&admin, &token, &["--concurrency", "1"]));
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.restart_coordinator(); // SIGKILL mid-repair
                             // The CLI either saw its coordinator die (non-zero exit) or finished just before.
    let _ = repair.join().unwrap();
    c.wait_up(6).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // the dead nodes' grace, again
    let (code, out, err) = c.repair_cli(&[]);
    assert_eq!(code, 0, "{out} {err}");
    // Shards written by the interrupted run and never committed are collected: the six live
    // nodes hold exactly the ten objects' 6 shards each.
    let live: Vec<_> = c.node_addrs().into_iter().skip(2).collect();
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&c.secrets().cluster_secret, &live).await == 60
        })
        .await,
        "orphans of the interrupted repair remain: {}",
        shard_count(&c.secrets().cluster_secret, &live).await
    );
    c.kill_node(2);
    c.kill_node(3);
    all_exact(&objs, "after an interrupted and a finished repair").await;
}

/// The checksum `header` a HEAD with checksum mode returns for `url`.
async fn checksum_of(url: &str, header: &str) -> Option<String> {
    let r = http()
        .head(url)
        .header("x-amz-checksum-mode", "ENABLED")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "HEAD {url}");
    r.headers()
        .get(header)
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_is_rebuilt_from_the_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("reb"), vec![]).await;
    put(&c.url("reb2"), vec![]).await;
    let mut objs = objects(&c, "reb");
    objs.push((c.url("reb2/nested/key.bin"), data(5 * MIB, 9)));
    put_all(&objs).await;
    // A multipart object (restored from its manifest), a single PUT that replaced a
    // multipart object, and an upload in progress whose parts a rebuild must not restore
    // as an object.
    let mp_parts = vec![data(5 * MIB, 31), data(5 * MIB + 7, 32), data(1000, 33)];
    let mp_url = c.url("reb2/multi.bin");
    let mp_etag = put_multipart(&mp_url, &mp_parts).await;
    objs.push((mp_url.clone(), mp_parts.concat()));
    let replaced = c.url("reb2/replaced.bin");
    put_multipart(&replaced, &[data(5 * MIB, 41), data(10, 42)]).await;
    objs.push((replaced.clone(), data(1234, 43)));
    assert_eq!(put(&replaced, data(1234, 43)).await.0, 200);
    let r = http()
        .post(format!("{}?uploads", c.url("reb2/inflight.bin")))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    let upload = common::xml_value(&text, "UploadId");
    let upload = upload.as_str();
    let r = http()
        .put(format!(
            "{}?partNumber=1&uploadId={upload}",
            c.url("reb2/inflight.bin")
        ))
        .body(data(MIB, 51))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // An overwritten key: the newest version must win.
    let newest = data(MIB / 2, 77);
    assert_eq!(put(&objs[3].0, newest.clone()).await.0, 200);
    objs[3].1 = newest;
    let r = http().head(&objs[4].0).send().await.unwrap();
    let etag = r.headers()["etag"].clone();
    // Checksums computed at upload, of a small (batched) and a streamed PUT.
    let mut summed = Vec::new();
    for (name, len) in [("small", 1000), ("big", 3 * MIB)] {
        use base64::Engine;
        use sha2::Digest;
        let url = c.url(&format!("reb2/sum-{name}"));
        let body = data(len, 61);
        let header = "x-amz-checksum-sha256";
        let value = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
        let r = http()
            .put(&url)
            .header(header, &value)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(checksum_of(&url, header).await.as_ref(), Some(&value));
        summed.push((url.clone(), header, value));
        objs.push((url, body));
    }
    // The metadata is lost; the secrets, kept elsewhere by an operator, are not.
    c.wipe_metadata_and_rebuild(6).await;
    all_exact(&objs, "after metadata rebuild").await;
    let r = http().head(&mp_url).send().await.unwrap();
    assert_eq!(
        r.headers()["etag"].to_str().unwrap(),
        mp_etag,
        "multipart ETag restored"
    );
    let r = http()
        .get(format!("{mp_url}?partNumber=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-amz-mp-parts-count"], "3", "parts restored");
    assert!(r.bytes().await.unwrap()[..] == mp_parts[1][..]);
    assert_eq!(
        get(&c.url("reb2/inflight.bin")).await.0,
        404,
        "a part of an unfinished upload is not an object"
    );
    let r = http().head(&objs[4].0).send().await.unwrap();
    assert_eq!(
        r.headers()["etag"],
        etag,
        "ETag restored from the shard headers"
    );
    for (url, header, value) in &summed {
        assert_eq!(
            checksum_of(url, header).await.as_ref(),
            Some(value),
            "{header} of {url} restored from the shard headers"
        );
    }
    let (_, list) = get(&c.url("")).await;
    let list = String::from_utf8(list).unwrap();
    assert!(
        list.contains("<Name>reb</Name>") && list.contains("<Name>reb2</Name>"),
        "{list}"
    );
}

/// Object lock survives the loss of the metadata: a rebuild from the nodes alone restores
/// locked versions (erasure coded and packed) with their retention, legal hold and tags, in
/// a bucket that is versioned and locked again, so neither a delete nor an overwrite can
/// remove them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_never_unlocks_a_locked_version() {
    use base64::Engine;
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    let r = http()
        .put(c.url("vault"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let until = "2099-01-01T00:00:00Z";
    // Erasure coded with COMPLIANCE retention and tags; packed (small) under a legal hold;
    // one more under the bucket's default retention, set after the bucket was made.
    let r = http()
        .put(format!("{}?object-lock", c.url("vault")))
        .body("<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>3650</Days></DefaultRetention></Rule></ObjectLockConfiguration>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let objs = [
        (
            "big",
            data(3 * MIB, 91),
            vec![
                ("x-amz-object-lock-mode", "COMPLIANCE"),
                ("x-amz-object-lock-retain-until-date", until),
                ("x-amz-tagging", "kind=backup"),
            ],
        ),
        (
            "small",
            data(700, 92),
            vec![("x-amz-object-lock-legal-hold", "ON")],
        ),
        ("default", data(MIB, 93), vec![]),
    ];
    let mut ids = Vec::new();
    for (name, body, headers) in &objs {
        let sum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(body));
        let mut req = http()
            .put(c.url(&format!("vault/{name}")))
            .header("x-amz-checksum-sha256", sum);
        for (h, v) in headers {
            req = req.header(*h, *v);
        }
        let r = req.body(body.clone()).send().await.unwrap();
        let id = r.headers()["x-amz-version-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(r.status(), 200, "{name}: {}", r.text().await.unwrap());
        ids.push(id);
    }
    // A legal hold placed after the write is in the journal, not in the shards.
    let r = http()
        .put(format!("{}?legal-hold", c.url("vault/big")))
        .body("<LegalHold><Status>ON</Status></LegalHold>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    journal_written_at(&c.admin_http(), &c.admin).await;
    c.wipe_metadata_and_rebuild(6).await;
    let text =
        |url: String| async move { http().get(url).send().await.unwrap().text().await.unwrap() };
    let retention = text(format!("{}?retention", c.url("vault/big"))).await;
    assert!(
        retention.contains("<Mode>COMPLIANCE</Mode>") && retention.contains("2099-01-01T00:00:00"),
        "{retention}"
    );
    let hold = text(format!("{}?legal-hold", c.url("vault/small"))).await;
    assert!(hold.contains("<Status>ON</Status>"), "{hold}");
    let hold = text(format!("{}?legal-hold", c.url("vault/big"))).await;
    assert!(
        hold.contains("<Status>ON</Status>"),
        "placed after the write: {hold}"
    );
    let retention = text(format!("{}?retention", c.url("vault/default"))).await;
    assert!(retention.contains("<Mode>GOVERNANCE</Mode>"), "{retention}");
    let tags = text(format!("{}?tagging", c.url("vault/big"))).await;
    assert!(
        tags.contains("<Key>kind</Key>") && tags.contains("<Value>backup</Value>"),
        "{tags}"
    );
    let versioning = text(format!("{}?versioning", c.url("vault"))).await;
    assert!(
        versioning.contains("<Status>Enabled</Status>"),
        "{versioning}"
    );
    // The versions keep their ids (the journal); deleting them is refused; an overwrite
    // makes a new version and keeps the locked one; a plain DELETE only writes a delete
    // marker.
    for ((name, _, _), id) in objs.iter().zip(&ids) {
        let r = http()
            .delete(format!(
                "{}?versionId={id}",
                c.url(&format!("vault/{name}"))
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{name}: {}", r.text().await.unwrap());
    }
    assert_eq!(put(&c.url("vault/big"), b"new".to_vec()).await.0, 200);
    assert_eq!(
        http()
            .delete(c.url("vault/small"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    for ((name, body, _), id) in objs.iter().zip(&ids) {
        let (status, got) = get(&format!(
            "{}?versionId={id}",
            c.url(&format!("vault/{name}"))
        ))
        .await;
        assert_eq!(status, 200, "{name}");
        assert!(got == *body, "{name}: locked bytes intact");
    }
}

/// The time an HTTP date (`Sat, 05 Dec 2026 06:10:00 GMT`) names.
fn time_of_http_date(s: &str) -> std::time::SystemTime {
    let f: Vec<&str> = s.split_whitespace().collect();
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| *m == f[2])
    .unwrap()
        + 1;
    humantime::parse_rfc3339(&format!("{}-{month:02}-{:0>2}T{}Z", f[3], f[1], f[4])).unwrap()
}

/// A coordinator whose clock was set two hours ahead cannot end a one-hour COMPLIANCE
/// retention early: its operation times follow the storage nodes' clocks (at most a minute
/// ahead of them), so the locked version stays undeletable with its bytes intact, and the
/// times it stamps read as the nodes' time, not its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_clock_set_forward_does_not_end_retention_early() {
    use base64::Engine;
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start_with(dir.path(), 6, &["--clock-ahead", "2h"]).await;
    let r = http()
        .put(c.url("vault"))
        .header("x-amz-bucket-object-lock-enabled", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let now = std::time::SystemTime::now();
    let until = humantime::format_rfc3339_seconds(now + Duration::from_secs(3600)).to_string();
    let body = data(100_000, 95);
    let sum = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&body));
    let r = http()
        .put(c.url("vault/backup"))
        .header("x-amz-checksum-sha256", sum)
        .header("x-amz-object-lock-mode", "COMPLIANCE")
        .header("x-amz-object-lock-retain-until-date", &until)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let id = r.headers()["x-amz-version-id"]
        .to_str()
        .unwrap()
        .to_string();
    let url = format!("{}?versionId={id}", c.url("vault/backup"));
    let r = http().delete(&url).send().await.unwrap();
    assert_eq!(
        r.status(),
        403,
        "a clock two hours ahead must not end a one-hour retention"
    );
    let r = http().get(&url).send().await.unwrap();
    let stamped = r.headers()["last-modified"].to_str().unwrap().to_string();
    let stamped = time_of_http_date(&stamped);
    assert!(
        r.bytes().await.unwrap()[..] == body[..],
        "locked bytes intact"
    );
    let ahead = stamped.duration_since(now).unwrap_or_default();
    assert!(
        ahead < Duration::from_secs(120),
        "stamped {ahead:?} ahead of the nodes' clocks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_rejects_bad_input_and_changes_nothing() {
    let bin = env!("CARGO_BIN_EXE_tessera");
    // Unreachable coordinator.
    let port = free_port();
    let out = Command::new(bin)
        .args([
            "repair",
            "--coordinator",
            &format!("http://127.0.0.1:{port}"),
        ])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("bad"), vec![]).await;
    let objs = objects(&c, "bad");
    put_all(&objs).await;
    c.kill_node(0);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let before = shard_count(&c.secrets().cluster_secret, &c.node_addrs()[1..]).await;
    for (args, msg) in [
        (vec!["--node", "ffffffffffffffff"], "unknown node"),
        (vec!["--concurrency", "0"], "concurrency"),
        (vec!["--bucket", "nope"], "bucket"),
    ] {
        let (code, out, err) = c.repair_cli(&args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(msg), "{args:?}: {out} {err}");
    }
    assert_eq!(
        shard_count(&c.secrets().cluster_secret, &c.node_addrs()[1..]).await,
        before,
        "nothing changed"
    );
    // Status works and shows the dead node.
    let out = Command::new(bin)
        .env("TESSERA_ADMIN_TOKEN", c.secrets().admin_token)
        .args([
            "status",
            "--coordinator",
            &format!("http://{}", c.admin),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["cluster"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["state"] == "down")
            .count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_that_meets_a_missing_shard_queues_repair_at_once() {
    let dir = tempfile::tempdir().unwrap();
    // Background repair on, but its periodic scan far away: only the read can trigger it.
    let c = ProcCluster::start_with(
        dir.path(),
        6,
        &["--repair-grace", "1s", "--repair-interval", "1h"],
    )
    .await;
    put(&c.url("readrep"), vec![]).await;
    let body = data(3 * MIB, 5);
    assert_eq!(put(&c.url("readrep/o"), body.clone()).await.0, 200);
    // Remove one data shard behind the coordinator's back.
    let (_, node, id) = holder_of_shard_0(&c).await;
    node.delete(id).await.unwrap();
    assert!(
        get(&c.url("readrep/o")).await.1 == body,
        "the read is served from the other shards"
    );
    assert!(
        eventually(Duration::from_secs(15), || async {
            node.info(id).await.is_ok()
        })
        .await,
        "read-repair put the shard back"
    );
    assert_eq!(c.repair_cli(&["--dry-run"]).0, 0);
}

/// Raw-read connections pooled before a node restarts are dead afterwards; the next read
/// through the same pool reconnects instead of failing (a GET would otherwise fail over to
/// other shards and decode after every node restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn raw_reads_reconnect_after_a_node_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("rawre"), vec![]).await;
    let body = data(2 * MIB, 8);
    assert_eq!(put(&c.url("rawre/o"), body.clone()).await.0, 200);
    let (i, node, id) = holder_of_shard_0(&c).await;
    let addr = c.node_addrs()[i].to_string();
    let pool = tessera_node::raw::RawPool::new(&c.secrets().cluster_secret, &Default::default());
    let t = Duration::from_secs(10);
    let len = node.info(id).await.unwrap().length;
    let before = pool.read(&addr, id, 0, len, t).await.unwrap().concat();
    c.restart_node(i);
    assert!(
        eventually(Duration::from_secs(15), || async {
            node.info(id).await.is_ok()
        })
        .await,
        "node {i} is back"
    );
    let after = pool.read(&addr, id, 0, len, t).await.unwrap().concat();
    assert!(before == after, "the same bytes after the restart");
    assert!(get(&c.url("rawre/o")).await.1 == body);
}

/// The node (its number, a client, the shard id) holding shard 0 of the cluster's one object.
async fn holder_of_shard_0(
    c: &ProcCluster,
) -> (usize, tessera_node::NodeClient, tessera_node::ShardId) {
    for (i, a) in c.node_addrs().into_iter().enumerate() {
        let n = node_client(&c.secrets().cluster_secret, a);
        let shards = n.list(None, 10).await.unwrap();
        if let Some(s) = shards.into_iter().find(|s| s.header.shard_index == 0) {
            return (i, n, s.header.shard_id());
        }
    }
    panic!("no node holds shard 0")
}

/// The coordinator verifies what nodes send (raw reads): bytes flipped on a node's disk while
/// it runs are found by a GET, which still returns the right bytes from other shards and
/// queues the damaged shard for repair at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_that_meets_a_corrupt_shard_is_served_and_queues_repair() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start_with(dir.path(), 6, &["--repair-interval", "1h"]).await;
    put(&c.url("rotread"), vec![]).await;
    let body = data(3 * MIB, 6);
    assert_eq!(put(&c.url("rotread/o"), body.clone()).await.0, 200);
    // Damage data shard 0 in place on its node (the node keeps running).
    let (i, node, id) = holder_of_shard_0(&c).await;
    assert!(flip_blob_bytes(&dir.path().join(format!("n{i}/shards"))) > 0);
    let t = Duration::from_secs(5);
    assert!(
        matches!(
            node.read(id, 0, 1 << 16, t).await,
            Err(tessera_node::StoreError::Corrupt(_))
        ),
        "the shard is damaged"
    );
    assert!(
        get(&c.url("rotread/o")).await.1 == body,
        "the read is served from the other shards"
    );
    assert!(
        eventually(Duration::from_secs(15), || async {
            node.read(id, 0, 1 << 16, t).await.is_ok()
        })
        .await,
        "read-repair rewrote the damaged shard"
    );
    assert!(get(&c.url("rotread/o")).await.1 == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_returns_drops_stale_shards() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("stale"), vec![]).await;
    let objs = objects(&c, "stale");
    put_all(&objs).await;
    let node = node_client(&c.secrets().cluster_secret, c.node_addrs()[1]);
    let old: Vec<_> = node
        .list(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.header.shard_id())
        .collect();
    assert_eq!(old.len(), objs.len());
    c.kill_node(1);
    // While it is down: delete two objects, overwrite the rest.
    for (i, (u, _)) in objs.iter().enumerate() {
        if i < 2 {
            assert_eq!(http().delete(u).send().await.unwrap().status(), 204);
        } else {
            // Five nodes up, w = k + 1 = 5: the overwrite lands with one shard recorded missing.
            assert_eq!(put(u, data(1000 + i, 9)).await.0, 200);
        }
    }
    c.restart_node(1);
    c.wait_up(6).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            match node.list(None, 100).await {
                Ok(l) => !l.iter().any(|s| old.contains(&s.header.shard_id())),
                Err(_) => false,
            }
        })
        .await,
        "stale shards of deleted and overwritten versions were removed from the returning node"
    );
    for (i, (u, _)) in objs.iter().enumerate() {
        let (s, got) = get(u).await;
        if i < 2 {
            assert_eq!(s, 404);
        } else {
            assert!(got == data(1000 + i, 9));
        }
    }
}

/// What a key may hold after a crash: its last acknowledged state, or the outcome of the one
/// operation that was in flight when the coordinator died.
#[derive(Clone, Default)]
struct KeyState {
    acked: Option<Vec<u8>>,
    in_flight: Option<Option<Vec<u8>>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_sigkilled_during_puts_overwrites_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(dir.path(), 6, MANUAL).await;
    put(&c.url("storm"), vec![]).await;
    let states: Vec<std::sync::Arc<std::sync::Mutex<KeyState>>> =
        (0..8).map(|_| Default::default()).collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (k, st) in states.iter().enumerate() {
        let (st, stop, url) = (st.clone(), stop.clone(), c.url(&format!("storm/key{k}")));
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap();
            let mut round = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                round += 1;
                let delete = round.is_multiple_of(4);
                // Even keys small (the batched path), odd keys streamed.
                let len = if k % 2 == 0 {
                    2_000 + (round as usize % 7) * 7_000
                } else {
                    300_000 + (round as usize % 7) * 200_000
                };
                let body = data(len, k as u64 * 1000 + round);
                let next = if delete { None } else { Some(body.clone()) };
                st.lock().unwrap().in_flight = Some(next.clone());
                let ok = if delete {
                    client
                        .delete(&url)
                        .send()
                        .await
                        .map(|r| r.status() == 204)
                        .unwrap_or(false)
                } else {
                    client
                        .put(&url)
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status() == 200)
                        .unwrap_or(false)
                };
                let mut s = st.lock().unwrap();
                if ok {
                    s.acked = next;
                    s.in_flight = None;
                } else {
                    // Failed: the coordinator is gone; this op may or may not have committed.
                    return;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.coordinator.kill();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    c.restart_coordinator();
    c.wait_up(6).await;
    let mut checked = 0;
    for (k, st) in states.iter().enumerate() {
        let s = st.lock().unwrap().clone();
        let (status, got) = get(&c.url(&format!("storm/key{k}"))).await;
        let now = (status == 200).then_some(got);
        assert!(status == 200 || status == 404, "key{k}: status {status}");
        let allowed = now == s.acked || s.in_flight.as_ref().is_some_and(|f| *f == now);
        assert!(
            allowed,
            "key{k}: holds neither its acknowledged state nor its in-flight write"
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
    // Everything the interrupted writes left on the nodes is collected: only the shards of the
    // objects that exist remain.
    let live = {
        let mut n = 0;
        for k in 0..8 {
            if get(&c.url(&format!("storm/key{k}"))).await.0 == 200 {
                n += 1;
            }
        }
        n
    };
    let addrs = c.node_addrs();
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&c.secrets().cluster_secret, &addrs).await == live * 6
        })
        .await,
        "orphaned shards remain: {} shards for {live} objects",
        shard_count(&c.secrets().cluster_secret, &addrs).await
    );
}

/// A versioned bucket's history survives the loss of the metadata: a rebuild from the nodes
/// alone lists the same versions and delete markers, with the same ids, in the same order,
/// as before (erasure-coded and packed versions, a version from before versioning, a version
/// deleted by id, delete markers, `null` versions written while suspended) and reads every
/// version back byte-exact; the bucket is suspended again as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rebuild_restores_every_version_in_commit_order_with_its_id() {
    let dir = tempfile::tempdir().unwrap();
    // Journal objects a second old are merged: the rebuild reads a merged journal.
    let flags = [MANUAL, &["--journal-merge-after", "1s"]].concat();
    let mut c = ProcCluster::start_with(dir.path(), 6, &flags).await;
    let h = http();
    let base = c.url("hist");
    let versioning = |state: &str| {
        let (h, url, state) = (h.clone(), format!("{base}?versioning"), state.to_string());
        async move {
            let r = h
                .put(url)
                .body(format!(
                    "<VersioningConfiguration><Status>{state}</Status></VersioningConfiguration>"
                ))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    assert_eq!(put(&c.url("hist"), Vec::new()).await.0, 200);
    let write = |key: &'static str, len: usize, seed: u64| {
        let url = format!("{base}/{key}");
        let body = data(len, seed);
        async move {
            let r = http().put(url).body(body).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    // Before versioning: the key's version without a number.
    write("pre", 2 * MIB, 1).await;
    versioning("Enabled").await;
    write("pre", 600, 2).await;
    // Packed and erasure-coded versions of one key.
    write("a", 500, 3).await;
    write("a", MIB + 3, 4).await;
    write("a", 700, 5).await;
    // Two versions under a delete marker.
    write("b", 900, 6).await;
    write("b", 3 * MIB, 7).await;
    assert_eq!(
        h.delete(c.url("hist/b")).send().await.unwrap().status(),
        204
    );
    // A version deleted by id in the middle of a key's history.
    write("c", 100, 8).await;
    write("c", MIB, 9).await;
    write("c", 200, 10).await;
    let before = all_versions(&c.api, "hist").await;
    let middle = before
        .iter()
        .filter(|(k, _, _)| k == "c")
        .nth(1)
        .unwrap()
        .1
        .clone();
    let r = h
        .delete(format!("{}?versionId={middle}", c.url("hist/c")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // What came so far is written as a journal object of its own.
    journal_written_at(&c.admin_http(), &c.admin).await;
    // Tags set after the write are in the journal, not in the shards.
    let r = h
        .put(format!("{}?tagging", c.url("hist/c")))
        .body("<Tagging><TagSet><Tag><Key>set</Key><Value>later</Value></Tag></TagSet></Tagging>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A key whose only version is a delete marker.
    assert_eq!(
        h.delete(c.url("hist/gone")).send().await.unwrap().status(),
        204
    );
    // Suspended: `null` versions, the second replacing the first.
    versioning("Suspended").await;
    write("a", 800, 11).await;
    write("s", 300, 12).await;
    write("s", 2 * MIB, 13).await;
    let before = all_versions(&c.api, "hist").await;
    assert_eq!(before.len(), 13, "{before:?}");
    let mut contents = Vec::new();
    for (key, id, marker) in before.iter().filter(|(_, _, m)| !m) {
        let r = h
            .get(format!("{}?versionId={id}", c.url(&format!("hist/{key}"))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{key} {id} {marker}");
        contents.push(r.bytes().await.unwrap().to_vec());
    }
    journal_written_at(&c.admin_http(), &c.admin).await;
    // The journal objects are merged into one and the old ones collected: what the rebuild
    // reads is the merged object alone.
    let journal_objects = || async {
        let mut versions = std::collections::HashSet::new();
        for a in c.node_addrs() {
            for s in c.node_client(a).list(None, 10_000).await.unwrap() {
                if s.header.bucket == ".journal" {
                    versions.insert(s.header.version);
                }
            }
        }
        versions.len()
    };
    let merged = eventually(Duration::from_secs(30), || async {
        let log = std::fs::read_to_string(dir.path().join("coord.err.log")).unwrap_or_default();
        log.contains("journal objects merged") && journal_objects().await == 1
    })
    .await;
    assert!(
        merged,
        "{} journal objects on the nodes",
        journal_objects().await
    );
    let report = c.wipe_metadata_and_rebuild(6).await;
    let after = all_versions(&c.api, "hist").await;
    assert_eq!(
        after, before,
        "the same history after the rebuild ({report})"
    );
    for ((key, id, _), body) in before.iter().filter(|(_, _, m)| !m).zip(&contents) {
        let r = h
            .get(format!("{}?versionId={id}", c.url(&format!("hist/{key}"))))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{key} {id}");
        assert!(
            r.bytes().await.unwrap()[..] == body[..],
            "{key} {id} byte-exact"
        );
    }
    let tags = h
        .get(format!("{}?tagging", c.url("hist/c")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(tags.contains("<Value>later</Value>"), "{tags}");
    let r = h.get(c.url("hist/b")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-amz-delete-marker"], "true");
    let text = h
        .get(format!("{}?versioning", c.url("hist")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("<Status>Suspended</Status>"), "{text}");
    // What comes next is numbered after everything restored.
    versioning("Enabled").await;
    let r = h.put(c.url("hist/a")).body("after").send().await.unwrap();
    let id = r.headers()["x-amz-version-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        before.iter().all(|(_, old, _)| old == "null" || *old < id),
        "{id} is numbered after every restored version: {before:?}"
    );
    let (_, body) = get(&c.url("hist/a")).await;
    assert_eq!(body, b"after");
}
