//! A small datacenter of network namespaces on a bridge: three coordinators and nine nodes in
//! three zones, each process in a namespace of its own with its own `/etc/tessera` and
//! `/var/lib/tessera`, deployed by running README's "Deploying on several machines" as
//! printed (the example settings' addresses mapped into this test's own subnet). Then, with
//! TLS on every connection: awscli and boto3 from a client namespace verify the coordinators
//! (multipart too) and a plain-HTTP or wrong-CA client is refused; a stranger namespace with
//! the cluster secret but no certificate reads and writes no shard and cannot join the Raft
//! group; the node the guide revoked is counted down; a node stopped with SIGTERM under load
//! loses nothing; the leader's namespace cut off from the bridge, the rest keeps serving.
//! Where namespaces cannot be made (not root) the test says so and skips.

mod common;

use common::guide::{guide, mapped, remap, Step};
use common::net::Net;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");
const REPO: &str = env!("CARGO_MANIFEST_DIR");

/// One host of the datacenter.
struct Host {
    /// Its settings file's name (`coordinator-1`, `node-z2-3`) or role (`operator`).
    name: String,
    ns: String,
    ip: String,
    /// Holds `etc/` and `var/`, mounted at `/etc/tessera` and `/var/lib/tessera` for it.
    root: PathBuf,
}

struct Datacenter {
    net: Net,
    hosts: BTreeMap<String, Host>,
    /// A copy of the repository's deploy examples with the test's addresses.
    checkout: PathBuf,
    /// Servers left running, by host.
    servers: BTreeMap<String, Child>,
    dir: PathBuf,
}

impl Datacenter {
    fn new(net: Net, dir: &Path) -> Datacenter {
        let mut dc = Datacenter {
            net,
            hosts: BTreeMap::new(),
            checkout: dir.join("checkout"),
            servers: BTreeMap::new(),
            dir: dir.to_path_buf(),
        };
        let mut add = |name: &str, short: &str, example_ip: &str| {
            let ip = mapped(&dc.net.subnet, example_ip);
            let host: u8 = ip.rsplit('.').next().unwrap().parse().unwrap();
            let (ns, _) = dc.net.add(short, host).unwrap();
            let root = dir.join("hosts").join(name);
            for d in ["etc", "var"] {
                std::fs::create_dir_all(root.join(d)).unwrap();
            }
            dc.hosts.insert(
                name.to_string(),
                Host {
                    name: name.to_string(),
                    ns,
                    ip,
                    root,
                },
            );
        };
        for z in 1..=3 {
            add(
                &format!("coordinator-{z}"),
                &format!("c{z}"),
                &format!("10.0.{z}.10"),
            );
            for n in 1..=3 {
                add(
                    &format!("node-z{z}-{n}"),
                    &format!("z{z}n{n}"),
                    &format!("10.0.{z}.1{n}"),
                );
            }
        }
        add("operator", "op", "10.0.4.0");
        add("stranger", "st", "10.0.4.1");
        let examples = dc.checkout.join("deploy/examples/three-zones");
        std::fs::create_dir_all(&examples).unwrap();
        for e in std::fs::read_dir(format!("{REPO}/deploy/examples/three-zones")).unwrap() {
            let e = e.unwrap();
            let text = std::fs::read_to_string(e.path()).unwrap();
            std::fs::write(examples.join(e.file_name()), remap(&dc.net.subnet, &text)).unwrap();
        }
        // Mount points for each host's own directories.
        std::fs::create_dir_all("/etc/tessera").unwrap();
        std::fs::create_dir_all("/var/lib/tessera").unwrap();
        dc
    }

    /// The hosts a guide step names (`nodes`: every node host).
    fn named(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .flat_map(|n| match n.as_str() {
                "nodes" => self
                    .hosts
                    .keys()
                    .filter(|h| h.starts_with("node-"))
                    .cloned()
                    .collect(),
                h => {
                    assert!(self.hosts.contains_key(h), "unknown host {h}");
                    vec![h.to_string()]
                }
            })
            .collect()
    }

    /// Where `path` (under `/etc/tessera` or `/var/lib/tessera`) of `host` really is.
    fn real(&self, host: &str, path: &str) -> PathBuf {
        let root = &self.hosts[host].root;
        if let Some(rest) = path.strip_prefix("/etc/tessera") {
            root.join("etc").join(rest.trim_start_matches('/'))
        } else if let Some(rest) = path.strip_prefix("/var/lib/tessera") {
            root.join("var").join(rest.trim_start_matches('/'))
        } else {
            panic!("{path} is not a host path")
        }
    }

