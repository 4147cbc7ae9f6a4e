#!/usr/bin/env bash
# TSDB against the reference, in one run on the same machine: wall time of
# `emberlens tsdb dump` and `promtool tsdb dump` (Debian's Prometheus 2.42) on
# the shared fixtures, full and selective, median of N runs; prints ratios.
# Usage: tools/bench-tsdb.sh [RUNS]   (builds emberlens in release mode first)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
runs="${1:-7}"
fx="$root/../shared/fixtures/tsdb"
[ -d "$fx" ] || { echo "bench: $fx not found" >&2; exit 1; }
command -v promtool >/dev/null || { echo "bench: promtool not found (apt-get install prometheus)" >&2; exit 1; }
cargo build --quiet --release -p emberlens-server --manifest-path "$root/Cargo.toml"
ours="$root/target/release/emberlens"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { # time_ms CMD...: median wall ms over $runs runs (output discarded)
  for _ in $(seq "$runs"); do
    local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N)
    echo $(( (t1 - t0) / 1000000 ))
  done | median
}

printf '%-16s %-58s %10s %10s %7s\n' dataset query "ours ms" "promtool" ratio
for ds in synthetic-6h/data snapshot-live; do
  name="${ds%/data}"; copy="$tmp/$name"
  mkdir -p "$copy"; cp -a "$fx/$ds/." "$copy/"; chmod -R u+w "$copy"; mkdir -p "$copy/wal"
  for sel in '' 'up{job="node"}' 'fx_requests_total{instance="host-07",method="DELETE"}' '{__name__=~"fx_temp.*|node_cpu.*",sensor!="cpu"}'; do
    args=(); [ -n "$sel" ] && args=("--match=$sel")
    a=$(time_ms "$ours" tsdb dump "${args[@]}" "$fx/$ds")
    b=$(time_ms promtool tsdb dump "${args[@]}" "$copy")
    printf '%-16s %-58s %10s %10s %7s\n' "$name" "${sel:-(all series)}" "$a" "$b" "$(awk -v a="$a" -v b="$b" 'BEGIN { if (a == 0) a = 1; printf "%.1fx", b / a }')"
  done
done
echo "ratio = promtool time / emberlens time (higher is better for emberlens)"
