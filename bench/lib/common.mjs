// Shared helpers of the benchmarks: the machine description, Chromium, percentiles, result files.
import { readFileSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { execFileSync } from "node:child_process";
import { resolve, join } from "node:path";

export const benchDir = resolve(import.meta.dirname, "..");
export const root = resolve(benchDir, "..");
export const pkgDir = join(root, "pkg");
export const resultsDir = join(benchDir, "results");

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export async function launchChromium() {
  const { chromium } = await import("playwright-core");
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: CHROMIUM_ARGS });
}

/** nproc, CPU model, load averages, memory, versions: what RESULTS.md states about the machine. */
export function machine() {
  let model = cpus()[0]?.model ?? "unknown";
  try {
    const m = readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.+)$/m);
    if (m) model = m[1].trim();
  } catch {}
  let chromium = "";
  try {
    chromium = execFileSync(process.env.CHROMIUM ?? "/usr/bin/chromium", ["--version"], { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {}
  return {
    date: new Date().toISOString(),
    nproc: Number(execFileSync("nproc").toString().trim()),
    cpu: model,
    load: loadavg().map((l) => l.toFixed(2)).join(" "),
    memGiB: (totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    chromium,
  };
}

export function machineLine(m) {
  return `${m.date} · ${m.nproc} × ${m.cpu} · load ${m.load} · ${m.memGiB} GiB · Node ${m.node}${m.chromium ? ` · ${m.chromium}` : ""}`;
}

/** The q-quantile (0..1) of an array of numbers (nearest rank). */
export function quantile(values, q) {
  if (values.length === 0) return NaN;
  const sorted = Float64Array.from(values).sort();
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

export const median = (values) => quantile(values, 0.5);

/** Writes `results/<name>.json` and `results/<name>.md` (the table RESULTS.md includes). */
export function writeResults(name, json, markdown) {
  if (!existsSync(resultsDir)) mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(json, null, 2) + "\n");
  writeFileSync(join(resultsDir, `${name}.md`), markdown.trimEnd() + "\n");
}

/** A markdown table from a header row and rows. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

/** Parses `--name value` and `--flag` arguments. */
export function args(defaults) {
  const out = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) continue;
    const key = a.slice(2);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith("--")) out[key] = true;
    else {
      out[key] = isNaN(Number(next)) ? next : Number(next);
      i++;
    }
  }
  return out;
}

export const fmt = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–";
