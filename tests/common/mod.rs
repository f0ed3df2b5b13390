//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod group;
pub mod guide;
pub mod net;
pub mod procs;

use std::path::Path;
use std::time::Duration;
use tessera::local::{LocalCluster, LocalClusterConfig};
use tessera_coordinator::EcSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut h = blake3::Hasher::new();
    h.update(&seed.to_le_bytes());
    h.finalize_xof().fill(&mut out);
    out
}

/// The body of write `tag`: the tag in the first 8 bytes, then bytes derived from it, so a
/// read names the write it returns and any torn or mixed body is caught.
pub fn tagged(tag: u64, len: usize) -> Vec<u8> {
    let mut b = data(len, tag);
    b[..8].copy_from_slice(&tag.to_be_bytes());
    b
}

/// Which write a read returned, checking every byte.
pub fn tag_of(b: &[u8]) -> u64 {
    assert!(b.len() >= 8, "a body shorter than its tag");
    let tag = u64::from_be_bytes(b[..8].try_into().unwrap());
    assert!(
        b == tagged(tag, b.len()).as_slice(),
        "read a body that no write wrote whole (tag {tag})"
    );
    tag
}

/// Cluster settings with short timeouts so fault tests run quickly.
pub fn fast_config(nodes: usize, ec: &str, dir: &Path) -> LocalClusterConfig {
    let mut c = LocalClusterConfig::new(nodes, ec.parse::<EcSpec>().unwrap(), dir);
    c.heartbeat_interval = Duration::from_millis(200);
    c.coordinator.heartbeat_timeout = Duration::from_millis(1200);
    c.coordinator.gc_grace = Duration::from_millis(300);
    c.coordinator.gc_interval = Duration::from_millis(200);
    c.coordinator.read_hedge_after = Duration::from_millis(300);
    c.coordinator.shard_read_timeout = Duration::from_secs(3);
    c.coordinator.shard_write_timeout = Duration::from_secs(5);
    // Erasure-code every object unless a test asks otherwise.
    c.coordinator.replicate_below = 0;
    // One object per stripe unless a test asks for packing (tests/packing.rs does).
    c.coordinator.pack_below = 0;
    // Plain unsigned HTTP exercises the data path; the auth tests turn this off.
    c.coordinator.anonymous = true;
    c
}

/// Starts a cluster in a fresh temp dir (returned so it lives as long as the cluster).
pub async fn start(nodes: usize, ec: &str) -> (LocalCluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let c = LocalCluster::start(fast_config(nodes, ec, dir.path()))
        .await
        .unwrap();
    (c, dir)
}

/// Starts a 6-node 4+2 cluster that requires signatures, with one access key per name in
/// `keys` ((id, secret) in that order), in a fresh temp dir (returned so it lives as long as
/// the cluster).
pub async fn start_signed(
    keys: &[&str],
) -> (LocalCluster, tempfile::TempDir, Vec<(String, String)>) {
    start_signed_with(keys, |_| {}).await
}

/// [`start_signed`] with the configuration changed by `tweak` first.
pub async fn start_signed_with(
    keys: &[&str],
    tweak: impl FnOnce(&mut LocalClusterConfig),
) -> (LocalCluster, tempfile::TempDir, Vec<(String, String)>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config(6, "4+2", dir.path());
    cfg.coordinator.anonymous = false;
    tweak(&mut cfg);
    let c = LocalCluster::start(cfg).await.unwrap();
    let mut made = Vec::new();
    for k in keys {
        made.push(c.create_key(k).await.unwrap());
    }
    (c, dir, made)
}

/// The environment a client script of two keys reads: ENDPOINT, KEY/SECRET, ALT_KEY/ALT_SECRET.
pub fn two_key_env(c: &LocalCluster, keys: &[(String, String)]) -> Vec<(&'static str, String)> {
    vec![
        ("ENDPOINT", c.endpoint()),
        ("KEY", keys[0].0.clone()),
        ("SECRET", keys[0].1.clone()),
        ("ALT_KEY", keys[1].0.clone()),
        ("ALT_SECRET", keys[1].1.clone()),
    ]
}

