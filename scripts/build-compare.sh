#!/usr/bin/env bash
# Two builds of Tessera side by side: `tessera dev --anonymous` (6 nodes, 4+2) from each, then
# `tessera bench` (the AFTER build's client for both) 4 KiB (2000 objects, concurrency 16) and
# 16 MiB (32 objects, concurrency 4) against each in turn, ROUNDS rounds alternating; prints
# each figure's median per build and the per-round ratios AFTER / BEFORE. The order of the
# two builds alternates from round to round.
# Usage: scripts/build-compare.sh BEFORE_BIN AFTER_BIN [ROUNDS] [OUT_DIR]
set -euo pipefail
BEFORE=$1
AFTER=$2
ROUNDS=${3:-3}
OUT=${4:-$(mktemp -d)}
mkdir -p "$OUT"
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; sleep 1; kill -9 "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
start() { # name bin api_port
  "$2" dev --anonymous --data-dir "$OUT/$1" --listen "127.0.0.1:$3" \
    --admin-listen "127.0.0.1:$(($3 + 1))" > "$OUT/$1.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 150); do
    grep -q "Ctrl-C stops" "$OUT/$1.log" && return 0
    sleep 0.2
  done
  echo "$1: cluster did not start" >&2
  exit 1
}
start before "$BEFORE" 27600
start after "$AFTER" 27700
for round in $(seq 1 "$ROUNDS"); do
  # The order alternates: the build measured second meets the first one's leftovers (its
  # nodes flushing what the 16 MiB PUTs wrote).
  order="before after"
  [ $((round % 2)) = 0 ] && order="after before"
  for name in $order; do
    port=27600
    [ "$name" = after ] && port=27700
    "$AFTER" bench --endpoint "http://127.0.0.1:$port" --json --bucket small$round \
      --size 4KiB --objects 2000 --concurrency 16 > "$OUT/$name-small-$round.json"
    "$AFTER" bench --endpoint "http://127.0.0.1:$port" --json --bucket large$round \
      --size 16MiB --objects 32 --concurrency 4 > "$OUT/$name-large-$round.json"
  done
done
python3 - "$OUT" "$ROUNDS" <<'EOF'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def val(name, kind, field, r):
    phase, metric = field.split(".")
    return json.load(open(f"{out}/{name}-{kind}-{r}.json"))[phase][metric]
for kind, fields in [("small", ["put.objects_per_s", "get.objects_per_s"]),
                     ("large", ["put.mb_per_s", "get.mb_per_s"])]:
    for field in fields:
        b = [val("before", kind, field, r) for r in range(1, rounds + 1)]
        a = [val("after", kind, field, r) for r in range(1, rounds + 1)]
        ratios = [round(x / y, 2) for x, y in zip(a, b)]
        print(f"{kind:5} {field:18} before {statistics.median(b):9.1f} {[round(x, 1) for x in b]}"
              f"  after {statistics.median(a):9.1f} {[round(x, 1) for x in a]}"
              f"  ratios {ratios} median {statistics.median(ratios):.2f}")
EOF
