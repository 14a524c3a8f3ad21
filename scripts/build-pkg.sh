#!/usr/bin/env bash
# Builds the npm package into pkg/: wasm-pack (--target web) + wasm-opt from the npm `binaryen`
# package + the JS entry and types from pkg-template/. Prints the sizes.
#
# Two wasm builds: the default one (WebSocket, protocol v1: what a Refine app ships) into pkg/, and
# the full one (`--features full`: also Server-Sent Events, Igniter.js streams and the simple
# protocol) into pkg/full/, which the JS entry imports only for a client whose options need it.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[build-pkg]\033[0m %s\n' "$*"; }

# Never Debian's binaryen (it breaks the externref table export): only the npm package's wasm-opt.
wasm_opt=node_modules/.bin/wasm-opt
if [ ! -x "$wasm_opt" ]; then echo "missing $wasm_opt: run scripts/setup.sh" >&2; exit 1; fi

# build OUT_DIR [CARGO_ARGS...]: wasm-pack, then wasm-opt -Oz, into OUT_DIR.
build() {
  local out=$1; shift
  say "compiling the crate to WebAssembly into $out/ (release profile, wasm-pack --target web${*:+, $*})"
  wasm-pack build --target web --release --out-dir "$out" --out-name wasm_live_provider --no-pack . -- "$@" 2>&1 \
    | grep -vE '^\s*$|INFO|Compiling|Finished' || true
  test -f "$out/wasm_live_provider_bg.wasm" || { echo "wasm-pack produced no wasm in $out/" >&2; exit 1; }
  say "optimising $out/ with $("$wasm_opt" --version) (npm binaryen)"
  "$wasm_opt" -Oz --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    "$out/wasm_live_provider_bg.wasm" -o "$out/wasm_live_provider_bg.wasm.opt"
  mv "$out/wasm_live_provider_bg.wasm.opt" "$out/wasm_live_provider_bg.wasm"
  rm -f "$out/.gitignore"
}

rm -rf pkg/full
build pkg
build pkg/full --features full

say "adding the JS entry, types and README from pkg-template/"
cp pkg-template/*.json pkg-template/*.js pkg-template/*.d.ts pkg-template/README.md pkg/

bash scripts/size-report.sh
