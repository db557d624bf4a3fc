#!/usr/bin/env bash
# `make demo` (docs/demo.md): a real Backstage on loopback signs users in,
# and the gateway rendered from examples/app-config/demo/app-config.yaml
# checks their tokens and groups in front of the echo upstream. Runs until
# Ctrl-C or SIGTERM, then stops everything it started.
#
# Needs: node with examples/backstage/node_modules (make demo-tools), curl,
# jq, python3, ENVOY_BIN, the tool (BPW_CLI) and the filter (WASM, default
# build/plugin.wasm). The
# DEMO_* variables move it off the default ports (cli/tests/demo.rs does;
# DEMO_APP_CONFIG must then name the same ports).
set -euo pipefail
cd "$(dirname "$0")/.."

BPW_CLI=${BPW_CLI:-target/release/backstage-proxy-wasm}
WASM=${WASM:-build/plugin.wasm}
APP_CONFIG=${DEMO_APP_CONFIG:-examples/app-config/demo/app-config.yaml}
DIR=${DEMO_DIR:-build/demo}
BACKSTAGE_PORT=${DEMO_BACKSTAGE_PORT:-7007}
ECHO_PORT=${DEMO_ECHO_PORT:-8081}
GATEWAY_PORT=${DEMO_GATEWAY_PORT:-10000}
ADMIN_PORT=${DEMO_ADMIN_PORT:-9901}
BACKSTAGE=http://127.0.0.1:$BACKSTAGE_PORT

fail() { echo "demo: $*" >&2; exit 1; }
for tool in node curl jq python3; do
  command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[ -x "${ENVOY_BIN:-}" ] || fail "ENVOY_BIN is not set to Envoy (make envoy)"
[ -x "$BPW_CLI" ] || fail "$BPW_CLI is missing (make cli)"
[ -f "$WASM" ] || fail "$WASM is missing (make build)"
[ -d examples/backstage/node_modules/@backstage/backend-defaults ] ||
  fail "examples/backstage/node_modules is missing (make demo-tools)"
mkdir -p "$DIR"
APP_CONFIG_PATH=$(realpath "$APP_CONFIG")

# Every process started here, stopped on any way out.
pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -eq 0 ] || kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap 'stop; exit 130' INT
trap 'stop; exit 143' TERM
trap stop EXIT

echo "demo: starting Backstage on $BACKSTAGE (log: $DIR/backstage.log)"
(
  cd examples/backstage
  APP_CONFIG_backend_listen_port=$BACKSTAGE_PORT exec node index.js \
    --config "$APP_CONFIG_PATH" --config app-config.yaml
) >"$DIR/backstage.log" 2>&1 &
pids+=($!)

# Ready when signing in yields the user's groups: the catalog has been read.
groups=""
for _ in $(seq 1 600); do
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 20 "$DIR/backstage.log" >&2; fail "Backstage exited"; }
  groups=$(curl -sf "$BACKSTAGE/api/auth/guest/refresh" |
    jq -r '.backstageIdentity.identity.ownershipEntityRefs | join(" ")' 2>/dev/null) || true
  [[ " $groups " == *" group:default/sre "* ]] && break
  sleep 0.2
done
[[ " $groups " == *" group:default/sre "* ]] || fail "Backstage did not sign ada in with her groups within 2 minutes"

"$BPW_CLI" render "$APP_CONFIG" --listen "127.0.0.1:$GATEWAY_PORT" \
  --admin-port "$ADMIN_PORT" --wasm "$(realpath "$WASM")" --output "$DIR/envoy.yaml"

ECHO_PORT=$ECHO_PORT python3 examples/echo_upstream.py 2>"$DIR/echo.log" &
pids+=($!)
"$ENVOY_BIN" -c "$DIR/envoy.yaml" --concurrency 1 --disable-hot-restart \
  -l warning --component-log-level wasm:info &
pids+=($!)
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null 2>&1 && break
  kill -0 "${pids[2]}" 2>/dev/null || fail "Envoy exited"
  sleep 0.1
done
curl -sf "http://127.0.0.1:$ADMIN_PORT/ready" >/dev/null || fail "Envoy is not ready"
# Ready means answering: the gateway's listener and the echo upstream
# both take a request (any HTTP answer) before the commands are shown.
for _ in $(seq 1 300); do
  curl -s -o /dev/null "http://127.0.0.1:$GATEWAY_PORT/" &&
    curl -s -o /dev/null "http://127.0.0.1:$ECHO_PORT/" && break
  sleep 0.1
done
curl -s -o /dev/null "http://127.0.0.1:$GATEWAY_PORT/" || fail "the gateway does not answer on $GATEWAY_PORT"
curl -s -o /dev/null "http://127.0.0.1:$ECHO_PORT/" || fail "the echo upstream does not answer on $ECHO_PORT"

echo
echo "demo: ready. Backstage $BACKSTAGE, the gateway http://127.0.0.1:$GATEWAY_PORT"
echo "(its access log follows), the echo upstream 127.0.0.1:$ECHO_PORT."
echo "In another terminal (docs/demo.md#sign-in-and-call-the-gateway):"
echo
# The commands of docs/demo.md, on this run's ports.
awk '/^## Sign in and call the gateway/ { s = 1 } s && /^```$/ { exit } s == 2 { print "  " $0 } s && /^```sh/ { s = 2 }' docs/demo.md |
  sed -e "s#127.0.0.1:7007#127.0.0.1:$BACKSTAGE_PORT#g" -e "s#127.0.0.1:10000#127.0.0.1:$GATEWAY_PORT#g"
echo
echo "Ctrl-C stops everything."
echo

# Runs until a signal, or until one of the processes ends.
set +e
wait -n "${pids[@]}"
fail "a process of the demo ended (logs in $DIR)"
