#!/usr/bin/env bash
# Builds the demo (www/: the Refine app and the Vue app) with Vite into www/dist. Needs pkg/ built.
set -euo pipefail
cd "$(dirname "$0")/../www"
say() { printf '\033[1m[build-www]\033[0m %s\n' "$*"; }
test -f ../pkg/index.js || { echo "pkg/ is not built: run scripts/build-pkg.sh first" >&2; exit 1; }
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing the demo's npm dependencies (Refine, React, Vue, TanStack Query, Vite)"
  npm ci --no-audit --no-fund --loglevel=error
fi
say "vite build"
npx vite build --logLevel warn
