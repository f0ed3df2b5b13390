#!/usr/bin/env bash
# Client GET throughput while repair runs, with and without the maintenance budget, and how
# fast rebalance and drain move shards. One cluster of real processes: coordinator + 8 nodes
# (RS 4+2, 1 GiB capacity each), N objects of SIZE MiB; 4 curl loops read the objects
# throughout each phase.
#   1. no repair (baseline)              2. node killed, repair with --maintenance-rate 0
#   3. another node killed, repair with a budget of BUDGET MB/s
#   4. two new nodes, rebalance (unlimited)  5. drain of one node (unlimited)
# Usage: scripts/maintenance-bench.sh [OBJECTS=96] [SIZE_MIB=16] [BUDGET_MB=40]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-96}; S=${2:-16}; B=${3:-40}
BIN=${TESSERA_BIN:-target/release/tessera}
T=$(mktemp -d); PIDS=()
trap 'touch "$T/stop"; for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$T"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=127.0.0.1:$(port); ADMIN=127.0.0.1:$(port)
"$BIN" coordinator --anonymous --listen "$API" --admin-listen "$ADMIN" --data-dir "$T/c" --repair-grace 1s \
  --heartbeat-timeout 1s --no-background-repair --gc-grace 1s 2>"$T/c.log" & PIDS+=($!)
sleep 0.5
export TESSERA_CLUSTER_SECRET=$(cat "$T/c/cluster.secret") TESSERA_ADMIN_TOKEN=$(cat "$T/c/admin.token")
export TESSERA_COORDINATOR="http://$ADMIN"
NODE_PIDS=()
node() {
  "$BIN" node --listen 127.0.0.1:$(port) --data-dir "$T/n$1" --coordinator "http://$ADMIN" --zone z$1 \
    --capacity 1GiB --heartbeat-interval 200ms 2>"$T/n$1.log" & PIDS+=($!); NODE_PIDS[$1]=$!
}
for i in $(seq 0 7); do node "$i"; done
sleep 2
head -c $((S << 20)) /dev/urandom > "$T/obj"
curl -sf -X PUT "http://$API/mbench" >/dev/null
for i in $(seq 1 "$N"); do curl -sf -T "$T/obj" "http://$API/mbench/o$i" -o /dev/null; done

# GET load: 4 curl loops until $T/stop exists; prints MB/s over the phase.
load_start() {
  rm -f "$T/stop" "$T"/got.*
  for w in 1 2 3 4; do
    ( while [ ! -f "$T/stop" ]; do
        for i in $(seq $w 4 "$N"); do
          curl -s "http://$API/mbench/o$i" -o /dev/null -w '%{size_download}\n' >> "$T/got.$w" || true
        done
      done ) &
  done
  LOAD_T0=$(date +%s.%N)
}
load_stop() {
  touch "$T/stop"; wait_loads; local t1; t1=$(date +%s.%N)
  cat "$T"/got.* | python3 -c "import sys; b=sum(int(x) for x in sys.stdin if x.strip()); print(round(b/1e6/($t1-$LOAD_T0),1))"
}
wait_loads() { for j in $(jobs -p); do case " ${PIDS[*]} " in *" $j "*) ;; *) wait "$j" 2>/dev/null || true;; esac; done; }
node_id() { curl -s -H "Authorization: Bearer $TESSERA_ADMIN_TOKEN" "http://$ADMIN/cluster" |
  python3 -c "import sys,json; print(sorted(n['id'] for n in json.load(sys.stdin)['nodes'] if n['state']=='up')[$1])"; }
repair_phase() {
  local json; json=$("$BIN" repair --json --grace 0s --concurrency 4 || true)
  python3 -c "import json,sys; r=json.loads(sys.argv[1]); s=r['elapsed_ms']/1000; print(f\"{r['bytes_written']/1e6:.0f} MB rebuilt in {s:.1f} s = {r['bytes_written']/1e6/s:.1f} MB/s\")" "$json"
}

load_start; sleep 10; base=$(load_stop)
echo "1. no maintenance: GET $base MB/s"

kill -9 "${NODE_PIDS[3]}"; sleep 2.5
"$BIN" maintenance --rate 0 >/dev/null
load_start; rep=$(repair_phase); get=$(load_stop)
echo "2. repair, no budget: GET $get MB/s while repair: $rep"

kill -9 "${NODE_PIDS[5]}"; sleep 2.5
"$BIN" maintenance --rate "${B}MB" >/dev/null
load_start; rep=$(repair_phase); get=$(load_stop)
echo "3. repair, budget $B MB/s: GET $get MB/s while repair: $rep"

"$BIN" maintenance --rate 0 >/dev/null
# The dead nodes are repaired around: remove them (rebalance waits while nodes are down).
for id in $(curl -s -H "Authorization: Bearer $TESSERA_ADMIN_TOKEN" "http://$ADMIN/cluster" |
    python3 -c "import sys,json; print(' '.join(n['id'] for n in json.load(sys.stdin)['nodes'] if not n['up']))"); do
  "$BIN" node remove "$id" >/dev/null
done
node 8; node 9; sleep 2
t0=$(date +%s.%N)
"$BIN" rebalance --band 0.05 >/dev/null
t1=$(date +%s.%N)
# Moved = what the new nodes hold now (usage counted from the metadata).
moved=$(curl -s -H "Authorization: Bearer $TESSERA_ADMIN_TOKEN" "http://$ADMIN/rebalance" |
  python3 -c "import sys,json; print(sum(n['used'] for n in json.load(sys.stdin)['nodes'] if n['zone'] in ('z8','z9')))")
python3 -c "print(f'4. rebalance onto 2 new nodes: {$moved/1e6:.0f} MB moved in {$t1-$t0:.1f} s = {$moved/1e6/($t1-$t0):.1f} MB/s (CLI wall time, band 0.05)')"

victim=$(node_id 0)
before=$(curl -s -H "Authorization: Bearer $TESSERA_ADMIN_TOKEN" "http://$ADMIN/cluster/nodes/$victim" | python3 -c "import sys,json; print(json.load(sys.stdin)['bytes'])")
t0=$(date +%s.%N)
"$BIN" node drain "$victim" >/dev/null
t1=$(date +%s.%N)
python3 -c "print(f'5. drain of one node: {$before/1e6:.0f} MB copied in {$t1-$t0:.1f} s = {$before/1e6/($t1-$t0):.1f} MB/s')"
for i in $(seq 1 "$N"); do
  curl -sf "http://$API/mbench/o$i" | cmp -s - "$T/obj" || { echo "o$i differs after the moves"; exit 1; }
done
echo "all $N objects read back byte-exact"
