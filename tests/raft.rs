//! Replicated coordinators on real processes: three `tessera coordinator --raft-id --peers`
//! and six nodes heartbeating to all of them. Leaders and followers are SIGKILLed while
//! clients write and read through every coordinator; a history checker holds every read to
//! the writes acknowledged around it.

mod common;

use common::group::{log, Group};
use common::procs::{free_port, Proc, ProcCluster};
use common::{tag_of, tagged as body};
use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_coordinator::cluster::version::STATE_MACHINE;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Put(u64),
    Delete,
    Get,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    /// Acknowledged (a PUT or DELETE answered 2xx).
    Acked,
    /// Failed or unknown: may or may not have happened.
    Unknown,
    /// A read found this write's value.
    Read(u64),
    /// A read found no object.
    Absent,
}

#[derive(Clone, Debug)]
struct Event {
    key: usize,
    op: Op,
    start: Instant,
    end: Instant,
    out: Outcome,
}

/// Checks every read against the writes of its key: what it returned (a value, or no
/// object) must come from a write that began before the read ended (for no object: a DELETE,
/// or the empty start), such that no acknowledged write of the key started after that write
/// ended and ended before the read began. Returns how many reads were checked.
fn check_history(events: &[Event], t0: Instant) -> usize {
    let mut checked = 0;
    for r in events.iter().filter(|e| e.op == Op::Get) {
        let writes: Vec<&Event> = events
            .iter()
            .filter(|w| w.key == r.key && w.op != Op::Get)
            .collect();
        let sources: Vec<(Instant, Instant)> = match r.out {
            Outcome::Read(tag) => writes
                .iter()
                .filter(|w| w.op == Op::Put(tag))
                .map(|w| (w.start, w.end))
                .collect(),
            Outcome::Absent => std::iter::once((t0, t0))
                .chain(
                    writes
                        .iter()
                        .filter(|w| w.op == Op::Delete)
                        .map(|w| (w.start, w.end)),
                )
                .collect(),
            _ => continue,
        };
        assert!(
            !sources.is_empty(),
            "key {}: a read returned {:?}, which no write wrote",
            r.key,
            r.out
        );
        let valid = sources.iter().any(|&(start, end)| {
            start <= r.end
                && !writes
                    .iter()
                    .any(|x| x.out == Outcome::Acked && x.start > end && x.end < r.start)
        });
        assert!(
            valid,
            "key {}: stale or impossible read {:?}: an acknowledged write completed after its source and before the read began",
            r.key, r
        );
        checked += 1;
    }
    checked
}

