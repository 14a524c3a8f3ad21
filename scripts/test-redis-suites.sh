#!/usr/bin/env bash
# Runs the relay's protocol, resume, scopes, SSE, auth, hardening and presence suites on the Redis broker: starts a
# redis-server on a free loopback port (no persistence), points the suites at it with
# LIVE_RELAY_TEST_REDIS (each relay they start gets a key prefix of its own), and stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  sleep 0.05
done
LIVE_RELAY_TEST_REDIS="redis://127.0.0.1:$port" \
  cargo test -q -p live-relay --test protocol --test resume --test scopes --test sse --test auth --test hardening \
    --test presence
