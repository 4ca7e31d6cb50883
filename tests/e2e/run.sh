#!/usr/bin/env bash
# Starts Xvfb and tauri-driver, runs the WebDriver test against the debug app binary built by
# `cargo test` (target/debug/pbxdesk-app), and stops both by PID on exit.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
app="$target/debug/pbxdesk-app"
cli="$target/debug/pbxdesk"
[ -x "$app" ] || (cd "$root" && cargo build --locked -p pbxdesk-app -p pbxdesk-cli)
[ -x "$cli" ] || (cd "$root" && cargo build --locked -p pbxdesk-cli)
# The PBX test double the apply check applies to (built by `cargo test` with the examples).
double="$target/debug/examples/pbx_double"
[ -x "$double" ] || (cd "$root" && cargo build --locked -p pbxdesk-core --example pbx_double)

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A display and two ports nothing else holds: this machine runs other services on fixed ports
# (RabbitMQ on 5672 once answered tauri-driver's native port with AMQP, and the run failed).
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
n=90
while [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ]; do n=$(( n + 1 )); done
display=":$n"
Xvfb "$display" -screen 0 1400x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -e "/tmp/.X11-unix/X${display#:}" ] && break; sleep 0.1; done

for _ in $(seq 1 50); do
  port=$(( 10000 + RANDOM % 20000 ))  # below the ephemeral range (32768+)
  in_use "$port" || in_use $(( port + 1 )) || break
done
export DISPLAY="$display"
# The app reads these when WebKitWebDriver starts it (its settings file too: never the tester's).
export PBXDESK_WORKSPACE="$work/e2e.sqlite" PBXDESK_DEMO=1 PBXDESK_SETTINGS="$work/settings.json"

# The update server of the update check: HTTPS on loopback under a CA made here, and a
# throwaway signing key (the publisher's private key is not here, so what it signs must be
# refused by the key built into the app).
tls="$work/tls"
mkdir -p "$tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=pbxdesk e2e CA" \
  -addext basicConstraints=critical,CA:TRUE -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
  -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n' >"$tls/ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 2 -extfile "$tls/ext" -out "$tls/server.pem" 2>/dev/null
"$root/ui/node_modules/.bin/tauri" signer generate --ci -w "$tls/stranger.key" -p "" >/dev/null 2>&1
printf 'the package of version 9.9.0\n' >"$tls/pkg.deb"
"$root/ui/node_modules/.bin/tauri" signer sign -f "$tls/stranger.key" -p "" --app-version 9.9.0 "$tls/pkg.deb" >/dev/null 2>&1
tauri-driver --port "$port" --native-port $(( port + 1 )) >"$work/driver.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/status" >/dev/null && break; sleep 0.1; done

mkdir -p artifacts
if ! E2E_APP="$app" E2E_CLI="$cli" E2E_PBX_DOUBLE="$double" E2E_PORT="$port" E2E_SHOTS="$PWD/artifacts" E2E_TLS="$tls" node create-user.e2e.mjs; then
  echo "--- tauri-driver log"; tail -n 40 "$work/driver.log"
  exit 1
fi
import -display "$display" -window root artifacts/screen.png 2>/dev/null || true
