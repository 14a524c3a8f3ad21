// Misuse of wasm-live-provider/server (pkg/server.js): each bad option or argument is a TypeError whose
// message names it, thrown by createRelayClient at once, or rejected by publish / revalidate / mintToken
// before any request is made (a `fetch` that fails the test if called proves it).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { root, serverModule, randomSecret } from "./peers.mjs";

const { createRelayClient, RelayError } = await import(serverModule);
const secret = randomSecret();
const url = "http://127.0.0.1:9";
const noFetch = () => {
  throw new Error("no request should be made");
};

test("createRelayClient: bad options are TypeErrors naming the option", () => {
  const cases = [
    [undefined, /`options` must be an object/],
    ["http://x", /`options` must be an object, not the string/],
    [{}, /`url` must be the relay's http\(s\) URL/],
    [{ url: 5 }, /`url`/],
    [{ url: "not a url" }, /`url` is not a valid URL/],
    [{ url: "wss://relay.example.com/ws" }, /`url` must be the relay's http\(s\) URL \(e\.g\. https:\/\/relay\.example\.com\), not its WebSocket URL/],
    [{ url: "ftp://relay" }, /`url` must be an http: or https: URL/],
    [{ url: "http://relay/?a=1" }, /without a query/],
    [{ url, apiKey: "" }, /`apiKey` must be a non-empty string/],
    [{ url, apiKey: 42 }, /`apiKey`/],
    [{ url, jwtSecret: "short" }, /`jwtSecret` is 5 bytes long: the relay requires at least 32/],
    [{ url, jwtSecret: secret, privateKey: "x", alg: "RS256" }, /either `jwtSecret` .* or `privateKey`/],
    [{ url, jwtSecret: secret, alg: "RS256" }, /`alg` is "RS256", but a `jwtSecret` signs HS256/],
    [{ url, privateKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----" }, /`alg` must be "RS256" or "ES256" with a `privateKey`, not missing/],
    [{ url, privateKey: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", alg: "HS256" }, /`alg` must be "RS256" or "ES256"/],
    [{ url, privateKey: "not pem", alg: "RS256" }, /`privateKey` must be a PEM private key/],
    [{ url, privateKey: Buffer.from("x"), alg: "RS256" }, /`privateKey` must be a PEM string/],
    [{ url, privateKey: readFileSync(resolve(root, "relay/tests/keys/rsa-public.pem"), "utf8"), alg: "RS256" }, /`privateKey` is a public key: give the private key/],
    [{ url, privateKey: "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----", alg: "RS256" }, /`privateKey` is encrypted/],
    [{ url, privateKey: "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----", alg: "RS256" }, /an EC key .* use alg "ES256"/],
    [{ url, privateKey: "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----", alg: "RS256" }, /`privateKey`: the PEM block is not valid base64/],
    [{ url, alg: "ES256" }, /`alg` "ES256" was given without a key/],
    [{ url, timeoutMs: 0 }, /`timeoutMs` must be a finite number ≥ 1, not 0/],
    [{ url, timeoutMs: "5000" }, /`timeoutMs`/],
    [{ url, retries: -1 }, /`retries` must be a whole number ≥ 0, not -1/],
    [{ url, retries: 1.5 }, /`retries`/],
    [{ url, retryDelayMs: Number.NaN }, /`retryDelayMs`/],
    [{ url, maxRetryDelayMs: -5 }, /`maxRetryDelayMs`/],
    [{ url, fetch: "fetch" }, /`fetch` must be a function/],
    [{ url, privateKeyPem: "x" }, /unknown option `privateKeyPem`/],
    [{ url, timeout: 5 }, /unknown option `timeout`/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => createRelayClient(options), (e) => e instanceof TypeError && message.test(e.message), `${JSON.stringify(options)} → ${message}`);
  }
  // and good ones
  assert.equal(typeof createRelayClient({ url }).publish, "function");
  assert.equal(typeof createRelayClient({ url: new URL("https://relay.example.com/live"), jwtSecret: secret, alg: "HS256", retries: 0 }).mintToken, "function");
});

test("publish: bad events are TypeErrors naming the field, before any request", async () => {
  const c = createRelayClient({ url, fetch: noFetch });
  const cases = [
    [undefined, /`event` must be an object/],
    [{ type: "t" }, /`channel` must be a non-empty string/],
    [{ channel: "", type: "t" }, /`channel` must be a non-empty string, not an empty string/],
    [{ channel: "c" }, /`type` must be a non-empty string/],
    [{ channel: "c", type: "t", meta: [] }, /`meta` must be an object, not an array/],
    [{ channel: "c", type: "t", date: new Date("nope") }, /`date` is an invalid Date/],
    [{ channel: "c", type: "t", date: {} }, /`date` must be a Date, a number of ms since 1970 or an RFC 3339 string/],
    [{ channel: "c", type: "t", scopes: "s" }, /`scopes` must be an array of strings/],
    [{ channel: "c", type: "t", scopes: ["a", 1] }, /`scopes\[1\]` must be a string/],
    [{ channel: "c", type: "t", key: "" }, /`key` must be a non-empty string/],
    [{ channel: "c", type: "t", key: "é".repeat(65) }, /`key` is 130 bytes long, over the relay's limit of 128/],
    [{ channel: "c", type: "t", payload: { n: 1n } }, /`payload` or `meta` cannot be written as JSON/],
  ];
  for (const [event, message] of cases) {
    await assert.rejects(c.publish(event), (e) => e instanceof TypeError && message.test(e.message), `${String(event && JSON.stringify(event, (k, v) => (typeof v === "bigint" ? "1n" : v)))} → ${message}`);
  }
});

test("revalidate and mintToken: bad arguments are TypeErrors naming them", async () => {
  const c = createRelayClient({ url, fetch: noFetch, jwtSecret: secret });
  for (const [keys, options, message] of [
    [undefined, undefined, /`keys` must be a non-empty array/],
    [[], undefined, /not an empty array/],
    [[5], undefined, /`keys\[0\]` must be a query key/],
    [["a"], "x", /`options` must be an object/],
    [["a"], { scopes: [1] }, /`scopes\[0\]`/],
  ]) {
    await assert.rejects(c.revalidate(keys, options), (e) => e instanceof TypeError && message.test(e.message), String(message));
  }
  for (const [claims, message] of [
    [undefined, /`claims` must be an object/],
    [{ channels: [] }, /`sub` must be a non-empty string/],
    [{ sub: "u" }, /`channels` must be an array of strings/],
    [{ sub: "u", channels: [1] }, /`channels\[0\]` must be a string/],
    [{ sub: "u", channels: [], publish: "x" }, /`publish` must be an array/],
    [{ sub: "u", channels: [], expiresIn: 0 }, /`expiresIn` must be a whole number of seconds ≥ 1/],
    [{ sub: "u", channels: [], expiresIn: 1.5 }, /`expiresIn`/],
    [{ sub: "u", channels: [], expiresIn: "5 minutes" }, /`expiresIn` must be a number of seconds or a string like "30s"/],
    [{ sub: "u", channels: [], info: "x" }, /`info` must be an object/],
    [{ sub: "u", channels: [], aud: 5 }, /`aud`/],
    [{ sub: "u", channels: [], iss: "" }, /`iss`/],
    [{ sub: "u", channels: [], exp: 5 }, /unknown field `exp`/],
  ]) {
    await assert.rejects(c.mintToken(claims), (e) => e instanceof TypeError && message.test(e.message), String(message));
  }
  const unsigned = createRelayClient({ url, apiKey: "k".repeat(20) });
  await assert.rejects(unsigned.mintToken({ sub: "u", channels: [] }), /mintToken needs a signing key: give `jwtSecret`/);
});

test("expiresIn strings: 30s, 5m, 2h, 1d", async () => {
  const c = createRelayClient({ url, jwtSecret: secret });
  for (const [given, seconds] of [["30s", 30], ["5m", 300], ["2h", 7200], ["1d", 86400], [45, 45]]) {
    const claims = JSON.parse(Buffer.from((await c.mintToken({ sub: "u", channels: [], expiresIn: given })).split(".")[1], "base64url"));
    assert.equal(claims.exp - claims.iat, seconds, String(given));
  }
});

test("RelayError: an Error with status, code, retryable, attempts, key and cause", () => {
  const cause = new Error("below");
  const e = new RelayError("m", { status: 503, code: "unavailable", retryable: true, attempts: 2, key: "k", cause });
  assert.ok(e instanceof Error);
  assert.equal(e.name, "RelayError");
  assert.deepEqual([e.message, e.status, e.code, e.retryable, e.attempts, e.key, e.cause], ["m", 503, "unavailable", true, 2, "k", cause]);
});

test("an answer that is not the relay's: bad_response and redirect, not retried", async () => {
  let calls = 0;
  const answering = (response) => createRelayClient({ url, retryDelayMs: 1, fetch: async () => (calls++, response()) });
  await assert.rejects(answering(() => new Response("<html>hi</html>", { status: 200 })).publish({ channel: "c", type: "t" }), (e) => e.code === "bad_response" && e.attempts === 1 && /without a `seq`/.test(e.message));
  await assert.rejects(
    answering(() => new Response(null, { status: 308, headers: { location: "https://elsewhere/publish" } })).publish({ channel: "c", type: "t" }),
    (e) => e.code === "redirect" && e.status === 308 && /https:\/\/elsewhere\/publish/.test(e.message),
  );
  assert.equal(calls, 2);
  // A Retry-After given as an HTTP date is honoured too (here: already past, so at once).
  calls = 0;
  const answers = [new Response("{}", { status: 503, headers: { "retry-after": new Date(Date.now() - 1000).toUTCString() } }), Response.json({ channel: "c", seq: 9 })];
  const r = await createRelayClient({ url, fetch: async () => (calls++, answers.shift()) }).publish({ channel: "c", type: "t" });
  assert.deepEqual(r, { channel: "c", seq: 9, attempts: 2 });
});

test("a base URL with a path prefix is kept: POST <prefix>/publish", async () => {
  const urls = [];
  const c = createRelayClient({ url: "https://example.com/live", fetch: async (u) => (urls.push(u), Response.json({ channel: "$revalidate", seq: 1 })) });
  await c.publish({ channel: "c", type: "t" });
  await c.revalidate(["k"]);
  assert.deepEqual(urls, ["https://example.com/live/publish", "https://example.com/live/revalidate"]);
});
