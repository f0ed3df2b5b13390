//! Real `tessera` processes for integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A child process killed (SIGKILL) when dropped.
pub struct Proc(pub Child);
impl Proc {
    pub fn kill(&mut self) {
        let _ = self.0.kill(); // SIGKILL on Unix
        let _ = self.0.wait();
    }
    pub fn pid(&self) -> u32 {
        self.0.id()
    }
}
impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port for a server process to listen on. Taken below the kernel's ephemeral range
/// (32768 and up by default): a port the kernel hands out for `bind(0)` can be given to an
/// outgoing connection of a parallel test between this check and the server's bind, which
/// then fails; a port from 20000-29999 is never used that way. Each test process starts at
/// its own offset and counts up, skipping ports in use.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 100) as u16 * 100;
    loop {
        let port = 20_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 10_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A file `DIR/NAME.log` to take a process's output (appended to: a restarted process
/// keeps its predecessor's lines).
pub fn log(dir: &Path, name: &str) -> Stdio {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .unwrap();
    Stdio::from(file)
}

pub struct ProcCluster {
    pub dir: PathBuf,
    pub api: String,
    pub admin: String,
    pub coordinator: Proc,
    pub nodes: Vec<Option<Proc>>,
    pub node_ports: Vec<u16>,
    pub coordinator_args: Vec<String>,
    /// Extra arguments every node gets.
    pub node_args: Vec<String>,
}

impl Drop for ProcCluster {
    /// A failing test's cluster prints the end of its coordinator's log (its temporary
    /// directory, logs included, goes with it), so a failure in CI can be read.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let log = std::fs::read_to_string(self.dir.join("coord.err.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(80)..];
        eprintln!("--- the coordinator's last {} log lines ---", tail.len());
        for l in tail {
            eprintln!("{l}");
        }
    }
}

/// `--pack-below 0` (objects coded one per stripe, as most tests expect) unless the
/// coordinator's `extra` arguments name their own `--pack-below`.
pub fn one_per_stripe_unless_named<'a>(
    mut extra: impl Iterator<Item = &'a String>,
) -> impl Iterator<Item = &'static str> {
    let named = extra.any(|a| a == "--pack-below");
    (!named)
        .then_some(["--pack-below", "0"])
        .into_iter()
        .flatten()
}

impl ProcCluster {
    pub fn spawn_coordinator(dir: &Path, api: &str, admin: &str) -> Proc {
        Self::spawn_coordinator_with(dir, api, admin, &[])
    }

    /// The cluster's secrets: created in the coordinator's data dir before it starts (it
    /// then reads the same files), so nodes and admin calls can present them.
    pub fn secrets_in(dir: &Path) -> tessera_coordinator::Secrets {
        tessera_coordinator::Secrets::load_or_create(&dir.join("coord")).unwrap()
    }

    /// Starts a coordinator that accepts unsigned client requests (`--anonymous`) unless
    /// `extra` holds `--signed` (removed before it is passed on). Objects are coded one per
    /// stripe (`--pack-below 0`) unless `extra` names its own `--pack-below`.
    pub fn spawn_coordinator_with(dir: &Path, api: &str, admin: &str, extra: &[String]) -> Proc {
        Self::secrets_in(dir);
        let signed = extra.iter().any(|a| a == "--signed");
        let extra: Vec<&String> = extra.iter().filter(|a| *a != "--signed").collect();
        Proc(
            Command::new(BIN)
                .args(["coordinator", "--listen", api, "--admin-listen", admin])
                .args((!signed).then_some("--anonymous"))
                .arg("--data-dir")
                .arg(dir.join("coord"))
                .args([
                    "--ec",
                    "4+2",
                    "--heartbeat-timeout",
                    "1200ms",
                    "--gc-grace",
                    "300ms",
                    "--replicate-below",
                    "0",
                ])
                .args(one_per_stripe_unless_named(extra.iter().copied()))
                .args(extra)
                .stdout(log(dir, "coord"))
                .stderr(log(dir, "coord.err"))
                .spawn()
                .unwrap(),
        )
    }

    pub fn spawn_node(&self, i: usize, port: u16) -> Proc {
        Proc(
            Command::new(BIN)
                .env(
                    "TESSERA_CLUSTER_SECRET",
                    Self::secrets_in(&self.dir).cluster_secret,
                )
                // The access log names the client request of every shard request.
                .env("RUST_LOG", "info,tessera_node::access=debug")
                .args(["node", "--listen", &format!("127.0.0.1:{port}")])
                .arg("--data-dir")
                .arg(self.dir.join(format!("n{i}")))
                .args([
                    "--coordinator",
                    &format!("http://{}", self.admin),
                    "--zone",
                    &format!("z{i}"),
                ])
                .args(["--heartbeat-interval", "200ms"])
                .args(&self.node_args)
                .stdout(log(&self.dir, &format!("n{i}")))
                .stderr(log(&self.dir, &format!("n{i}.err")))
                .spawn()
                .unwrap(),
        )
    }

