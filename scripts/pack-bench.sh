#!/usr/bin/env bash
# Small objects three ways, on real processes (coordinator + 8 nodes, 4+2, one fresh cluster
# per cell): replicated (--replicate-below 1MiB: 1+2, three copies), packed (the default:
# segments), one object per stripe (--pack-below 0). Per object size: bytes on disk per
# logical byte (du of the node and coordinator dirs, before and after, the second after a
# restart, which flushes every RocksDB memtable and write-ahead log into tables), PUT/s and
# GET/s (tessera bench --concurrency 16), GET/s with 2 nodes SIGKILLed, and repair bytes read
# per byte rebuilt (tessera repair --grace 0s). Then the space compaction gives back: N small
# packed objects, 90% deleted, tessera compact, garbage collected, flushed.
# Usage: scripts/pack-bench.sh [RUNS=3] [OBJECTS=2000] [SIZES="4KiB 32KiB 100KiB"] [DELETE_OBJECTS=20000]
# (needs a release build). Prints one JSON line per cell and run, then the median table.
set -uo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-3}; N=${2:-2000}; SIZES=${3:-"4KiB 32KiB 100KiB"}; DN=${4:-20000}
BIN=${TESSERA_BIN:-target/release/tessera}
T=$(mktemp -d); declare -A PID PORT
OUT="$T/results.jsonl"; : >"$OUT"
cleanup() { for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
bytes() { python3 -c "import sys;s=sys.argv[1];u={'KiB':1024,'MiB':1<<20}
for k,v in u.items():
  if s.endswith(k): print(int(s[:-3])*v); break
else: print(int(s))" "$1"; }

start() { # start DIR FLAGS...: coordinator + 8 nodes
  local d=$1; shift
  COORD_FLAGS=("$@")
  API=127.0.0.1:$(port); ADMIN=127.0.0.1:$(port)
  mkdir -p "$d"; D=$d
  for i in $(seq 0 7); do PORT[$i]=$(port); done
  relaunch
}
relaunch() {
  "$BIN" coordinator --anonymous --listen "$API" --admin-listen "$ADMIN" --data-dir "$D/c" --heartbeat-timeout 1s \
    --repair-grace 1s --no-background-repair --gc-grace 1s "${COORD_FLAGS[@]}" >/dev/null 2>>"$D/c.log" & PID[c]=$!
  sleep 0.5
  export TESSERA_CLUSTER_SECRET=$(cat "$D/c/cluster.secret") TESSERA_ADMIN_TOKEN=$(cat "$D/c/admin.token")
  for i in $(seq 0 7); do start_node "$i"; done
  for _ in $(seq 1 50); do
    up=$(curl -s -H "authorization: Bearer $TESSERA_ADMIN_TOKEN" "http://$ADMIN/cluster" | python3 -c 'import json,sys;print(sum(n["up"] for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
    [ "$up" = 8 ] && break; sleep 0.2
  done
}
start_node() {
  "$BIN" node --listen "127.0.0.1:${PORT[$1]}" --data-dir "$D/n$1" --coordinator "http://$ADMIN" \
    --zone "z$1" --heartbeat-interval 200ms --scrub-rate 0 --reclaim-interval 1s >/dev/null 2>>"$D/n$1.log" & PID[$1]=$!
}
stop_all() { # SIGINT: every process stops serving, flushes its stores and exits
  for p in "${PID[@]}"; do kill -INT "$p" 2>/dev/null; done
  for p in "${PID[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  wait 2>/dev/null
  PID=()
}
# Sets DU to the cluster's bytes on disk after a restart (reopening a RocksDB writes what its
# write-ahead log held into tables and drops the log), with the cluster running again.
flushed_du() { stop_all; relaunch; sleep 1; DU=$(du -sb "$D" | cut -f1); }
field() { python3 -c "import json,sys;v=json.loads(sys.argv[1]);print(eval(sys.argv[2]))" "$1" "$2"; }

cell() { # cell MODE SIZE RUN
  local mode=$1 size=$2 run=$3 flags
  case $mode in
    replicated) flags=(--replicate-below 1MiB --pack-below 0) ;;
    packed) flags=() ;;
    striped) flags=(--pack-below 0) ;;
  esac
  start "$T/$mode-$size-$run" "${flags[@]}"
  local d0 put d1 deg rep
  d0=$(du -sb "$D" | cut -f1)
  put=$("$BIN" bench --endpoint "http://$API" --bucket small --size "$size" --objects "$N" --concurrency 16 --json)
  flushed_du; d1=$DU
  # GET/s: the median of three passes over every object (after the restart, so no mode is
  # still busy with its writes).
  local gets=()
  for _ in 1 2 3; do
    gets+=("$("$BIN" bench --endpoint "http://$API" --bucket small --size "$size" --objects "$N" --concurrency 16 --skip-put --json)")
  done
  for i in 1 2; do kill -9 "${PID[$i]}"; done
  sleep 2
  deg=$("$BIN" bench --endpoint "http://$API" --bucket small --size "$size" --objects "$N" --concurrency 16 --skip-put --json)
  rep=$("$BIN" repair --coordinator "http://$ADMIN" --grace 0s --json)
  python3 - "$mode" "$size" "$run" "$N" "$(bytes "$size")" "$d0" "$d1" "$put" "$deg" "$rep" "${gets[@]}" >>"$OUT" <<'PY'
import json, statistics, sys
mode, size, run, n, sz, d0, d1 = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:8])
put, deg, rep = (json.loads(x) for x in sys.argv[8:11])
gets = [json.loads(x)["get"]["objects_per_s"] for x in sys.argv[11:]]
print(json.dumps({"mode": mode, "size": size, "run": run,
  "bytes_per_byte": (d1 - d0) / (n * sz),
  "put_per_s": put["put"]["objects_per_s"], "get_per_s": statistics.median(gets),
  "degraded_get_per_s": deg["get"]["objects_per_s"],
  "repair_read_per_byte": rep["bytes_read"] / rep["bytes_written"] if rep["bytes_written"] else None}))
