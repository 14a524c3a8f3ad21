#!/usr/bin/env node
// Fills bench/RESULTS.md from bench/results/*.{json,md}: the text between `<!-- results:NAME -->`
// and `<!-- /results:NAME -->` is replaced by results/NAME.md, and `<!-- results:targets -->` by the
// targets table computed from the JSON. Everything else in RESULTS.md (the analysis) is kept.
//   node bench/report.mjs
import { readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { benchDir, resultsDir, table, fmt } from "./lib/common.mjs";

const file = join(benchDir, "RESULTS.md");
const load = (name) => (existsSync(join(resultsDir, `${name}.json`)) ? JSON.parse(readFileSync(join(resultsDir, `${name}.json`), "utf8")) : null);
const dispatch = load("dispatch");
const size = load("size");
const fanout = load("fanout");

const rows = [];
const verdict = (ok) => (ok ? "✅ met" : "❌ missed");
if (dispatch) {
  const s = dispatch.summary;
  if (s.one?.wasm && s.one?.raw) {
    const sock = s.one.wasm.eventsPerSec / s.one.raw.eventsPerSec;
    const inj = s.one.wasm.injectPerSec / s.one.raw.injectPerSec;
    rows.push(["1 subscription ≥ 0.8× the raw ceiling", `${fmt(sock, 2)}× over the socket; ${fmt(inj, 2)}× dispatch only`, `${verdict(sock >= 0.8)} over the socket; ${verdict(inj >= 0.8)} dispatch only`]);
  }
  if (s.useOne10k?.wasm && s.useOne10k?.hand) {
    const sock = s.useOne10k.wasm.eventsPerSec / s.useOne10k.hand.eventsPerSec;
    const inj = s.useOne10k.wasm.injectPerSec / s.useOne10k.hand.injectPerSec;
    rows.push(["10,000 subscriptions on one channel ≥ 20× the hand-written provider", `${fmt(sock, 1)}× over the socket; ${fmt(inj, 1)}× dispatch only`, `${verdict(sock >= 20)} over the socket; ${verdict(inj >= 20)} dispatch only`]);
  }
}
if (size) {
  rows.push(["total gzip of what a Refine user ships ≤ 23 KB", `${fmt(size.total.gz)} B (${fmt(size.total.gz / 1024, 1)} KiB; wasm ${fmt(size.files[0].gz)} B)`, verdict(size.total.gz <= 23 * 1024)]);
}
if (fanout?.summary?.[5000]) {
  const r = fanout.summary[5000];
  const x = r.relay.deliveredPerSec / r.node.deliveredPerSec;
  rows.push(["relay ≥ 3× the Node ws server's delivered events/s at 5,000 connections", `${fmt(x, 2)}× (${fmt(r.relay.deliveredPerSec)} vs ${fmt(r.node.deliveredPerSec)} /s)`, verdict(x >= 3)]);
}

let text = readFileSync(file, "utf8");
const replace = (name, body) => {
  const re = new RegExp(`(<!-- results:${name} -->)[\\s\\S]*?(<!-- /results:${name} -->)`);
  if (!re.test(text)) return console.error(`RESULTS.md has no markers for ${name}`);
  text = text.replace(re, (_, a, b) => `${a}\n${body.trimEnd()}\n${b}`);
};
replace("targets", table(["target", "measured", "status"], rows));
for (const name of ["dispatch", "size", "fanout", "fanout-patched", "memory", "cluster"]) {
  const md = join(resultsDir, `${name}.md`);
  if (existsSync(md)) replace(name, readFileSync(md, "utf8"));
}
writeFileSync(file, text);
console.log(`wrote ${file}`);
