// node --test tests/js/   (no build needed)
//
// The presence bookkeeping of the JS entry (pkg-template/presence.js) driven by hand: a fake wasm
// client records what the entry asks of it, and the test hands the entry what the wasm would
// (status names and relay frames). The version rules of docs/PROTOCOL.md ("Presence"), grouping by
// user, a reconnect that changes nothing, hostile frames, and the handles' ref counting.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createPresence, presenceKey, UPDATE_GAP_MS } from "../../pkg-template/presence.js";

const KEY = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

function setup() {
  const calls = [];
  const bad = [];
  const reported = [];
  // The wasm's one entry point: `presence(op, channel, data, who)`.
  const fake = {
    presence(op, channel, data, who) {
      if (op === 0 || op === 1) calls.push(["enter", channel, data, op === 1, who]);
      else if (op === 2) calls.push(["update", channel, data]);
      else if (op === 3 || op === 4) calls.push(["exit", channel, op === 4]);
      else bad.push(channel);
    },
  };
  const hub = createPresence(KEY, (op) => op(fake), (error) => reported.push(error));
  return { hub, calls, bad, reported };
}

const member = (key, user, data = {}, since = 1, info = null) => ({ key, user, info, data, since });
const sync = (version, members) => ({ op: "presence", channel: "c", action: "sync", id: 1, version, members });
const join = (version, m) => ({ op: "presence", channel: "c", action: "join", version, member: m });
const update = (version, m) => ({ op: "presence", channel: "c", action: "update", version, member: m });
const leave = (version, key, user) => ({ op: "presence", channel: "c", action: "leave", version, key, user });
const tick = () => new Promise((resolve) => queueMicrotask(resolve));

test("a member key is 32 random hex digits", () => {
  const a = presenceKey();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, presenceKey());
});

test("the sync shows the members, one entry per user, own connection marked", () => {
  const { hub, calls } = setup();
  const p = hub.presence("c", { data: { id: 3 } });
  assert.deepEqual(calls, [["enter", "c", '{"id":3}', false, `"key":"${KEY}"`]]);
  hub.presence("d", { user: "42", info: { name: "Alice" } });
  assert.deepEqual(JSON.parse(`{${calls[1][4]}}`), { key: KEY, user: "42", info: { name: "Alice" } });
  assert.equal(p.status, "connecting");
  let changes = 0;
  p.onChange(() => changes++);
  hub.receive(sync(5, [member(KEY, "42", { id: 3 }), member("b1", "7", { id: 3 }, 2), member("b2", "7", { id: 5 }, 3)]));
  assert.equal(p.status, "live", "the sync makes it live");
  assert.equal(changes, 1, "one change: live, with its members");
  assert.deepEqual(
    p.members.map((u) => [u.user, u.connections, u.self, u.data]),
    [
      ["42", 1, true, { id: 3 }],
      ["7", 2, false, { id: 5 }],
    ],
  );
  assert.equal(p.self.user, "42");
  assert.deepEqual(p.members[1].members.map((m) => m.key), ["b1", "b2"]);
});

test("diffs before the sync are held; those at or below its version dropped", () => {
  const { hub } = setup();
  const p = hub.presence("c");
  hub.receive(join(4, member("x", "x")));
  hub.receive(join(6, member("y", "y")));
  hub.receive(leave(7, "z", "z"));
  assert.deepEqual(p.members, [], "nothing shown before the sync");
  hub.receive(sync(5, [member("z", "z")]));
  assert.deepEqual(p.members.map((u) => u.user), ["y"], "x (4 ≤ 5) dropped, y joined, z left");
  hub.receive(join(7, member("late", "late")));
  assert.deepEqual(p.members.map((u) => u.user), ["y"], "a replay at or below the version is dropped");
  hub.receive(update(8, member("y", "y", { mode: "edit" })));
  assert.deepEqual(p.members[0].data, { mode: "edit" });
});

test("a reconnect whose sync shows the same members tells the listeners nothing", () => {
  const { hub } = setup();
  const p = hub.presence("c");
  hub.receive(sync(5, [member("a", "1"), member("b", "2")]));
  const shown = p.members;
  const seen = [];
  p.onChange((members, handle) => seen.push(handle.status));
  hub.receive("stale c");
  assert.equal(p.status, "stale");
  assert.equal(p.members, shown, "offline, the members stay");
  // Back: diffs of the new connection arrive before its sync (held), then the sync.
  hub.receive(join(3, member("a", "1")));
  hub.receive(sync(9, [member("b", "2"), member("a", "1")]));
  assert.deepEqual(seen, ["stale", "live"], "status changes only, no member change");
  // Lost before any sync: still connecting (nothing shown could be stale).
  const { hub: other } = setup();
  const q = other.presence("c");
  other.receive("stale c");
  assert.equal(q.status, "connecting");
  other.receive("unsupported c");
  assert.equal(q.status, "unsupported", "an older relay: no error, just unsupported");
  assert.equal(p.members, shown, "the same array: nothing changed");
  // Two tabs of one user: one entry, two connections; one closing: the user stays.
  hub.receive(join(10, member("a2", "1")));
  assert.deepEqual(p.members.map((u) => [u.user, u.connections]), [["1", 2], ["2", 1]]);
  const before = seen.length;
  hub.receive(leave(11, "a2", "1"));
  assert.deepEqual(p.members.map((u) => [u.user, u.connections]), [["1", 1], ["2", 1]]);
  assert.equal(seen.length, before + 1, "the connection count changed");
});

