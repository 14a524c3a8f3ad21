// node --test tests/simple/
//
// The fixture itself: server.mjs speaks exactly the seed's server side (subscribe, unsubscribe,
// publish to every subscriber of the channel, events as {channel,type,payload}) and answers no
// WebSocket subprotocol. Plain `ws` clients, exact frames.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import path from "node:path";
import WebSocket from "ws";

const here = path.dirname(fileURLToPath(import.meta.url));
let server;
let base;

before(async () => {
  server = spawn(process.execPath, [path.join(here, "server.mjs")], { env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  while (!/simple listening on (http:\/\/\S+)/.test(out)) {
    const [chunk] = await once(server.stdout, "data");
    out += chunk;
  }
  base = out.match(/simple listening on (http:\/\/\S+)/)[1];
});

after(() => server?.kill());

async function connect(protocols) {
  const ws = new WebSocket(base.replace(/^http/, "ws") + "/", protocols);
  ws.got = [];
  ws.on("message", (data) => ws.got.push(String(data)));
  await once(ws, "open");
  return ws;
}

async function until(what, cond) {
  const started = Date.now();
  while (!cond()) {
    if (Date.now() - started > 5_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

async function subscribersReach(channel, n) {
  const started = Date.now();
  for (;;) {
    const { subscribers } = await (await fetch(`${base}/control/subscribers?channel=${channel}`)).json();
    if (subscribers === n) return;
    if (Date.now() - started > 5_000) throw new Error(`${channel} has ${subscribers} subscribers, not ${n}`);
    await new Promise((ok) => setTimeout(ok, 10));
  }
}

const send = (ws, frame) => ws.send(JSON.stringify(frame));

test("events go to the channel's subscribers as {channel,type,payload}, the publisher included", async () => {
  const a = await connect();
  const b = await connect();
  const c = await connect();
  send(a, { action: "subscribe", channel: "posts" });
  send(b, { action: "subscribe", channel: "posts" });
  send(c, { action: "subscribe", channel: "users" });
  await subscribersReach("posts", 2);
  await subscribersReach("users", 1);
  send(a, { action: "publish", channel: "posts", type: "created", payload: { ids: [1] } });
  await until("both posts subscribers", () => a.got.length === 1 && b.got.length === 1);
  assert.equal(b.got[0], '{"channel":"posts","type":"created","payload":{"ids":[1]}}');
  assert.equal(a.got[0], b.got[0]);
  const res = await fetch(`${base}/control/publish`, { method: "POST", body: JSON.stringify({ channel: "users", type: "deleted", payload: {} }) });
  assert.deepEqual(await res.json(), { sent: 1 });
  await until("the users subscriber", () => c.got.length === 1);
  assert.equal(c.got[0], '{"channel":"users","type":"deleted","payload":{}}');
  assert.equal(a.got.length, 1, "not subscribed to users");

  send(b, { action: "unsubscribe", channel: "posts" });
  await subscribersReach("posts", 1);
  send(c, { action: "publish", channel: "posts", type: "updated", payload: { ids: [2] } });
  await until("a to get the update", () => a.got.length === 2);
  await new Promise((ok) => setTimeout(ok, 50));
  assert.equal(b.got.length, 1, "unsubscribed");

  const frames = await (await fetch(`${base}/control/frames?channel=posts`)).json();
  assert.deepEqual(
    frames.map((f) => f.frame.action),
    ["subscribe", "subscribe", "publish", "unsubscribe", "publish"],
  );
  for (const ws of [a, b, c]) ws.close();
});

test("no subprotocol is answered; other frames are ignored; drop ends every connection", async () => {
  const ws = await connect(["wlp.v1"]).catch((e) => e);
  // ws (like browsers) fails a handshake that offered a subprotocol and got none back.
  assert.ok(ws instanceof Error, "a client offering a subprotocol is not answered one");
  const plain = await connect();
  assert.equal(plain.protocol, "");
  plain.send("not json");
  send(plain, { op: "subscribe", channels: [{ channel: "v1only" }] });
  send(plain, { action: "subscribe", channel: "ticks" });
  await subscribersReach("ticks", 1);
  // Frames are handled in order: by now the protocol-v1 subscribe before it was ignored.
  await subscribersReach("v1only", 0);
  const closed = once(plain, "close");
  const res = await fetch(`${base}/control/drop`, { method: "POST" });
  assert.ok((await res.json()).dropped >= 1);
  const [code] = await closed;
  assert.equal(code, 1006, "dropped without a close frame");
  const after = await (await fetch(`${base}/control/subscribers?channel=ticks`)).json();
  assert.deepEqual(after, { subscribers: 0 });
});
