// node --test tests/js/   (no build needed: pkg-template/helpers.js, the pure helpers of the JS entry)
//
// What index.js derives and decides without wasm: the relays' SSE, ticket and publish URLs; the size of a
// frame in UTF-8 bytes (`maxFrameBytes`, as the relay counts); TanStack Query's key matching
// (`partialMatchKey`, `isRevalidated`), checked on TanStack's own test cases and, when the demo's
// dependencies are installed (`make www`), against TanStack's own `partialMatchKey` and a real QueryClient's
// `invalidateQueries`, which `useRevalidation` calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, endpoints, isRevalidated, partialMatchKey, sibling, utf8Bytes } from "../../pkg-template/helpers.js";

test("describe: what a wrong value was, in words (undefined and null by name)", () => {
  assert.equal(describe(undefined), "undefined");
  assert.equal(describe(null), "null");
  assert.equal(describe([1]), "an array");
  assert.equal(describe("x".repeat(100)), 'a string of 100 characters ("' + "x".repeat(40) + '…")');
  assert.equal(describe(() => {}), "a function");
  assert.equal(describe(Object.create(null)), "an object");
  assert.equal(describe(3), "number 3");
});

test("sibling: the endpoint next to the URL's last path segment, over http(s), without the query", () => {
  const cases = [
    ["ws://127.0.0.1:8787/ws", "sse", "http://127.0.0.1:8787/sse"],
    ["wss://relay.example/ws", "publish", "https://relay.example/publish"],
    ["wss://relay.example/live/ws?token=x", "sse", "https://relay.example/live/sse"],
    ["ws://h/a/b/", "publish", "http://h/a/b/publish"],
    ["http://h/sse", "publish", "http://h/publish"],
    ["https://h:8443/x/sse#frag", "publish", "https://h:8443/x/publish#frag"],
  ];
  for (const [url, endpoint, want] of cases) assert.equal(sibling(url, endpoint), want, `${url} ${endpoint}`);
});

test("endpoints: the ticket URL (POST /sse/ticket) next to the stream, whatever its query, fragment or trailing slashes", () => {
  const cases = [
    ["http://h/sse", "http://h/sse/ticket"],
    ["http://h/sse/", "http://h/sse/ticket"],
    ["http://h/sse//?a=1#b", "http://h/sse/ticket"],
    ["https://h/live/sse?channels=posts", "https://h/live/sse/ticket"],
    ["https://h/sse#x?y", "https://h/sse/ticket"],
  ];
  for (const [sseUrl, want] of cases) {
    assert.deepEqual(endpoints({ url: "ws://other/ws", sseUrl }).ticketUrl, [want], sseUrl);
    assert.deepEqual(endpoints({ url: sseUrl, transport: "sse" }).ticketUrl, [want], `${sseUrl} as the url`);
  }
});

test("endpoints: derived from each url unless given, one per url, copies of the user's arrays", () => {
  assert.deepEqual(endpoints({ url: "ws://h/ws" }), {
    transport: "websocket",
    sseUrl: ["http://h/sse"],
    publishUrl: ["http://h/publish"],
    ticketUrl: ["http://h/sse/ticket"],
  });
  // Over SSE the url is the stream itself.
  assert.deepEqual(endpoints({ url: ["http://a/sse?x=1", "http://b/live/sse"], transport: "sse" }), {
    transport: "sse",
    sseUrl: ["http://a/sse?x=1", "http://b/live/sse"],
    publishUrl: ["http://a/publish", "http://b/live/publish"],
    ticketUrl: ["http://a/sse/ticket", "http://b/live/sse/ticket"],
  });
  const sseUrl = ["https://s/stream"];
  const publishUrl = ["https://p/pub"];
  const given = endpoints({ url: "wss://h/ws", transport: "auto", sseUrl, publishUrl, scopes: ["user:42", "a b"], flavor: "igniter" });
  assert.deepEqual(given, {
    transport: "auto",
    sseUrl: ["https://s/stream"],
    publishUrl: ["https://p/pub"],
    ticketUrl: ["https://s/stream/ticket"],
    scopeQuery: "scopes=user%3A42,a%20b",
    flavor: "igniter",
  });
  sseUrl.push("changed later");
  assert.equal(given.sseUrl.length, 1, "a copy");
  assert.equal(endpoints({ url: "ws://h/ws", scopes: [] }).scopeQuery, undefined);
});

