#!/usr/bin/env node
// Relay cluster benchmark (run through bench/cluster/run.sh, which raises `ulimit -n` and builds the
// load client): the same load on three setups, in one run, each started fresh per measurement:
//   memory — one relay node, in-process broker;
//   redis1 — one relay node on Redis (`--redis`);
//   redis2 — two relay nodes on the same Redis and prefix, the subscribers split evenly between them
//            (round-robin), the publisher on node 1: half of the deliveries cross Redis to node 2.
// One Redis for the whole run (a fresh `--redis-prefix` per measurement). For each connection count:
//   1. saturation: at most --window events in flight over all subscribers, sent over --publishers
//      (4) WebSocket connections to node 1; delivered events/s, the relay's CPU per delivery, Redis's
//      CPU and the Redis commands per publish (`INFO commandstats` at the start and the end of the
//      measured window), RSS per idle subscribed connection;
//   2. the same with one publisher connection (a connection's publishes are handled one at a time,
//      so on Redis this measures one publish's round trip rather than the node's capacity);
//   3. paced: every setup at the same publish rate (--paced-fraction of the slowest setup's rate in
//      1.), over --publishers connections: publish → delivery latency p50 / p99 / p99.9.
// The publishing path is the same for all: WebSocket connections to node 1 sending `publish` frames.
//
//   bash bench/cluster/run.sh [--conns 1000,5000] [--duration-s 5] [--warmup-s 1] [--window 16]
//                             [--publishers 4] [--setups memory,redis1,redis2] [--smoke]
//   node bench/cluster/run.mjs --report-from cluster   (the tables again from results/cluster.json)
import { spawn, execFileSync } from "node:child_process";
import { join } from "node:path";
import { once } from "node:events";
import { createServer } from "node:net";
import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { root, benchDir, resultsDir, machine, machineLine, writeResults, table, args, fmt } from "../lib/common.mjs";

let opt = args({ conns: "1000,5000", "duration-s": 5, "warmup-s": 1, window: 16, publishers: 4, rounds: 2, "no-single": false, threads: 2, "idle-settle-ms": 1000, "paced-fraction": 0.5, setups: "memory,redis1,redis2", smoke: false, out: "cluster" });
if (opt.smoke) Object.assign(opt, { conns: "200", "duration-s": 0.8, "warmup-s": 0.3, "idle-settle-ms": 200, rounds: 1, "no-single": true, out: opt.out === "cluster" ? "cluster-smoke" : opt.out });
// `--report-from NAME`: no measurement, the tables again from the runs kept in results/NAME.json.
const saved = opt["report-from"] ? JSON.parse(readFileSync(join(resultsDir, `${opt["report-from"]}.json`), "utf8")) : null;
if (saved) opt = { ...saved.options, out: opt["report-from"] };
opt.single = !opt["no-single"];
const connCounts = String(opt.conns).split(",").map(Number);
const setupNames = String(opt.setups).split(",");
const client = join(benchDir, "fanout/target/release/fanout-load");
const relayBin = process.env.LIVE_RELAY ?? join(root, "target/server/live-relay");
const command = saved ? saved.command : `bash bench/cluster/run.sh ${process.argv.slice(2).join(" ")}`.trim();
const failures = saved ? (saved.failures ?? []) : [];

/** The median (the mean of the middle two for an even count). */
function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

const SETUPS = {
  memory: { label: "1 node, in-process broker", nodes: 1, redis: false },
  redis1: { label: "1 node on Redis", nodes: 1, redis: true },
  redis2: { label: "2 nodes on Redis", nodes: 2, redis: true },
};
for (const s of setupNames) if (!SETUPS[s]) throw new Error(`unknown setup ${s} (memory, redis1, redis2)`);
const RELAY_ARGS = ["--addr", "127.0.0.1:0", "--publish-rate", "0", "--max-connections-per-ip", "0"];

