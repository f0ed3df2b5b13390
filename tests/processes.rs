//! Real `tessera coordinator` and `tessera node` processes, killed with SIGKILL.

mod common;
use common::procs::*;
use common::*;

use std::process::Command;
use std::time::Duration;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkilled_nodes_and_coordinator_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 6).await;
    assert_eq!(put(&c.url("proc"), vec![]).await.0, 200);
    let objects: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                c.url(&format!("proc/o{i}")),
                data(i * 900_000 + 1, 100 + i as u64),
            )
        })
        .collect();
    for (u, b) in &objects {
        assert_eq!(put(u, b.clone()).await.0, 200);
    }
    // m = 2 node processes SIGKILLed: every object reads back byte-exact.
    c.kill_node(1);
    c.kill_node(4);
    for (u, b) in &objects {
        assert!(get(u).await.1 == *b, "2 nodes dead: {u}");
    }
    // Coordinator SIGKILLed and restarted: committed objects and registrations survive.
    c.coordinator.kill();
    c.coordinator = ProcCluster::spawn_coordinator(dir.path(), &c.api, &c.admin);
    c.wait_up(4).await;
    let cl = c.cluster_json().await;
    let nodes = cl["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "all six registrations recovered: {cl}");
    assert_eq!(nodes.iter().filter(|n| n["state"] == "down").count(), 2);
    for (u, b) in &objects {
        assert!(get(u).await.1 == *b, "after coordinator restart: {u}");
    }
    // m + 1 dead: 503 with an S3 error, never wrong bytes.
    c.kill_node(0);
    for (u, _) in &objects[1..] {
        let (s, body) = get(u).await;
        assert_eq!(
            (s, code(&String::from_utf8_lossy(&body)).as_str()),
            (503, "ServiceUnavailable"),
            "{u}"
        );
    }
    // Dead nodes come back on new ports: same identities, everything readable again.
    for i in [0, 1, 4] {
        let port = free_port();
        c.node_ports[i] = port;
        let p = c.spawn_node(i, port);
        c.nodes[i] = Some(p);
    }
    c.wait_up(6).await;
    assert_eq!(
        c.cluster_json().await["nodes"].as_array().unwrap().len(),
        6,
        "restarted nodes kept their ids"
    );
    for (u, b) in &objects {
        assert!(get(u).await.1 == *b, "after nodes return: {u}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_sigkilled_mid_put_serves_no_torn_shard_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 6).await;
    put(&c.url("torn"), vec![]).await;
    let body = data(24 * MIB, 8);
    let url = c.url("torn/big");
    let r = slow_put(&url, &body, 10, || c.kill_node(3)).await.unwrap();
    assert_eq!(r.status(), 200, "w = 5 of 6 shards still land");
    let version = r.headers().get("etag").cloned();
    assert!(version.is_some());
    // The node restarts: its interrupted shard write is discarded, never served.
    let port = c.node_ports[3];
    let p = c.spawn_node(3, port);
    c.nodes[3] = Some(p);
    c.wait_up(6).await;
    let node = c.node_client(format!("127.0.0.1:{port}").parse().unwrap());
    assert!(
        eventually(Duration::from_secs(20), || async {
            node.health().await.is_ok()
        })
        .await
    );
    let shards = node.list(None, 1000).await.unwrap();
    assert!(
        shards.is_empty(),
        "torn shard visible after restart: {shards:?}"
    );
    assert!(get(&url).await.1 == body);
    // With the restarted node's shard missing, one more loss is still tolerated.
    c.kill_node(0);
    assert!(
        get(&url).await.1 == body,
        "reads with one recorded-missing and one dead shard"
    );
}

fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// A 512 MiB PUT and GET through a coordinator process: its peak RSS grows by a bounded
/// amount (stripes in flight), not with the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_memory_stays_bounded_for_a_512_mib_object() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 6).await;
    put(&c.url("big"), vec![]).await;
    let pid = c.coordinator.pid();
    let before = status_kib(pid, "VmRSS:");
    const TOTAL: usize = 512 * MIB;
    let stream = futures::stream::unfold(
        (0usize, blake3::Hasher::new().finalize_xof()),
        |(sent, mut xof)| async move {
            if sent >= TOTAL {
                return None;
            }
            let mut buf = vec![0u8; MIB];
            xof.fill(&mut buf);
            Some((Ok::<_, std::io::Error>(buf), (sent + MIB, xof)))
        },
    );
    let started = std::time::Instant::now();
    let r = http()
        .put(c.url("big/object"))
        .header("content-length", TOTAL)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let put_secs = started.elapsed().as_secs_f64();
    let peak_put = status_kib(pid, "VmHWM:");
    // Stream it back, hashing as it arrives.
    let mut expect = vec![0u8; TOTAL.min(MIB)];
    let mut xof = blake3::Hasher::new().finalize_xof();
    let mut want = blake3::Hasher::new();
    for _ in 0..TOTAL / MIB {
        xof.fill(&mut expect);
        want.update(&expect);
    }
    let started = std::time::Instant::now();
    let mut resp = http().get(c.url("big/object")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = blake3::Hasher::new();
    let mut n = 0usize;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        n += chunk.len();
        got.update(&chunk);
    }
    let get_secs = started.elapsed().as_secs_f64();
    assert_eq!(n, TOTAL);
    assert_eq!(
        got.finalize(),
        want.finalize(),
        "512 MiB read back byte-exact"
    );
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "512 MiB: PUT {:.0} MB/s, GET {:.0} MB/s; coordinator RSS before {} MiB, peak after PUT {} MiB, after GET {} MiB",
        TOTAL as f64 / 1e6 / put_secs,
        TOTAL as f64 / 1e6 / get_secs,
        before / 1024,
        peak_put / 1024,
        peak / 1024
    );
    assert!(
        peak.saturating_sub(before) < 96 * 1024,
        "coordinator RSS grew by {} MiB",
        (peak - before) / 1024
    );
}