/// A plain HTTP client.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// PUT bytes; returns (status, body text).
pub async fn put(url: &str, body: Vec<u8>) -> (u16, String) {
    let r = http().put(url).body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// GET; returns (status, body bytes).
pub async fn get(url: &str) -> (u16, Vec<u8>) {
    let r = http().get(url).send().await.unwrap();
    (
        r.status().as_u16(),
        r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    )
}

/// Sends raw bytes on a new connection (optionally closing the write side afterwards) and
/// returns whatever the server answers before closing or within `wait`.
pub async fn raw(
    addr: std::net::SocketAddr,
    req: &[u8],
    close_write: bool,
    wait: Duration,
) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(req).await.unwrap();
    if close_write {
        s.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

/// A node client presenting `secret`.
pub fn node_client(secret: &str, addr: std::net::SocketAddr) -> tessera_node::NodeClient {
    tessera_node::NodeClient::new(
        tessera_node::client::http_client(secret, &Default::default()),
        &addr.to_string(),
    )
}

/// Total shards stored on the given node addresses.
pub async fn shard_count(secret: &str, addrs: &[std::net::SocketAddr]) -> usize {
    let mut n = 0;
    for a in addrs {
        let c = node_client(secret, *a);
        n += c.list(None, 10_000).await.unwrap().len();
    }
    n
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of the Prometheus sample `name{labels}` (labels exactly as printed) in `text`,
/// if present.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The text of every element named `tag` in the XML document `body`, unescaped, in document
/// order (an element with children counts its text only).
pub fn xml_values(body: &str, tag: &str) -> Vec<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(body);
    let (mut out, mut inside, mut text) = (Vec::new(), 0usize, String::new());
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.local_name().as_ref() == tag.as_bytes() => {
                inside += 1;
                text.clear();
            }
            Event::End(e) if inside > 0 && e.local_name().as_ref() == tag.as_bytes() => {
                inside -= 1;
                out.push(std::mem::take(&mut text));
            }
            Event::Empty(e) if e.local_name().as_ref() == tag.as_bytes() => out.push(String::new()),
            Event::Text(t) if inside > 0 => text.push_str(&t.decode().expect("UTF-8 text")),
            Event::GeneralRef(r) if inside > 0 => {
                let name = r.decode().expect("UTF-8 reference");
                let c = match name.as_ref() {
                    "amp" => "&",
                    "lt" => "<",
                    "gt" => ">",
                    "quot" => "\"",
                    "apos" => "'",
                    other => panic!("unknown entity &{other};"),
                };
                text.push_str(c);
            }
            Event::Eof => return out,
            _ => {}
        }
    }
}

/// The first `<tag>` of the XML document `body` (empty if there is none).
pub fn xml_value(body: &str, tag: &str) -> String {
    xml_values(body, tag).into_iter().next().unwrap_or_default()
}

/// The `<Code>` of an S3 error body.
pub fn code(body: &str) -> String {
    xml_value(body, "Code")
}

/// A request body fed chunk by chunk from the test (for PUTs that must be slow or interrupted).
pub fn channel_body() -> (
    tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    reqwest::Body,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let stream =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) });
    (tx, reqwest::Body::wrap_stream(stream))
}

