#!/usr/bin/env node
// Browser dispatch benchmark: events delivered per second to the right callbacks, and the
// publish→callback round trip, for a raw WebSocket (the ceiling), the hand-written provider of the
// seed document with Refine's Ably filtering, a tuned hand-written one (context) and this package,
// in headless Chromium, in the same run. See bench/README.md.
//
//   node bench/dispatch/run.mjs [--rounds 3] [--target-ms 1000] [--pings 500] [--smoke]
//        [--scenarios one,hundred,useOne10k,channels1k] [--contenders raw,hand,tuned,wasm]
//        [--profile] [--pkg DIR] [--pkg-before DIR] [--out dispatch]
//
// --pkg-before DIR adds the contender `before`: another build of this package (an earlier commit's
// pkg/, say), measured in the same run as the current one.
import { resolve } from "node:path";
import { SCENARIOS, eventFrame } from "./scenarios.mjs";
import { startServer } from "../lib/v1server.mjs";
import { launchChromium, machine, machineLine, quantile, median, writeResults, table, args, fmt, pkgDir } from "../lib/common.mjs";
import { startProfile } from "../lib/profile.mjs";

const opt = args({
  rounds: 3,
  "target-ms": 1000,
  pings: 500,
  "max-events": 1_000_000,
  scenarios: Object.keys(SCENARIOS).join(","),
  contenders: "raw,hand,tuned,wasm",
  profile: false,
  "profile-phase": "inject",
  pkg: pkgDir,
  "pkg-before": "",
  out: "dispatch",
  smoke: false,
});
if (opt.smoke) {
  Object.assign(opt, { rounds: 1, "target-ms": 60, pings: 20, out: opt.out === "dispatch" ? "dispatch-smoke" : opt.out, contenders: opt.contenders === "raw,hand,tuned,wasm" ? "raw,hand,wasm" : opt.contenders });
}
const scenarios = String(opt.scenarios).split(",");
const contenders = String(opt.contenders).split(",");
const NAMES = { raw: "raw WebSocket (ceiling)", hand: "hand-written (seed + Ably filter)", tuned: "hand-written, tuned", wasm: "wasm-live-provider", before: "wasm-live-provider, before (--pkg-before)" };
if (opt["pkg-before"] && !contenders.includes("before")) contenders.push("before");
const command = `node bench/dispatch/run.mjs ${process.argv.slice(2).join(" ")}`.trim();

const m0 = machine();
console.log(`dispatch: ${machineLine(m0)}`);
const server = await startServer({
  scenarios: SCENARIOS,
  eventFrame,
  pkg: resolve(String(opt.pkg)),
  pkgBefore: opt["pkg-before"] ? resolve(String(opt["pkg-before"])) : null,
});
const browser = await launchChromium();
let runCounter = 0;
const failures = [];
const check = (ok, what) => {
  if (!ok) {
    failures.push(what);
    console.error(`  FAILED: ${what}`);
  }
};
const clamp = (n, lo, hi) => Math.max(lo, Math.min(hi, Math.round(n)));

