#!/usr/bin/env bash
# restic (Debian's) against a bucket whose default retention locks every object it writes, as
# an immutable backup target is set up: object lock with a default GOVERNANCE retention made
# with awscli, then restic `init`, `backup`, `check --read-data`, a second `backup`, `restore`
# (byte-identical) and `snapshots`; every pack file restic wrote is under the retention, and
# deleting one by version id is refused.
#
# Environment: ENDPOINT (http://127.0.0.1:PORT), KEY, SECRET, WORK (an empty folder).
# Prints "ALL OK" at the end; any failure stops the script with a message.
set -euo pipefail
export AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="$ENDPOINT"
cd "$WORK"
T="timeout 180"
fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }

$T aws s3api create-bucket --bucket locked-backups --object-lock-enabled-for-bucket >/dev/null
$T aws s3api put-object-lock-configuration --bucket locked-backups --object-lock-configuration \
    '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":30}}}'
ok "bucket with a default retention"

export RESTIC_REPOSITORY="s3:$ENDPOINT/locked-backups" RESTIC_PASSWORD="a restic test password"
export RESTIC_CACHE_DIR="$WORK/cache"
mkdir -p src/docs src/media
for i in $(seq 1 40); do head -c $((i * 997)) /dev/urandom > "src/docs/file-$i.txt"; done
head -c $((6 * 1024 * 1024)) /dev/urandom > src/media/big.bin
$T restic init -q || fail "restic init"
$T restic backup -q src || fail "restic backup"
$T restic check -q --read-data || fail "restic check --read-data"
head -c 300000 /dev/urandom > src/docs/added.bin
echo "changed" >> src/docs/file-1.txt
$T restic backup -q src || fail "the second restic backup"
$T restic check -q || fail "restic check after the second backup"
n=$($T restic snapshots --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] || fail "restic lists $n snapshots"
$T restic restore -q latest --target restored || fail "restic restore"
diff -r src "restored$WORK/src" >/dev/null || diff -r src restored/src >/dev/null \
    || fail "restored files differ"
ok "restic init, backup, check --read-data, backup, restore identical"

# What restic wrote is locked: a pack file carries the default retention and cannot be
# deleted by its version id.
pack=$($T aws s3api list-objects-v2 --bucket locked-backups --prefix data/ --query 'Contents[0].Key' --output text)
[ -n "$pack" ] && [ "$pack" != None ] || fail "no pack files listed"
mode=$($T aws s3api get-object-retention --bucket locked-backups --key "$pack" --query Retention.Mode --output text)
[ "$mode" = GOVERNANCE ] || fail "pack $pack has retention $mode"
vid=$($T aws s3api head-object --bucket locked-backups --key "$pack" --query VersionId --output text)
if $T aws s3api delete-object --bucket locked-backups --key "$pack" --version-id "$vid" >/dev/null 2>err.txt; then
    fail "a locked pack file was deleted"
fi
grep -q AccessDenied err.txt || fail "deleting a locked pack: $(cat err.txt)"
$T restic check -q --read-data || fail "restic check --read-data at the end"
ok "restic's pack files are locked"
echo "ALL OK"