/// PUTs `body` to `url` 1 MiB at a time, 20 ms apart, running `mid` before chunk `at` (to
/// kill nodes in the middle of the upload); stops feeding once the server has answered.
pub async fn slow_put(
    url: &str,
    body: &[u8],
    at: usize,
    mid: impl FnOnce(),
) -> reqwest::Result<reqwest::Response> {
    let (tx, body_stream) = channel_body();
    let req = tokio::spawn(
        http()
            .put(url)
            .header("content-length", body.len())
            .body(body_stream)
            .send(),
    );
    let mut mid = Some(mid);
    for (i, chunk) in body.chunks(1 << 20).enumerate() {
        if i == at {
            if let Some(f) = mid.take() {
                f();
            }
        }
        if tx.send(Ok(chunk.to_vec())).await.is_err() {
            break; // the server already answered
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(tx);
    req.await.unwrap()
}

/// Flips bytes at 1/16 intervals in every shard and blob file under `dir`; returns how many
/// files were damaged.
pub fn flip_blob_bytes(dir: &std::path::Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            n += flip_blob_bytes(&p);
        } else if p.extension().is_some_and(|x| x == "blob" || x == "shard") {
            let mut b = std::fs::read(&p).unwrap();
            let step = (b.len() / 16).max(1);
            let mut off = step;
            while off < b.len() {
                b[off] ^= 0xff;
                off += step;
            }
            std::fs::write(&p, b).unwrap();
            n += 1;
        }
    }
    n
}

/// Uploads `parts` as a multipart upload of `obj` (plain HTTP); returns the object's ETag.
pub async fn put_multipart(obj: &str, parts: &[Vec<u8>]) -> String {
    let h = http();
    let r = h.post(format!("{obj}?uploads")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let id = xml_value(&text, "UploadId");
    let mut xml = String::from("<CompleteMultipartUpload>");
    for (i, p) in parts.iter().enumerate() {
        let r = h
            .put(format!("{obj}?partNumber={}&uploadId={id}", i + 1))
            .body(p.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "part {}", i + 1);
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        xml.push_str(&format!(
            "<Part><PartNumber>{}</PartNumber><ETag>{etag}</ETag></Part>",
            i + 1
        ));
    }
    xml.push_str("</CompleteMultipartUpload>");
    let r = h
        .post(format!("{obj}?uploadId={id}"))
        .body(xml)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    xml_value(&text, "ETag")
}

/// Runs a client script of `tests/clients/` (`program script`) with `env`; fails the test
/// unless it exits 0 and prints "ALL OK". Returns what it printed.
pub async fn run_client(program: &str, script: &str, env: &[(&str, String)]) -> String {
    let path = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg(path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("ALL OK"),
        "{script}: {text}"
    );
    text
}

/// The raw XML inside every `<tag>...</tag>` of `text` (elements without attributes).
pub fn blocks<'a>(text: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    text.split(open.as_str())
        .skip(1)
        .filter_map(|rest| rest.split_once(close.as_str()).map(|(inner, _)| inner))
        .collect()
}

/// Every version and delete marker of `bucket` as coordinator `api` lists them (all pages):
/// (key, version id, is a delete marker), keys in order, newest first.
pub async fn all_versions(api: &str, bucket: &str) -> Vec<(String, String, bool)> {
    let h = http();
    let (mut out, mut marker) = (Vec::new(), String::new());
    loop {
        let r = h
            .get(format!(
                "http://{api}/{bucket}?versions&max-keys=500{marker}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        let mut page = Vec::new();
        for (tag, is_marker) in [("Version", false), ("DeleteMarker", true)] {
            for block in blocks(&text, tag) {
                page.push((
                    xml_value(block, "Key"),
                    xml_value(block, "VersionId"),
                    is_marker,
                ));
            }
        }
        // Versions and markers come as two lists; ids are commit order, newest first.
        page.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        out.extend(page);
        if xml_value(&text, "IsTruncated") != "true" {
            return out;
        }
        marker = format!(
            "&key-marker={}&version-id-marker={}",
            xml_value(&text, "NextKeyMarker"),
            xml_value(&text, "NextVersionIdMarker")
        );
    }
}

/// Asks `admin` to recount everything and fails unless the counters and index it keeps are
/// exact; returns the counters.
pub async fn assert_exact(client: &reqwest::Client, admin: &str, after: &str) -> serde_json::Value {
    let v: serde_json::Value = client
        .get(format!("http://{admin}/stats/check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["kept"], v["recounted"], "counters after {after}");
    assert_eq!(
        (v["index_missing"].as_u64(), v["index_extra"].as_u64()),
        (Some(0), Some(0)),
        "index by node after {after}"
    );
    v["kept"].clone()
}
