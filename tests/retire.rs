//! Node lifecycle, rebalance and recode on real `tessera coordinator` and `tessera node`
//! processes, driven through the `tessera` command line: drains that copy and never lower
//! redundancy, removal, refusals that change nothing, a node killed mid-drain, a coordinator
//! killed mid-rebalance and mid-recode, recode under client overwrites and deletes.

mod common;
use common::procs::*;
use common::*;

use std::collections::BTreeMap;
use std::time::Duration;

const MIB: usize = 1 << 20;

/// PUTs `n` objects `key{i}` into `bucket` (created first), sizes cycling through `sizes`;
/// returns what each holds.
async fn fill(
    c: &ProcCluster,
    bucket: &str,
    n: usize,
    sizes: &[usize],
) -> BTreeMap<String, Vec<u8>> {
    let (s, _) = put(&c.url(bucket), vec![]).await;
    assert!(s == 200 || s == 409, "create bucket: {s}");
    let mut out = BTreeMap::new();
    for i in 0..n {
        let body = data(sizes[i % sizes.len()], 7000 + i as u64);
        let key = format!("key{i:03}");
        let (s, e) = put(&c.url(&format!("{bucket}/{key}")), body.clone()).await;
        assert_eq!(s, 200, "PUT {key}: {e}");
        out.insert(key, body);
    }
    out
}

/// Every object reads back byte-exact (`None`: must be gone).
async fn check_all(c: &ProcCluster, bucket: &str, want: &BTreeMap<String, Option<Vec<u8>>>) {
    for (k, v) in want {
        let (s, got) = get(&c.url(&format!("{bucket}/{k}"))).await;
        match v {
            Some(v) => {
                assert_eq!(s, 200, "GET {bucket}/{k}");
                assert!(
                    got == *v,
                    "{bucket}/{k}: {} bytes back, {} put",
                    got.len(),
                    v.len()
                );
            }
            None => assert_eq!(s, 404, "{bucket}/{k} was deleted and must stay deleted"),
        }
    }
}

