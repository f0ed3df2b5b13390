//! Three replicated coordinators and six nodes as real processes, placed on loopback or in
//! network namespaces (see [`Layout`]).

pub use super::procs::log;
use super::procs::{admin_client, free_port, Proc, ProcCluster};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// Where a [`Group`]'s processes listen.
#[derive(Clone, Debug)]
pub struct Layout {
    /// Per coordinator: the address it binds, and the network namespace it runs in.
    pub coordinators: Vec<(String, Option<String>)>,
    /// The address the nodes bind (they run in the test's own namespace).
    pub nodes: String,
    /// Per coordinator, the admin address the others and the nodes use instead of its own
    /// (a proxy in front of it), if any.
    pub reach_via: Vec<Option<String>>,
}

impl Default for Layout {
    /// Everything on 127.0.0.1.
    fn default() -> Self {
        Layout {
            coordinators: vec![("127.0.0.1".into(), None); 3],
            nodes: "127.0.0.1".into(),
            reach_via: vec![None; 3],
        }
    }
}

/// Three replicated coordinators and six nodes, all processes.
pub struct Group {
    pub dir: PathBuf,
    pub peers: String,
    /// Client (S3) addresses.
    pub api: Vec<String>,
    /// Admin addresses the coordinators bind.
    pub admin: Vec<String>,
    pub coords: Vec<Option<Proc>>,
    pub nodes: Vec<Proc>,
    pub extra: Vec<String>,
    pub layout: Layout,
}

impl Group {
    pub async fn start(dir: &Path, extra: &[&str]) -> Group {
        Group::start_in(dir, Layout::default(), extra).await
    }

    /// [`Group::start`] with coordinators and nodes placed as `layout` says.
    pub async fn start_in(dir: &Path, layout: Layout, extra: &[&str]) -> Group {
        let mut g = Group::plan(dir, layout, extra);
        g.launch().await;
        g
    }

