#!/usr/bin/env bash
# Block bytes per sample with real 2 h blocks, for Emberlens and Debian's
# Prometheus (2.42) on the same data, in minutes instead of hours.
#
# tools/bench-scrape.sh measures ingestion live, but judging bytes per sample
# needs 2 h blocks, which a live run cuts only after 3 h. Here both servers
# run their remote-write receivers and get the same requests from
# server/examples/replay_remote_write.rs: STEPS scrapes of every fake target
# (server/examples/fake_exporter.rs, the data bench-scrape.sh scrapes),
# stamped 15 s apart from a 2 h boundary. Once the heads span more than
# 1.5 x 2 h, both cut their first 2 h block through their own code paths
# (head chunks -> block). Prints each block's bytes per sample, all files and
# chunks only, and the ratio. Goal: <= 1.4 bytes/sample (all files).
#
# Usage: tools/bench-bytes.sh
#   TARGETS=20 SERIES=1000   fake targets and series per target
#   STEPS=961                scrapes per target (961 x 15 s = 4 h)
#   EMBERLENS_BIN=PATH FAKE_EXPORTER_BIN=PATH REPLAY_BIN=PATH   skip building
#   KEEP=1                   keep the temporary directory
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench-servers.sh"
targets="${TARGETS:-20}"
series="${SERIES:-1000}"
steps="${STEPS:-961}"
for p in prometheus curl python3; do
  command -v "$p" >/dev/null || { echo "bench: $p not found (tools/setup.sh)" >&2; exit 1; }
done

target_dir="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${EMBERLENS_BIN:-}" ] || [ -z "${FAKE_EXPORTER_BIN:-}" ] || [ -z "${REPLAY_BIN:-}" ]; then
  cargo build --quiet --release -p emberlens-server --bin emberlens --example fake_exporter \
    --example replay_remote_write --manifest-path "$root/Cargo.toml" --target-dir "$target_dir"
fi
ours="${EMBERLENS_BIN:-$target_dir/release/emberlens}"
exporter_bin="${FAKE_EXPORTER_BIN:-$target_dir/release/examples/fake_exporter}"
replay_bin="${REPLAY_BIN:-$target_dir/release/examples/replay_remote_write}"

bench_tmp bench-bytes
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"$exporter_bin" --targets "$targets" --series "$series" --ports 1 \
  >"$tmp/exporter.out" 2>"$tmp/exporter.log" &
exporter_pid=$!; pids+=("$exporter_pid")
wait_for exporter "$exporter_pid" 300 grep -q '^fake_exporter listening on ' "$tmp/exporter.out"
exporter=$(sed -n 's/^fake_exporter listening on //p' "$tmp/exporter.out")

# Neither server scrapes anything: every sample comes from the replay.
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' >"$tmp/prometheus.yml"
ember_url="http://127.0.0.1:$(free_port)"
"$ours" serve --config.file "$tmp/prometheus.yml" --storage.tsdb.path "$tmp/ember" \
  --web.listen-address "${ember_url#http://}" --web.ui-path "$tmp/no-ui" \
  --web.enable-remote-write-receiver >"$tmp/ember.out" 2>"$tmp/ember.log" &
ember_pid=$!; pids+=("$ember_pid")
prom_url="http://127.0.0.1:$(free_port)"
prometheus --config.file "$tmp/prometheus.yml" --storage.tsdb.path "$tmp/prom" \
  --web.listen-address "${prom_url#http://}" --web.enable-remote-write-receiver >"$tmp/prom.log" 2>&1 &
prom_pid=$!; pids+=("$prom_pid")
wait_for ember "$ember_pid" 600 curl -fs -o /dev/null "$ember_url/-/ready"
wait_for prom "$prom_pid" 600 curl -fs -o /dev/null "$prom_url/-/ready"

echo "prometheus: $(prometheus --version 2>&1 | head -1)"
echo "emberlens: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo '+dirty')"
# Start on a 2 h boundary a day ago: inside both retentions, and the first
# block covers a whole 2 h range.
range_ms=$((2 * 3600 * 1000))
start_ms=$(( ($(date +%s) * 1000 - 24 * 3600 * 1000) / range_ms * range_ms ))
echo "targets=$targets series/target=$series steps=$steps (15 s apart) from $start_ms"
"$replay_bin" --exporter "$exporter" --targets "$targets" --steps "$steps" --start-ms "$start_ms" \
  --write "$ember_url/api/v1/write" --write "$prom_url/api/v1/write" 2>"$tmp/replay.log"

first_block() { # first_block DIR -> "samples all_bytes chunk_bytes" of the block starting at start_ms
  python3 - "$1" "$start_ms" "$range_ms" <<'EOF'
import json, os, re, sys
root, start, rng = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
for d in sorted(os.listdir(root)):
    p = os.path.join(root, d, "meta.json")
    if re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", d) and os.path.isfile(p):
        m = json.load(open(p))
        if m["minTime"] == start and m["maxTime"] == start + rng:
            print(m["stats"]["numSamples"], size(os.path.join(root, d)), size(os.path.join(root, d, "chunks")))
            sys.exit(0)
sys.exit(1)
EOF
}
# Both check for a block to cut at least every minute.
for _ in $(seq 1 180); do
  e=$(first_block "$tmp/ember" || true); p=$(first_block "$tmp/prom" || true)
  [ -n "$e" ] && [ -n "$p" ] && break
  sleep 1
done
[ -n "$e" ] || { echo "bench: emberlens cut no 2 h block" >&2; ls "$tmp/ember" >&2; exit 1; }
[ -n "$p" ] || { echo "bench: prometheus cut no 2 h block" >&2; ls "$tmp/prom" >&2; exit 1; }
python3 - $e $p <<'EOF'
import sys
es, eb, ec, ps, pb, pc = map(int, sys.argv[1:])
print(f"{'first 2 h block':<34}{'emberlens':>14}{'prometheus':>14}{'ratio E/P':>11}")
print(f"{'samples':<34}{es:>14,}{ps:>14,}{es / ps:>11.2f}")
print(f"{'bytes per sample (all files)':<34}{eb / es:>14.3f}{pb / ps:>14.3f}{(eb / es) / (pb / ps):>11.2f}")
print(f"{'chunk bytes per sample':<34}{ec / es:>14.3f}{pc / ps:>14.3f}{(ec / es) / (pc / ps):>11.2f}")
print("goal <= 1.4 bytes/sample (all files):", "met" if eb / es <= 1.4 else "NOT met")
EOF
