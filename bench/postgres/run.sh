#!/usr/bin/env bash
# PostgreSQL feed benchmark: a throwaway PostgreSQL cluster (scripts/pg-throwaway.sh), the relay's
# server build, Redis for the two-node runs, Chromium for the receipt times. Arguments pass through
# to bench/postgres/run.mjs (`--smoke` for a few seconds).
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v redis-server >/dev/null || { echo "postgres bench: redis-server is missing (apt-get install redis-server)" >&2; exit 1; }
if [ ! -x target/server/live-relay ]; then cargo build -q --profile server -p live-relay; fi
if [ ! -d bench/node_modules/pg ]; then (cd bench && npm ci --no-audit --no-fund --loglevel=error); fi
exec bash scripts/pg-throwaway.sh run -- node bench/postgres/run.mjs "$@"
