#!/usr/bin/env bash
# What TLS costs: three `tessera dev` clusters side by side, plain, `--tls` (the client
# listener only) and `--tls --cluster-tls` (everywhere: mutual TLS to every node too, raw reads
# encrypted), the same signed `tessera bench` against each in turn (the order rotating each
# round), ROUNDS times, for 16 MiB objects (c=4) and 4 KiB objects (c=16). Each GET phase runs
# a second time alone while the cluster process's CPU time is read (server CPU per GET, nodes
# included: they run in the dev process). Prints each round and the median ratios to plain.
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
declare -A api adm pid
sides="plain tls all"
for side in $sides; do
    api[$side]=$(free_port)
    adm[$side]=$(free_port)
    extra=""
    [ "$side" = tls ] && extra="--tls"
    [ "$side" = all ] && extra="--tls --cluster-tls"
    # shellcheck disable=SC2086
    "$bin" dev --listen "127.0.0.1:${api[$side]}" --admin-listen "127.0.0.1:${adm[$side]}" \
        --data-dir "$work/$side" $extra >"$work/$side.log" 2>&1 &
    pids+=($!)
    pid[$side]=$!
done
for side in $sides; do
    for _ in $(seq 100); do grep -q "Paste this" "$work/$side.log" 2>/dev/null && break; sleep 0.2; done
done
cat "$work/tls/tls/ca.pem" "$work/all/tls/ca.pem" >"$work/cas.pem"
ca="$work/cas.pem"
export AWS_ACCESS_KEY_ID=TKTLSBENCH0000000001 AWS_SECRET_ACCESS_KEY=tls-bench-secret
for side in $sides; do
    scheme=https
    [ "$side" = plain ] && scheme=http
    "$bin" --ca-cert "$ca" --coordinator "$scheme://127.0.0.1:${adm[$side]}" \
        --admin-token-file "$work/$side/coordinator/admin.token" key import \
        --access-key-id "$AWS_ACCESS_KEY_ID" --secret-access-key "$AWS_SECRET_ACCESS_KEY" \
        --name bench >/dev/null
done
tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# run SIDE SIZE CONCURRENCY OBJECTS: "PUT/s GET/s CPU-us-per-GET": a PUT and GET run, then the
# GET phase again alone with the cluster process's CPU time over it (the server's cost per
# GET, which the client's own decryption on the same cores does not enter).
run() {
    local scheme=https
    [ "$1" = plain ] && scheme=http
    local args=(--ca-cert "$ca" bench --endpoint "$scheme://127.0.0.1:${api[$1]}"
        --bucket "bench-$(echo "$2" | tr "[:upper:]" "[:lower:]")" --size "$2"
        --concurrency "$3" --objects "$4" --duration "${secs}s" --json)
    local put t0 t1 out
    put=$("$bin" "${args[@]}" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["put"]["objects_per_s"], 1))')
    t0=$(cpu_ticks "${pid[$1]}")
    out=$("$bin" "${args[@]}" --skip-put)
    t1=$(cpu_ticks "${pid[$1]}")
    echo "$out" | python3 -c 'import json,sys
d = json.load(sys.stdin)["get"]
print(sys.argv[1], round(d["objects_per_s"], 1), round((int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4]) * 1e6 / max(d["ok"], 1), 1))' "$put" "$t0" "$t1" "$tick"
}
results=()
for r in $(seq "$rounds"); do
    case $((r % 3)) in
        1) order="plain tls all" ;;
        2) order="tls all plain" ;;
        *) order="all plain tls" ;;
    esac
    for spec in "16MiB 4 24" "4KiB 16 2000"; do
        for side in $order; do
            # shellcheck disable=SC2086
            read -r put get us < <(run "$side" $spec)
            echo "round $r ${spec%% *} $side: PUT/s $put GET/s $get server CPU per GET ${us} us"
            results+=("$r ${spec%% *} $side $put $get $us")
        done
    done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
by = {}
for l in sys.stdin:
    r, size, side, p, g, u = l.split()
    by.setdefault((size, r), {})[side] = (float(p), float(g), float(u))
for size in ("16MiB", "4KiB"):
    rows = [v for (s, _), v in by.items() if s == size]
    for side, name in (("tls", "client TLS"), ("all", "TLS everywhere")):
        put = statistics.median(v[side][0] / v["plain"][0] for v in rows)
        get = statistics.median(v[side][1] / v["plain"][1] for v in rows)
        cpu = statistics.median(v[side][2] / v["plain"][2] for v in rows)
        print("%s median ratio %s/plain: PUT %.3f  GET %.3f  server CPU per GET %.3f" % (size, name, put, get, cpu))
'
