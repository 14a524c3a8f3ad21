#!/usr/bin/env node
// Investigation helper: what stays on the JS heap after subscribing N subscriptions and
// unsubscribing them all (heap snapshots over CDP, compared by constructor name).
//   node bench/memory/retained.mjs [--subs 10000] [--contender wasm]
import { startServer } from "../lib/v1server.mjs";
import { launchChromium, args, fmt } from "../lib/common.mjs";

const opt = args({ subs: 10_000, contender: "wasm", cycles: 0 });
const server = await startServer();
const browser = await launchChromium();
const page = await browser.newPage();
await page.goto(`${server.base}/memory/page.html`);
await page.waitForFunction(() => window.memReady === true);
const cdp = await page.context().newCDPSession(page);
await page.evaluate((c) => window.mem.setup(c, "x1"), opt.contender);

async function snapshot() {
  for (let i = 0; i < 3; i++) await cdp.send("HeapProfiler.collectGarbage");
  const chunks = [];
  const onChunk = (e) => chunks.push(e.chunk);
  cdp.on("HeapProfiler.addHeapSnapshotChunk", onChunk);
  await cdp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  cdp.off("HeapProfiler.addHeapSnapshotChunk", onChunk);
  const snap = JSON.parse(chunks.join(""));
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const [iType, iName, iSize] = [f.indexOf("type"), f.indexOf("name"), f.indexOf("self_size")];
  const by = new Map();
  for (let i = 0; i < snap.nodes.length; i += f.length) {
    const key = `${types[snap.nodes[i + iType]]}:${snap.strings[snap.nodes[i + iName]].slice(0, 60)}`;
    const e = by.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += snap.nodes[i + iSize];
    by.set(key, e);
  }
  return by;
}
const before = await snapshot();
await page.evaluate((n) => window.mem.subscribeMany(n, "resources/rows"), opt.subs);
await page.evaluate(() => window.mem.unsubscribeAll());
if (opt.cycles) await page.evaluate((n) => window.mem.cycles(n, "resources/rows"), opt.cycles);
await page.evaluate(() => new Promise((ok) => setTimeout(ok, 500)));
const after = await snapshot();
const diff = [];
for (const [k, v] of after) {
  const b = before.get(k) ?? { count: 0, size: 0 };
  if (v.size - b.size !== 0) diff.push([k, v.count - b.count, v.size - b.size]);
}
diff.sort((a, b) => b[2] - a[2]);
console.log(`JS heap retained after ${opt.subs} subscriptions were made and ended (${opt.contender}), largest growth first:`);
for (const [k, c, s] of diff.slice(0, 15)) console.log(`${fmt(s).padStart(10)} B ${String(c).padStart(7)} objects  ${k}`);
await browser.close();
await server.close();
