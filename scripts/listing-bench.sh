#!/usr/bin/env bash
# What versions cost a listing: ListObjectsV2 over a bucket of KEYS keys with VERSIONS
# versions each (versioning enabled, every key overwritten VERSIONS-1 times) against a bucket
# of KEYS keys with one version, on one `tessera dev` cluster. Both are filled with `tessera
# bench` (4 KiB objects), then each is listed whole (pages of 1000, signed, one client)
# ROUNDS times, alternating; prints each listing's time and the median ratio.
#
#   scripts/listing-bench.sh [KEYS] [VERSIONS] [ROUNDS]
#   e.g. scripts/listing-bench.sh 100000 10 5
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
keys=${1:-100000}
versions=${2:-10}
rounds=${3:-5}
. "$root/scripts/bench-cluster.sh" TKLISTINGBENCH000001 listing-bench-secret
python3 - "$s3" <<'PYEOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:" + sys.argv[1], region_name="us-east-1")
for b in ("versioned", "plain"):
    s3.create_bucket(Bucket=b)
s3.put_bucket_versioning(Bucket="versioned", VersioningConfiguration={"Status": "Enabled"})
PYEOF
fill() {
    "$bin" bench --endpoint "http://127.0.0.1:$s3" --bucket "$1" --size 4KiB --objects "$keys" \
        --concurrency 32 --json >/dev/null
}
fill plain
for _ in $(seq "$versions"); do fill versioned; done
python3 - "$s3" "$keys" "$versions" "$rounds" <<'PYEOF'
import statistics, sys, time, boto3
s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:" + sys.argv[1], region_name="us-east-1")
keys, versions, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def listing(bucket):
    t, n, token = time.time(), 0, None
    while True:
        kw = {"Bucket": bucket, "MaxKeys": 1000}
        if token:
            kw["ContinuationToken"] = token
        r = s3.list_objects_v2(**kw)
        n += r.get("KeyCount", 0)
        if not r.get("IsTruncated"):
            break
        token = r["NextContinuationToken"]
    assert n == keys, (bucket, n)
    return time.time() - t
v = s3.list_object_versions(Bucket="versioned", Prefix="", MaxKeys=1000)
assert len(v.get("Versions", [])) == 1000
ratios = []
for r in range(rounds):
    order = ["plain", "versioned"] if r % 2 == 0 else ["versioned", "plain"]
    t = {b: listing(b) for b in order}
    ratios.append(t["versioned"] / t["plain"])
    print(f"round {r + 1}: {keys} keys, plain {t['plain']:.2f} s, {versions} versions each {t['versioned']:.2f} s, ratio {ratios[-1]:.3f}")
print(f"median ratio versioned/plain: {statistics.median(ratios):.3f}")
PYEOF
