#!/usr/bin/env bash
# Runs the wasm-bindgen browser tests (tests/browser.rs) in headless Chromium and Firefox against a
# real live-relay process started (and restarted on demand) by tests/harness/relay-harness.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[test-browser]\033[0m %s\n' "$*"; }
browsers=("${@:-chrome firefox}")
read -r -a browsers <<<"${browsers[*]}"
cargo build -q --release -p live-relay
export CHROMEDRIVER=/usr/bin/chromedriver
export GECKODRIVER
GECKODRIVER=$(command -v geckodriver || true)
for b in "${browsers[@]}"; do
  say "wasm-bindgen tests in headless $b against a real relay"
  node tests/harness/relay-harness.mjs --ping-ms 1000 -- wasm-pack test --headless "--$b" --test browser
done
