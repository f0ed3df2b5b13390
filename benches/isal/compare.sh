#!/usr/bin/env bash
# Tessera's encode vs Intel ISA-L on this machine, in one run: alternates the two programs
# (benches/isal/encode.c and benches/codec_rate.rs, same method: parity into buffers allocated
# once) for ROUNDS rounds and prints the median GB/s of each and the ratio per k+m, plus ours
# with parity allocated per call as a PUT does.
# Usage: benches/isal/compare.sh [ROUNDS]   (default 3; installs libisal-dev if missing)
set -euo pipefail
rounds=${1:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ ! -f /usr/include/isa-l/erasure_code.h ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq libisal-dev
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/isal" "$root/benches/isal/encode.c" -lisal
cd "$root"
cargo bench --bench codec_rate --no-run >/dev/null 2>&1
for r in $(seq "$rounds"); do
  "$work/isal" >"$work/isal.$r"
  cargo bench --bench codec_rate 2>/dev/null | grep -E '^[0-9]+\+[0-9]+' >"$work/ours.$r"
done
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-6s %12s %12s %7s %20s\n' "k+m" "ISA-L GB/s" "ours GB/s" "ratio" "ours, alloc per call"
for shape in 4+2 6+3 10+4 17+3; do
  i=$(cat "$work"/isal.* | awk -v s="$shape" '$1==s {print $2}' | median)
  o=$(cat "$work"/ours.* | awk -v s="$shape" '$1==s {print $2}' | median)
  a=$(cat "$work"/ours.* | awk -v s="$shape/alloc" '$1==s {print $2}' | median)
  printf '%-6s %12s %12s %6.0f%% %20s\n' "$shape" "$i" "$o" "$(echo "$o $i" | awk '{print 100*$1/$2}')" "$a"
done
