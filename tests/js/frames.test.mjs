// node --test tests/js/   (no build needed: pkg-template/frames.js and stream.js, the JS the wasm shell
// calls for every frame)
//
// What runs per frame before the engine sees it: the size check in UTF-8 bytes, the one JSON.parse, which
// frames are handed over by their keys alone (and which go to the engine's decoder), presence frames, the
// callbacks the engine names (looked up when their turn comes, a throw reported and the rest still called),
// and the LiveEvent objects the callbacks receive.
import { test } from "node:test";
import assert from "node:assert/strict";
import { eventFromFrame, frameListener, liveEvent, ownedParts, resyncEvent } from "../../pkg-template/frames.js";
import { bytesOver } from "../../pkg-template/stream.js";

const PRESENCE_SUB = 4294967295;
const event = (extra = {}) => ({ op: "event", channel: "posts", type: "updated", seq: 7, date: 1_700_000_000_000, payload: { ids: [3] }, ...extra });

/** A listener whose engine side records every call; `route` answers onEvent (the subs to call). */
function harness({ max = 1_048_576, route = () => undefined, plain = false } = {}) {
  const calls = [];
  const callbacks = new Map();
  const thrown = [];
  const listen = frameListener(
    max,
    (text, bytes) => calls.push(["text", text, bytes]),
    (frame, why) => calls.push(["frame", frame, why]),
    plain
      ? undefined
      : (channel, type, seq, ids, frame, stamp) => {
          calls.push(["event", channel, type, seq, ids, frame.op, stamp]);
          return route(channel, ids);
        },
    callbacks,
    (error) => thrown.push(error),
  );
  return { calls, callbacks, thrown, send: (data, timeStamp = 12.5) => listen({ data, timeStamp }) };
}

test("bytesOver: UTF-8 bytes when over the limit, 0 otherwise; short strings are not encoded", () => {
  assert.equal(bytesOver("abc", 3), 0);
  assert.equal(bytesOver("abcd", 3), 4);
  assert.equal(bytesOver("é".repeat(2), 3), 4, "two bytes a character");
  assert.equal(bytesOver("€".repeat(2), 5), 6, "three bytes a character");
  assert.equal(bytesOver("😀", 3), 4, "a surrogate pair is four bytes, not six");
  assert.equal(bytesOver("x".repeat(100), 300), 0, "100 units can never be over 300 bytes");
});

test("frameListener: a binary frame and a frame over max bytes never reach the decoder; the size is counted in UTF-8", () => {
  const h = harness({ max: 10 });
  h.send(new ArrayBuffer(4));
  h.send("€€€€"); // 4 units, 12 bytes
  h.send('"é"'); // 4 bytes: under
  assert.deepEqual(h.calls, [
    ["text", undefined, 0],
    ["text", undefined, 12],
    ["frame", "é", undefined],
  ]);
});

test("frameListener: a plain socket hands every text frame over as text", () => {
  const h = harness({ plain: true });
  h.send(JSON.stringify(event()));
  h.send("not json");
  assert.deepEqual(h.calls, [
    ["text", JSON.stringify(event()), 0],
    ["text", "not json", 0],
  ]);
});

test("frameListener: text that is not JSON goes to onFrame with JSON.parse's reason", () => {
  const h = harness();
  h.send("{nope");
  assert.equal(h.calls.length, 1);
  const [kind, frame, why] = h.calls[0];
  assert.equal(kind, "frame");
  assert.equal(frame, undefined);
  assert.match(why, /JSON/);
});

test("frameListener: an event frame routable by its keys goes to onEvent with its ids, the parsed frame and the DOM event's time", () => {
  const h = harness();
  h.send(JSON.stringify(event({ payload: { ids: ["a", 2], title: "x" } })), 99.5);
  h.send(JSON.stringify(event({ payload: { title: "no ids" } })));
  h.send(JSON.stringify(event({ payload: { ids: null } })));
  h.send(JSON.stringify(event({ payload: [1, 2] })));
  assert.deepEqual(h.calls, [
    ["event", "posts", "updated", 7, ["a", 2], "event", 99.5],
    ["event", "posts", "updated", 7, undefined, "event", 12.5],
    ["event", "posts", "updated", 7, undefined, "event", 12.5],
    ["event", "posts", "updated", 7, undefined, "event", 12.5],
  ]);
});

