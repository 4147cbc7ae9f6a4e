# Sourced by bench-scrape.sh and bench-bytes.sh, which start servers side by
# side: `bench_tmp NAME` makes the temporary directory `$tmp` and arranges
# that every PID added to `pids` is stopped, and `$tmp` removed (unless
# KEEP=1), on exit; `wait_for` waits for a started server.
# shellcheck shell=bash

bench_tmp() { # bench_tmp NAME
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  pids=()
  trap bench_cleanup EXIT
}

bench_cleanup() {
  for pid in "${pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait "$pid" 2>/dev/null || true; fi
  done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $tmp"; else rm -rf "$tmp"; fi
}

wait_for() { # wait_for WHAT PID TRIES COMMAND...: retry COMMAND every 0.1 s
  local what=$1 pid=$2 tries=$3; shift 3
  for _ in $(seq 1 "$tries"); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench: $what exited" >&2; tail -20 "$tmp/$what.log" >&2 || true; exit 1; }
    sleep 0.1
  done
  echo "bench: $what not ready" >&2; exit 1
}
