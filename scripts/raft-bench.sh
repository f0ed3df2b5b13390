#!/usr/bin/env bash
# Single coordinator vs three replicated coordinators, each with six node processes, on this
# machine: 4 KiB PUT/s and GET/s (concurrency 16), 16 MiB PUT and GET MB/s (concurrency 4),
# then the failover time of the three (leader SIGKILLed -> first acknowledged PUT), 5 times.
# Usage: [COORD_ARGS="--pack-below 0"] scripts/raft-bench.sh [OUT_DIR]   (needs target/release/tessera;
# COORD_ARGS are added to every coordinator of both clusters)
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../target/release/tessera}
OUT=${1:-$(mktemp -d)}
mkdir -p "$OUT"
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/token"

start() { # name coordinators base_port
  local name=$1 n=$2 base=$3 peers="" admins="" apis=""
  for i in $(seq 1 "$n"); do
    peers+="${peers:+,}$i=http://127.0.0.1:$((base + 2 * i - 1))"
    admins+="${admins:+,}http://127.0.0.1:$((base + 2 * i - 1))"
    apis+="${apis:+,}http://127.0.0.1:$((base + 2 * i - 2))"
  done
  for i in $(seq 1 "$n"); do
    local raft=()
    [ "$n" -gt 1 ] && raft=(--raft-id "$i" --peers "$peers")
    "$BIN" coordinator --anonymous --listen 127.0.0.1:$((base + 2 * i - 2)) \
      --admin-listen 127.0.0.1:$((base + 2 * i - 1)) --data-dir "$OUT/$name/c$i" \
      --cluster-secret-file "$OUT/secret" --admin-token-file "$OUT/token" "${raft[@]}" ${COORD_ARGS:-} \
      2> "$OUT/$name-c$i.log" &
    pids+=($!)
    eval "${name}_c$i=$!"
  done
  for j in 1 2 3 4 5 6; do
    "$BIN" node --listen 127.0.0.1:$((base + 20 + j)) --data-dir "$OUT/$name/n$j" \
      --coordinator "$admins" --cluster-secret-file "$OUT/secret" 2> "$OUT/$name-n$j.log" &
    pids+=($!)
  done
  eval "${name}_apis=$apis"
  eval "${name}_admins=$admins"
  for _ in $(seq 1 100); do
    up=$(curl -s -H "Authorization: Bearer $(cat "$OUT/token")" "http://127.0.0.1:$((base + 1))/cluster" \
      | python3 -c 'import json,sys; print(sum(n["state"]=="up" for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
    [ "$up" = 6 ] && return 0
    sleep 0.2
  done
  echo "$name: nodes not up" >&2; exit 1
}

start one 1 27300
start three 3 27400
bench() { # endpoint args...
  local ep=$1; shift
  "$BIN" bench --endpoint "$ep" --json "$@"
}
for round in 1 2 3; do
  for name in one three; do
    eval "ep=\$${name}_apis"
    bench "$ep" --bucket small$round --size 4KiB --objects 2000 --concurrency 16 > "$OUT/$name-small-$round.json"
    bench "$ep" --bucket large$round --size 16MiB --objects 32 --concurrency 4 > "$OUT/$name-large-$round.json"
  done
done
python3 - "$OUT" <<'EOF'
import json, statistics, sys, glob
out = sys.argv[1]
def med(name, kind, field):
    phase, metric = field.split(".")
    vals = []
    for f in sorted(glob.glob(f"{out}/{name}-{kind}-*.json")):
        vals.append(round(json.load(open(f))[phase][metric], 1))
    return statistics.median(vals), vals
for kind, fields in [("small", ["put.objects_per_s", "get.objects_per_s"]), ("large", ["put.mb_per_s", "get.mb_per_s"])]:
    for field in fields:
        a, av = med("one", kind, field)
        b, bv = med("three", kind, field)
        print(f"{kind:5} {field:20} one {a:9.1f} {av}  three {b:9.1f} {bv}  ratio {b / a:.2f}")
EOF

# Failover: kill the leader, time until a PUT through a surviving coordinator succeeds.
token=$(cat "$OUT/token")
for round in 1 2 3 4 5; do
  leader=$(curl -s -H "Authorization: Bearer $token" http://127.0.0.1:27401/cluster | python3 -c 'import json,sys; print(json.load(sys.stdin)["raft"]["leader"])')
  eval "pid=\$three_c$leader"
  other=$(( leader % 3 + 1 ))
  port=$((27400 + 2 * other - 2))
  kill -9 "$pid"
  t0=$(date +%s%N)
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary x "http://127.0.0.1:$port/small1/failover-$round")" = 200 ]; do sleep 0.05; done
  echo "failover $round: $(( ($(date +%s%N) - t0) / 1000000 )) ms (leader $leader killed)"
  peers="1=http://127.0.0.1:27401,2=http://127.0.0.1:27403,3=http://127.0.0.1:27405"
  "$BIN" coordinator --anonymous --listen 127.0.0.1:$((27400 + 2 * leader - 2)) \
    --admin-listen 127.0.0.1:$((27400 + 2 * leader - 1)) --data-dir "$OUT/three/c$leader" \
    --cluster-secret-file "$OUT/secret" --admin-token-file "$OUT/token" \
    --raft-id "$leader" --peers "$peers" ${COORD_ARGS:-} 2>> "$OUT/three-c$leader.log" &
  pids+=($!)
  eval "three_c$leader=$!"
  sleep 8
done
