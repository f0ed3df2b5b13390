# Sourced by the benchmark scripts that run their own processes: CPU time and quiet waits.

# ticks PID...: CPU time the processes used so far (user + system), in clock ticks.
ticks() { local p s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $s; }

# quiet_wait SECONDS PID...: waits until the processes together used under 5% of a core two
# seconds in a row; after SECONDS it gives up and the caller goes on.
quiet_wait() {
  local limit=$1 quiet=0 a b
  shift
  for _ in $(seq 1 "$limit"); do
    a=$(ticks "$@"); sleep 1; b=$(ticks "$@")
    if [ $((b - a)) -lt 5 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ "$quiet" -ge 2 ] && return 0
  done
  return 0
}
