#!/usr/bin/env bash
# Measures repair throughput next to GET throughput on one cluster of real processes:
# coordinator + 8 nodes (RS 4+2), N objects of SIZE, GET all, SIGKILL one node, repair.
# Usage: scripts/repair-bench.sh [OBJECTS=32] [SIZE_MIB=16]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-32}; S=${2:-16}
BIN=${TESSERA_BIN:-target/release/tessera}
T=$(mktemp -d); PIDS=()
trap 'for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=127.0.0.1:$(port); ADMIN=127.0.0.1:$(port)
"$BIN" coordinator --anonymous --listen "$API" --admin-listen "$ADMIN" --data-dir "$T/c" --repair-grace 2s \
  --heartbeat-timeout 1s --no-background-repair 2>"$T/c.log" & PIDS+=($!)
sleep 0.5
export TESSERA_CLUSTER_SECRET=$(cat "$T/c/cluster.secret") TESSERA_ADMIN_TOKEN=$(cat "$T/c/admin.token")
for i in $(seq 0 7); do
  "$BIN" node --listen 127.0.0.1:$(port) --data-dir "$T/n$i" --coordinator "http://$ADMIN" --zone z$i \
    --heartbeat-interval 200ms 2>"$T/n$i.log" & PIDS+=($!)
done
sleep 2
head -c $((S << 20)) /dev/urandom > "$T/obj"
curl -sf -X PUT "http://$API/repairbench" >/dev/null
for i in $(seq 1 "$N"); do curl -sf -T "$T/obj" "http://$API/repairbench/o$i" -o /dev/null; done
start=$(date +%s.%N)
for i in $(seq 1 "$N"); do curl -sf "http://$API/repairbench/o$i" -o /dev/null; done
end=$(date +%s.%N)
get=$(python3 -c "print(round($N*$S*1.048576/($end-$start),1))")
kill -9 "${PIDS[3]}"
sleep 3.5
json=$("$BIN" repair --coordinator "http://$ADMIN" --json --concurrency 4 || true)
python3 - "$json" "$get" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); get = float(sys.argv[2])
secs = r["elapsed_ms"] / 1000
print(f"GET {get} MB/s; repair rebuilt {r['shards_rebuilt']} shards, {r['bytes_written']/1e6:.0f} MB written "
      f"({r['bytes_written']/1e6/secs:.1f} MB/s reconstructed), {r['bytes_read']/1e6:.0f} MB read "
      f"(read/rebuilt = {r['bytes_read']/max(r['bytes_written'],1):.2f}) in {secs:.1f} s")
PY
