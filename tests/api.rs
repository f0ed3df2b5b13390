//! The client API against an in-process cluster (coordinator + 6 nodes on loopback).

mod common;
use common::*;
use md5::Digest;
use std::time::Duration;

const MIB: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_of_every_size_round_trip_byte_exact() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/sizes"), vec![]).await.0, 200);
    // Stripe = 4 x 256 KiB = 1 MiB.
    let stripe = MIB;
    for (i, len) in [0, 1, stripe - 1, stripe, stripe + 1, 64 * MIB + 3]
        .into_iter()
        .enumerate()
    {
        let body = data(len, i as u64);
        let url = format!("{base}/sizes/dir/obj-{len}");
        let r = http()
            .put(&url)
            .header("content-type", "application/x-test")
            .header("x-amz-meta-origin", "suite")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "PUT {len}");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert_eq!(
            etag,
            format!("\"{}\"", hex::encode(md5::Md5::digest(&body)))
        );
        assert_eq!(r.headers()["x-tessera-ec"], "4+2");
        let (status, got) = get(&url).await;
        assert_eq!(status, 200);
        assert!(got == body, "GET of {len} bytes returned different bytes");
        let h = http().head(&url).send().await.unwrap();
        assert_eq!(h.status(), 200);
        assert_eq!(h.headers()["content-length"], len.to_string().as_str());
        assert_eq!(h.headers()["etag"].to_str().unwrap(), etag);
        assert_eq!(h.headers()["content-type"], "application/x-test");
        assert_eq!(h.headers()["x-amz-meta-origin"], "suite");
        assert!(h.headers().contains_key("last-modified"));
    }
    // Chunked transfer encoding (no Content-Length) works too.
    let body = data(3 * MIB + 17, 99);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let r = http()
        .put(format!("{base}/sizes/chunked"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(get(&format!("{base}/sizes/chunked")).await.1 == body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn range_reads_cross_stripes() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    put(&format!("{base}/rng"), vec![]).await;
    let body = data(3 * MIB + MIB / 2, 7);
    let url = format!("{base}/rng/obj");
    assert_eq!(put(&url, body.clone()).await.0, 200);
    let n = body.len();
    let cases: Vec<(String, usize, usize)> = vec![
        ("bytes=0-0".into(), 0, 0),
        (
            format!("bytes={}-{}", MIB - 10, MIB + 10),
            MIB - 10,
            MIB + 10,
        ),
        (
            format!("bytes={}-{}", 262_000, 2 * MIB + 300_000),
            262_000,
            2 * MIB + 300_000,
        ),
        (format!("bytes={}-", 3 * MIB), 3 * MIB, n - 1),
        ("bytes=-5".into(), n - 5, n - 1),
        (format!("bytes=10-{}", 10 * MIB), 10, n - 1),
    ];
    for (range, a, b) in cases {
        let r = http()
            .get(&url)
            .header("range", &range)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206, "{range}");
        assert_eq!(
            r.headers()["content-range"].to_str().unwrap(),
            format!("bytes {a}-{b}/{n}")
        );
        let got = r.bytes().await.unwrap();
        assert!(got[..] == body[a..=b], "{range} returned different bytes");
    }
    for bad in [format!("bytes={n}-"), format!("bytes={}-{}", n + 5, n + 10)] {
        let r = http().get(&url).header("range", &bad).send().await.unwrap();
        assert_eq!(r.status(), 416, "{bad}");
        assert_eq!(code(&r.text().await.unwrap()), "InvalidRange");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buckets_overwrite_delete_and_garbage_collection() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    assert_eq!(put(&format!("{base}/bk1"), vec![]).await.0, 200);
    assert_eq!(
        put(&format!("{base}/bk1"), vec![]).await.0,
        200,
        "re-creating is not an error"
    );
    let (s, body) = get(&format!("{base}/")).await;
    assert_eq!(s, 200);
    assert!(String::from_utf8(body)
        .unwrap()
        .contains("<Name>bk1</Name>"));
    // Missing bucket.
    let (s, body) = put(&format!("{base}/nobucket/k"), b"x".to_vec()).await;
    assert_eq!((s, code(&body).as_str()), (404, "NoSuchBucket"));
    // Overwrite: GET returns the new bytes; the old version's shards are collected.
    let url = format!("{base}/bk1/key");
    let a = data(2 * MIB + 5, 1);
    let b = data(MIB / 3, 2);
    assert_eq!(put(&url, a).await.0, 200);
    assert_eq!(put(&url, b.clone()).await.0, 200);
    assert!(get(&url).await.1 == b);
    assert!(
        eventually(Duration::from_secs(10), || async {
            shard_count(&c.secrets().cluster_secret, &nodes).await == 6
        })
        .await,
        "old version's shards collected"
    );
    // Non-empty bucket cannot be deleted.
    let r = http().delete(format!("{base}/bk1")).send().await.unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(code(&r.text().await.unwrap()), "BucketNotEmpty");
    // Delete object: 204, then 404 NoSuchKey, and deleting again is still 204.
    assert_eq!(http().delete(&url).send().await.unwrap().status(), 204);
    let (s, body) = get(&url).await;
    assert_eq!(
        (s, code(&String::from_utf8(body).unwrap()).as_str()),
        (404, "NoSuchKey")
    );
    assert_eq!(http().delete(&url).send().await.unwrap().status(), 204);
    assert!(
        eventually(Duration::from_secs(10), || async {
            shard_count(&c.secrets().cluster_secret, &nodes).await == 0
        })
        .await,
        "deleted object's shards collected"
    );
    assert_eq!(
        http()
            .delete(format!("{base}/bk1"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let (s, body) = get(&format!("{base}/bk1?list-type=2")).await;
    assert_eq!(
        (s, code(&String::from_utf8(body).unwrap()).as_str()),
        (404, "NoSuchBucket")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn per_bucket_and_per_object_erasure_codes() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    let r = http()
        .put(format!("{base}/rep"))
        .header("x-tessera-ec", "1+2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .put(format!("{base}/rep/a"))
        .body(data(1000, 1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-tessera-ec"], "1+2");
    let r = http()
        .put(format!("{base}/rep/b"))
        .header("x-tessera-ec", "3+3")
        .body(data(1000, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-tessera-ec"], "3+3");
    assert!(get(&format!("{base}/rep/b")).await.1 == data(1000, 2));
    let r = http()
        .put(format!("{base}/rep/c"))
        .header("x-tessera-ec", "2+0")
        .body(data(1000, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "m = 0 is allowed");
    for bad in ["5+2", "0+2", "four+2", "300+1"] {
        let r = http()
            .put(format!("{base}/rep/x"))
            .header("x-tessera-ec", bad)
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert_eq!(code(&r.text().await.unwrap()), "InvalidArgument", "{bad}");
        let r = http()
            .put(format!("{base}/bad-ec"))
            .header("x-tessera-ec", bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "bucket with {bad}");
    }
    assert_eq!(
        get(&format!("{base}/rep/x")).await.0,
        404,
        "nothing written by rejected PUTs"
    );
    // A multipart upload is refused the same way when created, not at its first part.
    let r = http()
        .post(format!("{base}/rep/mp?uploads"))
        .header("x-tessera-ec", "5+2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code(&r.text().await.unwrap()), "InvalidArgument");
    let (_, listed) = get(&format!("{base}/rep?uploads")).await;
    assert!(
        !String::from_utf8(listed).unwrap().contains("<UploadId>"),
        "no upload recorded"
    );
    assert_eq!(get(&format!("{base}/bad-ec?list-type=2")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn listing_with_prefixes_delimiters_and_pages() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    put(&format!("{base}/lst"), vec![]).await;
    let keys = [
        "a.txt", "dir/x/1", "dir/x/2", "dir/y", "dir/z/3", "e&<f>", "zz",
    ];
    for k in keys {
        assert_eq!(
            put(
                &format!("{base}/lst/{}", urlencoding::encode(k).replace("%2F", "/")),
                k.as_bytes().to_vec()
            )
            .await
            .0,
            200
        );
    }
    let list = |q: String| {
        let base = base.clone();
        async move { String::from_utf8(get(&format!("{base}/lst?list-type=2{q}")).await.1).unwrap() }
    };
    let tags = common::xml_values;
    let all = list(String::new()).await;
    assert_eq!(
        tags(&all, "Key"),
        vec!["a.txt", "dir/x/1", "dir/x/2", "dir/y", "dir/z/3", "e&<f>", "zz"]
    );
    let d = list("&prefix=dir/&delimiter=/".into()).await;
    assert_eq!(tags(&d, "Key"), vec!["dir/y"]);
    assert_eq!(
        tags(&d, "Prefix")[1..],
        ["dir/x/".to_string(), "dir/z/".to_string()]
    );
    let top = list("&delimiter=/".into()).await;
    assert_eq!(tags(&top, "Key"), vec!["a.txt", "e&<f>", "zz"]);
    // Page through with max-keys=2, with and without a delimiter.
    for q in ["", "&delimiter=/"] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..10 {
            let t = token
                .as_ref()
                .map(|t| format!("&continuation-token={t}"))
                .unwrap_or_default();
            let page = list(format!("&max-keys=2{q}{t}")).await;
            let mut entries = tags(&page, "Key");
            entries.extend(tags(&page, "Prefix").into_iter().filter(|p| !p.is_empty()));
            assert!(entries.len() <= 2);
            seen.extend(entries);
            if tags(&page, "IsTruncated") == ["false"] {
                token = None;
                break;
            }
            token = tags(&page, "NextContinuationToken").pop();
        }
        assert!(token.is_none(), "paging ended");
        seen.sort();
        let mut want: Vec<String> = if q.is_empty() {
            tags(&all, "Key")
        } else {
            vec!["a.txt".into(), "dir/".into(), "e&<f>".into(), "zz".into()]
        };
        want.sort();
        assert_eq!(seen, want, "pages with {q:?}");
    }
    let bad = get(&format!("{base}/lst?list-type=2&max-keys=abc")).await;
    assert_eq!(bad.0, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_names_are_rejected_and_write_nothing() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    for bad in ["UPPER", "a_b", "a..b", "ab", &"x".repeat(64)] {
        let (s, body) = put(&format!("{base}/{bad}"), vec![]).await;
        assert_eq!(
            (s, code(&body).as_str()),
            (400, "InvalidBucketName"),
            "{bad}"
        );
    }
    let (_, list) = get(&format!("{base}/")).await;
    assert!(
        !String::from_utf8(list).unwrap().contains("<Bucket>"),
        "no bucket was created"
    );
    put(&format!("{base}/okb"), vec![]).await;
    let long = "k".repeat(1025);
    let (s, body) = put(&format!("{base}/okb/{long}"), b"x".to_vec()).await;
    assert_eq!((s, code(&body).as_str()), (400, "KeyTooLongError"));
    // `..` segments and NUL must reach the server verbatim: raw requests.
    for path in ["/okb/a/../b", "/okb/..", "/okb/a%00b"] {
        let req = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
        );
        let resp = raw(c.api, req.as_bytes(), false, Duration::from_secs(5)).await;
        assert!(resp.starts_with("HTTP/1.1 400"), "{path}: {resp}");
        assert_eq!(code(&resp), "InvalidArgument", "{path}");
    }
    let (_, list) = get(&format!("{base}/okb?list-type=2")).await;
    assert!(
        !String::from_utf8(list).unwrap().contains("<Key>"),
        "no object was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn truncated_bodies_and_disconnects_leave_nothing() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    put(&format!("{base}/trc"), vec![]).await;
    // Fewer bytes than Content-Length, then end of stream: IncompleteBody.
    let mut req = b"PUT /trc/short HTTP/1.1\r\nHost: x\r\nContent-Length: 3000000\r\n\r\n".to_vec();
    req.extend(data(2_500_000, 1));
    let resp = raw(c.api, &req, true, Duration::from_secs(10)).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(code(&resp), "IncompleteBody");
    // Client vanishes mid-body (connection dropped without a response).
    let mut s = tokio::net::TcpStream::connect(c.api).await.unwrap();
    use tokio::io::AsyncWriteExt;
    s.write_all(b"PUT /trc/gone HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n\r\n")
        .await
        .unwrap();
    s.write_all(&data(4_000_000, 2)).await.unwrap();
    drop(s);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for k in ["short", "gone"] {
        assert_eq!(
            get(&format!("{base}/trc/{k}")).await.0,
            404,
            "{k} is not visible"
        );
    }
    // Shards that landed are collected after the grace period.
    assert!(
        eventually(Duration::from_secs(10), || async {
            shard_count(&c.secrets().cluster_secret, &nodes).await == 0
        })
        .await,
        "partial shards collected"
    );
    // And the key works normally afterwards.
    assert_eq!(put(&format!("{base}/trc/short"), data(10, 3)).await.0, 200);
    assert!(get(&format!("{base}/trc/short")).await.1 == data(10, 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn read_after_write_under_32_concurrent_clients() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    put(&format!("{base}/raw"), vec![]).await;
    let tasks: Vec<_> = (0..32u64)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                for round in 0..3u64 {
                    let body = data(50_000 + (i as usize) * 1000, i * 100 + round);
                    let url = format!("{base}/raw/client-{i}");
                    assert_eq!(put(&url, body.clone()).await.0, 200);
                    let (s, got) = get(&url).await;
                    assert_eq!(s, 200);
                    assert!(
                        got == body,
                        "client {i} round {round} read stale or wrong bytes"
                    );
                    // Everyone also races on one shared key: whatever wins must be complete.
                    assert_eq!(
                        put(&format!("{base}/raw/shared"), body.clone()).await.0,
                        200
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (s, shared) = get(&format!("{base}/raw/shared")).await;
    assert_eq!(s, 200);
    let complete = (0..32u64)
        .any(|i| (0..3).any(|r| data(50_000 + (i as usize) * 1000, i * 100 + r) == shared));
    assert!(
        complete,
        "the shared key holds exactly one complete version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn up_to_m_dead_nodes_read_exact_and_m_plus_one_is_503() {
    let (mut c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    put(&format!("{base}/flt"), vec![]).await;
    let objects: Vec<(String, Vec<u8>)> = (0..5)
        .map(|i| (format!("{base}/flt/o{i}"), data(i * 700_000 + 11, i as u64)))
        .collect();
    for (u, b) in &objects {
        assert_eq!(put(u, b.clone()).await.0, 200);
    }
    c.kill_node(0);
    for (u, b) in &objects {
        assert!(get(u).await.1 == *b, "one node down: {u}");
    }
    c.kill_node(3);
    // Before the registry notices (reads time out / fail over) and after.
    for (u, b) in &objects {
        assert!(get(u).await.1 == *b, "two nodes down: {u}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = http()
        .get(&objects[2].0)
        .header("range", "bytes=100-1200000")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap()[..] == objects[2].1[100..=1_200_000]);
    // Four nodes up, w = k+1 = 5: a new PUT cannot reach quorum.
    let (s, body) = put(&format!("{base}/flt/new"), data(1000, 9)).await;
    assert_eq!((s, code(&body).as_str()), (503, "ServiceUnavailable"));
    assert_eq!(get(&format!("{base}/flt/new")).await.0, 404);
    c.kill_node(5);
    for (u, _) in &objects[1..] {
        let (s, body) = get(u).await;
        let body = String::from_utf8_lossy(&body).to_string();
        assert_eq!(
            (s, code(&body).as_str()),
            (503, "ServiceUnavailable"),
            "three nodes down: {u}"
        );
        assert!(body.contains("flt/o"), "error names the object: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_killed_mid_put_keeps_quorum_or_fails_cleanly() {
    let (mut c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    put(&format!("{base}/mid"), vec![]).await;
    // A slow streamed PUT; one node dies in the middle. w = 5 of 6 still land.
    let body = data(24 * MIB, 5);
    let url = format!("{base}/mid/one-dies");
    let r = slow_put(&url, &body, 8, || c.kill_node(2)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert!(get(&url).await.1 == body);
    // Two more die mid-PUT: only 3 of 6 streams remain, below w = 5: 503, nothing visible.
    let url2 = format!("{base}/mid/two-die");
    let r = slow_put(&url2, &body, 4, || {
        c.kill_node(0);
        c.kill_node(4);
    })
    .await;
    match r {
        Ok(r) => {
            assert_eq!(r.status(), 503);
            assert_eq!(code(&r.text().await.unwrap()), "ServiceUnavailable");
        }
        Err(e) => assert!(
            e.is_request() || e.is_body(),
            "connection closed by the server: {e}"
        ),
    }
    assert_eq!(get(&url2).await.0, 404, "failed PUT is not visible");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flipped_bytes_on_disk_are_detected_and_served_around() {
    let (mut c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    put(&format!("{base}/cor"), vec![]).await;
    let objects: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| {
            (
                format!("{base}/cor/o{i}"),
                data(3 * MIB + i * 1000, 40 + i as u64),
            )
        })
        .collect();
    for (u, b) in &objects {
        assert_eq!(put(u, b.clone()).await.0, 200);
    }
    // Damage two nodes' stored data (flush to blob files, flip bytes, restart).
    for i in [1, 4] {
        c.stop_node(i, true);
        let flipped = flip_blob_bytes(&c.node_dir(i).join("shards"));
        assert!(flipped > 0);
        c.restart_node(i).await.unwrap();
    }
    c.wait_up(6, Duration::from_secs(10)).await.unwrap();
    for (u, b) in &objects {
        assert!(
            get(u).await.1 == *b,
            "{u} served correct bytes despite corruption"
        );
    }
    // The node itself reports the damage as corruption, distinct from missing.
    let mut corrupt = 0;
    for i in [1, 4] {
        let client = node_client(&c.secrets().cluster_secret, c.node_addr(i));
        for info in client.list(None, 1000).await.unwrap() {
            if let Err(tessera_node::StoreError::Corrupt(_)) = client
                .read(
                    info.header.shard_id(),
                    0,
                    info.length,
                    Duration::from_secs(5),
                )
                .await
            {
                corrupt += 1;
            }
        }
    }
    assert!(corrupt > 0, "corruption is reported by the node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn full_nodes_refuse_cleanly_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.node_capacity = 3 * MIB as u64;
    let c = tessera::local::LocalCluster::start(cfg).await.unwrap();
    let base = c.endpoint();
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    put(&format!("{base}/full"), vec![]).await;
    let small = data(4 * MIB, 1); // 1 MiB per shard: fits
    assert_eq!(
        put(&format!("{base}/full/small"), small.clone()).await.0,
        200
    );
    // 4 MiB per shard cannot fit in what is left on any node: refused with 503, which can
    // come before the client has sent the whole body (the nodes refuse the shards as they
    // arrive); the connection then closes under the rest, which reqwest reports as a broken
    // pipe instead of the answer. Either way nothing is stored (checked below).
    match http()
        .put(format!("{base}/full/big"))
        .body(data(16 * MIB, 2))
        .send()
        .await
    {
        Ok(r) => {
            let s = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert_eq!((s, code(&body).as_str()), (503, "ServiceUnavailable"));
        }
        Err(e) => assert!(
            format!("{e:?}").contains("BrokenPipe") || format!("{e:?}").contains("reset"),
            "{e:?}"
        ),
    }
    assert_eq!(get(&format!("{base}/full/big")).await.0, 404);
    assert!(
        get(&format!("{base}/full/small")).await.1 == small,
        "earlier data intact"
    );
    assert!(
        eventually(Duration::from_secs(10), || async {
            shard_count(&c.secrets().cluster_secret, &nodes).await == 6
        })
        .await,
        "only the small object's shards remain"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_objects_are_replicated_with_the_same_durability() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.coordinator.replicate_below = 64 << 10;
    let mut c = tessera::local::LocalCluster::start(cfg).await.unwrap();
    let base = c.endpoint();
    put(&format!("{base}/tiny"), vec![]).await;
    let small = data(4096, 1);
    let r = http()
        .put(format!("{base}/tiny/s"))
        .body(small.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-tessera-ec"],
        "1+2",
        "below the threshold: m+1 replicas"
    );
    let r = http()
        .put(format!("{base}/tiny/b"))
        .body(data(64 << 10, 2))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["x-tessera-ec"],
        "4+2",
        "at the threshold: erasure coded"
    );
    let r = http()
        .put(format!("{base}/tiny/x"))
        .header("x-tessera-ec", "2+2")
        .body(data(10, 3))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-tessera-ec"], "2+2", "an explicit code wins");
    // Exactly three copies exist.
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    assert_eq!(
        shard_count(&c.secrets().cluster_secret, &nodes).await,
        3 + 6 + 4
    );
    // Any m = 2 node losses are survived, as with 4+2.
    let holders: Vec<usize> = {
        let mut h = Vec::new();
        for (i, a) in nodes.iter().enumerate() {
            let n = node_client(&c.secrets().cluster_secret, *a);
            if n.list(None, 100)
                .await
                .unwrap()
                .iter()
                .any(|s| s.header.k == 1)
            {
                h.push(i);
            }
        }
        h
    };
    assert_eq!(holders.len(), 3);
    c.kill_node(holders[0]);
    c.kill_node(holders[1]);
    assert!(get(&format!("{base}/tiny/s")).await.1 == small);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphan_scan_removes_unreferenced_shards_only() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.coordinator.orphan_scan_interval = Duration::from_millis(300);
    cfg.coordinator.gc_grace = Duration::from_secs(5);
    let c = tessera::local::LocalCluster::start(cfg).await.unwrap();
    let base = c.endpoint();
    put(&format!("{base}/orph"), vec![]).await;
    let body = data(MIB + 5, 1);
    assert_eq!(put(&format!("{base}/orph/keep"), body.clone()).await.0, 200);
    // Shards no metadata names, as a lost in-flight record would leave them.
    let node = node_client(&c.secrets().cluster_secret, c.node_addr(0));
    let now = tessera_node::ObjectVersion::new();
    let old = tessera_node::ObjectVersion(now.0 - (60_000u128 << 80));
    let mut header = tessera_node::conformance::header(0, 4096);
    header.bucket = "orph".into();
    let mut orphans = Vec::new();
    for (key, version) in [("ghost", old), ("keep", old), ("young", now)] {
        header.key = key.into();
        header.version = version;
        node.put_shard_bytes(&header, bytes::Bytes::from(data(10_000, 2)))
            .await
            .unwrap();
        orphans.push(header.shard_id());
    }
    let gone = eventually(Duration::from_secs(10), || async {
        node.info(orphans[0]).await.is_err() && node.info(orphans[1]).await.is_err()
    })
    .await;
    assert!(
        gone,
        "old orphans (unknown key, stale version of a live key) were deleted"
    );
    assert!(
        node.info(orphans[2]).await.is_ok(),
        "a shard younger than the grace period is kept"
    );
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    assert_eq!(
        shard_count(&c.secrets().cluster_secret, &nodes).await,
        6 + 1,
        "the live object's shards are untouched"
    );
    assert!(get(&format!("{base}/orph/keep")).await.1 == body);
}

/// Small PUTs go through the per-node batches: many concurrent ones all read back exact and
/// share node log syncs; a truncated small body is refused and leaves nothing; with a node
/// killed, each small PUT either succeeds (and reads back) or fails with 503 (and is absent).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn small_puts_are_batched_exact_and_fail_cleanly() {
    let (mut c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    put(&format!("{base}/bat"), vec![]).await;
    let secret = c.secrets().cluster_secret.clone();
    let log_counts = |nodes: Vec<std::net::SocketAddr>| {
        let secret = secret.clone();
        async move {
            let (mut w, mut s) = (0, 0);
            for a in nodes {
                let hb = node_client(&secret, a).health().await.unwrap();
                w += hb.log_writes;
                s += hb.log_syncs;
            }
            (w, s)
        }
    };
    let (w0, s0) = log_counts(nodes.clone()).await;
    let tasks: Vec<_> = (0..48u64)
        .map(|i| {
            let base = base.clone();
            tokio::spawn(async move {
                for r in 0..5u64 {
                    let body = data(4096 + i as usize, i * 10 + r);
                    let url = format!("{base}/bat/o-{i}-{r}");
                    assert_eq!(put(&url, body.clone()).await.0, 200);
                    assert!(get(&url).await.1 == body, "{url} reads back exact");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let (w1, s1) = log_counts(nodes.clone()).await;
    assert!(w1 - w0 >= 48 * 5 * 6, "every shard was committed to a log");
    assert!(
        s1 - s0 < w1 - w0,
        "concurrent small writes share syncs ({} syncs for {} writes)",
        s1 - s0,
        w1 - w0
    );
    assert_eq!(
        shard_count(&c.secrets().cluster_secret, &nodes).await,
        48 * 5 * 6
    );

    // A small body shorter than its Content-Length: IncompleteBody, nothing stored.
    let mut req = b"PUT /bat/short HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n".to_vec();
    req.extend(data(3000, 7));
    let resp = raw(c.api, &req, true, Duration::from_secs(10)).await;
    assert!(resp.starts_with("HTTP/1.1 400"), "{resp}");
    assert_eq!(code(&resp), "IncompleteBody");
    assert_eq!(get(&format!("{base}/bat/short")).await.0, 404);
    assert_eq!(
        shard_count(&c.secrets().cluster_secret, &nodes).await,
        48 * 5 * 6,
        "no shard of it landed"
    );

    // A node dies: small PUTs succeed at quorum or fail cleanly, never half-visible.
    c.kill_node(2);
    for i in 0..20u64 {
        let url = format!("{base}/bat/after-{i}");
        let body = data(1000, 100 + i);
        match put(&url, body.clone()).await {
            (200, _) => assert!(get(&url).await.1 == body, "{url} reads back exact"),
            (503, b) => {
                assert_eq!(code(&b), "ServiceUnavailable");
                assert_eq!(get(&url).await.0, 404, "a failed PUT is not visible");
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
}

/// The node's batch endpoint stores nothing from a body that is cut short or malformed, and
/// stores each good shard of a batch even when another one in it is bad.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_batch_endpoint_rejects_bad_bodies() {
    use tessera_node::frame::{data_prefix, end_frame, header_frame, EndFrame};
    let (c, _d) = start(6, "4+2").await;
    let node = c.node_addr(0);
    let inside = tessera_node::auth::headers(&c.secrets().cluster_secret);
    let url = format!("http://{node}/shards/batch");
    let header = |i: u16| {
        let mut h = tessera_node::conformance::header(i, 1024);
        h.object_length = 100;
        h
    };
    let shard = |h: &tessera_node::ShardHeader, data: &[u8], claimed: u64| {
        let mut b = Vec::new();
        b.extend_from_slice(&header_frame(h));
        b.extend_from_slice(&data_prefix(data.len()));
        b.extend_from_slice(data);
        b.extend_from_slice(&end_frame(&EndFrame {
            header: h.clone(),
            length: claimed,
        }));
        b
    };
    // Data before any header.
    let mut bad = data_prefix(3).to_vec();
    bad.extend_from_slice(b"abc");
    let r = http()
        .post(&url)
        .headers(inside.clone())
        .body(bad)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // A good shard, then one cut off before its end frame: nothing at all is stored.
    let mut cut = shard(&header(0), &data(100, 1), 100);
    let second = shard(&header(1), &data(100, 2), 100);
    cut.extend_from_slice(&second[..second.len() - 20]);
    let r = http()
        .post(&url)
        .headers(inside.clone())
        .body(cut)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400, "a batch cut short is refused");
    assert_eq!(
        shard_count(&c.secrets().cluster_secret, &[node]).await,
        0,
        "nothing of it is stored"
    );
    // One good shard and one whose length does not match: the good one is stored alone.
    let (good, wrong) = (header(0), header(1));
    let mut body = shard(&good, &data(100, 3), 100);
    body.extend(shard(&wrong, &data(100, 4), 99));
    let r = http()
        .post(&url)
        .headers(inside.clone())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let out: Vec<tessera_node::types::BatchOutcome> = r.json().await.unwrap();
    assert!(matches!(
        out[0],
        tessera_node::types::BatchOutcome::Stored(_)
    ));
    assert!(matches!(
        out[1],
        tessera_node::types::BatchOutcome::Failed(_)
    ));
    let n = node_client(&c.secrets().cluster_secret, node);
    assert_eq!(
        n.read(good.shard_id(), 0, 100, Duration::from_secs(5))
            .await
            .unwrap(),
        data(100, 3)
    );
    assert!(n.info(wrong.shard_id()).await.is_err());
    assert_eq!(shard_count(&c.secrets().cluster_secret, &[node]).await, 1);
}

/// A 304 names the version it stands for; an empty delimiter is no delimiter; a V1 listing
/// always carries `Marker`; ListBuckets pages with `max-buckets` and `continuation-token` and
/// filters by `prefix`; a refused page size changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_reads_and_listing_edges_answer_as_s3_does() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/edges"), vec![]).await.0, 200);
    let url = format!("{base}/edges/obj");
    let r = http().put(&url).body(data(5000, 1)).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let modified = http().head(&url).send().await.unwrap().headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_string();
    for (name, value) in [
        ("if-none-match", etag.clone()),
        (
            "if-modified-since",
            "Fri, 01 Jan 2100 00:00:00 GMT".to_string(),
        ),
    ] {
        for method in [reqwest::Method::GET, reqwest::Method::HEAD] {
            let r = http()
                .request(method.clone(), &url)
                .header(name, &value)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 304, "{method} {name}");
            assert_eq!(
                r.headers()["etag"].to_str().unwrap(),
                etag,
                "{method} {name}"
            );
            assert_eq!(r.headers()["last-modified"].to_str().unwrap(), modified);
        }
    }
    let r = http()
        .get(&url)
        .header("if-match", "\"0123\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    assert!(
        get(&url).await.1 == data(5000, 1),
        "the object is unchanged"
    );

    for k in ["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud"] {
        assert_eq!(put(&format!("{base}/edges/{k}"), vec![1]).await.0, 200);
    }
    for q in ["delimiter=", "list-type=2&delimiter="] {
        let (s, body) = get(&format!("{base}/edges?{q}")).await;
        let body = String::from_utf8(body).unwrap();
        assert_eq!(s, 200, "{body}");
        assert_eq!(
            xml_values(&body, "Key"),
            ["asdf", "boo/bar", "boo/baz/xyzzy", "cquux/thud", "obj"],
            "{q}"
        );
        assert!(
            xml_values(&body, "CommonPrefixes").is_empty(),
            "{q}: {body}"
        );
        assert!(xml_values(&body, "Delimiter").is_empty(), "{q}: {body}");
    }
    let (_, body) = get(&format!("{base}/edges?prefix=boo/")).await;
    assert_eq!(
        xml_values(&String::from_utf8(body).unwrap(), "Marker"),
        [""]
    );
    // V1 paging by NextMarker with a delimiter: a marker that is a common prefix resumes
    // after everything under it (s3-tests' test_bucket_list_delimiter_prefix).
    let page = |marker: &str| {
        let url = format!("{base}/edges?delimiter=/&max-keys=1&marker={marker}");
        async move { String::from_utf8(get(&url).await.1).unwrap() }
    };
    let p1 = page("").await;
    assert_eq!(xml_values(&p1, "Key"), ["asdf"]);
    assert_eq!(xml_value(&p1, "NextMarker"), "asdf");
    let p2 = page("asdf").await;
    assert_eq!(xml_values(&p2, "Prefix"), ["boo/"], "{p2}");
    assert_eq!(xml_value(&p2, "NextMarker"), "boo/");
    let p3 = page("boo/").await;
    assert_eq!(xml_values(&p3, "Prefix"), ["cquux/".to_string()], "{p3}");
    let p4 = page("boo/bar").await;
    assert_eq!(xml_values(&p4, "Prefix"), ["cquux/".to_string()], "{p4}");

    for b in ["lb-a", "lb-b", "lb-c", "other"] {
        assert_eq!(put(&format!("{base}/{b}"), vec![]).await.0, 200);
    }
    let (s, body) = get(&format!("{base}/?max-buckets=2&prefix=lb-")).await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!(s, 200, "{body}");
    assert_eq!(xml_values(&body, "Name"), ["lb-a", "lb-b"]);
    assert_eq!(xml_value(&body, "Prefix"), "lb-");
    let token = xml_value(&body, "ContinuationToken");
    assert!(!token.is_empty(), "{body}");
    let (_, body) = get(&format!(
        "{base}/?max-buckets=2&prefix=lb-&continuation-token={token}"
    ))
    .await;
    let body = String::from_utf8(body).unwrap();
    assert_eq!(xml_values(&body, "Name"), ["lb-c"]);
    assert!(xml_values(&body, "ContinuationToken").is_empty(), "{body}");
    let (s, body) = get(&format!("{base}/?max-buckets=0")).await;
    assert_eq!(
        (s, code(&String::from_utf8(body).unwrap()).as_str()),
        (400, "InvalidArgument")
    );
    let (_, body) = get(&format!("{base}/")).await;
    assert_eq!(
        xml_values(&String::from_utf8(body).unwrap(), "Name").len(),
        5
    );

    // Conditional PUTs with ETags (not only `*`): refusals change nothing.
    let cond_put = |key: &str, headers: &[(&str, &str)], body: Vec<u8>| {
        let mut r = http().put(format!("{base}/edges/{key}")).body(body);
        for (n, v) in headers {
            r = r.header(*n, *v);
        }
        async move {
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (status, code(&r.text().await.unwrap()))
        }
    };
    let stale = "\"00000000000000000000000000000000\"";
    assert_eq!(
        cond_put("obj", &[("if-match", stale)], data(10, 2)).await,
        (412, "PreconditionFailed".into())
    );
    assert_eq!(
        cond_put("missing", &[("if-match", &etag)], data(10, 3)).await,
        (404, "NoSuchKey".into())
    );
    assert_eq!(
        cond_put("obj", &[("if-none-match", &etag)], data(10, 4)).await,
        (412, "PreconditionFailed".into())
    );
    let both = [("if-match", etag.as_str()), ("if-none-match", stale)];
    assert_eq!(cond_put("obj", &both, data(6000, 5)).await.0, 200);
    assert!(
        get(&url).await.1 == data(6000, 5),
        "If-Match and If-None-Match held"
    );
    assert_eq!(
        cond_put("fresh", &[("if-none-match", stale)], data(10, 6))
            .await
            .0,
        200
    );
    assert_eq!(get(&format!("{base}/edges/missing")).await.0, 404);
}

/// CopyObject onto itself: refused (InvalidRequest, nothing changed) unless the metadata is
/// replaced, which then changes the metadata and keeps the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn copying_an_object_onto_itself_replaces_its_metadata_only_when_asked() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/self"), vec![]).await.0, 200);
    let url = format!("{base}/self/obj");
    let body = data(300_000, 9);
    let r = http()
        .put(&url)
        .header("content-type", "text/x-before")
        .header("x-amz-meta-color", "red")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let copy = |replace: bool| {
        let mut r = http()
            .put(&url)
            .header("x-amz-copy-source", "/self/obj")
            .header("content-type", "text/x-after")
            .header("x-amz-meta-color", "blue");
        if replace {
            r = r.header("x-amz-metadata-directive", "REPLACE");
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, text) = copy(false).await;
    assert_eq!((s, code(&text).as_str()), (400, "InvalidRequest"), "{text}");
    let h = http().head(&url).send().await.unwrap();
    assert_eq!(h.headers()["content-type"], "text/x-before");
    assert_eq!(h.headers()["x-amz-meta-color"], "red");
    let (s, text) = copy(true).await;
    assert_eq!(s, 200, "{text}");
    let h = http().head(&url).send().await.unwrap();
    assert_eq!(h.headers()["content-type"], "text/x-after");
    assert_eq!(h.headers()["x-amz-meta-color"], "blue");
    assert!(get(&url).await.1 == body, "the bytes stay");
}

/// `aws-chunked` in Content-Encoding describes the request's body, not the object: it is
/// not stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_chunked_is_not_stored_as_the_objects_encoding() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/enc"), vec![]).await.0, 200);
    for (key, sent, stored) in [
        ("a", "gzip, aws-chunked", Some("gzip")),
        ("b", "aws-chunked", None),
        ("c", "br", Some("br")),
    ] {
        let url = format!("{base}/enc/{key}");
        let r = http()
            .put(&url)
            .header("content-encoding", sent)
            .body(data(100, 1))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{sent}");
        let h = http().head(&url).send().await.unwrap();
        assert_eq!(
            h.headers()
                .get("content-encoding")
                .map(|v| v.to_str().unwrap()),
            stored,
            "{sent}"
        );
    }
}

/// GetObjectAttributes: ETag, size, storage class and checksum of a single-part object;
/// parts (paged by max-parts and part-number-marker) of a multipart one; NoSuchKey for a
/// missing key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn object_attributes_are_answered_without_the_body() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/attrs"), vec![]).await.0, 200);
    // max-parts and part-number-marker travel as headers for this operation.
    let attrs = |key: &str, paging: &[(&str, &str)], which: &str| {
        let mut r = http()
            .get(format!("{base}/attrs/{key}?attributes"))
            .header("x-amz-object-attributes", which);
        for (n, v) in paging {
            r = r.header(*n, *v);
        }
        async move {
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let body = data(70_000, 4);
    let r = http()
        .put(format!("{base}/attrs/single"))
        .header("x-amz-checksum-algorithm", "CRC32")
        .header(
            "x-amz-checksum-crc32",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                crc32fast_like(&body),
            ),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let (s, xml) = attrs("single", &[], "ETag,ObjectSize,StorageClass,Checksum").await;
    assert_eq!(s, 200, "{xml}");
    assert_eq!(
        xml_value(&xml, "ETag").trim_matches('"'),
        hex::encode(md5::Md5::digest(&body)),
        "{xml}"
    );
    assert_eq!(xml_value(&xml, "ObjectSize"), "70000");
    assert_eq!(xml_value(&xml, "StorageClass"), "STANDARD");
    assert!(!xml_value(&xml, "ChecksumCRC32").is_empty(), "{xml}");
    assert!(xml_values(&xml, "ObjectParts").is_empty(), "{xml}");

    let parts: Vec<Vec<u8>> = (0..3).map(|i| data(5 * MIB + i, 40 + i as u64)).collect();
    put_multipart(&format!("{base}/attrs/multi"), &parts).await;
    let (s, xml) = attrs("multi", &[], "ObjectParts,ObjectSize").await;
    assert_eq!(s, 200, "{xml}");
    assert_eq!(xml_value(&xml, "PartsCount"), "3", "{xml}");
    assert_eq!(xml_values(&xml, "PartNumber"), ["1", "2", "3"]);
    assert_eq!(xml_value(&xml, "ObjectSize"), (15 * MIB + 3).to_string());
    assert!(
        xml_values(&xml, "ETag").is_empty(),
        "only what was asked: {xml}"
    );
    let (_, xml) = attrs(
        "multi",
        &[("x-amz-max-parts", "1"), ("x-amz-part-number-marker", "1")],
        "ObjectParts",
    )
    .await;
    assert_eq!(xml_values(&xml, "PartNumber"), ["2"]);
    assert_eq!(xml_value(&xml, "IsTruncated"), "true");
    assert_eq!(xml_value(&xml, "NextPartNumberMarker"), "2");
    let (s, xml) = attrs("missing", &[], "ETag").await;
    assert_eq!((s, code(&xml).as_str()), (404, "NoSuchKey"));
}

/// CRC32 (IEEE) of `b`, big-endian, as `x-amz-checksum-crc32` carries it.
fn crc32fast_like(b: &[u8]) -> [u8; 4] {
    let mut crc = !0u32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    (!crc).to_be_bytes()
}
