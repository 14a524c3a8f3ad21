// node --test tests/adapters/
//
// The Vue `usePresence` composable (pkg-template/vue.js) run in an effect scope (Vue's reactivity needs no
// DOM), on a client whose presence is the entry's own bookkeeping (pkg-template/presence.js) over a fake
// wasm that records what it is asked: refs in, shallow refs out; a new `id` or `data` updates, a new
// resource leaves and joins again; disposing the scope leaves. (React's `usePresence` runs in Chromium:
// tests/packed/presence.test.mjs, under StrictMode.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { effectScope, nextTick, ref } from "vue";
import { usePresence } from "../../pkg-template/vue.js";
import { createPresence } from "../../pkg-template/presence.js";

const KEY = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

function fakeClient() {
  const calls = [];
  const wasm = {
    presence(op, channel, data) {
      calls.push([["enter", "watch", "update", "exit", "exit watch"][op] ?? "bad", channel, data && JSON.parse(data)]);
    },
  };
  const hub = createPresence(KEY, (op) => op(wasm), (error) => {
    throw error;
  });
  const client = {
    subscribe() {},
    unsubscribe() {},
    onStateChange: () => () => {},
    onRevalidate: () => () => {},
    presence: hub.presence,
  };
  return { client, hub, calls };
}

const member = (key, user, data) => ({ key, user, info: null, data, since: 1 });

test("vue usePresence: refs in, shallow refs out, updates and leaves", async () => {
  const { client, hub, calls } = fakeClient();
  const id = ref(3);
  const resource = ref("posts");
  const scope = effectScope();
  const p = scope.run(() => usePresence({ client }, { resource, id, data: () => ({ mode: "edit" }) }));
  assert.deepEqual(calls, [["enter", "resources/posts", { id: 3, mode: "edit" }]]);
  assert.equal(p.status.value, "connecting");
  hub.receive({
    op: "presence",
    channel: "resources/posts",
    action: "sync",
    version: 1,
    members: [member(KEY, "me", { id: 3, mode: "edit" }), member("k2", "bob", { id: 3 }), member("k3", "carol", { id: 4 })],
  });
  assert.equal(p.status.value, "live");
  assert.deepEqual(p.others.value.map((u) => u.user), ["bob"], "others on record 3 only");
  assert.equal(p.self.value.user, "me");
  assert.equal(p.count.value, 2);

  // Another record: an update, and the filter follows.
  id.value = 4;
  await nextTick();
  assert.deepEqual(calls.at(-1), ["update", "resources/posts", { id: 4, mode: "edit" }]);
  assert.deepEqual(p.others.value.map((u) => u.user), ["carol"]);

  // Another resource: leave (a microtask later), join the new channel.
  resource.value = "comments";
  await nextTick();
  await tick();
  assert.deepEqual(calls.slice(-2).map((c) => c.slice(0, 2)), [["enter", "resources/comments"], ["exit", "resources/posts"]]);

  // Disposed: leaves.
  scope.stop();
  await tick();
  assert.deepEqual(calls.at(-1).slice(0, 2), ["exit", "resources/comments"]);
});
