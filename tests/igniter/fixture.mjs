// What the two Igniter.js test servers share (server.mjs, the fixture that registers any channel, and
// stock-server.mjs, an app as Igniter's users write it): flag reading, the in-memory store adapter,
// CORS headers and reading a request body for the node:http bridge.

/** The value after `--name` on the command line. */
export function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

// Igniter only instantiates `igniter.realtime` (IgniterRealtimeService) when a store adapter is
// configured with `.store(...)`. In 0.3.40 the realtime service keeps the store "reserved for future
// use": SSE fan-out is purely in-process (static maps in the internal SSEProcessor). So a tiny
// in-memory store is enough; no Redis is needed.
export function createMemoryStore() {
  const kv = new Map();
  const subs = new Map();
  return {
    client: null,
    async get(key) { return kv.has(key) ? kv.get(key) : null; },
    async set(key, value) { kv.set(key, value); },
    async delete(key) { kv.delete(key); },
    async has(key) { return kv.has(key); },
    async increment(key) { const n = (Number(kv.get(key)) || 0) + 1; kv.set(key, n); return n; },
    async expire() {},
    async publish(channel, message) { for (const cb of subs.get(channel) ?? []) cb(message); },
    async subscribe(channel, cb) { if (!subs.has(channel)) subs.set(channel, new Set()); subs.get(channel).add(cb); },
    async unsubscribe(channel, cb) { if (cb) subs.get(channel)?.delete(cb); else subs.delete(channel); },
  };
}

/** Browsers on another origin (the wasm-bindgen test runner's page) may read the streams. */
export const CORS = {
  "access-control-allow-origin": "*",
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "*",
  "access-control-max-age": "600",
};

/** The whole body of a node:http request. */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
