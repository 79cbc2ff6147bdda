#!/usr/bin/env bash
# Capture modes none / metadata / full, ONE server at a time (bench/run.py's `capture` scenario
# runs its servers side by side, and the run-tracking writer of one mode keeps writing while
# another mode is measured). Per mode: start zenml-serving pinned to core 0, warm up, wrk
# -c1 then -c32 for 5 s each on core 1, print req/s, p50, p99 and the tracking counters, stop.
# Modes alternate; REPS repetitions (default 2). Needs wrk; uses the local store in .zenml-local.
#
#     bash bench/capture_sequential.sh            # REPS=3 bash bench/capture_sequential.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export ZENML_CONFIG_PATH="${ZENML_CONFIG_PATH:-$PWD/.zenml-local/config}"
export ZENML_ANALYTICS_OPT_IN=false ZENML_LOGGING_VERBOSITY=WARN ZENML_SERVING_SOURCE_ROOT="$PWD"
PORT="${PORT:-8125}"
SNAP="$(.venv/bin/zenml-serving snapshot examples.text_pipeline:text_pipeline --name bench-capture | tail -1)"
LUA="$(mktemp)"
trap 'rm -f "$LUA"' EXIT
cat > "$LUA" <<'LUA'
wrk.method = "POST"
wrk.body = '{"parameters":{"message":"I love fast reliable tools"}}'
wrk.headers["Content-Type"] = "application/json"
LUA
for rep in $(seq 1 "${REPS:-2}"); do
  for mode in none metadata full; do
    ZENML_PIPELINE_DEPLOYMENT_ID="$SNAP" ZENML_SERVING_CAPTURE_DEFAULT="$mode" \
      ZENML_SERVING_SHUTDOWN_GRACE=0 taskset -c 0 .venv/bin/granian --interface asgi \
      --host 127.0.0.1 --port "$PORT" --workers 1 --runtime-threads 1 --loop uvloop \
      --factory zenml_serving.app:create_app > /dev/null 2>&1 &
    server=$!
    until curl -sf "http://127.0.0.1:$PORT/health" > /dev/null; do sleep 0.3; done
    taskset -c 1 wrk -t1 -c1 -d2s -s "$LUA" "http://127.0.0.1:$PORT/invoke" > /dev/null
    sleep 3
    for connections in 1 32; do
      out="$(taskset -c 1 wrk -t1 -c"$connections" -d5s --latency -s "$LUA" "http://127.0.0.1:$PORT/invoke")"
      echo "rep $rep mode $mode c$connections" \
        "req/s $(awk '/Requests\/sec/ {print $2}' <<< "$out")" \
        "p50 $(awk '$1 == "50%" {print $2}' <<< "$out")" \
        "p99 $(awk '$1 == "99%" {print $2}' <<< "$out")"
      sleep 3
    done
    echo "rep $rep mode $mode tracking: $(curl -s "http://127.0.0.1:$PORT/status" \
      | python3 -c 'import json, sys; t = json.load(sys.stdin)["tracking"]; print(t.get("written"), "written", t.get("dropped"))')"
    kill -9 "$server" 2> /dev/null || true
    pkill -9 -f -- "--port $PORT " 2> /dev/null || true  # granian's worker too
    wait "$server" 2> /dev/null || true
    sleep 1
  done
done
