#!/usr/bin/env bash
# Replays the Dockerfile without a Docker engine (none runs on the machines Loom is developed on): copies exactly the
# files the build stage COPYs into a scratch folder, runs the same `npm ci --omit=dev` (which runs `prepare`), then
# runs the image's command as an unprivileged user with NODE_ENV=production against MODEL: creates a key, serves on
# 0.0.0.0, checks /health, 401 without a key, /v1/models and one chat with it, /metrics, and that SIGTERM exits 0.
# It proves the runtime needs no devDependency and the non-root user can run it; it does not prove the base image.
# Needs the npm registry (npm ci) and root (runuser). Usage: deploy/check-image-steps.sh path/to/model-dir
set -euo pipefail
MODEL=$(realpath "${1:?usage: deploy/check-image-steps.sh MODEL_DIR}")
PORT=${PORT:-18765}
repo=$(cd "$(dirname "$0")/.." && pwd)
app=$(mktemp -d)
data=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$app" "$data"' EXIT
# The build stage's COPY lines, in the Dockerfile's order.
for f in package.json package-lock.json .npmrc tsconfig.json scripts bin src studio-ui examples; do
  cp -r "$repo/$f" "$app/"
done
(cd "$app" && npm ci --omit=dev --no-audit --no-fund >/dev/null)
test -f "$app/dist/cli/main.js" && test -f "$app/studio-dist/index.html"
user=$(id -u node >/dev/null 2>&1 && echo node || echo nobody)
chmod -R a+rX "$app" "$(dirname "$MODEL")" && chown "$user" "$data"
as() { runuser -u "$user" -- env NODE_ENV=production LOOM_REGISTRY="$data/registry.db" "$@"; }
key=$(cd "$app" && as node bin/loom.js keys create --name image-check 2>/dev/null | head -1)
(cd "$app" && as node bin/loom.js serve "$MODEL" --host 0.0.0.0 --port "$PORT" >"$data/serve.log" 2>&1) &
bg=$!
for _ in $(seq 1 120); do grep -q '^listening' "$data/serve.log" 2>/dev/null && break; sleep 0.5; done
pid=$(pgrep -f "bin/loom.js serve $MODEL --host 0.0.0.0 --port $PORT" | tail -1)
url=http://127.0.0.1:$PORT
code() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
[ "$(code "$url/health")" = 200 ] || { echo "FAIL /health" >&2; exit 1; }
[ "$(code "$url/v1/models")" = 401 ] || { echo "FAIL /v1/models without a key is not 401" >&2; exit 1; }
curl -sf -H "authorization: Bearer $key" "$url/v1/models" | grep -q '"object":"list"'
curl -sf -H "authorization: Bearer $key" -H 'content-type: application/json' "$url/v1/chat/completions" \
  -d '{"model":"'"$(basename "$MODEL")"'","messages":[{"role":"user","content":"hi"}],"max_tokens":4}' | grep -q '"chat.completion"'
curl -sf "$url/metrics" | grep -q '^loom_requests_total'
kill -TERM "$pid"
rc=0
timeout 10 tail --pid="$pid" -f /dev/null || { echo "FAIL still running 10 s after SIGTERM" >&2; exit 1; }
wait "$bg" || rc=$?
pid=""
[ "$rc" = 0 ] || { echo "FAIL exit status $rc after SIGTERM (want 0)" >&2; exit 1; }
echo "ok: npm ci --omit=dev built dist/cli + studio-dist; as $user: key, 0.0.0.0 bind, 401, models, chat, metrics, SIGTERM"
