#!/usr/bin/env bash
# What versioning costs: signed PUT and GET rates into a bucket with versioning enabled and
# one without, ROUNDS times, on one `tessera dev` cluster. Every round makes two fresh
# buckets (so neither side inherits the other's history or key placement) and alternates
# which goes first (ABBA); every phase starts once the cluster is idle again (`settle`). The versioned side keeps every overwrite the bench makes as a
# noncurrent version. Prints each round and the median ratio (versioned / unversioned).
#
#   scripts/versioning-bench.sh [ROUNDS] [SECONDS] [SIZE] [CONCURRENCY]
#   e.g. scripts/versioning-bench.sh 6 6 4KiB 16; OBJECTS=24 scripts/versioning-bench.sh 4 8 16MiB 4
# OBJECTS (default 500): the keys each phase cycles over (every one must be written within
# SECONDS: fewer for large objects).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-4}
secs=${2:-6}
size=${3:-4KiB}
conc=${4:-16}
. "$root/scripts/bench-cluster.sh" TKVERSIONBENCH000001 version-bench-secret
# make BUCKET VERSIONED(0/1)
make() {
    python3 - "$s3" "$1" "$2" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:" + sys.argv[1], region_name="us-east-1")
s3.create_bucket(Bucket=sys.argv[2])
if sys.argv[3] == "1":
    s3.put_bucket_versioning(Bucket=sys.argv[2], VersioningConfiguration={"Status": "Enabled"})
EOF
}
run() {
    "$bin" bench --endpoint "http://127.0.0.1:$s3" --bucket "$1" --size "$size" --objects "${OBJECTS:-500}" \
        --duration "${secs}s" --concurrency "$conc" --json
}
results=()
for r in $(seq "$rounds"); do
    make "ver-$r" 1
    make "plain-$r" 0
    order="plain-$r ver-$r"
    [ $((r % 2)) = 0 ] && order="ver-$r plain-$r"
    for b in $order; do
        # Each phase starts on an idle cluster: the work the one before left behind (the
        # unversioned side's overwrites leave garbage and segments to compact, the versioned
        # side's commits a journal to write) is not charged to the next phase.
        waited=$(settle)
        out=$(run "$b")
        put=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["put"]["objects_per_s"], 1))')
        get=$(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["get"]["objects_per_s"], 1))')
        side=${b%%-*}
        echo "round $r $b: PUT/s $put GET/s $get (settled ${waited}s before)"
        results+=("$r $side $put $get")
    done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
by = {}
for r, b, p, g in rows:
    by.setdefault(r, {})[b] = (float(p), float(g))
pr = [v["ver"][0] / v["plain"][0] for v in by.values()]
gr = [v["ver"][1] / v["plain"][1] for v in by.values()]
print("median ratio versioned/unversioned: PUT %.3f  GET %.3f" % (statistics.median(pr), statistics.median(gr)))
'
