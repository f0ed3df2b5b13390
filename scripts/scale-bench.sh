#!/usr/bin/env bash
# How costs grow with the number of stored objects: one coordinator and seven node processes
# (4+2 on any six, so that one can be drained; 4 KiB objects packed), loaded a run at a time to each count given (default 10000
# 100000 1000000), and at each count: 4 KiB PUT/s, GET/s and HEAD/s of a fresh batch of
# 10,000 (concurrency 32), ListObjectsV2 first-page time at the start, middle and end of the
# key space, the time of /stats, /cluster, /compact, /metrics and a node's drain-progress
# query, coordinator RSS after the console's queries, metadata bytes per object, and the CPU the
# fresh batch cost the coordinator and the nodes (each batch starts once every process is quiet); then the
# same batch again from a flushed store (metadata compacted, nodes restarted gracefully). After the
# last count: GC of 10% deleted, a drain that starts (time to its first moved object; then
# cancelled), and a metadata rebuild from the nodes (objects/s).
# Usage: scripts/scale-bench.sh [OUT_DIR] [COUNT...]   (needs target/release/tessera;
# PORT_BASE=27600: the ports used; POLLS=20: rounds of the console's queries, 3 s apart, before RSS is read; CURVE_ONLY=1: stop
# after the last count's line; PERF=1: record a profile of the coordinator and of the nodes during each fresh
# batch, OUT/perf-{coordinator,nodes}-COUNT.data, for `perf report`)
set -euo pipefail
. "$(dirname "$0")/procs.sh" # ticks, quiet_wait
BIN=${BIN:-$(dirname "$0")/../target/release/tessera}
OUT=${1:-$(mktemp -d)}
shift || true
COUNTS=("${@:-10000 100000 1000000}")
read -r -a COUNTS <<< "${COUNTS[*]}"
mkdir -p "$OUT"
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/token"
TOKEN=$(cat "$OUT/token")
BASE=${PORT_BASE:-27600} # ports BASE, BASE+1 and BASE+11..BASE+17
API=127.0.0.1:$BASE ADMIN=127.0.0.1:$((BASE + 1))

