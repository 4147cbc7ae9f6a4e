#!/usr/bin/env bash
# Scrape benchmark: `emberlens serve` and Debian's Prometheus (2.42) side by
# side in one run, scraping the same fake targets with the same generated
# prometheus.yml, on loopback. Prints, for each server and as a ratio
# Emberlens/Prometheus: CPU seconds per million samples ingested, resident
# memory per head series (at the end and at its peak), and bytes per sample
# of the blocks on disk after compaction (all block files, and chunks only).
# Goal: Emberlens no worse than Prometheus on each, and <= 1.4 bytes/sample.
#
# Usage: tools/bench-scrape.sh
#   TARGETS=1000 SERIES=1000   targets and series per target
#   INTERVAL=15s DURATION=20m  scrape interval, how long both servers run
#   MIN_BLOCK=5m MAX_BLOCK=15m block range (small, so blocks are cut and
#                              compacted within the run: the first block is
#                              cut once the head spans 1.5 x MIN_BLOCK)
#   PORTS=4                    loopback listeners of the fake exporter
#   EMBERLENS_BIN=PATH FAKE_EXPORTER_BIN=PATH   use these instead of building
#                              (cargo build --release, into $CARGO_TARGET_DIR)
#   KEEP=1                     keep the temporary directory (data dirs, logs)
#   TMPDIR=DIR                 where the temporary directory goes (/tmp); the
#                              run stops early, and measures what it has, when
#                              less than MIN_FREE_MB (1024) is left there, or
#                              less than MIN_MEM_MB (2048) of memory available
#
# The fake exporter (server/examples/fake_exporter.rs) serves /metrics/<i>:
# counters, gauges and histograms whose values move on every scrape. Each
# target is its own target group with `__metrics_path__` and an `instance`
# label, so both servers store the same series; the script checks that they
# have the same series count per metric name. CPU is utime+stime from
# /proc/<pid>/stat; memory VmRSS and VmHWM from /proc/<pid>/status, read
# before any query; samples from each server's /metrics
# (prometheus_tsdb_head_samples_appended_total, emberlens_samples_appended_total);
# series from prometheus_tsdb_head_series and, for Emberlens,
# the sum of count by (__name__) ({__name__=~".+"}); block bytes are the sizes of the final block
# directories (compaction sources excluded) over their meta.json numSamples.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
source "$(dirname "${BASH_SOURCE[0]}")/bench-servers.sh"
targets="${TARGETS:-1000}"
series="${SERIES:-1000}"
interval="${INTERVAL:-15s}"
duration="${DURATION:-20m}"
min_block="${MIN_BLOCK:-5m}"
max_block="${MAX_BLOCK:-15m}"
ports="${PORTS:-4}"
for p in prometheus curl jq python3; do
  command -v "$p" >/dev/null || { echo "bench: $p not found (tools/setup.sh)" >&2; exit 1; }
done

secs() { # secs 20m -> 1200 (s, m, h)
  case "$1" in
    *h) echo $(( ${1%h} * 3600 )) ;;
    *m) echo $(( ${1%m} * 60 )) ;;
    *s) echo "${1%s}" ;;
    *) echo "$1" ;;
  esac
}
duration_s=$(secs "$duration")

target_dir="${CARGO_TARGET_DIR:-$root/target}"
if [ -z "${EMBERLENS_BIN:-}" ] || [ -z "${FAKE_EXPORTER_BIN:-}" ]; then
  cargo build --quiet --release -p emberlens-server --bin emberlens --example fake_exporter \
    --manifest-path "$root/Cargo.toml" --target-dir "$target_dir"
fi
ours="${EMBERLENS_BIN:-$target_dir/release/emberlens}"
exporter_bin="${FAKE_EXPORTER_BIN:-$target_dir/release/examples/fake_exporter}"

bench_tmp bench-scrape