fn some(m: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, Option<Vec<u8>>> {
    m.iter()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect()
}

async fn admin_get(c: &ProcCluster, path: &str) -> serde_json::Value {
    c.admin_json(path).await
}

/// Shards stored on nodes `which`.
async fn shards_on(c: &ProcCluster, which: &[usize]) -> usize {
    let addrs: Vec<_> = which.iter().map(|&i| c.node_addrs()[i]).collect();
    shard_count(&c.secrets().cluster_secret, &addrs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drain_copies_every_shard_off_then_remove_forgets_the_node_and_refusals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 7).await;
    let objects = fill(&c, "drn", 14, &[3 * MIB, 100 << 10, 1, 0]).await;
    let (n0, n1) = (c.node_id(0).await, c.node_id(1).await);
    let before = shards_on(&c, &[0]).await;
    assert!(before > 0, "node 0 holds shards to drain");

    // Unknown nodes are errors.
    let (code, _, err) = c.cli(&["node", "drain", "00000000deadbeef"]);
    assert_ne!(code, 0);
    assert!(err.contains("no such node"), "{err}");
    let (code, _, err) = c.cli(&["node", "activate", "not-an-id"]);
    assert_ne!(code, 0);
    assert!(err.contains("no such node"), "{err}");
    // Removing an up node that was not drained: refused.
    let (code, _, err) = c.cli(&["node", "remove", &n1]);
    assert_ne!(code, 0);
    assert!(err.contains("drain it first"), "{err}");

    // Without the admin token: refused, nothing changes.
    for path in [
        format!("/cluster/nodes/{n0}/drain"),
        format!("/cluster/nodes/{n1}/remove"),
        "/rebalance".to_string(),
        "/workers/gc/pause".to_string(),
    ] {
        let r = http()
            .post(format!("http://{}{path}", c.admin))
            .json(&serde_json::json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "POST {path} without the admin token");
    }
    assert_eq!(
        admin_get(&c, &format!("/cluster/nodes/{n0}")).await["state"],
        "up"
    );
    assert_eq!(admin_get(&c, "/rebalance").await["running"], false);
    let w = admin_get(&c, "/workers").await;
    assert!(w["workers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["name"] == "gc" && w["state"] != "paused"));
    let (code, out, err) = c.cli(&["node", "drain", &n0]);
    assert_eq!(code, 0, "drain: {out}{err}");
    assert!(out.contains(&format!("node {n0} drained")), "{out}");
    let status = admin_get(&c, &format!("/cluster/nodes/{n0}")).await;
    assert_eq!(status["state"], "drained", "{status}");
    assert_eq!(
        (status["objects"].as_u64(), status["shards"].as_u64()),
        (Some(0), Some(0))
    );
    let listed = c.cluster_json().await;
    let entry = listed["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == n0.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        (entry["state"].as_str(), entry["up"].as_bool()),
        (Some("drained"), Some(true))
    );
    // Copied, not reconstructed: no stripe was decoded and no read was degraded.
    assert_eq!(
        c.metric("tessera_stripes_total{kind=\"reconstructed\"}")
            .await,
        0.0
    );
    assert_eq!(c.metric("tessera_degraded_reads_total").await, 0.0);
    // Its copies are collected; every object reads back; redundancy is whole: with two
    // more nodes gone (m = 2) every object still reads.
    assert!(
        eventually(Duration::from_secs(30), || async {
            shards_on(&c, &[0]).await == 0
        })
        .await,
        "the drained node's shards are garbage-collected"
    );
    check_all(&c, "drn", &some(&objects)).await;
    // New writes never land on it.
    let (s, _) = put(&c.url("drn/after"), data(2 * MIB, 1)).await;
    assert_eq!(s, 200);
    assert_eq!(
        shards_on(&c, &[0]).await,
        0,
        "a drained node takes no new shards"
    );

    // Six nodes take shards now: draining one more would leave 5 for 4+2. Refused, nothing
    // changed.
    let (code, _, err) = c.cli(&["node", "drain", &n1]);
    assert_ne!(code, 0);
    assert!(
        err.contains("would leave 5 nodes") && err.contains("4+2"),
        "{err}"
    );
    let s1 = admin_get(&c, &format!("/cluster/nodes/{n1}")).await;
    assert_eq!(s1["state"], "up", "a refused drain changes nothing: {s1}");

    // Remove the drained node: it is forgotten and its heartbeats are refused.
    let (code, out, err) = c.cli(&["node", "remove", &n0]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("removed"), "{out}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let listed = c.cluster_json().await;
    assert!(
        listed["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["id"] != n0.as_str()),
        "a removed node is not listed again although it still sends heartbeats: {listed}"
    );
    let log = std::fs::read_to_string(dir.path().join("n0.err.log")).unwrap();
    assert!(log.contains("removed from the cluster"), "the node is told");
    let (code, _, err) = c.cli(&["node", "drain", &n0]);
    assert_ne!(code, 0);
    assert!(err.contains("was removed"), "{err}");

    let mut c = c;
    c.kill_node(1);
    c.kill_node(2);
    let mut want = some(&objects);
    want.insert("after".into(), Some(data(2 * MIB, 1)));
    check_all(&c, "drn", &want).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_mid_drain_is_rebuilt_by_repair_and_removed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 7).await;
    let objects = fill(&c, "dkl", 16, &[2 * MIB]).await;
    let n3 = c.node_id(3).await;
    // Slow the drain down so it is caught halfway.
    let (code, out, err) = c.cli(&["maintenance", "--rate", "3MB"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("maintenance budget: 3.0 MB/s"), "{out}");
    assert!(
        out.contains("drain") && out.contains("gc"),
        "workers listed: {out}"
    );
    let start = admin_get(&c, &format!("/cluster/nodes/{n3}")).await["objects"]
        .as_u64()
        .unwrap();
    let (code, out, err) = c.cli(&["node", "drain", &n3, "--no-wait"]);
    assert_eq!(code, 0, "{out}{err}");
    let moving = eventually(Duration::from_secs(60), || async {
        let left = admin_get(&c, &format!("/cluster/nodes/{n3}")).await["objects"]
            .as_u64()
            .unwrap();
        left < start && left > 0
    })
    .await;
    assert!(moving, "the drain made progress");
    c.kill_node(3);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let status = admin_get(&c, &format!("/cluster/nodes/{n3}")).await;
    assert_eq!(
        (status["state"].as_str(), status["up"].as_bool()),
        (Some("draining"), Some(false))
    );
    assert!(
        status["objects"].as_u64().unwrap() > 0,
        "the drain stopped with work left"
    );
    // Everything still reads (degraded for what was on node 3).
    check_all(&c, "dkl", &some(&objects)).await;
    // Removing the dead node rebuilds its shards elsewhere first, then forgets it.
    c.cli(&["maintenance", "--rate", "0"]);
    let (code, out, err) = c.cli(&["node", "remove", &n3]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("rebuilding their shards elsewhere first"),
        "{out}"
    );
    assert!(out.contains(&format!("node {n3} removed")), "{out}");
    // Redundancy is whole again: two more nodes can go.
    c.kill_node(4);
    c.kill_node(5);
    check_all(&c, "dkl", &some(&objects)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rebalance_fills_a_new_node_and_resumes_after_the_coordinator_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_full(dir.path(), 6, &[], &["--capacity", "64MiB"]).await;
    let objects = fill(&c, "rbl", 24, &[2 * MIB]).await;
    let added = c.add_node();
    c.wait_up(7).await;
    let (code, out, _) = c.cli(&["rebalance", "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("spread"), "{out}");
    assert!(
        admin_get(&c, "/rebalance").await["running"] == false,
        "a dry run stores no job"
    );
    assert_eq!(shards_on(&c, &[added]).await, 0);
    // Band out of range: refused.
    let (code, _, err) = c.cli(&["rebalance", "--band", "0"]);
    assert_ne!(code, 0);
    assert!(err.contains("band"), "{err}");

    c.cli(&["maintenance", "--rate", "2MB"]);
    let (code, out, err) = c.cli(&["rebalance", "--band", "0.05", "--no-wait"]);
    assert_eq!(code, 0, "{out}{err}");
    // Reads work while shards move.
    let started = eventually(Duration::from_secs(60), || async {
        shards_on(&c, &[added]).await >= 2
    })
    .await;
    assert!(started, "shards move onto the new node");
    check_all(&c, "rbl", &some(&objects)).await;
    // Kill the coordinator mid-move; the job resumes after the restart.
    c.restart_coordinator();
    c.wait_up(7).await;
    c.cli(&["maintenance", "--rate", "0"]);
    let done = eventually(Duration::from_secs(120), || async {
        admin_get(&c, "/rebalance").await["running"] == false
    })
    .await;
    assert!(done, "the rebalance finished after the restart");
    let b = admin_get(&c, "/rebalance").await;
    assert!(
        b["spread"].as_f64().unwrap() <= 0.05,
        "within the band: {b}"
    );
    check_all(&c, "rbl", &some(&objects)).await;
    // No shard leaked: after collection the nodes hold exactly 6 shards per object, and
    // never two of one object on the new node (a list of its shards has distinct versions).
    // (A write acknowledged at its quorum on a busy machine may lack a shard: repair first.)
    let (code, out, err) = c.repair_cli(&[]);
    assert_eq!(code, 0, "{out}{err}");
    let all: Vec<usize> = (0..7).collect();
    let exact = eventually(Duration::from_secs(60), || async {
        shards_on(&c, &all).await == 24 * 6
    })
    .await;
    assert!(
        exact,
        "{} shards on the nodes, 144 referenced",
        shards_on(&c, &all).await
    );
    let on_new = c
        .node_client(c.node_addrs()[added])
        .list(None, 10_000)
        .await
        .unwrap();
    let versions: std::collections::BTreeSet<_> = on_new.iter().map(|s| s.header.version).collect();
    assert_eq!(
        versions.len(),
        on_new.len(),
        "one shard per object on a node"
    );
    assert!(
        on_new.len() >= 15,
        "the new node took its share: {}",
        on_new.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn recode_under_overwrites_and_deletes_resurrects_nothing_and_survives_a_coordinator_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 7).await;
    let objects = fill(&c, "rcd", 24, &[MIB, 300 << 10]).await;
    let mut want = some(&objects);
    // A multipart object: re-encoded part by part, its ETag kept.
    let parts = [data(5 * MIB, 41), data(MIB, 42)];
    let multi_etag = put_multipart(&c.url("rcd/zmulti"), &parts).await;
    let multi_body = parts.concat();

    // Dry run: reports the saving, changes nothing.
    let (code, out, err) = c.cli(&["recode", "--bucket", "rcd", "--ec", "5+2", "--dry-run"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("dry run: 25 objects") && out.contains("saved"),
        "{out}"
    );
    assert!(out.contains("1 of them multipart"), "{out}");
    let (s, _) = get(&c.url("rcd/key000")).await;
    assert_eq!(s, 200);
    let api = c.api.clone();
    let ec_of = |k: &str| {
        let url = format!("http://{api}/rcd/{k}");
        async move {
            http()
                .head(url)
                .send()
                .await
                .unwrap()
                .headers()
                .get("x-tessera-ec")
                .map(|v| v.to_str().unwrap().to_string())
        }
    };
    assert_eq!(ec_of("key000").await.as_deref(), Some("4+2"));
    // A code larger than the cluster: refused.
    let (code, _, err) = c.cli(&["recode", "--bucket", "rcd", "--ec", "6+2"]);
    assert_ne!(code, 0);
    assert!(err.contains("needs 8 nodes"), "{err}");
    let (code, _, err) = c.cli(&["recode", "--bucket", "nope", "--ec", "5+2"]);
    assert_ne!(code, 0);
    assert!(err.contains("bucket does not exist"), "{err}");

    c.cli(&["maintenance", "--rate", "2MB"]);
    let (code, out, err) = c.cli(&["recode", "--bucket", "rcd", "--ec", "5+2", "--no-wait"]);
    assert_eq!(code, 0, "{out}{err}");
    // Clients overwrite and delete keys while the recode runs.
    for i in 0..6 {
        let key = format!("key{:03}", 23 - i);
        if i % 2 == 0 {
            let body = data(700 << 10, 9000 + i);
            let (s, _) = put(&c.url(&format!("rcd/{key}")), body.clone()).await;
            assert_eq!(s, 200);
            want.insert(key, Some(body));
        } else {
            let r = http()
                .delete(c.url(&format!("rcd/{key}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 204);
            want.insert(key, None);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let some_done = eventually(Duration::from_secs(60), || async {
        ec_of("key000").await.as_deref() == Some("5+2")
    })
    .await;
    assert!(some_done, "objects are being recoded");
    check_all(&c, "rcd", &want).await;
    c.restart_coordinator();
    c.wait_up(7).await;
    c.cli(&["maintenance", "--rate", "0"]);
    let done = eventually(Duration::from_secs(120), || async {
        admin_get(&c, "/recode").await["jobs"]
            .as_array()
            .is_some_and(|j| j.is_empty())
    })
    .await;
    assert!(done, "the recode finished after the restart");
    check_all(&c, "rcd", &want).await;
    let alive: Vec<&String> = want
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k)
        .collect();
    for k in &alive {
        assert_eq!(ec_of(k).await.as_deref(), Some("5+2"), "{k}");
    }
    assert_eq!(ec_of("zmulti").await.as_deref(), Some("5+2"));
    let r = http().get(c.url("rcd/zmulti")).send().await.unwrap();
    assert_eq!(
        r.headers()["etag"].to_str().unwrap(),
        multi_etag,
        "a multipart ETag is kept"
    );
    assert!(
        r.bytes().await.unwrap() == multi_body,
        "the multipart object reads back"
    );
    let r = http()
        .get(format!("{}?partNumber=2", c.url("rcd/zmulti")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206, "its parts are still addressable");
    assert!(r.bytes().await.unwrap() == parts[1]);
    // New writes get the new code.
    let (s, _) = put(&c.url("rcd/new"), data(MIB, 5)).await;
    assert_eq!(s, 200);
    assert_eq!(ec_of("new").await.as_deref(), Some("5+2"));
    // Nothing leaked: after collection, 7 shards per live single-PUT object, and 2 x 7 for
    // the multipart object's parts plus 3 (1+2) for its manifest. (A write acknowledged at
    // its quorum on a busy machine may lack a shard: repair first.)
    let (code, out, err) = c.repair_cli(&[]);
    assert_eq!(code, 0, "{out}{err}");
    let all: Vec<usize> = (0..7).collect();
    let expect = (alive.len() + 1) * 7 + 2 * 7 + 3;
    let exact = eventually(Duration::from_secs(60), || async {
        shards_on(&c, &all).await == expect
    })
    .await;
    assert!(
        exact,
        "{} shards on the nodes, {expect} referenced; the repair said:\n{out}",
        shards_on(&c, &all).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_repair_run_resumes_after_the_coordinator_restarts_and_the_cli_follows_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 7).await;
    let objects = fill(&c, "rrs", 16, &[2 * MIB]).await;
    c.kill_node_until_down(0).await;
    c.cli(&["maintenance", "--rate", "2MB"]);
    let (admin, token) = (c.admin.clone(), c.secrets().admin_token);
    let cli = std::thread::spawn(move || repair_cli_at(&admin, &token, &["--grace", "0s"]));
    let midway = eventually(Duration::from_secs(60), || async {
        let r = admin_get(&c, "/repair").await;
        let last = &r["last_run"];
        last["shards_rebuilt"].as_u64().unwrap_or(0) > 0 && last["done"] == false
    })
    .await;
    assert!(
        midway,
        "the run is rebuilding: {}",
        admin_get(&c, "/repair").await
    );
    let run = admin_get(&c, "/repair").await["last_run"]["run_id"]
        .as_u64()
        .unwrap();
    let eta = admin_get(&c, &format!("/repair/{run}")).await;
    assert!(
        eta["eta_ms"].is_u64() && eta["elapsed_ms"].as_u64() > Some(0),
        "progress and ETA: {eta}"
    );
    c.restart_coordinator();
    let (code, out, err) = cli.join().unwrap();
    assert_eq!(
        code, 0,
        "the CLI followed the resumed run to its end: {out}{err}"
    );
    let r = admin_get(&c, &format!("/repair/{run}")).await;
    assert_eq!(
        (r["resumed"].as_bool(), r["done"].as_bool()),
        (Some(true), Some(true)),
        "{r}"
    );
    assert!(
        admin_get(&c, "/recode").await["jobs"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no job left behind"
    );
    // Redundancy restored: two more nodes can go.
    c.kill_node(1);
    c.kill_node(2);
    check_all(&c, "rrs", &some(&objects)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn workers_of_the_coordinator_and_the_nodes_are_listed_and_steered_alike() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 6).await;
    let n2 = c.node_id(2).await;
    let (code, out, err) = c.cli(&["maintenance"]);
    assert_eq!(code, 0, "{err}");
    for w in [
        "gc",
        "orphan-scan",
        "multipart-expiry",
        "repair",
        "drain",
        "rebalance",
        "recode",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{w} "))),
            "{w} listed: {out}"
        );
    }
    assert!(
        out.contains(&format!("heartbeat@{n2}")) && out.contains(&format!("scrub@{n2}")),
        "{out}"
    );
    let state = |v: &serde_json::Value, name: &str| {
        v["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .map(|w| w["state"].as_str().unwrap().to_string())
    };
    // A coordinator worker.
    let (code, _, err) = c.cli(&["maintenance", "--pause", "gc"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        state(&admin_get(&c, "/workers").await, "gc").as_deref(),
        Some("paused")
    );
    c.cli(&["maintenance", "--resume", "gc"]);
    assert_ne!(
        state(&admin_get(&c, "/workers").await, "gc").as_deref(),
        Some("paused")
    );
    // A node's worker, through the coordinator: paused heartbeats make the node go down.
    let hb = format!("heartbeat@{n2}");
    let (code, _, err) = c.cli(&["maintenance", "--pause", &hb]);
    assert_eq!(code, 0, "{err}");
    let down = eventually(Duration::from_secs(10), || async {
        c.cluster_json().await["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["id"] == n2.as_str() && n["up"] == false)
    })
    .await;
    assert!(down, "a node whose heartbeats are paused is down");
    let node = c.node_client(c.node_addrs()[2]).workers().await.unwrap();
    assert!(node
        .iter()
        .any(|w| w.name == "heartbeat" && w.state == "paused"));
    c.cli(&["maintenance", "--resume", &hb]);
    c.wait_up(6).await;
    // The nodes' scrub budget, steered like the coordinator's (scrub spends it).
    let (code, out, err) = c.cli(&["maintenance", "--scrub-rate", "3MB"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("scrub budget 3.0 MB/s on 6 nodes"), "{out}");
    let node_http =
        tessera_node::client::http_client(&c.secrets().cluster_secret, &Default::default());
    for addr in c.node_addrs() {
        let r = node_http
            .get(format!("http://{addr}/maintenance"))
            .send()
            .await
            .unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["rate"], 3_000_000, "{addr}");
    }
    // Unknown workers: errors.
    let (code, _, err) = c.cli(&["maintenance", "--pause", "nope"]);
    assert_ne!(code, 0);
    assert!(err.contains("no worker"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_rebalance_spreads_onto_a_node_that_joins() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_full(
        dir.path(),
        6,
        &["--auto-rebalance"],
        &["--capacity", "64MiB"],
    )
    .await;
    let objects = fill(&c, "abl", 24, &[2 * MIB]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        admin_get(&c, "/rebalance").await["running"],
        false,
        "balanced: nothing to do"
    );
    let added = c.add_node();
    c.wait_up(7).await;
    let spread = eventually(Duration::from_secs(60), || async {
        let b = admin_get(&c, "/rebalance").await;
        b["running"] == false && b["spread"].as_f64().unwrap() <= 0.10
    })
    .await;
    assert!(
        spread,
        "the joining node triggered a rebalance that finished within the default band"
    );
    assert!(
        shards_on(&c, &[added]).await >= 10,
        "the new node took shards"
    );
    check_all(&c, "abl", &some(&objects)).await;
}
