#!/usr/bin/env bash
# How fast lifecycle rules delete: writes OBJECTS objects of SIZE into a bucket (one
# `tessera dev` cluster with a one-second lifecycle day), sets a rule expiring them after one
# day, and times the leader's `lifecycle` worker until the bucket is empty; once without a
# maintenance budget and once with BUDGET (bytes per second, `PUT /maintenance`), each on a
# fresh bucket. Prints objects deleted per second and bytes per second for both.
#
#   scripts/lifecycle-bench.sh [OBJECTS] [SIZE] [BUDGET]
#   e.g. scripts/lifecycle-bench.sh 20000 4KiB 20000000
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
objects=${1:-20000}
size=${2:-4KiB}
budget=${3:-20000000}
DEV_ARGS="--lifecycle-day 1s" . "$root/scripts/bench-cluster.sh" TKLIFECYCLEBENCH0001 lifecycle-bench-secret
token=$(cat "$work/data/coordinator/admin.token")
set_budget() {
    curl -sf -X PUT -H "Authorization: Bearer $token" -H 'content-type: application/json' \
        -d "{\"rate\": $1}" "http://127.0.0.1:$admin/maintenance" >/dev/null
}
# one BUCKET: fill it, set the rule, wait until it is empty; prints "seconds objects bytes"
one() {
    "$bin" bench --endpoint "http://127.0.0.1:$s3" --bucket "$1" --size "$size" \
        --objects "$objects" --concurrency 32 --json >/dev/null
    python3 - "$s3" "$1" <<'PYEOF'
import sys, time, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:" + sys.argv[1], region_name="us-east-1")
b = sys.argv[2]
def count():
    n, token = 0, None
    while True:
        kw = {"Bucket": b, "MaxKeys": 1000}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        n += r.get("KeyCount", 0)
        if not r.get("IsTruncated"):
            return n
        token = r["NextContinuationToken"]
first = count()
total = sum(o["Size"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket=b)
            for o in p.get("Contents", []))
s3.put_bucket_lifecycle_configuration(Bucket=b, LifecycleConfiguration={"Rules": [
    {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 1}}]})
# Objects are due one (one-second) day after they were written; time from when the last
# one is due to the empty bucket.
start = time.time() + 1.0
while count() > 0:
    time.sleep(0.2)
print(round(time.time() - start, 2), first, total)
PYEOF
}
set_budget 0
read -r secs n bytes < <(one lc-unlimited)
echo "no budget: $n objects ($bytes bytes) deleted in ${secs} s: $(python3 -c "print(round($n/$secs))") objects/s, $(python3 -c "print(round($bytes/$secs/1e6, 1))") MB/s"
set_budget "$budget"
read -r secs n bytes < <(one lc-budget)
echo "budget $budget B/s: $n objects ($bytes bytes) deleted in ${secs} s: $(python3 -c "print(round($n/$secs))") objects/s, $(python3 -c "print(round($bytes/$secs/1e6, 1))") MB/s"
