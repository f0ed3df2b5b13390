#!/usr/bin/env bash
# Runs every Tessera test. Installs what the build needs on a fresh Debian machine first
# (librocksdb-sys needs libclang at build time).
set -euo pipefail
cd "$(dirname "$0")/.."
# (libclang-cpp, which Debian images often carry, is not enough: bindgen needs libclang itself.)
if command -v dpkg >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  echo "installing libclang-dev (needed to build RocksDB bindings)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev
fi
# Release profile: the codec and hashing are too slow unoptimised for the 64 MiB and 512 MiB
# tests, and one profile means RocksDB is compiled once.
cargo test --release --workspace "$@"
