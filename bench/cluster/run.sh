#!/usr/bin/env bash
# Relay cluster benchmark: raises the open-file limit, builds the load client (bench/fanout, its own
# Cargo workspace) and the relay when missing, then runs bench/cluster/run.mjs (arguments pass
# through). Needs redis-server (Debian's; scripts/setup.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 11000 ]; then
  echo "cluster: ulimit -n is $(ulimit -n); 5,000 connections need about 11,000 (raise the hard limit)" >&2
  exit 1
fi
command -v redis-server >/dev/null || { echo "cluster: redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
if [ ! -x target/server/live-relay ]; then cargo build -q --profile server -p live-relay; fi
cargo build -q --release --manifest-path bench/fanout/Cargo.toml
exec node bench/cluster/run.mjs "$@"