test("hostile presence frames are counted through the wasm, never thrown", () => {
  const { hub, bad } = setup();
  const p = hub.presence("c");
  hub.receive(sync(1, []));
  const frames = [
    null,
    "not json",
    { action: "sync", version: 2, members: "all" },
    { action: "sync", version: 2, members: [{ key: 1, user: "u", data: {} }] },
    { action: "sync", version: 2, members: [{ key: "k", user: "u", data: [] }] },
    { action: "join", version: 2, member: { key: "k", user: 5, data: {} } },
    { action: "join", version: 2, member: { key: "k", user: "u", data: {}, info: "x" } },
    { action: "update", version: -1, member: member("k", "u") },
    { action: "join", version: 1.5, member: member("k", "u") },
    { action: "leave", version: 3 },
    { action: "stats", members: "many", users: 1 },
    "{ not json",
  ];
  for (const f of frames) {
    const framed = typeof f === "object" && f !== null ? { channel: "c", ...f } : f;
    assert.doesNotThrow(() => hub.receive(framed));
  }
  // Not frames (null; text, which only the wasm's status reports are) are not about the channel:
  // dropped unseen.
  assert.equal(bad.length, frames.length - 3, bad.join("\n"));
  assert.deepEqual(p.members, []);
  // A throwing listener is reported, the others still called.
  const { hub: hub2, reported } = setup();
  const q = hub2.presence("c");
  let called = false;
  q.onChange(() => {
    throw new Error("boom");
  });
  q.onChange(() => (called = true));
  hub2.receive({ channel: "c", action: "sync", version: 1, members: [] });
  assert.equal(reported[0].message, "boom");
  assert.ok(called);
  // Stats of a full set.
  hub2.receive({ channel: "c", action: "stats", members: 140, users: 97 });
  assert.deepEqual(q.stats, { members: 140, users: 97 });
});

test("handles share the channel; leave is released a microtask later (StrictMode's double mount)", async () => {
  const { hub, calls } = setup();
  const first = hub.presence("c", { data: { id: 1 } });
  first.leave();
  const second = hub.presence("c", { data: { id: 1 } });
  assert.equal(first.status, "closed");
  assert.deepEqual(
    calls.map((c) => c[0]),
    ["enter", "enter"],
    "the second handle enters before the first exits",
  );
  await tick();
  assert.deepEqual(calls.map((c) => c[0]), ["enter", "enter", "exit"]);
  first.leave();
  await tick();
  assert.equal(calls.length, 3, "a second leave is a no-op");
  second.update({ id: 2 });
  assert.deepEqual(calls[3], ["update", "c", '{"id":2}']);
  const watcher = hub.presence("c", { watchOnly: true });
  assert.throws(() => watcher.update({}), TypeError);
  watcher.leave();
  await tick();
  assert.deepEqual(calls.at(-1), ["exit", "c", true]);
});

test("bad options throw TypeErrors naming them", () => {
  const { hub } = setup();
  assert.throws(() => hub.presence("c", { data: 3 }), /`data` must be an object/);
  assert.throws(() => hub.presence("c", { data: [] }), /`data` must be an object/);
  assert.throws(() => hub.presence("c", { watchOnly: "yes" }), /`watchOnly` must be a boolean/);
  assert.throws(() => hub.presence("c", { user: "" }), /`user` must be a non-empty string/);
  assert.throws(() => hub.presence("c", { info: "Alice" }), /must be an object/);
  assert.throws(() => hub.presence("c", null), /the options must be an object/);
  const cyclic = {};
  cyclic.self = cyclic;
  assert.throws(() => hub.presence("c", { data: cyclic }), /cannot be sent as JSON/);
});

test("closing the client closes every set", () => {
  const { hub } = setup();
  const p = hub.presence("c");
  const seen = [];
  p.onChange((_, h) => seen.push(h.status));
  hub.closeAll();
  assert.deepEqual(seen, ["closed"]);
  assert.equal(p.status, "closed");
});

