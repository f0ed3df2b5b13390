#!/usr/bin/env bash
# Builds and runs the ISA-L reference encode benchmark (installs Debian's libisal-dev if needed).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -f /usr/include/isa-l/erasure_code.h ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libisal-dev
fi
out=$(mktemp)
gcc -O2 -o "$out" encode.c -lisal
"$out"
rm -f "$out"