    pub async fn start(dir: &Path, nodes: usize) -> ProcCluster {
        Self::start_with(dir, nodes, &[]).await
    }

    pub async fn start_with(dir: &Path, nodes: usize, extra: &[&str]) -> ProcCluster {
        Self::start_full(dir, nodes, extra, &[]).await
    }

    /// [`ProcCluster::start_with`], every node also getting `node_extra`.
    pub async fn start_full(
        dir: &Path,
        nodes: usize,
        extra: &[&str],
        node_extra: &[&str],
    ) -> ProcCluster {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let api = format!("127.0.0.1:{}", free_port());
        let admin = format!("127.0.0.1:{}", free_port());
        let coordinator = Self::spawn_coordinator_with(dir, &api, &admin, &extra);
        let mut c = ProcCluster {
            dir: dir.to_path_buf(),
            api,
            admin,
            coordinator,
            nodes: Vec::new(),
            node_ports: Vec::new(),
            coordinator_args: extra,
            node_args: node_extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..nodes {
            let port = free_port();
            c.node_ports.push(port);
            let p = c.spawn_node(i, port);
            c.nodes.push(Some(p));
        }
        c.wait_up(nodes).await;
        c
    }

    pub async fn wait_up(&self, n: usize) {
        tessera::local::wait_nodes_up(
            &format!("http://{}", self.admin),
            &Self::secrets_in(&self.dir).admin_token,
            n,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; logs in {}", self.dir.display()));
    }

    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.nodes[i].take() {
            p.kill();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.api)
    }

    /// The cluster's admin token and cluster secret.
    pub fn secrets(&self) -> tessera_coordinator::Secrets {
        Self::secrets_in(&self.dir)
    }

    /// A client presenting the admin token.
    pub fn admin_http(&self) -> reqwest::Client {
        admin_client(&self.dir, Duration::from_secs(120))
    }

    /// A node client presenting the cluster secret.
    pub fn node_client(&self, addr: std::net::SocketAddr) -> tessera_node::NodeClient {
        tessera_node::NodeClient::new(
            tessera_node::client::http_client(
                &Self::secrets_in(&self.dir).cluster_secret,
                &Default::default(),
            ),
            &addr.to_string(),
        )
    }

    pub async fn cluster_json(&self) -> serde_json::Value {
        self.admin_json("/cluster").await
    }

    /// The coordinator's Prometheus metrics text.
    pub async fn metrics_text(&self) -> String {
        self.admin_http()
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Storage node `node`'s Prometheus metrics text (behind the cluster secret).
    pub async fn node_metrics_text(&self, node: std::net::SocketAddr) -> String {
        super::http()
            .get(format!("http://{node}/metrics"))
            .bearer_auth(self.secrets().cluster_secret)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the coordinator's metric sample `series` (0 when absent).
    pub async fn metric(&self, series: &str) -> f64 {
        super::sample(&self.metrics_text().await, series).unwrap_or(0.0)
    }

    /// Loses the coordinator's metadata (keeping its secrets, which an operator keeps
    /// elsewhere) and restarts it with `--rebuild-metadata`; returns the rebuild's report once
    /// it is done.
    pub async fn wipe_metadata_and_rebuild(&mut self, nodes: usize) -> serde_json::Value {
        self.coordinator.kill();
        let secrets = self.secrets();
        let coord = self.dir.join("coord");
        std::fs::remove_dir_all(&coord).unwrap();
        std::fs::create_dir_all(&coord).unwrap();
        std::fs::write(coord.join("admin.token"), &secrets.admin_token).unwrap();
        std::fs::write(coord.join("cluster.secret"), &secrets.cluster_secret).unwrap();
        self.coordinator_args.push("--rebuild-metadata".into());
        self.restart_coordinator();
        let report = std::sync::Mutex::new(serde_json::Value::Null);
        let done = super::eventually(Duration::from_secs(40), || async {
            let Ok(r) = self
                .admin_http()
                .get(format!("http://{}/cluster", self.admin))
                .send()
                .await
            else {
                return false;
            };
            match r.json::<serde_json::Value>().await {
                Ok(v) if v["rebuild"]["done"] == true && v["rebuild"]["nodes"] == nodes => {
                    *report.lock().unwrap() = v["rebuild"].clone();
                    true
                }
                _ => false,
            }
        })
        .await;
        assert!(done, "rebuild did not finish");
        report.into_inner().unwrap()
    }

    /// The JSON answer of admin API `GET path`.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        self.admin_http()
            .get(format!("http://{}{path}", self.admin))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// SIGKILLs node `i` and waits until the coordinator lists it down; returns its id.
    pub async fn kill_node_until_down(&mut self, i: usize) -> String {
        let id = self.node_id(i).await;
        self.kill_node(i);
        for _ in 0..100 {
            let down = self.cluster_json().await["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["id"] == id.as_str() && n["state"] == "down");
            if down {
                return id;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {i} ({id}) is not listed down 10 s after it was killed");
    }
}

impl ProcCluster {
    /// Restarts the coordinator (same ports, same data dir, same flags).
    pub fn restart_coordinator(&mut self) {
        self.coordinator.kill();
        self.coordinator =
            Self::spawn_coordinator_with(&self.dir, &self.api, &self.admin, &self.coordinator_args);
    }

    /// Starts one more node (in a zone of its own); returns its index.
    pub fn add_node(&mut self) -> usize {
        let port = free_port();
        self.node_ports.push(port);
        let i = self.nodes.len();
        let p = self.spawn_node(i, port);
        self.nodes.push(Some(p));
        i
    }

    /// The id the coordinator lists for node `i` (by its address).
    pub async fn node_id(&self, i: usize) -> String {
        let addr = format!("127.0.0.1:{}", self.node_ports[i]);
        let v = self.cluster_json().await;
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["address"] == addr.as_str())
            .unwrap_or_else(|| panic!("node {i} ({addr}) not listed: {v}"))["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Runs `tessera ARGS --coordinator ADMIN` with the admin token; returns (exit code,
    /// stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN)
            .env(
                "TESSERA_ADMIN_TOKEN",
                Self::secrets_in(&self.dir).admin_token,
            )
            .env("TESSERA_COORDINATOR", format!("http://{}", self.admin))
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    /// Stops node `i` with SIGINT (it flushes its store) and waits until it has exited.
    pub async fn stop_node_gracefully(&mut self, i: usize) {
        let mut p = self.nodes[i].take().unwrap();
        Command::new("kill")
            .args(["-INT", &p.pid().to_string()])
            .status()
            .unwrap();
        for _ in 0..100 {
            if p.0.try_wait().unwrap().is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("node {i} did not stop on SIGINT");
    }

    /// Restarts node `i` on its port.
    pub fn restart_node(&mut self, i: usize) {
        self.kill_node(i);
        let p = self.spawn_node(i, self.node_ports[i]);
        self.nodes[i] = Some(p);
    }

    /// Shard API addresses of every node.
    pub fn node_addrs(&self) -> Vec<std::net::SocketAddr> {
        self.node_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}").parse().unwrap())
            .collect()
    }

    /// Runs `tessera repair` against this cluster; returns (exit code, stdout, stderr).
    pub fn repair_cli(&self, extra: &[&str]) -> (i32, String, String) {
        repair_cli_at(&self.admin, &Self::secrets_in(&self.dir).admin_token, extra)
    }
}

/// Runs `tessera repair` against the coordinator whose admin API is at `admin`; returns
/// (exit code, stdout, stderr). A free function so a test can run it on another thread.
pub fn repair_cli_at(admin: &str, token: &str, extra: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .env("TESSERA_ADMIN_TOKEN", token)
        .args(["repair", "--coordinator", &format!("http://{admin}")])
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A client presenting the admin token of the cluster whose secrets are in `dir`.
pub fn admin_client(dir: &Path, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .default_headers(tessera_node::auth::headers(
            &ProcCluster::secrets_in(dir).admin_token,
        ))
        .timeout(timeout)
        .build()
        .unwrap()
}

/// Waits until the coordinator at `admin` has run its `journal` worker through a whole pass
/// after now and found nothing left to write (every version decision so far is on the
/// nodes).
pub async fn journal_written_at(client: &reqwest::Client, admin: &str) {
    let journal = || async {
        let r = client
            .get(format!("http://{admin}/workers"))
            .send()
            .await
            .unwrap();
        let w: serde_json::Value = r.json().await.unwrap();
        w["workers"]
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["name"] == "journal").cloned())
            .unwrap_or_default()
    };
    let start = journal().await["passes"].as_u64().unwrap_or(0);
    let done = super::eventually(Duration::from_secs(20), || async {
        let w = journal().await;
        w["passes"].as_u64().unwrap_or(0) >= start + 2
            && w["last_result"]
                .as_str()
                .is_some_and(|r| r.ends_with("nothing waiting"))
    })
    .await;
    assert!(done, "the version journal was written to the nodes");
}
