//! Data protection as backup tools use it: versioning (every overwrite and delete kept,
//! delete markers, suspension, version listings) and tags, through boto3
//! (tests/clients/versions_and_tags.py), awscli and rclone (tests/clients/version_clients.sh);
//! object lock as an immutable backup repository uses it (tests/clients/immutable_backup.py);
//! lifecycle rules applied by the leader's worker with a shortened day
//! (tests/clients/lifecycle.py); a versioned storm through three replicated coordinators and
//! a leader kill; lifecycle rules through a leader kill.

mod common;

use common::group::Group;
use common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// boto3 through versioning and tags, every refusal checked to change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn versions_and_tags_through_boto3() {
    let (c, _dir, keys) = start_signed(&["backup"]).await;
    let (key, secret) = keys[0].clone();
    run_client(
        "python3",
        "versions_and_tags.py",
        &[("ENDPOINT", c.endpoint()), ("KEY", key), ("SECRET", secret)],
    )
    .await;
}

/// awscli and rclone list and read old versions the way a restore does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn awscli_and_rclone_read_old_versions() {
    let (c, dir, keys) = start_signed(&["restore"]).await;
    let (key, secret) = keys[0].clone();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    run_client(
        "bash",
        "version_clients.sh",
        &[
            ("ENDPOINT", c.endpoint()),
            ("KEY", key),
            ("SECRET", secret),
            ("WORK", work.display().to_string()),
        ],
    )
    .await;
}

/// restic keeps working against a bucket whose default retention locks what it writes:
/// init, backup, `check --read-data`, a second backup, restore identical; its pack files are
/// locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restic_backs_up_into_a_bucket_with_default_retention() {
    let (c, dir, keys) = start_signed(&["restic"]).await;
    let (key, secret) = keys[0].clone();
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    run_client(
        "bash",
        "restic_retention.sh",
        &[
            ("ENDPOINT", c.endpoint()),
            ("KEY", key),
            ("SECRET", secret),
            ("WORK", work.display().to_string()),
        ],
    )
    .await;
}

/// An immutable backup repository: COMPLIANCE-retained versions survive every attempt to
/// remove or weaken them with their bytes intact, and go once the retention has passed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_immutable_backup_repository_keeps_its_versions() {
    let (c, _dir, keys) = start_signed(&["appliance", "writer"]).await;
    run_client("python3", "immutable_backup.py", &two_key_env(&c, &keys)).await;
}

/// Lifecycle rules through boto3 with a one-second lifecycle day: objects, noncurrent
/// versions, lone delete markers and old uploads go when their rules say, nothing else does,
/// a locked version stays; malformed configurations change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_rules_expire_what_they_name_and_nothing_else() {
    let (c, _dir, keys) = start_signed_with(&["archivist"], |cfg| {
        cfg.coordinator.lifecycle_day = std::time::Duration::from_secs(1);
    })
    .await;
    let (key, secret) = keys[0].clone();
    run_client(
        "python3",
        "lifecycle.py",
        &[
            ("ENDPOINT", c.endpoint()),
            ("KEY", key),
            ("SECRET", secret),
            ("ADMIN", c.admin_endpoint()),
            ("ADMIN_TOKEN", c.secrets().admin_token.clone()),
        ],
    )
    .await;
}

/// One acknowledged write of the versioned storm: its key, version id, tag (none for a
/// delete marker) and when it ran.
struct Written {
    key: usize,
    id: String,
    tag: Option<u64>,
    start: Instant,
    end: Instant,
}

