#!/usr/bin/env bash
# Builds pbxdesk and starts it on a demo workspace (an SQLite file in the OS data directory,
# filled with a demo PBX, two tenants and a few users on first start).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --app
(cd ui && npx vite build --logLevel warn && npx vite build -c vite.self.config.ts --logLevel warn)
data="${XDG_DATA_HOME:-$HOME/.local/share}/pbxdesk"
mkdir -p "$data"
export PBXDESK_WORKSPACE="${PBXDESK_WORKSPACE:-$data/demo.sqlite}"
echo "workspace: $PBXDESK_WORKSPACE"
exec cargo run --locked -p pbxdesk-app -- --demo