/// 1 GiB through boto3's multipart upload (its defaults: 8 MiB parts, 10 at a time) and back:
/// the coordinator's peak RSS is bounded by the parts in flight, not the object.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_memory_stays_bounded_for_a_1_gib_multipart_upload() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 6).await;
    let pid = c.coordinator.pid();
    let r = c
        .admin_http()
        .post(format!("http://{}/keys", c.admin))
        .json(&serde_json::json!({ "name": "big" }))
        .send()
        .await
        .unwrap();
    let key: serde_json::Value = r.json().await.unwrap();
    let before = status_kib(pid, "VmRSS:");
    run_client(
        "python3",
        "big_multipart.py",
        &[
            ("ENDPOINT", format!("http://{}", c.api)),
            ("KEY", key["access_key_id"].as_str().unwrap().to_string()),
            (
                "SECRET",
                key["secret_access_key"].as_str().unwrap().to_string(),
            ),
            ("SIZE", (1usize << 30).to_string()),
            ("FILE", dir.path().join("one-gib").display().to_string()),
        ],
    )
    .await;
    let peak = status_kib(pid, "VmHWM:");
    eprintln!(
        "1 GiB multipart via boto3: coordinator RSS before {} MiB, peak {} MiB",
        before / 1024,
        peak / 1024
    );
    assert!(
        peak.saturating_sub(before) < 256 * 1024,
        "coordinator RSS grew by {} MiB",
        (peak - before) / 1024
    );
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// A hung node (SIGSTOP: it accepts connections but never answers) does not hang reads:
/// other shards are asked for and the object is served well before the read timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hung_node_is_read_around() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 6).await;
    put(&c.url("hung"), vec![]).await;
    let body = data(5 * MIB + 3, 4);
    assert_eq!(put(&c.url("hung/o"), body.clone()).await.0, 200);
    let pids: Vec<u32> = c.nodes.iter().map(|n| n.as_ref().unwrap().pid()).collect();
    signal(pids[0], "-STOP");
    signal(pids[2], "-STOP");
    let started = std::time::Instant::now();
    let got = get(&c.url("hung/o")).await.1;
    let secs = started.elapsed().as_secs_f64();
    signal(pids[0], "-CONT");
    signal(pids[2], "-CONT");
    assert!(got == body);
    // The shard read timeout is 10 s; hedged reads answer long before it.
    assert!(secs < 8.0, "GET with two hung nodes took {secs:.1} s");
}

/// The coordinator SIGKILLed in the middle of PUTs: after restart nothing partial is visible,
/// acknowledged objects are intact, and the interrupted writes' shards are collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn coordinator_killed_mid_put_leaves_no_partial_object_and_collects_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 6).await;
    put(&c.url("crash"), vec![]).await;
    let done = data(2 * MIB, 1);
    assert_eq!(put(&c.url("crash/acked"), done.clone()).await.0, 200);
    let (tx, body_stream) = channel_body();
    let req = tokio::spawn(
        http()
            .put(c.url("crash/partial"))
            .header("content-length", 32 * MIB)
            .body(body_stream)
            .send(),
    );
    for i in 0..12u64 {
        tx.send(Ok(data(MIB, 50 + i))).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.coordinator.kill();
    drop(tx);
    assert!(
        req.await.unwrap().is_err(),
        "the client sees the connection die"
    );
    c.coordinator = ProcCluster::spawn_coordinator(dir.path(), &c.api, &c.admin);
    c.wait_up(6).await;
    assert_eq!(get(&c.url("crash/partial")).await.0, 404);
    assert!(get(&c.url("crash/acked")).await.1 == done);
    let addrs: Vec<std::net::SocketAddr> = c
        .node_ports
        .iter()
        .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
        .collect();
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&c.secrets().cluster_secret, &addrs).await == 6
        })
        .await,
        "orphaned shards collected; only the acknowledged object's 6 remain"
    );
}
