#!/usr/bin/env bash
# Installs what building Tessera needs on a fresh Debian machine: librocksdb-sys generates its
# bindings with libclang. (libclang-cpp, which Debian images often carry, is not enough.)
set -euo pipefail
if command -v dpkg >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  echo "installing libclang-dev (needed to build the RocksDB bindings)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev
fi
# The client tests drive boto3 (with requests) as real S3 clients do.
if ! python3 -c "import boto3, requests" >/dev/null 2>&1; then
  echo "installing boto3 and requests (client tests)..."
  python3 -m pip install -q boto3 requests
fi