test("frameListener: every frame the keys cannot route goes to the engine's decoder as the parsed object", () => {
  const refused = [
    { op: "ack", id: 1, seq: 3 },
    event({ channel: 5 }),
    event({ type: null }),
    event({ seq: -1 }),
    event({ seq: 1.5 }),
    event({ seq: 2 ** 53 }),
    event({ date: "2024-01-01" }),
    event({ date: 8.64e15 + 1 }),
    event({ meta: [] }),
    event({ meta: null }),
    event({ meta: "x" }),
    event({ payload: undefined }),
    event({ payload: { ids: "3" } }),
    event({ payload: { ids: [1.5] } }),
    event({ payload: { ids: [2 ** 53] } }),
    event({ payload: { ids: [null] } }),
    event({ payload: { ids: [{}] } }),
    [1, 2],
    null,
    "event",
  ];
  for (const frame of refused) {
    const h = harness();
    const text = JSON.stringify(frame);
    h.send(text);
    assert.deepEqual(h.calls, [["frame", JSON.parse(text), undefined]], text);
  }
});

test("frameListener: the subs the engine names get one LiveEvent, each callback looked up when its turn comes", () => {
  const got = [];
  const h = harness({ route: () => Uint32Array.of(1, 2, 3) });
  h.callbacks.set(1, (e) => {
    got.push([1, e]);
    h.callbacks.delete(2); // an earlier callback unsubscribes a later one: it is not called
  });
  h.callbacks.set(2, () => got.push([2]));
  h.callbacks.set(3, (e) => got.push([3, e]));
  h.send(JSON.stringify(event({ meta: { by: "ann" } })));
  assert.deepEqual(
    got.map((g) => g[0]),
    [1, 3],
  );
  const [[, first], [, third]] = got;
  assert.equal(first, third, "one object for every callback");
  assert.deepEqual(first, { channel: "posts", type: "updated", payload: { ids: [3] }, date: new Date(1_700_000_000_000), meta: { by: "ann" } });
});

test("frameListener: one sub as a number; none (undefined) calls nothing; a throwing callback is reported and the next still runs", () => {
  const got = [];
  let answer = 4;
  const h = harness({ route: () => answer });
  h.callbacks.set(4, (e) => got.push(e.type));
  h.callbacks.set(5, () => {
    throw new Error("boom");
  });
  h.callbacks.set(6, (e) => got.push(`6:${e.type}`));
  h.send(JSON.stringify(event()));
  answer = undefined;
  h.send(JSON.stringify(event()));
  answer = [5, 6];
  h.send(JSON.stringify(event()));
  assert.deepEqual(got, ["updated", "6:updated"]);
  assert.deepEqual(
    h.thrown.map((e) => e.message),
    ["boom"],
  );
});

test("frameListener: presence frames go to the presence callback as parsed, never to the engine's event path", () => {
  const got = [];
  const h = harness({ route: () => assert.fail("not an event") });
  h.send(JSON.stringify({ op: "presence", action: "join", channel: "p" }));
  h.callbacks.set(PRESENCE_SUB, (f) => got.push(f));
  h.send(JSON.stringify({ op: "presence", action: "leave", channel: "p", key: "k" }));
  assert.deepEqual(got, [{ op: "presence", action: "leave", channel: "p", key: "k" }]);
  assert.deepEqual(h.calls, []);
});

test("liveEvent: payload and meta parsed from their JSON text; a date JS cannot represent becomes now", () => {
  assert.deepEqual(liveEvent("c", "t", '{"a":1}', 5, undefined), { channel: "c", type: "t", payload: { a: 1 }, date: new Date(5) });
  assert.deepEqual(liveEvent("c", "t", "[]", 5, '{"m":true}').meta, { m: true });
  const before = Date.now();
  const late = liveEvent("c", "t", "null", 8.64e15 + 1, undefined).date.getTime();
  assert.ok(late >= before && late <= Date.now() + 1, `${late}`);
  assert.throws(() => liveEvent("c", "t", "{oops", 5, undefined), SyntaxError);
});

test("eventFromFrame: from the frame's text or its parsed object alike; a meta that is no object is left out", () => {
  const frame = event({ meta: { k: 1 } });
  assert.deepEqual(eventFromFrame(JSON.stringify(frame)), eventFromFrame(frame));
  assert.deepEqual(eventFromFrame(frame), { channel: "posts", type: "updated", payload: { ids: [3] }, date: new Date(frame.date), meta: { k: 1 } });
  assert.equal("meta" in eventFromFrame(event({ meta: [1] })), false);
  assert.equal("meta" in eventFromFrame(event({ meta: null })), false);
});

test("ownedParts: payload and meta as JSON text and the date, for an event a coalescing window holds back", () => {
  assert.deepEqual(ownedParts(event({ meta: { k: 1 } })), ['{"ids":[3]}', '{"k":1}', 1_700_000_000_000]);
  assert.deepEqual(ownedParts(event()), ['{"ids":[3]}', undefined, 1_700_000_000_000]);
});

test("resyncEvent: the $resync event with its reason", () => {
  const e = resyncEvent("posts", "history_gone");
  assert.equal(e.type, "$resync");
  assert.deepEqual([e.channel, e.payload, e.meta], ["posts", {}, { resync: true, reason: "history_gone" }]);
  assert.ok(e.date instanceof Date);
});