// What the publish script runs inside Redis (relay/src/broker/redis/script.rs), and what the
// once-a-second heartbeat of each node sends (MULTI, ZADD, ZREMRANGEBYSCORE, DEL, HMSET, PEXPIRE, EXEC).
const SCRIPT_INNER = new Set(["get", "set", "incr", "time", "xadd", "pexpire", "publish"]);
const HEARTBEAT = new Set(["multi", "exec", "zadd", "zremrangebyscore", "del", "hmset", "hset"]);

const freePort = () =>
  new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });

async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), "wlp-cluster-bench-"));
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout.on("data", (c) => (log += c));
    child.stderr.on("data", (c) => (log += c));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        if (execFileSync("redis-cli", ["-p", String(port), "ping"], { stdio: ["ignore", "pipe", "ignore"] }).toString().trim() === "PONG") {
          const version = execFileSync("redis-server", ["--version"]).toString().trim();
          return { child, port, dir, pid: child.pid, url: `redis://127.0.0.1:${port}`, addr: `127.0.0.1:${port}`, version };
        }
      } catch {}
      await new Promise((ok) => setTimeout(ok, 50));
    }
    child.kill("SIGKILL");
    console.error(`cluster: redis-server on port ${port} did not start (${log.trim().split("\n").pop()}); retrying`);
  }
  throw new Error("redis-server did not start");
}

async function stop(child) {
  child.kill("SIGTERM");
  await Promise.race([once(child, "exit"), new Promise((ok) => setTimeout(ok, 3000))]);
  if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}

async function startRelay(extra) {
  const child = spawn(relayBin, [...RELAY_ARGS, ...extra], { env: { ...process.env, RUST_LOG: "warn" }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  // Warnings and errors under load are part of the result: kept and reported.
  child.stderr.on("data", (c) => (err += c));
  const deadline = Date.now() + 10_000;
  while (!/listening on http:\/\/(\S+)/.test(out)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`live-relay did not start: ${out}${err}`);
    await Promise.race([once(child.stdout, "data"), new Promise((ok) => setTimeout(ok, 100))]);
  }
  const addr = out.match(/listening on http:\/\/(\S+)/)[1];
  return { child, url: `ws://${addr}/ws`, pid: child.pid, stderr: () => err };
}

/** `INFO` text → { calls: {cmd: n}, usec: {cmd: µs}, cpuS, usedMemory, netOut }. */
function parseInfo(text) {
  const calls = {};
  const usec = {};
  const field = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/);
    if (m) {
      calls[m[1]] = Number(m[2]);
      usec[m[1]] = Number(m[3]);
      continue;
    }
    const kv = line.match(/^(\w+):(.*)$/);
    if (kv) field[kv[1]] = kv[2].trim();
  }
  return { calls, usec, cpuS: Number(field.used_cpu_user) + Number(field.used_cpu_sys), usedMemory: Number(field.used_memory), netOut: Number(field.total_net_output_bytes) };
}

/** What Redis did during one measured window: `INFO` deltas. */
function redisWindow(r) {
  const a = parseInfo(r.redis_info_start);
  const b = parseInfo(r.redis_info_end);
  const calls = {};
  for (const cmd of new Set([...Object.keys(a.calls), ...Object.keys(b.calls)])) {
    const d = (b.calls[cmd] ?? 0) - (a.calls[cmd] ?? 0);
    if (d > 0) calls[cmd] = d;
  }
  return {
    calls,
    evalshaUs: (b.usec.evalsha ?? 0) - (a.usec.evalsha ?? 0),
    cpuS: b.cpuS - a.cpuS,
    netOut: b.netOut - a.netOut,
    usedMemoryMiB: b.usedMemory / 2 ** 20,
    publishes: r.published_in_window,
    seconds: r.seconds,
  };
}

