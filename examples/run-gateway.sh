#!/usr/bin/env bash
# What `make run` runs: the example upstream (examples/echo_upstream.py, on
# 127.0.0.1:8081) and Envoy with the filter (on 127.0.0.1:10000), stopped
# together. Ctrl-C, SIGTERM to this script, or SIGTERM to the make that runs
# it (GNU make passes SIGTERM on to its recipe) stops both, waits for them
# and removes build/upstream.pid.
#
# Both run in the background and the script waits for them: bash runs a
# trap only between commands, so a trap behind a foreground Envoy would wait
# for Envoy to end on its own.
# Usage: examples/run-gateway.sh ENVOY_BIN ENVOY_CONFIG PYTHON
set -u

envoy_bin=$1 config=$2 python=$3
pidfile=build/upstream.pid
upstream="" envoy=""

stop() {
  trap - EXIT INT TERM HUP
  [ -n "$envoy" ] && kill -TERM "$envoy" 2>/dev/null
  [ -n "$upstream" ] && kill -TERM "$upstream" 2>/dev/null
  wait
  rm -f "$pidfile"
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap 'stop; exit 129' HUP
trap stop EXIT

mkdir -p "$(dirname "$pidfile")"
"$python" examples/echo_upstream.py &
upstream=$!
echo "$upstream" > "$pidfile"
echo "gateway: http://127.0.0.1:10000/api/proxy/echo (static token: example-static-token-0123)"
"$envoy_bin" -c "$config" --concurrency 2 --disable-hot-restart -l warning --component-log-level wasm:info &
envoy=$!
# Returns when Envoy ends, or at once when a trapped signal arrives.
wait "$envoy"
status=$?
envoy=""
exit "$status"
