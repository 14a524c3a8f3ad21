// node --test tests/adapters/   (after scripts/build-pkg.sh: the providers come from pkg/index.js)
//
// The React and Vue adapters (pkg-template/react.js, pkg-template/vue.js: the source, not the minified
// copy) given something that is not a provider — undefined, null, a plain object, a string, the
// liveProvider factory itself instead of its result, … — throw a TypeError naming the argument in the
// hook or composable call itself, during render / setup, before any effect; not a raw TypeError from
// inside an effect or an event callback later. A real provider, realtime or client does not throw.
//
// React renders with react-dom/server (no effect ever runs there), Vue with createSSRApp and
// vue/server-renderer; each hook call is wrapped where it is made, so a TypeError is known to come
// out of the call itself.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createElement } from "react";
import { renderToString as renderReact } from "react-dom/server";
import { createSSRApp, h } from "vue";
import { renderToString as renderVue } from "vue/server-renderer";
import * as react from "../../pkg-template/react.js";
import * as vue from "../../pkg-template/vue.js";
import { createLiveClient, liveProvider, realtime } from "../../pkg/index.js";

const url = "ws://127.0.0.1:9/ws";
const FIRST = "the first argument must be what liveProvider(), realtime() or createLiveClient() returns";
const queryClient = { invalidateQueries() {} };

/** What each bad first argument is, and how the message says what was given. */
const notProviders = [
  ["undefined", undefined, "got undefined"],
  ["null", null, "got null"],
  ["a plain object", {}, "got an object with no `client` and no `subscribe` method"],
  ["a string", url, `got the string "${url}"`],
  ["a number", 5, "got number 5"],
  ["the liveProvider factory", liveProvider, "got a function (the factory itself? pass what it returns, like liveProvider({ url }))"],
  ["the realtime factory", realtime, "got a function (the factory itself? pass what it returns, like liveProvider({ url }))"],
  ["an object whose client is not one", { client: {} }, "got an object whose `client` has no `subscribe` method"],
  ["a half client", { subscribe() {}, unsubscribe() {} }, "got an object with no `client` and no `onStateChange` method"],
];

/** Every hook of an adapter, called with `provider` (and otherwise good arguments). */
const calls = (adapter) => ({
  useConnectionState: (provider) => adapter.useConnectionState(provider),
  useLiveEvent: (provider) => adapter.useLiveEvent(provider, { channel: "posts" }, () => {}),
  useLiveInvalidation: (provider) => adapter.useLiveInvalidation(provider, queryClient, { channel: "posts", queryKey: ["posts"] }),
  useRevalidation: (provider) => adapter.useRevalidation(provider, queryClient),
  usePresence: (provider) => adapter.usePresence(provider, { resource: "posts", id: 3, data: { mode: "edit" } }),
});

/** Renders a React component that makes `call()`; returns what the call threw (undefined: nothing). */
function inReact(call) {
  let thrown;
  let returned = false;
  function Probe() {
    try {
      call();
      returned = true;
    } catch (error) {
      thrown = error;
    }
    return null;
  }
  renderReact(createElement(Probe));
  assert.ok(returned || thrown !== undefined, "the component rendered");
  return thrown;
}

/** Renders a Vue component whose setup() makes `call()`; resolves with what the call threw. */
async function inVue(call) {
  let thrown;
  let returned = false;
  const app = createSSRApp({
    setup() {
      try {
        call();
        returned = true;
      } catch (error) {
        thrown = error;
      }
      return () => h("div");
    },
  });
  await renderVue(app);
  assert.ok(returned || thrown !== undefined, "the component was set up");
  return thrown;
}

const frameworks = [
  ["react", react, async (call) => inReact(call)],
  ["vue", vue, inVue],
];

for (const [framework, adapter, render] of frameworks) {
  for (const [hook, call] of Object.entries(calls(adapter))) {
    test(`${framework} ${hook}: a first argument that is not a provider throws a TypeError at the call`, async () => {
      for (const [what, bad, got] of notProviders) {
        const thrown = await render(() => call(bad));
        assert.ok(thrown instanceof TypeError, `${what}: threw ${thrown?.constructor?.name} ${thrown?.message ?? "nothing"}`);
        assert.equal(thrown.message, `${hook}: ${FIRST}, ${got}`, what);
      }
    });
  }

  test(`${framework}: the other arguments are checked at the call too`, async () => {
    const client = createLiveClient({ url, onError() {} });
    try {
      const cases = [
        [() => adapter.useLiveEvent(client, undefined, () => {}), "useLiveEvent: the options must be an object like { channel: \"posts\" }, got undefined"],
        [() => adapter.useLiveEvent(client, { channel: "posts" }), "useLiveEvent: `onEvent` (the third argument) must be a function, got undefined"],
        [() => adapter.useLiveEvent(client, { channel: "posts" }, "log"), "useLiveEvent: `onEvent` (the third argument) must be a function, got the string \"log\""],
        [() => adapter.useRevalidation(client), "useRevalidation: the second argument must be a TanStack Query client (with invalidateQueries), got undefined"],
        [() => adapter.useRevalidation(client, {}), "useRevalidation: the second argument must be a TanStack Query client (with invalidateQueries), got an object"],
        [() => adapter.useLiveInvalidation(client, null, { channel: "posts", queryKey: ["posts"] }), "useLiveInvalidation: the second argument must be a TanStack Query client (with invalidateQueries), got null"],
        [() => adapter.useLiveInvalidation(client, queryClient), "useLiveInvalidation: the options must be an object like { channel: \"posts\", queryKey: [\"posts\"] }, got undefined"],
        [() => adapter.useLiveInvalidation(client, queryClient, { channel: "posts" }), "useLiveInvalidation: give `queryKey` or `queryKeys(event)`"],
        [() => adapter.usePresence(client, undefined), "usePresence: the options must be an object like { resource: \"posts\", id: 3 }, got undefined"],
        [() => adapter.usePresence(client, { resource: "posts", data: 3 }), "usePresence: `data` must be an object, got number 3"],
      ];
      for (const [call, message] of cases) {
        const thrown = await render(call);
        assert.ok(thrown instanceof TypeError, `${message}: threw ${thrown?.constructor?.name} ${thrown?.message ?? "nothing"}`);
        assert.equal(thrown.message, message);
      }
    } finally {
      client.close();
    }
  });

  test(`${framework}: liveProvider(), realtime() and createLiveClient() are accepted by every hook`, async () => {
    // In Node the wasm module does not load (no fetch of file: URLs): that is reported to onError, not thrown.
    const errors = [];
    const onError = (error) => errors.push(error);
    const sources = { liveProvider: liveProvider({ url, onError }), realtime: realtime({ url, onError }), createLiveClient: createLiveClient({ url, onError }) };
    try {
      for (const [name, source] of Object.entries(sources)) {
        for (const [hook, call] of Object.entries(calls(adapter))) {
          const thrown = await render(() => call(source));
          assert.equal(thrown, undefined, `${hook}(${name}()) threw ${thrown?.message}`);
        }
      }
    } finally {
      for (const source of Object.values(sources)) source.close();
    }
    for (const error of errors) assert.match(error.message, /the WebAssembly module failed to load/);
  });
}