/** Redis per publish over the windows of several runs (summed), heartbeats apart. */
function redisPerPublish(windows) {
  const calls = {};
  let pubs = 0;
  let seconds = 0;
  let cpuS = 0;
  let netOut = 0;
  let evalshaUs = 0;
  for (const w of windows) {
    for (const [cmd, d] of Object.entries(w.calls)) calls[cmd] = (calls[cmd] ?? 0) + d;
    pubs += w.publishes;
    seconds += w.seconds;
    cpuS += w.cpuS;
    netOut += w.netOut;
    evalshaUs += w.evalshaUs;
  }
  // The heartbeat's PEXPIRE comes with its HMSET; the rest of the PEXPIREs are the script's.
  const heartbeatPexpire = (calls.hmset ?? 0) + (calls.hset ?? 0);
  const perPublish = {};
  let roundTrips = 0;
  let inner = 0;
  for (const [cmd, d] of Object.entries(calls)) {
    if (cmd === "info" || HEARTBEAT.has(cmd)) continue;
    const n = cmd === "pexpire" ? d - heartbeatPexpire : d;
    if (n <= 0) continue;
    perPublish[cmd] = n / pubs;
    if (SCRIPT_INNER.has(cmd)) inner += n;
    else roundTrips += n;
  }
  return {
    calls,
    publishes: pubs,
    perPublish,
    roundTripsPerPublish: roundTrips / pubs,
    innerPerPublish: inner / pubs,
    heartbeatRoundTripsPerS: (calls.exec ?? 0) / seconds,
    evalshaUsPerPublish: evalshaUs / pubs,
    cpuUsPerPublish: (cpuS * 1e6) / pubs,
    cpuShare: cpuS / seconds,
    usedMemoryMiB: Math.max(...windows.map((w) => w.usedMemoryMiB)),
    netOutBytesPerPublish: netOut / pubs,
  };
}

let redis = null;
let prefixes = 0;

async function measure(setup, conns, publishers, extra) {
  const s = SETUPS[setup];
  const nodeArgs = s.redis ? ["--redis", redis.url, "--redis-prefix", `bench${++prefixes}`] : [];
  const nodes = [];
  try {
    for (let i = 0; i < s.nodes; i++) nodes.push(await startRelay(nodeArgs));
    const a = [
      "--url", nodes.map((n) => n.url).join(","),
      "--publish-url", nodes[0].url,
      "--publishers", publishers,
      "--conns", conns,
      "--server-pid", nodes.map((n) => n.pid).join(","),
      "--duration-s", opt["duration-s"],
      "--warmup-s", opt["warmup-s"],
      "--threads", opt.threads,
      "--idle-settle-ms", opt["idle-settle-ms"],
      ...(s.redis ? ["--redis", redis.addr] : []),
      ...extra,
    ];
    let out;
    try {
      out = execFileSync(client, a.map(String), { stdio: ["ignore", "pipe", "inherit"], maxBuffer: 16 << 20 }).toString();
    } catch (e) {
      failures.push(`${setup} ${conns}: the load client failed (${e.message.split("\n")[0]})`);
      return null;
    }
    const r = JSON.parse(out.trim().split("\n").pop());
    if (s.redis) r.redis = redisWindow(r);
    delete r.redis_info_start;
    delete r.redis_info_end;
    const tag = `${setup} ${conns} conns, ${publishers} publisher(s), ${extra.join(" ")}`;
    if (r.delivered_total !== r.expected_total) failures.push(`${tag}: delivered ${r.delivered_total} of ${r.expected_total}`);
    if (r.acks !== r.published) failures.push(`${tag}: ${r.acks} acks for ${r.published} publishes`);
    if (r.problems) failures.push(`${tag}: ${r.problems} connection problems`);
    if (r.seq_gaps) failures.push(`${tag}: ${r.seq_gaps} seq gaps at the subscribers (${r.seq_skipped} events skipped; ${r.short_subscribers} subscribers short, the fewest got ${r.fewest_events} of ${r.published})`);
    if (!(r.delivered_per_s > 0)) failures.push(`${tag}: nothing delivered`);
    // Anything the relay logged at warn or above under load.
    r.relay_log = nodes.map((n) => n.stderr().split("\n").filter((l) => l && !/authentication off/.test(l)));
    for (const [i, lines] of r.relay_log.entries()) if (lines.length) console.error(`  ${tag}: node ${i + 1} logged ${lines.length} line(s), first: ${lines[0]}`);
    return r;
  } finally {
    for (const n of nodes) await stop(n.child);
  }
}

