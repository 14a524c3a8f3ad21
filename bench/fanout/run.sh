#!/usr/bin/env bash
# Relay fan-out benchmark: raises the open-file limit, builds the load client (its own Cargo
# workspace) and the relay when missing, then runs bench/fanout/run.mjs (arguments pass through).
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 11000 ]; then
  echo "fanout: ulimit -n is $(ulimit -n); 5,000 connections need about 11,000 (raise the hard limit)" >&2
  exit 1
fi
if [ ! -x target/server/live-relay ]; then cargo build -q --profile server -p live-relay; fi
cargo build -q --release --manifest-path bench/fanout/Cargo.toml
[ -d bench/node_modules/ws ] || (cd bench && npm ci --no-audit --no-fund --loglevel=error)
exec node bench/fanout/run.mjs "$@"
