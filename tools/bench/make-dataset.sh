#!/usr/bin/env bash
# Builds the PromQL benchmark dataset once: 10,000 series x 24 h at 15 s
# (gen_openmetrics.py) imported by promtool into one 24h block under DIR/data.
# Skips the work when DIR/data/*/meta.json exists. Usage: make-dataset.sh DIR
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=${1:?usage: make-dataset.sh DIR}
if compgen -G "$dir/data/*/meta.json" >/dev/null; then exit 0; fi
command -v promtool >/dev/null || { echo "make-dataset: promtool not found (apt-get install prometheus)" >&2; exit 1; }
mkdir -p "$dir"
rm -rf "$dir/data.tmp" "$dir/bench.om"
echo "make-dataset: generating OpenMetrics (~57.6 M samples, ~5 GB, a few minutes)..." >&2
t0=$(date +%s)
python3 "$here/gen_openmetrics.py" > "$dir/bench.om"
echo "make-dataset: generated in $(( $(date +%s) - t0 )) s; importing with promtool..." >&2
t0=$(date +%s)
promtool tsdb create-blocks-from openmetrics --max-block-duration=24h "$dir/bench.om" "$dir/data.tmp" >&2
rm -f "$dir/bench.om"
mv "$dir/data.tmp" "$dir/data"
echo "make-dataset: imported in $(( $(date +%s) - t0 )) s: $(du -sh "$dir/data" | cut -f1)" >&2
