#!/usr/bin/env node
// Memory benchmark in headless Chromium: the wasm heap (`memory.buffer.byteLength`) and the JS heap
// (CDP HeapProfiler.collectGarbage, then Runtime.getHeapUsage) of one provider
//   - per subscription, after 10,000 useOne subscriptions on one channel;
//   - after unsubscribing them all;
//   - after 100,000 subscribe/unsubscribe cycles on a channel that stays subscribed (registry
//     churn only), and after 100,000 more on a channel with no other subscriber (each cycle also
//     sends `subscribe` and `unsubscribe` frames): both must come back to the baseline.
// Contenders: this package, the hand-written provider (context), and a floor that only keeps the
// handles an app keeps.
//
//   node bench/memory/run.mjs [--subs 10000] [--cycles 100000] [--contenders wasm,hand,none] [--smoke]
//        [--pkg-before DIR]   (adds the contender `before`: another build of this package, same run)
import { resolve } from "node:path";
import { startServer } from "../lib/v1server.mjs";
import { launchChromium, machine, machineLine, writeResults, table, args, fmt } from "../lib/common.mjs";

const opt = args({ subs: 10_000, cycles: 100_000, contenders: "wasm,hand,none", out: "memory", smoke: false, "pkg-before": "" });
if (opt.smoke) Object.assign(opt, { subs: 1000, cycles: 5000, contenders: opt.contenders === "wasm,hand,none" ? "wasm,hand" : opt.contenders, out: opt.out === "memory" ? "memory-smoke" : opt.out });
const contenders = String(opt.contenders).split(",");
const NAMES = { wasm: "wasm-live-provider", before: "wasm-live-provider, before (--pkg-before)", hand: "hand-written (seed + Ably filter)", none: "floor (the app's handles only)" };
if (opt["pkg-before"] && !contenders.includes("before")) contenders.splice(1, 0, "before");
const command = `node bench/memory/run.mjs ${process.argv.slice(2).join(" ")}`.trim();
const failures = [];

const m0 = machine();
console.log(`memory: ${machineLine(m0)}`);
const server = await startServer({ pkgBefore: opt["pkg-before"] ? resolve(String(opt["pkg-before"])) : null });
const browser = await launchChromium();
const results = {};
let runCounter = 0;