const logLine = (conns, setup, what, r) =>
  console.log(
    `${String(conns).padStart(5)} conns ${SETUPS[setup].label.padEnd(26)} ${what}: ${fmt(r.delivered_per_s).padStart(10)} delivered/s (${fmt(r.published_in_window / r.seconds)} publishes/s), p50 ${fmt(r.p50_us / 1000, 1)} ms p99 ${fmt(r.p99_us / 1000, 1)} ms, relay CPU ${fmt(r.server_cpu_s, 2)} s, idle ${fmt(r.idle_kib_per_conn, 1)} KiB/conn` +
      (r.redis ? `, Redis CPU ${fmt((r.redis.cpuS * 1e6) / r.redis.publishes, 1)} µs/publish` : ""),
  );
const rotate = (list, k) => list.map((_, i) => list[(i + k) % list.length]);

const m0 = saved ? saved.machine.start : machine();
let results = {};
const modes = [["saturate", opt.publishers]];
if (opt.single && opt.publishers !== 1) modes.push(["single", 1]);
if (saved) {
  results = saved.results;
  redis = { version: saved.redis };
} else {
  console.log(`cluster: ${machineLine(m0)}`);
  redis = await startRedis();
  console.log(`cluster: ${redis.version}, port ${redis.port}`);
}
if (!saved) try {
  for (const conns of connCounts) {
    const res = (results[conns] = { saturate: {}, single: {}, paced: {} });
    for (const mode of Object.keys(res)) for (const setup of setupNames) res[mode][setup] = [];
    for (let round = 0; round < opt.rounds; round++) {
      for (const [mode, publishers] of modes) {
        for (const setup of rotate(setupNames, round)) {
          const r = await measure(setup, conns, publishers, ["--window", opt.window]);
          if (!r) continue;
          res[mode][setup].push(r);
          logLine(conns, setup, `saturate, ${publishers} publisher conn(s)`, r);
        }
      }
    }
    const rates = setupNames.map((s) => median(res.saturate[s].map((r) => r.published_in_window / r.seconds))).filter(Number.isFinite);
    const rate = Math.max(1, Math.round(Math.min(...rates) * opt["paced-fraction"]));
    res.pacedRate = rate;
    for (let round = 0; round < opt.rounds; round++) {
      for (const setup of rotate(setupNames, round)) {
        const r = await measure(setup, conns, opt.publishers, ["--rate", rate]);
        if (!r) continue;
        res.paced[setup].push(r);
        logLine(conns, setup, `paced ${rate}/s`, r);
      }
    }
  }
} finally {
  await stop(redis.child);
  rmSync(redis.dir, { recursive: true, force: true });
}
const m1 = saved ? saved.machine.end : machine();

