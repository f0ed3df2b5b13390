//! Full nodes, on real processes with one node's data dir on a small filesystem of its own (a
//! tmpfs the test mounts; where it cannot, the test says so and skips): with enough other
//! nodes, writes pass the full node by and keep full redundancy; without, writes are still
//! acknowledged at the quorum but `/health/ready`, the metrics and `tessera status` say they
//! are degraded, the node keeps its reserve, and once space is freed repair restores
//! redundancy. A node above the high watermark has shards moved off it.

mod common;

use common::procs::ProcCluster;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const MIB: usize = 1 << 20;

/// A tmpfs of its own mounted at a node's data dir, unmounted when dropped.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, mib: usize) -> Result<SmallFs, String> {
        std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(SmallFs(dir.to_path_buf()))
    }

    /// Bytes the filesystem still has free.
    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Node 0 on a `mib` MiB filesystem, `nodes` nodes, a coordinator passing by nodes with
/// less than `min_free` free; `None` where a tmpfs cannot be mounted.
async fn cluster(
    dir: &Path,
    nodes: usize,
    mib: usize,
    min_free: &str,
) -> Option<(ProcCluster, SmallFs)> {
    cluster_with(dir, nodes, mib, &["--min-free", min_free]).await
}

/// [`cluster`] with the coordinator's arguments given.
async fn cluster_with(
    dir: &Path,
    nodes: usize,
    mib: usize,
    coordinator: &[&str],
) -> Option<(ProcCluster, SmallFs)> {
    let fs = match SmallFs::mount(&dir.join("n0"), mib) {
        Ok(fs) => fs,
        Err(e) => {
            eprintln!("SKIPPED: a small filesystem cannot be mounted here ({e}); run as root");
            return None;
        }
    };
    let c = ProcCluster::start_full(
        dir,
        nodes,
        coordinator,
        // Nodes not much larger than the small one, so placement (weighted by free space)
        // sends it a share.
        &["--reserve", "2MiB", "--capacity", "128MiB"],
    )
    .await;
    Some((c, fs))
}

async fn put_objects(c: &ProcCluster, count: usize) {
    assert_eq!(common::put(&c.url("full"), vec![]).await.0, 200);
    for i in 0..count {
        let (s, body) = common::put(
            &c.url(&format!("full/o{i}")),
            common::data(4 * MIB, i as u64),
        )
        .await;
        assert_eq!(s, 200, "object {i}: {body}");
    }
}

/// Writes 4 MiB objects `full/o{i}` until `reached` holds for `/cluster` (looked at after each),
/// then until `more(count then)` are written, at most `max` in all; returns how many were
/// written and after how many `reached` first held.
async fn write_until(
    c: &ProcCluster,
    max: usize,
    reached: impl Fn(&serde_json::Value) -> bool,
    more: impl Fn(usize) -> usize,
) -> (usize, Option<usize>) {
    let (mut written, mut at) = (0, None);
    while written < max && at.is_none_or(|a| written < more(a)) {
        let (s, body) = common::put(
            &c.url(&format!("full/o{written}")),
            common::data(4 * MIB, written as u64),
        )
        .await;
        assert_eq!(s, 200, "object {written}: {body}");
        written += 1;
        if at.is_none() && reached(&c.cluster_json().await) {
            at = Some(written);
        }
    }
    (written, at)
}

async fn read_back(c: &ProcCluster, range: std::ops::Range<usize>) {
    for i in range {
        let (s, b) = common::get(&c.url(&format!("full/o{i}"))).await;
        assert_eq!(s, 200, "object {i}");
        assert!(b == common::data(4 * MIB, i as u64), "object {i} differs");
    }
}