for (const contender of contenders) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${server.base}/memory/page.html`);
  await page.waitForFunction(() => window.memReady === true);
  const cdp = await page.context().newCDPSession(page);
  const runId = `m${++runCounter}`;
  const settle = async () => {
    // Let queued socket frames go out and reach the server (until it has seen nothing new for
    // 300 ms), then collect garbage.
    let last = -1;
    for (let quiet = 0; quiet < (opt.smoke ? 1 : 3); ) {
      await page.evaluate((ms) => new Promise((ok) => setTimeout(ok, ms)), opt.smoke ? 50 : 100);
      const frames = server.runs.get(runId)?.frames ?? 0;
      quiet = frames === last ? quiet + 1 : 0;
      last = frames;
    }
    for (let i = 0; i < 3; i++) await cdp.send("HeapProfiler.collectGarbage");
  };
  const snap = async (step) => {
    await settle();
    const { usedSize } = await cdp.send("Runtime.getHeapUsage");
    const wasmBytes = await page.evaluate(() => window.mem.wasmBytes());
    const subs = await page.evaluate(() => window.mem.subscriptionCount());
    const tableSlots = await page.evaluate(() => window.mem.tableSlots());
    const stats = server.runs.get(runId);
    return { step, jsHeap: usedSize, wasmBytes, tableSlots, subs, serverChannels: stats?.channels.size ?? null, framesToServer: stats?.frames ?? null };
  };
  await page.evaluate((r) => window.mem.setup(r[0], r[1]), [contender, runId]);
  const steps = [];
  steps.push(await snap("baseline (connected, 1 subscription)"));
  const subMs = await page.evaluate((n) => window.mem.subscribeMany(n, "resources/rows"), opt.subs);
  steps.push(await snap(`${fmt(opt.subs)} useOne subscriptions`));
  const unsubMs = await page.evaluate(() => window.mem.unsubscribeAll());
  steps.push(await snap("all unsubscribed"));
  // Cycles on a channel kept subscribed by one list subscription.
  await page.evaluate(() => window.mem.subscribeMany(1, "resources/kept", 1e9));
  const keptBase = await snap("1 subscription on resources/kept");
  steps.push(keptBase);
  const cycleKeptMs = await page.evaluate((n) => window.mem.cycles(n, "resources/kept"), opt.cycles);
  steps.push(await snap(`${fmt(opt.cycles)} cycles on a kept channel`));
  const cycleNewMs = await page.evaluate((n) => window.mem.cycles(n, "resources/churn"), opt.cycles);
  steps.push(await snap(`${fmt(opt.cycles)} cycles on a channel of its own`));
  const again = await page.evaluate((n) => window.mem.cycles(n, "resources/churn", 1e6), opt.cycles);
  steps.push(await snap(`${fmt(opt.cycles)} more cycles on it`));
  // The first measure again, warmed up: the same subscriptions on a page that has run the cycles.
  const [warmSubMs, warmUnsubMs] = await page.evaluate((n) => window.mem.warm(n, "resources/rows", 2e6), opt.subs);
  if (errors.length) failures.push(`${contender}: page errors: ${errors.join("; ")}`);
  await page.close();
  server.forget(runId);

  const [b0, full, empty, kept, afterKept, afterNew, afterAgain] = steps;
  const r = {
    steps,
    jsPerSub: (full.jsHeap - b0.jsHeap) / opt.subs,
    wasmPerSub: full.wasmBytes === null ? null : (full.wasmBytes - b0.wasmBytes) / opt.subs,
    subUs: (subMs * 1000) / opt.subs,
    unsubUs: (unsubMs * 1000) / opt.subs,
    warmSubUs: (warmSubMs * 1000) / opt.subs,
    warmUnsubUs: (warmUnsubMs * 1000) / opt.subs,
    cycleKeptUs: (cycleKeptMs * 1000) / opt.cycles,
    cycleNewUs: (cycleNewMs * 1000) / opt.cycles,
    cycleAgainUs: (again * 1000) / opt.cycles,
    jsAfterCycles: afterAgain.jsHeap - kept.jsHeap,
    jsAfterUnsub: empty.jsHeap - b0.jsHeap,
    wasmGrowthInCycles: afterAgain.wasmBytes === null ? null : afterAgain.wasmBytes - kept.wasmBytes,
  };
  results[contender] = r;
  console.log(`\n${NAMES[contender]}`);
  for (const s of steps)
    console.log(`  ${s.step.padEnd(44)} JS heap ${fmt(s.jsHeap / 1024, 1).padStart(9)} KiB  wasm ${s.wasmBytes === null ? "     –" : fmt(s.wasmBytes / 1024).padStart(6) + " KiB"}  subs ${s.subs ?? "–"}  server channels ${s.serverChannels ?? "–"}`);
  console.log(`  per subscription: JS ${fmt(r.jsPerSub)} B, wasm ${r.wasmPerSub === null ? "–" : fmt(r.wasmPerSub) + " B"}; subscribe ${fmt(r.subUs, 2)} µs, unsubscribe ${fmt(r.unsubUs, 2)} µs, cycle ${fmt(r.cycleKeptUs, 2)} / ${fmt(r.cycleNewUs, 2)} µs`);
  // Back to baseline: the JS heap within 5 % (+64 KiB) of where it was, no wasm growth in the last 100k cycles.
  const tol = 0.05 * kept.jsHeap + 65536;
  if (Math.abs(afterAgain.jsHeap - kept.jsHeap) > tol) failures.push(`${contender}: JS heap ${fmt(afterAgain.jsHeap)} B after the cycles vs ${fmt(kept.jsHeap)} B before`);
  if (r.wasmGrowthInCycles !== null && afterAgain.wasmBytes > afterNew.wasmBytes) failures.push(`${contender}: the wasm memory grew during the last ${opt.cycles} cycles`);
  if (full.subs !== null && full.subs !== opt.subs + 1) failures.push(`${contender}: ${full.subs} subscriptions, expected ${opt.subs + 1}`);
  if (afterAgain.subs !== null && afterAgain.subs !== 2) failures.push(`${contender}: ${afterAgain.subs} subscriptions left after the cycles, expected 2`);
  if (contender !== "none" && afterAgain.serverChannels !== 2) failures.push(`${contender}: the server still has ${afterAgain.serverChannels} channels, expected 2`);
}
await browser.close();
await server.close();
const m1 = machine();

const md = [
  `Command: \`${command}\``,
  "",
  `Machine at start: ${machineLine(m0)}  `,
  `Load at end: ${m1.load}`,
  "",
  `One page per contender, connected to the loopback protocol v1 server, with one list subscription. Heaps after \`HeapProfiler.collectGarbage\` (×3): JS = \`Runtime.getHeapUsage().usedSize\`, wasm = \`memory.buffer.byteLength\` (linear memory only grows: it shows the peak, not what is in use). Every subscription shares one callback function, so the figures are the provider's own cost.`,
  "",
  table(
    ["contender", "JS B/subscription", "wasm B/subscription", "subscribe µs", "unsubscribe µs", "subscribe / unsubscribe µs, warm", "cycle µs (kept channel / own channel)", "JS heap after all unsubscribed vs baseline", `JS heap after the 3×${fmt(opt.cycles)} cycles vs before them`, "wasm growth in those cycles"],
    contenders.map((c) => {
      const r = results[c];
      return [
        NAMES[c],
        fmt(r.jsPerSub),
        r.wasmPerSub === null ? "–" : fmt(r.wasmPerSub),
        fmt(r.subUs, 2),
        fmt(r.unsubUs, 2),
        `${fmt(r.warmSubUs, 2)} / ${fmt(r.warmUnsubUs, 2)}`,
        `${fmt(r.cycleKeptUs, 2)} / ${fmt(r.cycleNewUs, 2)}`,
        `${r.jsAfterUnsub >= 0 ? "+" : ""}${fmt(r.jsAfterUnsub / 1024, 1)} KiB`,
        `${r.jsAfterCycles >= 0 ? "+" : ""}${fmt(r.jsAfterCycles / 1024, 1)} KiB`,
        r.wasmGrowthInCycles === null ? "–" : `${fmt(r.wasmGrowthInCycles / 1024)} KiB`,
      ];
    }),
  ),
  "",
  "Steps (JS heap KiB / wasm memory KiB / slots of wasm-bindgen's externref table):",
  "",
  table(
    ["step", ...contenders.map((c) => NAMES[c])],
    results[contenders[0]].steps.map((s, i) =>
      [s.step, ...contenders.map((c) => { const x = results[c].steps[i]; return `${fmt(x.jsHeap / 1024, 1)}${x.wasmBytes === null ? "" : ` / ${fmt(x.wasmBytes / 1024)} / ${fmt(x.tableSlots)}`}`; })],
    ),
  ),
].join("\n");
writeResults(opt.out, { machine: { start: m0, end: m1 }, command, options: opt, results }, md);
console.log("\n" + md);
if (failures.length) {
  console.error(`\nmemory: ${failures.length} check(s) failed:\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
console.log("\nmemory: heaps came back to their baseline");
