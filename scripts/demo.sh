#!/usr/bin/env bash
# Builds pbxdesk and starts it on a demo workspace (an SQLite file in the OS data directory,
# filled with a demo PBX, two tenants and a few users on first start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --app
# The UI is built only when its sources are newer than the last build: a rebuild gives the files
# new times, and the Rust crates that embed them would be compiled again.
stale() { [ ! -f "ui/$1/index.html" ] || [ -n "$(find ui/src ui/self ui/index.html ui/package-lock.json ui/vite.config.ts ui/vite.self.config.ts -newer "ui/$1/index.html" -print -quit)" ]; }
if stale dist || stale dist-self; then
  (cd ui && npx vite build --logLevel warn && npx vite build -c vite.self.config.ts --logLevel warn)
fi
data="${XDG_DATA_HOME:-$HOME/.local/share}/pbxdesk"
mkdir -p "$data"
export PBXDESK_WORKSPACE="${PBXDESK_WORKSPACE:-$data/demo.sqlite}"
echo "workspace: $PBXDESK_WORKSPACE"
target="${CARGO_TARGET_DIR:-target}"
if compgen -G "$target/debug/deps/bindings-*" >/dev/null; then
  # The tests were built here (scripts/test.sh): the app is built as they build it, with the
  # same features, so nothing is compiled again and the window opens in seconds. An app-only
  # build would unify features differently and compile ~30 crates a second time.
  cargo test --workspace --locked --no-run --quiet
else
  cargo build --locked -p pbxdesk-app
fi
exec "$target/debug/pbxdesk-app" --demo
