//! Long operator tasks across a leader change, on real processes: three replicated
//! coordinators and six nodes; the leader is SIGKILLed while a drain, then a recode, is half
//! done. The new leader resumes each from the metadata; every object reads back exact through
//! every coordinator, nothing stays in flight or uncollected, and the counters equal a
//! recount.

mod common;

use common::assert_exact;
use common::data;
use common::eventually;
use common::group::Group;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// `tessera ARGS` against every member's admin address.
fn cli(g: &Group, args: &[&str]) -> (i32, String) {
    let token = std::fs::read_to_string(g.dir.join("coord").join("admin.token")).unwrap();
    let out = Command::new(BIN)
        .env("TESSERA_ADMIN_TOKEN", token.trim())
        .env("TESSERA_COORDINATOR", g.admin_list())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

async fn admin_get(g: &Group, i: usize, path: &str) -> serde_json::Value {
    let r = g
        .admin_http()
        .get(format!("http://{}{path}", g.admin[i]))
        .send()
        .await
        .unwrap();
    r.json().await.unwrap()
}

/// Every object reads back exact through every live coordinator, and has code `ec`.
async fn check_all(g: &Group, want: &BTreeMap<String, Vec<u8>>, ec: Option<&str>) {
    for i in (0..3).filter(|&i| g.coords[i].is_some()) {
        for (k, v) in want {
            let r = http()
                .get(g.url(i, &format!("ops/{k}")))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "GET ops/{k} through member {i}");
            let code = r
                .headers()
                .get("x-tessera-ec")
                .map(|h| h.to_str().unwrap().to_string());
            let got = r.bytes().await.unwrap();
            assert!(got[..] == v[..], "ops/{k} through member {i}: wrong bytes");
            if let Some(ec) = ec {
                assert_eq!(code.as_deref(), Some(ec), "ops/{k}'s code");
            }
        }
    }
}

/// The worker `name`'s items done so far, as member `i` reports.
async fn done_by(g: &Group, i: usize, name: &str) -> u64 {
    admin_get(g, i, "/workers").await["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .and_then(|w| w["done"].as_u64())
        .unwrap_or(0)
}

/// Kills the leader; returns the new leader once one is elected among the survivors.
async fn kill_leader(g: &mut Group) -> usize {
    let l = g.leader(Duration::from_secs(30)).await;
    g.kill(l);
    let n = g.leader(Duration::from_secs(30)).await;
    assert_ne!(n, l);
    n
}

/// Nothing in flight, no garbage left, and every counter and the index by node equal a
/// recount, on member `i`.
async fn nothing_leaked(g: &Group, i: usize, when: &str) {
    g.settled(i).await;
    assert_exact(&g.admin_http(), &g.admin[i], when).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn drain_and_recode_resume_on_the_next_leader() {
    let dir = tempfile::tempdir().unwrap();
    // 3+2 so that five nodes still hold a whole stripe once one is drained.
    let mut g = Group::start(dir.path(), &["--ec", "3+2"]).await;
    let l = g.leader(Duration::from_secs(30)).await;
    let r = http().put(g.url(l, "ops")).send().await.unwrap();
    assert_eq!(r.status(), 200, "create bucket");
    let mut want = BTreeMap::new();
    for n in 0..24usize {
        let body = data(300 << 10, 500 + n as u64);
        let key = format!("key{n:03}");
        let r = http()
            .put(g.url(n % 3, &format!("ops/{key}")))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "PUT {key}");
        want.insert(key, body);
    }
    let node = admin_get(&g, l, "/cluster").await["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A drain, slowed by the maintenance budget, loses its leader half-way.
    let (code, out) = cli(&g, &["maintenance", "--rate", "1MB"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(&g, &["node", "drain", &node, "--no-wait"]);
    assert_eq!(code, 0, "drain: {out}");
    assert!(
        eventually(Duration::from_secs(60), || async {
            done_by(&g, l, "drain").await > 0
        })
        .await,
        "the drain moves objects"
    );
    let before = admin_get(&g, l, &format!("/cluster/nodes/{node}")).await;
    assert!(
        before["objects"].as_u64().unwrap() > 0,
        "the leader dies with the drain half done: {before}"
    );
    let n = kill_leader(&mut g).await;
    cli(&g, &["maintenance", "--rate", "0"]);
    let drained = eventually(Duration::from_secs(120), || async {
        let s = admin_get(&g, n, &format!("/cluster/nodes/{node}")).await;
        s["state"] == "drained" && s["objects"] == 0
    })
    .await;
    assert!(
        drained,
        "the new leader finished the drain (it held {} objects when the leader died); logs in {}",
        before["objects"],
        dir.path().display()
    );
    check_all(&g, &want, None).await;
    nothing_leaked(&g, n, "after the drain").await;

    // The killed member comes back; a recode loses its leader half-way too.
    g.restart(l);
    let (code, out) = cli(&g, &["maintenance", "--rate", "1MB"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli(
        &g,
        &["recode", "--bucket", "ops", "--ec", "2+2", "--no-wait"],
    );
    assert_eq!(code, 0, "recode: {out}");
    let leader = g.leader(Duration::from_secs(30)).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            done_by(&g, leader, "recode").await > 0
        })
        .await,
        "the recode moves objects"
    );
    let jobs = admin_get(&g, leader, "/recode").await;
    assert!(
        jobs["jobs"].as_array().is_some_and(|j| !j.is_empty()),
        "the leader dies with the recode half done: {jobs}"
    );
    let n = kill_leader(&mut g).await;
    cli(&g, &["maintenance", "--rate", "0"]);
    let finished = eventually(Duration::from_secs(120), || async {
        admin_get(&g, n, "/recode").await["jobs"]
            .as_array()
            .is_some_and(|j| j.is_empty())
    })
    .await;
    assert!(
        finished,
        "the new leader finished the recode; logs in {}",
        dir.path().display()
    );
    check_all(&g, &want, Some("2+2")).await;
    nothing_leaked(&g, n, "after the recode").await;
}
