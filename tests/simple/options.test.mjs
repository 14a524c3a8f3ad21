// node --test tests/simple/   (after scripts/build-pkg.sh: reads pkg/index.js)
//
// The `protocol` option as the package's JS entry checks it, before any wasm is loaded: every
// entry point that takes options throws a TypeError naming `protocol` for a bad value, and says
// why for what the simple protocol cannot do.

import { test } from "node:test";
import assert from "node:assert/strict";
import { createLiveClient, liveProvider, realtime } from "../../pkg/index.js";

const entries = { createLiveClient, liveProvider, realtime };
const url = "ws://127.0.0.1:9/";

for (const [name, make] of Object.entries(entries)) {
  test(`${name}: protocol is "v1" or "simple"`, () => {
    for (const bad of ["v2", "", 1, false, "SIMPLE"]) {
      assert.throws(() => make({ url, protocol: bad }), (e) => e instanceof TypeError && e.message.includes("`protocol` must be \"v1\" or \"simple\""), `protocol ${String(bad)}`);
    }
  });

  test(`${name}: protocol "simple" is WebSocket only, without tokens or scopes`, () => {
    const cases = [
      [{ url: "http://127.0.0.1:9/sse", transport: "sse" }, /WebSocket only: it needs `transport: "websocket"`, got "sse"/],
      [{ url, transport: "auto" }, /WebSocket only: it needs `transport: "websocket"`, got "auto"/],
      [{ url: "http://127.0.0.1:9/sse", transport: "sse", flavor: "igniter" }, /WebSocket only/],
      [{ url, token: "t" }, /has no authentication/],
      [{ url, getToken: () => "t" }, /has no authentication/],
      [{ url, scopes: ["a"] }, /has no scopes/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => make({ ...options, protocol: "simple" }),
        (e) => e instanceof TypeError && e.message.includes('`protocol: "simple"`') && message.test(e.message),
        JSON.stringify(options),
      );
    }
  });
}

test('protocol "simple" and "v1" over a WebSocket are accepted', () => {
  for (const protocol of ["simple", "v1", undefined]) {
    const errors = [];
    // In Node the wasm module does not load (no fetch of file: URLs): that is reported, not thrown.
    const provider = liveProvider({ url, protocol, onError: (e) => errors.push(e) });
    assert.equal(typeof provider.subscribe, "function");
    provider.close();
  }
});

// The default wasm (pkg/) leaves out the simple protocol, SSE and Igniter.js (the JS entry loads
// pkg/full/ for them): its constructor, given such an option anyway, throws an Error naming it.
test("the default wasm's constructor names an option that needs the full build", async () => {
  const { readFileSync } = await import("node:fs");
  const glue = await import("../../pkg/wasm_live_provider.js");
  glue.initSync({ module: readFileSync(new URL("../../pkg/wasm_live_provider_bg.wasm", import.meta.url)) });
  const cases = [
    [{ protocol: "simple" }, 'protocol: "simple"'],
    [{ transport: "sse" }, 'transport: "sse"'],
    [{ transport: "auto" }, 'transport: "auto"'],
    [{ flavor: "igniter" }, 'flavor: "igniter"'],
  ];
  for (const [options, option] of cases) {
    assert.throws(
      () => new glue.LiveClient(url, options),
      (e) => e instanceof Error && e.message.includes(`option \`${option}\` needs the full build`),
      JSON.stringify(options),
    );
  }
});
