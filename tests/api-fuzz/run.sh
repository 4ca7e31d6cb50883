#!/usr/bin/env bash
# Property-based fuzzing of the HTTP API from its own OpenAPI document (schemathesis, from
# PyPI): every operation, a bounded number of generated requests each (API_FUZZ_EXAMPLES, 25 by
# default; raise it for a long run). Fails on a 5xx, a status the document does not name, or a
# response that is not of its schema or content type. Business rules (a valid e-mail, a free
# extension) are not in the schema, so a schema-valid request refused with 422 is not a failure.
# The server runs on a demo workspace; the requests carry an msp_admin's token (logout is left
# out: it would end that token for the rest of the run). A second pass sends an end user's
# session token (an invited user of the demo) to the self-service routes, /api/v1/me.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"
bin="${CARGO_TARGET_DIR:-$root/target}/debug/pbxdesk"
[ -x "$bin" ] || (cd "$root" && cargo build --locked -p pbxdesk-cli)
# Its command where pip puts it (a version manager's shims may not know a fresh install yet).
st="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/st"
[ -x "$st" ] && "$st" --version | grep -q "4.32.5" || python3 -m pip install -q "schemathesis==4.32.5"

work="$(mktemp -d)"
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ws=(--workspace "$work/ws.sqlite" --key-file "$work/ws.key")
"$bin" "${ws[@]}" demo seed >/dev/null
echo "fuzz operator password 1" | "$bin" "${ws[@]}" operator add --username fuzz --role msp_admin --password-stdin >/dev/null

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 1 50); do
  port=$(( 10000 + RANDOM % 20000 ))
  in_use "$port" || break
done
"$bin" "${ws[@]}" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
pid=$!
base="http://127.0.0.1:$port"
token="$(python3 - "$base" <<'PY'
import json, sys, time, urllib.request
base = sys.argv[1]
body = json.dumps({"username": "fuzz", "password": "fuzz operator password 1"}).encode()
for _ in range(100):
    try:
        req = urllib.request.Request(base + "/api/v1/auth/login", body, {"Content-Type": "application/json"})
        print(json.load(urllib.request.urlopen(req, timeout=5))["access_token"])
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the API server did not answer")
PY
)"
# The self-service routes first, as an end user (invited, the invite taken for a session): the
# operator pass after it may delete or suspend any user, this one too.
invite="$("$bin" "${ws[@]}" --json user invite acme-dental/102 | python3 -c 'import json,sys; print(json.load(sys.stdin)["invite"])')"
me_token="$(python3 - "$base" "$invite" <<'PY'
import json, sys, urllib.request
base, invite = sys.argv[1], sys.argv[2]
body = json.dumps({"invite": invite, "password": "fuzz end user password 1"}).encode()
req = urllib.request.Request(base + "/api/v1/me/accept", body, {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=5))["token"])
PY
)"
"$st" --config-file schemathesis.toml run "$base/api/v1/openapi.json" \
  -H "Authorization: Bearer $me_token" \
  --include-path-regex '^/api/v1/me' \
  --exclude-path /api/v1/me/logout \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${API_FUZZ_EXAMPLES:-25}" \
  --seed 1 \
  --no-color

"$st" --config-file schemathesis.toml run "$base/api/v1/openapi.json" \
  -H "Authorization: Bearer $token" \
  --exclude-path /api/v1/auth/logout \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "${API_FUZZ_EXAMPLES:-25}" \
  --seed 1 \
  --no-color
