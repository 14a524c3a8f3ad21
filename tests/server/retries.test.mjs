// publish and revalidate of wasm-live-provider/server (pkg/server.js) through a loopback HTTP proxy in
// front of a real relay (--jwt-secret, --api-key). The proxy fails the first requests (503, 429 with
// Retry-After, 408, a 502 page, a reset connection, a stall, a 504 after forwarding: published but the
// answer lost) and then forwards. Each publish puts exactly one event on its channel (one seq, seen by
// a subscriber and in /stats/channels), every attempt carries the same idempotency key, and `attempts`
// counts them. 400, 401, 403 and 413 (the relay's own answers) are not retried.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { serverModule, startRelay, startProxy, subscribe, randomSecret, randomApiKey, sleep } from "./peers.mjs";

const { createRelayClient, RelayError } = await import(serverModule);

const secret = randomSecret();
const apiKey = randomApiKey();
let relay, proxy, minter;
let n = 0;
const channel = () => `resources/retry-${++n}`;

before(async () => {
  relay = await startRelay(["--jwt-secret", secret, "--api-key", apiKey, "--max-frame-bytes", "65536"]);
  proxy = await startProxy(relay.http);
  minter = createRelayClient({ url: relay.http, jwtSecret: secret });
});

after(async () => {
  await proxy?.close();
  await relay?.stop();
});

/** A client through the proxy; short backoff unless given. */
const client = (options = {}) => createRelayClient({ url: proxy.url, apiKey, retryDelayMs: 20, ...options });

/** A subscriber of `name` on the relay itself. */
async function watch(name) {
  return subscribe(relay.ws, await minter.mintToken({ sub: "watcher", channels: ["*"] }), name);
}

/** The relay's last seq of a channel (GET /stats/channels with the API key: channels with a subscriber). */
async function lastSeq(name) {
  const stats = await (await fetch(`${relay.http}/stats/channels`, { headers: { authorization: `Bearer ${apiKey}` } })).json();
  assert.ok(stats[name], `${name} is in /stats/channels (it has a subscriber): ${JSON.stringify(stats)}`);
  return stats[name].last_seq;
}

/** Waits until the subscriber has `count` events (or 2 s), then a little more for any duplicate. */
async function settle(sub, count) {
  for (let i = 0; i < 100 && sub.events.length < count; i++) await sleep(20);
  await sleep(200);
  return sub.events;
}

/** The requests the proxy saw since `from`. */
const seen = (from) => proxy.requests.slice(from);

/**
 * Runs `plan` through the proxy for one publish; asserts exactly one event with the answered seq, the
 * same key on every attempt, and `attempts` attempts. Returns the result and the proxy's requests.
 */
async function publishesOnce(plan, attempts, options) {
  const name = channel();
  const sub = await watch(name);
  const from = proxy.requests.length;
  proxy.plan = [...plan];
  const result = await client(options).publish({ channel: name, type: "updated", payload: { ids: [7] } });
  const events = await settle(sub, 1);
  const relaySeq = await lastSeq(name);
  sub.close();
  const requests = seen(from);
  assert.equal(result.attempts, attempts, `attempts (proxy saw ${requests.map((r) => JSON.stringify(r.action)).join(", ")})`);
  assert.equal(requests.length, attempts, "one request per attempt");
  assert.equal(new Set(requests.map((r) => r.body.key)).size, 1, `one idempotency key for every attempt: ${requests.map((r) => r.body.key)}`);
  assert.match(requests[0].body.key, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, "the default key is a random UUID");
  assert.ok(requests.every((r) => r.auth === `Bearer ${apiKey}`), "the API key on every attempt");
  assert.equal(result.channel, name);
  assert.deepEqual(events.map((e) => e.seq), [result.seq], "exactly one event, with the seq publish resolved to");
  assert.equal(relaySeq, result.seq, "the relay's last seq of the channel (GET /stats/channels) is that event's");
  return { result, requests };
}

const unavailable = { status: 503, headers: { "retry-after": "0" }, body: { error: { code: "unavailable", message: "the test proxy: Redis is away" } } };

test("503 twice, then the relay: one event, 3 attempts (default backoff)", async () => {
  const { requests } = await publishesOnce([{ status: 503, body: { error: { code: "unavailable", message: "proxy" } } }, { status: 503 }], 3, { retryDelayMs: 200 });
  // full jitter: each wait is a random time below 200 ms, then 400 ms
  assert.ok(requests[1].at - requests[0].at < 400 && requests[2].at - requests[1].at < 600, "backoff within its bounds");
});

