#!/usr/bin/env bash
# make fuzz [FUZZ_SECONDS=60] [FUZZ_TARGETS="client_frame token"]: runs every fuzz target of fuzz/
# for FUZZ_SECONDS each, one after the other, starting from the seed corpus in fuzz/corpus/<target>/.
# Installs what it needs first, idempotently: the pinned nightly below (rustup) and cargo-fuzz.
# New inputs found go to fuzz/work/<target>/ (not committed); a crash stops the run, is kept in
# fuzz/artifacts/<target>/ and must become a regression test (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

NIGHTLY=$(cat scripts/nightly-toolchain)
CARGO_FUZZ_VERSION=0.13.2
SECONDS_EACH=${FUZZ_SECONDS:-60}
say() { printf '\033[1m[fuzz]\033[0m %s\n' "$*"; }

if ! rustup toolchain list | grep -q "^$NIGHTLY"; then
  say "installing $NIGHTLY (rustup, minimal profile)"
  rustup toolchain install "$NIGHTLY" --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  say "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Safe Rust: no sanitizer (twice the executions), but debug assertions and overflow checks on.
FLAGS=(-O -a -s none)
TARGETS=${FUZZ_TARGETS:-$(cd fuzz && cargo +"$NIGHTLY" fuzz list)}
say "building the fuzz targets with $NIGHTLY"
(cd fuzz && cargo +"$NIGHTLY" fuzz build "${FLAGS[@]}")

summary=()
for target in $TARGETS; do
  mkdir -p "fuzz/work/$target" "fuzz/artifacts/$target"
  log="fuzz/work/$target.log"
  say "$target: ${SECONDS_EACH}s (log: $log)"
  status=0
  # The binary built above, run directly (as `cargo fuzz run` would, without building again).
  (cd fuzz && "target/$(rustc -vV | sed -n 's/^host: //p')/release/$target" \
      -artifact_prefix="artifacts/$target/" -max_total_time="$SECONDS_EACH" -max_len=16384 \
      -rss_limit_mb=2048 -print_final_stats=1 "work/$target" "corpus/$target") \
      >"$log" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  if [ "$status" -ne 0 ]; then
    tail -40 "$log"
    say "$target: FAILED after ${runs:-?} runs: the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  summary+=("$target: ${runs:-?} executions in ${SECONDS_EACH}s, no crash")
done
say "summary"
printf '  %s\n' "${summary[@]}"
