#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test pbxdesk, and starts the
# databases the tests use. Installs only what is missing; safe to run again.
#   bash scripts/setup.sh          everything (build, tests, end-to-end)
#   bash scripts/setup.sh --app    only what building and running the app needs
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-all}"

say() { printf '\033[1m== %s\033[0m\n' "$*"; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages (Tauri's WebKitGTK stack; Xvfb and the WebKit WebDriver for the e2e test).
pkgs=(build-essential pkg-config libssl-dev libwebkit2gtk-4.1-dev libjavascriptcoregtk-4.1-dev
      libsoup-3.0-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev)
if [ "$mode" != "--app" ]; then
  # wrk and curl: the API's load bench (tests/api-load). openssl: the update server's CA in the
  # end-to-end test; procps (pgrep): the start-up bench. Chromium and its WebDriver: the
  # self-service page's browser test (tests/self-service).
  pkgs+=(xvfb xauth webkit2gtk-driver imagemagick postgresql-client mariadb-client openssh-server
        wrk curl chromium chromium-driver openssl procps)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing system packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "Rust is required: https://rustup.rs" >&2; exit 1; }
command -v npm >/dev/null || { echo "Node.js 20.19+ with npm is required" >&2; exit 1; }

# npm packages, exactly as locked.
npm_ci() {
  local dir="$1"
  if [ ! -d "$dir/node_modules" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    say "npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}
npm_ci ui
[ "$mode" = "--app" ] && exit 0
npm_ci tests/e2e

if ! command -v tauri-driver >/dev/null; then
  say "installing tauri-driver"
  cargo install tauri-driver --version 2.1.0 --locked
fi

# The databases the tests use (this machine kind runs both; start them if they stopped).
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  say "starting PostgreSQL"
  sudo_if_needed pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
fi
if ! mysqladmin --host=127.0.0.1 --user=root ping >/dev/null 2>&1; then
  say "starting MariaDB"
  sudo_if_needed start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  for _ in $(seq 1 30); do mysqladmin --host=127.0.0.1 --user=root ping >/dev/null 2>&1 && break; sleep 1; done
fi
for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
pg_isready -h 127.0.0.1 -p 5432
