#!/usr/bin/env bash
# Runs every Tessera test, after installing what the build needs (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# Release profile: the codec and hashing are too slow unoptimised for the 64 MiB and 512 MiB
# tests, and one profile means RocksDB is compiled once.
cargo test --release --workspace "$@"
