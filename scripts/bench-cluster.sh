# Sourced by the bench scripts: builds the release binary, starts one `tessera dev` cluster on
# free loopback ports in a temp dir (stopped and removed when the script exits) and imports
# one access key for the bench client.
#
#   . "$(dirname "$0")/bench-cluster.sh" ACCESS_KEY_ID SECRET
#
# Sets: bin (the binary), work (the temp dir), s3 and admin (ports), TESSERA_COORDINATOR,
# AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. DEV_ARGS (words) go to `tessera dev`.
# BENCH_CPU_QUOTA=CORES (e.g. 1) puts the cluster process in a cpu cgroup of its own with that
# share of the machine, so the server, not the client beside it, bounds the rates.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tessera-ci-target}"
(cd "$(dirname "${BASH_SOURCE[0]}")/.." && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/tessera"
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
s3=$(free_port)
admin=$(free_port)
# shellcheck disable=SC2086
"$bin" dev --listen "127.0.0.1:$s3" --admin-listen "127.0.0.1:$admin" --data-dir "$work/data" \
    ${DEV_ARGS:-} >"$work/dev.log" 2>&1 &
bench_cluster_pid=$!
bench_cgroup=
trap 'kill $bench_cluster_pid 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; [ -n "$bench_cgroup" ] && rmdir "$bench_cgroup" 2>/dev/null' EXIT
if [ -n "${BENCH_CPU_QUOTA:-}" ]; then
    bench_cgroup=/sys/fs/cgroup/cpu/tessera-bench-$$
    if ! mkdir "$bench_cgroup" 2>/dev/null; then
        echo "BENCH_CPU_QUOTA: cannot make a cpu cgroup under /sys/fs/cgroup/cpu (needs the v1 cpu controller and root)" >&2
        bench_cgroup=
        exit 1
    fi
    echo 100000 >"$bench_cgroup/cpu.cfs_period_us"
    awk "BEGIN{printf \"%d\\n\", $BENCH_CPU_QUOTA * 100000}" >"$bench_cgroup/cpu.cfs_quota_us"
    echo "$bench_cluster_pid" >"$bench_cgroup/cgroup.procs"
fi
# cpu_ticks: the cluster process's CPU time so far, in clock ticks (user + system).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$bench_cluster_pid/stat"; }
# settle: waits (at most 120 s) until the cluster has finished the background work a phase
# left behind (collection, segment compaction, the version journal): two seconds in a row
# under 5% of a core. Prints the seconds waited.
settle() {
    local waited=0 quiet=0 t0 t1
    while [ "$quiet" -lt 2 ] && [ "$waited" -lt 120 ]; do
        t0=$(cpu_ticks)
        sleep 1
        t1=$(cpu_ticks)
        waited=$((waited + 1))
        if [ $((t1 - t0)) -lt 5 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    done
    echo "$waited"
}
for _ in $(seq 100); do [ -f "$work/data/coordinator/admin.token" ] && break; sleep 0.1; done
sleep 2
export TESSERA_COORDINATOR="http://127.0.0.1:$admin"
"$bin" --admin-token-file "$work/data/coordinator/admin.token" key import \
    --access-key-id "$1" --secret-access-key "$2" --name bench >/dev/null
export AWS_ACCESS_KEY_ID="$1" AWS_SECRET_ACCESS_KEY="$2"