test("utf8Bytes: UTF-8 bytes as a WebSocket sends them and the relay counts them, not UTF-16 units", () => {
  const enc = (s) => new TextEncoder().encode(s).length;
  const texts = ["", "a", "é", "€", "😀", "\ud800", "a\udc00b", "x".repeat(1000), "é".repeat(400), "€😀é"];
  for (const text of texts) assert.equal(utf8Bytes(text), enc(text), JSON.stringify(text));
  assert.equal(utf8Bytes("é".repeat(400)), 800, "400 units, 800 bytes");
  assert.equal(utf8Bytes("😀"), 4, "a surrogate pair: 2 units, 4 bytes");
  assert.equal(utf8Bytes("\ud800"), 3, "a lone surrogate is sent as U+FFFD");
  assert.equal(utf8Bytes("ab", "€", "😀"), 9, "several texts count together");
  assert.equal(utf8Bytes(), 0);
});

// TanStack Query's own cases for partialMatchKey (packages/query-core/src/__tests__/utils.test.tsx).
const tanstackCases = [
  ["a includes b", [{ a: { b: "b" }, c: "c", d: [{ d: "d " }] }], [{ a: { b: "b" }, c: "c", d: [] }], true],
  ["a does not include b", [{ a: { b: "b" }, c: "c", d: [] }], [{ a: { b: "b" }, c: "c", d: [{ d: "d " }] }], false],
  ["array a includes array b", [1, 2, 3], [1, 2], true],
  ["a is null and b is not", [null], [{ a: { b: "b" }, c: "c", d: [{ d: "d " }] }], false],
  ["a contains null and b is not", [{ a: null, c: "c", d: [] }], [{ a: { b: "b" }, c: "c", d: [{ d: "d " }] }], false],
  ["b is null and a is not", [{ a: { b: "b" }, c: "c", d: [] }], [null], false],
  ["b contains null and a is not", [{ a: { b: "b" }, c: "c", d: [] }], [{ a: null, c: "c", d: [{ d: "d " }] }], false],
];

// What JSON.stringify comparison got wrong, and the rest of the rule.
const moreCases = [
  ["key order does not matter", ["posts", { page: 1, sort: "id" }], ["posts", { sort: "id", page: 1 }], true],
  ["a partial object matches", ["posts", "list", { page: 1, sort: "id" }], ["posts", "list", { page: 1 }], true],
  ["a longer key does not", ["posts"], ["posts", "list"], false],
  ["the empty key matches every key", ["posts", 1], [], true],
  ["types must agree", ["posts", 1], ["posts", "1"], false],
  ["an element of the key past the prefix", ["posts", "list"], ["list"], false],
  ["an empty object matches any object", ["posts", { page: 1 }], ["posts", {}], true],
  ["but not a number", ["posts", 1], ["posts", {}], false],
  ["undefined properties of the key match missing ones", ["posts", { page: 1 }], ["posts", { page: 1, q: undefined }], true],
];

test("partialMatchKey: TanStack Query's own cases, and the rest of its rule", () => {
  for (const [name, a, b, want] of [...tanstackCases, ...moreCases]) {
    assert.equal(partialMatchKey(a, b), want, name);
  }
});