PY
  tail -1 "$OUT"
  stop_all
  rm -rf "$D"
}

reclaim() { # the compaction figure: DN objects of 4 KiB, 90% deleted
  local run=$1
  start "$T/reclaim-$run"
  local d0 d1 d2
  d0=$(du -sb "$D" | cut -f1)
  "$BIN" bench --endpoint "http://$API" --bucket del --size 4KiB --objects "$DN" --concurrency 16 --json >/dev/null
  flushed_du; d1=$DU
  python3 - "http://$API" "$DN" <<'PY'
import concurrent.futures, sys, urllib.request
base, n = sys.argv[1], int(sys.argv[2])
def delete(i):
    urllib.request.urlopen(urllib.request.Request(f"{base}/del/bench/obj-{i:08}", method="DELETE")).read()
with concurrent.futures.ThreadPoolExecutor(16) as ex:
    list(ex.map(delete, [i for i in range(n) if i % 10]))
PY
  "$BIN" compact --coordinator "http://$ADMIN" >/dev/null
  sleep 8 # GC grace, collection, the nodes' reclaim worker
  flushed_du; d2=$DU
  python3 -c "import json,sys;d0,d1,d2=map(int,sys.argv[1:4]);print(json.dumps({'mode':'reclaim','run':int(sys.argv[4]),'stored':d1-d0,'after':d2-d0,'given_back_of_deleted':(d1-d2)/(0.9*(d1-d0))}))" "$d0" "$d1" "$d2" "$run" | tee -a "$OUT"
  stop_all
  rm -rf "$D"
}

for run in $(seq 1 "$RUNS"); do
  for size in $SIZES; do
    for mode in ${MODES:-replicated packed striped}; do cell "$mode" "$size" "$run"; done
  done
  [ "${RECLAIM:-1}" = 1 ] && reclaim "$run"
done

python3 - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(vals): 
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else float("nan")
cells = {}
for r in rows:
    if r["mode"] != "reclaim":
        cells.setdefault((r["size"], r["mode"]), []).append(r)
print("| size | layout | bytes on disk per byte | PUT/s | GET/s | GET/s, 2 nodes down | repair bytes read per byte rebuilt |")
print("|---|---|---|---|---|---|---|")
for (size, mode), rs in cells.items():
    f = lambda k, fmt: fmt.format(med([r[k] for r in rs])) + " (" + ", ".join(fmt.format(r[k]) if r[k] is not None else "-" for r in rs) + ")"
    print(f"| {size} | {mode} | {f('bytes_per_byte', '{:.2f}')} | {f('put_per_s', '{:.0f}')} | {f('get_per_s', '{:.0f}')} | "
          f"{f('degraded_get_per_s', '{:.0f}')} | {f('repair_read_per_byte', '{:.2f}')} |")
rec = [r for r in rows if r["mode"] == "reclaim"]
if rec:
    print()
    print("given back of the deleted bytes after compaction: median {:.2f} ({})".format(
        med([r["given_back_of_deleted"] for r in rec]),
        ", ".join("{:.2f}".format(r["given_back_of_deleted"]) for r in rec)))
PY
