#!/usr/bin/env bash
# Builds the npm package into pkg/: cargo + wasm-bindgen (--target web) + wasm-opt from the npm
# `binaryen` package + the JS entry and types from pkg-template/. Prints the sizes.
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

# The package ships a wasm built by stable Rust. `NIGHTLY=1` builds it instead with the pinned nightly
# of scripts/nightly-toolchain and the standard library rebuilt with immediate-abort panics (no
# panic messages, no `core::fmt`), installing that toolchain if missing: issue 11 asked to adopt it
# only for a gain of at least 15 %; on the no_std wasm it measures 5.9 % (docs/DEPENDENCIES.md), so it is
# not used.
NIGHTLY_TOOLCHAIN=$(cat scripts/nightly-toolchain)
TARGET_DIR=target
bindgen_version=$(sed -n 's/^wasm-bindgen = .*"=\([0-9.]*\)".*/\1/p' Cargo.toml)
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$bindgen_version" ]; then
  echo "wasm-bindgen CLI $bindgen_version is missing: run scripts/setup.sh" >&2; exit 1
fi
if [ "${NIGHTLY:-0}" = 1 ]; then
  if ! rustup toolchain list | grep -q "^$NIGHTLY_TOOLCHAIN"; then
    say "installing $NIGHTLY_TOOLCHAIN (rustup, minimal profile)"
    rustup toolchain install "$NIGHTLY_TOOLCHAIN" --profile minimal
  fi
  if ! rustup component list --toolchain "$NIGHTLY_TOOLCHAIN" --installed | grep -q '^rust-src'; then
    rustup component add rust-src --toolchain "$NIGHTLY_TOOLCHAIN"
  fi
fi

# The source paths a panic's location names (the dependencies' under $CARGO_HOME, the standard
# library's under /rustc/<commit>) shortened to `crates/` and `rust/`: the wasm is then the same, byte
# for byte and in size, whoever builds it and wherever their cargo home is (/root/.cargo here: 14
# such paths, 1,100 bytes).
REMAP="--remap-path-prefix=/rustc/$(rustc -vV | sed -n 's/^commit-hash: //p')=rust"
for registry in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  REMAP="$REMAP --remap-path-prefix=${registry%/}=crates"
done

# build OUT_DIR [CARGO_ARGS...]: cargo (release, wasm32), wasm-bindgen --target web, then
# wasm-opt -Oz, into OUT_DIR.
build() {
  local out=$1; shift
  local wasm=$TARGET_DIR/wasm32-unknown-unknown/release/wasm_live_provider.wasm
  if [ "${NIGHTLY:-0}" = 1 ]; then
    say "compiling the crate to WebAssembly into $out/ ($NIGHTLY_TOOLCHAIN, std rebuilt with immediate-abort panics${*:+, $*})"
    RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort -Zlocation-detail=none -Zfmt-debug=none" \
      cargo +"$NIGHTLY_TOOLCHAIN" build -q --release --lib --target wasm32-unknown-unknown \
      -Zbuild-std=std,panic_abort --target-dir "$TARGET_DIR/nightly" "$@"
    wasm=$TARGET_DIR/nightly/wasm32-unknown-unknown/release/wasm_live_provider.wasm
  else
    say "compiling the crate to WebAssembly into $out/ (release profile${*:+, $*})"
    RUSTFLAGS="$REMAP" cargo build -q --release --lib --target wasm32-unknown-unknown --target-dir "$TARGET_DIR" "$@"
  fi
  rm -rf "$out/snippets"
  wasm-bindgen --target web --out-dir "$out" --out-name wasm_live_provider "$wasm"
  say "optimising $out/ with $("$wasm_opt" --version) (npm binaryen)"
  "$wasm_opt" -Oz --converge --enable-bulk-memory --enable-reference-types --enable-nontrapping-float-to-int \
    --enable-sign-ext --enable-mutable-globals --enable-multivalue \
    "$out/wasm_live_provider_bg.wasm" -o "$out/wasm_live_provider_bg.wasm.opt"
  mv "$out/wasm_live_provider_bg.wasm.opt" "$out/wasm_live_provider_bg.wasm"
}

rm -rf pkg/full
build pkg
build pkg/full --features full

say "adding the JS entry, types and README from pkg-template/"
cp pkg-template/*.json pkg-template/*.js pkg-template/*.d.ts pkg-template/README.md pkg/

# The JS that ships is minified, as the clients it is compared with are (rolldown, a devDependency):
# each wasm-bindgen glue with its inline snippet bundled in, and the entry with its imports of the two
# glues kept as they are (the full build stays a separate, lazily imported file).
minify() { # FILE [EXTERNAL_IMPORT...]
  local file=$1; shift
  local externals=()
  for e in "$@"; do externals+=(-e "$e"); done
  node_modules/.bin/rolldown "$file" --minify --format esm "${externals[@]}" -o "$file.min" >/dev/null
  mv "$file.min" "$file"
}
say "minifying the glue and the entry ($(node_modules/.bin/rolldown --version 2>/dev/null | tr -d "\n"))"
for out in pkg pkg/full; do
  minify "$out/wasm_live_provider.js"
  rm -rf "$out/snippets"
done
minify pkg/index.js ./wasm_live_provider.js ./full/wasm_live_provider.js

bash scripts/size-report.sh
