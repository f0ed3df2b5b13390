//! Placement: which nodes hold an object's shards, for a new write ([`place`]) and for the
//! shards a repair rebuilds ([`repair_targets`]).
//!
//! Weighted rendezvous hashing picks an order of nodes for a seed (each node draws an
//! exponential "arrival time" scaled by its free space; earliest first), then shards are dealt
//! round-robin over zones in that order, so every zone gets at most `ceil(n / zones)` shards
//! when the zones have enough nodes. The result depends only on the seed and the candidate
//! set, so it is deterministic for a given cluster state.

use std::collections::{HashMap, HashSet};
use tessera_node::NodeId;

/// A node that may receive shards.
#[derive(Clone, Debug)]
pub struct Candidate {
    /// Node id.
    pub id: NodeId,
    /// Failure domain.
    pub zone: String,
    /// Free bytes (the weight); nodes with 0 are never chosen.
    pub free: u64,
}

/// [`place`] among the nodes with at least `min_free` bytes free when enough of them (`n`)
/// can take the shards; otherwise among every node with room (fuller nodes take shards
/// rather than a write losing redundancy).
pub fn place_with_room(
    candidates: &[Candidate],
    seed: &[u8],
    n: usize,
    min_free: u64,
) -> Vec<NodeId> {
    let roomy: Vec<Candidate> = candidates
        .iter()
        .filter(|c| c.free >= min_free.max(1))
        .cloned()
        .collect();
    if roomy.len() >= n {
        return place(&roomy, seed, n);
    }
    place(candidates, seed, n)
}

/// Chooses up to `n` distinct nodes for `seed`, spread over zones, weighted by free space.
pub fn place(candidates: &[Candidate], seed: &[u8], n: usize) -> Vec<NodeId> {
    let mut scored: Vec<(f64, &Candidate)> = candidates
        .iter()
        .filter(|c| c.free > 0)
        .map(|c| {
            let mut h = blake3::Hasher::new();
            h.update(seed);
            h.update(c.id.as_str().as_bytes());
            let x = u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap());
            // Uniform in (0, 1]; -ln(u) / weight is an exponential race won by heavier nodes
            // proportionally to their weight.
            let u = ((x >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            (-u.ln() / c.free as f64, c)
        })
        .collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    // Zones in order of their best node; each zone's nodes in score order.
    let mut zones: Vec<(&str, Vec<&Candidate>)> = Vec::new();
    for (_, c) in &scored {
        match zones.iter_mut().find(|(z, _)| *z == c.zone) {
            Some((_, list)) => list.push(c),
            None => zones.push((&c.zone, vec![c])),
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut round = 0;
    while out.len() < n {
        let mut took = false;
        for (_, list) in &zones {
            if let Some(c) = list.get(round) {
                out.push(c.id.clone());
                took = true;
                if out.len() == n {
                    break;
                }
            }
        }
        if !took {
            break;
        }
        round += 1;
    }
    out
}

/// Chooses a node for each lost shard of a part whose shards are on `current` (index ->
/// node): up (a candidate), not already holding another shard of the part, the shard's own
/// node first when it is up, then the zone with the fewest of the part's shards, then the most
/// free space. Shards no node can take are left out.
pub fn repair_targets(
    candidates: &[Candidate],
    current: &[Option<NodeId>],
    lost: &[usize],
) -> Vec<(u16, NodeId)> {
    let zone_of: HashMap<&NodeId, &str> = candidates
        .iter()
        .map(|n| (&n.id, n.zone.as_str()))
        .collect();
    let mut taken: HashSet<NodeId> = current
        .iter()
        .enumerate()
        .filter(|(i, _)| !lost.contains(i))
        .filter_map(|(_, n)| n.clone())
        .collect();
    let mut zone_load: HashMap<&str, usize> = HashMap::new();
    for n in &taken {
        if let Some(z) = zone_of.get(n) {
            *zone_load.entry(z).or_default() += 1;
        }
    }
    let mut out = Vec::new();
    for &i in lost {
        let own = current[i]
            .clone()
            .filter(|n| zone_of.contains_key(n) && !taken.contains(n));
        let pick = own.or_else(|| {
            candidates
                .iter()
                .filter(|n| !taken.contains(&n.id) && n.free > 0)
                .min_by_key(|n| {
                    (
                        zone_load.get(n.zone.as_str()).copied().unwrap_or(0),
                        u64::MAX - n.free,
                        n.id.clone(),
                    )
                })
                .map(|n| n.id.clone())
        });
        if let Some(node) = pick {
            if let Some(z) = zone_of.get(&node) {
                *zone_load.entry(z).or_default() += 1;
            }
            taken.insert(node.clone());
            out.push((i as u16, node));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::{HashMap, HashSet};

    fn nodes(count: usize, zones: usize) -> Vec<Candidate> {
        (0..count)
            .map(|i| Candidate {
                id: format!("node{i:02}").parse().unwrap(),
                zone: format!("z{}", i % zones),
                free: 1 << 30,
            })
            .collect()
    }

    proptest! {
        #[test]
        fn distinct_spread_deterministic(count in 1usize..20, zones in 1usize..8, n in 1usize..20, seed: u64) {
            let c = nodes(count, zones.min(count));
            let s = seed.to_le_bytes();
            let p = place(&c, &s, n);
            prop_assert_eq!(p.len(), n.min(count));
            prop_assert_eq!(p.iter().collect::<HashSet<_>>().len(), p.len());
            prop_assert_eq!(&p, &place(&c, &s, n));
            let z = zones.min(count);
            let mut per_zone: HashMap<String, usize> = HashMap::new();
            for id in &p {
                let zone = c.iter().find(|x| &x.id == id).unwrap().zone.clone();
                *per_zone.entry(zone).or_default() += 1;
            }
            // With equal zone sizes, no zone holds more than its fair share.
            if count % z == 0 {
                for v in per_zone.values() {
                    prop_assert!(*v <= p.len().div_ceil(z));
                }
            }
        }
    }

    #[test]
    fn full_nodes_are_skipped_and_weight_matters() {
        let mut c = nodes(6, 6);
        c[0].free = 0;
        for s in 0u64..50 {
            assert!(!place(&c, &s.to_le_bytes(), 5).contains(&c[0].id));
        }
        // Below the minimum free space a node is passed over while enough others have room,
        // and used when they do not.
        let mut low = c.clone();
        low[2].free = 10;
        for seed in 0..50u32 {
            let p = place_with_room(&low, &seed.to_le_bytes(), 3, 1 << 20);
            assert!(!p.contains(&low[2].id), "{p:?}");
            // Five nodes with room (one has none at all): all five, the low one too.
            let p = place_with_room(&low, &seed.to_le_bytes(), 5, 1 << 20);
            assert_eq!(p.len(), 5);
            assert!(p.contains(&low[2].id) && !p.contains(&low[0].id), "{p:?}");
        }
        // A node with 100x the free space wins the first slot far more often.
        let mut c = nodes(2, 1);
        c[1].free = 100 << 30;
        let wins = (0u64..1000)
            .filter(|s| place(&c, &s.to_le_bytes(), 1)[0] == c[1].id)
            .count();
        assert!(wins > 900, "{wins}");
    }
}