test("data changes are spaced UPDATE_GAP_MS apart, and the latest of those waiting is the one sent", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  const { hub, calls } = setup();
  const p = hub.presence("c", { data: { id: 1 } });
  const updates = () => calls.filter((c) => c[0] === "update").map((c) => c[2]);
  p.update({ id: 2 });
  assert.deepEqual(updates(), ['{"id":2}'], "the first change goes at once");
  p.update({ id: 3 });
  p.update({ id: 4 });
  p.update({ id: 5 });
  assert.deepEqual(updates(), ['{"id":2}'], "the next ones wait");
  t.mock.timers.tick(UPDATE_GAP_MS - 1);
  assert.equal(updates().length, 1);
  t.mock.timers.tick(1);
  assert.deepEqual(updates(), ['{"id":2}', '{"id":5}'], "only the latest is sent, UPDATE_GAP_MS after the last");
  // Six changes in a row over 10 s reach the relay at most 5 times in any 10 s.
  for (let i = 0; i < 60; i++) {
    p.update({ id: 100 + i });
    t.mock.timers.tick(250);
  }
  t.mock.timers.tick(UPDATE_GAP_MS);
  const sent = updates();
  assert.equal(sent.at(-1), '{"id":159}', "the last change is sent in the end");
  assert.ok(sent.length <= 2 + Math.ceil((60 * 250 + UPDATE_GAP_MS) / UPDATE_GAP_MS), `${sent.length} updates`);
  // Leaving drops a change that waits.
  p.update({ id: 7 });
  p.update({ id: 8 });
  p.leave();
  await tick();
  const before = updates().length;
  t.mock.timers.tick(UPDATE_GAP_MS * 2);
  assert.equal(updates().length, before, "nothing sent after the leave");
});

test("a second handle's data on a membership that exists is a change like update(): spaced too", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 2_000_000 });
  const { hub, calls } = setup();
  const edit = hub.presence("c", { data: { id: 1, mode: "edit" } });
  edit.update({ id: 2, mode: "edit" });
  // An SPA navigation: the list page's handle comes before the edit page's goes.
  hub.presence("c", { data: {} });
  const enters = calls.filter((c) => c[0] === "enter").map((c) => c[2]);
  assert.deepEqual(enters, ['{"id":1,"mode":"edit"}', '{"id":2,"mode":"edit"}'], "the second enters with the data the wasm has");
  const updates = () => calls.filter((c) => c[0] === "update").map((c) => c[2]);
  assert.deepEqual(updates(), ['{"id":2,"mode":"edit"}']);
  t.mock.timers.tick(UPDATE_GAP_MS);
  assert.deepEqual(updates(), ['{"id":2,"mode":"edit"}', "{}"], "its own data follows, spaced");
});

test("the relay's `closed` frame ends the set: status closed, the wasm told to forget it once, a new handle starts over", async () => {
  const { hub, calls, bad } = setup();
  const p = hub.presence("c", { data: { id: 1 } });
  const w = hub.presence("c", { watchOnly: true });
  const seen = [];
  p.onChange((_, h) => seen.push(h.status));
  hub.receive(join(3, member("b1", "7")));
  const before = calls.length;
  hub.receive({ op: "presence", channel: "c", action: "closed", code: "forbidden" });
  assert.equal(p.status, "closed");
  assert.equal(w.status, "closed");
  assert.deepEqual(seen, ["closed"]);
  assert.deepEqual(p.members, [], "the diff held for a sync that never came is dropped");
  assert.deepEqual(bad, [], "a protocol frame, not a hostile one");
  // The wasm ends the membership (one exit per handle, each of its kind): a reconnect will not send it again.
  assert.deepEqual(calls.slice(before), [
    ["exit", "c", false],
    ["exit", "c", true],
  ]);
  // The handles are done with the wasm: an update or a leave sends nothing more.
  p.update({ id: 2 });
  p.leave();
  w.leave();
  await tick();
  assert.equal(calls.length, before + 2);
  // A closed frame of a channel without a set changes nothing.
  hub.receive({ op: "presence", channel: "d", action: "closed", code: "forbidden" });
  // A new handle on the channel starts over: it enters again and waits for its sync.
  const again = hub.presence("c", { data: { id: 1 } });
  assert.equal(again.status, "connecting");
  assert.deepEqual(calls.at(-1).slice(0, 3), ["enter", "c", '{"id":1}']);
  hub.receive(sync(4, [member("b1", "7")]));
  assert.equal(again.status, "live");
  assert.equal(p.status, "closed", "the old handle stays closed");
  assert.deepEqual(again.members.map((u) => u.user), ["7"]);
});
