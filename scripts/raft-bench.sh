#!/usr/bin/env bash
# Single coordinator vs three replicated coordinators, each cluster with six node processes:
# 4 KiB PUT/s and GET/s at concurrency 16 and 64, 16 MiB PUT and GET MB/s (concurrency 4),
# medians of ROUNDS rounds whose order alternates; then the failover time of the three (the
# leader SIGKILLed under a 16-client write load -> first acknowledged PUT through a survivor),
# FAILOVERS times.
#
# With CPU_QUOTA (a fraction of one core, e.g. 0.25) every coordinator process runs in its own
# cpu cgroup (v1 controller at /sys/fs/cgroup/cpu, period 100 ms) with that quota, as if each
# had a machine of its own; the nodes and the client run outside any quota. Where cgroups are
# not writable the script says so and measures without quotas.
#
# ROUNDS=0 measures only the failovers.
# Usage: [CPU_QUOTA=0.25] [ROUNDS=3] [FAILOVERS=5] [COORD_ARGS="--pack-below 0"] \
#          scripts/raft-bench.sh [OUT_DIR]     (needs target/release/tessera)
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../target/release/tessera}
OUT=${1:-$(mktemp -d)}
ROUNDS=${ROUNDS:-3}
FAILOVERS=${FAILOVERS:-5}
mkdir -p "$OUT"
pids=()
groups=()
CG=/sys/fs/cgroup/cpu
QUOTA_US=""
if [ -n "${CPU_QUOTA:-}" ]; then
  if mkdir "$CG/tessera-bench-$$-probe" 2>/dev/null && rmdir "$CG/tessera-bench-$$-probe"; then
    QUOTA_US=$(python3 -c "print(int(float('$CPU_QUOTA') * 100000))")
    echo "each coordinator limited to $CPU_QUOTA of a core (cfs_quota_us $QUOTA_US per 100000)"
  else
    echo "CPU_QUOTA=$CPU_QUOTA asked, but $CG is not writable here (no cgroup v1 cpu controller, or no permission): measuring WITHOUT quotas" >&2
  fi
fi
cleanup() {
  kill -9 "${pids[@]}" 2>/dev/null || true
  sleep 0.5
  for g in "${groups[@]}"; do rmdir "$g" 2>/dev/null || true; done
}
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/token"
TOKEN=$(cat "$OUT/token")

limit() { # pid group-name: puts the process in a cpu cgroup of its own with the quota
  [ -n "$QUOTA_US" ] || return 0
  local g="$CG/tessera-bench-$$-$2"
  if [ ! -d "$g" ]; then
    mkdir "$g"
    echo 100000 > "$g/cpu.cfs_period_us"
    echo "$QUOTA_US" > "$g/cpu.cfs_quota_us"
    groups+=("$g")
  fi
  echo "$1" > "$g/cgroup.procs"
}
throttled() { # "periods/throttled" of every group, for the log
  [ -n "$QUOTA_US" ] || return 0
  for g in "${groups[@]}"; do
    printf '%s %s/%s ' "${g##*-}" "$(awk '$1=="nr_throttled"{print $2}' "$g/cpu.stat")" \
      "$(awk '$1=="nr_periods"{print $2}' "$g/cpu.stat")"
  done
  echo
}

coordinator() { # name n i
  local name=$1 n=$2 i=$3 base raft=()
  eval "base=\$${name}_base"
  local peers=""
  for j in $(seq 1 "$n"); do peers+="${peers:+,}$j=http://127.0.0.1:$((base + 2 * j - 1))"; done
  [ "$n" -gt 1 ] && raft=(--raft-id "$i" --peers "$peers")
  "$BIN" coordinator --anonymous --listen 127.0.0.1:$((base + 2 * i - 2)) \
    --admin-listen 127.0.0.1:$((base + 2 * i - 1)) --data-dir "$OUT/$name/c$i" \
    --cluster-secret-file "$OUT/secret" --admin-token-file "$OUT/token" "${raft[@]}" ${COORD_ARGS:-} \
    2>> "$OUT/$name-c$i.log" &
  pids+=($!)
  eval "${name}_c$i=$!"
  limit $! "$name-c$i"
}