# The fake exporter, then the config both servers load.
"$exporter_bin" --targets "$targets" --series "$series" --ports "$ports" \
  >"$tmp/exporter.out" 2>"$tmp/exporter.log" &
exporter_pid=$!; pids+=("$exporter_pid")
listening() { [ "$(grep -c '^fake_exporter listening on ' "$tmp/exporter.out")" -ge "$ports" ]; }
wait_for exporter "$exporter_pid" 300 listening
mapfile -t addrs < <(sed -n 's/^fake_exporter listening on //p' "$tmp/exporter.out")
{
  echo "global:"
  echo "  scrape_interval: $interval"
  echo "scrape_configs:"
  echo "  - job_name: bench"
  echo "    static_configs:"
  for ((i = 0; i < targets; i++)); do
    echo "      - targets: [\"${addrs[i % ${#addrs[@]}]}\"]"
    echo "        labels: {__metrics_path__: \"/metrics/$i\", instance: \"host-$i:9100\"}"
  done
} >"$tmp/prometheus.yml"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
blocks=(--storage.tsdb.min-block-duration="$min_block" --storage.tsdb.max-block-duration="$max_block")

"$ours" serve --config.file "$tmp/prometheus.yml" --storage.tsdb.path "$tmp/ember" \
  --web.listen-address 127.0.0.1:0 --web.ui-path "$tmp/no-ui" "${blocks[@]}" \
  >"$tmp/ember.out" 2>"$tmp/ember.log" &
ember_pid=$!; pids+=("$ember_pid")
prom_url="http://127.0.0.1:$(free_port)"
prometheus --config.file "$tmp/prometheus.yml" --storage.tsdb.path "$tmp/prom" \
  --web.listen-address "${prom_url#http://}" "${blocks[@]}" >"$tmp/prom.log" 2>&1 &
prom_pid=$!; pids+=("$prom_pid")
ember_ready() {
  ember_url=$(sed -n 's|^Emberlens listening on \(http://[^/]*\)/$|\1|p' "$tmp/ember.out")
  [ -n "$ember_url" ]
}
wait_for ember "$ember_pid" 600 ember_ready
wait_for prom "$prom_pid" 600 curl -fs -o /dev/null "$prom_url/-/ready"

echo "prometheus: $(prometheus --version 2>&1 | head -1)"
echo "emberlens: $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo '+dirty'); cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), nproc=$(nproc)"
echo "targets=$targets series/target=$series interval=$interval duration=$duration blocks=$min_block..$max_block exporter ports=$ports; loadavg at start: $(cut -d' ' -f1-3 /proc/loadavg)"

cpu_s() { # utime+stime of PID in seconds (fields after the ")" of comm)
  awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); printf "%.2f", ($12 + $13) / hz }' "/proc/$1/stat"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
metric_sum() { # metric_sum URL NAME: sum of NAME's samples on URL/metrics
  curl -fsS "$1/metrics" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.0f", s }'
}
query() { # query URL PROMQL [TIME]: the answer's data.result as JSON
  curl -fsS --max-time 300 "$1/api/v1/query" --data-urlencode "query=$2" \
    ${3:+--data-urlencode "time=$3"} | jq -c '.data.result'
}

