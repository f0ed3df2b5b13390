#!/usr/bin/env bash
# Old versions through the clients people restore with: awscli `s3api put-bucket-versioning`,
# `list-object-versions` and `get-object --version-id`; rclone `--s3-versions` (old versions
# listed with their time in the name, and read) and `--s3-version-at` (the bucket as it was).
#
# Environment: ENDPOINT (http://127.0.0.1:PORT), KEY, SECRET, WORK (an empty folder).
# Prints "ALL OK" at the end; any failure stops the script with a message.
set -euo pipefail
export AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="$ENDPOINT"
cd "$WORK"
T="timeout 120"
fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }

# ---- awscli ----
$T aws s3api create-bucket --bucket history >/dev/null
$T aws s3api put-bucket-versioning --bucket history --versioning-configuration Status=Enabled
[ "$($T aws s3api get-bucket-versioning --bucket history --query Status --output text)" = Enabled ] \
    || fail "versioning not reported Enabled"
echo "first" > v1; echo "second" > v2
first=$($T aws s3api put-object --bucket history --key notes.txt --body v1 --query VersionId --output text)
sleep 1.2
before=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1.2
$T aws s3api put-object --bucket history --key notes.txt --body v2 >/dev/null
n=$($T aws s3api list-object-versions --bucket history --query 'length(Versions)' --output text)
[ "$n" = 2 ] || fail "awscli listed $n versions"
$T aws s3api get-object --bucket history --key notes.txt --version-id "$first" old.txt >/dev/null
cmp -s old.txt v1 || fail "awscli read the wrong bytes for the old version"
$T aws s3 cp s3://history/notes.txt now.txt >/dev/null
cmp -s now.txt v2 || fail "awscli read the wrong current version"
ok "awscli lists and reads old versions"

# ---- rclone (Debian) ----
export RCLONE_CONFIG_T_TYPE=s3 RCLONE_CONFIG_T_PROVIDER=Other RCLONE_CONFIG_T_ENV_AUTH=false
export RCLONE_CONFIG_T_ACCESS_KEY_ID="$KEY" RCLONE_CONFIG_T_SECRET_ACCESS_KEY="$SECRET"
export RCLONE_CONFIG_T_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_T_REGION=us-east-1 RCLONE_CONFIG_T_FORCE_PATH_STYLE=true
R="$T env -u AWS_CA_BUNDLE rclone --config /dev/null -q"
listed=$($R lsf --s3-versions t:history)
echo "$listed"
[ "$(echo "$listed" | wc -l)" = 2 ] || fail "rclone --s3-versions listed: $listed"
old=$(echo "$listed" | grep -v '^notes.txt$') || fail "rclone shows no old version"
$R cat --s3-versions "t:history/$old" > rc-old.txt
cmp -s rc-old.txt v1 || fail "rclone read the wrong bytes for $old"
$R cat --s3-version-at "$before" t:history/notes.txt > rc-at.txt
cmp -s rc-at.txt v1 || fail "rclone --s3-version-at $before read the wrong version"
ok "rclone lists and reads old versions"
echo "ALL OK"
