#!/usr/bin/env python3
"""Summary of scripts/raft-bench.sh's rounds: medians of one vs three coordinators, and the
coordinators' CPU per request, which says how far three can grow at equal CPU each.

Reads OUT/{one,three}-KIND-{put,get}-ROUND.json (`tessera bench --json`) and the .cpu file
beside each (ms of CPU per coordinator and the nodes' sum while that run ran); writes
OUT/summary.txt.

Usage: raft-bench-summary.py OUT_DIR
"""
import glob
import json
import statistics
import sys

out = sys.argv[1]


def runs(name, kind, op):
    """(figures, cpu) of every round of one phase."""
    found = []
    for f in sorted(glob.glob(f"{out}/{name}-{kind}-{op}-*.json")):
        cpu = json.load(open(f[: -len(".json")] + ".cpu"))
        found.append((json.load(open(f))[op], cpu))
    return found


def median(values):
    return statistics.median(values) if values else float("nan")


def cpu_per_op(found):
    """Median ms of CPU per request: every coordinator together, the leader, each follower
    (mean of the followers), the nodes together."""
    total, leader, follower, nodes = [], [], [], []
    for fig, cpu in found:
        n = fig["ok"] or 1
        coords = cpu["coordinators"]
        total.append(sum(coords) / n)
        lead = cpu["leader"] - 1
        leader.append(coords[lead] / n)
        rest = [c for i, c in enumerate(coords) if i != lead]
        if rest:
            follower.append(sum(rest) / len(rest) / n)
        nodes.append(cpu["nodes"] / n)
    return median(total), median(leader), median(follower), median(nodes)


rows = []
unit = {"small16": "objects_per_s", "small64": "objects_per_s", "large": "mb_per_s"}
for kind in ["small16", "small64", "large"]:
    for op in ["put", "get"]:
        one, three = runs("one", kind, op), runs("three", kind, op)
        if not one or not three:
            continue
        a = [round(f[unit[kind]], 1) for f, _ in one]
        b = [round(f[unit[kind]], 1) for f, _ in three]
        ma, mb = median(a), median(b)
        rows.append(f"{kind:8} {op} {unit[kind]:14} one {ma:9.1f} {a}  three {mb:9.1f} {b}  ratio {mb / ma:.2f}")
        t1, _, _, n1 = cpu_per_op(one)
        t3, l3, f3, n3 = cpu_per_op(three)
        rows.append(
            f"{'':8} {op} CPU ms per request: coordinators one {t1:.3f}, three {t3:.3f} "
            f"(leader {l3:.3f}, a follower {f3:.3f}): x{t3 / t1:.2f}; nodes one {n1:.3f}, three {n3:.3f}"
        )

# Where the three's small PUT goes at equal CPU each: its coordinators together spend X times
# one coordinator's CPU per PUT, so at the same CPU each the three reach at most 3 / X of one's
# rate (the work spread evenly; a leader doing more than a third lowers it). The single
# coordinator at each of the three's share of the clients splits X into what smaller segments
# cost (each of the three fills its segments from a third of the clients) and what replication
# costs (every commit logged and applied three times, forwarded, sent to two followers).
for kind, share in [("small16", "small5"), ("small64", "small21")]:
    one, three, alone = runs("one", kind, "put"), runs("three", kind, "put"), runs("one", share, "put")
    if not one or not three or not alone:
        continue
    t1, t3, ts = cpu_per_op(one)[0], cpu_per_op(three)[0], cpu_per_op(alone)[0]
    rate = median([f["objects_per_s"] for f, _ in alone])
    rows.append(
        f"{kind} PUT: CPU per PUT, coordinators together: three / one x{t3 / t1:.2f}, so at most "
        f"{3 * t1 / t3:.2f} of one's rate at equal CPU each; of that x{t3 / t1:.2f}, one coordinator "
        f"at a third of the clients ({share}: {ts:.3f} ms, {rate:.0f} PUT/s) x{ts / t1:.2f} "
        f"(smaller segments), replication x{t3 / ts:.2f}"
    )

text = "\n".join(rows) + "\n"
print(text, end="")
open(f"{out}/summary.txt", "w").write(text)
