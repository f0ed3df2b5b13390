#!/usr/bin/env bash
# Installs what building Tessera needs on a fresh Debian machine: librocksdb-sys generates its
# bindings with libclang. (libclang-cpp, which Debian images often carry, is not enough.)
set -euo pipefail
if command -v dpkg >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  echo "installing libclang-dev (needed to build the RocksDB bindings)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libclang-dev
fi
# The client tests drive the S3 clients people use: Debian's rclone, s3cmd, restic and (older)
# python3-boto3, and the current awscli and boto3 from PyPI.
missing=""
# The network-fault tests make namespaces with iproute2 and send requests from inside them with
# curl.
# The console test loads the web console in headless Chromium. The deploy test checks the
# systemd units with systemd-analyze (package systemd).
for p in rclone s3cmd restic python3-boto3 iproute2 curl chromium systemd; do
  command -v dpkg >/dev/null && ! dpkg -s "$p" >/dev/null 2>&1 && missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "installing$missing (client tests)..."
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq $missing
fi
if ! python3 -c "import boto3, requests" >/dev/null 2>&1 || ! command -v aws >/dev/null; then
  echo "installing boto3, requests and awscli (client tests)..."
  python3 -m pip install -q boto3 requests awscli
fi
