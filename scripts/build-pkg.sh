#!/usr/bin/env bash
# Builds the npm package into pkg/: wasm-pack (--target web) + wasm-opt from the npm `binaryen`
# package + the JS entry and types from pkg-template/. Prints the sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1m[build-pkg]\033[0m %s\n' "$*"; }

say "compiling the crate to WebAssembly (release profile, wasm-pack --target web)"
wasm-pack build --target web --release --out-dir pkg --out-name wasm_live_provider --no-pack . 2>&1 \
  | grep -vE '^\s*$|INFO|Compiling|Finished' || true
test -f pkg/wasm_live_provider_bg.wasm || { echo "wasm-pack produced no wasm" >&2; exit 1; }

# Never Debian's binaryen (it breaks the externref table export): only the npm package's wasm-opt.
wasm_opt=node_modules/.bin/wasm-opt
if [ ! -x "$wasm_opt" ]; then echo "missing $wasm_opt: run scripts/setup.sh" >&2; exit 1; fi
say "optimising with $("$wasm_opt" --version) (npm binaryen)"
"$wasm_opt" -Oz --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-multivalue \
  pkg/wasm_live_provider_bg.wasm -o pkg/wasm_live_provider_bg.wasm.opt
mv pkg/wasm_live_provider_bg.wasm.opt pkg/wasm_live_provider_bg.wasm

say "adding the JS entry, types and README from pkg-template/"
cp pkg-template/*.json pkg-template/*.js pkg-template/*.d.ts pkg-template/README.md pkg/
rm -f pkg/.gitignore

bash scripts/size-report.sh
