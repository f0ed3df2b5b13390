#!/usr/bin/env bash
# Installs what building Tessera needs on a fresh Debian machine: librocksdb-sys generates its
# bindings with libclang. (libclang-cpp, which Debian images often carry, is not enough.)
set -euo pipefail
if command -v dpkg >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  echo "installing libclang-dev (needed to build the RocksDB bindings)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev
fi
