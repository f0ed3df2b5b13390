#!/usr/bin/env bash
# The EC-vs-replica comparison: one cluster of real processes (coordinator + 14 nodes), one
# bucket per code (4+2, 10+4, 1+2 = three full replicas), the same object set in each.
# Per code: bytes on disk per logical byte (du of the node dirs), PUT and GET MB/s
# (tessera bench), GET MB/s with m nodes SIGKILLed, repair bytes read per byte rebuilt, and
# CPU seconds (all processes, user+system) per GB written.
# Usage: scripts/compare.sh [OBJECTS=16] [SIZE=16MiB]   (needs a release build)
set -uo pipefail
cd "$(dirname "$0")/.."
N=${1:-16}; SIZE=${2:-16MiB}
BIN=${TESSERA_BIN:-target/release/tessera}
T=$(mktemp -d); declare -A PID PORT
cleanup() { for p in "${PID[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=127.0.0.1:$(port); ADMIN=127.0.0.1:$(port)
"$BIN" coordinator --anonymous --listen "$API" --admin-listen "$ADMIN" --data-dir "$T/c" --heartbeat-timeout 1s \
  --repair-grace 1s --no-background-repair --gc-grace 1s 2>"$T/c.log" & PID[c]=$!
sleep 0.5
export TESSERA_CLUSTER_SECRET=$(cat "$T/c/cluster.secret") TESSERA_ADMIN_TOKEN=$(cat "$T/c/admin.token")
start_node() {
  "$BIN" node --listen "127.0.0.1:${PORT[$1]}" --data-dir "$T/n$1" --coordinator "http://$ADMIN" \
    --zone "z$1" --heartbeat-interval 200ms --scrub-rate 0 2>>"$T/n$1.log" & PID[$1]=$!
}
for i in $(seq 0 13); do PORT[$i]=$(port); start_node "$i"; done
sleep 3
cpu() { # total user+system seconds of every process of the cluster
  local t=0
  for p in "${PID[@]}"; do
    t=$(python3 -c "import os;f=open('/proc/$p/stat').read().rsplit(')',1)[1].split();print($t+(int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK'))" 2>/dev/null || echo "$t")
  done
  echo "$t"
}
disk() { du -sb "$T"/n* | awk '{s += $1} END {print s}'; }
field() { python3 -c "import json,sys;v=json.loads(sys.argv[1]);print(eval(sys.argv[2]))" "$1" "$2"; }
printf "| code | bytes on disk per byte | PUT MB/s | GET MB/s | GET MB/s, m nodes down | repair read per byte rebuilt | CPU s per GB written |\n|---|---|---|---|---|---|---|\n"
for spec in "4+2:2" "10+4:4" "1+2:2"; do
  ec=${spec%:*}; m=${spec#*:}; b=cmp-${ec/+/-}
  d0=$(disk); c0=$(cpu)
  put=$("$BIN" bench --endpoint "http://$API" --bucket "$b" --ec "$ec" --size "$SIZE" --objects "$N" --concurrency 4 --json)
  c1=$(cpu); sync; sleep 1; d1=$(disk)
  logical=$(field "$put" "v['put']['mb_per_s']*v['put']['seconds']*1e6")
  get=$("$BIN" bench --endpoint "http://$API" --bucket "$b" --size "$SIZE" --objects "$N" --concurrency 4 --skip-put --json)
  for i in $(seq 1 "$m"); do kill -9 "${PID[$i]}"; done
  sleep 2
  deg=$("$BIN" bench --endpoint "http://$API" --bucket "$b" --size "$SIZE" --objects "$N" --concurrency 4 --skip-put --json)
  rep=$("$BIN" repair --coordinator "http://$ADMIN" --bucket "$b" --json)
  for i in $(seq 1 "$m"); do start_node "$i"; done
  sleep 3
  python3 - "$ec" "$d0" "$d1" "$logical" "$c0" "$c1" "$put" "$get" "$deg" "$rep" <<'PY'
import json, sys
ec, d0, d1, logical, c0, c1 = sys.argv[1], *map(float, sys.argv[2:7])
put, get, deg, rep = (json.loads(x) for x in sys.argv[7:11])
ratio = rep["bytes_read"] / rep["bytes_written"] if rep["bytes_written"] else float("nan")
print(f"| {ec} | {(d1 - d0) / logical:.2f} | {put['put']['mb_per_s']:.0f} | {get['get']['mb_per_s']:.0f} | "
      f"{deg['get']['mb_per_s']:.0f} | {ratio:.2f} | {(c1 - c0) / (logical / 1e9):.1f} |")
PY
done