    /// `script` in bash on `host`: its namespace, its own `/etc/tessera` and
    /// `/var/lib/tessera`, the checkout as working directory, `tessera` on the PATH.
    fn command(&self, host: &str, script: &str) -> Command {
        let h = &self.hosts[host];
        let bin_dir = Path::new(BIN).parent().unwrap();
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &h.ns, "unshare", "--mount", "--propagation", "private"])
            .args(["bash", "-c"])
            .arg(format!(
                "mount --bind {etc} /etc/tessera && mount --bind {var} /var/lib/tessera && cd {co} && exec bash -ec \"$0\"",
                etc = h.root.join("etc").display(),
                var = h.root.join("var").display(),
                co = self.checkout.display(),
            ))
            .arg(script)
            .env("HOST", &h.name)
            .env("IP", &h.ip)
            .env(
                "PATH",
                format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap()),
            );
        for (k, _) in std::env::vars() {
            if k.starts_with("TESSERA_") || k.starts_with("AWS_") || k.ends_with("CA_BUNDLE") {
                c.env_remove(k);
            }
        }
        c
    }

    /// Runs `script` on `host` to the end; its output, or a panic saying why it failed.
    fn run(&self, host: &str, script: &str) -> String {
        let out = self.command(host, script).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "on {host}: {script}\n{text}\n(logs in {})",
            self.dir.display()
        );
        text
    }

    /// Starts `script` on `host` as a server in a process group of its own.
    fn serve(&mut self, host: &str, script: &str) {
        let log = |suffix: &str| {
            Stdio::from(std::fs::File::create(self.dir.join(format!("{host}.{suffix}"))).unwrap())
        };
        let child = self
            .command(host, script)
            .stdout(log("out"))
            .stderr(log("log"))
            .process_group(0)
            .spawn()
            .unwrap();
        self.servers.insert(host.to_string(), child);
    }

    /// Sends `signal` to `host`'s server's process group.
    fn signal(&self, host: &str, signal: &str) {
        let pid = self.servers[host].id();
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), "--", &format!("-{pid}")])
            .status();
    }

    /// Runs the guide's steps in order.
    fn deploy(&mut self) {
        for step in guide(&self.net.subnet) {
            match step {
                Step::Run {
                    hosts,
                    serve,
                    script,
                } => {
                    for h in self.named(&hosts) {
                        if serve {
                            self.serve(&h, &script);
                        } else {
                            self.run_retrying(&h, &script);
                        }
                    }
                }
                Step::Copy {
                    from,
                    dir,
                    files,
                    to,
                    to_dir,
                } => {
                    for f in &files {
                        let src = self.real(&from, &format!("{dir}/{f}"));
                        // Files a server makes on its first start appear shortly after it.
                        let t = Instant::now();
                        while !src.exists() {
                            assert!(
                                t.elapsed() < Duration::from_secs(30),
                                "{} never appeared",
                                src.display()
                            );
                            std::thread::sleep(Duration::from_millis(100));
                        }
                        for h in self.named(&to) {
                            let dst = self.real(&h, &format!("{to_dir}/{f}"));
                            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
                            std::fs::copy(&src, &dst).unwrap();
                        }
                    }
                }
            }
        }
    }

    /// A step that talks to servers just started may find them not yet listening: tried
    /// again a few times (every step of the guide can be repeated).
    fn run_retrying(&self, host: &str, script: &str) {
        for attempt in 0.. {
            let out = self.command(host, script).output().unwrap();
            if out.status.success() {
                return;
            }
            assert!(
                attempt < 10,
                "on {host}: {script}\n{}{}\n(logs in {})",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.dir.display()
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn admin_url(&self, i: usize) -> String {
        format!(
            "https://{}:7071",
            self.hosts[&format!("coordinator-{i}")].ip
        )
    }

    /// `GET /cluster` of coordinator `i`, from the operator's host.
    fn cluster_json(&self, i: usize) -> Option<serde_json::Value> {
        let out = self
            .command(
                "operator",
                &format!(
                    "curl -fsS -m 5 --cacert /etc/tessera/cluster-ca.pem -H \"Authorization: Bearer $(cat /etc/tessera/admin.token)\" {}/cluster",
                    self.admin_url(i)
                ),
            )
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The leader's number (1-based), as the coordinators not in `cut` see it.
    fn leader(&self, cut: Option<usize>) -> usize {
        let t = Instant::now();
        loop {
            for i in (1..=3).filter(|i| Some(*i) != cut) {
                if let Some(l) = self
                    .cluster_json(i)
                    .and_then(|v| v["raft"]["leader"].as_u64())
                {
                    if Some(l as usize) != cut {
                        return l as usize;
                    }
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no leader; logs in {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Whether coordinator `i` counts the node at `ip` up.
    fn node_up(&self, i: usize, ip: &str) -> Option<bool> {
        let v = self.cluster_json(i)?;
        v["nodes"]
            .as_array()?
            .iter()
            .find(|n| {
                n["address"]
                    .as_str()
                    .is_some_and(|a| a.starts_with(&format!("{ip}:")))
            })
            .map(|n| n["up"] == true)
    }

    /// An HTTP status code from `curl` on `host` (0: no answer, e.g. a refused handshake).
    fn curl_code(&self, host: &str, args: &str) -> u16 {
        let out = self
            .command(
                host,
                &format!("curl -s -o /dev/null -w '%{{http_code}}' -m 10 {args} || true"),
            )
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    }
}

impl Drop for Datacenter {
    fn drop(&mut self) {
        for (_, c) in self.servers.iter_mut() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_datacenter_deployed_by_the_guide_with_tls_everywhere() {
    let net = match Net::new() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("SKIPPED: network namespaces cannot be made here ({e}); run as root");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let mut dc = Datacenter::new(net, dir.path());
    dc.deploy();
    let op = dc.hosts["operator"].root.clone();
    let ca = op.join("etc/cluster-ca.pem");

    // The guide's upload reads back, and the guide revoked node-z3-3: every coordinator counts
    // it down while the other eight are up.
    let out = dc.run(
        "operator",
        &format!(
            "export AWS_ACCESS_KEY_ID=$(python3 -c 'import json; print(json.load(open(\"/etc/tessera/backups.json\"))[\"access_key_id\"])')
             export AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json; print(json.load(open(\"/etc/tessera/backups.json\"))[\"secret_access_key\"])')
             aws --endpoint-url https://{}:7070 --ca-bundle /etc/tessera/cluster-ca.pem s3 cp s3://backups/hello.txt -",
            dc.hosts["coordinator-3"].ip
        ),
    );
    assert_eq!(out.trim(), "hello");
    let revoked = dc.hosts["node-z3-3"].ip.clone();
    let t = Instant::now();
    while (1..=3).any(|i| dc.node_up(i, &revoked) != Some(false)) {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "the revoked node is still counted up; logs in {}",
            dir.path().display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    for h in dc
        .named(&["nodes".into()])
        .iter()
        .filter(|h| *h != "node-z3-3")
    {
        assert_eq!(dc.node_up(1, &dc.hosts[h].ip), Some(true), "{h} is not up");
    }

    // awscli and boto3 in the client's namespace: certificates verified against the cluster
    // CA, multipart, a wrong CA and plain HTTP refused (tests/clients/tls_clients.py).
    let wrong = tessera_node::tls::LocalCa::load_or_create(&dir.path().join("wrong"), "another CA")
        .unwrap();
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(op.join("etc/backups.json")).unwrap())
            .unwrap();
    let c1 = dc.hosts["coordinator-1"].ip.clone();
    let out = dc.run(
        "operator",
        &format!(
            "ENDPOINT=https://{c1}:7070 PLAIN=http://{c1}:7070 CA={ca} WRONG_CA={wrong} KEY={k} SECRET={s} python3 {REPO}/tests/clients/tls_clients.py",
            ca = ca.display(),
            wrong = wrong.cert.display(),
            k = key["access_key_id"].as_str().unwrap(),
            s = key["secret_access_key"].as_str().unwrap(),
        ),
    );
    assert!(out.contains("ALL OK"), "{out}");

    // A stranger on the same bridge with the cluster secret and the CA but no certificate:
    // no node completes a handshake with it, the coordinators refuse its heartbeats and
    // Raft messages.
    let st = dc.hosts["stranger"].root.join("etc");
    std::fs::copy(op.join("etc/cluster-ca.pem"), st.join("cluster-ca.pem")).unwrap();
    std::fs::copy(
        dc.hosts["node-z1-1"].root.join("etc/cluster.secret"),
        st.join("cluster.secret"),
    )
    .unwrap();
    let auth = "--cacert /etc/tessera/cluster-ca.pem -H \"Authorization: Bearer $(cat /etc/tessera/cluster.secret)\"";
    for h in dc.named(&["nodes".into()]) {
        let ip = &dc.hosts[&h].ip;
        assert_eq!(
            dc.curl_code(
                "stranger",
                &format!("{auth} https://{ip}:7080/shards?limit=5")
            ),
            0,
            "{h} served a stranger"
        );
        assert_eq!(
            dc.curl_code(
                "stranger",
                &format!(
                    "{auth} -X DELETE https://{ip}:7080/shards/0000000000000000000000000000000a/0"
                )
            ),
            0,
            "{h} served a stranger's delete"
        );
        assert_eq!(
            dc.curl_code(
                "stranger",
                &format!("-H 'Authorization: x' http://{ip}:7080/health")
            ),
            400
        );
    }
    for i in 1..=3 {
        let admin = dc.admin_url(i);
        let vote = dc.curl_code(
            "stranger",
            &format!(
                "{auth} -X POST -H 'content-type: application/json' -d '{{}}' {admin}/raft/vote"
            ),
        );
        assert_eq!(vote, 403, "coordinator {i} took a stranger's Raft message");
        let hb = dc.curl_code("stranger", &format!("{auth} -X POST -H 'content-type: application/json' -d '{{}}' {admin}/nodes/heartbeat"));
        assert_eq!(hb, 403, "coordinator {i} took a stranger's heartbeat");
    }

    // SIGTERM to a node under load: its requests in flight finish, the load sees no error,
    // the node exits 0, and everything written reads back (the bench's GET phase verifies).
    let stopping = "node-z2-1";
    let load = std::thread::spawn({
        let cmd = format!(
            "export AWS_ACCESS_KEY_ID=$(python3 -c 'import json; print(json.load(open(\"/etc/tessera/backups.json\"))[\"access_key_id\"])')
             export AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json; print(json.load(open(\"/etc/tessera/backups.json\"))[\"secret_access_key\"])')
             tessera bench --endpoint https://{c1}:7070 --ca-cert /etc/tessera/cluster-ca.pem --coordinator https://{c1}:7071 \
               --admin-token-file /etc/tessera/admin.token --bucket load --size 256KiB --objects 64 --concurrency 8 --duration 6s"
        );
        let mut c = dc.command("operator", &cmd);
        move || c.output().unwrap()
    });
    std::thread::sleep(Duration::from_secs(2));
    dc.signal(stopping, "TERM");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = dc.servers.get_mut(stopping).unwrap().try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{stopping} did not stop within 20 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{stopping} exited with {status}");
    let out = load.join().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "load during the SIGTERM: {text}");
    assert_eq!(
        text.matches(" 0 errors").count(),
        2,
        "PUT and GET during the SIGTERM: {text}"
    );

    // The leader's namespace cut off the bridge: the other two elect a leader and keep
    // serving over TLS; a write through them is acknowledged and reads back.
    let leader = dc.leader(None);
    let cut = dc.hosts[&format!("coordinator-{leader}")].ns.clone();
    dc.net.cut(&cut);
    let other = (1..=3).find(|i| *i != leader).unwrap();
    let other_ip = dc.hosts[&format!("coordinator-{other}")].ip.clone();
    let put = format!(
        "export AWS_ACCESS_KEY_ID=$(python3 -c 'import json; print(json.load(open(\"/etc/tessera/backups.json\"))[\"access_key_id\"])')
         export AWS_SECRET_ACCESS_KEY=$(python3 -c 'import json; print(json.load(open(\"/etc/tessera/backups.json\"))[\"secret_access_key\"])')
         echo after-the-cut > after.txt
         aws --endpoint-url https://{other_ip}:7070 --ca-bundle /etc/tessera/cluster-ca.pem --cli-read-timeout 10 s3 cp after.txt s3://backups/after.txt
         aws --endpoint-url https://{other_ip}:7070 --ca-bundle /etc/tessera/cluster-ca.pem s3 cp s3://backups/after.txt -"
    );
    let t = Instant::now();
    loop {
        let out = dc.command("operator", &put).output().unwrap();
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).lines().last(),
                Some("after-the-cut")
            );
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the majority did not serve a write after the leader was cut off: {}; logs in {}",
            String::from_utf8_lossy(&out.stderr),
            dir.path().display()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let new_leader = dc.leader(Some(leader));
    assert_ne!(new_leader, leader);
    eprintln!(
        "datacenter: leader {leader} cut off, coordinator {new_leader} leads, a write acknowledged {:?} after the cut",
        t.elapsed()
    );
    dc.net.heal(&cut);
}
