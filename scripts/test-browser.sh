#!/usr/bin/env bash
# Runs the wasm-bindgen browser tests (tests/browser.rs, reliability, sse, igniter, igniter_stock, auth, cluster, simple) in headless Chromium and Firefox against a
# real live-relay process (and a second one with authentication on) started by tests/harness/relay-harness.mjs.
# The crate is built with `--features full`: the sse, igniter and simple suites need it (the others
# pass with either build).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[test-browser]\033[0m %s\n' "$*"; }
browsers=("${@:-chrome firefox}")
read -r -a browsers <<<"${browsers[*]}"
cargo build -q --profile server -p live-relay
# wasm-bindgen-test-runner picks its driver from these variables: give it only the one for this browser.
unset CHROMEDRIVER GECKODRIVER SAFARIDRIVER
# The hundred-cuts test takes 10-40 s depending on the browser; the runner stops a run at this many seconds.
export WASM_BINDGEN_TEST_TIMEOUT=180
for b in "${browsers[@]}"; do
  case "$b" in
    chrome) driver=(CHROMEDRIVER=/usr/bin/chromedriver) ;;
    firefox) driver=(GECKODRIVER="$(command -v geckodriver)") ;;
    *) echo "unknown browser $b (chrome or firefox)" >&2; exit 2 ;;
  esac
  say "wasm-bindgen tests in headless $b against a real relay"
  env "${driver[@]}" node tests/harness/relay-harness.mjs --ping-ms 1000 --igniter --simple --hostile -- \
    wasm-pack test --headless "--$b" --features full --test browser --test reliability --test sse --test igniter --test igniter_stock --test auth --test cluster --test simple --test hostile --test flapping --test leaks
done
