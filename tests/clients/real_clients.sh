#!/usr/bin/env bash
# What users of each S3 client do, against a Tessera cluster that requires signatures:
# make a bucket, upload 1 KiB / 1 MiB / 100 MiB+1 (multipart where the client splits), list
# past 1000 keys, download and compare sha256, sync a folder, copy, batch delete, presigned
# GET and PUT, abort an upload. Clients: awscli, boto3 (current and Debian's), rclone, s3cmd,
# curl --aws-sigv4.
#
# Environment: ENDPOINT (http://127.0.0.1:PORT), KEY, SECRET, WORK (an empty folder).
# Prints "ALL OK" at the end; any failure stops the script with a message.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export AWS_ACCESS_KEY_ID="$KEY" AWS_SECRET_ACCESS_KEY="$SECRET" AWS_DEFAULT_REGION=us-east-1
export AWS_ENDPOINT_URL="$ENDPOINT"
hostport="${ENDPOINT#http://}"
cd "$WORK"
T="timeout 300"

fail() { echo "FAILED: $*"; exit 1; }
ok() { echo "ok: $*"; }
same() { [ "$(sha256sum < "$1")" = "$(sha256sum < "$2")" ] || fail "$3: $1 and $2 differ"; ok "$3"; }

mkdir -p files tree/sub
head -c 1024 /dev/urandom > files/small
head -c $((1 << 20)) /dev/urandom > files/medium
head -c $((100 * (1 << 20) + 1)) /dev/urandom > files/big
for i in 1 2 3; do head -c $((i * 7000)) /dev/urandom > "tree/f$i"; done
head -c 123456 /dev/urandom > tree/sub/deep

# 1001 keys for every client to list (written once, with boto3).
python3 - <<'EOF'
import os, boto3, concurrent.futures as cf
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1")
s3.create_bucket(Bucket="shared")
with cf.ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda i: s3.put_object(Bucket="shared", Key=f"many/{i:05}", Body=b"k"), range(1001)))
EOF
ok "1001 keys written"

