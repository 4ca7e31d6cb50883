#!/usr/bin/env bash
# Builds the installable bundles of pbxdesk: the app with the `pbxdesk` CLI beside it in
# /usr/bin, its icon and desktop entry, the version from the Cargo workspace.
#   bash scripts/bundle.sh                 release build: .deb and AppImage
#   bash scripts/bundle.sh --debug         the debug build the tests made (CI: nothing compiled twice), .deb
#   bash scripts/bundle.sh --deb-only      release, .deb only (the AppImage downloads linuxdeploy
#                                          from GitHub at bundle time: it needs the internet)
#   bash scripts/bundle.sh --sign          also signs each bundle for the updater and writes
#                                          latest.json (TAURI_SIGNING_PRIVATE_KEY_PATH and
#                                          TAURI_SIGNING_PRIVATE_KEY_PASSWORD: the publisher's
#                                          key, never in this repository; PBXDESK_RELEASE_URL:
#                                          where the files will be served; RELEASE_NOTES: a file)
# Output: $CARGO_TARGET_DIR/{release,debug}/bundle/{deb,appimage}/ (and update/latest.json).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release bundles=deb,appimage sign=0
for a in "$@"; do
  case "$a" in
    --debug) profile=debug bundles=deb ;;
    --deb-only) bundles=deb ;;
    --sign) sign=1 ;;
    *) echo "unknown option: $a" >&2; exit 2 ;;
  esac
done
target="${CARGO_TARGET_DIR:-$PWD/target}"
bin="$target/$profile"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)

[ -d ui/node_modules ] || (cd ui && npm ci --no-audit --no-fund --loglevel=error)
# The app embeds ui/dist at compile time.
if [ ! -f ui/dist/index.html ] || [ -n "$(find ui/src ui/index.html -newer ui/dist/index.html -print -quit)" ]; then
  (cd ui && npx vite build >/dev/null)
fi
if [ "$profile" = release ]; then
  cargo build --release --locked -p pbxdesk-app -p pbxdesk-cli
else
  [ -x "$bin/pbxdesk-app" ] && [ -x "$bin/pbxdesk" ] \
    || cargo build --locked -p pbxdesk-app -p pbxdesk-cli
fi

# The CLI goes into the package as /usr/bin/pbxdesk; its path depends on the profile and the
# target folder, so it is given here rather than in tauri.conf.json.
extra=$(printf '{"bundle":{"linux":{"deb":{"files":{"/usr/bin/pbxdesk":"%s"}},"appimage":{"files":{"/usr/bin/pbxdesk":"%s"}}}}}' \
  "$bin/pbxdesk" "$bin/pbxdesk")
flags=(--bundles "$bundles" --config "$extra" --ci)
[ "$profile" = debug ] && flags+=(--debug)
# The Tauri CLI (npm, prebuilt) finds src-tauri/tauri.conf.json from the repository's root.
ui/node_modules/.bin/tauri bundle "${flags[@]}"

out="$bin/bundle"
if [ "$sign" = 1 ]; then
  : "${TAURI_SIGNING_PRIVATE_KEY_PATH:?the signing key file of the publisher}"
  : "${PBXDESK_RELEASE_URL:?where the bundles will be served, e.g. https://updates.example.net/pbxdesk}"
  mkdir -p "$out/update"
  deb="$out/deb/pbxdesk_${version}_amd64.deb"
  appimage=$(ls "$out"/appimage/*.AppImage 2>/dev/null | head -n1 || true)
  # The signature names the version, so a server cannot pass an older release off as this one.
  for f in "$deb" $appimage; do
    ui/node_modules/.bin/tauri signer sign --app-version "$version" "$f" >/dev/null
  done
  # A .deb install looks for linux-x86_64-deb first, an AppImage for linux-x86_64-appimage, then
  # both for linux-x86_64 (the AppImage: it replaces itself without a password).
  python3 - "$version" "$PBXDESK_RELEASE_URL" "${RELEASE_NOTES:-}" "$deb" $appimage >"$out/update/latest.json" <<'EOF'
import json, sys, datetime, os
version, base, notes, deb = sys.argv[1:5]
appimage = sys.argv[5] if len(sys.argv) > 5 else None
def entry(f):
    return {"url": f"{base}/{os.path.basename(f)}", "signature": open(f + ".sig").read()}
platforms = {"linux-x86_64-deb": entry(deb)}
if appimage:
    platforms["linux-x86_64-appimage"] = platforms["linux-x86_64"] = entry(appimage)
print(json.dumps({
  "version": version,
  "notes": open(notes).read() if notes else "",
  "pub_date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
  "platforms": platforms,
}, indent=2))
EOF
  echo "signed: $deb.sig; manifest: $out/update/latest.json"
fi
ls -1 "$out"/deb/*.deb "$out"/appimage/*.AppImage 2>/dev/null || true
