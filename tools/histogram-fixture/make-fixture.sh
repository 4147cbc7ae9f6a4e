#!/usr/bin/env bash
# Makes a small TSDB snapshot holding real native-histogram chunks, written
# by Debian's Prometheus 2.42 scraping exporter.go (deterministic histograms
# built with Debian's client_golang 1.14), and records Prometheus's own
# answers for the raw samples as the expected decoding.
#
# Needs: golang-go, golang-github-prometheus-client-golang-dev, prometheus,
# curl, python3. Usage: make-fixture.sh OUT_DIR [SECONDS]
# Writes OUT_DIR/snapshot/<block>/… and OUT_DIR/expected-*.json.
set -euo pipefail
out=${1:?usage: make-fixture.sh OUT_DIR [SECONDS]}
secs=${2:-40}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/histfx.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

GOCACHE="$work/gocache" GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$work/exporter" "$here/exporter.go"
eport=$(port); pport=$(port)
"$work/exporter" -addr "127.0.0.1:$eport" & pids+=($!)
cat > "$work/prometheus.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: histograms
    static_configs: [{targets: ["127.0.0.1:$eport"]}]
YML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:$pport" --web.enable-admin-api \
  --enable-feature=native-histograms --log.level=warn >"$work/prometheus.log" 2>&1 & pids+=($!)
url="http://127.0.0.1:$pport"
for _ in $(seq 100); do curl -sf "$url/-/ready" >/dev/null && break; sleep 0.2; done
echo "scraping for ${secs}s"
sleep "$secs"
end=$(python3 -c 'import time; print(round(time.time(), 3))')
snap=$(curl -sf -XPOST "$url/api/v1/admin/tsdb/snapshot" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["name"])')
rm -rf "$out/snapshot"; mkdir -p "$out/snapshot"
cp -a "$work/data/snapshots/$snap/." "$out/snapshot/"
for m in fx_native_latency_seconds fx_native_delta_celsius; do
  curl -sfG "$url/api/v1/query" --data-urlencode "query=$m[1h]" -d "time=$end" > "$out/expected-$m.json"
done
echo "wrote $out (snapshot $snap, end $end)"