start_coordinator() { # extra args
  "$BIN" coordinator --anonymous --listen $API --admin-listen $ADMIN --data-dir "$OUT/c" \
    --cluster-secret-file "$OUT/secret" --admin-token-file "$OUT/token" "$@" 2>> "$OUT/c.log" &
  COORD=$!
  pids+=($COORD)
}
start_coordinator
start_node() { # j: node j, pids[j]
  "$BIN" node --listen 127.0.0.1:$((BASE + 10 + $1)) --data-dir "$OUT/n$1" \
    --coordinator "http://$ADMIN" --cluster-secret-file "$OUT/secret" 2>> "$OUT/n$1.log" &
  pids[$1]=$!
}
for j in 1 2 3 4 5 6 7; do start_node $j; done
admin() { curl -sf -H "Authorization: Bearer $TOKEN" "http://$ADMIN$1" "${@:2}"; }
timed() { # seconds a GET of admin path $1 takes (median of 5)
  for _ in 1 2 3 4 5; do
    curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "http://$ADMIN$1"
  done | sort -n | sed -n 3p
}
timed_s3() { # seconds a GET of S3 path $1 takes (median of 5)
  for _ in 1 2 3 4 5; do curl -s -o /dev/null -w '%{time_total}\n' "http://$API$1"; done | sort -n | sed -n 3p
}
wait_up() {
  for _ in $(seq 1 300); do
    up=$(admin /cluster | python3 -c 'import json,sys; print(sum(n["state"]=="up" for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
    [ "$up" = 7 ] && return 0
    sleep 0.2
  done
  echo "nodes not up" >&2; exit 1
}
wait_up
ms() { python3 -c "print(round($1 * 1000, 1))"; }
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$COORD/status"; }
HZ=$(getconf CLK_TCK)
hwm() { awk '/VmHWM/ {print int($2 / 1024)}' "/proc/$COORD/status"; } # peak RSS
# Metadata SST bytes after a flush and full compaction of the coordinator's RocksDB.
meta_bytes() {
  admin /metadata/compact -X POST > /dev/null
  admin /metrics | awk '/^tessera_metadata_rocksdb_live_sst_bytes / {print $2}'
}
# fresh LABEL: 10,000 PUTs, GETs and HEADs of 4 KiB into a new bucket (concurrency 32), to
# OUT/fresh-LABEL.json; sets fresh_cpu to the CPU they cost in ms, "coordinator,nodes".
fresh() {
  local c0 n0 p perfs=()
  c0=$(ticks "$COORD"); n0=$(ticks "${pids[@]:1:7}")
  if [ "${PERF:-0}" = 1 ]; then
    perf record -q -F 499 -g -o "$OUT/perf-coordinator-$1.data" -p "$COORD" 2> /dev/null & perfs+=($!)
    perf record -q -F 499 -g -o "$OUT/perf-nodes-$1.data" -p "$(IFS=,; echo "${pids[*]:1:7}")" 2> /dev/null & perfs+=($!)
  fi
  "$BIN" bench --endpoint "http://$API" --bucket "fresh${1/-/}" --size 4KiB --objects 10000 \
    --concurrency 32 --head --json > "$OUT/fresh-$1.json"
  for p in "${perfs[@]}"; do kill -INT "$p"; wait "$p" || true; done
  fresh_cpu="$(( ($(ticks "$COORD") - c0) * 1000 / HZ )),$(( ($(ticks "${pids[@]:1:7}") - n0) * 1000 / HZ ))"
}
NODE=$(admin /cluster | python3 -c 'import json,sys; print(json.load(sys.stdin)["nodes"][0]["id"])')

have=0
echo "objects,put_per_s,get_per_s,head_per_s,list_start_ms,list_mid_ms,list_end_ms,stats_ms,cluster_ms,compact_ms,metrics_ms,node_ms,rss_mib,meta_bytes_per_object,load_per_s,settle_ms,fresh_cpu_ms_coordinator,fresh_cpu_ms_nodes,flushed_put_per_s,flushed_get_per_s,flushed_head_per_s,flushed_cpu_ms_coordinator,flushed_cpu_ms_nodes" > "$OUT/curve.csv"
for n in "${COUNTS[@]}"; do
  t0=$(date +%s%N)
  if [ "$n" -gt "$have" ]; then
    "$BIN" bench --endpoint "http://$API" --bucket scale --size 4KiB --objects $((n - have)) \
      --start "$have" --prefix s/ --concurrency 32 --skip-get --json > "$OUT/load-$n.json"
  fi
  load=$(( (n - have) * 1000000000 / ( $(date +%s%N) - t0 + 1) ))
  have=$n
  # The fresh batch is measured once the metadata's compactions of the load have finished (at
  # most 5 minutes), so that it shows the rate at this count, not the load's compaction debt.
  settle=$(date +%s%N)
  for _ in $(seq 1 600); do
    busy=$(admin /metrics | awk '/^tessera_metadata_rocksdb_(pending_compaction_bytes|running_compactions) / {s += $2} END {print s + 0}')
    [ "$busy" = 0 ] && break
    sleep 0.5
  done
  # Every process (the nodes' own compactions included) quiet, at most 10 minutes.
  quiet_wait 600 "${pids[@]}"
  settled_ms=$(( ($(date +%s%N) - settle) / 1000000 ))
  fresh "$n"
  cpu=$fresh_cpu
  # Again from a flushed store: the coordinator's metadata compacted, the nodes stopped
  # gracefully (which flushes their memtables) and started again. The batch above also pays
  # for flushing and compacting what the load left in memtables and level 0 (work the same
  # writes cost at any count, falling in this batch or the next); this one only for its own.
  admin /metadata/compact -X POST > /dev/null
  for j in 1 2 3 4 5 6 7; do kill -TERM "${pids[$j]}"; done
  for j in 1 2 3 4 5 6 7; do wait "${pids[$j]}" 2> /dev/null || true; start_node $j; done
  wait_up
  quiet_wait 600 "${pids[@]}"
  fresh "$n-flushed"
  cpu_flushed=$fresh_cpu
  rate() { python3 -c "import json; print(round(json.load(open('$OUT/fresh-$n${2:-}.json'))['$1']['objects_per_s']))"; }
  key() { printf 's/%08d' "$1"; }
  ls_start=$(timed_s3 "/scale?list-type=2&max-keys=1000&delimiter=/&prefix=s/")
  ls_mid=$(timed_s3 "/scale?list-type=2&max-keys=1000&prefix=s/&start-after=$(key $((n / 2)))")
  ls_end=$(timed_s3 "/scale?list-type=2&max-keys=1000&prefix=s/&start-after=$(key $((n - 500)))")
  stats=$(timed /stats) cluster=$(timed /cluster) compact=$(timed /compact)
  metrics=$(timed /metrics) node=$(timed "/cluster/nodes/$NODE")
  # The console polls /stats, /cluster, /workers and /repair every 3 s: a minute of it.
  for _ in $(seq 1 "${POLLS:-20}"); do
    for p in /stats /cluster /workers /repair; do admin "$p" > /dev/null; done
    sleep 3
  done
  objects=$(admin /stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["objects"])')
  line="$n,$(rate put),$(rate get),$(rate head),$(ms "$ls_start"),$(ms "$ls_mid"),$(ms "$ls_end"),$(ms "$stats"),$(ms "$cluster"),$(ms "$compact"),$(ms "$metrics"),$(ms "$node"),$(rss),$(( $(meta_bytes) / objects )),$load,$settled_ms,$cpu,$(rate put -flushed),$(rate get -flushed),$(rate head -flushed),$cpu_flushed"
  echo "$line" | tee -a "$OUT/curve.csv"
done

# CURVE_ONLY=1: the curve alone (e.g. to compare allocator settings by RSS).
[ "${CURVE_ONLY:-0}" = 1 ] && exit 0

# GC of 10% deleted (a tenth of the last count's keys, 32 at a time, one HTTP connection each).
last=$have
t0=$(date +%s%N)
python3 - "$API" "$last" <<'EOF'
import concurrent.futures, sys, threading, requests
api, last = sys.argv[1], int(sys.argv[2])
local = threading.local()
def delete(i):
    if not hasattr(local, "s"):
        local.s = requests.Session()
    r = local.s.delete(f"http://{api}/scale/s/{i:08d}")
    assert r.status_code == 204, (i, r.status_code, r.text)
with concurrent.futures.ThreadPoolExecutor(32) as pool:
    list(pool.map(delete, range(0, last, 10), chunksize=256))
EOF
t1=$(date +%s%N)
until [ "$(admin /cluster | python3 -c 'import json,sys; print(json.load(sys.stdin)["garbage"])')" = 0 ]; do sleep 0.5; done
t2=$(date +%s%N)
echo "delete 10%: $(( (t1 - t0) / 1000000 )) ms; garbage collected $(( (t2 - t1) / 1000000 )) ms after"

# Drain: time until the first object has moved, and the progress query; then cancelled.
t0=$(date +%s%N)
admin "/cluster/nodes/$NODE/drain" -X POST > /dev/null
until [ "$(admin /workers | python3 -c 'import json,sys; print(next((w.get("done") or 0) for w in json.load(sys.stdin)["workers"] if w["name"] == "drain"))')" -gt 0 ]; do sleep 0.1; done
echo "drain: first object moved after $(( ($(date +%s%N) - t0) / 1000000 )) ms; progress query $(ms "$(timed "/cluster/nodes/$NODE")") ms"
admin "/cluster/nodes/$NODE/activate" -X POST > /dev/null

# Metadata rebuild from the nodes.
objects=$(admin /stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["objects"])')
kill -9 "$COORD"
wait "$COORD" 2>/dev/null || true
find "$OUT/c" -mindepth 1 -maxdepth 1 ! -name admin.token ! -name cluster.secret -exec rm -rf {} +
t0=$(date +%s%N)
start_coordinator --rebuild-metadata
until admin /cluster 2>/dev/null | python3 -c 'import json,sys; r=json.load(sys.stdin).get("rebuild") or {}; sys.exit(0 if r.get("done") else 1)' 2>/dev/null; do
  kill -0 "$COORD" || { echo "the rebuilding coordinator exited: see $OUT/c.log" >&2; exit 1; }
  sleep 0.5
done
secs=$(python3 -c "print(($(date +%s%N) - $t0) / 1e9)")
took=$(admin /cluster | python3 -c 'import json,sys; print(json.load(sys.stdin)["rebuild"]["elapsed_ms"] / 1000)')
after=$(admin /stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"]["objects"])')
echo "rebuild: $after of $objects objects in $took s after the nodes registered ($secs s from the start) = $(python3 -c "print(round($after / $took))") objects/s; RSS $(rss) MiB after it, $(hwm) MiB at its peak"
echo "curve: $OUT/curve.csv"