    /// Picks the addresses; starts nothing yet ([`Group::launch`]).
    pub fn plan(dir: &Path, layout: Layout, extra: &[&str]) -> Group {
        let api: Vec<String> = layout
            .coordinators
            .iter()
            .map(|(host, _)| format!("{host}:{}", free_port()))
            .collect();
        let admin: Vec<String> = layout
            .coordinators
            .iter()
            .map(|(host, _)| format!("{host}:{}", free_port()))
            .collect();
        let peers = admin
            .iter()
            .zip(&layout.reach_via)
            .enumerate()
            .map(|(i, (a, via))| format!("{}=http://{}", i + 1, via.as_ref().unwrap_or(a)))
            .collect::<Vec<_>>()
            .join(",");
        Group {
            dir: dir.to_path_buf(),
            peers,
            api,
            admin,
            coords: Vec::new(),
            nodes: Vec::new(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            layout,
        }
    }

    /// Starts the coordinators and the nodes, and waits until every coordinator sees all
    /// six nodes up.
    pub async fn launch(&mut self) {
        let dir = self.dir.clone();
        let dir = dir.as_path();
        let g = self;
        let secrets = ProcCluster::secrets_in(dir);
        for i in 0..3 {
            let p = g.spawn_coordinator(i);
            g.coords.push(Some(p));
        }
        let list = g.admin_list();
        for i in 0..6 {
            let port = free_port();
            let host = g.layout.nodes.clone();
            g.nodes.push(Proc(
                Command::new(BIN)
                    .env("TESSERA_CLUSTER_SECRET", &secrets.cluster_secret)
                    .args(["node", "--listen", &format!("{host}:{port}")])
                    .arg("--data-dir")
                    .arg(dir.join(format!("n{i}")))
                    .args(["--coordinator", &list, "--zone", &format!("z{i}")])
                    .args(["--heartbeat-interval", "200ms"])
                    .stdout(Stdio::null())
                    .stderr(log(dir, &format!("n{i}")))
                    .spawn()
                    .unwrap(),
            ));
        }
        for a in &g.admin {
            tessera::local::wait_nodes_up(
                &format!("http://{a}"),
                &secrets.admin_token,
                6,
                Duration::from_secs(60),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}; logs in {}", dir.display()));
        }
    }

    pub fn spawn_coordinator(&self, i: usize) -> Proc {
        self.spawn_coordinator_with_peers(i, &self.peers.clone())
    }

    /// Coordinator `i` started with `--peers peers`.
    pub fn spawn_coordinator_with_peers(&self, i: usize, peers: &str) -> Proc {
        let coord = self.dir.join("coord");
        let mut cmd = match &self.layout.coordinators[i].1 {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, BIN]);
                c
            }
            None => Command::new(BIN),
        };
        Proc(
            cmd.args(["coordinator", "--anonymous"])
                .args(["--listen", &self.api[i], "--admin-listen", &self.admin[i]])
                .arg("--data-dir")
                .arg(self.dir.join(format!("c{}", i + 1)))
                .arg("--cluster-secret-file")
                .arg(coord.join("cluster.secret"))
                .arg("--admin-token-file")
                .arg(coord.join("admin.token"))
                .args(["--raft-id", &(i + 1).to_string(), "--peers", peers])
                // 4+2 unless the test names its own code.
                .args(if self.extra.iter().any(|a| a == "--ec") {
                    vec![]
                } else {
                    vec!["--ec", "4+2"]
                })
                .args(["--heartbeat-timeout", "1500ms", "--gc-grace", "300ms"])
                .args(["--raft-lease", "3s", "--replicate-below", "0"])
                .args(super::procs::one_per_stripe_unless_named(self.extra.iter()))
                .args(&self.extra)
                .stdout(Stdio::null())
                .stderr(log(&self.dir, &format!("c{}", i + 1)))
                .spawn()
                .unwrap(),
        )
    }

    /// The coordinators' admin URLs as nodes and other coordinators reach them.
    pub fn admin_list(&self) -> String {
        self.admin
            .iter()
            .zip(&self.layout.reach_via)
            .map(|(a, via)| format!("http://{}", via.as_ref().unwrap_or(a)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn admin_http(&self) -> reqwest::Client {
        admin_client(&self.dir, Duration::from_secs(10))
    }

    pub async fn cluster_json(&self, i: usize) -> Option<serde_json::Value> {
        let r = self
            .admin_http()
            .get(format!("http://{}/cluster", self.admin[i]))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    /// Member `i`'s Prometheus metrics.
    pub async fn metrics_text(&self, i: usize) -> String {
        let r = self
            .admin_http()
            .get(format!("http://{}/metrics", self.admin[i]));
        r.send().await.unwrap().text().await.unwrap()
    }

    /// The leader's index (0-based) as seen by live member `i`, waiting up to `limit`.
    pub async fn leader(&self, limit: Duration) -> usize {
        let t = Instant::now();
        while t.elapsed() < limit {
            for i in 0..3 {
                if self.coords[i].is_none() {
                    continue;
                }
                if let Some(v) = self.cluster_json(i).await {
                    if let Some(l) = v["raft"]["leader"].as_u64() {
                        let l = l as usize - 1;
                        if self.coords[l].is_some() {
                            return l;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no leader within {limit:?}; logs in {}", self.dir.display())
    }

    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.coords[i].take() {
            p.kill();
        }
    }

    pub fn restart(&mut self, i: usize) {
        self.kill(i);
        let p = self.spawn_coordinator(i);
        self.coords[i] = Some(p);
    }

    pub fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}/{path}", self.api[i])
    }

    /// Waits until live member `i` has no write in flight and no garbage left, and its
    /// `journal` worker has run a whole pass after now with nothing left to write.
    pub async fn settled(&self, i: usize) {
        let quiet = super::eventually(Duration::from_secs(60), || async {
            self.cluster_json(i)
                .await
                .is_some_and(|v| v["objects_in_flight"] == 0 && v["garbage"] == 0)
        })
        .await;
        assert!(quiet, "writes in flight and garbage settled");
        super::procs::journal_written_at(&self.admin_http(), &self.admin[i]).await;
    }

    /// Stops every coordinator and starts one alone on member `i`'s addresses (where the
    /// nodes send their heartbeats) with empty metadata and `--rebuild-metadata`; returns
    /// once its rebuild from the six nodes has finished.
    pub async fn rebuild_alone(&mut self, i: usize) -> serde_json::Value {
        for c in 0..3 {
            self.kill(c);
        }
        let coord = self.dir.join("coord");
        let p = Proc(
            Command::new(BIN)
                .args(["coordinator", "--anonymous", "--rebuild-metadata"])
                .args(["--listen", &self.api[i], "--admin-listen", &self.admin[i]])
                .arg("--data-dir")
                .arg(self.dir.join("rebuilt"))
                .arg("--cluster-secret-file")
                .arg(coord.join("cluster.secret"))
                .arg("--admin-token-file")
                .arg(coord.join("admin.token"))
                .args(["--ec", "4+2", "--heartbeat-timeout", "1500ms"])
                .args(["--replicate-below", "0"])
                .stdout(Stdio::null())
                .stderr(log(&self.dir, "rebuilt"))
                .spawn()
                .unwrap(),
        );
        self.coords[i] = Some(p);
        let report = std::sync::Mutex::new(serde_json::Value::Null);
        let done = super::eventually(Duration::from_secs(60), || async {
            match self.cluster_json(i).await {
                Some(v) if v["rebuild"]["done"] == true && v["rebuild"]["nodes"] == 6 => {
                    *report.lock().unwrap() = v["rebuild"].clone();
                    true
                }
                _ => false,
            }
        })
        .await;
        assert!(
            done,
            "rebuild did not finish; logs in {}",
            self.dir.display()
        );
        report.into_inner().unwrap()
    }
}
