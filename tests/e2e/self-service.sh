#!/usr/bin/env bash
# The end users' self-service page in a real browser: Chromium (headless) over WebDriver
# (chromedriver), against `pbxdesk serve` on a demo workspace whose PBX is the test double
# (sshd on loopback, the Asterisk double, MariaDB; see crates/pbxdesk-core/examples/pbx_double.rs).
# Uses the binaries `cargo test` built.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
cli="$target/debug/pbxdesk"
double="$target/debug/examples/pbx_double"
[ -x "$cli" ] || (cd "$root" && cargo build --locked -p pbxdesk-cli)
[ -x "$double" ] || (cd "$root" && cargo build --locked -p pbxdesk-core --example pbx_double)

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$(( 10000 + RANDOM % 20000 ))  # below the ephemeral range (32768+)
    in_use "$p" || { echo "$p"; return; }
  done
  echo "no free port" >&2; exit 1
}

ws="$work/self.sqlite"
"$cli" --workspace "$ws" demo seed >/dev/null
api_port="$(free_port)"
"$cli" --workspace "$ws" serve --listen "127.0.0.1:$api_port" >"$work/serve.log" 2>&1 &
pids+=($!)
driver_port="$(free_port)"
chromedriver --port="$driver_port" >"$work/chromedriver.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$driver_port/status" >/dev/null && break; sleep 0.1; done
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$api_port/self/" >/dev/null && break; sleep 0.1; done

mkdir -p artifacts
if ! SS_CLI="$cli" SS_WS="$ws" SS_DOUBLE="$double" SS_API="http://127.0.0.1:$api_port" \
  SS_DRIVER_PORT="$driver_port" SS_SHOTS="$PWD/artifacts" node self-service.e2e.mjs; then
  echo "--- pbxdesk serve log"; tail -n 40 "$work/serve.log"
  echo "--- chromedriver log"; tail -n 20 "$work/chromedriver.log"
  exit 1
fi
