#!/usr/bin/env bash
# Every test of pbxdesk: formatting and lints, the UI's tests, the Rust tests on SQLite and
# PostgreSQL, the benchmarks in a quick mode, and the end-to-end test of the real app in a real
# window (Xvfb + WebDriver).
# The app binary is built once and shared by the Rust tests and the end-to-end run.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n\033[1m== %s (%ss)\033[0m\n' "$*" "$(( $(date +%s) - start ))"; }

step "setup"
bash scripts/setup.sh
export PBXDESK_TEST_PG_URL="${PBXDESK_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}"

step "UI: lint, types, tests, build (the app, and the self-service page pbxdesk serve embeds)"
(cd ui && npx biome ci . && npx tsc --noEmit && npx vitest run && npx vite build \
  && npx vite build -c vite.self.config.ts)

step "Rust: format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust: tests (SQLite and PostgreSQL), bindings check"
cargo test --workspace --locked

step "API: property-based fuzzing from its OpenAPI document (schemathesis, bounded)"
bash tests/api-fuzz/run.sh

step "API under load, quick mode (PostgreSQL workspace, wrk; the figures come from a full run)"
bash tests/api-load/run.sh --quick

step "benches, quick mode (small sizes, one sample each: they must keep running; figures come from cargo bench)"
PBXDESK_BENCH_QUICK=1 cargo test --workspace --benches --locked

step "end-to-end: the real app under Xvfb over WebDriver"
bash tests/e2e/run.sh

step "end-to-end: the self-service page in Chromium over WebDriver"
bash tests/e2e/self-service.sh

step "start-up bench, quick mode (the debug build under Xvfb: it must keep running; figures come from a full run)"
bash tests/startup/run.sh --quick

step "bundle: the .deb from the tests' build, unpacked with dpkg -x, runs pbxdesk --version"
bash tests/bundle/run.sh

step "done"
