#!/usr/bin/env bash
# CPU profile of the relay under the fan-out load (perf, software cpu-clock sampling: this VM has
# no hardware counters). Prints the top symbols by self time.
#   bash bench/fanout/profile.sh [--conns 5000] [--rate 13 | --window 16] [--relay PATH] [--seconds 5]
set -euo pipefail
cd "$(dirname "$0")/../.."
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
conns=5000; mode=(--window 16); relay=target/server/live-relay; seconds=5
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift 2 ;;
    --rate) mode=(--rate "$2"); shift 2 ;;
    --window) mode=(--window "$2"); shift 2 ;;
    --relay) relay=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
cargo build -q --release --manifest-path bench/fanout/Cargo.toml
out=$(mktemp -d)
RUST_LOG=warn "$relay" --addr 127.0.0.1:0 --publish-rate 0 --max-connections-per-ip 0 >"$out/relay.out" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$out"' EXIT
for _ in $(seq 50); do grep -q "listening on" "$out/relay.out" && break; sleep 0.1; done
url="ws://$(grep -o 'listening on http://[^ ]*' "$out/relay.out" | sed 's|listening on http://||')/ws"
warm=$(( conns / 1000 + 2 ))
bench/fanout/target/release/fanout-load --url "$url" --conns "$conns" --server-pid "$pid" \
  --warmup-s "$warm" --duration-s "$seconds" "${mode[@]}" >"$out/load.json" &
load=$!
sleep $(( warm + 1 ))
perf record -q -e cpu-clock -F 1999 -p "$pid" -o "$out/perf.data" -- sleep "$seconds" 2>/dev/null
wait $load
cat "$out/load.json"
perf report -q -i "$out/perf.data" --no-children --sort symbol --percent-limit 0.7 2>/dev/null \
  | sed -E 's/::h[0-9a-f]{16}//' | cut -c1-150 | head -40
