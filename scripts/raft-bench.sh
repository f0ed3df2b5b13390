#!/usr/bin/env bash
# Single coordinator vs three replicated coordinators, each cluster with six node processes:
# 4 KiB PUT/s and GET/s at concurrency 16 and 64, 16 MiB PUT and GET MB/s (concurrency 4),
# medians of ROUNDS rounds whose order alternates; then the failover time of the three (the
# leader SIGKILLed under a 16-client write load -> first acknowledged PUT through a survivor),
# FAILOVERS times. Every run also records the CPU time its cluster's coordinators and nodes
# used (from /proc), and each round runs the single coordinator at a third of the clients
# (c=5, c=21): the summary (scripts/raft-bench-summary.py, OUT_DIR/summary.txt) gives the CPU
# per request and what it bounds (three's CPU per small PUT against one's).
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
  local name=$1 n=$2 base=$3 admins="" apis="" cpids="" npids="" pid
  eval "${name}_base=$base"
  for i in $(seq 1 "$n"); do
    admins+="${admins:+,}http://127.0.0.1:$((base + 2 * i - 1))"
    apis+="${apis:+,}http://127.0.0.1:$((base + 2 * i - 2))"
    coordinator "$name" "$n" "$i"
    eval "pid=\$${name}_c$i"
    cpids+="$pid "
  done
  for j in 1 2 3 4 5 6; do
    "$BIN" node --listen 127.0.0.1:$((base + 20 + j)) --data-dir "$OUT/$name/n$j" \
      --coordinator "$admins" --cluster-secret-file "$OUT/secret" 2> "$OUT/$name-n$j.log" &
    pids+=($!)
    npids+="$! "
  done
  eval "${name}_apis=$apis; ${name}_cpids='$cpids'; ${name}_npids='$npids'"
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
leader_now() {
  for i in 1 2 3; do
    l=$(curl -s -m 1 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((27400 + 2 * i - 1))/cluster" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["raft"]["leader"] or "")' 2>/dev/null) || continue
    [ -n "$l" ] && { echo "$l"; return 0; }
  done
  return 1
}
ticks() { # CPU time (user + system, clock ticks) of each process
  for p in "$@"; do awk '{printf "%d ", $14 + $15}' "/proc/$p/stat"; done
}
measure() { # name tag bench-args...: the figures in OUT/name-tag.json; the CPU the cluster's
  # processes used meanwhile in OUT/name-tag.cpu (JSON: ms per coordinator, the nodes' sum,
  # which coordinator led)
  local name=$1 tag=$2 ep cps nps c0 n0 lead=1; shift 2
  eval "ep=\$${name}_apis; cps=\$${name}_cpids; nps=\$${name}_npids"
  [ "$name" = three ] && lead=$(leader_now)
  c0=$(ticks $cps); n0=$(ticks $nps)
  "$BIN" bench --endpoint "$ep" --json "$@" > "$OUT/$name-$tag.json"
  python3 -c 'import json, os, sys
hz = os.sysconf("SC_CLK_TCK")
ms = lambda a, b: [(int(y) - int(x)) * 1000 / hz for x, y in zip(a.split(), b.split())]
print(json.dumps({"coordinators": ms(sys.argv[1], sys.argv[2]), "nodes": sum(ms(sys.argv[3], sys.argv[4])), "leader": int(sys.argv[5])}))' \
    "$c0" "$(ticks $cps)" "$n0" "$(ticks $nps)" "$lead" > "$OUT/$name-$tag.cpu"
  echo "$name $tag throttled/periods: $(throttled)" >> "$OUT/throttle.log"
}
phase() { # name kind round size objects concurrency [put]: a PUT run, then a GET run of what it wrote
  local name=$1 kind=$2 round=$3 size=$4 objects=$5 conc=$6 bucket="$2r$3"
  measure "$name" "$kind-put-$round" --bucket "$bucket" --size "$size" --objects "$objects" --concurrency "$conc" --skip-get
  [ "${7:-}" = put ] && return 0
  measure "$name" "$kind-get-$round" --bucket "$bucket" --size "$size" --objects "$objects" --concurrency "$conc" --skip-put
}
for round in $(seq 1 "$ROUNDS"); do
  order="one three"; [ $((round % 2)) = 0 ] && order="three one"
  for name in $order; do
    phase "$name" small16 "$round" 4KiB 3000 16
    phase "$name" small64 "$round" 4KiB 6000 64
    phase "$name" large "$round" 16MiB 24 4
  done
  # The single coordinator at each of the three's share of the clients (16/3, 64/3): what a
  # coordinator of the three would cost per PUT without replication, with the segments its
  # share of the clients fills.
  phase one small5 "$round" 4KiB 1000 5 put
  phase one small21 "$round" 4KiB 4000 21 put
done
[ "$ROUNDS" -gt 0 ] && python3 "$(dirname "$0")/raft-bench-summary.py" "$OUT"

# Failover under load: 16 clients write through all three coordinators; the leader is
# SIGKILLed; the time until a PUT through a survivor is acknowledged. The killed member comes
# back (with its quota) and catches up before the next round.
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
