#!/usr/bin/env bash
# Runs the S3 reference suite (ceph/s3-tests, a checkout given as the first argument) against a
# cluster of real processes: one coordinator and six storage nodes (4+2), with the suite's
# sample access keys imported by `tessera key import`.
#
#   scripts/s3-tests.sh SUITE_DIR [--check] [pytest args...]
#
# Without pytest args it runs the selection the project measures itself on: test_s3.py and
# test_headers.py minus IAM/STS, SNS, S3 Select, encryption, logging, website, storage-class
# transition and cloud-tier families; the lifecycle expiry tests on a second cluster whose
# lifecycle day lasts LC_DAY seconds (default 2; the suite's lc_debug_interval is set to
# match). With pytest args, one cluster (with LC_DAY set: that lifecycle day). Results: passed
# test names in $OUT/passed (OUT defaults to ./s3-tests-out). With --check, every test named in
# tests/s3-tests/pass-list must pass.
# The suite's Python requirements are installed into a virtualenv under $S3TESTS_VENV
# (default /var/tmp/tessera-s3tests-venv).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
suite=$(cd "${1:?usage: scripts/s3-tests.sh SUITE_DIR [--check] [pytest args...]}" && pwd)
shift
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
out=$(mkdir -p "${OUT:-./s3-tests-out}" && cd "${OUT:-./s3-tests-out}" && pwd)
venv=${S3TESTS_VENV:-/var/tmp/tessera-s3tests-venv}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/tessera-ci-target}"

if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$suite/requirements.txt"
fi
(cd "$root" && cargo build --release -q)
bin="$CARGO_TARGET_DIR/release/tessera"

work=$(mktemp -d)
pids=()
stop_cluster() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
}
cleanup() {
    stop_cluster
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_cluster DIR [coordinator flags...]: a coordinator and six nodes under DIR, the suite's
# users imported, and the suite's configuration in DIR/s3tests.conf.
start_cluster() {
    local dir=$1
    shift
    mkdir -p "$dir"
    local s3 admin
    s3=$(free_port)
    admin=$(free_port)
    "$bin" coordinator --listen "127.0.0.1:$s3" --admin-listen "127.0.0.1:$admin" \
        --data-dir "$dir/coord" --heartbeat-timeout 3s "$@" >"$dir/coord.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do [ -f "$dir/coord/cluster.secret" ] && break; sleep 0.1; done
    for i in 1 2 3 4 5 6; do
        "$bin" node --listen "127.0.0.1:$(free_port)" --data-dir "$dir/node$i" \
            --coordinator "http://127.0.0.1:$admin" \
            --cluster-secret-file "$dir/coord/cluster.secret" >"$dir/node$i.log" 2>&1 &
        pids+=($!)
    done
    export TESSERA_COORDINATOR="http://127.0.0.1:$admin"
    cli() { "$bin" --admin-token-file "$dir/coord/admin.token" "$@"; }
    for _ in $(seq 100); do
        [ "$(cli status --json 2>/dev/null | python3 -c 'import json,sys; print(sum(1 for n in json.load(sys.stdin)["cluster"]["nodes"] if n["state"]=="up"))' 2>/dev/null)" = 6 ] && break
        sleep 0.2
    done
    # The sample configuration's users, as `s3tests.conf.SAMPLE` names them.
    local conf="$dir/s3tests.conf"
    sed -e "s/^port = .*/port = $s3/" -e "s/^host = .*/host = 127.0.0.1/" \
        -e "s/^bucket prefix = .*/bucket prefix = s3t-{random}-/" \
        "$suite/s3tests.conf.SAMPLE" >"$conf"
    # Tessera's canonical user id is the access key id and its display name the key's name;
    # lifecycle days last LC_DAY seconds when the coordinator was started with that.
    python3 - "$conf" "${LC_DAY:-10}" <<'EOF' | while read -r section id secret; do
import configparser, sys
c = configparser.RawConfigParser(); c.read(sys.argv[1])
for s in ("s3 main", "s3 alt", "s3 tenant", "iam"):
    if c.has_section(s) and c.has_option(s, "access_key"):
        name = s.replace(" ", "-")
        c.set(s, "user_id", c.get(s, "access_key"))
        c.set(s, "display_name", name)
        print(name, c.get(s, "access_key"), c.get(s, "secret_key"))
c.set("s3 main", "lc_debug_interval", sys.argv[2])
with open(sys.argv[1], "w") as f:
    c.write(f)
EOF
        cli key import --access-key-id "$id" --secret-access-key "$secret" --name "$section" >/dev/null
    done
}

# run_suite DIR [pytest args...]: the suite against the cluster of DIR; junit XML in DIR.
run_suite() {
    local dir=$1
    shift
    (cd "$suite" && S3TEST_CONF="$dir/s3tests.conf" "$venv/bin/pytest" -q -p no:cacheprovider \
        --junitxml="$dir/junit.xml" -o junit_family=xunit1 "$@" >>"$out/pytest.log" 2>&1)
}

select='not (iam_account or iam_cross_account or iam_role or iam_tenant or iam_user or test_of_sts
 or webidentity_test or sns or s3select or encryption or sse_s3 or bucket_encryption
 or bucket_logging or bucket_logging_cleanup or s3website or s3website_routing_rules
 or s3website_redirect_location or lifecycle_transition or object_lock or cloud_transition
 or cloud_restore or user_policy or role_policy or group or group_policy or session_policy
 or abac_test or token_claims_trust_policy_test)'