start() { # name coordinators base_port
  local name=$1 n=$2 base=$3 admins="" apis=""
  eval "${name}_base=$base"
  for i in $(seq 1 "$n"); do
    admins+="${admins:+,}http://127.0.0.1:$((base + 2 * i - 1))"
    apis+="${apis:+,}http://127.0.0.1:$((base + 2 * i - 2))"
    coordinator "$name" "$n" "$i"
  done
  for j in 1 2 3 4 5 6; do
    "$BIN" node --listen 127.0.0.1:$((base + 20 + j)) --data-dir "$OUT/$name/n$j" \
      --coordinator "$admins" --cluster-secret-file "$OUT/secret" 2> "$OUT/$name-n$j.log" &
    pids+=($!)
  done
  eval "${name}_apis=$apis"
  for _ in $(seq 1 150); do
    up=$(curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((base + 1))/cluster" \
      | python3 -c 'import json,sys; print(sum(n["state"]=="up" for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
    [ "$up" = 6 ] && return 0
    sleep 0.2
  done
  echo "$name: nodes not up" >&2; exit 1
}

start one 1 27300
start three 3 27400
bench() { # name tag args...
  local name=$1 tag=$2 ep; shift 2
  eval "ep=\$${name}_apis"
  "$BIN" bench --endpoint "$ep" --json "$@" > "$OUT/$name-$tag.json"
  echo "$name $tag throttled/periods: $(throttled)" >> "$OUT/throttle.log"
}
for round in $(seq 1 "$ROUNDS"); do
  order="one three"; [ $((round % 2)) = 0 ] && order="three one"
  for name in $order; do
    bench "$name" "small16-$round" --bucket s16r$round --size 4KiB --objects 3000 --concurrency 16
    bench "$name" "small64-$round" --bucket s64r$round --size 4KiB --objects 6000 --concurrency 64
    bench "$name" "large-$round" --bucket large$round --size 16MiB --objects 24 --concurrency 4
  done
done
[ "$ROUNDS" -gt 0 ] && python3 - "$OUT" <<'EOF'
import json, statistics, sys, glob
out = sys.argv[1]
def med(name, kind, field):
    phase, metric = field.split(".")
    vals = [round(json.load(open(f))[phase][metric], 1)
            for f in sorted(glob.glob(f"{out}/{name}-{kind}-*.json"))]
    return statistics.median(vals), vals
rows = []
for kind, fields in [("small16", ["put.objects_per_s", "get.objects_per_s"]),
                     ("small64", ["put.objects_per_s", "get.objects_per_s"]),
                     ("large", ["put.mb_per_s", "get.mb_per_s"])]:
    for field in fields:
        a, av = med("one", kind, field)
        b, bv = med("three", kind, field)
        line = f"{kind:8} {field:18} one {a:9.1f} {av}  three {b:9.1f} {bv}  ratio {b / a:.2f}"
        print(line)
        rows.append(line)
open(f"{out}/summary.txt", "w").write("\n".join(rows) + "\n")
EOF

# Failover under load: 16 clients write through all three coordinators; the leader is
# SIGKILLed; the time until a PUT through a survivor is acknowledged. The killed member comes
# back (with its quota) and catches up before the next round.
leader_now() {
  for i in 1 2 3; do
    l=$(curl -s -m 1 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((27400 + 2 * i - 1))/cluster" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["raft"]["leader"] or "")' 2>/dev/null) || continue
    [ -n "$l" ] && { echo "$l"; return 0; }
  done
  return 1
}
"$BIN" bench --endpoint "$three_apis" --bucket failover-load --size 4KiB --objects 2000 \
  --concurrency 16 --duration 3600s --skip-get --json > "$OUT/failover-load.json" 2> "$OUT/failover-load.log" &
load=$!
pids+=($load)
sleep 3
for round in $(seq 1 "$FAILOVERS"); do
  leader=$(leader_now)
  eval "pid=\$three_c$leader"
  other=$((leader % 3 + 1))
  port=$((27400 + 2 * other - 2))
  kill -9 "$pid"
  t0=$(date +%s%N)
  # One probe waits for its answer (up to 10 s: a member holds a write while no leader is
  # known); only a refused one is sent again.
  until [ "$(curl -s -m 10 -o /dev/null -w '%{http_code}' -X PUT --data-binary x "http://127.0.0.1:$port/failover-load/probe-$round")" = 200 ]; do sleep 0.02; done
  echo "failover $round: $(((($(date +%s%N) - t0)) / 1000000)) ms (leader $leader killed)" | tee -a "$OUT/failover.log"
  wait "$pid" 2>/dev/null || true
  coordinator three 3 "$leader"
  sleep 10
done
kill "$load" 2>/dev/null || true
python3 - "$OUT" <<'EOF'
import re, statistics, sys
ms = [int(m) for m in re.findall(r"failover \d+: (\d+) ms", open(f"{sys.argv[1]}/failover.log").read())]
line = f"failover under load: median {statistics.median(ms)} ms of {ms}"
print(line)
open(f"{sys.argv[1]}/summary.txt", "a").write(line + "\n")
EOF