/// `/health/ready`'s status and body.
async fn ready(c: &ProcCluster) -> (u16, serde_json::Value) {
    let r = common::http()
        .get(format!("http://{}/health/ready", c.admin))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// Seven nodes, one on a 30 MiB filesystem: once it has less than 24 MiB free, new shards go
/// to the other six, every object keeps all six shards, and the node shows as full.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_node_is_passed_by_while_others_have_room() {
    let dir = tempfile::tempdir().unwrap();
    let Some((c, fs)) = cluster(dir.path(), 7, 30, "24MiB").await else {
        return;
    };
    assert_eq!(common::put(&c.url("full"), vec![]).await.0, 200);
    let id0 = c.node_id(0).await;
    let node0 = |v: &serde_json::Value| {
        v["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id0.as_str())
            .unwrap()
            .clone()
    };
    // Write until the small node is full (placement is weighted by free space, so when it
    // fills is a matter of chance), then as many again.
    let (written, full_at) = write_until(&c, 100, |v| node0(v)["full"] == true, |f| 2 * f).await;
    let n0 = node0(&c.cluster_json().await);
    assert!(full_at.is_some() && n0["full"] == true, "{n0}");
    assert!(fs.available() > MIB as u64, "the node used its reserve");
    // Every object has all six shards: a repair finds nothing to do.
    let (code, out, _) = c.repair_cli(&["--dry-run", "--json"]);
    assert_eq!(code, 0, "objects left degraded: {out}");
    assert_eq!(c.metric("tessera_writes_short_total").await, 0.0);
    // Still ready, saying which node is full; `tessera status` warns.
    let (status, body) = ready(&c).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["warnings"].to_string().contains(&id0), "{body}");
    let (code, out, _) = c.cli(&["status"]);
    assert_eq!(code, 0);
    assert!(out.contains("warning:") && out.contains(&id0), "{out}");
    read_back(&c, 0..written).await;
}

/// Node 0's share of what it could hold, as `/cluster` reports it: `used / (used + free)`.
fn fullness(cluster: &serde_json::Value, id: &str) -> f64 {
    let n = cluster["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap();
    let (used, free) = (n["used"].as_f64().unwrap(), n["free"].as_f64().unwrap());
    used / (used + free).max(1.0)
}

/// Seven nodes, one on a 30 MiB filesystem, a high watermark of 0.5: once that node is more
/// than half full, shards move off it until it is below again, every object keeps all six
/// shards and reads back exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shards_move_off_a_node_above_the_high_watermark() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["--min-free", "1MiB", "--high-watermark", "0.5"];
    let Some((c, _fs)) = cluster_with(dir.path(), 7, 30, &args).await else {
        return;
    };
    assert_eq!(common::put(&c.url("full"), vec![]).await.0, 200);
    let id0 = c.node_id(0).await;
    // Write until node 0 is seen above the mark (placement weights it by its free space, so
    // when is a matter of chance), and a few more.
    let (written, over_at) = write_until(&c, 60, |v| fullness(v, &id0) > 0.5, |o| o + 4).await;
    assert!(over_at.is_some(), "node 0 never passed the mark");
    // The worker moves shards off it; once their old copies are collected it is below.
    let t = std::time::Instant::now();
    loop {
        let f = fullness(&c.cluster_json().await, &id0);
        if f <= 0.5 && c.metric("tessera_watermark_moved_shards_total").await > 0.0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "node 0 still {f:.2} full: {}",
            c.admin_json("/workers").await
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Nothing degraded, nothing lost.
    let (code, out, _) = c.repair_cli(&["--dry-run", "--json"]);
    assert_eq!(code, 0, "objects left degraded: {out}");
    read_back(&c, 0..written).await;
}

/// Six nodes for 4+2, one on a 24 MiB filesystem: once it is full, writes are still
/// acknowledged (write quorum 5) but counted, `/health/ready` says they are degraded and a
/// repair reports them; the node keeps its reserve and refuses more. Deleting objects frees
/// its space, and repair then restores full redundancy.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writes_degrade_visibly_on_full_nodes_and_recover_once_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let Some((c, fs)) = cluster(dir.path(), 6, 24, "8MiB").await else {
        return;
    };
    put_objects(&c, 30).await;
    assert!(
        c.metric("tessera_writes_short_total").await > 0.0,
        "no write was counted short"
    );
    assert!(fs.available() > MIB as u64, "the node used its reserve");
    let (status, body) = ready(&c).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["warnings"].to_string().contains("degraded"), "{body}");
    let (code, out, _) = c.repair_cli(&["--dry-run", "--json"]);
    assert_eq!(code, 1, "a repair found nothing degraded: {out}");
    read_back(&c, 0..30).await;
    // Deleting most objects frees the node's space (garbage collection removes their
    // shards); a repair then rebuilds the missing shards of the rest.
    for i in 0..24 {
        let r = common::http()
            .delete(c.url(&format!("full/o{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let t = std::time::Instant::now();
    loop {
        let (code, out, err) = c.repair_cli(&["--json", "--grace", "0s"]);
        if code == 0 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "redundancy not restored after space was freed: {out} {err}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (code, out, _) = c.repair_cli(&["--dry-run", "--json"]);
    assert_eq!(code, 0, "{out}");
    read_back(&c, 24..30).await;
}