select=$(echo $select)
: >"$out/pytest.log"
set +e
if [ $# -eq 0 ]; then
    # Lifecycle expiry tests wait for rules to act: they run on a cluster whose lifecycle day
    # lasts LC_DAY seconds (the suite sleeps in multiples of its lc_debug_interval); the rest,
    # x-amz-expiration's dates among them, on one with real days.
    start_cluster "$work/main"
    run_suite "$work/main" s3tests/functional/test_s3.py s3tests/functional/test_headers.py \
        -m "$select" -k "not (lifecycle and expiration) or expiration_header"
    cp "$work/main/coord.log" "$out/coord.log"
    stop_cluster
    LC_DAY=${LC_DAY:-2}
    start_cluster "$work/lc" --lifecycle-day "${LC_DAY}s"
    run_suite "$work/lc" s3tests/functional/test_s3.py \
        -m "$select" -k "lifecycle and expiration and not expiration_header"
    cp "$work/lc/coord.log" "$out/coord-lifecycle.log"
else
    start_cluster "$work/main" ${LC_DAY:+--lifecycle-day "${LC_DAY}s"}
    run_suite "$work/main" "$@"
    cp "$work/main/coord.log" "$out/coord.log"
fi
set -e
python3 - "$out" "$work"/*/junit.xml <<'EOF'
import sys, xml.etree.ElementTree as ET
out = sys.argv[1]
passed, failed = [], []
for case in (c for f in sys.argv[2:] for c in ET.parse(f).iter("testcase")):
    name = case.get("name")
    bad = any(child.tag in ("failure", "error", "skipped") for child in case)
    (failed if bad else passed).append(name)
open(f"{out}/passed", "w").write("".join(f"{n}\n" for n in sorted(passed)))
open(f"{out}/failed", "w").write("".join(f"{n}\n" for n in sorted(failed)))
print(f"s3-tests: {len(passed)} passed, {len(failed)} failed or skipped "
      f"(of {len(passed) + len(failed)}); names in {out}/passed and {out}/failed")
EOF
if [ "$check" = 1 ]; then
    missing=$(comm -23 <(grep -v '^#' "$root/tests/s3-tests/pass-list" | sort) <(sort "$out/passed"))
    if [ -n "$missing" ]; then
        echo "listed tests that did not pass:"; echo "$missing"; exit 1
    fi
    echo "every test in tests/s3-tests/pass-list passed"
fi
