#!/usr/bin/env node
// Size report: what a Refine user ships from pkg/ (raw, gzip -9, brotli -q 11), compared with the
// clients they would otherwise ship, and where the wasm bytes go (twiggy on a build that keeps
// function names: bench/size/build-named.sh).
//   node bench/size/breakdown.mjs [--named bench/.build/pkg-named/wasm_live_provider_bg.wasm]
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { gzipSync, brotliCompressSync, constants } from "node:zlib";
import { execFileSync } from "node:child_process";
import { join, relative } from "node:path";
import { root, pkgDir, benchDir, machine, machineLine, writeResults, table, args, fmt } from "../lib/common.mjs";

const opt = args({ named: join(benchDir, ".build/pkg-named/wasm_live_provider_bg.wasm"), out: "size", top: 25 });
const command = `node bench/size/breakdown.mjs ${process.argv.slice(2).join(" ")}`.trim();
// The gzip and brotli command-line tools, as scripts/size-report.sh uses them (zlib when missing).
const cli = (cmd, a, b) => {
  try {
    return execFileSync(cmd, a, { input: b, maxBuffer: 1 << 26 }).length;
  } catch {
    return null;
  }
};
const gz = (b) => cli("gzip", ["-9", "-c"], b) ?? gzipSync(b, { level: 9 }).length;
const br = (b) => cli("brotli", ["-q", "11", "-c"], b) ?? brotliCompressSync(b, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

// 1. What ships (the same files as scripts/size-report.sh).
const snippets = existsSync(join(pkgDir, "snippets"))
  ? readdirSync(join(pkgDir, "snippets"), { recursive: true }).filter((f) => String(f).endsWith(".js")).map((f) => join("snippets", String(f)))
  : [];
const core = ["wasm_live_provider_bg.wasm", "wasm_live_provider.js", "index.js", ...snippets];
const adapters = ["react.js", "vue.js"];
const measure = (f) => {
  const b = readFileSync(join(pkgDir, f));
  return { file: f, raw: b.length, gz: gz(b), br: br(b) };
};
const files = core.map(measure);
const total = files.reduce((a, f) => ({ raw: a.raw + f.raw, gz: a.gz + f.gz, br: a.br + f.br }), { raw: 0, gz: 0, br: 0 });
const adapterRows = adapters.filter((f) => existsSync(join(pkgDir, f))).map(measure);
// The full build (SSE, Igniter.js, the simple protocol): index.js imports it only for a client
// whose options need it, so a WebSocket app never downloads it.
const fullFiles = ["full/wasm_live_provider_bg.wasm", "full/wasm_live_provider.js"].filter((f) => existsSync(join(pkgDir, f))).map(measure);
const fullTotal = fullFiles.reduce((a, f) => ({ raw: a.raw + f.raw, gz: a.gz + f.gz, br: a.br + f.br }), { raw: 0, gz: 0, br: 0 });
// The whole JS as one bundle would compress a little better than file by file.
const wasmFile = files[0];
const jsAll = Buffer.concat(core.slice(1).map((f) => readFileSync(join(pkgDir, f))));

// The clients a user would otherwise ship: shared/reference/anchors.md (minified + gzip -9).
const anchors = [];
try {
  const text = readFileSync(join(root, "../shared/reference/anchors.md"), "utf8");
  for (const m of text.matchAll(/^\| (\S[^|]*?) \| ([\d,]+) \|$/gm)) anchors.push({ name: m[1].trim(), gz: Number(m[2].replace(/,/g, "")) });
} catch {}

// 2. Where the wasm bytes go.
let breakdown = null;
if (existsSync(opt.named)) {
  const top = JSON.parse(execFileSync("twiggy", ["top", "-f", "json", "-n", "100000", opt.named], { maxBuffer: 1 << 28 }).toString());
  const items = top.items ?? top;
  const names = items.filter((i) => /names" subsection|^"?name"? section|custom section 'name'/i.test(i.name));
  const namesBytes = names.reduce((a, i) => a + i.shallow_size, 0);
  const code = items.filter((i) => !names.includes(i));
  const codeBytes = code.reduce((a, i) => a + i.shallow_size, 0);
  const CRATES = ["wasm_live_provider", "wasm_bindgen_futures", "serde_json", "serde_core", "serde", "dlmalloc", "hashbrown", "wasm_bindgen", "js_sys", "web_sys", "alloc", "core", "std", "itoa", "ryu", "memchr"];
  const crateOf = (name) => {
    if (/^data segment/.test(name)) return "data segments (.rodata: strings, tables)";
    if (/externref shim|^liveclient_|^__wbg|^__wbindgen|Closure\(Closure|-> Externref|^"?[A-Z][A-Za-z0-9]* -> /.test(name)) return "wasm-bindgen exports and shims";
    if (/^(type|import|export|table|elem|global|memory|start|code\[|func\[)/.test(name) || /section|table\[|elem\[/.test(name)) return "wasm structure (types, imports, exports, tables, unnamed)";
    const seen = [...name.matchAll(/([a-z_][a-z0-9_]*)(?:\[[0-9a-f]+\])?::/g)].map((m) => m[1]);
    const prim = name.match(/^<(f64|f32|u8|u16|u32|u64|usize|i8|i16|i32|i64|isize|char|bool|str|&str|&mut str) as (core|alloc)/);
    if (prim) return prim[2];
    for (const s of seen) if (CRATES.includes(s)) return s === "serde" ? "serde_core" : s;
    return "other";
  };
  const byCrate = new Map();
  for (const i of code) byCrate.set(crateOf(i.name), (byCrate.get(crateOf(i.name)) ?? 0) + i.shallow_size);
  const dom = execFileSync("twiggy", ["dominators", "-d", "3", "-r", "40", opt.named], { maxBuffer: 1 << 26 }).toString();
  breakdown = {
    file: relative(root, opt.named),
    namedBytes: items.reduce((a, i) => a + i.shallow_size, 0),
    namesBytes,
    codeBytes,
    byCrate: [...byCrate.entries()].sort((a, b) => b[1] - a[1]).map(([crate, bytes]) => ({ crate, bytes, pct: (100 * bytes) / codeBytes })),
    top: code
      .sort((a, b) => b.shallow_size - a.shallow_size)
      .slice(0, opt.top)
      .map((i) => ({ name: i.name.replace(/::h[0-9a-f]{16}$/, "").replace(/\[[0-9a-f]{16}\]/g, ""), bytes: i.shallow_size, pct: (100 * i.shallow_size) / codeBytes })),
    dominators: dom,
  };
}

const m = machine();
const target = 20_000; // issue 11: at most 20,000 B gzip (stretch 12,000 B)
const md = [
  `Command: \`${command}\` (after \`bash scripts/build-pkg.sh\` and \`bash bench/size/build-named.sh\`)  `,
  `Date: ${m.date}`,
  "",
  "**What a Refine user ships** (pkg/ as built; gzip -9 and brotli -q 11, file by file)",
  "",
  table(
    ["file", "raw", "gzip -9", "brotli"],
    [
      ...files.map((f) => [f.file, fmt(f.raw), fmt(f.gz), fmt(f.br)]),
      ["**total (wasm + JS glue + entry)**", `**${fmt(total.raw)}**`, `**${fmt(total.gz)}**`, `**${fmt(total.br)}**`],
      ["all JS as one bundle (for reference)", fmt(jsAll.length), fmt(gz(jsAll)), fmt(br(jsAll))],
      ...adapterRows.map((f) => [`${f.file} (adapter, optional)`, fmt(f.raw), fmt(f.gz), fmt(f.br)]),
      ...fullFiles.map((f) => [`${f.file} (SSE, Igniter, simple: loaded only for them)`, fmt(f.raw), fmt(f.gz), fmt(f.br)]),
      ...(fullFiles.length ? [["full build, downloaded on top of index.js by such a client", fmt(fullTotal.raw), fmt(fullTotal.gz), fmt(fullTotal.br)]] : []),
    ],
  ),
  "",
  `Target (issue 11): total gzip ≤ ${fmt(target)} B. Now: ${fmt(total.gz)} B = ${fmt(total.gz / target, 2)}× the target (the wasm alone is ${fmt(wasmFile.gz)} B gzip).`,
  "",
  "**Compared with the clients a user would otherwise ship** (minified + gzip -9, from shared/reference/anchors.md)",
  "",
  table(
    ["client", "gzip bytes", "wasm-live-provider ÷ it"],
    [["wasm-live-provider (wasm + JS)", fmt(total.gz), "1.00×"], ...anchors.map((a) => [a.name, fmt(a.gz), `${fmt(total.gz / a.gz, 2)}×`])],
  ),
];
if (breakdown) {
  md.push(
    "",
    `**Where the wasm bytes go** (twiggy on \`${breakdown.file}\`, the same code and flags with the function names kept: ${fmt(breakdown.namedBytes)} B of which ${fmt(breakdown.namesBytes)} B are the names themselves, which pkg/ does not ship; ${fmt(breakdown.codeBytes)} B of code and data, vs ${fmt(wasmFile.raw)} B in pkg/)`,
    "",
    "By crate (heuristic: the first crate named in each function's symbol; generic code instantiated for our types is counted under the crate that defines the generic):",
    "",
    table(["crate", "bytes", "%"], breakdown.byCrate.map((c) => [c.crate, fmt(c.bytes), fmt(c.pct, 1)])),
    "",
    `Top ${opt.top} items:`,
    "",
    table(["item", "bytes", "%"], breakdown.top.map((t) => [`\`${t.name.slice(0, 140).replace(/\|/g, "\\|")}\``, fmt(t.bytes), fmt(t.pct, 1)])),
    "",
    "Dominator tree (retained bytes, depth 3):",
    "",
    "```",
    breakdown.dominators.trimEnd(),
    "```",
  );
}
writeResults(opt.out, { machine: m, command, files, total, adapters: adapterRows, anchors, breakdown }, md.join("\n"));
console.log(md.join("\n"));