test("429 with Retry-After: 1 waits a second before retrying: one event, 2 attempts", async () => {
  const limited = { status: 429, headers: { "retry-after": "1" }, body: { error: { code: "rate_limited", message: "the test proxy: slow down" } } };
  const { requests } = await publishesOnce([limited], 2);
  const waited = requests[1].at - requests[0].at;
  assert.ok(waited >= 990, `waited ${waited.toFixed(0)} ms before the second attempt (Retry-After: 1)`);
  assert.ok(waited < 2000, `and not much longer: ${waited.toFixed(0)} ms`);
});

test("a reset connection (nothing forwarded) is retried: one event, 2 attempts", async () => {
  await publishesOnce(["reset"], 2);
});

test("408, a 502 page and a 500 are retried: one event, 4 attempts", async () => {
  await publishesOnce([{ status: 408, body: { error: { code: "bad_frame", message: "slow" } } }, { status: 502, headers: { "content-type": "text/html" }, body: "<html>Bad Gateway</html>" }, { status: 500, body: "oops" }], 4);
});

test("a 504 after the relay published is retried with the same key: one event, 2 attempts", async () => {
  const { requests } = await publishesOnce(["forward-then-504"], 2);
  assert.equal(requests[0].upstream.status, 200, "the first attempt was published");
  assert.equal(JSON.parse(requests[0].upstream.body).seq, JSON.parse(requests[1].upstream.body).seq, "the relay answered the resend with the first seq");
});

test("a reset after the relay published (the answer lost) is retried with the same key: one event", async () => {
  const { requests } = await publishesOnce(["forward-then-reset", "forward-then-504"], 3);
  assert.equal(requests[0].upstream.status, 200);
});

test("a request that gets no answer within timeoutMs is retried: one event, 2 attempts", async () => {
  const started = performance.now();
  await publishesOnce(["stall"], 2, { timeoutMs: 300 });
  assert.ok(performance.now() - started >= 300, "waited for the timeout");
});

test("a given key is used as is, on every attempt", async () => {
  const name = channel();
  const sub = await watch(name);
  const from = proxy.requests.length;
  proxy.plan = [unavailable];
  const r = await client().publish({ channel: name, type: "created", key: "order-42-created" });
  assert.equal(r.attempts, 2);
  assert.deepEqual(seen(from).map((q) => q.body.key), ["order-42-created", "order-42-created"]);
  // the same key again: the relay answers the first seq, nothing new is published
  const again = await client().publish({ channel: name, type: "created", key: "order-42-created" });
  assert.equal(again.seq, r.seq);
  assert.equal(again.attempts, 1);
  assert.equal(await lastSeq(name), r.seq);
  assert.deepEqual((await settle(sub, 1)).map((e) => e.seq), [r.seq]);
  sub.close();
});

test("the body carries the event's fields as the relay reads them", async () => {
  const name = channel();
  const sub = await watch(name);
  const from = proxy.requests.length;
  const date = new Date("2026-05-01T12:00:00Z");
  await client().publish({ channel: name, type: "updated", payload: { ids: [1, "b"], x: { y: null } }, meta: { dataProviderName: "default" }, date });
  const [event] = await settle(sub, 1);
  sub.close();
  assert.equal(seen(from)[0].body.date, date.getTime());
  assert.equal(event.type, "updated");
  assert.deepEqual(event.payload, { ids: [1, "b"], x: { y: null } });
  assert.deepEqual(event.meta, { dataProviderName: "default" });
  assert.equal(event.date, date.getTime());
});

/** Publishes through the proxy and returns the RelayError it rejects with, and the proxy's requests. */
async function refused(publishing, plan = []) {
  const from = proxy.requests.length;
  proxy.plan = plan;
  let error;
  await assert.rejects(publishing, (e) => {
    error = e;
    return e instanceof RelayError;
  });
  return { error, requests: seen(from) };
}

