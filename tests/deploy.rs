//! Running on real machines: TLS on the coordinator's listeners (real processes, awscli and
//! boto3 verifying certificates, rotation without a restart, plain HTTP refused clearly)
//! and graceful stops on SIGTERM.

mod common;

use common::procs::{free_port, log, Proc, ProcCluster};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tessera_node::tls::{CertFiles, ClientTls, LocalCa};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A coordinator serving TLS with a certificate of `ca`, and six nodes that trust it.
struct TlsCluster {
    dir: PathBuf,
    api: String,
    admin: String,
    ca: PathBuf,
    _procs: Vec<Proc>,
}

impl TlsCluster {
    async fn start(dir: &Path, ca: &LocalCa, files: &CertFiles) -> TlsCluster {
        let (api, admin) = (
            format!("127.0.0.1:{}", free_port()),
            format!("127.0.0.1:{}", free_port()),
        );
        let tls: Vec<String> = [
            "--signed",
            "--tls-cert",
            files.cert.to_str().unwrap(),
            "--tls-key",
            files.key.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut procs = vec![ProcCluster::spawn_coordinator_with(dir, &api, &admin, &tls)];
        let secret = ProcCluster::secrets_in(dir).cluster_secret;
        for i in 0..6 {
            procs.push(Proc(
                Command::new(BIN)
                    .env("TESSERA_CLUSTER_SECRET", &secret)
                    .args(["node", "--listen", &format!("127.0.0.1:{}", free_port())])
                    .arg("--data-dir")
                    .arg(dir.join(format!("n{i}")))
                    .args(["--coordinator", &format!("https://{admin}")])
                    .arg("--ca-cert")
                    .arg(&ca.cert)
                    .args(["--zone", &format!("z{i}"), "--heartbeat-interval", "200ms"])
                    .stdout(log(dir, &format!("n{i}")))
                    .stderr(log(dir, &format!("n{i}.err")))
                    .spawn()
                    .unwrap(),
            ));
        }
        let c = TlsCluster {
            dir: dir.to_path_buf(),
            api,
            admin,
            ca: ca.cert.clone(),
            _procs: procs,
        };
        tessera::local::wait_nodes_up_with(
            &c.admin_http(),
            &format!("https://{}", c.admin),
            6,
            Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}; logs in {}", dir.display()));
        c
    }

    /// An admin client trusting the cluster's CA.
    fn admin_http(&self) -> reqwest::Client {
        let token = ProcCluster::secrets_in(&self.dir).admin_token;
        ClientTls::trusting(std::slice::from_ref(&self.ca))
            .unwrap()
            .apply(reqwest::Client::builder())
            .default_headers(tessera_node::auth::headers(&token))
            .build()
            .unwrap()
    }

    /// `tessera ARGS` against the admin listener, with `ca` (if any) as `--ca-cert`.
    fn cli(&self, ca: Option<&Path>, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(BIN);
        cmd.args(["--coordinator", &format!("https://{}", self.admin)])
            .arg("--admin-token-file")
            .arg(self.dir.join("coord/admin.token"))
            .env_remove("TESSERA_CA_CERT");
        if let Some(ca) = ca {
            cmd.arg("--ca-cert").arg(ca);
        }
        let out = cmd.args(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }
}

/// The PEM certificate the server at `addr` presents (read with Python's ssl module, which
/// does not verify it).
fn served_cert(addr: &str) -> String {
    let (host, port) = addr.split_once(':').unwrap();
    let out = Command::new("python3")
        .args([
            "-c",
            "import ssl, sys; print(ssl.get_server_certificate((sys.argv[1], int(sys.argv[2]))))",
            host,
            port,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The base64 body of the first certificate in PEM `text` (to compare two PEM renderings).
fn cert_body(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

/// TLS on both listeners: awscli and boto3 verify the certificate and store and read
/// objects (multipart too), a client trusting another CA and plain HTTP are refused clearly,
/// operator commands need the CA, and a rotated certificate is served without a restart
/// (a half-written one is not).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_listeners_verified_by_clients_and_rotated_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let ca = LocalCa::load_or_create(&dir.path().join("ca"), "test cluster CA").unwrap();
    let wrong = LocalCa::load_or_create(&dir.path().join("wrong"), "stranger CA").unwrap();
    let names = ["127.0.0.1".to_string(), "localhost".to_string()];
    let files = ca
        .issue(&dir.path().join("ca"), "server", &names, None, DAY)
        .unwrap();
    let c = TlsCluster::start(dir.path(), &ca, &files).await;

    // Operator commands verify the admin listener with --ca-cert; without it they fail and
    // say why.
    let (id, secret) = (
        "TKTLSTEST00000000001",
        "tls-test-secret-0000000000000000000000000",
    );
    let (ok, out) = c.cli(
        Some(&c.ca),
        &[
            "key",
            "import",
            "--access-key-id",
            id,
            "--secret-access-key",
            secret,
            "--name",
            "tls",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = c.cli(None, &["status"]);
    assert!(!ok, "status without the CA succeeded: {out}");
    assert!(out.to_lowercase().contains("certificate"), "{out}");
    let (ok, out) = c.cli(Some(&wrong.cert), &["status"]);
    assert!(!ok, "status trusting another CA succeeded: {out}");

    common::run_client(
        "python3",
        "tls_clients.py",
        &[
            ("ENDPOINT", format!("https://{}", c.api)),
            ("PLAIN", format!("http://{}", c.api)),
            ("CA", c.ca.display().to_string()),
            ("WRONG_CA", wrong.cert.display().to_string()),
            ("KEY", id.to_string()),
            ("SECRET", secret.to_string()),
        ],
    )
    .await;

    // Plain HTTP on the admin listener: a 400 naming https, at once.
    let r = reqwest::Client::new()
        .get(format!("http://{}/cluster", c.admin))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("https://"));

    // Rotation: a new certificate in the same files is served from the next connection on.
    let before = cert_body(&served_cert(&c.api));
    assert_eq!(
        before,
        cert_body(&std::fs::read_to_string(&files.cert).unwrap())
    );
    let rotated = ca
        .issue(&dir.path().join("ca"), "server", &names, None, DAY)
        .unwrap();
    assert_eq!(rotated, files);
    let new = cert_body(&std::fs::read_to_string(&files.cert).unwrap());
    assert_ne!(new, before);
    let mut served = String::new();
    for _ in 0..50 {
        served = cert_body(&served_cert(&c.api));
        if served == new {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, new, "the rotated certificate is not served");
    assert_eq!(cert_body(&served_cert(&c.admin)), new);
    // A half-written certificate file: the last good pair keeps serving, and verified
    // clients keep working.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(cert_body(&served_cert(&c.api)), new);
    let (ok, out) = c.cli(Some(&c.ca), &["status"]);
    assert!(ok, "{out}");
}

/// SIGTERM under load: a node asked to stop while PUTs and GETs run finishes what it is
/// serving and exits 0; no client request fails, and every object reads back. The
/// coordinator stops on SIGTERM with exit code 0 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_stops_a_node_and_the_coordinator_gracefully_under_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 7).await;
    let bench = Command::new(BIN)
        .args(["bench", "--endpoint", &format!("http://{}", c.api)])
        .args(["--size", "256KiB", "--objects", "200", "--concurrency", "8"])
        .args(["--duration", "6s", "--json"])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut node = c.nodes[0].take().unwrap();
    sigterm_exits_0(&mut node, "node 0").await;
    let out = bench.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "requests failed while a node stopped: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    for phase in ["put", "get"] {
        assert_eq!(report[phase]["errors"], 0, "{report}");
        assert!(report[phase]["ok"].as_u64().unwrap() > 0, "{report}");
    }
    // Every object still reads back (the GET phase read them; once more after it).
    for i in 0..200 {
        let (s, b) = common::get(&c.url(&format!("tessera-bench/bench/obj-{i:08}"))).await;
        assert_eq!(s, 200, "object {i}");
        assert_eq!(b.len(), 256 << 10, "object {i}");
    }
    // The coordinator: SIGTERM, exit code 0.
    sigterm_exits_0(&mut c.coordinator, "the coordinator").await;
}

/// A node stopped gracefully says so in a last heartbeat: it is `stopped` at once (no new
/// shards go to it) and not counted as failed for the repair grace, so a repair finds nothing
/// to rebuild on its account; a node killed outright is (the control); the stopped node
/// started again is up with everything it held.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gracefully_stopped_node_is_not_taken_for_failed() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 7).await;
    assert_eq!(common::put(&c.url("stops"), vec![]).await.0, 200);
    for i in 0..20 {
        let (s, _) = common::put(&c.url(&format!("stops/o{i}")), common::data(300_000, i)).await;
        assert_eq!(s, 200);
    }
    let state = |v: &serde_json::Value, id: &str| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .map(|n| n["state"].as_str().unwrap().to_string())
    };
    let id0 = c.node_id(0).await;
    let mut node = c.nodes[0].take().unwrap();
    sigterm_exits_0(&mut node, "node 0").await;
    assert_eq!(
        state(&c.cluster_json().await, &id0).as_deref(),
        Some("stopped")
    );
    // Longer than the heartbeat timeout and the repair grace asked for.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    // A repair with a 1 s grace rebuilds nothing: the stopped node is within its grace.
    let repair = |c: &ProcCluster| {
        let (_, out, err) = c.repair_cli(&["--json", "--grace", "1s"]);
        serde_json::from_str::<serde_json::Value>(out.trim())
            .unwrap_or_else(|e| panic!("{e}: {out} {err}"))
    };
    let r = repair(&c);
    assert_eq!(
        r["shards_rebuilt"], 0,
        "the stopped node was taken for failed: {r}"
    );
    assert!(r["within_grace"].to_string().contains(&id0), "{r}");
    // The control: a node killed outright is failed once the grace has passed, and its
    // shards are rebuilt (the stopped node's still are not).
    c.kill_node(1);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let r = repair(&c);
    assert!(r["shards_rebuilt"].as_u64().unwrap() > 0, "{r}");
    assert!(r["within_grace"].to_string().contains(&id0), "{r}");
    // Started again, the stopped node is up and every object reads back whole.
    c.restart_node(0);
    c.wait_up(6).await;
    assert_eq!(state(&c.cluster_json().await, &id0).as_deref(), Some("up"));
    for i in 0..20 {
        let (s, b) = common::get(&c.url(&format!("stops/o{i}"))).await;
        assert_eq!(s, 200);
        assert!(b == common::data(300_000, i), "object {i} differs");
    }
}

/// Sends SIGTERM to `p` and waits (at most 20 s) for it to exit with code 0.
async fn sigterm_exits_0(p: &mut Proc, what: &str) {
    let started = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &p.pid().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(s) = p.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what} did not stop within 20 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{what} exited with {status}");
}

/// `tessera ARGS` with `env`; (exit code, stdout, stderr).
fn tessera(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("TESSERA_")) {
        cmd.env_remove(k);
    }
    let out = cmd.args(args).envs(env.iter().copied()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The reference settings files in deploy/reference are what `tessera config` prints (the
/// flags' own definitions), so the documentation cannot drift from `--help`.
#[test]
fn reference_settings_files_match_the_flags() {
    for sub in ["coordinator", "node"] {
        let (code, out, err) = tessera(&["config", sub], &[]);
        assert_eq!(code, 0, "{err}");
        let file = repo(&format!("deploy/reference/{sub}.toml"));
        let kept = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            kept == out,
            "{} is out of date: run `tessera config {sub} > deploy/reference/{sub}.toml`",
            file.display()
        );
        // Every flag of `--help` is a key (hidden test-only flags aside).
        let (_, help, _) = tessera(&[sub, "--help"], &[]);
        // The flags `--help` lists: the first `--word` of lines that start with a flag.
        for flag in help
            .lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with('-'))
            .filter_map(|l| l.split_whitespace().find_map(|w| w.strip_prefix("--")))
            .map(|w| w.trim_end_matches(|c: char| !c.is_alphanumeric() && c != '-'))
            .filter(|f| !["help", "config", "check-config", "json", "version"].contains(f))
            .filter(|f| !f.is_empty())
        {
            assert!(
                out.contains(&format!("#{flag} = ")),
                "`--{flag}` of `tessera {sub} --help` has no key in the reference"
            );
        }
    }
}

/// Settings files: a flag beats the setting's environment variable, which beats the file,
/// which beats the default; a key that is not a setting is an error naming it (the command
/// does not run); every example file of deploy/ is accepted.
#[test]
fn settings_files_merge_with_flags_and_environment_and_refuse_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("node.toml");
    std::fs::write(
        &f,
        "listen = \"127.0.0.1:7999\"\ndata-dir = \"/srv/n1\"\nzone = \"from-file\"\n\
         heartbeat-interval = \"3s\"\nscrub-rate = \"1MiB\"\nca-cert = [\"a.pem\", \"b.pem\"]\n",
    )
    .unwrap();
    let fs = f.to_str().unwrap();
    let (code, out, err) = tessera(
        &[
            "node",
            "--config",
            fs,
            "--zone",
            "from-flag",
            "--check-config",
        ],
        &[("TESSERA_NODE_HEARTBEAT_INTERVAL", "2s")],
    );
    assert_eq!(code, 0, "{err}");
    let line = |key: &str| {
        out.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .to_string()
    };
    assert_eq!(line("zone"), "zone = \"from-flag\"  # command line");
    assert_eq!(
        line("heartbeat-interval"),
        "heartbeat-interval = \"2s\"  # env TESSERA_NODE_HEARTBEAT_INTERVAL"
    );
    assert_eq!(
        line("scrub-rate"),
        format!("scrub-rate = \"1MiB\"  # --config {fs}")
    );
    assert_eq!(
        line("data-dir"),
        format!("data-dir = \"/srv/n1\"  # --config {fs}")
    );
    assert_eq!(
        line("ca-cert"),
        format!("ca-cert = [\"a.pem\", \"b.pem\"]  # --config {fs}")
    );
    assert!(line("scrub-interval").ends_with("# default"), "{out}");
    // TESSERA_CONFIG names the file too.
    let (code, out, err) = tessera(&["node", "--check-config"], &[("TESSERA_CONFIG", fs)]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("zone = \"from-file\"  # --config"), "{out}");

    // Unknown and misspelt keys: an error naming the key, nothing run.
    for (text, want) in [
        ("zonee = \"x\"\n", "unknown key `zonee`"),
        ("data_dir = \"/x\"\n", "did you mean `data-dir`"),
        ("zone = [\"a\", \"b\"]\n", "`zone` takes one value"),
        ("no-raw-reads = \"yes\"\n", "unknown key `no-raw-reads`"),
        ("zone = \n", "not a valid TOML file"),
    ] {
        std::fs::write(&f, text).unwrap();
        let (code, out, err) = tessera(&["node", "--config", fs, "--check-config"], &[]);
        assert_eq!(code, 2, "{text}: {out}{err}");
        assert!(err.contains(want), "{text}: {err}");
        assert!(out.is_empty(), "{out}");
    }
    std::fs::write(&f, "no-raw-reads = \"yes\"\n").unwrap();
    let (code, _, err) = tessera(&["coordinator", "--config", fs, "--check-config"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("`no-raw-reads` is on or off"), "{err}");

    // The examples of deploy/ are valid settings of their commands.
    let examples = repo("deploy/examples/three-zones");
    let mut seen = 0;
    for e in std::fs::read_dir(&examples).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let sub = if name.starts_with("coordinator") {
            "coordinator"
        } else {
            "node"
        };
        let (code, out, err) = tessera(
            &[sub, "--config", p.to_str().unwrap(), "--check-config"],
            &[],
        );
        assert_eq!(code, 0, "{name}: {err}");
        assert!(out.contains("# --config"), "{name}: {out}");
        seen += 1;
    }
    assert_eq!(seen, 12);
}

/// A node started from a settings file alone (no flags) joins with the file's zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_runs_from_its_settings_file() {
    let dir = tempfile::tempdir().unwrap();
    let c = ProcCluster::start(dir.path(), 6).await;
    std::fs::write(
        dir.path().join("secret"),
        ProcCluster::secrets_in(dir.path()).cluster_secret,
    )
    .unwrap();
    let f = dir.path().join("n7.toml");
    std::fs::write(
        &f,
        format!(
            "listen = \"127.0.0.1:{}\"\ndata-dir = \"{}\"\nzone = \"from-file\"\n\
             coordinator = \"http://{}\"\ncluster-secret-file = \"{}\"\nheartbeat-interval = \"200ms\"\n",
            free_port(),
            dir.path().join("n7").display(),
            c.admin,
            dir.path().join("secret").display()
        ),
    )
    .unwrap();
    let _node = Proc(
        Command::new(BIN)
            .env_remove("TESSERA_COORDINATOR")
            .args(["node", "--config", f.to_str().unwrap()])
            .stdout(log(dir.path(), "n7"))
            .stderr(log(dir.path(), "n7.err"))
            .spawn()
            .unwrap(),
    );
    c.wait_up(7).await;
    let v = c.cluster_json().await;
    let zones: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["zone"].as_str())
        .collect();
    assert!(zones.contains(&"from-file"), "{v}");
}

/// The systemd units are valid for systemd (`systemd-analyze verify`, with the unit's binary
/// path pointing at this build).
#[test]
fn systemd_units_verify() {
    let dir = tempfile::tempdir().unwrap();
    for (unit, instance) in [
        ("tessera-coordinator.service", "tessera-coordinator.service"),
        ("tessera-node@.service", "tessera-node@disk1.service"),
    ] {
        let text = std::fs::read_to_string(repo(&format!("deploy/systemd/{unit}"))).unwrap();
        assert!(text.contains("ExecStart=/usr/local/bin/tessera "));
        assert!(text.contains("LimitNOFILE=") && text.contains("TimeoutStopSec="));
        std::fs::write(
            dir.path().join(unit),
            text.replace("/usr/local/bin/tessera", BIN),
        )
        .unwrap();
        let out = Command::new("systemd-analyze")
            .arg("verify")
            .arg(dir.path().join(instance))
            .output()
            .expect("systemd-analyze (scripts/setup.sh installs systemd)");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && err.trim().is_empty(),
            "{unit}: {err}"
        );
    }
}
