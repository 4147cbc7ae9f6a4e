#!/usr/bin/env bash
# Profile benchmark, against `go tool pprof` (Debian golang-go) in the same
# run, on the large generated profiles of ../shared/fixtures/pprof/gen_large_pprof.py
# (5 MB: 172 k samples, 10 k functions; 50 MB: 1.45 M samples, 20 k
# functions; inlined frames, labels):
# - `go tool pprof -top FILE`: wall time and peak RSS;
# - `emberlens profile top FILE` (native, release): decode + model + top table;
# - the app in headless Chromium (Wasm, release build): from picking the
#   file to the first flamegraph drawn (decode + model + tree + layout +
#   paint in the worker), and the peak RSS of the tab's renderer process.
# Prints the figures and the ratios to pprof's time. Goals (issue 6): Wasm
# <= 0.1x pprof's time and <= 1 GB peak tab memory on the 50 MB file.
#
# Usage: tools/bench-profile.sh [5mb|50mb]...   (default: both)
#   PROFILE_DIR=/tmp   where the generated files are kept between runs
#   SKIP_GO=1          don't run go tool pprof (it takes ~2 min on 50 MB)
# Needs: the release binary and the release app build (tools/test.sh or
# `cargo build --release -p emberlens-server` and `trunk build --release app/index.html`).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
gen="$root/../shared/fixtures/pprof/gen_large_pprof.py"
[ -f "$gen" ] || { echo "bench: $gen not found (../shared beside the repo)" >&2; exit 1; }
dir="${PROFILE_DIR:-/tmp}"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(5mb 50mb)
target_dir="${CARGO_TARGET_DIR:-$root/target}"
bin="${EMBERLENS_BIN:-$target_dir/release/emberlens}"
ui="${EMBERLENS_UI:-$root/app/dist}"
[ -x "$bin" ] || { echo "bench: $bin missing: cargo build --release -p emberlens-server" >&2; exit 1; }
[ -f "$ui/index.html" ] || { echo "bench: $ui missing: trunk build --release app/index.html" >&2; exit 1; }

measure() { # measure OUT CMD...: "seconds peak_MiB" of CMD (stdout to OUT)
  local out=$1; shift
  /usr/bin/time -f '%e %M' -o "$dir/.bench-time" "$@" >"$out" 2>/dev/null
  awk '{ printf "%.2f %.0f\n", $1, $2 / 1024 }' "$dir/.bench-time"
}

echo "emberlens: $(git -C "$root" rev-parse --short HEAD); $(go version); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc=$(nproc)"
for size in "${sizes[@]}"; do
  case "$size" in
    5mb) args=(--functions 10000 --samples 172000) ;;
    50mb) args=(--functions 20000 --samples 1450000) ;;
    *) echo "bench: unknown size $size (5mb, 50mb)" >&2; exit 2 ;;
  esac
  file="$dir/large-$size.pb.gz"
  if [ ! -f "$file" ]; then
    echo "generating $file ..."
    python3 "$gen" "${args[@]}" -o "$file" >/dev/null
  fi
  echo "== $(basename "$file"): $(stat -c %s "$file") bytes"
  if [ "${SKIP_GO:-0}" != 1 ]; then
    read -r go_s go_mib < <(measure "$dir/.bench-go.txt" env HOME="$dir" GOCACHE="$dir/.gocache" go tool pprof -top "$file")
    echo "go tool pprof -top:              ${go_s} s, peak RSS ${go_mib} MiB"
  fi
  read -r nat_s nat_mib < <(measure "$dir/.bench-ours.txt" "$bin" profile top "$file")
  echo "emberlens profile top (native):  ${nat_s} s, peak RSS ${nat_mib} MiB"
  wasm_line=$(EMBERLENS_BIN="$bin" EMBERLENS_UI="$ui" node "$root/e2e/bench/profile-open.mjs" "$file")
  echo "app (Wasm, Chromium):            ${wasm_line#*: }"
  wasm_s=$(sed -n 's/.*first draw \([0-9.]*\) s.*/\1/p' <<<"$wasm_line")
  if [ "${SKIP_GO:-0}" != 1 ]; then
    python3 -c "import sys; g, n, w = map(float, sys.argv[1:]); print(f'ratios to pprof time: native {n / g:.3f}x, wasm {w / g:.3f}x (goal <= 0.1x)')" \
      "$go_s" "$nat_s" "$wasm_s"
    # Same top rows as pprof (first 12 rows after the headers), for the eye.
    diff <(sed -n '/flat%/,$p' "$dir/.bench-go.txt" | head -12) <(sed -n '/flat%/,$p' "$dir/.bench-ours.txt" | head -12) >/dev/null \
      && echo "top 12 rows: identical to pprof's" || echo "top 12 rows: DIFFER from pprof's"
  fi
done
