//! Access control and browser features on a cluster that checks signatures: ACLs, bucket
//! policies, the public access block, CORS, form uploads and ownership controls as boto3 and
//! unsigned HTTP clients meet them (tests/clients/access_control.py), a real browser through
//! CORS (tests/clients/browser_cors.py), and conditional deletes.

mod common;

use common::*;
use md5::Digest;

/// boto3 and plain HTTP: nothing is open to a stranger by default; ACLs, policies, the
/// public access block, CORS rules, POST forms and ownership controls do what S3 users
/// expect, and every refusal (malformed documents, unknown grantees, blocked public access,
/// forged forms) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acls_policies_cors_and_forms_through_boto3() {
    let (c, _dir, keys) = start_signed(&["owner", "alt"]).await;
    run_client("python3", "access_control.py", &two_key_env(&c, &keys)).await;
}

/// A real browser (headless Chromium) on a page from another origin uploads with a presigned
/// POST form, downloads with a presigned GET and writes with a presigned PUT through the
/// bucket's CORS rules; a page from an origin the rules do not name reads nothing and its
/// PUT is refused at the preflight, storing nothing (tests/clients/browser_cors.py).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_on_another_origin_goes_through_cors() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.coordinator.anonymous = false;
    let c = tessera::local::LocalCluster::start(cfg).await.unwrap();
    let (key, secret) = c.create_key("web").await.unwrap();
    let text = run_client(
        "python3",
        "browser_cors.py",
        &[("ENDPOINT", c.endpoint()), ("KEY", key), ("SECRET", secret)],
    )
    .await;
    assert!(text.contains("allowed origin:"), "{text}");
}

/// DeleteObject with `If-Match`, `x-amz-if-match-size` or
/// `x-amz-if-match-last-modified-time`: a condition that does not hold is 412 and the object
/// stays; one that holds deletes; a missing key is a successful no-op whatever the
/// condition. DeleteObjects reports a failed condition per key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_deletes_delete_only_what_they_name() {
    let (c, _d) = start(6, "4+2").await;
    let base = c.endpoint();
    assert_eq!(put(&format!("{base}/cond"), vec![]).await.0, 200);
    let obj = format!("{base}/cond/obj");
    let r = http().put(&obj).body("body").send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let delete = |headers: Vec<(&'static str, String)>| {
        let obj = obj.clone();
        async move {
            let mut req = http().delete(&obj);
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for wrong in [
        vec![("if-match", "\"0000\"".to_string())],
        vec![("x-amz-if-match-size", "5".to_string())],
        vec![(
            "x-amz-if-match-last-modified-time",
            "Thu, 01 Jan 2015 00:00:00 GMT".to_string(),
        )],
    ] {
        let (s, b) = delete(wrong).await;
        assert_eq!((s, code(&b).as_str()), (412, "PreconditionFailed"), "{b}");
        assert_eq!(get(&obj).await, (200, b"body".to_vec()), "the object stays");
    }
    let (s, _) = delete(vec![
        ("if-match", etag.clone()),
        ("x-amz-if-match-size", "4".into()),
    ])
    .await;
    assert_eq!(s, 204);
    assert_eq!(get(&obj).await.0, 404);
    let (s, _) = delete(vec![("if-match", etag.clone())]).await;
    assert_eq!(s, 204, "a missing key is deleted whatever the condition");

    // DeleteObjects: the key whose ETag does not match is reported and kept.
    for k in ["a", "b"] {
        assert_eq!(put(&format!("{base}/cond/{k}"), b"x".to_vec()).await.0, 200);
    }
    let x_etag = hex::encode(md5::Md5::digest(b"x"));
    let body = format!(
        "<Delete><Object><Key>a</Key><ETag>\"{x_etag}\"</ETag></Object>\
         <Object><Key>b</Key><ETag>\"ffff\"</ETag></Object></Delete>"
    );
    let md5 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        md5::Md5::digest(body.as_bytes()),
    );
    let r = http()
        .post(format!("{base}/cond?delete"))
        .header("content-md5", md5)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(text.contains("<Deleted><Key>a</Key>"), "{text}");
    assert!(text.contains("<Code>PreconditionFailed</Code>"), "{text}");
    assert_eq!(get(&format!("{base}/cond/a")).await.0, 404);
    assert_eq!(get(&format!("{base}/cond/b")).await, (200, b"x".to_vec()));
}
