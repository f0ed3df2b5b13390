#!/usr/bin/env bash
# GET through Tessera against a replica read: the same 16 MiB objects fetched by 4 parallel
# curl loops from a Tessera cluster of real processes (`tessera coordinator --anonymous` and 6
# `tessera node`, RS 4+2) and, as plain files from page cache, from Python's static file
# server on the same disk. Rounds
# alternate (Tessera, static, Tessera, ...); each prints MB/s; the medians and the median of
# the per-round ratios close the output.
# With CEILING=R in the environment it then runs `tessera bench --ceiling` R times against the
# same cluster: GET of the same objects against the two-hop loopback relay ceiling.
# Usage: [CEILING=3] scripts/get-vs-static.sh [ROUNDS=5] [OBJECTS=32]   (needs a release build)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}; N=${2:-32}; CURLS=4; PASSES=2
BIN=${TESSERA_BIN:-$PWD/target/release/tessera}
T=$(mktemp -d)
cleanup() { kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$T"; }
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
API=127.0.0.1:$(port); ADMIN=127.0.0.1:$(port); STATIC=127.0.0.1:$(port)
"$BIN" coordinator --anonymous --data-dir "$T/c" --listen "$API" --admin-listen "$ADMIN" 2>"$T/c.log" &
for _ in $(seq 50); do [ -s "$T/c/cluster.secret" ] && break; sleep 0.1; done
export TESSERA_CLUSTER_SECRET; TESSERA_CLUSTER_SECRET=$(cat "$T/c/cluster.secret")
for i in 0 1 2 3 4 5; do
  "$BIN" node --listen "127.0.0.1:$(port)" --data-dir "$T/n$i" --coordinator "http://$ADMIN" \
    --zone "z$i" 2>"$T/n$i.log" &
done
sleep 3
# The objects, through Tessera's own bench (PUT phase only matters), and the same bytes as files.
"$BIN" bench --endpoint "http://$API" --bucket gvs --size 16MiB --objects "$N" --concurrency 4 --json >/dev/null
mkdir -p "$T/files/bench"
for i in $(seq 0 $((N - 1))); do
  f=$(printf "obj-%08d" "$i")
  curl -sf -o "$T/files/bench/$f" "http://$API/gvs/bench/$f"
done
(cd "$T/files" && exec python3 -m http.server --bind 127.0.0.1 "${STATIC#*:}" >"$T/static.log" 2>&1) &
for _ in $(seq 50); do curl -s -o /dev/null "http://$STATIC/" && break; sleep 0.2; done
cat "$T/files/bench/"* >/dev/null   # page cache
# MB/s of CURLS curl processes, each fetching every object PASSES times from base URL $1.
run() {
  local t0 t1
  t0=$(date +%s.%N)
  for c in $(seq "$CURLS"); do
    (
      args=()
      for _ in $(seq "$PASSES"); do
        for i in $(seq 0 $((N - 1))); do args+=("$1/bench/$(printf "obj-%08d" "$i")" -o /dev/null); done
      done
      curl -sf "${args[@]}"
    ) &
  done
  wait $(jobs -p | tail -n "$CURLS")
  t1=$(date +%s.%N)
  python3 -c "print(round($CURLS*$PASSES*$N*16*1048576/1e6/($t1-$t0), 1))"
}
ts=(); ss=()
for r in $(seq "$ROUNDS"); do
  a=$(run "http://$API/gvs"); b=$(run "http://$STATIC")
  echo "round $r: tessera $a MB/s, static file server $b MB/s"
  ts+=("$a"); ss+=("$b")
done
python3 - "${ts[*]}" "${ss[*]}" <<'PY'
import statistics, sys
t = [float(x) for x in sys.argv[1].split()]; s = [float(x) for x in sys.argv[2].split()]
print(f"median: tessera {statistics.median(t):.1f} MB/s, static {statistics.median(s):.1f} MB/s, "
      f"tessera/static per round {statistics.median(a / b for a, b in zip(t, s)):.2f}")
PY
for r in $(seq "${CEILING:-0}"); do
  "$BIN" bench --endpoint "http://$API" --bucket gvs --size 16MiB --objects "$N" --concurrency 4 \
    --skip-put --ceiling --ceiling-bytes 512MiB --json | python3 -c '
import json, sys
d = json.load(sys.stdin); g = d["get"]["mb_per_s"]; c = d["ceiling"]["loopback_relay_mb_per_s"]
print(f"ceiling round '"$r"': GET {g:.1f} MB/s, two-hop relay {c:.1f} MB/s, ratio {g / c:.2f}")'
done
