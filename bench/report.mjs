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
// Issue 11's targets.
if (dispatch) {
  const s = dispatch.summary;
  for (const [key, name] of [["one", "1 subscription"], ["hundred", "100 subscriptions on 10 channels"], ["channels1k", "1,000 channels"]]) {
    if (!s[key]?.wasm || !s[key]?.raw) continue;
    const sock = s[key].wasm.eventsPerSec / s[key].raw.eventsPerSec;
    const inj = s[key].wasm.injectPerSec / s[key].raw.injectPerSec;
    rows.push([`${name}: over the socket ≥ 0.9× the raw ceiling`, `${fmt(sock, 2)}× (dispatch only ${fmt(inj, 2)}×)`, verdict(sock >= 0.9)]);
  }
  if (s.one?.wasm) {
    const us = 1e6 / s.one.wasm.injectPerSec;
    rows.push(["1 subscription: dispatch only ≤ 1.2 µs per event", `${fmt(us, 2)} µs`, verdict(us <= 1.2)]);
  }
  if (s.useOne10k?.wasm && s.useOne10k?.hand) {
    const sock = s.useOne10k.wasm.eventsPerSec / s.useOne10k.hand.eventsPerSec;
    const inj = s.useOne10k.wasm.injectPerSec / s.useOne10k.hand.injectPerSec;
    rows.push(["10,000 useOne subscriptions on one channel ≥ 20× the hand-written provider", `${fmt(sock, 1)}× over the socket; ${fmt(inj, 1)}× dispatch only`, `${verdict(sock >= 20)} over the socket; ${verdict(inj >= 20)} dispatch only`]);
  }
}
const memory = load("memory");
const mem = memory?.results?.wasm;
if (mem) {
  // The verdict is on the first 10,000 on a fresh page; the same on a warmed-up page is shown beside.
  const warm = mem.warmSubUs === undefined ? "" : `; warmed up ${fmt(mem.warmSubUs, 2)} / ${fmt(mem.warmUnsubUs, 2)} µs`;
  rows.push(["subscribe and unsubscribe ≤ 2 µs each", `${fmt(mem.subUs, 2)} / ${fmt(mem.unsubUs, 2)} µs on a fresh page${warm}`, verdict(mem.subUs <= 2 && mem.unsubUs <= 2)]);
  // "No worse than today": against the build before (`--pkg-before`, same run) when it was measured,
  // else against the figures of 2026-11-22 (262 B wasm + ~170 B JS, on another machine).
  const before = memory.results.before;
  const [wasmMax, jsMax, against] = before ? [before.wasmPerSub, before.jsPerSub, "the build before, same run"] : [262, 180, "262 B wasm + ~170 B JS"];
  rows.push([`memory per subscription no worse than today (${against}: ${fmt(wasmMax)} B wasm + ${fmt(jsMax)} B JS)`, `${fmt(mem.wasmPerSub)} B wasm + ${fmt(mem.jsPerSub)} B JS`, verdict(mem.wasmPerSub <= wasmMax && mem.jsPerSub <= jsMax)]);
}
if (size) {
  rows.push(["total gzip of what a Refine user ships ≤ 20,000 B (stretch 12,000 B)", `${fmt(size.total.gz)} B (wasm ${fmt(size.files[0].gz)} B)`, verdict(size.total.gz <= 20_000)]);
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
for (const name of ["dispatch", "size", "fanout", "fanout-patched", "memory", "cluster", "postgres"]) {
  const md = join(resultsDir, `${name}.md`);
  if (existsSync(md)) replace(name, readFileSync(md, "utf8"));
}
writeFileSync(file, text);
console.log(`wrote ${file}`);
