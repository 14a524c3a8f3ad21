#!/usr/bin/env node
// Relay fan-out benchmark (run through bench/fanout/run.sh, which raises `ulimit -n` and builds the
// load client): for each connection count, the relay and the Node `ws` broadcast server, each
// started fresh, driven by the same Rust load client on loopback:
//   1. memory: server RSS before and after N idle subscribed connections;
//   2. saturation: at most --window events in flight (over all subscribers), delivered events/s;
//   3. paced: both at the same publish rate (half of what the Node server sustained), latency.
//
//   bash bench/fanout/run.sh [--conns 100,5000] [--duration-s 10] [--warmup-s 2] [--window 16] [--smoke]
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";
import { once } from "node:events";
import { root, benchDir, machine, machineLine, median, writeResults, table, args, fmt } from "../lib/common.mjs";

const opt = args({ conns: "100,5000", "duration-s": 10, "warmup-s": 2, window: 16, rounds: 1, smoke: false, out: "fanout", threads: 2, "idle-settle-ms": 1000 });
if (opt.smoke) Object.assign(opt, { conns: "200", "duration-s": 0.7, "warmup-s": 0.2, "idle-settle-ms": 200, out: opt.out === "fanout" ? "fanout-smoke" : opt.out });
const connCounts = String(opt.conns).split(",").map(Number);
const client = join(benchDir, "fanout/target/release/fanout-load");
const relayBin = process.env.LIVE_RELAY ?? join(root, "target/server/live-relay");
const command = `bash bench/fanout/run.sh ${process.argv.slice(2).join(" ")}`.trim();
const failures = [];

const SERVERS = {
  relay: { name: "live-relay", cmd: relayBin, args: ["--addr", "127.0.0.1:0", "--publish-rate", "0", "--max-connections-per-ip", "0"], env: { RUST_LOG: "warn" } },
  node: { name: "Node ws broadcast", cmd: process.execPath, args: [join(benchDir, "fanout/node-server.mjs"), "--port", "0"], env: {} },
};

