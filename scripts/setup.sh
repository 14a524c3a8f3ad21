#!/usr/bin/env bash
# Installs what building and testing need, skipping whatever is already there (idempotent).
# Debian 12 with rustup and Node.js; root (or sudo) for apt-get. See ../shared/reference/toolchain.md.
#   scripts/setup.sh            toolchain for building (wasm target, wasm-pack, wasm-bindgen, npm tools)
#   scripts/setup.sh --browsers also Chromium, Firefox and their WebDriver servers (for the tests)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
want_browsers=0
[ "${1:-}" = "--browsers" ] && want_browsers=1

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
apt_updated=0
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ $apt_updated = 0 ]; then say "apt-get update"; $SUDO apt-get update -qq; apt_updated=1; fi
  say "apt-get install ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown Rust target"
  rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must be exactly the version pinned in Cargo.toml (wasm-pack refuses a mismatch
# and would try to download one). Installed without --locked: its lockfile names a crate version the
# registry here lacks.
bindgen_version=$(sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*/\1/p' Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  say "installing wasm-bindgen-cli $bindgen_version (about 3 minutes)"
  cargo install -q wasm-bindgen-cli --version "$bindgen_version"
fi
if ! command -v wasm-pack >/dev/null; then
  say "installing wasm-pack (about 2 minutes)"
  cargo install -q --locked wasm-pack
fi

# npm tools: wasm-opt from the npm `binaryen` package (never Debian's binaryen), rolldown (minifies the
# shipped JS), Playwright, Vite, tsc; React, react-dom and Vue, for the adapters' tests (tests/adapters);
# jose, which the tests of wasm-live-provider/server check its tokens with (tests/server).
if [ ! -x node_modules/.bin/wasm-opt ] || [ ! -x node_modules/.bin/rolldown ] || [ ! -f node_modules/react-dom/server.js ] \
  || [ ! -f node_modules/jose/package.json ] || [ package.json -nt node_modules/.package-lock.json ]; then
  say "installing npm tools (binaryen, playwright-core, vite, typescript, react, vue, jose)"
  npm install --no-audit --no-fund --loglevel=error
fi

apt_install brotli
# The relay's static Linux binary (make npm): the musl target, and musl-gcc for ring's C parts.
if ! rustup target list --installed | grep -qx x86_64-unknown-linux-musl; then
  say "adding the x86_64-unknown-linux-musl Rust target"
  rustup target add x86_64-unknown-linux-musl
fi
apt_install musl-tools
# readelf: make npm and make test-npm check that the binary is static (no NEEDED, no INTERP).
apt_install binutils
# The relay's cluster tests run a real Redis (started by the tests on a free port, no persistence);
# its TLS test (relay/tests/redis_tls.rs) makes a CA and certificates with the openssl command line.
apt_install redis-server openssl
# The relay's PostgreSQL feed tests and `make demo-postgres` start a throwaway cluster (never the package's own on 5432).
apt_install postgresql-15
# The Igniter.js server the SSE tests read (tests/igniter).
if [ ! -f tests/igniter/node_modules/.package-lock.json ] || [ tests/igniter/package-lock.json -nt tests/igniter/node_modules/.package-lock.json ]; then
  say "installing the Igniter.js test server (tests/igniter)"
  (cd tests/igniter && npm ci --no-audit --no-fund --loglevel=error)
fi
# The scripted hostile WebSocket server of the hostile-server browser tests (tests/hostile, npm `ws`).
if [ ! -f tests/hostile/node_modules/.package-lock.json ] || [ tests/hostile/package-lock.json -nt tests/hostile/node_modules/.package-lock.json ]; then
  say "installing the hostile WebSocket test server (tests/hostile)"
  (cd tests/hostile && npm ci --no-audit --no-fund --loglevel=error)
fi
# The seed-protocol WebSocket server the `protocol: "simple"` tests talk to (tests/simple, npm `ws`).
if [ ! -f tests/simple/node_modules/.package-lock.json ] || [ tests/simple/package-lock.json -nt tests/simple/node_modules/.package-lock.json ]; then
  say "installing the simple-protocol test server (tests/simple)"
  (cd tests/simple && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ $want_browsers = 1 ]; then
  apt_install chromium chromium-driver firefox-esr
  if ! command -v geckodriver >/dev/null; then
    say "installing geckodriver (about 2 minutes)"
    cargo install -q --locked geckodriver
  fi
fi
say "toolchain ready"
