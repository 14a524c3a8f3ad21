#!/usr/bin/env bash
# Fails when what a Refine user ships from pkg/ (gzip -9 total) is over the budget in bench/size/budget.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=$(sed -n 's/^total_gzip_bytes=\([0-9][0-9]*\)$/\1/p' bench/size/budget.txt)
[ -n "$budget" ] || { echo "bench/size/budget.txt has no total_gzip_bytes=N line" >&2; exit 2; }
total=0
for f in pkg/wasm_live_provider_bg.wasm pkg/wasm_live_provider.js pkg/index.js pkg/snippets/*/*.js; do
  case "$f" in *'*'*) continue ;; esac # no snippets: the glue has them bundled in
  [ -f "$f" ] || { echo "missing $f: build the package first (make pkg)" >&2; exit 2; }
  total=$((total + $(gzip -9 -c "$f" | wc -c)))
done
if [ "$total" -gt "$budget" ]; then
  echo "size budget exceeded: what a Refine user ships is $total B gzip, over the budget of $budget B (bench/size/budget.txt)" >&2
  exit 1
fi
echo "size budget: $total B gzip of $budget B ($((budget - total)) B to spare)"