/// SIGKILL of the leader during a storm of 32 clients (PUT, GET, overwrite, DELETE of small
/// and large objects through all three coordinators): a new leader takes over, writes
/// resume, every read obeys the history, every acknowledged write reads back byte-exact
/// from every surviving coordinator, the dead leader's in-flight writes are collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_during_a_storm_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &[]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    assert_eq!(
        http().put(g.url(0, "storm")).send().await.unwrap().status(),
        200
    );
    let t0 = Instant::now();
    let events = Arc::new(Mutex::new(Vec::<Event>::new()));
    let apis: Arc<Vec<String>> = Arc::new(g.api.clone());
    let dead = Arc::new(Mutex::new(None::<usize>));
    let keys = 24;
    let mut clients = Vec::new();
    for client in 0..32u64 {
        let (events, apis, dead) = (events.clone(), apis.clone(), dead.clone());
        clients.push(tokio::spawn(async move {
            let h = http();
            let mut n = 0u64;
            while t0.elapsed() < Duration::from_secs(9) {
                n += 1;
                let tag = client << 32 | n;
                let key = (tag.wrapping_mul(2654435761) % keys) as usize;
                let mut c = (tag % 3) as usize;
                if *dead.lock().unwrap() == Some(c) {
                    c = (c + 1) % 3;
                }
                let url = format!("http://{}/storm/k{key}", apis[c]);
                let op = match n % 5 {
                    0 => Op::Delete,
                    1 | 2 => Op::Get,
                    _ => Op::Put(tag),
                };
                let start = Instant::now();
                let out = match op {
                    Op::Put(tag) => {
                        let len = if key.is_multiple_of(4) {
                            700 << 10
                        } else {
                            4 << 10
                        };
                        match h.put(&url).body(body(tag, len)).send().await {
                            Ok(r) if r.status().is_success() => Outcome::Acked,
                            _ => Outcome::Unknown,
                        }
                    }
                    Op::Delete => match h.delete(&url).send().await {
                        Ok(r) if r.status().is_success() => Outcome::Acked,
                        _ => Outcome::Unknown,
                    },
                    Op::Get => match h.get(&url).send().await {
                        Ok(r) if r.status() == 200 => match r.bytes().await {
                            Ok(b) => Outcome::Read(tag_of(&b)),
                            Err(_) => Outcome::Unknown,
                        },
                        Ok(r) if r.status() == 404 => Outcome::Absent,
                        _ => Outcome::Unknown,
                    },
                };
                events.lock().unwrap().push(Event {
                    key,
                    op,
                    start,
                    end: Instant::now(),
                    out,
                });
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed_at = Instant::now();
    *dead.lock().unwrap() = Some(leader);
    g.kill(leader);
    for c in clients {
        c.await.unwrap();
    }
    let events = events.lock().unwrap().clone();
    // Failover: from the kill to the first acknowledged PUT that started after it.
    let failover = events
        .iter()
        .filter(|e| matches!(e.op, Op::Put(_)) && e.out == Outcome::Acked && e.start >= killed_at)
        .map(|e| e.end - killed_at)
        .min()
        .expect("writes resumed after the leader was killed");
    let acked_puts = events
        .iter()
        .filter(|e| matches!(e.op, Op::Put(_)) && e.out == Outcome::Acked)
        .count();
    let reads = check_history(&events, t0);
    eprintln!(
        "storm: {} operations, {acked_puts} acknowledged PUTs, {reads} reads checked; failover (kill to first acknowledged PUT) {failover:?}",
        events.len()
    );
    assert!(acked_puts > 50, "the storm wrote");
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    // Final state: every surviving coordinator serves the same, and it obeys the history.
    let new_leader = g.leader(Duration::from_secs(20)).await;
    assert_ne!(new_leader, leader);
    let end = Instant::now();
    let mut finals = events.clone();
    for key in 0..keys as usize {
        let mut seen = Vec::new();
        for c in (0..3).filter(|&c| c != leader) {
            let r = http()
                .get(g.url(c, &format!("storm/k{key}")))
                .send()
                .await
                .unwrap();
            let out = match r.status().as_u16() {
                200 => Outcome::Read(tag_of(&r.bytes().await.unwrap())),
                404 => Outcome::Absent,
                s => panic!("final read of k{key} on coordinator {c}: {s}"),
            };
            seen.push(out);
            finals.push(Event {
                key,
                op: Op::Get,
                start: end,
                end: Instant::now(),
                out,
            });
        }
        assert_eq!(seen[0], seen[1], "k{key}: the surviving coordinators agree");
    }
    check_history(&finals, t0);
    // The dead leader's writes in flight expire with its lease; all garbage is collected.
    let live = (0..3).find(|&c| c != leader).unwrap();
    let clean = common::eventually(Duration::from_secs(40), || async {
        let v = g.cluster_json(live).await.unwrap_or_default();
        v["objects_in_flight"] == 0 && v["garbage"] == 0
    })
    .await;
    assert!(
        clean,
        "in-flight records and garbage drain: {:?}",
        g.cluster_json(live).await
    );
    let _ = std::fs::write(
        dir.path().join("failover.txt"),
        format!("{}\n", failover.as_millis()),
    );
}

/// A follower killed while the group keeps writing past several snapshots catches up by
/// installing the leader's snapshot, then serves the same data; two members lost out of
/// three refuse writes (503) and corrupt nothing, and one coming back restores service with
/// every acknowledged write.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_catches_up_by_snapshot_and_a_lost_majority_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &["--snapshot-every", "40"]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    let follower = (0..3).find(|&c| c != leader).unwrap();
    let h = http();
    assert_eq!(
        h.put(g.url(leader, "snap")).send().await.unwrap().status(),
        200
    );
    g.kill(follower);
    let mut written = BTreeMap::new();
    for i in 0..150u64 {
        let b = body(i, 2048);
        let r = h
            .put(g.url(leader, &format!("snap/o{i}")))
            .body(b.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        written.insert(i, b);
    }
    g.restart(follower);
    let caught_up = common::eventually(Duration::from_secs(30), || async {
        let Some(v) = g.cluster_json(follower).await else {
            return false;
        };
        let members = v["raft"]["members"].as_array().cloned().unwrap_or_default();
        let mine = members.iter().find(|m| m["id"] == follower as u64 + 1);
        let lead = members.iter().find(|m| m["id"] == leader as u64 + 1);
        match (mine, lead) {
            (Some(m), Some(l)) => {
                m["applied_index"].as_u64().is_some() && m["applied_index"] == l["applied_index"]
            }
            _ => false,
        }
    })
    .await;
    assert!(caught_up, "the restarted follower caught up");
    let follower_log =
        std::fs::read_to_string(dir.path().join(format!("c{}.log", follower + 1))).unwrap();
    assert!(
        follower_log.contains("installed a snapshot from the leader"),
        "the follower caught up by snapshot (the log behind it was purged)"
    );
    for (i, b) in &written {
        let r = h
            .get(g.url(follower, &format!("snap/o{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            &r.bytes().await.unwrap()[..],
            &b[..],
            "o{i} through the restarted follower"
        );
    }
    // Lose two of three: the survivor refuses writes and linearizable reads.
    let survivor = (0..3).find(|&c| c != leader && c != follower).unwrap();
    g.kill(leader);
    g.kill(follower);
    let t = Instant::now();
    let r = h
        .put(g.url(survivor, "snap/refused"))
        .body(body(999, 100))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "a write without a majority is refused");
    eprintln!(
        "write refused by a lone coordinator after {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(15));
    let r = h.get(g.url(survivor, "snap/o1")).send().await.unwrap();
    assert_eq!(
        r.status(),
        503,
        "no read is served as linearizable without a majority"
    );
    // One comes back: service resumes, nothing acknowledged is lost, the refused write is
    // not there.
    g.restart(follower);
    let ok = common::eventually(Duration::from_secs(30), || async {
        h.put(g.url(survivor, "snap/after"))
            .body(body(1000, 100))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(ok, "writes resume with a majority back");
    for (i, b) in &written {
        let r = h
            .get(g.url(survivor, &format!("snap/o{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(&r.bytes().await.unwrap()[..], &b[..]);
    }
    assert_eq!(
        h.get(g.url(survivor, "snap/refused"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

/// Bad membership input gets a clear error and changes nothing: a restart with other
/// `--peers`, a new member with a wrong cluster secret or an unreachable URL, removing a
/// member that is not one, and removing the last member.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn membership_mistakes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &[]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    // Raft messages from a member of another state machine version (another build), or from
    // a build that does not say, are refused and change nothing: a vote for a later term
    // would otherwise depose the leader.
    let secret = ProcCluster::secrets_in(dir.path()).cluster_secret;
    let before = g.cluster_json(leader).await.unwrap();
    let term = before["raft"]["term"].as_u64().unwrap();
    let vote = serde_json::json!({
        "vote": {"leader_id": {"term": term + 100, "node_id": 9}, "committed": false},
        "last_log_id": null
    });
    let peer_post = |path: &str, version: Option<&str>| {
        let r = http()
            .post(format!("http://{}/raft/{path}", g.admin[leader]))
            .bearer_auth(&secret);
        match version {
            Some(v) => r.header("x-tessera-state-machine", v),
            None => r,
        }
    };
    for version in [Some("999"), Some("0"), None] {
        for path in ["vote", "append", "write"] {
            let r = peer_post(path, version).json(&vote).send().await.unwrap();
            assert_eq!(r.status(), 409, "{path} from version {version:?}");
            let text = r.text().await.unwrap();
            assert!(text.contains("must run one build"), "{text}");
        }
    }
    let after = g.cluster_json(leader).await.unwrap();
    assert_eq!(after["raft"]["term"], before["raft"]["term"]);
    assert_eq!(after["raft"]["leader"], before["raft"]["leader"]);
    let members = after["raft"]["members"].as_array().unwrap();
    assert!(
        members.iter().all(|m| m["state_machine"] == STATE_MACHINE),
        "{members:?}"
    );
    // The same request path with this build's version is served (the refusal above was the
    // version's, not the secret's or the route's).
    let ours = STATE_MACHINE.to_string();
    let r = peer_post("read-index", Some(&ours)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A member restarted with another --peers list refuses to start.
    let other = (0..3).find(|&c| c != leader).unwrap();
    g.kill(other);
    let short = g.peers.split(',').take(2).collect::<Vec<_>>().join(",");
    let mut p = g.spawn_coordinator_with_peers(other, &short);
    let status = p.0.wait().unwrap();
    assert!(!status.success());
    let err = std::fs::read_to_string(dir.path().join(format!("c{}.log", other + 1))).unwrap();
    assert!(err.contains("was first started with --peers"), "{err}");
    g.restart(other);
    let list = g.admin_list();
    let cli = |args: &[&str]| {
        Command::new(BIN)
            .env(
                "TESSERA_ADMIN_TOKEN",
                ProcCluster::secrets_in(dir.path()).admin_token,
            )
            .args(["cluster", "--coordinator", &list])
            .args(args)
            .output()
            .unwrap()
    };
    // Unreachable URL.
    let out = cli(&[
        "add-coordinator",
        "--raft-id",
        "4",
        "--admin-url",
        "http://127.0.0.1:9",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreachable"),
        "{out:?}"
    );
    // A coordinator with another cluster secret.
    let stranger_dir = dir.path().join("stranger");
    let s_admin = format!("127.0.0.1:{}", free_port());
    let _stranger = Proc(
        Command::new(BIN)
            .args([
                "coordinator",
                "--anonymous",
                "--listen",
                &format!("127.0.0.1:{}", free_port()),
            ])
            .args(["--admin-listen", &s_admin])
            .arg("--data-dir")
            .arg(&stranger_dir)
            .args([
                "--raft-id",
                "4",
                "--peers",
                &format!("{},4=http://{s_admin}", g.peers),
            ])
            .stdout(Stdio::null())
            .stderr(log(dir.path(), "stranger"))
            .spawn()
            .unwrap(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let out = cli(&[
        "add-coordinator",
        "--raft-id",
        "4",
        "--admin-url",
        &format!("http://{s_admin}"),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cluster secret"),
        "{out:?}"
    );
    // Not a member.
    let out = cli(&["remove-coordinator", "--raft-id", "9"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a member"),
        "{out:?}"
    );
    // Nothing changed: three members.
    let v = g.cluster_json(leader).await.unwrap();
    assert_eq!(v["raft"]["members"].as_array().unwrap().len(), 3);
    // Shrink to one, then the last member cannot go.
    let leader = g.leader(Duration::from_secs(20)).await;
    for c in (0..3).filter(|&c| c != leader) {
        let out = cli(&["remove-coordinator", "--raft-id", &(c + 1).to_string()]);
        assert!(out.status.success(), "{out:?}");
        g.kill(c);
    }
    let out = cli(&["remove-coordinator", "--raft-id", &(leader + 1).to_string()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("last member"),
        "{out:?}"
    );
    // The one-member group still serves writes.
    let r = http().put(g.url(leader, "alone")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
