//! `tessera status`: nodes, the replicated group, repair and the workers.

use super::global::Global;
use super::maintenance::print_workers;
use tessera_coordinator::edge::admin::ClusterOverview;
use tessera_coordinator::repair::RepairStatus;
use tessera_node::worker::WorkerList;

/// Prints the cluster's state (or, with `--json`, `{cluster, repair, workers}`).
pub async fn run(g: &Global) -> anyhow::Result<i32> {
    let admin = g.admin().await?;
    let cluster: ClusterOverview = admin.get("/cluster").await?;
    let repair: RepairStatus = admin.get("/repair").await?;
    let workers: WorkerList = admin.get("/workers").await?;
    if g.json {
        let all = serde_json::json!({ "cluster": cluster, "repair": repair, "workers": workers });
        println!("{all}");
        return Ok(0);
    }
    println!(
        "{:<18} {:<22} {:<10} {:<9} {:>14} {:>16} {:>8}",
        "NODE", "ADDRESS", "ZONE", "STATE", "USED", "FREE", "SCRUBBED"
    );
    for n in &cluster.nodes {
        println!(
            "{:<18} {:<22} {:<10} {:<9} {:>14} {:>16} {:>8}",
            n.id.as_str(),
            n.address,
            n.zone,
            if n.full { "full" } else { n.state.as_str() },
            n.used,
            n.free,
            n.scrub.shards_checked
        );
    }
    let full: Vec<&str> = cluster
        .nodes
        .iter()
        .filter(|n| n.full)
        .map(|n| n.id.as_str())
        .collect();
    if !full.is_empty() {
        println!(
            "warning: {} full (below the coordinator's --min-free): new shards go elsewhere while other nodes have room, and writes lose redundancy when none do",
            full.join(", ")
        );
    }
    if let Some(raft) = &cluster.raft {
        let leader = raft.leader.map_or("none".to_string(), |l| l.to_string());
        println!("\ncoordinators: leader {leader}, term {}", raft.term);
        println!(
            "{:<6} {:<30} {:<12} {:>14} {:>14}",
            "ID", "ADMIN URL", "ROLE", "LAST LOG", "APPLIED"
        );
        let idx = |i: Option<u64>| i.map_or("-".to_string(), |i| i.to_string());
        for m in &raft.members {
            println!(
                "{:<6} {:<30} {:<12} {:>14} {:>14}",
                m.id,
                m.admin_url,
                m.role,
                idx(m.last_log_index),
                idx(m.applied_index)
            );
        }
        println!();
    }
    println!(
        "in-flight writes {}, garbage records {}, repair queue {}, suspect shards {}",
        cluster.objects_in_flight, cluster.garbage, repair.queue, repair.suspect_shards
    );
    if let Some(scan) = &repair.last_scan {
        let ago = tessera_coordinator::meta::now_ms().saturating_sub(scan.finished_ms);
        println!(
            "last background scan ({} s ago): {} objects, degraded {}, unrecoverable {}",
            ago / 1000,
            scan.objects_scanned,
            scan.degraded,
            scan.unrecoverable.len()
        );
        for o in &scan.unrecoverable {
            println!("  unrecoverable: {o}");
        }
    }
    if let Some(last) = &repair.last_run {
        println!(
            "last repair run: degraded {}, repaired {}, unrecoverable {}",
            last.degraded,
            last.repaired,
            last.unrecoverable.len()
        );
    }
    println!();
    print_workers(&workers);
    Ok(0)
}
