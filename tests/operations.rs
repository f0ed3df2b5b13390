//! Operating a cluster, on real `tessera coordinator` and `tessera node` processes: metrics,
//! health, request ids.

mod common;
use common::procs::*;
use common::*;

use std::time::Duration;

const MIB: usize = 1 << 20;

/// Every sample of metric `name` (any labels): (label text, value).
fn samples(text: &str, name: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (labels, v) = rest.rsplit_once(' ')?;
            if !(labels.is_empty() || labels.starts_with('{')) {
                return None;
            }
            Some((labels.to_string(), v.parse().ok()?))
        })
        .collect()
}

async fn scrape(c: &ProcCluster) -> String {
    let r = c
        .admin_http()
        .get(format!("http://{}/metrics", c.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    r.text().await.unwrap()
}

/// A health endpoint's status and JSON body (no token).
async fn health(url: &str) -> (u16, serde_json::Value) {
    let r = http().get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Node logs (`n{i}.err.log`: the log goes to stderr) that name `id` in an access-log line.
fn nodes_logging(dir: &std::path::Path, nodes: usize, id: &str) -> usize {
    (0..nodes)
        .filter(|i| {
            std::fs::read_to_string(dir.join(format!("n{i}.err.log")))
                .unwrap_or_default()
                .lines()
                .any(|l| l.contains("shard request") && l.contains(id))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_health_and_request_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 6).await;
    let admin = format!("http://{}", c.admin);

    // Health needs no token; metrics do.
    let (status, live) = health(&format!("{admin}/health/live")).await;
    assert_eq!((status, &live["live"]), (200, &serde_json::json!(true)));
    let (status, ready) = health(&format!("{admin}/health/ready")).await;
    assert_eq!(status, 200);
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["nodes_up"], 6);
    let anon = http().get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(anon.status(), 401, "metrics without the admin token");

    // Traffic: 3 objects (two streamed, one small enough for the batched path), read back,
    // and one read of a missing key.
    assert_eq!(put(&c.url("met"), vec![]).await.0, 200);
    let sizes = [3 * MIB + 5, MIB, 10_000];
    let mut put_ids = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let r = http()
            .put(c.url(&format!("met/o{i}")))
            .body(data(*n, i as u64))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let id = r.headers()["x-amz-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 16, "{id}");
        assert!(id.chars().all(|ch| ch.is_ascii_hexdigit()), "{id}");
        put_ids.push(id);
    }
    let mut get_ids = Vec::new();
    for (i, n) in sizes.iter().enumerate() {
        let r = http()
            .get(c.url(&format!("met/o{i}")))
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-amz-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(r.bytes().await.unwrap() == data(*n, i as u64));
        get_ids.push(id);
    }
    let missing = http().get(c.url("met/none")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let id404 = missing.headers()["x-amz-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let body = missing.text().await.unwrap();
    assert!(
        body.contains(&format!("<RequestId>{id404}</RequestId>")),
        "{body}"
    );
    assert!(!put_ids.contains(&get_ids[0]), "ids are per request");

    let m = scrape(&c).await;
    let total: usize = sizes.iter().sum();
    assert_eq!(
        sample(&m, r#"tessera_requests_total{op="PutObject",status="200"}"#),
        Some(3.0),
        "{m}"
    );
    assert_eq!(
        sample(&m, r#"tessera_requests_total{op="GetObject",status="200"}"#),
        Some(3.0)
    );
    assert_eq!(
        sample(&m, r#"tessera_requests_total{op="GetObject",status="404"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"tessera_requests_total{op="CreateBucket",status="200"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &m,
            r#"tessera_request_duration_seconds_count{op="PutObject"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(&m, "tessera_received_bytes_total"),
        Some(total as f64)
    );
    assert!(sample(&m, "tessera_sent_bytes_total").unwrap() >= total as f64);
    // 3 MiB + 5 is 4 stripes of 1 MiB, 1 MiB is 1, 10 KB is 1.
    assert_eq!(
        sample(&m, r#"tessera_stripes_total{kind="encoded"}"#),
        Some(6.0)
    );
    assert!(sample(&m, r#"tessera_stripes_total{kind="read"}"#).unwrap() >= 6.0);
    assert_eq!(sample(&m, "tessera_degraded_reads_total"), Some(0.0));
    let up = samples(&m, "tessera_node_up");
    assert_eq!(up.len(), 6, "{up:?}");
    assert!(up.iter().all(|(_, v)| *v == 1.0), "{up:?}");
    assert_eq!(samples(&m, "tessera_node_used_bytes").len(), 6);
    for name in [
        "tessera_repair_queue_objects",
        "tessera_objects_unrecoverable",
        "tessera_gc_backlog_records",
        "tessera_metadata_rocksdb_pending_compaction_bytes",
        "tessera_metadata_rocksdb_write_stopped",
    ] {
        assert!(sample(&m, name).is_some(), "{name} missing:\n{m}");
    }

    // Every node that served a shard logged the client request's id: all six shard writes of
    // a streamed PUT, the batched shard writes of the small one, at least k reads per GET.
    let d = dir.path().to_path_buf();
    for (id, at_least) in [
        (&put_ids[0], 6),
        (&put_ids[2], 6),
        (&get_ids[0], 4),
        (&get_ids[2], 4),
    ] {
        assert!(
            eventually(Duration::from_secs(5), || {
                let d = d.clone();
                let id = id.clone();
                async move { nodes_logging(&d, 6, &id) >= at_least }
            })
            .await,
            "request {id} logged by {} nodes, wanted {at_least}",
            nodes_logging(&d, 6, id)
        );
    }
    assert_eq!(nodes_logging(&d, 6, &id404), 0, "a 404 reads no shard");

    // A node's own metrics, behind the cluster secret.
    let node = c.node_addrs()[0];
    let r = http()
        .get(format!("http://{node}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "node metrics without the cluster secret");
    let nm = c.node_metrics_text(node).await;
    assert!(
        sample(&nm, "tessera_node_shard_written_bytes_total").unwrap() > 0.0,
        "{nm}"
    );
    // Reads: a GET reads the k data shards, so a given node may hold only parity of these
    // objects and have served none; some node has.
    let mut reads = 0.0;
    for node in c.node_addrs() {
        reads += samples(
            &c.node_metrics_text(node).await,
            "tessera_node_requests_total",
        )
        .iter()
        .filter(|(l, _)| l.contains("raw_read") || l.contains("read_shard"))
        .map(|(_, v)| v)
        .sum::<f64>();
    }
    assert!(reads >= 4.0, "the nodes served {reads} reads\n{nm}");
    assert!(sample(&nm, "tessera_node_rocksdb_pending_compaction_bytes").is_some());
    assert!(sample(&nm, "tessera_node_free_bytes").unwrap() > 0.0);

    // Two nodes die: reads of the big object reconstruct, the nodes show down, and the
    // cluster is no longer ready for a 4+2 write (quorum k+1 = 5 nodes).
    // (Placement is random per object: with 8 objects, some data shard is on a dead node.)
    for i in 0..5 {
        assert_eq!(
            put(&c.url(&format!("met/x{i}")), data(10_000, 50 + i))
                .await
                .0,
            200
        );
    }
    c.kill_node(0);
    c.kill_node(1);
    for (i, n) in sizes.iter().enumerate() {
        assert!(get(&c.url(&format!("met/o{i}"))).await.1 == data(*n, i as u64));
    }
    for i in 0..5 {
        assert!(get(&c.url(&format!("met/x{i}"))).await.1 == data(10_000, 50 + i));
    }
    assert!(
        eventually(Duration::from_secs(10), || {
            let c = &c;
            async move {
                let m = scrape(c).await;
                samples(&m, "tessera_node_up")
                    .iter()
                    .filter(|(_, v)| *v == 0.0)
                    .count()
                    == 2
            }
        })
        .await
    );
    let m = scrape(&c).await;
    assert!(
        sample(&m, "tessera_degraded_reads_total").unwrap() >= 1.0,
        "{m}"
    );
    assert!(sample(&m, r#"tessera_stripes_total{kind="reconstructed"}"#).unwrap() >= 1.0);
    let (status, ready) = health(&format!("{admin}/health/ready")).await;
    assert_eq!(status, 503);
    assert_eq!(ready["ready"], false);
    assert_eq!(ready["nodes_up"], 4);
    assert!(
        ready["reasons"][0].as_str().unwrap().contains("4 nodes up"),
        "{ready}"
    );
    // Liveness is unaffected.
    let (status, live) = health(&format!("{admin}/health/live")).await;
    assert_eq!((status, &live["live"]), (200, &serde_json::json!(true)));
}

fn report(out: &str) -> serde_json::Value {
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repair_verify_finds_unreported_corruption_and_grace_zero_rebuilds_now() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 7).await;
    assert_eq!(put(&c.url("ver"), vec![]).await.0, 200);
    let objects: Vec<(String, Vec<u8>)> = (0..6)
        .map(|i| {
            (
                c.url(&format!("ver/o{i}")),
                data(3 * MIB + i, 300 + i as u64),
            )
        })
        .collect();
    for (u, b) in &objects {
        assert_eq!(put(u, b.clone()).await.0, 200);
    }
    // Bytes flipped on one node's disk; nothing reads them, so nothing reports them.
    let flipped = flip_blob_bytes(&dir.path().join("n0"));
    assert!(flipped > 0, "node 0 holds shard files");
    let (code, out, err) = c.repair_cli(&["--json"]);
    let r = report(&out);
    assert_eq!(code, 0, "{out} {err}");
    assert_eq!(
        r["corrupt_found"], 0,
        "a plain repair does not read shards: {r}"
    );
    assert_eq!(r["shards_rebuilt"], 0);

    // The deep pass reads every shard, finds the corrupt ones and rebuilds them.
    let (code, out, err) = c.repair_cli(&["--verify", "--json"]);
    let r = report(&out);
    assert_eq!(code, 0, "{out} {err}");
    let corrupt = r["corrupt_found"].as_u64().unwrap();
    assert_eq!(corrupt as usize, flipped, "{r}");
    assert_eq!(r["shards_rebuilt"].as_u64().unwrap(), corrupt);
    assert!(
        r["shards_verified"].as_u64().unwrap() >= 6 * 6 - corrupt,
        "{r}"
    );
    let (code, out, _) = c.repair_cli(&["--verify", "--json"]);
    let r = report(&out);
    assert_eq!((code, r["corrupt_found"].as_u64()), (0, Some(0)), "{r}");

    // A dead node inside the repair grace (60 s here) is reported, not rebuilt...
    c.kill_node(1);
    assert!(
        eventually(Duration::from_secs(10), || {
            let c = &c;
            async move {
                c.cluster_json().await["nodes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|n| n["state"] == "down")
                    .count()
                    == 1
            }
        })
        .await
    );
    let (code, out, _) = c.repair_cli(&["--json"]);
    let r = report(&out);
    assert_eq!(code, 1, "degraded objects remain: {r}");
    assert_eq!(r["shards_rebuilt"], 0, "{r}");
    let within = r["within_grace"].as_array().unwrap();
    assert_eq!(within.len(), 1, "{r}");
    assert!(within[0]["lost_in_ms"].as_u64().unwrap() > 50_000, "{r}");
    let (_, text, _) = c.repair_cli(&[]);
    assert!(text.contains("inside the repair grace"), "{text}");
    // ...until the operator says it is gone: --grace 0s rebuilds its shards now.
    let (code, out, err) = c.repair_cli(&["--grace", "0s", "--json"]);
    let r = report(&out);
    assert_eq!(code, 0, "{out} {err}");
    assert!(r["shards_rebuilt"].as_u64().unwrap() >= 1, "{r}");
    assert!(r["within_grace"].as_array().unwrap().is_empty(), "{r}");
    // Full redundancy again: two more nodes may die.
    c.kill_node(2);
    c.kill_node(3);
    for (u, b) in &objects {
        assert!(get(u).await.1 == *b, "{u}");
    }
}