# ---- awscli (current, default settings) ----
echo "== awscli $(aws --version 2>&1)"
A="$T aws"
a3() { $T aws s3 "$@" --only-show-errors; }
$A s3 mb s3://aws-cli >/dev/null
for f in small medium big; do a3 cp "files/$f" "s3://aws-cli/up/$f"; done
for f in small medium big; do a3 cp "s3://aws-cli/up/$f" "down.$f"; same "files/$f" "down.$f" "awscli $f"; done
$A s3api head-object --bucket aws-cli --key up/big | grep -q '\-13\\"' || fail "awscli big upload not multipart"
n=$($A s3 ls --recursive s3://shared/many/ | wc -l); [ "$n" = 1001 ] || fail "awscli listed $n keys"; ok "awscli lists 1001"
a3 sync tree s3://aws-cli/tree
rm -rf back && a3 sync s3://aws-cli/tree back && diff -r tree back || fail "awscli sync"; ok "awscli sync"
a3 cp s3://aws-cli/up/medium s3://aws-cli/copied && a3 cp s3://aws-cli/copied down.copied
same files/medium down.copied "awscli copy"
url=$($A s3 presign s3://aws-cli/up/small --expires-in 300)
curl -sf "$url" -o down.presigned && same files/small down.presigned "awscli presigned GET"
id=$($A s3api create-multipart-upload --bucket aws-cli --key aborted --query UploadId --output text)
$A s3api upload-part --bucket aws-cli --key aborted --upload-id "$id" --part-number 1 --body files/medium >/dev/null
$A s3api abort-multipart-upload --bucket aws-cli --key aborted --upload-id "$id"
[ -z "$($A s3api list-multipart-uploads --bucket aws-cli --query 'Uploads[].UploadId' --output text | grep -v None || true)" ] || fail "awscli abort"
ok "awscli abort"
a3 rm --recursive s3://aws-cli/
$A s3 rb s3://aws-cli >/dev/null
ok "awscli batch delete and rb"

# ---- boto3: current (pip) and Debian's python3-boto3 ----
for py in python3 /usr/bin/python3; do
  b="boto3-$(basename "$(readlink -f "$(command -v $py)")" | tr -dc 'a-z0-9')-$RANDOM"
  echo "== boto3 via $py"
  ENDPOINT="$ENDPOINT" KEY="$KEY" SECRET="$SECRET" BUCKET="$b" FILES="$WORK/files" SHARED=shared \
    $T $py "$here/boto3_user.py" | grep -q "ALL OK" || fail "boto3 via $py"
  ok "boto3 via $py"
done

# ---- rclone (Debian), multipart above a 16 MiB cutoff ----
echo "== $(rclone version | head -1)"
export RCLONE_CONFIG_T_TYPE=s3 RCLONE_CONFIG_T_PROVIDER=Other RCLONE_CONFIG_T_ENV_AUTH=false
export RCLONE_CONFIG_T_ACCESS_KEY_ID="$KEY" RCLONE_CONFIG_T_SECRET_ACCESS_KEY="$SECRET"
export RCLONE_CONFIG_T_ENDPOINT="$ENDPOINT" RCLONE_CONFIG_T_REGION=us-east-1 RCLONE_CONFIG_T_FORCE_PATH_STYLE=true
# rclone 1.60 cannot load a custom CA bundle into its transport; the endpoint is plain HTTP.
R="$T env -u AWS_CA_BUNDLE rclone --config /dev/null -q --s3-upload-cutoff 16M --s3-chunk-size 8M"
$R mkdir t:rclone-b
for f in small medium big; do $R copyto "files/$f" "t:rclone-b/up/$f"; done
for f in small medium big; do $R copyto "t:rclone-b/up/$f" "rc.$f"; same "files/$f" "rc.$f" "rclone $f"; done
$R check files t:rclone-b/up --one-way || fail "rclone check (MD5s)"
n=$($R lsf t:shared/many | wc -l); [ "$n" = 1001 ] || fail "rclone listed $n"; ok "rclone lists 1001"
$R sync tree t:rclone-b/tree && $R check tree t:rclone-b/tree || fail "rclone sync"; ok "rclone sync"
$R copyto t:rclone-b/up/medium t:rclone-b/copied && $R copyto t:rclone-b/copied rc.copied
same files/medium rc.copied "rclone server-side copy"
url=$($R link --expire 5m t:rclone-b/up/small)
curl -sf "$url" -o rc.presigned && same files/small rc.presigned "rclone presigned link"
$R purge t:rclone-b
ok "rclone purge"

# ---- s3cmd (multipart in 15 MiB chunks) ----
echo "== $(s3cmd --version)"
S="$T s3cmd --no-ssl --access_key=$KEY --secret_key=$SECRET --host=$hostport --host-bucket=$hostport --region=us-east-1 -c /dev/null"
Sq="$S -q"
$Sq mb s3://s3cmd-b
for f in small medium big; do $Sq put "files/$f" "s3://s3cmd-b/up/$f"; done
for f in small medium big; do $Sq get --force "s3://s3cmd-b/up/$f" "sc.$f"; same "files/$f" "sc.$f" "s3cmd $f"; done
n=$($S ls s3://shared/many/ | wc -l); [ "$n" = 1001 ] || fail "s3cmd listed $n"; ok "s3cmd lists 1001"
$Sq sync tree/ s3://s3cmd-b/tree/ && rm -rf back && mkdir back && $Sq sync s3://s3cmd-b/tree/ back/ && diff -r tree back || fail "s3cmd sync"
ok "s3cmd sync"
$Sq cp s3://s3cmd-b/up/medium s3://s3cmd-b/copied && $Sq get --force s3://s3cmd-b/copied sc.copied
same files/medium sc.copied "s3cmd copy"
url=$($S signurl s3://s3cmd-b/up/small +300)
curl -sf "$url" -o sc.presigned && same files/small sc.presigned "s3cmd signurl"
$Sq del --recursive --force s3://s3cmd-b/
$Sq rb s3://s3cmd-b
ok "s3cmd delete and rb"

# ---- curl --aws-sigv4 ----
echo "== $(curl --version | head -1)"
# curl signs the request; S3 needs the payload hash header, which curl 7.88 does not add.
C=(curl -sf --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
"${C[@]}" -X PUT "$ENDPOINT/curl-b" >/dev/null
for f in small medium; do
  "${C[@]}" -T "files/$f" "$ENDPOINT/curl-b/$f" >/dev/null
  "${C[@]}" "$ENDPOINT/curl-b/$f" -o "cu.$f"; same "files/$f" "cu.$f" "curl $f"
done
"${C[@]}" "$ENDPOINT/curl-b?list-type=2" | grep -q "<Key>medium</Key>" || fail "curl list"
# Streamed from a pipe: chunked, no Content-Length. Stored whole below the coordinator's
# limit (POST_MAX: what such a body may hold); refused with 411 above it, storing nothing.
head -c 300000 files/medium > piped.src
cat piped.src | "${C[@]}" -H "Transfer-Encoding: chunked" -T - "$ENDPOINT/curl-b/piped" >/dev/null
"${C[@]}" "$ENDPOINT/curl-b/piped" -o piped.got; same piped.src piped.got "curl chunked upload from a pipe"
head -c $((POST_MAX + 1)) /dev/zero > piped.big
code=$(cat piped.big | curl -s -o /dev/null -w "%{http_code}" --aws-sigv4 "aws:amz:us-east-1:s3" --user "$KEY:$SECRET" \
       -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" -H "Transfer-Encoding: chunked" -T - "$ENDPOINT/curl-b/piped")
[ "$code" = 411 ] || fail "chunked upload over the limit: $code, not 411"
"${C[@]}" "$ENDPOINT/curl-b/piped" -o piped.got; same piped.src piped.got "the refused upload changed nothing"
"${C[@]}" -X DELETE "$ENDPOINT/curl-b/piped"
"${C[@]}" -X DELETE "$ENDPOINT/curl-b/small" && "${C[@]}" -X DELETE "$ENDPOINT/curl-b/medium"
"${C[@]}" -X DELETE "$ENDPOINT/curl-b"
ok "curl --aws-sigv4"
echo "ALL OK"
