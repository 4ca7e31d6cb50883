#!/usr/bin/env bash
# The .deb, built from the debug build the tests made (`scripts/bundle.sh --debug`), unpacked
# into a scratch root with dpkg -x: its version is the workspace's, the CLI runs from it and
# prints that version, the app, its desktop entry and icon are there, and the app binary is
# marked as a .deb install (what tells the updater to install updates with dpkg).
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
fail() { echo "bundle test: $*" >&2; exit 1; }

# The bundler marks the binary it packs as a .deb install, in place: the tests' binary is kept
# aside and put back, so the demo and the end-to-end run never take themselves for a package.
app="$target/debug/pbxdesk-app"
cp -p "$app" "$app.unbundled"
trap 'mv -f "$app.unbundled" "$app"' EXIT
bash scripts/bundle.sh --debug >/dev/null
deb="$target/debug/bundle/deb/pbxdesk_${version}_amd64.deb"
[ -f "$deb" ] || fail "no $deb"
[ "$(dpkg-deb -f "$deb" Package)" = pbxdesk ] || fail "package name: $(dpkg-deb -f "$deb" Package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "package version $(dpkg-deb -f "$deb" Version), workspace $version"
dpkg-deb -f "$deb" Depends | grep -q libwebkit2gtk-4.1 || fail "no WebKitGTK dependency: $(dpkg-deb -f "$deb" Depends)"

root=$(mktemp -d)
trap 'rm -rf "$root"; mv -f "$app.unbundled" "$app"' EXIT
dpkg -x "$deb" "$root"
for f in usr/bin/pbxdesk usr/bin/pbxdesk-app usr/share/applications/pbxdesk.desktop; do
  [ -e "$root/$f" ] || fail "$f is not in the package: $(dpkg-deb -c "$deb" | awk '{print $6}' | tr '\n' ' ')"
done
ls "$root"/usr/share/icons/hicolor/*/apps/pbxdesk*.png >/dev/null 2>&1 || fail "no icon"
grep -q '^Exec=pbxdesk-app' "$root/usr/share/applications/pbxdesk.desktop" || fail "desktop entry: $(cat "$root/usr/share/applications/pbxdesk.desktop")"
got=$("$root/usr/bin/pbxdesk" --version)
[ "$got" = "pbxdesk $version" ] || fail "the packaged CLI says '$got', not 'pbxdesk $version'"
got=$("$root/usr/bin/pbxdesk" version --json)
echo "$got" | grep -q "\"version\":\"$version\"" || fail "pbxdesk version --json: $got"
grep -q __TAURI_BUNDLE_TYPE_VAR_DEB "$root/usr/bin/pbxdesk-app" || fail "the app binary is not marked as a .deb install"
echo "bundle: $(basename "$deb") ($(du -h "$deb" | cut -f1)), pbxdesk $version runs from it"
