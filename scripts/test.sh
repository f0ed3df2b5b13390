#!/usr/bin/env bash
# Runs every Tessera test. Installs what the build needs on a fresh Debian machine first
# (librocksdb-sys needs libclang at build time).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 && ! ldconfig -p 2>/dev/null | grep -q libclang; then
  echo "installing libclang-dev (needed to build RocksDB bindings)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev
fi
# Release profile: the codec and hashing are too slow unoptimised for the 64 MiB and 512 MiB
# tests, and one profile means RocksDB is compiled once.
cargo test --release --workspace "$@"
