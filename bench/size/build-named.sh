#!/usr/bin/env bash
# Builds a copy of the package whose wasm keeps its function names (the `name` section), into
# bench/.build/pkg-named/: for the wasm size breakdown (twiggy) and for readable CPU profiles
# (`node bench/dispatch/run.mjs --profile --pkg bench/.build/pkg-named`). Same flags as
# scripts/build-pkg.sh, plus wasm-opt -g to keep the names; its own target dir, so it never races
# the root build. The code is src/ as it is now (which may differ from what pkg/ was built from).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/.build/pkg-named
export CARGO_TARGET_DIR="$PWD/bench/.build/target"
cargo build -q --lib --release --target wasm32-unknown-unknown
wasm-bindgen --target web --out-dir "$out" --out-name wasm_live_provider \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/wasm_live_provider.wasm"
node_modules/.bin/wasm-opt -Oz --converge -g --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue \
  "$out/wasm_live_provider_bg.wasm" -o "$out/wasm_live_provider_bg.wasm.opt"
mv "$out/wasm_live_provider_bg.wasm.opt" "$out/wasm_live_provider_bg.wasm"
cp pkg-template/*.js "$out/"
echo "$out/wasm_live_provider_bg.wasm: $(wc -c <"$out/wasm_live_provider_bg.wasm") bytes with names"
