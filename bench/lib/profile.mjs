// Chromium CPU profiles over CDP, and a self-time summary of them.
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { resultsDir } from "./common.mjs";

export async function startProfile(page, intervalUs = 100) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Profiler.enable");
  await cdp.send("Profiler.setSamplingInterval", { interval: intervalUs });
  await cdp.send("Profiler.start");
  return async function stop(name) {
    const { profile } = await cdp.send("Profiler.stop");
    const dir = join(resultsDir, "profiles");
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.cpuprofile`), JSON.stringify(profile));
    await cdp.detach();
    return summarize(profile);
  };
}

/** Self time per function (aggregated by name and location), largest first, in ms and %. */
export function summarize(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^https?:\/\/[^/]+/, "")}:${f.lineNumber + 1}` : "";
    const key = `${f.functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const rows = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, ms]) => ({ fn, ms: +ms.toFixed(1), pct: +((100 * ms) / total).toFixed(1) }));
  return { totalMs: +total.toFixed(1), rows };
}
