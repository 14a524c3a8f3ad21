#!/usr/bin/env bash
# Size benchmark: scripts/size-report.sh (what pkg/ ships), then a names-keeping build of the same
# code (bench/.build/pkg-named, rebuilt when missing or with --rebuild) and the twiggy breakdown,
# written to bench/results/size.{md,json}. Builds pkg/ first when it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -f pkg/wasm_live_provider_bg.wasm ] || bash scripts/build-pkg.sh
bash scripts/size-report.sh
if [ "${1:-}" = "--rebuild" ] || [ ! -f bench/.build/pkg-named/wasm_live_provider_bg.wasm ]; then
  bash bench/size/build-named.sh
fi
command -v twiggy >/dev/null || cargo install --locked twiggy
[ -d bench/node_modules/playwright-core ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
node bench/size/breakdown.mjs >/dev/null
echo "size: wrote bench/results/size.md"
