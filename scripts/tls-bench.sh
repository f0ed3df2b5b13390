#!/usr/bin/env bash
# What TLS on the client listener costs: two `tessera dev` clusters side by side, one plain and
# one `--tls`, the same signed `tessera bench` against each in turn (the order alternating,
# ABBA), ROUNDS times, for 16 MiB objects (c=4) and 4 KiB objects (c=16). Prints each round
# and the median ratios (TLS / plain).
#
#   scripts/tls-bench.sh [ROUNDS] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-4}
secs=${2:-6}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tessera-ci-target}"
(cd "$root" && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/tessera"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
declare -A api adm
for side in plain tls; do
    api[$side]=$(free_port)
    adm[$side]=$(free_port)
    extra=""
    [ "$side" = tls ] && extra="--tls"
    # shellcheck disable=SC2086
    "$bin" dev --listen "127.0.0.1:${api[$side]}" --admin-listen "127.0.0.1:${adm[$side]}" \
        --data-dir "$work/$side" $extra >"$work/$side.log" 2>&1 &
    pids+=($!)
done
for side in plain tls; do
    for _ in $(seq 100); do grep -q "Paste this" "$work/$side.log" 2>/dev/null && break; sleep 0.2; done
done
ca="$work/tls/tls/ca.pem"
export AWS_ACCESS_KEY_ID=TKTLSBENCH0000000001 AWS_SECRET_ACCESS_KEY=tls-bench-secret
for side in plain tls; do
    scheme=http
    [ "$side" = tls ] && scheme=https
    "$bin" --ca-cert "$ca" --coordinator "$scheme://127.0.0.1:${adm[$side]}" \
        --admin-token-file "$work/$side/coordinator/admin.token" key import \
        --access-key-id "$AWS_ACCESS_KEY_ID" --secret-access-key "$AWS_SECRET_ACCESS_KEY" \
        --name bench >/dev/null
done
# run SIDE SIZE CONCURRENCY OBJECTS: "PUT/s GET/s" (objects per second).
run() {
    local scheme=http
    [ "$1" = tls ] && scheme=https
    "$bin" --ca-cert "$ca" bench --endpoint "$scheme://127.0.0.1:${api[$1]}" --bucket "bench-$(echo "$2" | tr "[:upper:]" "[:lower:]")" \
        --size "$2" --concurrency "$3" --objects "$4" --duration "${secs}s" --json |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["put"]["objects_per_s"], 1), round(d["get"]["objects_per_s"], 1))'
}
results=()
for r in $(seq "$rounds"); do
    order="plain tls"
    [ $((r % 2)) = 0 ] && order="tls plain"
    for spec in "16MiB 4 24" "4KiB 16 2000"; do
        for side in $order; do
            # shellcheck disable=SC2086
            read -r put get < <(run "$side" $spec)
            echo "round $r ${spec%% *} $side: PUT/s $put GET/s $get"
            results+=("$r ${spec%% *} $side $put $get")
        done
    done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
by = {}
for l in sys.stdin:
    r, size, side, p, g = l.split()
    by.setdefault((size, r), {})[side] = (float(p), float(g))
for size in ("16MiB", "4KiB"):
    rows = [v for (s, _), v in by.items() if s == size]
    put = statistics.median(v["tls"][0] / v["plain"][0] for v in rows)
    get = statistics.median(v["tls"][1] / v["plain"][1] for v in rows)
    print("%s median ratio TLS/plain: PUT %.3f  GET %.3f" % (size, put, get))
'
