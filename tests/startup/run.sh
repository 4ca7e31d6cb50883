#!/usr/bin/env bash
# The app's start and footprint, under Xvfb (figures in BENCHMARKS.md):
#  - start to the first painted screen: from the launch of the process to the second animation
#    frame after the window's first screen with the workspace's data (the UI calls
#    `startup_painted`, the backend writes the time to PBXDESK_STARTUP_MARK);
#  - memory when idle (5 s after the users list painted): the app process's RSS and PSS, and
#    the whole app's PSS (the app and its WebKit web and network processes);
#  - the same with a tenant of 10,000 users on screen, against the demo's 8.
#   bash tests/startup/run.sh            release build (built if missing), 7 starts per workspace
#   bash tests/startup/run.sh --quick    the debug build the tests made, 1 start each, 500 users
#                                        (CI: the bench must keep working; its figures mean nothing)
#   bash tests/startup/run.sh --cold     the OS file cache dropped before each start (root only)
# One JSON line per workspace on standard output.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
target="${CARGO_TARGET_DIR:-$root/target}"
quick=0 runs=7 big=10000 profile=release cold=0
[ "${1:-}" = --quick ] && quick=1 runs=1 big=500 profile=debug
if [ "${1:-}" = --cold ]; then
  [ "$(id -u)" = 0 ] || { echo "--cold drops the OS file cache: run it as root" >&2; exit 2; }
  cold=1
fi
app="$target/$profile/pbxdesk-app"
cli="$target/$profile/pbxdesk"
if [ "$profile" = release ]; then
  [ -f ui/dist/index.html ] || (cd ui && npx vite build >/dev/null)
  cargo build --release --locked -p pbxdesk-app -p pbxdesk-cli >&2
else
  [ -x "$app" ] && [ -x "$cli" ] || cargo build --locked -p pbxdesk-app -p pbxdesk-cli >&2
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
n=120
while [ -e "/tmp/.X$n-lock" ] || [ -e "/tmp/.X11-unix/X$n" ]; do n=$(( n + 1 )); done
Xvfb ":$n" -screen 0 1400x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do [ -e "/tmp/.X11-unix/X$n" ] && break; sleep 0.1; done
export DISPLAY=":$n" PBXDESK_SETTINGS="$work/settings.json"

# The demo workspace (8 users), seeded once; and one tenant of $big users, imported once.
PBXDESK_WORKSPACE="$work/demo.sqlite" "$cli" --json tenant list >/dev/null
demo_seed() {
  PBXDESK_WORKSPACE="$work/demo.sqlite" PBXDESK_DEMO=1 PBXDESK_STARTUP_MARK="$work/seed.mark" "$app" &
  local p=$!
  for _ in $(seq 1 600); do grep -q "\"screen\":\"users\"" "$work/seed.mark" 2>/dev/null && break; sleep 0.1; done
  kill "$p"; wait "$p" 2>/dev/null || true
}
demo_seed
w="$work/big.sqlite"
"$cli" --workspace "$w" --json pbx add --name big --host 10.0.0.1 >/dev/null
"$cli" --workspace "$w" --json tenant create --name "Big Clinic" --slug big-clinic --pbx big --ext-range 10000-29999 >/dev/null
python3 - "$big" >"$work/users.csv" <<'EOF'
import sys
print("name,email")
for i in range(int(sys.argv[1])):
    print(f"Person {i:05d},person{i:05d}@big-clinic.example")
EOF
"$cli" --workspace "$w" --json import users --tenant big-clinic "$work/users.csv" >/dev/null

# PSS (kB) of a process, from smaps_rollup (shared pages counted once across the processes).
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# The app and every process under it (WebKitWebProcess, WebKitNetworkProcess).
tree() { local p=$1; echo "$p"; for c in $(pgrep -P "$p"); do tree "$c"; done; }

measure() {  # name workspace
  local name=$1 ws=$2 mark p t0 app_rss app_pss all_pss runs_file
  runs_file="$work/$name.runs"
  : >"$runs_file"
  for i in $(seq 1 "$runs"); do
    mark="$work/$name-$i.mark"
    if [ "$cold" = 1 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; fi
    t0=$(date +%s%3N)
    PBXDESK_WORKSPACE="$ws" PBXDESK_STARTUP_MARK="$mark" "$app" &
    p=$!
    for _ in $(seq 1 600); do grep -q '"screen":"users"' "$mark" 2>/dev/null && break; sleep 0.05; done
    grep -q '"screen":"users"' "$mark" 2>/dev/null || { echo "the app never painted its users list ($name)" >&2; exit 1; }
    echo "$t0 $mark" >>"$runs_file"
    if [ "$i" = "$runs" ]; then
      sleep 5
      app_rss=$(rss "$p"); app_pss=$(pss "$p"); all_pss=0
      for q in $(tree "$p"); do all_pss=$(( all_pss + $(pss "$q") )); done
    fi
    kill "$p"; wait "$p" 2>/dev/null || true
  done
  python3 - "$name" "$app_rss" "$app_pss" "$all_pss" "$runs_file" <<'EOF'
import json, statistics, sys
name, rss, pss, whole, runs = sys.argv[1:]
marks = {}
for line in open(runs):
    t0, f = line.split()
    for l in open(f):
        m = json.loads(l)
        marks.setdefault(m["screen"], []).append(m["at_unix_ms"] - int(t0))
s = sorted(marks["app"])
out = {"workspace": name, "starts": len(s), "start_to_paint_ms_p50": statistics.median(s),
  "start_to_paint_ms_max": s[-1], "app_rss_mib": round(int(rss) / 1024, 1),
  "app_pss_mib": round(int(pss) / 1024, 1), "whole_app_pss_mib": round(int(whole) / 1024, 1)}
# Where the time goes: the backend's main, the end of its setup (workspace open), the paint.
for k in ("main", "setup", "users"):
    if k in marks:
        out[f"{k}_ms_p50"] = statistics.median(marks[k])
print(json.dumps(out))
EOF
}
measure demo "$work/demo.sqlite"
measure "users-$big" "$w"
[ "$quick" = 1 ] && echo "startup bench (quick): it runs; figures come from a full run" >&2
exit 0
