#!/usr/bin/env bash
# Coordinator memory under load: coordinator + 6 node processes on fixed loopback ports
# (17070, 17071, 17100-17105): one 1 GiB PUT, then 32 PUTs and GETs of 16 MiB objects at
# concurrency 16; prints throughput and the coordinator's peak RSS (VmHWM) after each phase.
# Usage: scripts/rss-bench.sh   (needs a release build)
cd "$(dirname "$0")/.."
B=${TESSERA_BIN:-target/release/tessera}; T=$(mktemp -d)
$B coordinator --anonymous --listen 127.0.0.1:17070 --admin-listen 127.0.0.1:17071 --data-dir $T/c 2>/dev/null & C=$!
sleep 0.5
export TESSERA_CLUSTER_SECRET=$(cat $T/c/cluster.secret)
for i in 0 1 2 3 4 5; do $B node --listen 127.0.0.1:$((17100+i)) --data-dir $T/n$i --coordinator http://127.0.0.1:17071 --zone z$i 2>/dev/null & done
sleep 2.5
grep -E "VmHWM" /proc/$C/status | sed 's/^/start: /'
$B bench --endpoint http://127.0.0.1:17070 --bucket huge --size 1GiB --objects 1 --concurrency 1 --cleanup --json | python3 -c "import json,sys; v=json.load(sys.stdin); print('1 GiB PUT', round(v['put']['mb_per_s']), 'MB/s')"
grep -E "VmHWM" /proc/$C/status | sed 's/^/after 1 GiB PUT: /'
$B bench --endpoint http://127.0.0.1:17070 --size 16MiB --objects 32 --concurrency 16 --json | python3 -c "import json,sys; v=json.load(sys.stdin); print('PUT', round(v['put']['mb_per_s']), 'GET', round(v['get']['mb_per_s']))"
grep -E "VmHWM|VmRSS" /proc/$C/status
$B bench --endpoint http://127.0.0.1:17070 --size 16MiB --objects 32 --concurrency 16 --skip-put --json | python3 -c "import json,sys; v=json.load(sys.stdin); print('GET', round(v['get']['mb_per_s']))" 
grep -E "VmHWM" /proc/$C/status
pkill -9 -f "127.0.0.1:1707[01]"; wait 2>/dev/null; rm -rf $T