/// A storm on a versioned bucket: 32 clients overwrite and delete 16 keys through three
/// replicated coordinators while the leader is SIGKILLed. Afterwards every acknowledged
/// version reads back byte-exact by its id, every acknowledged delete marker is listed, the
/// surviving coordinators list the same versions in the same order, and that order is the
/// order the writes were acknowledged in wherever one ended before the other began; and a
/// metadata rebuild from the nodes alone lists them all again, the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_versioned_storm_through_a_leader_kill_keeps_every_version_in_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &[]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    let h = http();
    assert_eq!(
        h.put(g.url(0, "vstorm")).send().await.unwrap().status(),
        200
    );
    let r = h
        .put(format!("{}?versioning", g.url(0, "vstorm")))
        .body("<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t0 = Instant::now();
    let written = Arc::new(Mutex::new(Vec::<Written>::new()));
    let attempted = Arc::new(Mutex::new(std::collections::HashSet::<u64>::new()));
    let apis: Arc<Vec<String>> = Arc::new(g.api.clone());
    let dead = Arc::new(Mutex::new(None::<usize>));
    let keys = 16u64;
    let mut clients = Vec::new();
    for client in 0..32u64 {
        let (written, attempted, apis, dead) = (
            written.clone(),
            attempted.clone(),
            apis.clone(),
            dead.clone(),
        );
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
                let url = format!("http://{}/vstorm/k{key}", apis[c]);
                let start = Instant::now();
                let (answer, tag) = if n.is_multiple_of(4) {
                    (h.delete(&url).send().await, None)
                } else {
                    attempted.lock().unwrap().insert(tag);
                    let len = if key.is_multiple_of(4) {
                        300 << 10
                    } else {
                        4 << 10
                    };
                    (h.put(&url).body(tagged(tag, len)).send().await, Some(tag))
                };
                let Ok(r) = answer else { continue };
                if !r.status().is_success() {
                    continue;
                }
                let id = r
                    .headers()
                    .get("x-amz-version-id")
                    .map(|v| v.to_str().unwrap().to_string());
                let id = id.expect("a versioned write answers its version id");
                if tag.is_none() {
                    assert_eq!(r.headers()["x-amz-delete-marker"], "true");
                }
                written.lock().unwrap().push(Written {
                    key,
                    id,
                    tag,
                    start,
                    end: Instant::now(),
                });
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    *dead.lock().unwrap() = Some(leader);
    g.kill(leader);
    for c in clients {
        c.await.unwrap();
    }
    g.leader(Duration::from_secs(20)).await;
    let written = std::mem::take(&mut *written.lock().unwrap());
    let attempted = attempted.lock().unwrap().clone();
    let survivors: Vec<usize> = (0..3).filter(|&c| c != leader).collect();
    let lists = [
        all_versions(&g.api[survivors[0]], "vstorm").await,
        all_versions(&g.api[survivors[1]], "vstorm").await,
    ];
    assert!(
        lists[0] == lists[1],
        "the surviving coordinators list the same versions in the same order"
    );
    let listed: std::collections::HashMap<(String, String), bool> = lists[0]
        .iter()
        .map(|(k, id, m)| ((k.clone(), id.clone()), *m))
        .collect();
    let (puts, markers) = (
        written.iter().filter(|w| w.tag.is_some()).count(),
        written.iter().filter(|w| w.tag.is_none()).count(),
    );
    eprintln!(
        "versioned storm: {puts} versions and {markers} delete markers acknowledged, {} listed",
        lists[0].len()
    );
    assert!(puts > 50 && markers > 10, "the storm wrote");
    for w in &written {
        let listed_as = listed.get(&(format!("k{}", w.key), w.id.clone()));
        assert_eq!(
            listed_as,
            Some(&w.tag.is_none()),
            "k{} version {} (acknowledged) is listed as written",
            w.key,
            w.id
        );
        if let Some(tag) = w.tag {
            let url = format!(
                "{}?versionId={}",
                g.url(survivors[0], &format!("vstorm/k{}", w.key)),
                w.id
            );
            let r = h.get(&url).send().await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
            assert_eq!(
                tag_of(&r.bytes().await.unwrap()),
                tag,
                "{url} reads its own write"
            );
        }
    }
    // Writes of one key that did not overlap are in the order they ran.
    for a in &written {
        for b in written.iter().filter(|b| b.key == a.key && a.end < b.start) {
            assert!(
                a.id < b.id,
                "k{}: {} acknowledged before {} began, but ordered after it",
                a.key,
                a.id,
                b.id
            );
        }
    }
    // No listed version that no client wrote (a failed or unanswered PUT may have landed).
    for (key, id, marker) in lists[0].iter().filter(|(_, _, m)| !m) {
        let url = format!(
            "{}?versionId={id}",
            g.url(survivors[1], &format!("vstorm/{key}"))
        );
        let r = h.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url} ({marker})");
        assert!(
            attempted.contains(&tag_of(&r.bytes().await.unwrap())),
            "{url}"
        );
    }
    // A metadata rebuild from the nodes alone (every coordinator's metadata lost) gives the
    // same versions and delete markers with the same ids in the same order.
    let now_leader = g.leader(Duration::from_secs(20)).await;
    g.settled(now_leader).await;
    let report = g.rebuild_alone(survivors[0]).await;
    let rebuilt = all_versions(&g.api[survivors[0]], "vstorm").await;
    assert!(
        rebuilt == lists[0],
        "a rebuild lists the same versions ({report}): {} before, {} after",
        lists[0].len(),
        rebuilt.len()
    );
}

/// Lifecycle rules are applied by whichever coordinator leads: a rule set just before the
/// leader is SIGKILLed still expires what it names through the new leader (its cursor is in
/// the replicated metadata), the rest stays byte-exact, and both survivors agree.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_rules_outlive_a_leader_kill() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Group::start(dir.path(), &["--lifecycle-day", "2s"]).await;
    let leader = g.leader(Duration::from_secs(30)).await;
    let h = http();
    let first = (leader + 1) % 3;
    assert_eq!(
        h.put(g.url(first, "lcb")).send().await.unwrap().status(),
        200
    );
    let mut kept = Vec::new();
    for i in 0..60u64 {
        let (name, body) = (format!("tmp/{i}"), tagged(i, 3000));
        assert_eq!(
            h.put(g.url(first, &format!("lcb/{name}")))
                .body(body)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let (name, body) = (format!("keep/{i}"), tagged(1000 + i, 3000));
        assert_eq!(
            h.put(g.url(first, &format!("lcb/{name}")))
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        kept.push((name, body));
    }
    let rule = "<LifecycleConfiguration><Rule><ID>tmp</ID><Status>Enabled</Status><Filter><Prefix>tmp/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>";
    let r = h
        .put(format!("{}?lifecycle", g.url(first, "lcb")))
        .body(rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    g.kill(leader);
    g.leader(Duration::from_secs(20)).await;
    let survivors: Vec<usize> = (0..3).filter(|&c| c != leader).collect();
    let listed = |c: usize| {
        let url = format!("{}?list-type=2&prefix=tmp/", g.url(c, "lcb"));
        async move {
            let text = http().get(url).send().await.unwrap().text().await.unwrap();
            xml_values(&text, "Key").len()
        }
    };
    let (a, b) = (survivors[0], survivors[1]);
    let gone = eventually(Duration::from_secs(60), || async {
        listed(a).await == 0 && listed(b).await == 0
    })
    .await;
    assert!(
        gone,
        "the new leader expired tmp/: {} and {} left",
        listed(a).await,
        listed(b).await
    );
    for c in survivors {
        for (name, body) in &kept {
            let (status, got) = get(&g.url(c, &format!("lcb/{name}"))).await;
            assert_eq!(status, 200, "{name} on coordinator {c}");
            assert!(got == *body, "{name} intact on coordinator {c}");
        }
    }
}
