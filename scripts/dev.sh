#!/usr/bin/env bash
# Runs a local cluster (`tessera dev`: coordinator + 6 storage nodes, RS 4+2, data in
# ./tessera-data), after installing what the build needs (scripts/setup.sh). Arguments go to
# `tessera dev` (e.g. --nodes 8 --ec 6+2). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
exec cargo run --release -- dev "$@"
