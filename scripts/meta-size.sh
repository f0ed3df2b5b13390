#!/usr/bin/env bash
# Metadata bytes per object by object size: one coordinator and six node processes (4+2); for
# each "SIZE:COUNT" given (default 4KiB:50000 1MiB:2000 64MiB:40) a fresh bucket gets COUNT
# objects of SIZE (tessera bench, c=16); then the coordinator's metadata is flushed and fully
# compacted and its live SST bytes, and the six nodes' RocksDB (their shard index: live SST
# plus memtables), are read. Each figure is the growth over the previous step, per object.
# Usage: scripts/meta-size.sh [OUT_DIR] [SIZE:COUNT...]   (needs target/release/tessera)
set -euo pipefail
BIN=${BIN:-$(dirname "$0")/../target/release/tessera}
OUT=${1:-$(mktemp -d)}
shift || true
STEPS=("${@:-4KiB:50000 1MiB:2000 64MiB:40}")
read -r -a STEPS <<< "${STEPS[*]}"
mkdir -p "$OUT"
pids=()
cleanup() { kill -9 "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/secret"
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$OUT/token"
TOKEN=$(cat "$OUT/token")
API=127.0.0.1:27700 ADMIN=127.0.0.1:27701
"$BIN" coordinator --anonymous --listen $API --admin-listen $ADMIN --data-dir "$OUT/c" \
  --cluster-secret-file "$OUT/secret" --admin-token-file "$OUT/token" 2> "$OUT/c.log" &
pids+=($!)
for j in 1 2 3 4 5 6; do
  "$BIN" node --listen 127.0.0.1:$((27710 + j)) --data-dir "$OUT/n$j" \
    --coordinator "http://$ADMIN" --cluster-secret-file "$OUT/secret" 2> "$OUT/n$j.log" &
  pids+=($!)
done
admin() { curl -sf -H "Authorization: Bearer $TOKEN" "http://$ADMIN$1" "${@:2}"; }
for _ in $(seq 1 300); do
  up=$(admin /cluster | python3 -c 'import json,sys; print(sum(n["state"]=="up" for n in json.load(sys.stdin)["nodes"]))' 2>/dev/null || echo 0)
  [ "$up" = 6 ] && break
  sleep 0.2
done
meta() { # the coordinator's live SST bytes after a flush and full compaction
  admin /metadata/compact -X POST > /dev/null
  admin /metrics | awk '/^tessera_metadata_rocksdb_live_sst_bytes / {print $2}'
}
nodes() { # the six nodes' RocksDB bytes (live SST + memtables)
  for j in 1 2 3 4 5 6; do
    curl -s -H "Authorization: Bearer $(cat "$OUT/secret")" "http://127.0.0.1:$((27710 + j))/metrics" \
      | awk '/^tessera_node_rocksdb_(live_sst|memtable)_bytes / {s += $2} END {print s + 0}'
  done | awk '{s += $1} END {print s}'
}
m0=$(meta) n0=$(nodes)
echo "size,objects,metadata_bytes_per_object,node_index_bytes_per_object" | tee "$OUT/sizes.csv"
for step in "${STEPS[@]}"; do
  size=${step%%:*} count=${step##*:}
  "$BIN" bench --endpoint "http://$API" --bucket "b-$(echo "$size" | tr 'A-Z' 'a-z')" --size "$size" \
    --objects "$count" --concurrency 16 --skip-get --json > "$OUT/put-$size.json"
  sleep 2
  m1=$(meta) n1=$(nodes)
  echo "$size,$count,$(( (m1 - m0) / count )),$(( (n1 - n0) / count ))" | tee -a "$OUT/sizes.csv"
  m0=$m1 n0=$n1
done
