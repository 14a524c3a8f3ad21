// API misuse (issue 12, item 5): every function and method of the package's JS entry (pkg/index.js,
// as built by scripts/build-pkg.sh) called with wrong types, missing fields, huge inputs, twice, and
// after close(), in headless Chromium against a real live-relay. Each call either works or throws a
// TypeError / Error whose message names the field at fault; nothing is a wasm trap
// (`RuntimeError: unreachable`), nothing escapes into the page, a double unsubscribe is a no-op, and
// the clients still work afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, cpSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

let work, relay, browser, base;

before(async () => {
  assert.ok(existsSync(join(root, "pkg/index.js")), "pkg/ is built (bash scripts/build-pkg.sh)");
  work = mkdtempSync(join(tmpdir(), "wlp-misuse-"));
  cpSync(join(root, "pkg"), work, { recursive: true });
  writeFileSync(join(work, "misuse.html"), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>misuse</title>');
  ({ child: relay, url: base } = await startRelay(["--static-dir", work]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs in the page: every misuse, with what it threw (or returned). */
async function misuse(url) {
  const m = await import("/index.js");
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (cond, ms = 5000) => {
    const start = Date.now();
    while (!cond()) {
      if (Date.now() - start > ms) return false;
      await sleep(10);
    }
    return true;
  };
  const out = {};
  const outcome = (e) => ({ threw: true, name: e?.name, ctor: e?.constructor?.name, message: String(e?.message ?? e) });
  const call = (name, fn) => {
    try {
      const value = fn();
      out[name] = { threw: false, type: typeof value };
      return value;
    } catch (e) {
      out[name] = outcome(e);
      return undefined;
    }
  };
  const settle = async (name, promise) => {
    try {
      await promise;
      out[name] = { threw: false, resolved: true };
    } catch (e) {
      out[name] = { ...outcome(e), rejected: true };
    }
  };
  const errors = [];
  const onError = (e) => errors.push(String(e?.message ?? e));
  const cb = () => {};
  const huge = "x".repeat(10_000_000);

  // Options, for each of the three constructors.
  const badOptions = {
    undefined: undefined,
    null: null,
    number: 5,
    string: url,
    urlMissing: {},
    urlNumber: { url: 5 },
    urlEmptyArray: { url: [] },
    urlArrayOfNumber: { url: [5] },
    urlArraySecondNull: { url: [url, null] },
    urlSparse: { url: new Array(1e9) },
    urlInvalid: { url: "not a url" },
    urlHttp: { url: "http://127.0.0.1/ws" },
    transport: { url, transport: "pigeon" },
    flavor: { url, flavor: "ably" },
    sseUrlWs: { url, sseUrl: "ws://127.0.0.1/sse" },
    sseUrlFewer: { url: [url, url], sseUrl: "http://127.0.0.1/sse" },
    sseUrlSecondNull: { url: [url, url], sseUrl: ["http://127.0.0.1/sse", null] },
    publishUrlFewer: { url: [url, url], publishUrl: ["http://127.0.0.1/publish"] },
    publishUrlMore: { url, publishUrl: ["http://127.0.0.1/publish", "http://127.0.0.1/publish"] },
    igniterOverWebSocket: { url, flavor: "igniter" },
    igniterToken: { url: "http://127.0.0.1/sse", transport: "sse", flavor: "igniter", token: "t" },
    backoffNegative: { url, backoffMinMs: -1 },
    backoffString: { url, backoffMinMs: "10" },
    backoffNaN: { url, backoffMaxMs: NaN },
    backoffHuge: { url, backoffMaxMs: 2 ** 31 },
    publishQueueInfinite: { url, publishQueue: Infinity },
    maxFrameBytesZero: { url, maxFrameBytes: 0 },
    maxFrameBytesNaN: { url, maxFrameBytes: NaN },
    maxFrameBytesString: { url, maxFrameBytes: "1" },
    onErrorNumber: { url, onError: 5 },
    onStateChangeString: { url, onStateChange: "f" },
    getTokenObject: { url, getToken: {} },
    tokenEmpty: { url, token: "" },
    tokenNumber: { url, token: 5 },
    tokenAndGetToken: { url, token: "t", getToken: () => "t" },
    scopesString: { url, scopes: "a" },
    scopesEmpty: { url, scopes: [""] },
    protocol: { url, protocol: "v2" },
    simpleSse: { url: "http://127.0.0.1/sse", transport: "sse", protocol: "simple" },
    simpleAuto: { url, transport: "auto", protocol: "simple" },
    simpleToken: { url, protocol: "simple", token: "t" },
    simpleGetToken: { url, protocol: "simple", getToken: () => "t" },
    simpleScopes: { url, protocol: "simple", scopes: ["a"] },
    coalesceNegative: { url, coalesceMs: -5 },
    urlHuge: { url: `${url}?${huge}` },
  };
  for (const [ctor, make] of Object.entries({ createLiveClient: m.createLiveClient, liveProvider: m.liveProvider, realtime: m.realtime })) {
    for (const [name, options] of Object.entries(badOptions)) {
      const made = call(`${ctor}.${name}`, () => make(options));
      made?.close();
    }
  }

  // The client's methods.
  const c = m.createLiveClient({ url, onError, backoffMinMs: 20, backoffMaxMs: 200 });
  call("subscribe.noArguments", () => c.subscribe());
  call("subscribe.channelNumber", () => c.subscribe(5, ["*"], undefined, cb));
  call("subscribe.channelEmpty", () => c.subscribe("", ["*"], undefined, cb));
  call("subscribe.channelHuge", () => c.subscribe(huge, ["*"], undefined, cb));
  call("subscribe.typesMissing", () => c.subscribe("ch", undefined, undefined, cb));
  call("subscribe.typesString", () => c.subscribe("ch", "*", undefined, cb));
  call("subscribe.typesNumbers", () => c.subscribe("ch", [1], undefined, cb));
  call("subscribe.typesHugeString", () => c.subscribe("ch", huge, undefined, cb));
  call("subscribe.typesNoPrototype", () => c.subscribe("ch", Object.create(null), undefined, cb));
  call("subscribe.callbackThrowingToString", () => c.subscribe("ch", ["*"], undefined, { toString() { throw new Error("no"); } }));
  call("subscribe.idsString", () => c.subscribe("ch", ["*"], "7", cb));
  call("subscribe.idsObject", () => c.subscribe("ch", ["*"], [{}], cb));
  call("subscribe.callbackMissing", () => c.subscribe("ch", ["*"]));
  call("subscribe.callbackString", () => c.subscribe("ch", ["*"], undefined, "f"));
  call("subscribe.optionsNumber", () => c.subscribe("ch", ["*"], undefined, cb, 5));
  call("subscribe.coalesceString", () => c.subscribe("ch", ["*"], undefined, cb, { coalesceMs: "1" }));
  call("publish.noArguments", () => c.publish());
  call("publish.string", () => c.publish("event"));
  call("publish.channelMissing", () => c.publish({ type: "updated" }));
  call("publish.channelHuge", () => c.publish({ channel: huge, type: "updated" }));
  call("publish.typeMissing", () => c.publish({ channel: "ch" }));
  call("publish.typeNumber", () => c.publish({ channel: "ch", type: 5 }));
  call("publish.payloadBigInt", () => c.publish({ channel: "ch", type: "updated", payload: { n: 1n } }));
  const cyclic = {};
  cyclic.self = cyclic;
  call("publish.payloadCyclic", () => c.publish({ channel: "ch", type: "updated", payload: cyclic }));
  call("publish.payloadFunction", () => c.publish({ channel: "ch", type: "updated", payload: () => 1 }));
  call("publish.payloadHuge", () => c.publish({ channel: "ch", type: "updated", payload: { blob: huge } }));
  call("publish.dateInvalid", () => c.publish({ channel: "ch", type: "updated", date: "not a date" }));
  call("publish.dateObject", () => c.publish({ channel: "ch", type: "updated", date: {} }));
  call("publish.metaString", () => c.publish({ channel: "ch", type: "updated", meta: "m" }));
  call("publish.metaArray", () => c.publish({ channel: "ch", type: "updated", meta: [1] }));
  call("onStateChange.number", () => c.onStateChange(5));
  call("onRevalidate.string", () => c.onRevalidate("f"));
  call("unsubscribe.garbage", () => [undefined, null, 5, "x", {}, () => {}].forEach((h) => c.unsubscribe(h)));

  // Huge but legal: a million ids, the subscription works.
  const million = Array.from({ length: 1_000_000 }, (_, i) => i);
  const got = [];
  const big = call("subscribe.millionIds", () => c.subscribe("misuse/ids", ["*"], million, (e) => got.push(e.payload.ids[0])));
  out.millionIdsSubscribed = await until(() => big?.state === "subscribed", 10_000);
  await settle("publish.toMillionIds", c.publish({ channel: "misuse/ids", type: "updated", payload: { ids: [999_999] } }));
  out.millionIdsDelivered = await until(() => got.length === 1);

  // Twice: unsubscribe (by handle and by calling it), close.
  const h = c.subscribe("misuse/twice", ["*"], undefined, cb);
  call("unsubscribe.first", () => c.unsubscribe(h));
  call("unsubscribe.second", () => c.unsubscribe(h));
  call("unsubscribe.handleCalledAfter", () => h());
  out.stateAfterUnsubscribe = h.state;
  const h2 = c.subscribe("misuse/twice", ["*"], undefined, cb);
  call("handle.first", () => h2());
  call("handle.second", () => h2());
  const stopState = c.onStateChange(cb);
  call("stopStateListener.twice", () => (stopState(), stopState()));
  const stopRevalidate = c.onRevalidate(cb);
  call("stopRevalidate.twice", () => (stopRevalidate(), stopRevalidate()));
  out.subscriptionCountBeforeClose = c.subscriptionCount;
  out.stillWorks = await until(() => c.state === "open");
  call("close.first", () => c.close());
  call("close.second", () => c.close());

  // After close().
  call("afterClose.subscribe", () => c.subscribe("ch", ["*"], undefined, cb));
  await settle("afterClose.publish", c.publish({ channel: "ch", type: "updated" }));
  call("afterClose.unsubscribe", () => c.unsubscribe(h));
  call("afterClose.onStateChange", () => c.onStateChange(cb));
  call("afterClose.onRevalidate", () => c.onRevalidate(cb));
  call("afterClose.stats", () => c.stats);
  out.afterCloseState = c.state;
  out.afterCloseCount = c.subscriptionCount;

  // Refine's LiveProvider.
  const p = m.liveProvider({ url, onError });
  call("liveProvider.subscribe.noArguments", () => p.subscribe());
  call("liveProvider.subscribe.string", () => p.subscribe("ch"));
  call("liveProvider.subscribe.typesString", () => p.subscribe({ channel: "ch", types: "*", callback: cb }));
  call("liveProvider.subscribe.idsString", () => p.subscribe({ channel: "ch", types: ["*"], params: { ids: "7" }, callback: cb }));
  call("liveProvider.subscribe.idObject", () => p.subscribe({ channel: "ch", types: ["*"], params: { id: {} }, callback: cb }));
  call("liveProvider.subscribe.callbackMissing", () => p.subscribe({ channel: "ch", types: ["*"] }));
  call("liveProvider.publish.noArguments", () => p.publish());
  call("liveProvider.publish.typeMissing", () => p.publish({ channel: "ch" }));
  const ps = p.subscribe({ channel: "ch", types: ["*"], callback: cb });
  call("liveProvider.unsubscribe.first", () => p.unsubscribe(ps));
  call("liveProvider.unsubscribe.second", () => p.unsubscribe(ps));
  call("liveProvider.unsubscribe.garbage", () => [undefined, null, 5, "x", {}].forEach((x) => p.unsubscribe(x)));
  call("liveProvider.close.first", () => p.close());
  call("liveProvider.close.second", () => p.close());
  call("liveProvider.afterClose.subscribe", () => p.subscribe({ channel: "ch", types: ["*"], callback: cb }));
  call("liveProvider.afterClose.unsubscribe", () => p.unsubscribe(ps));
  await settle("liveProvider.afterClose.publish", p.publish({ channel: "ch", type: "updated" }));

  // Ginjou's Realtime.
  const r = m.realtime({ url, onError });
  call("realtime.subscribe.noArguments", () => r.subscribe());
  call("realtime.subscribe.channelMissing", () => r.subscribe({ actions: ["*"], callback: cb }));
  call("realtime.subscribe.actionsString", () => r.subscribe({ channel: "ch", actions: "*", callback: cb }));
  call("realtime.subscribe.callbackMissing", () => r.subscribe({ channel: "ch", actions: ["*"] }));
  call("realtime.subscribe.idsObject", () => r.subscribe({ channel: "ch", params: { type: "many", ids: [{}] }, callback: cb }));
  call("realtime.publish.noArguments", () => r.publish());
  call("realtime.publish.actionMissing", () => r.publish({ channel: "ch" }));
  call("realtime.publish.actionNumber", () => r.publish({ channel: "ch", action: 5 }));
  const key = r.subscribe({ channel: "ch", actions: ["*"], callback: cb });
  call("realtime.unsubscribe.first", () => r.unsubscribe(key));
  call("realtime.unsubscribe.second", () => r.unsubscribe(key));
  call("realtime.unsubscribe.garbage", () => [undefined, null, 5, "wlp:999999", {}].forEach((x) => r.unsubscribe(x)));
  call("realtime.subscriptionState.garbage", () => r.subscriptionState({}));
  call("realtime.close.first", () => r.close());
  call("realtime.close.second", () => r.close());
  call("realtime.afterClose.subscribe", () => r.subscribe({ channel: "ch", actions: ["*"], callback: cb }));
  await settle("realtime.afterClose.publish", r.publish({ channel: "ch", action: "updated" }));

  // isRevalidated, the non-hook helper of the adapters.
  call("isRevalidated.keysString", () => m.isRevalidated("posts", ["posts"]));
  call("isRevalidated.keysOfNull", () => m.isRevalidated([null], ["posts"]));
  call("isRevalidated.queryKeyString", () => m.isRevalidated([["posts"]], "posts"));
  call("isRevalidated.queryKeyMissing", () => m.isRevalidated([["posts"]]));
  out.isRevalidatedWorks = [m.isRevalidated([["posts"]], ["posts", 1]), m.isRevalidated(null, ["x"]), m.isRevalidated([["a"]], ["b"])];

  // Re-entrancy: a callback that closes its own client, a state listener that closes it.
  const re = m.createLiveClient({ url, onError, backoffMinMs: 20 });
  const reGot = [];
  re.subscribe("misuse/reentrant", ["*"], undefined, (e) => {
    reGot.push(e);
    re.close();
    re.close();
  });
  re.subscribe("misuse/reentrant", ["*"], undefined, (e) => reGot.push(e));
  await until(() => re.state === "open");
  await sleep(50);
  const pub = m.createLiveClient({ url, onError });
  await settle("reentrant.publish", pub.publish({ channel: "misuse/reentrant", type: "updated" }));
  out.reentrantDelivered = await until(() => reGot.length >= 1);
  await sleep(100);
  out.reentrantCount = reGot.length;
  out.reentrantState = re.state;
  const st = m.createLiveClient({ url, onError, onStateChange: (s) => s.state === "open" && st.close() });
  st.subscribe("misuse/state", ["*"], undefined, cb);
  out.stateListenerClosed = await until(() => st.state === "closed");
  pub.close();

  // A fresh client still works after all of this.
  const fresh = m.liveProvider({ url, onError });
  const freshGot = [];
  fresh.subscribe({ channel: "misuse/fresh", types: ["*"], callback: (e) => freshGot.push(e.type) });
  await until(() => fresh.state === "open");
  await sleep(50);
  await settle("fresh.publish", fresh.publish({ channel: "misuse/fresh", type: "created" }));
  out.freshDelivered = await until(() => freshGot.length === 1);
  fresh.close();
  out.onErrorMessages = errors;
  return out;
}

/** What each misuse must do: throw `name` with a message matching `field`, or not throw. */
const TYPE = (field) => ({ name: "TypeError", field });
const expected = {};
for (const ctor of ["createLiveClient", "liveProvider", "realtime"]) {
  Object.assign(expected, {
    // Named after the function the app called, whichever builds the client.
    [`${ctor}.undefined`]: TYPE(new RegExp(`^${ctor}: options must be an object like .*, got undefined$`)),
    [`${ctor}.null`]: TYPE(/options must be an object/),
    [`${ctor}.number`]: TYPE(/options must be an object/),
    [`${ctor}.string`]: TYPE(/options must be an object/),
    [`${ctor}.urlMissing`]: TYPE(new RegExp(`^${ctor}: \`url\` must be a URL string`)),
    [`${ctor}.urlNumber`]: TYPE(/`url` must be a URL string/),
    [`${ctor}.urlEmptyArray`]: TYPE(/`url` is an empty array/),
    [`${ctor}.urlArrayOfNumber`]: TYPE(/`url\[0\]` must be a string/),
    [`${ctor}.urlArraySecondNull`]: TYPE(/`url\[1\]` must be a string, got null/),
    [`${ctor}.urlSparse`]: TYPE(/`url\[0\]` must be a string, got undefined/),
    [`${ctor}.urlInvalid`]: TYPE(/`url` is not a valid URL/),
    [`${ctor}.urlHttp`]: TYPE(/`url` must start with ws:\/\/ or wss:\/\//),
    [`${ctor}.transport`]: TYPE(/`transport` must be one of/),
    [`${ctor}.flavor`]: TYPE(/`flavor` must be "igniter"/),
    [`${ctor}.sseUrlWs`]: TYPE(/`sseUrl` must start with http/),
    [`${ctor}.sseUrlFewer`]: TYPE(/`sseUrl` has 1 URL but `url` has 2: give an array of 2/),
    [`${ctor}.sseUrlSecondNull`]: TYPE(/`sseUrl\[1\]` must be a string, got null/),
    [`${ctor}.publishUrlFewer`]: TYPE(/`publishUrl` has 1 URL but `url` has 2/),
    [`${ctor}.publishUrlMore`]: TYPE(/`publishUrl` has 2 URLs but `url` has 1/),
    [`${ctor}.igniterOverWebSocket`]: TYPE(/`flavor: "igniter"` reads an Igniter.js SSE stream: it needs `transport: "sse"`/),
    [`${ctor}.igniterToken`]: TYPE(/`token` and `getToken` are for the relay; an Igniter.js stream takes none/),
    [`${ctor}.backoffNegative`]: TYPE(/`backoffMinMs` must be a non-negative number/),
    [`${ctor}.backoffString`]: TYPE(/`backoffMinMs` must be a non-negative number/),
    [`${ctor}.backoffNaN`]: TYPE(/`backoffMaxMs` must be a non-negative number/),
    [`${ctor}.backoffHuge`]: TYPE(/`backoffMaxMs` must be a non-negative number, at most 2147483647/),
    [`${ctor}.publishQueueInfinite`]: TYPE(/`publishQueue` must be/),
    [`${ctor}.maxFrameBytesZero`]: TYPE(/`maxFrameBytes` must be a positive number/),
    [`${ctor}.maxFrameBytesNaN`]: TYPE(/`maxFrameBytes` must be a positive number/),
    [`${ctor}.maxFrameBytesString`]: TYPE(/`maxFrameBytes` must be a positive number/),
    [`${ctor}.onErrorNumber`]: TYPE(/`onError` must be a function/),
    [`${ctor}.onStateChangeString`]: TYPE(/`onStateChange` must be a function/),
    [`${ctor}.getTokenObject`]: TYPE(/`getToken` must be a function/),
    [`${ctor}.tokenEmpty`]: TYPE(/`token` must be a non-empty string/),
    [`${ctor}.tokenNumber`]: TYPE(/`token` must be a non-empty string/),
    [`${ctor}.tokenAndGetToken`]: TYPE(/give `token` or `getToken`, not both/),
    [`${ctor}.scopesString`]: TYPE(/`scopes` must be an array of non-empty strings/),
    [`${ctor}.scopesEmpty`]: TYPE(/`scopes` must be an array of non-empty strings/),
    [`${ctor}.protocol`]: TYPE(/`protocol` must be "v1" or "simple", got the string "v2"/),
    [`${ctor}.simpleSse`]: TYPE(/`protocol: "simple"` \(the seed's minimal WebSocket protocol\) is WebSocket only: it needs `transport: "websocket"`, got "sse"/),
    [`${ctor}.simpleAuto`]: TYPE(/`protocol: "simple"`.* is WebSocket only: it needs `transport: "websocket"`, got "auto"/),
    [`${ctor}.simpleToken`]: TYPE(/`protocol: "simple"`.* has no authentication: leave out `token` and `getToken`/),
    [`${ctor}.simpleGetToken`]: TYPE(/`protocol: "simple"`.* has no authentication/),
    [`${ctor}.simpleScopes`]: TYPE(/`protocol: "simple"`.* has no scopes: leave out `scopes`/),
    [`${ctor}.coalesceNegative`]: TYPE(/`coalesceMs` must be a non-negative number/),
    // A valid URL, however long: what the browser makes of it shows when the client connects.
    [`${ctor}.urlHuge`]: "ok",
  });
}
Object.assign(expected, {
  "subscribe.noArguments": TYPE(/`channel` must be a non-empty string/),
  "subscribe.channelNumber": TYPE(/`channel` must be a non-empty string/),
  "subscribe.channelEmpty": TYPE(/`channel` must be a non-empty string/),
  "subscribe.channelHuge": TYPE(/`channel` is 10000000 characters long/),
  "subscribe.typesMissing": TYPE(/`types` must be an array of strings/),
  "subscribe.typesString": TYPE(/`types` must be an array of strings/),
  "subscribe.typesNumbers": TYPE(/`types` must be an array of strings/),
  // The message stays short: the value is described, not copied.
  "subscribe.typesHugeString": TYPE(/^subscribe: `types` must be an array of strings, got a string of 10000000 characters \("x{40}…"\)$/),
  "subscribe.typesNoPrototype": TYPE(/`types` must be an array of strings, got an object$/),
  "subscribe.callbackThrowingToString": TYPE(/`callback` must be a function, got an object$/),
  "subscribe.idsString": TYPE(/`ids` must be an array of strings or numbers/),
  "subscribe.idsObject": TYPE(/`ids\[0\]` must be a string or a number/),
  "subscribe.callbackMissing": TYPE(/`callback` must be a function/),
  "subscribe.callbackString": TYPE(/`callback` must be a function/),
  "subscribe.optionsNumber": TYPE(/`options` must be an object/),
  "subscribe.coalesceString": TYPE(/`coalesceMs` must be a non-negative number/),
  "publish.noArguments": TYPE(/the event must be an object/),
  "publish.string": TYPE(/the event must be an object/),
  "publish.channelMissing": TYPE(/`channel` must be a non-empty string/),
  "publish.channelHuge": TYPE(/`channel` is 10000000 characters long/),
  "publish.typeMissing": TYPE(/`type` must be a non-empty string/),
  "publish.typeNumber": TYPE(/`type` must be a non-empty string/),
  "publish.payloadBigInt": TYPE(/`payload` cannot be sent as JSON/),
  "publish.payloadCyclic": TYPE(/`payload` cannot be sent as JSON/),
  "publish.payloadFunction": TYPE(/`payload` cannot be sent as JSON/),
  "publish.payloadHuge": TYPE(/`payload` with the rest of the event is 10000020 bytes as JSON \(UTF-8\), over `maxFrameBytes` \(1048576\)/),
  "publish.dateInvalid": TYPE(/`date` must be a Date/),
  "publish.dateObject": TYPE(/`date` must be a Date/),
  "publish.metaString": TYPE(/`meta` must be an object/),
  "publish.metaArray": TYPE(/`meta` must be an object/),
  "onStateChange.number": TYPE(/`listener` must be a function/),
  "onRevalidate.string": TYPE(/`listener` must be a function/),
  "unsubscribe.garbage": "ok",
  "subscribe.millionIds": "ok",
  "publish.toMillionIds": "ok",
  "unsubscribe.first": "ok",
  "unsubscribe.second": "ok",
  "unsubscribe.handleCalledAfter": "ok",
  "handle.first": "ok",
  "handle.second": "ok",
  "stopStateListener.twice": "ok",
  "stopRevalidate.twice": "ok",
  "close.first": "ok",
  "close.second": "ok",
  "afterClose.subscribe": { name: "Error", field: /subscribe: the client is closed/ },
  "afterClose.publish": { name: "Error", field: /the client is closed/ },
  "afterClose.unsubscribe": "ok",
  "afterClose.onStateChange": "ok",
  "afterClose.onRevalidate": { name: "Error", field: /onRevalidate: the client is closed/ },
  "afterClose.stats": "ok",
  "liveProvider.subscribe.noArguments": TYPE(/liveProvider.subscribe: the options must be an object/),
  "liveProvider.subscribe.string": TYPE(/liveProvider.subscribe: the options must be an object/),
  "liveProvider.subscribe.typesString": TYPE(/`types` must be an array of strings/),
  "liveProvider.subscribe.idsString": TYPE(/`ids` must be an array of strings or numbers/),
  "liveProvider.subscribe.idObject": TYPE(/`ids\[0\]` must be a string or a number/),
  "liveProvider.subscribe.callbackMissing": TYPE(/`callback` must be a function/),
  "liveProvider.publish.noArguments": TYPE(/the event must be an object/),
  "liveProvider.publish.typeMissing": TYPE(/`type` must be a non-empty string/),
  "liveProvider.unsubscribe.first": "ok",
  "liveProvider.unsubscribe.second": "ok",
  "liveProvider.unsubscribe.garbage": "ok",
  "liveProvider.close.first": "ok",
  "liveProvider.close.second": "ok",
  "liveProvider.afterClose.subscribe": { name: "Error", field: /subscribe: the client is closed/ },
  "liveProvider.afterClose.unsubscribe": "ok",
  "liveProvider.afterClose.publish": { name: "Error", field: /the client is closed/ },
  "realtime.subscribe.noArguments": TYPE(/realtime.subscribe: the options must be an object/),
  "realtime.subscribe.channelMissing": TYPE(/`channel` must be a non-empty string/),
  "realtime.subscribe.actionsString": TYPE(/`actions` must be an array of strings/),
  "realtime.subscribe.callbackMissing": TYPE(/`callback` must be a function/),
  "realtime.subscribe.idsObject": TYPE(/`ids\[0\]` must be a string or a number/),
  "realtime.publish.noArguments": TYPE(/the event must be an object/),
  "realtime.publish.actionMissing": TYPE(/`action` must be a non-empty string/),
  "realtime.publish.actionNumber": TYPE(/`action` must be a non-empty string/),
  "realtime.unsubscribe.first": "ok",
  "realtime.unsubscribe.second": "ok",
  "realtime.unsubscribe.garbage": "ok",
  "realtime.subscriptionState.garbage": "ok",
  "realtime.close.first": "ok",
  "realtime.close.second": "ok",
  "realtime.afterClose.subscribe": { name: "Error", field: /subscribe: the client is closed/ },
  "realtime.afterClose.publish": { name: "Error", field: /the client is closed/ },
  "isRevalidated.keysString": TYPE(/isRevalidated: `keys` must be an array of keys/),
  "isRevalidated.keysOfNull": TYPE(/isRevalidated: `keys\[0\]` must be an array/),
  "isRevalidated.queryKeyString": TYPE(/isRevalidated: `queryKey` must be an array/),
  "isRevalidated.queryKeyMissing": TYPE(/isRevalidated: `queryKey` must be an array/),
  "reentrant.publish": "ok",
  "fresh.publish": "ok",
});

test("every entry point of pkg/index.js refuses misuse with an error naming the field, never a wasm trap", async () => {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (msg) => msg.type() === "error" && pageErrors.push(`console.error: ${msg.text()}`));
  await page.goto(`${base}/misuse.html`);
  const started = Date.now();
  const out = await page.evaluate(misuse, `ws://${new URL(base).host}/ws`);
  const ms = Date.now() - started;

  const failures = [];
  for (const [name, want] of Object.entries(expected)) {
    const got = out[name];
    if (!got) {
      failures.push(`${name}: not run`);
    } else if (want === "ok") {
      if (got.threw) failures.push(`${name}: threw ${got.name}: ${got.message}`);
    } else if (!got.threw) {
      failures.push(`${name}: did not throw (expected ${want.name} ${want.field})`);
    } else if (got.name !== want.name || !want.field.test(got.message)) {
      failures.push(`${name}: threw ${got.name}: ${got.message.slice(0, 200)} (expected ${want.name} ${want.field})`);
    }
  }
  for (const [name, got] of Object.entries(out)) {
    if (got?.threw && /unreachable|RuntimeError|memory access out of bounds|recursive use|already borrowed/i.test(`${got.ctor} ${got.message}`)) {
      failures.push(`${name}: a wasm trap: ${got.ctor}: ${got.message}`);
    }
  }
  assert.deepEqual(failures, [], "every misuse is refused as expected");
  assert.equal(Object.keys(out).filter((k) => k.includes(".")).length, Object.keys(expected).length, "every case has an expectation");

  assert.equal(out.millionIdsSubscribed, true, "a subscription with 1e6 ids is confirmed by the relay");
  assert.equal(out.millionIdsDelivered, true, "and gets an event about its last id");
  assert.equal(out.stateAfterUnsubscribe, "ended");
  assert.equal(out.subscriptionCountBeforeClose, 1, "only the 1e6-id subscription is left");
  assert.equal(out.stillWorks, true, "the client kept its connection through the misuse");
  assert.equal(out.afterCloseState, "closed");
  assert.equal(out.afterCloseCount, 0);
  assert.equal(out.reentrantDelivered, true);
  assert.equal(out.reentrantCount, 1, "after a callback closed the client, its other callback got nothing");
  assert.equal(out.reentrantState, "closed");
  assert.equal(out.stateListenerClosed, true, "a state listener may close its client");
  assert.deepEqual(out.isRevalidatedWorks, [true, true, false]);
  assert.equal(out.freshDelivered, true, "a new provider works after all of it");
  // Refine and Ginjou ignore what publish returns: a publish on a closed provider is reported.
  assert.deepEqual(
    out.onErrorMessages.map((m) => m.replace(/^.*the client is closed.*$/, "closed")),
    ["closed", "closed"],
    "onError got the two publishes on closed providers, nothing else",
  );
  assert.deepEqual(pageErrors, [], "nothing was thrown or logged as an error in the page");
  console.error(`[misuse] ${Object.keys(expected).length} cases in ${ms} ms`);
});