start=$(date +%s)
while :; do
  now=$(date +%s); left=$(( start + duration_s - now ))
  [ "$left" -le 0 ] && break
  sleep $(( left < 60 ? left : 60 ))
  for pid in "$ember_pid" "$prom_pid" "$exporter_pid"; do
    kill -0 "$pid" 2>/dev/null || { echo "bench: process $pid exited" >&2; tail -20 "$tmp"/*.log >&2; exit 1; }
  done
  printf '%5ds  emberlens: %12s samples %6d MiB RSS %7.1f cpu s %6s MiB disk | prometheus: %12s samples %6d MiB RSS %7.1f cpu s %6s MiB disk | load %s\n' \
    "$(( $(date +%s) - start ))" \
    "$(metric_sum "$ember_url" emberlens_samples_appended_total)" "$(( $(status_kb "$ember_pid" VmRSS) / 1024 ))" "$(cpu_s "$ember_pid")" \
    "$(du -sm "$tmp/ember" | cut -f1)" \
    "$(metric_sum "$prom_url" prometheus_tsdb_head_samples_appended_total)" "$(( $(status_kb "$prom_pid" VmRSS) / 1024 ))" "$(cpu_s "$prom_pid")" \
    "$(du -sm "$tmp/prom" | cut -f1)" \
    "$(cut -d' ' -f1 /proc/loadavg)"
  free_mb=$(df -Pm "$tmp" | awk 'NR == 2 { print $4 }')
  if [ "$free_mb" -lt "${MIN_FREE_MB:-1024}" ]; then
    echo "bench: only $free_mb MiB left in $tmp; stopping the run early" >&2
    break
  fi
  mem_mb=$(awk '$1 == "MemAvailable:" { print int($2 / 1024) }' /proc/meminfo)
  if [ "$mem_mb" -lt "${MIN_MEM_MB:-2048}" ]; then
    echo "bench: only $mem_mb MiB of memory available; stopping the run early" >&2
    break
  fi
done

blocks_stats() { # blocks_stats DIR -> "blocks samples all_bytes chunk_bytes levels"
  python3 - "$1" <<'EOF'
import json, os, re, sys
root = sys.argv[1]
metas = {}
for d in os.listdir(root):
    p = os.path.join(root, d, "meta.json")
    if re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}", d) and os.path.isfile(p):
        with open(p) as f:
            metas[d] = json.load(f)
# A compacted block's sources may linger until deleted: count them once.
parents = {p["ulid"] for m in metas.values() for p in m.get("compaction", {}).get("parents", [])}
def size(path):
    return sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(path) for f in fs)
n = samples = total = chunks = 0
levels = {}
for d, m in metas.items():
    if d in parents:
        continue
    n += 1
    samples += m["stats"]["numSamples"]
    total += size(os.path.join(root, d))
    chunks += size(os.path.join(root, d, "chunks"))
    span = (m["maxTime"] - m["minTime"]) // 1000
    key = f"L{m['compaction']['level']}({span}s)"
    levels[key] = levels.get(key, 0) + 1
print(n, samples, total, chunks, ",".join(f"{v}x{k}" for k, v in sorted(levels.items())) or "-")
EOF
}

# Measure: processes first (no query has touched memory yet), then the
# counters and the blocks, then the (slow) queries over every series.
e_cpu=$(cpu_s "$ember_pid"); p_cpu=$(cpu_s "$prom_pid")
e_rss=$(status_kb "$ember_pid" VmRSS); p_rss=$(status_kb "$prom_pid" VmRSS)
e_hwm=$(status_kb "$ember_pid" VmHWM); p_hwm=$(status_kb "$prom_pid" VmHWM)
e_samples=$(metric_sum "$ember_url" emberlens_samples_appended_total)
p_samples=$(metric_sum "$prom_url" prometheus_tsdb_head_samples_appended_total)
p_series=$(metric_sum "$prom_url" prometheus_tsdb_head_series)
read -r e_blocks e_bsamples e_bytes e_cbytes e_levels < <(blocks_stats "$tmp/ember")
read -r p_blocks p_bsamples p_bytes p_cbytes p_levels < <(blocks_stats "$tmp/prom")
end_s=$(date +%s); elapsed=$(( end_s - start ))
by_name='sort_by(.metric.__name__) | map("\(.metric.__name__) \(.value[1])") | .[]'
names() { # names URL FILE: series per metric name ("query failed" on error)
  query "$1" 'count by (__name__) ({__name__=~".+"})' | jq -r "$by_name" >"$2" || echo "query failed" >"$2"
}
names "$ember_url" "$tmp/ember.names"
names "$prom_url" "$tmp/prom.names"
e_series=$(awk '{ s += $2 } END { print s + 0 }' "$tmp/ember.names")
p_series_q=$(awk '{ s += $2 } END { print s + 0 }' "$tmp/prom.names")
if cmp -s "$tmp/ember.names" "$tmp/prom.names"; then same_series="yes"; else same_series="NO (diff below)"; fi
scrapes() { # scrapes URL FUNC: sum over targets of FUNC_over_time(up[run]) (count: done, sum: up)
  query "$1" "sum(${2}_over_time(up[${elapsed}s]))" "$end_s" | jq -r '.[0].value[1] // 0' || echo 0
}
e_done=$(scrapes "$ember_url" count); p_done=$(scrapes "$prom_url" count)
e_up=$(scrapes "$ember_url" sum); p_up=$(scrapes "$prom_url" sum)

echo
echo "after ${elapsed}s; loadavg at end: $(cut -d' ' -f1-3 /proc/loadavg); series identical by name: $same_series"
python3 - "$e_cpu" "$p_cpu" "$e_samples" "$p_samples" "$e_series" "$p_series" "$p_series_q" \
  "$e_rss" "$p_rss" "$e_hwm" "$p_hwm" "$e_blocks" "$p_blocks" "$e_bsamples" "$p_bsamples" \
  "$e_bytes" "$p_bytes" "$e_cbytes" "$p_cbytes" "$e_done" "$p_done" "$e_up" "$p_up" \
  "$e_levels" "$p_levels" "$(( targets * elapsed / $(secs "$interval") ))" <<'EOF'
import sys
a = sys.argv[1:]
f = [float(x) for x in a[:23]]
(ec, pc, es, ps, eser, pser, pserq, erss, prss, ehwm, phwm, eb, pb, ebs, pbs, ebytes, pbytes, ecb, pcb,
 edone, pdone, eup, pup) = f
elev, plev, expected = a[23], a[24], int(a[25])
def div(x, y):
    return x / y if y else float("nan")
rows = [
    (f"scrapes done (~{expected:,} expected)", edone, pdone, "{:,.0f}"),
    ("scrapes up", eup, pup, "{:,.0f}"),
    ("samples appended", es, ps, "{:,.0f}"),
    ("head series", eser, pser, "{:,.0f}"),
    ("CPU seconds (utime+stime)", ec, pc, "{:,.1f}"),
    ("CPU s per 1M samples", div(ec, es / 1e6), div(pc, ps / 1e6), "{:.3f}"),
    ("RSS at end, MiB", erss / 1024, prss / 1024, "{:,.0f}"),
    ("RSS bytes per series", div(erss * 1024, eser), div(prss * 1024, pser), "{:,.0f}"),
    ("peak RSS (VmHWM) bytes per series", div(ehwm * 1024, eser), div(phwm * 1024, pser), "{:,.0f}"),
    ("blocks on disk", eb, pb, "{:.0f}"),
    ("samples in blocks", ebs, pbs, "{:,.0f}"),
    ("block bytes per sample (all files)", div(ebytes, ebs), div(pbytes, pbs), "{:.3f}"),
    ("chunk bytes per sample", div(ecb, ebs), div(pcb, pbs), "{:.3f}"),
]
print(f"{'':36} {'emberlens':>14} {'prometheus':>14} {'ratio E/P':>10}")
for name, e, p, fmt in rows:
    print(f"{name:36} {fmt.format(e):>14} {fmt.format(p):>14} {div(e, p):>10.2f}")
print(f"blocks (level(span)): emberlens {elev}; prometheus {plev}")
print(f"prometheus: count by (__name__) summed = {pserq:,.0f}")
ok = div(ebytes, ebs) <= 1.4
print("goal <= 1.4 block bytes/sample (all files):", "met" if ok else "NOT met")
EOF
if [ "$same_series" != yes ]; then diff "$tmp/ember.names" "$tmp/prom.names" | head -20 || true; fi
