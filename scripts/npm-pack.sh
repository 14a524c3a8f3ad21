#!/usr/bin/env bash
# Packs the relay's npm packages into dist/npm/ (make npm; docs/DISTRIBUTION.md):
#   live-relay-<version>.tgz            `live-relay`: the JS shim (bin/live-relay.js) and the demo app (demo/ = www/dist)
#   live-relay-linux-x64-<version>.tgz  `@live-relay/linux-x64`: the static linux-x64 binary (bin/live-relay)
# from the templates in npm/, both stamped with relay/Cargo.toml's version (the main package's
# optionalDependencies names the platform package at exactly that version). Needs www/dist (make www).
#
# The binary: cargo build --profile server --target x86_64-unknown-linux-musl -p live-relay (static-pie; the
# target and musl-tools come from scripts/setup.sh), or LIVE_RELAY_NPM_BINARY=<path> to pack a binary already
# built (it is checked the same way: static, and printing the version being packed).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[npm-pack]\033[0m %s\n' "$*"; }

version=$(sed -n '/^\[package\]/,/^\[/s/^version = "\(.*\)"/\1/p' relay/Cargo.toml | head -n1)
[ -n "$version" ] || { echo "no version found in relay/Cargo.toml" >&2; exit 1; }
test -f www/dist/index.html || { echo "www/dist is not built: run make www (or bash scripts/build-www.sh)" >&2; exit 1; }

if [ -n "${LIVE_RELAY_NPM_BINARY:-}" ]; then
  binary=$LIVE_RELAY_NPM_BINARY
  say "packing the binary given in LIVE_RELAY_NPM_BINARY: $binary"
else
  say "building the static binary (cargo build --profile server --target x86_64-unknown-linux-musl -p live-relay)"
  cargo build -q --profile server --target x86_64-unknown-linux-musl -p live-relay
  binary=target/x86_64-unknown-linux-musl/server/live-relay
fi

# What the platform package promises: no shared library, no dynamic loader, the version of the package.
if readelf -d "$binary" | grep -q NEEDED || readelf -l "$binary" | grep -q INTERP; then
  echo "$binary is not statically linked:" >&2
  readelf -d "$binary" | grep NEEDED >&2 || true
  readelf -l "$binary" | grep -A1 INTERP >&2 || true
  exit 1
fi
printed=$("$binary" --version)
[ "$printed" = "live-relay $version" ] || { echo "$binary --version printed '$printed', expected 'live-relay $version'" >&2; exit 1; }

out=dist/npm
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
rm -f "$out"/live-relay-*.tgz

cp -r npm/live-relay "$stage/live-relay"
cp -r npm/linux-x64 "$stage/linux-x64"
chmod 755 "$stage/live-relay/bin/live-relay.js"
mkdir -p "$stage/linux-x64/bin"
install -m 755 "$binary" "$stage/linux-x64/bin/live-relay"
rm -rf "$stage/live-relay/demo"
cp -r www/dist "$stage/live-relay/demo"

# Stamp the version on both, and on the main package's dependency on the platform package.
node -e '
  const fs = require("node:fs");
  const [version, ...files] = process.argv.slice(1);
  for (const file of files) {
    const pkg = JSON.parse(fs.readFileSync(file, "utf8"));
    pkg.version = version;
    for (const name of Object.keys(pkg.optionalDependencies || {})) pkg.optionalDependencies[name] = version;
    fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + "\n");
  }
' "$version" "$stage/live-relay/package.json" "$stage/linux-x64/package.json"

for pkg in linux-x64 live-relay; do
  (cd "$stage/$pkg" && npm pack --ignore-scripts --loglevel=warn --pack-destination "$OLDPWD/$out" >/dev/null)
done

main=$out/live-relay-$version.tgz
platform=$out/live-relay-linux-x64-$version.tgz
test -f "$main" && test -f "$platform"
say "version $version (relay/Cargo.toml)"
say "$(printf '%-40s %9d bytes' "binary ($binary)" "$(stat -c %s "$binary")")"
say "$(printf '%-40s %9d bytes' "$platform" "$(stat -c %s "$platform")")"
say "$(printf '%-40s %9d bytes' "$main" "$(stat -c %s "$main")")"
