//! Mutual TLS inside a cluster, on real processes: a coordinator started with
//! `--cluster-tls` makes the cluster CA, nodes get their certificates with `tessera node
//! join`, objects are stored and read over TLS to every node (raw reads included); a
//! stranger holding the cluster secret but no certificate, a plain-HTTP client and a node's
//! certificate used against another node are refused; a revoked and an expired certificate
//! are refused at their next handshake, and the data stays readable.

mod common;

use common::procs::{free_port, log, Proc, ProcCluster};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tessera_node::tls::{CertFiles, ClientTls};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A coordinator with `--cluster-tls` and nodes that joined it.
struct MtlsCluster {
    dir: PathBuf,
    api: String,
    admin: String,
    procs: Vec<Proc>,
    /// Each node's listen address, by index.
    nodes: Vec<String>,
}

impl MtlsCluster {
    fn ca(&self) -> PathBuf {
        self.dir.join("coord/cluster-ca.pem")
    }

    fn crl(&self) -> PathBuf {
        self.dir.join("coord/cluster.crl")
    }

    fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.join(format!("n{i}"))
    }

    /// `tessera ARGS` as an operator on the coordinator's host runs it.
    fn cli(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new(BIN)
            .args(["--coordinator", &format!("https://{}", self.admin)])
            .arg("--admin-token-file")
            .arg(self.dir.join("coord/admin.token"))
            .arg("--ca-cert")
            .arg(self.ca())
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Joins node `i` (certificate valid for `valid`) and starts it.
    fn add_node(&mut self, valid: &str) {
        let i = self.nodes.len();
        let dir = self.node_dir(i);
        let (ok, out) = self.cli(&[
            "node",
            "join",
            "--dir",
            dir.to_str().unwrap(),
            "--name",
            "127.0.0.1",
            "--valid",
            valid,
        ]);
        assert!(ok, "node join: {out}");
        assert!(out.contains("--tls-cert"), "{out}");
        let addr = format!("127.0.0.1:{}", free_port());
        let secret = ProcCluster::secrets_in(&self.dir).cluster_secret;
        self.procs.push(Proc(
            Command::new(BIN)
                .env("TESSERA_CLUSTER_SECRET", &secret)
                .env_remove("TESSERA_CA_CERT")
                .args(["node", "--listen", &addr])
                .arg("--data-dir")
                .arg(&dir)
                .args(["--coordinator", &format!("https://{}", self.admin)])
                .arg("--tls-cert")
                .arg(dir.join("node.pem"))
                .arg("--tls-key")
                .arg(dir.join("node.key"))
                .arg("--cluster-ca-cert")
                .arg(dir.join("cluster-ca.pem"))
                .args(["--zone", &format!("z{i}"), "--heartbeat-interval", "200ms"])
                .stdout(log(&self.dir, &format!("n{i}")))
                .stderr(log(&self.dir, &format!("n{i}.err")))
                .spawn()
                .unwrap(),
        ));
        self.nodes.push(addr);
    }

    async fn start(dir: &Path, nodes: usize) -> MtlsCluster {
        let (api, admin) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let extra: Vec<String> = ["--cluster-tls", "--cluster-crl"]
            .iter()
            .map(|s| s.to_string())
            .chain([dir.join("coord/cluster.crl").display().to_string()])
            .collect();
        let coordinator = ProcCluster::spawn_coordinator_with(dir, &api, &admin, &extra);
        let mut c = MtlsCluster {
            dir: dir.to_path_buf(),
            api,
            admin,
            procs: vec![coordinator],
            nodes: Vec::new(),
        };
        // The CA is made on the coordinator's first start.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while !c.ca().exists() || !c.cli(&["status"]).0 {
            assert!(
                std::time::Instant::now() < deadline,
                "coordinator did not start; logs in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..nodes {
            c.add_node("365days");
        }
        c.wait_up(nodes).await;
        c
    }

    /// An admin client (the admin token, trusting the cluster CA, no certificate).
    fn admin_http(&self) -> reqwest::Client {
        let token = ProcCluster::secrets_in(&self.dir).admin_token;
        ClientTls::trusting(&[self.ca()])
            .unwrap()
            .apply(reqwest::Client::builder())
            .default_headers(tessera_node::auth::headers(&token))
            .build()
            .unwrap()
    }

    async fn wait_up(&self, n: usize) {
        tessera::local::wait_nodes_up_with(
            &self.admin_http(),
            &format!("https://{}", self.admin),
            n,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; logs in {}", self.dir.display()));
    }

    /// Whether the coordinator counts the node at `addr` up.
    async fn is_up(&self, addr: &str) -> bool {
        let v: serde_json::Value = self
            .admin_http()
            .get(format!("https://{}/cluster", self.admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["address"] == addr && n["up"] == true)
    }

    /// Waits until the node at `addr` is counted down (heartbeats refused).
    async fn wait_down(&self, addr: &str, why: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.is_up(addr).await {
            assert!(
                std::time::Instant::now() < deadline,
                "node {addr} still up 20 s after {why}; logs in {}",
                self.dir.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// A client presenting `cert` (if any) and the cluster secret, trusting the cluster CA.
fn client(ca: &Path, cert: Option<&Path>, secret: &str) -> reqwest::Client {
    let tls = match cert {
        None => ClientTls::trusting(&[ca.to_path_buf()]).unwrap(),
        Some(dir) => ClientTls::cluster(
            &tessera_node::tls::ClusterTls {
                identity: CertFiles {
                    cert: dir.with_extension("pem"),
                    key: dir.with_extension("key"),
                },
                ca: ca.to_path_buf(),
                crl: None,
            },
            &[],
        )
        .unwrap(),
    };
    tls.apply(reqwest::Client::builder())
        .default_headers(tessera_node::auth::headers(secret))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Stores `body` at `key` over HTTPS (unsigned requests are allowed on this test
/// coordinator).
async fn put(http: &reqwest::Client, api: &str, key: &str, body: Vec<u8>) {
    let r = http
        .put(format!("https://{api}/mtls/{key}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "PUT {key}: {}", r.status());
}

async fn get(http: &reqwest::Client, api: &str, key: &str) -> Vec<u8> {
    let r = http
        .get(format!("https://{api}/mtls/{key}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {key}: {}", r.status());
    r.bytes().await.unwrap().to_vec()
}

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mutual_tls_inside_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = MtlsCluster::start(dir.path(), 6).await;
    let secret = ProcCluster::secrets_in(dir.path()).cluster_secret;
    let ca = c.ca();
    // The client listener serves the coordinator's certificate of the cluster CA too.
    let http = ClientTls::trusting(std::slice::from_ref(&ca))
        .unwrap()
        .apply(reqwest::Client::builder())
        .build()
        .unwrap();

    // Objects stored and read over TLS to every node: small (one stripe, batched writes),
    // striped over several stripes (streamed writes, raw reads).
    let r = http
        .put(format!("https://{}/mtls", c.api))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "create bucket: {}", r.status());
    let objects = [("small", body(4096, 1)), ("large", body(16 << 20, 2))];
    for (k, b) in &objects {
        put(&http, &c.api, k, b.clone()).await;
        assert!(get(&http, &c.api, k).await == *b, "{k} read back differs");
    }
    // Many reads at once over the nodes' TLS raw-read connections (pooled, each carrying one
    // read after another): every answer arrives whole (a record left unflushed would stall).
    let reads = (0..24).map(|_| get(&http, &c.api, "large"));
    for got in futures::future::join_all(reads).await {
        assert!(got == objects[1].1, "a concurrent read differs");
    }

    // The coordinator's certificate opens a node (the control for the refusals below).
    let coord_cert = dir.path().join("coord/tls/coordinator");
    let as_coordinator = client(&ca, Some(&coord_cert), &secret);
    let r = as_coordinator
        .get(format!("https://{}/shards?limit=100", c.nodes[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let listed: Vec<serde_json::Value> = r.json().await.unwrap();
    assert!(!listed.is_empty(), "node 0 holds no shard");

    // A stranger with the cluster secret and no certificate cannot finish a handshake with
    // any node, nor read a shard through a raw read.
    let stranger = client(&ca, None, &secret);
    for n in &c.nodes {
        let e = stranger
            .get(format!("https://{n}/shards?limit=1"))
            .send()
            .await
            .expect_err("a node served a client without a certificate");
        assert!(e.is_connect() || e.is_request(), "{e:?}");
    }
    let raw = tessera_node::raw::RawPool::new(
        &secret,
        &ClientTls::trusting(std::slice::from_ref(&ca)).unwrap(),
    );
    let info: tessera_node::ShardInfo = serde_json::from_value(listed[0].clone()).unwrap();
    let shard = tessera_node::ShardId {
        version: info.header.version,
        index: info.header.shard_index,
    };
    let e = raw
        .read(&c.nodes[0], shard, 0, 16, Duration::from_secs(5))
        .await
        .expect_err("a raw read without a certificate was served");
    assert!(
        matches!(e, tessera_node::StoreError::Unavailable(_)),
        "{e:?}"
    );
    // Nor in plain HTTP: the node says to use https.
    let r = http
        .get(format!("http://{}/health", c.nodes[0]))
        .header("authorization", format!("Bearer {secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("https://"));
    // Nor register a node of its own: heartbeats without a node certificate get a 403.
    let hb = serde_json::json!({"node_id": "00000000000000aa", "addr": "127.0.0.1:1", "zone": "x",
        "capacity": 0, "used": 0, "free": 1 << 40});
    let r = stranger
        .post(format!("https://{}/nodes/heartbeat", c.admin))
        .json(&hb)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("tessera-node"));
    // A node's certificate does not open another node: only coordinators may use shards.
    let as_node = client(&ca, Some(&c.node_dir(1).join("node")), &secret);
    let r = as_node
        .delete(format!("https://{}/shards/{shard}", c.nodes[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("tessera-coordinator"));
    // Nor the Raft routes or the admin API (it holds no admin token).
    let r = as_node
        .get(format!("https://{}/cluster", c.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v = as_coordinator
        .get(format!("https://{}/shards?limit=100", c.nodes[0]))
        .send()
        .await
        .unwrap()
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap();
    assert_eq!(v.len(), listed.len(), "a refused request changed node 0");

    // Revoked: node 5's certificate, listed in the CRL the coordinator reads. Its next
    // heartbeat is refused and it is counted down; a client presenting it cannot finish a
    // handshake with the coordinator.
    let n5 = c.node_dir(5);
    let (ok, out) = c.cli(&[
        "cluster",
        "revoke",
        n5.join("node.pem").to_str().unwrap(),
        "--cluster-ca-cert",
        ca.to_str().unwrap(),
        "--cluster-ca-key",
        dir.path().join("coord/cluster-ca.key").to_str().unwrap(),
        "--crl",
        c.crl().to_str().unwrap(),
    ]);
    assert!(ok && out.contains("revoked serial"), "{out}");
    c.wait_down(&c.nodes[5].clone(), "its certificate was revoked")
        .await;
    let revoked = client(&ca, Some(&n5.join("node")), &secret);
    let e = revoked
        .post(format!("https://{}/nodes/heartbeat", c.admin))
        .json(&hb)
        .send()
        .await
        .expect_err("a revoked certificate finished a handshake");
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    assert!(c.is_up(&c.nodes[0]).await, "the other nodes are still up");

    // Expired: a node whose certificate is valid for 8 s registers, then is counted down
    // once it expired (its heartbeats' handshakes fail).
    c.add_node("8s");
    c.wait_up(6).await;
    let n6 = c.nodes[6].clone();
    assert!(c.is_up(&n6).await, "node 6 did not register");
    c.wait_down(&n6, "its certificate expired").await;

    // Nothing was lost: every object reads back whole, and new writes go to the nodes left.
    for (k, b) in &objects {
        assert!(
            get(&http, &c.api, k).await == *b,
            "{k} differs after the refusals"
        );
    }
    put(&http, &c.api, "after", body(3 << 20, 3)).await;
    assert!(get(&http, &c.api, "after").await == body(3 << 20, 3));
    for p in &mut c.procs {
        p.kill();
    }
}
