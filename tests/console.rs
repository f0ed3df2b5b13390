//! The web console in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/setup.sh`) loads `/console` from a real process cluster, the figures it shows
//! are checked against the admin API, and screenshots are saved (before and after a node
//! is killed) under the cargo target directory's `tmp/console/`.

mod common;
use common::procs::*;
use common::*;

use std::path::Path;
use std::process::Command;

const MIB: usize = 1 << 20;

/// Runs headless Chromium on `url` with `args` (`--dump-dom`, `--screenshot=...`), letting
/// the page's scripts run for a few seconds of virtual time; returns its stdout.
fn chromium(profile: &Path, url: &str, args: &[&str]) -> String {
    let bin = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|b| Command::new(b).arg("--version").output().is_ok())
        .expect("headless Chromium is needed for the console test: run scripts/setup.sh (Debian package chromium)");
    let out = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--window-size=1400,1100",
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The text of the element marked `data-test="name"` in a dumped DOM.
fn shown(dom: &str, name: &str) -> String {
    let at = dom
        .find(&format!("data-test=\"{name}\""))
        .unwrap_or_else(|| panic!("the console shows no {name}"));
    let rest = &dom[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest[start..].find('<').unwrap();
    rest[start..start + end].trim().to_string()
}

/// The `data-bytes` attribute of the element marked `data-test="name"`.
fn shown_bytes(dom: &str, name: &str) -> u64 {
    let at = dom.find(&format!("data-test=\"{name}\"")).unwrap();
    let tag_start = dom[..at].rfind('<').unwrap();
    let tag = &dom[tag_start..at + dom[at..].find('>').unwrap()];
    let v = tag.split("data-bytes=\"").nth(1).unwrap();
    v[..v.find('"').unwrap()].parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_shows_what_the_admin_api_says_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = ProcCluster::start(dir.path(), 6).await;
    for (bucket, n) in [("photos", 5), ("backups", 3)] {
        assert_eq!(put(&c.url(bucket), vec![]).await.0, 200);
        for i in 0..n {
            let (s, _) = put(
                &c.url(&format!("{bucket}/o{i}")),
                data(MIB + i * 1000, i as u64),
            )
            .await;
            assert_eq!(s, 200);
        }
    }
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&shots).unwrap();
    let token = c.secrets().admin_token;
    let url = format!("http://{}/console#token={token}", c.admin);
    let profile = dir.path().join("chromium");

    // Without the token the page holds nothing and asks for it; the API refuses it.
    let bare = chromium(
        &profile.join("0"),
        &format!("http://{}/console", c.admin),
        &["--dump-dom"],
    );
    assert!(bare.contains("give the admin token"), "{bare}");
    assert!(
        !bare.contains("data-loaded"),
        "nothing loads without the token"
    );

    let stats = c.admin_json("/stats").await;
    assert_eq!(stats["total"]["objects"], 8);
    let cluster = c.cluster_json().await;
    let dom = chromium(&profile.join("1"), &url, &["--dump-dom"]);
    assert!(
        dom.contains("data-loaded=\"1\""),
        "the console loaded its data: {dom}"
    );
    assert_eq!(shown(&dom, "objects-total"), "8");
    assert_eq!(shown(&dom, "objects-photos"), "5");
    assert_eq!(shown(&dom, "objects-backups"), "3");
    assert_eq!(shown(&dom, "nodes-up"), "6");
    assert_eq!(shown(&dom, "nodes-total"), "6");
    assert_eq!(shown(&dom, "default-ec"), "4+2");
    assert_eq!(shown(&dom, "ready"), "yes");
    assert_eq!(
        shown_bytes(&dom, "logical-bytes"),
        stats["total"]["logical_bytes"].as_u64().unwrap()
    );
    assert_eq!(
        shown_bytes(&dom, "stored-bytes"),
        stats["total"]["stored_bytes"].as_u64().unwrap()
    );
    // Stored is 1.5x logical (4+2) and the saving over 3 replicas is half.
    assert!(
        shown(&dom, "saving").ends_with("(50%)"),
        "{}",
        shown(&dom, "saving")
    );
    for n in cluster["nodes"].as_array().unwrap() {
        let id = n["id"].as_str().unwrap();
        assert_eq!(shown(&dom, &format!("state-{id}")), "up");
        assert!(shown_bytes(&dom, &format!("used-{id}")) > 0);
    }
    chromium(
        &profile.join("2"),
        &url,
        &[&format!(
            "--screenshot={}",
            shots.join("console.png").display()
        )],
    );

    // A node dies: the console shows it down.
    let dead = c.kill_node_until_down(2).await;
    let dom = chromium(&profile.join("3"), &url, &["--dump-dom"]);
    assert_eq!(shown(&dom, &format!("state-{dead}")), "down");
    assert_eq!(shown(&dom, "nodes-up"), "5");
    chromium(
        &profile.join("4"),
        &url,
        &[&format!(
            "--screenshot={}",
            shots.join("console-node-down.png").display()
        )],
    );
    for f in ["console.png", "console-node-down.png"] {
        let len = std::fs::metadata(shots.join(f))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(len > 10_000, "screenshot {f} saved ({len} bytes)");
    }
}
