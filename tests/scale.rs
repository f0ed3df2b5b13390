//! The counters kept on commit and the index by node, on real `tessera coordinator` and
//! `tessera node` processes: after a storm of PUTs, overwrites, deletes, versions, multipart
//! uploads, compaction and recode, after a coordinator SIGKILL, after a metadata rebuild
//! from the nodes, and in a replicated group after a leader change, what `/stats` reads
//! equals a recount of every record (`GET /stats/check`), and drain progress reads them too.

mod common;
use common::group::Group;
use common::procs::*;
use common::*;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `n` PUTs of `size` bytes into `base/{prefix}{i}` (i in `range`) from `clients` tasks;
/// how many were refused or failed (none expected unless the coordinator is killed).
async fn storm(
    base: String,
    prefix: &'static str,
    range: std::ops::Range<u64>,
    size: usize,
    clients: u64,
) -> u64 {
    let next = Arc::new(AtomicU64::new(range.start));
    let failed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (next, failed, base) = (next.clone(), failed.clone(), base.clone());
            let end = range.end;
            tokio::spawn(async move {
                let h = http();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break;
                    }
                    let url = format!("{base}/{prefix}{i}");
                    let ok = h
                        .put(&url)
                        .body(data(size, i))
                        .send()
                        .await
                        .is_ok_and(|r| r.status() == 200);
                    if !ok {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    failed.load(Ordering::Relaxed)
}

async fn delete_range(base: &str, prefix: &str, range: std::ops::Range<u64>) {
    let h = http();
    for i in range {
        let s = h
            .delete(format!("{base}/{prefix}{i}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 204, "DELETE {prefix}{i}");
    }
}

/// What a bucket holds by the counters: (objects, logical bytes, noncurrent, markers).
fn held(counters: &serde_json::Value, bucket: &str) -> (u64, u64, u64, u64) {
    let b = &counters["buckets"][bucket];
    let n = |f: &str| b[f].as_u64().unwrap_or(0);
    (
        n("objects"),
        n("logical_bytes"),
        n("noncurrent_objects"),
        n("delete_markers"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn counters_equal_a_recount_after_a_storm_a_kill_compaction_recode_and_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start_with(
        dir.path(),
        6,
        &["--pack-below", "128KiB", "--compact-interval", "0s"],
    )
    .await;
    let admin = c.admin_http();
    let h = http();
    for b in ["cnt", "ver", "rcd"] {
        assert_eq!(h.put(c.url(b)).send().await.unwrap().status(), 200);
    }
    let r = h
        .put(format!("{}?versioning", c.url("ver")))
        .body("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The storm: small packed objects, overwrites, deletes, striped objects, versions,
    // multipart uploads.
    let cnt = c.url("cnt");
    assert_eq!(storm(cnt.clone(), "s", 0..12_000, 4096, 32).await, 0);
    assert_eq!(storm(cnt.clone(), "s", 0..2_000, 1000, 16).await, 0);
    delete_range(&cnt, "s", 2_000..3_000).await;
    assert_eq!(storm(cnt.clone(), "big", 0..24, 300 << 10, 4).await, 0);
    let ver = c.url("ver");
    assert_eq!(storm(ver.clone(), "v", 0..500, 4096, 16).await, 0);
    assert_eq!(storm(ver.clone(), "v", 0..500, 2048, 16).await, 0);
    delete_range(&ver, "v", 0..100).await;
    put_multipart(&format!("{cnt}/mp"), &[data(5 << 20, 1), data(1 << 20, 2)]).await;
    let kept = assert_exact(&admin, &c.admin, "the storm").await;
    assert_eq!(
        held(&kept, "cnt"),
        (
            11_000 + 24 + 1,
            2_000 * 1000 + 9_000 * 4096 + 24 * (300 << 10) + (6 << 20),
            0,
            0
        )
    );
    assert_eq!(held(&kept, "ver"), (400, 400 * 2048, 600, 100));
    // Metrics and bucket info read the same counters.
    assert_eq!(
        c.metric("tessera_bucket_objects{bucket=\"cnt\"}").await as u64,
        11_025
    );
    let info = c.admin_json("/buckets/ver").await;
    assert_eq!(
        info["usage"]["noncurrent_bytes"],
        kept["buckets"]["ver"]["noncurrent_bytes"]
    );

    // A coordinator SIGKILLed under writes.
    let writes = tokio::spawn(storm(cnt.clone(), "k", 0..6_000, 4096, 16));
    tokio::time::sleep(Duration::from_millis(700)).await;
    c.coordinator.kill();
    c.restart_coordinator();
    c.wait_up(6).await;
    let failed = writes.await.unwrap();
    assert!(failed < 6_000, "writes went on after the restart");
    assert_exact(&admin, &c.admin, "a coordinator SIGKILL").await;
    // The in-flight writes the kill cut short turn into garbage and are collected.
    let settled = eventually(Duration::from_secs(60), || async {
        let v = c.cluster_json().await;
        v["objects_in_flight"] == 0 && v["garbage"] == 0
    })
    .await;
    assert!(settled, "in-flight records and garbage settled");
    assert_exact(&admin, &c.admin, "garbage collection").await;

    // Compaction (a third of the small objects deleted first) and recode.
    delete_range(&cnt, "s", 3_000..5_000).await;
    let (code, out, err) = c.cli(&["compact", "--below", "1.0"]);
    assert_eq!(code, 0, "{out}{err}");
    let done = eventually(Duration::from_secs(60), || async {
        c.admin_json("/compact").await["running"] == false
    })
    .await;
    assert!(done, "compaction finished");
    assert_eq!(storm(c.url("rcd"), "r", 0..12, 200 << 10, 4).await, 0);
    let (code, out, err) = c.cli(&["recode", "--bucket", "rcd", "--ec", "3+2"]);
    assert_eq!(code, 0, "{out}{err}");
    let before = assert_exact(&admin, &c.admin, "compaction and recode").await;
    assert!(
        before["codes"]["3+2"].as_u64().unwrap_or(0) >= 12,
        "the recoded objects count under their new code: {}",
        before["codes"]
    );

    // Drain progress reads the counters: what node 0 holds, as its shards say.
    let n0 = c.node_id(0).await;
    let status = c.admin_json(&format!("/cluster/nodes/{n0}")).await;
    assert_eq!(
        status["shards"], before["nodes"][&n0]["shards"],
        "node status from the counters"
    );
    assert!(status["shards"].as_u64().unwrap() > 0);

    // A metadata rebuild from the nodes: the same objects, counted exactly.
    c.wipe_metadata_and_rebuild(6).await;
    let after = assert_exact(&c.admin_http(), &c.admin, "a metadata rebuild").await;
    for b in ["cnt", "ver", "rcd"] {
        assert_eq!(
            held(&after, b),
            held(&before, b),
            "bucket {b} after the rebuild"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_group_keeps_the_same_exact_counters_on_every_coordinator_across_a_leader_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &["--pack-below", "128KiB"]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    let h = http();
    assert_eq!(h.put(g.url(0, "grp")).send().await.unwrap().status(), 200);
    let other = (leader + 1) % 3;
    assert_eq!(storm(g.url(other, "grp"), "a", 0..2_000, 4096, 16).await, 0);
    g.kill(leader);
    let next = g.leader(Duration::from_secs(30)).await;
    assert_ne!(next, leader);
    // Writes through the new group (a client may meet the election: retried by storm's
    // count, none lost silently).
    let failed = storm(g.url(next, "grp"), "b", 0..1_000, 4096, 16).await;
    assert!(failed < 1_000);
    delete_range(&g.url(next, "grp"), "a", 0..200).await;
    g.restart(leader);
    let admin = g.admin_http();
    let mut seen = Vec::new();
    for i in 0..3 {
        let quiet = eventually(Duration::from_secs(60), || async {
            g.cluster_json(i)
                .await
                .is_some_and(|v| v["objects_in_flight"] == 0 && v["garbage"] == 0)
        })
        .await;
        assert!(quiet, "member {i}: writes in flight and garbage settled");
        let kept = assert_exact(&admin, &g.admin[i], &format!("a leader change, member {i}")).await;
        seen.push((kept["buckets"].clone(), kept["nodes"].clone()));
    }
    assert_eq!(
        seen[0].0["grp"]["objects"].as_u64().unwrap_or(0),
        listed(&g.url(next, "grp")).await,
        "objects counted vs listed"
    );
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "every member counts the same: {seen:?}"
    );
}

/// How many keys a listing of `bucket_url` shows (page by page).
async fn listed(bucket_url: &str) -> u64 {
    let (mut n, mut token) = (0, None::<String>);
    loop {
        let mut url = format!("{bucket_url}?list-type=2&max-keys=1000");
        if let Some(t) = &token {
            url.push_str(&format!("&continuation-token={}", urlencode(t)));
        }
        let text = http().get(url).send().await.unwrap().text().await.unwrap();
        n += xml_values(&text, "Key").len() as u64;
        match xml_values(&text, "NextContinuationToken").pop() {
            Some(t) => token = Some(t),
            None => return n,
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
