#!/usr/bin/env bash
# A quick run of each benchmark (a few seconds each): asserts only that it runs, that its own
# checks pass (every contender delivers every callback, every subscriber gets every event, heaps
# come back) and that it reports numbers. Prints `bench smoke: N passed, M failed`; exits non-zero
# on any failure. Needs pkg/ (bash scripts/build-pkg.sh) and Chromium.
set -uo pipefail
cd "$(dirname "$0")/.."
passed=0; failed=0; names=()
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

if [ ! -f pkg/wasm_live_provider_bg.wasm ]; then
  echo "bench smoke: pkg/ is missing: run bash scripts/build-pkg.sh first" >&2
  echo "bench smoke: 0 passed, 6 failed"; exit 1
fi
if [ ! -d bench/node_modules/playwright-core ] || [ ! -d bench/node_modules/ws ]; then
  (cd bench && npm ci --no-audit --no-fund --loglevel=error) || { echo "bench smoke: npm ci failed"; echo "bench smoke: 0 passed, 6 failed"; exit 1; }
fi

# `numbers FILE EXPR`: the JSON result FILE has a finite positive number at EXPR (a JS expression on `r`).
numbers() {
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    for (const e of process.argv.slice(2)) {
      const v = eval(e);
      if (!(typeof v === "number" && Number.isFinite(v) && v > 0)) { console.error(`no number at ${e}: ${v}`); process.exit(1); }
    }' "$@"
}

step() { # name, then the command
  local name=$1; shift
  local t0=$SECONDS
  if "$@" >"$log/$name.out" 2>&1; then
    printf 'bench smoke: %-9s ok   (%ds)\n' "$name" $((SECONDS - t0)); passed=$((passed + 1))
  else
    printf 'bench smoke: %-9s FAIL (%ds)\n' "$name" $((SECONDS - t0)); failed=$((failed + 1))
    tail -n 25 "$log/$name.out" | sed 's/^/    /'
  fi
}

dispatch() {
  node bench/dispatch/run.mjs --smoke &&
    numbers bench/results/dispatch-smoke.json \
      'r.summary.one.wasm.eventsPerSec' 'r.summary.one.raw.eventsPerSec' 'r.summary.useOne10k.hand.eventsPerSec' \
      'r.summary.one.wasm.injectPerSec' 'r.summary.one.wasm.p99us' 'r.summary.channels1k.wasm.eventsPerSec'
}
fanout() {
  bash bench/fanout/run.sh --smoke &&
    numbers bench/results/fanout-smoke.json \
      'r.summary[200].relay.deliveredPerSec' 'r.summary[200].node.deliveredPerSec' 'r.summary[200].relay.pacedP99ms' \
      'r.summary[200].relay.idleKiBPerConn' 'r.summary[200].node.serverCpuUsPerDelivery'
}
cluster() {
  bash bench/cluster/run.sh --smoke &&
    numbers bench/results/cluster-smoke.json \
      'r.summary[200].memory.deliveredPerSec' 'r.summary[200].redis1.deliveredPerSec' 'r.summary[200].redis2.deliveredPerSec' \
      'r.summary[200].redis2.pacedP99ms' 'r.summary[200].redis1.redis.roundTripsPerPublish' 'r.summary[200].redis2.redis.innerPerPublish' \
      'r.summary[200].redis1.idleKiBPerConn'
}
memory() {
  node bench/memory/run.mjs --smoke &&
    numbers bench/results/memory-smoke.json 'r.results.wasm.jsPerSub' 'r.results.wasm.wasmPerSub' 'r.results.hand.jsPerSub' 'r.results.wasm.cycleKeptUs'
}
postgres() {
  bash bench/postgres/run.sh --smoke &&
    numbers bench/results/postgres-smoke.json \
      'r.latency.notify.p50' 'r.latency.poll.p50' 'r.drain.memory1.rowsPerSec' 'r.drain.redis2p2.rowsPerSec' \
      'r.writes.plain.insert.perSec' 'r.writes.watched.insert.perSec'
}
size() {
  bash scripts/size-report.sh &&
    node bench/size/breakdown.mjs --named none --out size-smoke &&
    numbers bench/results/size-smoke.json 'r.total.gz' 'r.total.raw' 'r.files[0].gz'
}

t0=$SECONDS
step dispatch dispatch
step fanout fanout
step cluster cluster
step memory memory
step postgres postgres
step size size
echo "bench smoke: total $((SECONDS - t0)) s"
echo "bench smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