const withSingle = opt.single && opt.publishers !== 1;
const med = (runs, f) => median(runs.map(f));
const summary = {};
const satRows = [];
const latRows = [];
const cmdRows = [];
const memRows = [];
for (const conns of connCounts) {
  summary[conns] = {};
  const res = results[conns];
  for (const setup of setupNames) {
    const sat = res.saturate[setup];
    const single = res.single[setup];
    const paced = res.paced[setup];
    if (!sat.length || !paced.length) continue;
    summary[conns][setup] = {
      deliveredPerSec: med(sat, (r) => r.delivered_per_s),
      publishesPerSec: med(sat, (r) => r.published_in_window / r.seconds),
      relayCpuUsPerDelivery: med(sat, (r) => (r.server_cpu_s * 1e6) / r.delivered_in_window),
      satP50ms: med(sat, (r) => r.p50_us / 1000),
      satP99ms: med(sat, (r) => r.p99_us / 1000),
      singleDeliveredPerSec: single.length ? med(single, (r) => r.delivered_per_s) : NaN,
      singlePublishesPerSec: single.length ? med(single, (r) => r.published_in_window / r.seconds) : NaN,
      pacedRate: res.pacedRate,
      pacedP50ms: med(paced, (r) => r.p50_us / 1000),
      pacedP99ms: med(paced, (r) => r.p99_us / 1000),
      pacedP999ms: med(paced, (r) => r.p999_us / 1000),
      pacedMaxMs: med(paced, (r) => r.max_us / 1000),
      idleKiBPerConn: med([...sat, ...single, ...paced], (r) => r.idle_kib_per_conn),
      rssIdleMiBEach: sat[0].rss_idle_kib_each.map((_, i) => med(sat, (r) => r.rss_idle_kib_each[i] / 1024)),
      redis: sat[0].redis ? redisPerPublish(sat.map((r) => r.redis)) : null,
      redisSingle: single[0]?.redis ? redisPerPublish(single.map((r) => r.redis)) : null,
      redisPaced: paced[0].redis ? redisPerPublish(paced.map((r) => r.redis)) : null,
    };
  }
  const base = summary[conns].memory;
  for (const setup of setupNames) {
    const s = summary[conns][setup];
    if (!s) continue;
    const label = SETUPS[setup].label;
    satRows.push([
      fmt(conns),
      label,
      `**${fmt(s.deliveredPerSec)}**`,
      base ? `${fmt(s.deliveredPerSec / base.deliveredPerSec, 2)}×` : "–",
      fmt(s.publishesPerSec),
      fmt(s.relayCpuUsPerDelivery, 2),
      s.redis ? `${fmt(s.redis.cpuUsPerPublish, 1)} µs (${fmt(s.redis.cpuShare * 100)} % of a core)` : "–",
      `${fmt(s.satP50ms, 1)} / ${fmt(s.satP99ms, 1)}`,
      ...(withSingle
        ? [`${fmt(s.singleDeliveredPerSec)} (${base ? fmt(s.singleDeliveredPerSec / base.singleDeliveredPerSec, 2) : "–"}×)`, `${fmt(s.singlePublishesPerSec)} (${fmt(1000 / s.singlePublishesPerSec, 1)} ms each)`]
        : []),
    ]);
    latRows.push([fmt(conns), label, `${fmt(s.pacedRate)} events/s = ${fmt(s.pacedRate * conns)} deliveries/s`, fmt(s.pacedP50ms, 2), `**${fmt(s.pacedP99ms, 2)}**`, fmt(s.pacedP999ms, 2), fmt(s.pacedMaxMs, 2)]);
    if (s.redis) {
      const breakdown = Object.entries(s.redis.perPublish)
        .sort((x, y) => y[1] - x[1] || x[0].localeCompare(y[0]))
        .map(([c, n]) => `${c.toUpperCase()} ${fmt(n, 2)}`)
        .join(", ");
      cmdRows.push([
        fmt(conns),
        label,
        `**${fmt(s.redis.roundTripsPerPublish, 2)}**`,
        `**${fmt(s.redis.innerPerPublish, 2)}**`,
        breakdown,
        fmt(s.redis.heartbeatRoundTripsPerS, 1),
        fmt(s.redis.evalshaUsPerPublish, 1),
        fmt(s.redis.netOutBytesPerPublish),
        fmt(s.redis.usedMemoryMiB, 1),
      ]);
    }
    memRows.push([fmt(conns), label, `**${fmt(s.idleKiBPerConn, 1)}**`, s.rssIdleMiBEach.map((m) => fmt(m, 1)).join(" + ")]);
  }
}