test("400, 401, 403 and 413 from the relay are not retried (attempts 1)", async () => {
  const cases = [
    ["400", () => client().publish({ channel: "$reserved", type: "created" }), 400, "bad_channel"],
    ["400 bad_event", () => client().publish({ channel: channel(), type: "created", payload: { ids: "nope" } }), 400, "bad_event"],
    ["401", () => client({ apiKey: "not-the-relays-key-123" }).publish({ channel: channel(), type: "created" }), 401, "unauthorized"],
    [
      "403",
      async () => client({ apiKey: await minter.mintToken({ sub: "w", channels: [], publish: ["elsewhere/*"] }) }).publish({ channel: channel(), type: "created" }),
      403,
      "forbidden",
    ],
    ["413", () => client().publish({ channel: channel(), type: "created", payload: { blob: "x".repeat(100_000) } }), 413, "too_large"],
  ];
  for (const [what, publishing, status, code] of cases) {
    const { error, requests } = await refused(publishing);
    assert.equal(error.status, status, `${what}: ${error.message}`);
    assert.equal(error.code, code, what);
    assert.equal(error.retryable, false, what);
    assert.equal(error.attempts, 1, what);
    assert.equal(requests.length, 1, `${what}: one request`);
    assert.equal(requests[0].upstream?.status, status, `${what}: the relay's own answer`);
    assert.match(error.message, new RegExp(`${status} ${code}`), what);
    assert.equal(typeof error.key, "string", `${what}: the key is on the error`);
  }
});

test("still failing after the retries: a retryable RelayError with the attempts and the key, nothing published", async () => {
  const name = channel();
  const sub = await watch(name);
  const from = proxy.requests.length;
  const { error } = await refused(() => client({ retries: 2 }).publish({ channel: name, type: "created" }), [unavailable, unavailable, unavailable]);
  assert.equal(error.status, 503);
  assert.equal(error.code, "unavailable");
  assert.equal(error.retryable, true);
  assert.equal(error.attempts, 3);
  assert.equal(error.key, seen(from)[0].body.key);
  assert.match(error.message, /gave up after 3 attempts; resending with key "[^"]+" is safe/);
  assert.equal(await lastSeq(name), 0);
  assert.deepEqual(await settle(sub, 0), []);
  sub.close();
});

test("a network error after the retries has no status, code network, and the cause", async () => {
  const from = proxy.requests.length;
  const { error } = await refused(() => client({ retries: 1 }).publish({ channel: channel(), type: "created" }), ["reset", "reset"]);
  assert.equal(seen(from).length, 2);
  assert.equal(error.status, undefined);
  assert.equal(error.code, "network");
  assert.equal(error.attempts, 2);
  assert.ok(error.cause instanceof Error, "the fetch error is the cause");
});

test("a Retry-After longer than maxRetryDelayMs is not waited for: the error says so at once", async () => {
  const from = proxy.requests.length;
  const started = performance.now();
  const tooLong = { status: 429, headers: { "retry-after": "120" }, body: { error: { code: "rate_limited", message: "later" } } };
  const { error } = await refused(() => client().publish({ channel: channel(), type: "created" }), [tooLong]);
  assert.ok(performance.now() - started < 1000);
  assert.equal(seen(from).length, 1);
  assert.equal(error.code, "rate_limited");
  assert.equal(error.retryable, true);
  assert.equal(error.attempts, 1);
  assert.match(error.message, /asked to wait 120 s .*maxRetryDelayMs/);
});

test("retries: 0 makes one attempt", async () => {
  const { error, requests } = await refused(() => client({ retries: 0 }).publish({ channel: channel(), type: "created" }), [unavailable]);
  assert.equal(requests.length, 1);
  assert.equal(error.attempts, 1);
});

test("revalidate: retried after a 503, one event on $revalidate with the keys and scopes", async () => {
  const sub = await watch("$revalidate");
  const before = sub.events.length;
  const from = proxy.requests.length;
  proxy.plan = [unavailable];
  const r = await client().revalidate([["posts"], "users", ["posts", 7, { page: 2 }]], { scopes: ["watcher-scope"] });
  assert.equal(r.channel, "$revalidate");
  assert.equal(r.attempts, 2);
  const requests = seen(from);
  assert.equal(requests.length, 2);
  assert.deepEqual(requests[1].body, { keys: [["posts"], "users", ["posts", 7, { page: 2 }]], scopes: ["watcher-scope"] });
  await sleep(300);
  // The watcher's token has no scopes: the scoped revalidation reaches it as a skip, not an event.
  assert.equal(sub.events.length, before, "a scoped revalidation is not delivered to a connection without the scope");
  const unscoped = await client().revalidate(["users"]);
  assert.equal(unscoped.seq, r.seq + 1);
  const events = await settle(sub, before + 1);
  sub.close();
  assert.deepEqual(events.slice(before).map((e) => [e.seq, e.type, e.payload]), [[unscoped.seq, "revalidate", { keys: [["users"]] }]]);
});
