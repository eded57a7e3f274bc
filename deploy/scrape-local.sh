#!/usr/bin/env bash
# Starts a real Prometheus (Debian package `prometheus`) scraping a running `loom serve` on 127.0.0.1:${PORT:-8000},
# waits for a scrape, and queries loom_requests_total through Prometheus' HTTP API.
# Usage: PORT=8000 deploy/scrape-local.sh
set -euo pipefail
PORT=${PORT:-8000}
command -v prometheus >/dev/null || { echo "install Prometheus first: apt-get install -y prometheus" >&2; exit 1; }
dir=$(mktemp -d)
cat > "$dir/prometheus.yml" <<YML
global: { scrape_interval: 1s }
scrape_configs:
  - job_name: loom
    static_configs: [{ targets: ["127.0.0.1:$PORT"] }]
YML
prometheus --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/data" --web.listen-address=127.0.0.1:9099 >"$dir/log" 2>&1 &
pid=$!
trap 'kill $pid; rm -rf "$dir"' EXIT
curl -s "http://127.0.0.1:$PORT/health" >/dev/null
sleep 6
curl -s -G http://127.0.0.1:9099/api/v1/query --data-urlencode 'query=loom_requests_total'; echo
curl -s -G http://127.0.0.1:9099/api/v1/query --data-urlencode 'query=up{job="loom"}'; echo
