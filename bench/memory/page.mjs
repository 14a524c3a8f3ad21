// The page side of the memory benchmark: one provider, many subscriptions, subscribe/unsubscribe
// cycles; the runner measures the heaps between the steps over CDP.
import { handWritten, ours, refineOptions } from "../lib/contenders.mjs";

let provider = null;
let handles = [];
let wasm = null;
let calls = 0;
const callback = () => calls++; // shared: the per-subscription cost measured is the provider's

/** A stand-in provider that only keeps what an app keeps (the handles): the floor. */
function none() {
  const subs = new Set();
  return {
    ready: async () => {},
    subscribe: (o) => {
      const entry = {};
      subs.add(entry);
      return () => subs.delete(entry);
    },
    unsubscribe: (h) => h(),
  };
}

window.mem = {
  async setup(contender, runId) {
    const url = `ws://${location.host}/ws?run=${runId}`;
    if (contender === "wasm" || contender === "before") {
      const base = contender === "wasm" ? "/pkg" : "/pkg-before";
      provider = await ours(url, base);
      provider.subscribe(refineOptions({ channel: "resources/anchor" }, callback));
      await provider.ready();
      const glue = await import(`${base}/wasm_live_provider.js`);
      wasm = await glue.default(); // the instance index.js already loaded (same module URL)
    } else if (contender === "hand") {
      provider = handWritten(url);
      await provider.ready();
      provider.subscribe(refineOptions({ channel: "resources/anchor" }, callback));
    } else {
      provider = none();
    }
    return true;
  },
  /** `n` useOne-style subscriptions on `channel`, ids `base`…`base+n-1`; handles are kept. */
  subscribeMany(n, channel, base = 0) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) handles.push(provider.subscribe(refineOptions({ channel, id: base + i }, callback)));
    return performance.now() - t0;
  },
  unsubscribeAll() {
    const t0 = performance.now();
    for (const h of handles) provider.unsubscribe(h);
    handles = [];
    return performance.now() - t0;
  },
  /** `n` cycles of subscribe + unsubscribe (a useOne page mounted then unmounted), distinct ids. */
  cycles(n, channel, base = 0) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) provider.unsubscribe(provider.subscribe(refineOptions({ channel, id: base + i }, callback)));
    return performance.now() - t0;
  },
  /** `subscribeMany` then unsubscribing those, on a page that has run for a while: [sub ms, unsub ms]. */
  warm(n, channel, base) {
    const mine = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) mine.push(provider.subscribe(refineOptions({ channel, id: base + i }, callback)));
    const t1 = performance.now();
    for (const h of mine) provider.unsubscribe(h);
    return [t1 - t0, performance.now() - t1];
  },
  subscriptionCount: () => provider.provider?.client?.subscriptionCount ?? null,
  wasmBytes: () => (wasm ? wasm.memory.buffer.byteLength : null),
  /** Slots of wasm-bindgen's externref table (JS values held by the wasm side); it never shrinks. */
  tableSlots: () => (wasm ? wasm.__wbindgen_externrefs?.length ?? null : null),
};
window.memReady = true;
