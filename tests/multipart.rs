//! Multipart uploads over plain HTTP against an in-process cluster: parts streamed and
//! erasure-coded, completion with S3's checks and codes, reads across part boundaries and by
//! part number, parts left out and abandoned uploads collected, copy of a range as a part.

mod common;

use common::*;
use md5::{Digest, Md5};
use std::time::Duration;

const MIB: usize = 1 << 20;

fn md5_hex(b: &[u8]) -> String {
    hex::encode(Md5::digest(b))
}

/// Text between `<tag>` and `</tag>`, first occurrence.
/// The first `<tag>` of an XML answer, unescaped, without the quotes an ETag carries.
fn field(xml: &str, tag: &str) -> String {
    xml_value(xml, tag).trim_matches('"').to_string()
}

/// Starts an upload; returns its id.
async fn create(obj: &str) -> String {
    let r = http().post(format!("{obj}?uploads")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    field(&text, "UploadId")
}

/// Uploads a part; returns (status, ETag without quotes or the error body).
async fn part(obj: &str, id: &str, n: i64, body: Vec<u8>) -> (u16, String) {
    let r = http()
        .put(format!("{obj}?partNumber={n}&uploadId={id}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let etag = r
        .headers()
        .get("etag")
        .map(|e| e.to_str().unwrap().trim_matches('"').to_string());
    let text = r.text().await.unwrap();
    (s, etag.unwrap_or(text))
}

/// Completes with `(number, etag)` pairs; returns (status, body).
async fn complete(
    obj: &str,
    id: &str,
    parts: &[(i64, &str)],
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (n, e) in parts {
        xml.push_str(&format!(
            "<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>"
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let mut req = http().post(format!("{obj}?uploadId={id}")).body(xml);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn list_parts(obj: &str, id: &str) -> (u16, String) {
    let r = http()
        .get(format!("{obj}?uploadId={id}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multipart_round_trip_ranges_parts_and_collection() {
    let (c, _d) = start(6, "4+2").await;
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    let secret = c.secrets().cluster_secret.clone();
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/mpu"), vec![]).await.0, 200);
    let obj = format!("{base}/mpu/dir/big.bin");
    let id = create(&obj).await;
    assert_eq!(id.len(), 32, "upload id {id}");
    let p1 = data(5 * MIB, 1);
    let p2_old = data(5 * MIB, 2);
    let p2 = data(5 * MIB + 3, 22);
    let p3 = data(MIB + 1, 3);
    let p4 = data(MIB, 4);
    let e1 = part(&obj, &id, 1, p1.clone()).await;
    assert_eq!(e1, (200, md5_hex(&p1)), "part ETag is the part's MD5");
    assert_eq!(part(&obj, &id, 2, p2_old).await.0, 200);
    // Uploading a part number again replaces it.
    let e2 = part(&obj, &id, 2, p2.clone()).await;
    assert_eq!(e2.0, 200);
    let e3 = part(&obj, &id, 3, p3.clone()).await;
    let e4 = part(&obj, &id, 4, p4).await;
    assert_eq!((e3.0, e4.0), (200, 200));
    // Nothing is visible before completion.
    assert_eq!(get(&obj).await.0, 404);
    let (s, lp) = list_parts(&obj, &id).await;
    assert_eq!(s, 200, "{lp}");
    assert_eq!(lp.matches("<Part>").count(), 4, "{lp}");
    assert!(
        lp.contains(&format!("<Size>{}</Size>", 5 * MIB + 3)),
        "{lp}"
    );
    let r = http()
        .get(format!(
            "{obj}?uploadId={id}&max-parts=2&part-number-marker=1"
        ))
        .send()
        .await
        .unwrap();
    let lp = r.text().await.unwrap();
    assert_eq!(lp.matches("<Part>").count(), 2, "{lp}");
    assert!(
        lp.contains("<IsTruncated>true</IsTruncated>")
            && lp.contains("<NextPartNumberMarker>3</NextPartNumberMarker>"),
        "{lp}"
    );
    let r = http()
        .get(format!("{base}/mpu?uploads"))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains(&format!("<UploadId>{id}</UploadId>")),
        "{text}"
    );
    assert!(text.contains("<Key>dir/big.bin</Key>"), "{text}");
    let r = http()
        .get(format!("{base}/mpu?uploads&delimiter=/"))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(
        text.contains("<Prefix>dir/</Prefix>") && !text.contains("<UploadId>"),
        "{text}"
    );

    // Complete with parts 1..3; part 4 is left out.
    let (s, body) = complete(&obj, &id, &[(1, &e1.1), (2, &e2.1), (3, &e3.1)], &[]).await;
    assert_eq!(s, 200, "{body}");
    let mut cat = Vec::new();
    for p in [&p1, &p2, &p3] {
        cat.extend(hex::decode(md5_hex(p)).unwrap());
    }
    let want_etag = format!("{}-3", md5_hex(&cat));
    assert!(body.contains(&want_etag), "ETag md5(part MD5s)-3: {body}");
    let whole: Vec<u8> = [p1.clone(), p2.clone(), p3.clone()].concat();
    let (s, got) = get(&obj).await;
    assert!(s == 200 && got == whole, "whole object");
    let r = http().head(&obj).send().await.unwrap();
    assert_eq!(r.headers()["etag"], format!("\"{want_etag}\"").as_str());
    assert_eq!(
        r.headers()["content-length"],
        whole.len().to_string().as_str()
    );
    // Ranges across part boundaries.
    for (a, b) in [
        (5 * MIB - 10, 5 * MIB + 10),
        (0, whole.len() - 1),
        (10 * MIB, 10 * MIB + 5),
        (whole.len() - 3, whole.len() - 1),
        (5 * MIB - 1, 10 * MIB + 4),
    ] {
        let r = http()
            .get(&obj)
            .header("range", format!("bytes={a}-{b}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 206);
        let got = r.bytes().await.unwrap();
        assert!(got[..] == whole[a..=b], "range {a}-{b}");
    }
    // partNumber reads one part.
    let r = http()
        .get(format!("{obj}?partNumber=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["x-amz-mp-parts-count"], "3");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes {}-{}/{}", 5 * MIB, 10 * MIB + 2, whole.len()).as_str()
    );
    assert!(r.bytes().await.unwrap()[..] == p2[..], "part 2");
    let r = http()
        .get(format!("{obj}?partNumber=4"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a part left out is not part of the object");
    // The upload is gone.
    assert_eq!(list_parts(&obj, &id).await.0, 404);
    assert_eq!(part(&obj, &id, 5, b"x".to_vec()).await.0, 404);
    // Parts 4 and the replaced part 2 are collected: 3 parts x 6 shards + a manifest on
    // m+1 = 3 nodes remain.
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&secret, &nodes).await == 3 * 6 + 3
        })
        .await,
        "unused parts collected: {} shards",
        shard_count(&secret, &nodes).await
    );
    // Deleting the object collects every part and the manifest.
    assert_eq!(http().delete(&obj).send().await.unwrap().status(), 204);
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&secret, &nodes).await == 0
        })
        .await,
        "deleted multipart object collected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn multipart_refusals_change_nothing() {
    let (c, _d) = start(6, "4+2").await;
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    let secret = c.secrets().cluster_secret.clone();
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/mpr"), vec![]).await.0, 200);
    let obj = format!("{base}/mpr/key");
    let old = data(1000, 9);
    assert_eq!(put(&obj, old.clone()).await.0, 200);
    let bogus = "0123456789abcdef0123456789abcdef";
    // Unknown or malformed upload ids.
    for id in [bogus, "nope"] {
        let (s, b) = part(&obj, id, 1, b"x".to_vec()).await;
        assert_eq!((s, code(&b).as_str()), (404, "NoSuchUpload"), "{b}");
        let (s, b) = complete(&obj, id, &[(1, "x")], &[]).await;
        assert_eq!((s, code(&b).as_str()), (404, "NoSuchUpload"), "{b}");
        let (s, b) = list_parts(&obj, id).await;
        assert_eq!((s, code(&b).as_str()), (404, "NoSuchUpload"), "{b}");
        let r = http()
            .delete(format!("{obj}?uploadId={id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let id = create(&obj).await;
    // Part numbers outside 1..=10000.
    for n in [0, 10_001] {
        let (s, b) = part(&obj, &id, n, b"x".to_vec()).await;
        assert_eq!(
            (s, code(&b).as_str()),
            (400, "InvalidArgument"),
            "part {n}: {b}"
        );
    }
    let small = data(MIB, 1);
    let e1 = part(&obj, &id, 1, small.clone()).await.1;
    let e2 = part(&obj, &id, 2, data(MIB, 2)).await.1;
    let e3 = part(&obj, &id, 3, data(5 * MIB, 3)).await.1;
    let cases: Vec<(Vec<(i64, &str)>, &str)> = vec![
        (vec![(2, &e2), (1, &e1)], "InvalidPartOrder"),
        // A number named twice in a row is allowed (the later entry is used, as the
        // reference suite's resend test expects); going back is not.
        (vec![(2, &e2), (2, &e2), (1, &e1)], "InvalidPartOrder"),
        (vec![(1, &e1), (7, &e2)], "InvalidPart"),
        (vec![(1, &e2)], "InvalidPart"),
        (vec![(1, &e1), (3, &e3)], "EntityTooSmall"),
        (vec![], "InvalidArgument"),
    ];
    for (parts, want) in cases {
        let (s, b) = complete(&obj, &id, &parts, &[]).await;
        assert_eq!((s, code(&b).as_str()), (400, want), "{parts:?}: {b}");
        assert!(
            get(&obj).await.1 == old,
            "a refused completion changed the key"
        );
    }
    // A conditional completion that loses: 412, the key and the upload stay.
    let (s, b) = complete(&obj, &id, &[(3, &e3)], &[("if-none-match", "*")]).await;
    assert_eq!((s, code(&b).as_str()), (412, "PreconditionFailed"), "{b}");
    assert!(get(&obj).await.1 == old);
    assert_eq!(
        list_parts(&obj, &id).await.0,
        200,
        "the upload survives a 412"
    );
    // If-Match with the current ETag wins.
    let etag = md5_hex(&old);
    let (s, b) = complete(
        &obj,
        &id,
        &[(3, &e3)],
        &[("if-match", &format!("\"{etag}\""))],
    )
    .await;
    assert_eq!(s, 200, "{b}");
    assert!(get(&obj).await.1 == data(5 * MIB, 3));
    // Abort: the upload and its parts go.
    let id2 = create(&obj).await;
    assert_eq!(part(&obj, &id2, 1, data(MIB, 5)).await.0, 200);
    let r = http()
        .delete(format!("{obj}?uploadId={id2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(list_parts(&obj, &id2).await.0, 404);
    assert!(
        get(&obj).await.1 == data(5 * MIB, 3),
        "abort left the object alone"
    );
    // Only the object (one part + manifest) remains once garbage is collected.
    assert!(
        eventually(Duration::from_secs(15), || async {
            shard_count(&secret, &nodes).await == 6 + 3
        })
        .await,
        "aborted and unused parts collected: {}",
        shard_count(&secret, &nodes).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn abandoned_uploads_expire_and_copied_ranges_make_parts() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.coordinator.multipart_expiry = Duration::from_secs(2);
    let c = tessera::local::LocalCluster::start(cfg).await.unwrap();
    let nodes: Vec<_> = (0..6).map(|i| c.node_addr(i)).collect();
    let secret = c.secrets().cluster_secret.clone();
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/mpx"), vec![]).await.0, 200);
    // UploadPartCopy: a range of an existing object becomes a part.
    let src = data(6 * MIB, 8);
    assert_eq!(put(&format!("{base}/mpx/src"), src.clone()).await.0, 200);
    let obj = format!("{base}/mpx/copy");
    let id = create(&obj).await;
    let r = http()
        .put(format!("{obj}?partNumber=1&uploadId={id}"))
        .header("x-amz-copy-source", "/mpx/src")
        .header(
            "x-amz-copy-source-range",
            format!("bytes=100-{}", 5 * MIB + 99),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let e1 = field(&text, "ETag");
    assert_eq!(e1, md5_hex(&src[100..5 * MIB + 100]), "{text}");
    let r = http()
        .put(format!("{obj}?partNumber=2&uploadId={id}"))
        .header("x-amz-copy-source", "/mpx/src")
        .header("x-amz-copy-source-range", format!("bytes=0-{}", 7 * MIB))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416, "range past the source");
    let e2 = part(&obj, &id, 2, b"tail".to_vec()).await.1;
    let (s, b) = complete(&obj, &id, &[(1, &e1), (2, &e2)], &[]).await;
    assert_eq!(s, 200, "{b}");
    let want = [&src[100..5 * MIB + 100], b"tail"].concat();
    assert!(get(&obj).await.1 == want, "copied part + uploaded part");
    let before = shard_count(&secret, &nodes).await;
    // An upload nobody completes is aborted after the expiry and its parts collected.
    let stale = format!("{base}/mpx/stale");
    let sid = create(&stale).await;
    assert_eq!(part(&stale, &sid, 1, data(MIB, 1)).await.0, 200);
    assert!(
        eventually(Duration::from_secs(20), || async {
            list_parts(&stale, &sid).await.0 == 404 && shard_count(&secret, &nodes).await == before
        })
        .await,
        "expired upload aborted and collected"
    );
    assert!(
        get(&obj).await.1 == want,
        "completed object untouched by expiry"
    );
}

/// A CompleteMultipartUpload retried after it succeeded (its first answer lost) gets the same
/// answer; a Complete naming other parts after completion gets NoSuchUpload; the object is
/// the first completion's either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_complete_gets_the_same_answer() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/retry"), vec![]).await.0, 200);
    let obj = format!("{base}/retry/obj");
    let id = create(&obj).await;
    let (p1, p2) = (data(5 * MIB, 71), data(MIB + 5, 72));
    let (s1, e1) = part(&obj, &id, 1, p1.clone()).await;
    let (s2, e2) = part(&obj, &id, 2, p2.clone()).await;
    assert_eq!((s1, s2), (200, 200));
    let (s, first) = complete(&obj, &id, &[(1, &e1), (2, &e2)], &[]).await;
    assert_eq!(s, 200, "{first}");
    let etag = field(&first, "ETag");
    assert!(etag.ends_with("-2"), "{first}");
    for _ in 0..2 {
        let (s, again) = complete(&obj, &id, &[(1, &e1), (2, &e2)], &[]).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!(field(&again, "ETag"), etag);
        assert_eq!(field(&again, "Key"), "obj");
    }
    let (s, b) = complete(&obj, &id, &[(1, &e1)], &[]).await;
    assert_eq!((s, code(&b).as_str()), (404, "NoSuchUpload"), "{b}");
    let (s, b) = complete(
        &format!("{base}/retry/other"),
        &id,
        &[(1, &e1), (2, &e2)],
        &[],
    )
    .await;
    assert_eq!((s, code(&b).as_str()), (404, "NoSuchUpload"), "{b}");
    let mut whole = p1;
    whole.extend_from_slice(&p2);
    assert!(get(&obj).await.1 == whole, "the first completion's object");
    assert_eq!(get(&format!("{base}/retry/other")).await.0, 404);
}

/// A part uploaded twice (a retry whose first attempt was still running): whichever upload
/// committed last, a completion naming either one's ETag uses that one's bytes, and the
/// other upload's shards become garbage (ceph/s3-tests
/// `test_multipart_resend_first_finishes_last`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_part_uploaded_twice_is_completed_by_the_etag_named() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/resend"), vec![]).await.0, 200);
    for named_first in [true, false] {
        let obj = format!("{base}/resend/obj-{named_first}");
        let id = create(&obj).await;
        let (first, second) = (data(5 * MIB, 81), data(5 * MIB, 82));
        let (s1, e1) = part(&obj, &id, 1, first.clone()).await;
        let (s2, e2) = part(&obj, &id, 1, second.clone()).await;
        let (s3, e3) = part(&obj, &id, 2, b"tail".to_vec()).await;
        assert_eq!((s1, s2, s3), (200, 200, 200));
        assert_ne!(e1, e2);
        let (etag, body) = if named_first {
            (&e1, first)
        } else {
            (&e2, second)
        };
        let (s, b) = complete(&obj, &id, &[(1, etag), (2, &e3)], &[]).await;
        assert_eq!(s, 200, "{b}");
        let (status, got) = get(&obj).await;
        assert_eq!(status, 200);
        assert!(got[..5 * MIB] == body[..], "the bytes of the upload named");
        assert_eq!(&got[5 * MIB..], b"tail");
    }
    // A part never uploaded with the ETag named is still refused.
    let obj = format!("{base}/resend/refused");
    let id = create(&obj).await;
    let (_, e1) = part(&obj, &id, 1, data(5 * MIB, 83)).await;
    let (s, b) = complete(&obj, &id, &[(1, &md5_hex(b"other"))], &[]).await;
    assert_eq!((s, code(&b).as_str()), (400, "InvalidPart"), "{b}");
    let (s, b) = complete(&obj, &id, &[(1, &e1)], &[]).await;
    assert_eq!(s, 200, "the refusal changed nothing: {b}");
}

/// boto3 through a proxy that drops the answer to the first CompleteMultipartUpload (the
/// connection closes after the coordinator answered): boto3 retries, and the retry succeeds
/// with the same ETag (tests/clients/retried_complete.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boto3_retries_a_complete_whose_answer_was_lost() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.coordinator.anonymous = false;
    let c = tessera::local::LocalCluster::start(cfg).await.unwrap();
    let (key, secret) = c.create_key("retry").await.unwrap();
    let proxy = lossy_proxy(c.api).await;
    let text = run_client(
        "python3",
        "retried_complete.py",
        &[
            ("ENDPOINT", format!("http://{proxy}")),
            ("KEY", key),
            ("SECRET", secret),
        ],
    )
    .await;
    assert!(text.contains("retries: "), "{text}");
}

/// A TCP proxy to `upstream` that, once, closes the client's connection instead of passing
/// on the answer to a `POST ...?uploadId=` request (a CompleteMultipartUpload).
async fn lossy_proxy(upstream: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                continue;
            };
            let dropped = dropped.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                // Set when this connection carries the Complete whose answer is to be lost.
                let doomed = Arc::new(AtomicBool::new(false));
                let d = doomed.clone();
                let up = tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match cr.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let text = String::from_utf8_lossy(&buf[..n]);
                        if text.starts_with("POST ")
                            && text.lines().next().is_some_and(|l| l.contains("uploadId="))
                            && !dropped.swap(true, Ordering::SeqCst)
                        {
                            d.store(true, Ordering::SeqCst);
                        }
                        if sw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
                let mut buf = vec![0u8; 64 << 10];
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if doomed.load(Ordering::SeqCst) {
                        // The coordinator answered; the client never hears it.
                        break;
                    }
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    addr
}