/** One fresh page, one contender, one scenario: setup, warm-up, a measured flood, round trips. */
async function trial(scenario, contender, { profileName = null } = {}) {
  const S = SCENARIOS[scenario];
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (msg) => msg.type() === "error" && errors.push(msg.text()));
  try {
    await page.goto(`${server.base}/dispatch/page.html`);
    await page.waitForFunction(() => window.benchReady === true);
    const runId = `r${++runCounter}`;
    const { setupMs } = await page.evaluate(([c, s, r]) => window.bench.setup(c, s, r), [contender, scenario, runId]);
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Performance.enable");
    const mainThread = async () => {
      const { metrics } = await cdp.send("Performance.getMetrics");
      const get = (name) => metrics.find((x) => x.name === name)?.value ?? NaN;
      return { task: get("TaskDuration"), script: get("ScriptDuration") };
    };
    let events = 0;
    const flood = async (n) => {
      const r = await page.evaluate((n) => window.bench.flood(n), n);
      events += n;
      check(r.ms !== null, `${scenario}/${contender}: flood of ${n} did not complete (${r.callbacks}/${r.expected} callbacks)`);
      check(r.callbacks === r.expected, `${scenario}/${contender}: ${r.callbacks} callbacks, expected ${r.expected}`);
      check(r.wrong === 0, `${scenario}/${contender}: ${r.wrong} callbacks got another subscription's event`);
      return { ...r, rate: r.ms ? ((n - 1) * 1000) / r.ms : NaN };
    };
    const target = opt["target-ms"] / 1000;
    const lo = opt.smoke ? 30 : 100; // smallest batches (the smoke run only checks that it works)
    const probe = await flood(lo);
    const warm = await flood(clamp(probe.rate * target * 0.3, lo, opt["max-events"]));
    const n = clamp(warm.rate * target, 2 * lo, opt["max-events"]);
    const floodStop = profileName && opt["profile-phase"] === "flood" ? await startProfile(page) : null;
    const before = await mainThread();
    const measured = await flood(n);
    const after = await mainThread();
    const floodProfile = floodStop ? await floodStop(profileName) : null;
    const pings = await page.evaluate((c) => window.bench.pings(c), opt.pings);
    events += opt.pings;
    check(pings.callbacks === pings.expected, `${scenario}/${contender}: ${pings.callbacks} callbacks in round trips, expected ${pings.expected}`);
    // Dispatch only: the same frames handed to the contender's onmessage, no network stack.
    const inject = async (n) => {
      const r = await page.evaluate((n) => window.bench.inject(n), n);
      events += n;
      check(r.callbacks === r.expected, `${scenario}/${contender}: injected ${n}: ${r.callbacks} callbacks, expected ${r.expected}`);
      check(r.wrong === 0, `${scenario}/${contender}: injected: ${r.wrong} callbacks got another subscription's event`);
      return { ...r, rate: (n * 1000) / Math.max(r.ms, 0.1) };
    };
    const iprobe = await inject(2 * lo);
    const iwarm = await inject(clamp(iprobe.rate * target * 0.3, 2 * lo, opt["max-events"]));
    const stop = profileName && opt["profile-phase"] !== "flood" ? await startProfile(page) : null;
    const injected = await inject(clamp(iwarm.rate * target, 5 * lo, opt["max-events"]));
    const profile = stop ? await stop(profileName) : floodProfile;
    const v = await page.evaluate((e) => window.bench.verify(e), events);
    if (v.checked) check(v.mismatched === 0, `${scenario}/${contender}: ${v.mismatched} of ${v.subs} subscriptions got a wrong number of events`);
    check(errors.length === 0, `${scenario}/${contender}: page errors: ${errors.join("; ")}`);
    const heap = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? null);
    const taskUs = ((after.task - before.task) * 1e6) / measured.n;
    const scriptUs = ((after.script - before.script) * 1e6) / measured.n;
    return { setupMs, injectRate: injected.rate, injectEvents: injected.n, taskUs, scriptUs, events: measured.n, callbacks: measured.callbacks, ms: measured.ms, rate: measured.rate, cbRate: measured.rate * S.perEvent, rtts: pings.rtts, profile, heap };
  } finally {
    await page.close();
  }
}

const results = {};
for (const scenario of scenarios) {
  const S = SCENARIOS[scenario];
  results[scenario] = Object.fromEntries(contenders.map((c) => [c, []]));
  console.log(`\n${S.title} (${S.subs.length} subscriptions, ${S.channels.length} channels, ${S.perEvent} callbacks per event)`);
  for (let round = 0; round < opt.rounds; round++) {
    // Rotate the order each round, so no contender always runs first (or last).
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]);
    for (const c of order) {
      const t = await trial(scenario, c);
      results[scenario][c].push(t);
      console.log(
        `  round ${round + 1} ${NAMES[c].padEnd(34)} ${fmt(t.rate).padStart(10)} events/s  ${fmt(t.cbRate).padStart(10)} callbacks/s  main thread ${fmt(t.taskUs, 1)} µs/event (script ${fmt(t.scriptUs, 1)})  (${fmt(t.events)} events in ${fmt(t.ms, 1)} ms; setup ${fmt(t.setupMs, 1)} ms); dispatch only ${fmt(t.injectRate)} events/s`,
      );
    }
  }
  if (opt.profile) {
    for (const c of contenders.filter((c) => c !== "raw" || opt["profile-phase"] === "flood")) {
      const t = await trial(scenario, c, { profileName: `dispatch-${scenario}-${c}-${opt["profile-phase"]}` });
      console.log(`  profile of ${c}: ${t.profile.totalMs} ms sampled; top self time:`);
      for (const r of t.profile.rows.slice(0, 12)) console.log(`    ${String(r.pct).padStart(5)} %  ${r.fn}`);
      results[scenario][`${c}Profile`] = t.profile;
    }
  }
}
const m1 = machine();
await browser.close();
await server.close();