async function startServer(kind) {
  const s = SERVERS[kind];
  const child = spawn(s.cmd, s.args, { env: { ...process.env, ...s.env }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (c) => (out += c));
  const deadline = Date.now() + 10_000;
  while (!/listening on http:\/\/(\S+)/.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${kind} did not start: ${out}`);
    await Promise.race([once(child.stdout, "data"), new Promise((ok) => setTimeout(ok, 100))]);
  }
  const addr = out.match(/listening on http:\/\/(\S+)/)[1];
  return { child, url: `ws://${addr}/ws`, pid: child.pid };
}

async function stopServer(s) {
  s.child.kill("SIGTERM");
  await Promise.race([once(s.child, "exit"), new Promise((ok) => setTimeout(ok, 3000))]);
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill("SIGKILL");
}

function load(server, conns, extra) {
  const a = ["--url", server.url, "--conns", conns, "--server-pid", server.pid, "--duration-s", opt["duration-s"], "--warmup-s", opt["warmup-s"], "--threads", opt.threads, "--idle-settle-ms", opt["idle-settle-ms"], ...extra];
  const out = execFileSync(client, a.map(String), { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 20 }).toString();
  return JSON.parse(out.trim().split("\n").pop());
}

async function measure(kind, conns, extra) {
  const server = await startServer(kind);
  try {
    const r = load(server, conns, extra);
    if (r.delivered_total !== r.expected_total) failures.push(`${kind} ${conns}: delivered ${r.delivered_total} of ${r.expected_total}`);
    if (r.problems) failures.push(`${kind} ${conns}: ${r.problems} connection problems`);
    if (!(r.delivered_per_s > 0)) failures.push(`${kind} ${conns}: nothing delivered`);
    return r;
  } finally {
    await stopServer(server);
  }
}

const m0 = machine();
console.log(`fanout: ${machineLine(m0)}`);
const results = {};
for (const conns of connCounts) {
  results[conns] = { relay: { saturate: [], paced: [] }, node: { saturate: [], paced: [] } };
  for (let round = 0; round < opt.rounds; round++) {
    for (const kind of round % 2 ? ["node", "relay"] : ["relay", "node"]) {
      const r = await measure(kind, conns, ["--window", opt.window]);
      results[conns][kind].saturate.push(r);
      console.log(
        `${String(conns).padStart(5)} conns ${SERVERS[kind].name.padEnd(18)} saturate: ${fmt(r.delivered_per_s).padStart(10)} delivered/s, p50 ${fmt(r.p50_us / 1000, 1)} ms p99 ${fmt(r.p99_us / 1000, 1)} ms, server CPU ${fmt(r.server_cpu_s, 2)} s client CPU ${fmt(r.client_cpu_s, 2)} s, idle ${fmt(r.idle_kib_per_conn, 1)} KiB/conn`,
      );
    }
  }
  // Paced: half of the Node server's sustained publish rate, for both.
  const nodeRate = median(results[conns].node.saturate.map((r) => r.published_in_window / r.seconds));
  const rate = Math.max(1, Math.round(nodeRate * 0.5));
  results[conns].pacedRate = rate;
  for (const kind of ["relay", "node"]) {
    const r = await measure(kind, conns, ["--rate", rate]);
    results[conns][kind].paced.push(r);
    console.log(
      `${String(conns).padStart(5)} conns ${SERVERS[kind].name.padEnd(18)} paced ${rate}/s: ${fmt(r.delivered_per_s).padStart(10)} delivered/s, p50 ${fmt(r.p50_us / 1000, 2)} ms p99 ${fmt(r.p99_us / 1000, 2)} ms p99.9 ${fmt(r.p999_us / 1000, 2)} ms, server CPU ${fmt(r.server_cpu_s, 2)} s`,
    );
  }
}
const m1 = machine();

const summary = {};
const rows = [];
const memRows = [];
const latRows = [];
for (const conns of connCounts) {
  summary[conns] = {};
  for (const kind of ["relay", "node"]) {
    const sat = results[conns][kind].saturate;
    const paced = results[conns][kind].paced[0];
    const dps = median(sat.map((r) => r.delivered_per_s));
    const cpuPerDelivery = median(sat.map((r) => (r.server_cpu_s * 1e6) / r.delivered_in_window));
    summary[conns][kind] = {
      deliveredPerSec: dps,
      serverCpuUsPerDelivery: cpuPerDelivery,
      clientCpuShare: median(sat.map((r) => r.client_cpu_s / (r.client_cpu_s + r.server_cpu_s))),
      satP50ms: median(sat.map((r) => r.p50_us / 1000)),
      satP99ms: median(sat.map((r) => r.p99_us / 1000)),
      pacedP50ms: paced.p50_us / 1000,
      pacedP99ms: paced.p99_us / 1000,
      pacedP999ms: paced.p999_us / 1000,
      idleKiBPerConn: median(sat.map((r) => r.idle_kib_per_conn)),
      rssIdleMiB: median(sat.map((r) => r.rss_idle_kib / 1024)),
    };
  }
  const r = summary[conns].relay;
  const n = summary[conns].node;
  rows.push([
    fmt(conns),
    fmt(r.deliveredPerSec),
    fmt(n.deliveredPerSec),
    `**${fmt(r.deliveredPerSec / n.deliveredPerSec, 2)}×**`,
    fmt(r.serverCpuUsPerDelivery, 2),
    fmt(n.serverCpuUsPerDelivery, 2),
    `${fmt(r.satP50ms, 1)} / ${fmt(r.satP99ms, 1)}`,
    `${fmt(n.satP50ms, 1)} / ${fmt(n.satP99ms, 1)}`,
  ]);
  latRows.push([
    fmt(conns),
    `${fmt(results[conns].pacedRate)} events/s = ${fmt(results[conns].pacedRate * conns)} deliveries/s`,
    `${fmt(r.pacedP50ms, 2)} / ${fmt(r.pacedP99ms, 2)} / ${fmt(r.pacedP999ms, 2)}`,
    `${fmt(n.pacedP50ms, 2)} / ${fmt(n.pacedP99ms, 2)} / ${fmt(n.pacedP999ms, 2)}`,
  ]);
  memRows.push([fmt(conns), fmt(r.idleKiBPerConn, 1), fmt(n.idleKiBPerConn, 1), fmt(r.rssIdleMiB, 1), fmt(n.rssIdleMiB, 1)]);
}
const md = [
  `Command: \`${command}\``,
  "",
  `Machine at start: ${machineLine(m0)}  `,
  `Load at end: ${m1.load}`,
  "",
  `Load client: Rust (bench/fanout, tokio with ${opt.threads} worker threads, a minimal hand-written WebSocket reader for the subscribers, tokio-tungstenite for the publisher), on the same 2 cores as the server. Every server is started fresh for every measurement; one channel, N subscribers, one publisher; every published event must reach every subscriber (checked). Saturation: at most ${opt.window} events in flight, ${opt["warmup-s"]} s warm-up then ${opt["duration-s"]} s measured. Relay: \`live-relay --addr 127.0.0.1:0 --publish-rate 0 --max-connections-per-ip 0\` (one publisher connection publishes at full speed and the N subscribers all come from 127.0.0.1; otherwise the defaults: history 1000 events, outbound queue 1024).`,
  "",
  "**Delivered events per second (saturation)**",
  "",
  table(["connections", "relay delivered/s", "Node ws delivered/s", "relay ÷ Node", "relay CPU µs/delivery", "Node CPU µs/delivery", "relay p50/p99 ms (queued)", "Node p50/p99 ms (queued)"], rows),
  "",
  "**Latency at the same paced rate** (publish → delivery, p50 / p99 / p99.9 ms)",
  "",
  table(["connections", "rate", "relay", "Node ws"], latRows),
  "",
  "**Memory per idle connection** ((RSS with N idle subscribed connections − RSS before) ÷ N)",
  "",
  table(["connections", "relay KiB/conn", "Node ws KiB/conn", "relay RSS MiB", "Node RSS MiB"], memRows),
].join("\n");
writeResults(opt.out, { machine: { start: m0, end: m1 }, command, options: opt, summary, results }, md);
console.log("\n" + md);
if (failures.length) {
  console.error(`\nfanout: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("\nfanout: every event reached every subscriber");
