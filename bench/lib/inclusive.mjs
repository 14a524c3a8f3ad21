// Inclusive and self time of the functions in a .cpuprofile: node bench/lib/inclusive.mjs FILE [N]
import { readFileSync } from "node:fs";
const p = JSON.parse(readFileSync(process.argv[2], "utf8"));
const top = Number(process.argv[3] ?? 40);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (n) => {
  const f = n.callFrame;
  const short = f.functionName.replace(/::h[0-9a-f]{16}$/, "") || "(anonymous)";
  return short.length > 110 ? short.slice(0, 107) + "..." : short;
};
const incl = new Map(), self = new Map();
let total = 0;
for (let i = 0; i < p.samples.length; i++) {
  const dt = (p.timeDeltas[i] ?? 0) / 1000;
  total += dt;
  let id = p.samples[i];
  const seen = new Set();
  self.set(name(byId.get(id)), (self.get(name(byId.get(id))) ?? 0) + dt);
  while (id !== undefined) {
    const k = name(byId.get(id));
    if (!seen.has(k)) { incl.set(k, (incl.get(k) ?? 0) + dt); seen.add(k); }
    id = parent.get(id);
  }
}
console.log(`total ${total.toFixed(0)} ms`);
console.log("incl%  self%  function");
for (const [k, v] of [...incl].sort((a, b) => b[1] - a[1]).slice(0, top))
  console.log(`${(100 * v / total).toFixed(1).padStart(5)}  ${(100 * (self.get(k) ?? 0) / total).toFixed(1).padStart(5)}  ${k}`);