// Summaries: median events/s over rounds, pooled round-trip percentiles.
const summary = {};
for (const scenario of scenarios) {
  summary[scenario] = {};
  for (const c of contenders) {
    const ts = results[scenario][c];
    const rtts = ts.flatMap((t) => t.rtts);
    summary[scenario][c] = {
      eventsPerSec: median(ts.map((t) => t.rate)),
      callbacksPerSec: median(ts.map((t) => t.cbRate)),
      rounds: ts.map((t) => Math.round(t.rate)),
      p50us: quantile(rtts, 0.5),
      p99us: quantile(rtts, 0.99),
      setupMs: median(ts.map((t) => t.setupMs)),
      taskUs: median(ts.map((t) => t.taskUs)),
      injectPerSec: median(ts.map((t) => t.injectRate)),
      injectRounds: ts.map((t) => Math.round(t.injectRate)),
      scriptUs: median(ts.map((t) => t.scriptUs)),
    };
  }
}
const ratio = (s, a, b, key) => (summary[s][a] && summary[s][b] ? summary[s][a][key] / summary[s][b][key] : NaN);
const vs = (s, c, other, key) => (contenders.includes(other) ? `${fmt(ratio(s, c, other, key), 2)}×` : "–");
const socketRows = [];
const injectRows = [];
for (const scenario of scenarios) {
  for (const c of contenders) {
    const x = summary[scenario][c];
    socketRows.push([
      SCENARIOS[scenario].title,
      NAMES[c],
      fmt(x.eventsPerSec),
      fmt(x.callbacksPerSec),
      vs(scenario, c, "raw", "eventsPerSec"),
      vs(scenario, c, "hand", "eventsPerSec"),
      fmt(x.taskUs, 1),
      fmt(x.scriptUs, 1),
      fmt(x.p50us / 1000, 2),
      fmt(x.p99us / 1000, 2),
      fmt(x.setupMs, 1),
    ]);
    injectRows.push([
      SCENARIOS[scenario].title,
      NAMES[c],
      fmt(x.injectPerSec),
      fmt(x.injectPerSec * SCENARIOS[scenario].perEvent),
      vs(scenario, c, "raw", "injectPerSec"),
      vs(scenario, c, "hand", "injectPerSec"),
      fmt(1e6 / x.injectPerSec, 2),
    ]);
  }
}
const md = [
  `Command: \`${command}\``,
  "",
  `Machine at start: ${machineLine(m0)}  `,
  `Load at end: ${m1.load}`,
  "",
  `${opt.rounds} round(s) of a fresh page per contender (order rotated per round). Each: subscribe; warm up; a measured flood of about ${opt["target-ms"]} ms from the loopback server (events/s = median over rounds, timed first→last callback; main-thread time per event from CDP \`Performance.getMetrics\` TaskDuration/ScriptDuration); ${opt.pings} round trips (the server sends one event, the callback that completes it answers on a control socket; p50/p99 pooled over rounds); then *dispatch only*: the next frames of the same stream handed synchronously to the contender's socket \`onmessage\` (no network stack), about ${opt["target-ms"]} ms.`,
  "",
  "**Over the socket** (what an app sees end to end)",
  "",
  table(
    ["scenario", "contender", "events/s", "callbacks/s", "vs raw", "vs hand-written", "main thread µs/event", "of which script", "RTT p50 ms", "RTT p99 ms", "setup ms"],
    socketRows,
  ),
  "",
  "**Dispatch only** (frames handed to `onmessage`: the work of the contender's own code)",
  "",
  table(["scenario", "contender", "events/s", "callbacks/s", "vs raw", "vs hand-written", "µs/event"], injectRows),
].join("\n");
// The raw round-trip samples stay out of the JSON (the percentiles are in the summary).
const slim = JSON.parse(JSON.stringify(results, (k, v) => (k === "rtts" ? v.length : v)));
writeResults(opt.out, { machine: { start: m0, end: m1 }, command, options: opt, summary, results: slim }, md);
console.log("\n" + md);
if (failures.length) {
  console.error(`\ndispatch: ${failures.length} check(s) failed`);
  process.exit(1);
}
console.log("\ndispatch: every contender delivered exactly the expected callbacks");