test("isRevalidated: a query key one of the keys matches (partialMatchKey), null matches all", () => {
  for (const [name, queryKey, key, want] of [...tanstackCases, ...moreCases]) {
    assert.equal(isRevalidated([key], queryKey), want, name);
    assert.equal(isRevalidated([["nothing", "else"], key], queryKey), want, `${name}, second of two keys`);
  }
  assert.equal(isRevalidated(null, ["anything"]), true);
  assert.equal(isRevalidated([], ["anything"]), false);
  assert.throws(() => isRevalidated("posts", ["posts"]), /`keys` must be an array of keys/);
  assert.throws(() => isRevalidated([null], ["posts"]), /`keys\[0\]` must be an array/);
  assert.throws(() => isRevalidated([["posts"]], "posts"), /`queryKey` must be an array/);
});

// TanStack Query as the demo installs it (www/package.json): its own partialMatchKey, and a QueryClient.
const queryCore = fileURLToPath(new URL("../../www/node_modules/@tanstack/query-core/build/modern/index.js", import.meta.url));
const noQueryCore = existsSync(queryCore) ? false : "TanStack Query is not installed (www/node_modules: make www)";

/** Keys built from a small alphabet, so that many pairs match. */
function randomKey(random, depth = 0) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const value = () => {
    const kind = depth < 2 ? pick(["s", "n", "o", "a", "null", "b"]) : pick(["s", "n", "null", "b"]);
    if (kind === "s") return pick(["posts", "list", "show", "1"]);
    if (kind === "n") return pick([1, 2]);
    if (kind === "null") return null;
    if (kind === "b") return pick([true, false]);
    if (kind === "a") return randomKey(random, depth + 1);
    const o = {};
    for (const k of ["page", "sort", "q"]) if (random() < 0.5) o[k] = depth < 1 && random() < 0.3 ? randomKey(random, depth + 1) : pick([1, "id", null]);
    return o;
  };
  const key = [];
  const length = Math.floor(random() * 4);
  for (let i = 0; i < length; i++) key.push(value());
  return key;
}

function seeded(seed) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

test("partialMatchKey agrees with TanStack Query's on 20,000 random pairs", { skip: noQueryCore }, async () => {
  const tanstack = await import(queryCore);
  for (const [name, a, b, want] of [...tanstackCases, ...moreCases]) {
    assert.equal(tanstack.partialMatchKey(a, b), want, `TanStack: ${name}`);
  }
  const random = seeded(27);
  let matched = 0;
  for (let i = 0; i < 20_000; i++) {
    const a = randomKey(random);
    const b = random() < 0.5 ? a.slice(0, Math.floor(random() * (a.length + 1))) : randomKey(random);
    const want = tanstack.partialMatchKey(a, b);
    matched += want ? 1 : 0;
    assert.equal(partialMatchKey(a, b), want, `${JSON.stringify(a)} / ${JSON.stringify(b)}`);
  }
  assert.ok(matched > 2000 && matched < 18_000, `both outcomes are exercised (${matched} matched)`);
});

test("isRevalidated picks the queries useRevalidation's invalidateQueries invalidates", { skip: noQueryCore }, async () => {
  const { QueryClient } = await import(queryCore);
  const random = seeded(2027);
  for (let round = 0; round < 200; round++) {
    const client = new QueryClient();
    const queryKeys = Array.from({ length: 8 }, () => randomKey(random));
    for (const queryKey of queryKeys) client.setQueryData(queryKey, 0);
    const keys = Array.from({ length: 1 + Math.floor(random() * 2) }, () =>
      random() < 0.5 ? queryKeys[Math.floor(random() * queryKeys.length)].slice(0, 1 + Math.floor(random() * 2)) : randomKey(random),
    );
    // As useRevalidation does.
    for (const key of keys) await client.invalidateQueries({ queryKey: key, refetchType: "none" });
    for (const query of client.getQueryCache().getAll()) {
      assert.equal(isRevalidated(keys, query.queryKey), query.state.isInvalidated, `${JSON.stringify(keys)} / ${JSON.stringify(query.queryKey)}`);
    }
    client.clear();
  }
});
