#!/usr/bin/env bash
# What a bucket policy costs: signed 4 KiB PUT and GET rates into a bucket with a
# five-statement policy (a Deny with a condition, Allows with wildcards and an IpAddress
# condition) and one without, ROUNDS times, on one `tessera dev` cluster. The policy moves
# between two buckets every other round and the order alternates (ABBA), so neither a
# bucket (its keys' placement) nor a trend over the run favours either side. Prints each
# round and the median ratios (policy / none), with the server's CPU time per GET (the
# cluster process's user + system time over a GET-only phase), which a noisy neighbour moves
# far less than a rate.
#
#   scripts/policy-bench.sh [ROUNDS] [SECONDS]
#   NO_POLICY=1 scripts/policy-bench.sh ...   (A/A: the policy is never set; the noise)
#   BENCH_CPU_QUOTA=1 scripts/policy-bench.sh ...   (the cluster held to one core)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-3}
secs=${2:-10}
. "$root/scripts/bench-cluster.sh" TKPOLICYBENCH0000001 policy-bench-secret
# set_policy BUCKET: the policy on BUCKET, none on the other.
set_policy() {
    python3 - "$s3" "$1" <<'EOF'
import json, os, sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:" + sys.argv[1], region_name="us-east-1")
on = sys.argv[2]
for b in ("bench-a", "bench-b"):
    try:
        s3.create_bucket(Bucket=b)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.delete_bucket_policy(Bucket=b)
if os.environ.get("NO_POLICY") != "1":
  arn = "arn:aws:s3:::" + on
  s3.put_bucket_policy(Bucket=on, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": arn + "/keep/*"},
    {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": arn + "/*",
     "Condition": {"NotIpAddress": {"aws:SourceIp": ["127.0.0.0/8", "::1/128"]}}},
    {"Effect": "Allow", "Principal": {"AWS": ["TKSOMEONEELSE0000001"]}, "Action": ["s3:Get*", "s3:List*"],
     "Resource": [arn, arn + "/*"]},
    {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": arn + "/public/*",
     "Condition": {"StringLike": {"aws:Referer": "https://*.example/*"}}},
    {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:ListBucket", "Resource": arn,
     "Condition": {"StringEquals": {"s3:prefix": ["public/", "shared/"]}}},
  ]}))
EOF
}
run() {
    "$bin" bench --endpoint "http://127.0.0.1:$s3" --bucket "$1" --size 4KiB --objects 2000 \
        --duration "${secs}s" --concurrency 16 --json "${@:2}"
}
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d[sys.argv[1]][sys.argv[2]]))' "$@"; }
results=()
tick=$(getconf CLK_TCK)
for r in $(seq "$rounds"); do
    # The policy is on bench-a in rounds 1, 2, 5, 6, ... and on bench-b in rounds 3, 4, ...
    if [ $(((r - 1) / 2 % 2)) = 0 ]; then with=bench-a without=bench-b; else with=bench-b without=bench-a; fi
    set_policy "$with"
    order="$without $with"
    [ $((r % 2)) = 0 ] && order="$with $without"
    for b in $order; do
        put=$(run "$b" | field put objects_per_s)
        # The GET phase again on its own, with the cluster's CPU time over it: CPU per GET.
        t0=$(cpu_ticks)
        out=$(run "$b" --skip-put)
        t1=$(cpu_ticks)
        get=$(echo "$out" | field get objects_per_s)
        ok=$(echo "$out" | field get ok)
        us=$(python3 -c "print(round(($t1 - $t0) / $tick * 1e6 / max($ok, 1), 1))")
        side=nopolicy
        [ "$b" = "$with" ] && side=policy
        echo "round $r $b ($side): PUT/s $put GET/s $get server CPU per GET ${us} us"
        results+=("$r $side $put $get $us")
    done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys, statistics
rows = [l.split() for l in sys.stdin if l.strip()]
by = {}
for r, b, p, g, u in rows:
    by.setdefault(r, {})[b] = (float(p), float(g), float(u))
ratio = lambda i: statistics.median(v["policy"][i] / v["nopolicy"][i] for v in by.values())
print("median ratio policy/none: PUT %.3f  GET %.3f  server CPU per GET %.3f" % (ratio(0), ratio(1), ratio(2)))
'
