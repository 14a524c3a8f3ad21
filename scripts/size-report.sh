#!/usr/bin/env bash
# Prints raw / gzip / brotli sizes of what a user ships from pkg/: the default build, then the full
# build (pkg/full/), which only a client with `transport: "sse"` / `"auto"`, `flavor` or
# `protocol: "simple"` downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
gz() { gzip -9 -c "$1" | wc -c; }
br() { if command -v brotli >/dev/null; then brotli -q 11 -c "$1" | wc -c; else echo "-"; fi; }
printf '%-34s %9s %9s %9s\n' "file" "raw" "gzip -9" "brotli"
total_raw=0; total_gz=0
for f in pkg/wasm_live_provider_bg.wasm pkg/wasm_live_provider.js pkg/index.js pkg/snippets/*/*.js; do
  [ -f "$f" ] || continue
  r=$(wc -c <"$f"); g=$(gz "$f")
  total_raw=$((total_raw + r)); total_gz=$((total_gz + g))
  printf '%-34s %9d %9d %9s\n' "${f#pkg/}" "$r" "$g" "$(br "$f")"
done
printf '%-34s %9d %9d\n' "total (what a Refine user ships)" "$total_raw" "$total_gz"
# Each adapter with what it imports from the package (adapter-checks.js, the parts of helpers.js it
# uses), bundled as an app's bundler would before minifying; react and vue themselves left out.
adapters=$(mktemp -d)
for a in react vue; do
  f=$adapters/$a.js
  node_modules/.bin/rolldown "pkg/$a.js" --format esm -e "$a" -o "$f" >/dev/null
  printf '%-34s %9d %9d %9s\n' "$a.js (adapter, optional)" "$(wc -c <"$f")" "$(gz "$f")" "$(br "$f")"
done
rm -rf "$adapters"
if [ -f pkg/full/wasm_live_provider_bg.wasm ]; then
  full_raw=0; full_gz=0
  for f in pkg/full/wasm_live_provider_bg.wasm pkg/full/wasm_live_provider.js pkg/full/snippets/*/*.js; do
    [ -f "$f" ] || continue
    r=$(wc -c <"$f"); g=$(gz "$f")
    full_raw=$((full_raw + r)); full_gz=$((full_gz + g))
    printf '%-34s %9d %9d %9s\n' "${f#pkg/}" "$r" "$g" "$(br "$f")"
  done
  printf '%-34s %9d %9d\n' "full/ (SSE, Igniter, simple; lazy)" "$full_raw" "$full_gz"
fi
