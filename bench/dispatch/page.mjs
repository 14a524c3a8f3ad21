// The page side of the dispatch benchmark: sets up one contender with a scenario's subscriptions,
// then counts callbacks during floods and answers round-trip pings from inside the callback.
import { SCENARIOS, eventFrame } from "./scenarios.mjs";

// Every WebSocket a contender opens is remembered, so that `inject` can call its message handler
// directly (the control socket uses the native class and is not recorded).
const NativeWebSocket = window.WebSocket;
const sockets = [];
window.WebSocket = class extends NativeWebSocket {
  constructor(...args) {
    super(...args);
    sockets.push(this);
  }
};
import { raw, handWritten, handTuned, ours, refineOptions } from "../lib/contenders.mjs";

let S = null; // the scenario
let run = null;
let ctl = null;
let delivered = 0; // callbacks called
let wrong = 0; // callbacks called with an event that was not theirs
let mark = Infinity; // the `delivered` value that ends the current phase
let onMark = null;
let tFirst = 0;
let perSub = null; // callbacks per subscription (providers only)
let cursor = 0; // events of the stream sent to this page so far

function hit() {
  if (tFirst === 0) tFirst = performance.now();
  if (++delivered === mark) onMark();
}

function subscriptionCallback(index, spec) {
  const { channel, id } = spec;
  if (id === undefined) {
    return (e) => {
      if (e.channel !== channel) wrong++;
      perSub[index]++;
      hit();
    };
  }
  return (e) => {
    if (e.channel !== channel || e.payload.ids[0] !== id) wrong++;
    perSub[index]++;
    hit();
  };
}

window.bench = {
  /** Creates the contender, makes the scenario's subscriptions and waits until events can flow. */
  async setup(contender, scenario, runId) {
    S = SCENARIOS[scenario];
    run = runId;
    const t0 = performance.now();
    const url = `ws://${location.host}/ws?run=${runId}`;
    let provider;
    if (contender === "raw") {
      provider = raw(url, S.perEvent, (e) => {
        if (typeof e.channel !== "string") wrong++;
        hit();
      });
      await provider.ready();
    } else {
      perSub = new Uint32Array(S.subs.length);
      if (contender === "wasm" || contender === "before") {
        provider = await ours(url, contender === "wasm" ? "/pkg" : "/pkg-before");
        S.subs.forEach((spec, i) => provider.subscribe(refineOptions(spec, subscriptionCallback(i, spec))));
        await provider.ready();
      } else {
        provider = (contender === "hand" ? handWritten : handTuned)(url);
        await provider.ready();
        S.subs.forEach((spec, i) => provider.subscribe(refineOptions(spec, subscriptionCallback(i, spec))));
      }
    }
    const want = contender === "raw" ? 0 : S.channels.length;
    const r = await fetch(`/ready?run=${runId}&scenario=${scenario}&channels=${want}`);
    if (!r.ok) throw new Error(await r.text());
    ctl = new NativeWebSocket(`ws://${location.host}/ctl?run=${runId}`);
    await new Promise((ok, fail) => ((ctl.onopen = ok), (ctl.onerror = fail)));
    window.provider = provider;
    return { setupMs: performance.now() - t0 };
  },

  /** Asks the server for the next `n` events and waits until their callbacks have all run. */
  async flood(n, timeoutMs = 60_000) {
    const start = delivered;
    const target = delivered + n * S.perEvent;
    const wrongBefore = wrong;
    tFirst = 0;
    const done = new Promise((ok) => {
      mark = target;
      onMark = () => ok(performance.now());
    });
    const r = await fetch(`/flood?run=${run}&n=${n}`);
    if (!r.ok) throw new Error(await r.text());
    cursor += n;
    const timeout = new Promise((ok) => setTimeout(() => ok(null), timeoutMs));
    const tEnd = await Promise.race([done, timeout]);
    // Let anything extra (duplicates) arrive before counting.
    await new Promise((ok) => setTimeout(ok, 20));
    mark = Infinity;
    return {
      n,
      callbacks: delivered - start,
      expected: n * S.perEvent,
      wrong: wrong - wrongBefore,
      ms: tEnd === null ? null : tEnd - tFirst,
    };
  },

  /**
   * Dispatch only: the next `n` frames of the stream handed straight to the contender's socket
   * `onmessage` (as \`{ data, timeStamp }\`), synchronously, without the browser's network stack. Every
   * contender runs its callbacks synchronously, so all of them must have run when the loop ends.
   */
  async inject(n) {
    const frames = new Array(n);
    for (let i = 0; i < n; i++) frames[i] = eventFrame(S, cursor + i);
    cursor += n;
    const ws = sockets[0];
    const handler = ws.onmessage;
    const start = delivered;
    const wrongBefore = wrong;
    const t0 = performance.now();
    // As a socket's MessageEvent, with its `data` and the `timeStamp` every DOM event carries.
    for (let i = 0; i < n; i++) handler.call(ws, { data: frames[i], timeStamp: t0 });
    const ms = performance.now() - t0;
    const r = await fetch(`/skip?run=${run}&n=${n}`); // keep the server's cursor in step
    if (!r.ok) throw new Error(await r.text());
    return { n, ms, callbacks: delivered - start, expected: n * S.perEvent, wrong: wrong - wrongBefore };
  },

  /** `count` round trips: one event, the ack sent from the callback that completes it. */
  async pings(count) {
    const start = delivered;
    mark = delivered + S.perEvent;
    onMark = () => {
      ctl.send("a");
      mark += S.perEvent;
    };
    const result = new Promise((ok) => (ctl.onmessage = (m) => ok(JSON.parse(m.data))));
    ctl.send(JSON.stringify({ cmd: "pings", count }));
    cursor += count;
    const { rtts } = await result;
    mark = Infinity;
    return { rtts, callbacks: delivered - start, expected: count * S.perEvent };
  },

  /**
   * Checks that every subscription got exactly the events meant for it, from the first `events`
   * events of the stream (providers only; the raw ceiling has a single callback).
   */
  verify(events) {
    if (!perSub) return { checked: false, wrong };
    const expected = new Uint32Array(S.subs.length);
    const byChannel = new Map();
    const byId = new Map();
    S.subs.forEach((spec, i) => {
      if (spec.id === undefined) {
        if (!byChannel.has(spec.channel)) byChannel.set(spec.channel, []);
        byChannel.get(spec.channel).push(i);
      } else byId.set(`${spec.channel}#${spec.id}`, i);
    });
    const c = S.channels.length;
    for (let i = 0; i < events; i++) {
      const channel = S.channels[i % c];
      for (const s of byChannel.get(channel) ?? []) expected[s]++;
      const s = byId.get(`${channel}#${S.idOf(i)}`);
      if (s !== undefined) expected[s]++;
    }
    let mismatched = 0;
    for (let i = 0; i < expected.length; i++) if (expected[i] !== perSub[i]) mismatched++;
    return { checked: true, wrong, mismatched, subs: expected.length };
  },
};
window.benchReady = true;
