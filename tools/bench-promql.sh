#!/usr/bin/env bash
# PromQL benchmark: Debian's Prometheus (2.42) and `emberlens serve` over the
# same TSDB blocks, answering the same fixed queries over HTTP in one run on
# this machine; prints per query the median times, the ratio
# Emberlens/Prometheus (goal <= 0.5), the samples Prometheus touched
# (stats=all totalQueryableSamples), whether both answered the same, and the
# geometric mean of the ratios.
#
# Usage: tools/bench-promql.sh [RUNS]        (RUNS timed runs per query, default 5)
#   BENCH_DATA=DIR   dataset cache (default target/bench-data): generated once
#                    (tools/bench/make-dataset.sh: 10,000 series x 24 h at 15 s,
#                    OpenMetrics -> promtool, ~5 min, ~7 GB temporary, ~170 MB kept)
#   BENCH_DATASETS="bench fixture"   which datasets (fixture = shared synthetic-6h)
#   EMBERLENS_BIN=PATH   use this binary instead of building target/release/emberlens
#   BENCH_WASM=0     skip the Wasm columns (default 1: needs node, /usr/bin/chromium,
#                    e2e/node_modules/playwright-core and the built app in app/dist,
#                    `cd app && trunk build --release --offline`; not rebuilt here)
# Queries and the comparison live in tools/bench/bench_promql.py. The Wasm
# columns (its "WASM SLOT", tools/bench/wasm_bench.mjs): the same queries
# evaluated by the Wasm engine in the app's Web Worker in headless Chromium,
# the dataset's block files handed to the worker as Files (OpenFiles), wall
# time per Query measured in the page. Both servers run on loopback on free
# ports over copies of the blocks (emberlens also serves a copy of app/dist
# for the browser) and are stopped by PID at the end.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
runs="${1:-5}"
data="${BENCH_DATA:-$root/target/bench-data}"
datasets="${BENCH_DATASETS:-bench fixture}"
oracle="$root/../shared/fixtures/oracle/oracle.sh"
fixture="$root/../shared/fixtures/tsdb/synthetic-6h/data"
for p in prometheus promtool curl python3; do
  command -v "$p" >/dev/null || { echo "bench: $p not found (tools/setup.sh)" >&2; exit 1; }
done
wasm="${BENCH_WASM:-1}"
if [ "$wasm" = 1 ]; then
  for p in "$root/app/dist/index.html" "$root/app/dist/emberlens-worker_loader.js" \
           "$root/e2e/node_modules/playwright-core" "${CHROMIUM:-/usr/bin/chromium}"; do
    [ -e "$p" ] || { echo "bench: $p not found (BENCH_WASM=0 skips the Wasm columns)" >&2; exit 1; }
  done
  command -v node >/dev/null || { echo "bench: node not found (BENCH_WASM=0 skips the Wasm columns)" >&2; exit 1; }
fi
[ -x "$oracle" ] || { echo "bench: $oracle not found" >&2; exit 1; }

if [ -n "${EMBERLENS_BIN:-}" ]; then
  ours="$EMBERLENS_BIN"
else
  cargo build --quiet --release -p emberlens-server --manifest-path "$root/Cargo.toml"
  ours="$root/target/release/emberlens"
fi
case " $datasets " in *" bench "*) "$root/tools/bench/make-dataset.sh" "$data" ;; esac

tmp=$(mktemp -d /tmp/bench-promql.XXXXXX)
ember_pid=""
cleanup() {
  if [ -n "$ember_pid" ] && kill -0 "$ember_pid" 2>/dev/null; then kill "$ember_pid"; wait "$ember_pid" 2>/dev/null || true; fi
  if [ -n "${ORACLE_STATE:-}" ]; then "$oracle" stop || true; unset ORACLE_STATE; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/ui"
[ "$wasm" = 1 ] && cp -a "$root/app/dist/." "$tmp/ui/"

start_ember() { # start_ember DIR: serve DIR on a free port, sets ember_pid and ember_url
  "$ours" serve --storage.tsdb.path "$1" --web.listen-address 127.0.0.1:0 \
    --web.ui-path "$tmp/ui" --scrape.interval 1h >"$tmp/ember.out" 2>"$tmp/ember.log" &
  ember_pid=$!
  for _ in $(seq 1 600); do
    ember_url=$(sed -n 's|^Emberlens listening on \(http://[^/]*\)/$|\1|p' "$tmp/ember.out")
    [ -n "$ember_url" ] && return 0
    kill -0 "$ember_pid" 2>/dev/null || { cat "$tmp/ember.log" >&2; echo "bench: emberlens exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench: emberlens not ready after 60 s" >&2; exit 1
}

echo "prometheus: $(prometheus --version 2>&1 | head -1)"
echo "emberlens: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo '+dirty'); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc=$(nproc)"
echo "runs=$runs (+1 warm-up) per query and server$([ "$wasm" = 1 ] && echo " and in the Wasm worker (chromium: $("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null | head -1))"); loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
results=()
for ds in $datasets; do
  case "$ds" in
    bench) src="$data/data" ;;
    fixture) src="$fixture" ;;
    *) echo "bench: unknown dataset $ds" >&2; exit 1 ;;
  esac
  echo "dataset $ds ($src):" >&2
  eval "$("$oracle" start "$src")"
  export ORACLE_STATE ORACLE_URL
  mkdir -p "$tmp/$ds"; cp -a "$src/." "$tmp/$ds/"
  start_ember "$tmp/$ds"
  wasm_args=()
  [ "$wasm" = 1 ] && wasm_args=(--wasm-data "$tmp/$ds")
  python3 "$root/tools/bench/bench_promql.py" run --dataset "$ds" --prom "$ORACLE_URL" \
    --ember "$ember_url" --runs "$runs" --out "$tmp/$ds.json" \
    ${wasm_args[@]+"${wasm_args[@]}"}
  kill "$ember_pid"; wait "$ember_pid" 2>/dev/null || true; ember_pid=""
  "$oracle" stop; unset ORACLE_STATE
  rm -rf "${tmp:?}/$ds"
  results+=("$tmp/$ds.json")
done
echo "loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 "$root/tools/bench/bench_promql.py" report "${results[@]}"