function relayLogSummary() {
  const lines = [];
  for (const conns of connCounts)
    for (const mode of ["saturate", "single", "paced"])
      for (const setup of setupNames) for (const r of results[conns][mode][setup]) for (const l of r.relay_log.flat()) lines.push(l);
  if (!lines.length) return "none";
  const strip = (l) => l.replace(/\x1b\[[0-9;]*m/g, "");
  return `${lines.length} (first: \`${strip(lines[0]).slice(0, 200)}\`)`;
}

const md = [
  `Command: \`${command}\``,
  "",
  `Machine at start: ${machineLine(m0)}  `,
  `Load at end: ${m1.load} · ${redis.version}`,
  "",
  `Three setups, in one run, driven by the fan-out load client (bench/fanout, Rust, tokio with ${opt.threads} worker threads) on the same 2 cores as the relay nodes and Redis: one channel, N subscriber connections, ${opt.publishers} publisher connection(s) to node 1 sending WebSocket \`publish\` frames, publish i on connection i mod ${opt.publishers} (the same publishing path for all three; the relay handles a connection's publishes one at a time${withSingle ? ", so the last two columns, with a single publisher connection, show one publish's turnaround rather than the node's capacity" : ""}). *2 nodes on Redis*: two relay processes on the same Redis and prefix, the subscribers split round-robin between them (N/2 each), so half of the deliveries cross Redis to node 2. Every relay (\`live-relay ${RELAY_ARGS.join(" ")}\`, plus \`--redis redis://127.0.0.1:PORT --redis-prefix benchK\` on Redis: history 1000 events, outbound queue 1024) is started fresh for every measurement; one \`redis-server --save "" --appendonly no\` for the run, a fresh prefix per measurement. Every published event must reach every subscriber, in seq order with no gap, and every publish must be acked (checked). Saturation: at most ${opt.window} events in flight over all subscribers, ${opt["warmup-s"]} s warm-up then ${opt["duration-s"]} s measured. Each figure is the median of ${opt.rounds} round(s) (with 2, their mean; every round is in the JSON), the setups' order rotated per round. Relay log lines at warn or above during the measurements: ${relayLogSummary()}. Paced: every setup at the same rate, ${fmt(opt["paced-fraction"] * 100)} % of the slowest setup's saturated publish rate, over the same ${opt.publishers} publisher connection(s).`,
  "",
  "**Delivered events per second (saturation)**",
  "",
  table(
    [
      "connections",
      "setup",
      "delivered/s",
      "÷ in-process",
      "publishes/s",
      "relay CPU µs/delivery (all nodes)",
      "Redis CPU per publish",
      "p50 / p99 ms (queued)",
      ...(withSingle ? ["1 publisher conn: delivered/s (÷ in-process)", "1 publisher conn: publishes/s"] : []),
    ],
    satRows,
  ),
  "",
  "**Publish → delivery latency at the same paced rate** (ms, every delivery of the measured window)",
  "",
  table(["connections", "setup", "rate", "p50", "p99", "p99.9", "max"], latRows),
  "",
  "**Redis per publish** (saturation window; `INFO commandstats` deltas ÷ publishes. *Round trips*: commands the relay sends (EVALSHA of the publish script); *inside Redis*: the commands the script runs, which commandstats counts too; the nodes' heartbeats — MULTI … EXEC once a second per node — are left out and given apart)",
  "",
  table(["connections", "setup", "round trips/publish", "commands inside Redis/publish", "per publish, by command", "heartbeat round trips/s", "EVALSHA µs/publish (Redis)", "Redis output bytes/publish", "Redis used_memory MiB"], cmdRows),
  "",
  "**Relay memory per idle subscribed connection** ((RSS of the node(s) with N idle subscribed connections − RSS before) ÷ N; median over the setup's runs)",
  "",
  table(["connections", "setup", "relay KiB/conn", "relay RSS MiB, idle (per node)"], memRows),
  "",
  failures.length ? `**Checks: ${failures.length} failed** — ${failures.map((f) => `${f}`).join("; ")}.` : "Checks: every event reached every subscriber in order, every publish was acked, no connection failed.",
].join("\n");
const { "report-from": _, ...options } = opt;
writeResults(opt.out, { machine: { start: m0, end: m1 }, command, redis: redis.version, options, failures, summary, results }, md);
console.log("\n" + md);
if (failures.length) {
  console.error(`\ncluster: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("\ncluster: every event reached every subscriber in order, every publish was acked");
