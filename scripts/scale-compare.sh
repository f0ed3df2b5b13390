#!/usr/bin/env bash
# Fresh-batch rates of a large store against a small one, alternating: the cluster a
# scale-bench run left in BIG_DIR (its data: one coordinator, seven nodes) is started again
# beside a new cluster loaded with SMALL objects (default 10000); then ROUNDS rounds (default
# 6, order alternating) of the same fresh batch on each (10,000 4 KiB PUTs, GETs and HEADs at
# concurrency 32, into a new bucket), the other cluster stopped (SIGSTOP) meanwhile and each
# batch started once its cluster is quiet. Prints every batch, then the median of the per-round
# ratios big/small (rates and CPU per batch).
# Usage: scripts/scale-compare.sh BIG_DIR [ROUNDS] [SMALL]   (BIG_DIR: scale-bench's OUT_DIR;
# needs target/release/tessera; PORT_BASE=27600: the big cluster's ports, the small one's
# are PORT_BASE+100...)
set -euo pipefail
. "$(dirname "$0")/procs.sh" # ticks, quiet_wait
BIN=${BIN:-$(dirname "$0")/../target/release/tessera}
BIG=${1:?usage: scripts/scale-compare.sh BIG_DIR [ROUNDS] [SMALL]}
ROUNDS=${2:-6}
SMALL_COUNT=${3:-10000}
BASE=${PORT_BASE:-27600}
SMALL=$BIG/small
all=()
cleanup() { kill -CONT "${all[@]}" 2>/dev/null || true; kill -9 "${all[@]}" 2>/dev/null || true; }
trap cleanup EXIT
HZ=$(getconf CLK_TCK)

start() { # dir base: starts a coordinator and seven nodes on dir's data, their pids in dir/pids
  local dir=$1 base=$2 j
  mkdir -p "$dir"
  [ -f "$dir/secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/secret"
  [ -f "$dir/token" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$dir/token"
  "$BIN" coordinator --anonymous --listen 127.0.0.1:$base --admin-listen 127.0.0.1:$((base + 1)) \
    --data-dir "$dir/c" --cluster-secret-file "$dir/secret" --admin-token-file "$dir/token" \
    2>> "$dir/c.log" &
  echo $! > "$dir/pids"
  for j in 1 2 3 4 5 6 7; do
    "$BIN" node --listen 127.0.0.1:$((base + 10 + j)) --data-dir "$dir/n$j" \
      --coordinator "http://127.0.0.1:$((base + 1))" --cluster-secret-file "$dir/secret" 2>> "$dir/n$j.log" &
    echo $! >> "$dir/pids"
  done
  mapfile -t p < "$dir/pids"
  all+=("${p[@]}")
  for _ in $(seq 1 300); do
    up=$(curl -s -H "Authorization: Bearer $(cat "$dir/token")" "http://127.0.0.1:$((base + 1))/cluster" \
      | python3 -c 'import json,sys; print(sum(n["state"]=="up" for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
    [ "$up" = 7 ] && return 0
    sleep 0.2
  done
  echo "$dir: nodes not up" >&2; exit 1
}
batch() { # dir base other_dir label: one fresh batch with the other cluster stopped
  local p o c0 n0
  mapfile -t p < "$1/pids"; mapfile -t o < "$3/pids"
  kill -STOP "${o[@]}"; kill -CONT "${p[@]}"
  sleep 6; quiet_wait 120 "${p[@]}"
  c0=$(ticks "${p[0]}"); n0=$(ticks "${p[@]:1}")
  "$BIN" bench --endpoint "http://127.0.0.1:$2" --bucket "cmp$4" --size 4KiB --objects 10000 \
    --concurrency 32 --head --json > "$BIG/compare-$4.json"
  echo "$4 $(( ($(ticks "${p[0]}") - c0) * 1000 / HZ )) $(( ($(ticks "${p[@]:1}") - n0) * 1000 / HZ ))" >> "$BIG/compare-cpu.txt"
}

start "$BIG" "$BASE"
start "$SMALL" $((BASE + 100))
"$BIN" bench --endpoint "http://127.0.0.1:$((BASE + 100))" --bucket scale --size 4KiB \
  --objects "$SMALL_COUNT" --prefix s/ --concurrency 32 --skip-get --json > /dev/null
: > "$BIG/compare-cpu.txt"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then
    batch "$SMALL" $((BASE + 100)) "$BIG" small$r; batch "$BIG" "$BASE" "$SMALL" big$r
  else
    batch "$BIG" "$BASE" "$SMALL" big$r; batch "$SMALL" $((BASE + 100)) "$BIG" small$r
  fi
done
python3 - "$BIG" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
cpu = {l.split()[0]: list(map(int, l.split()[1:])) for l in open(f"{out}/compare-cpu.txt")}
def row(label):
    d = json.load(open(f"{out}/compare-{label}.json"))
    return [d[p]["objects_per_s"] for p in ("put", "get", "head")] + cpu[label]
names = ["PUT/s", "GET/s", "HEAD/s", "CPU ms coordinator", "CPU ms nodes"]
for r in range(1, rounds + 1):
    print(f"round {r}: small " + " ".join(f"{v:.0f}" for v in row(f"small{r}"))
          + " | big " + " ".join(f"{v:.0f}" for v in row(f"big{r}")))
for i, n in enumerate(names):
    ratios = [row(f"big{r}")[i] / row(f"small{r}")[i] for r in range(1, rounds + 1)]
    print(f"{n:20} median big/small {statistics.median(ratios):.3f}  rounds "
          + " ".join(f"{x:.2f}" for x in ratios))
EOF
