// node --test tests/igniter/
//
// Starts server.mjs (a real @igniter-js/core server on loopback), opens Igniter's
// SSE stream with fetch (streaming body), drives it through the control
// endpoints and asserts the exact raw SSE frames. Every captured frame is printed
// verbatim (JSON-escaped) so the wire format can be read off the test output.
//
// IGNITER_SKIP_KEEPALIVE=1 skips the ~30 s wait for Igniter's keep-alive comment.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const here = path.dirname(fileURLToPath(import.meta.url));
const SERVER = path.join(here, "server.mjs");

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

// ------------------------------------------------------------------ helpers
function startServer(env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER], {
      env: { ...process.env, PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}\n${err}`)), 15000);
    child.stderr.on("data", (d) => { err += d; });
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^igniter listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
      if (m) {
        clearTimeout(timer);
        resolve({ child, base: m[1], stdout: () => out, stderr: () => err });
      }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`server exited ${code}:\n${out}\n${err}`)); });
  });
}

function stopServer(s) {
  if (!s || s.child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    s.child.removeAllListeners("exit");
    s.child.once("exit", resolve);
    s.child.kill("SIGTERM");
  });
}

/** Parse one raw SSE frame (text between blank lines) into fields, per the SSE spec. */
function parseFrame(raw) {
  const f = { raw, id: undefined, event: undefined, retry: undefined, data: undefined, comments: [] };
  const data = [];
  for (const line of raw.split("\n")) {
    if (line.startsWith(":")) { f.comments.push(line); continue; }
    const i = line.indexOf(":");
    const name = i < 0 ? line : line.slice(0, i);
    let value = i < 0 ? "" : line.slice(i + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "data") data.push(value);
    else if (name === "id" || name === "event" || name === "retry") f[name] = value;
  }
  if (data.length) {
    f.data = data.join("\n");
    try { f.json = JSON.parse(f.data); } catch { /* not JSON */ }
  }
  return f;
}

/** Open an SSE stream with fetch and collect raw frames as they arrive. */
async function openStream(url, { headers = {}, label = url } = {}) {
  const ac = new AbortController();
  const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: ac.signal });
  const s = { res, frames: [], rawText: "", label, waiters: new Set(), ended: false };
  const notify = () => { for (const w of s.waiters) w(); };
  (async () => {
    if (!res.body) return;
    const dec = new TextDecoder();
    let buf = "";
    try {
      for await (const chunk of res.body) {
        const text = dec.decode(chunk, { stream: true });
        s.rawText += text;
        buf += text;
        let k;
        while ((k = buf.indexOf("\n\n")) >= 0) {
          const raw = buf.slice(0, k);
          buf = buf.slice(k + 2);
          const frame = parseFrame(raw);
          s.frames.push(frame);
          console.log(`[${label}] frame ${JSON.stringify(raw + "\n\n")}`);
          notify();
        }
      }
    } catch { /* aborted */ }
    s.ended = true;
    notify();
  })();
  s.waitFor = (pred, timeoutMs = 3000, what = "frame") =>
    new Promise((resolve, reject) => {
      const check = () => {
        const f = s.frames.find(pred);
        if (f) { cleanup(); resolve(f); return true; }
        return false;
      };
      const t = setTimeout(() => { cleanup(); reject(new Error(`[${label}] timed out waiting for ${what}; got ${JSON.stringify(s.frames.map((x) => x.raw))}`)); }, timeoutMs);
      const w = () => check();
      const cleanup = () => { clearTimeout(t); s.waiters.delete(w); };
      s.waiters.add(w);
      check();
    });
  s.close = () => ac.abort();
  return s;
}

async function post(base, p, body) {
  const r = await fetch(base + p, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  const json = await r.json();
  assert.equal(r.status, 200, `${p} -> ${r.status} ${JSON.stringify(json)}`);
  return json;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ fixtures
let srv;
let strict;
before(async () => {
  [srv, strict] = await Promise.all([startServer(), startServer({ IGNITER_STRICT_CHANNELS: "1" })]);
});
after(async () => {
  await Promise.all([stopServer(srv), stopServer(strict)]);
});

// ------------------------------------------------------------------ tests
test("ready line is the only stdout output", () => {
  assert.match(srv.stdout(), /^igniter listening on http:\/\/127\.0\.0\.1:\d+\n$/);
});

test("connect, custom-channel publish and revalidate frames (two channels)", async () => {
  const url = `${srv.base}/api/v1/sse/events?channels=revalidation,chat.room-1&scopes=`;
  const s = await openStream(url, { label: "A" });
  try {
    assert.equal(s.res.status, 200);
    assert.equal(s.res.headers.get("content-type"), "text/event-stream");
    assert.equal(s.res.headers.get("cache-control"), "no-cache, no-transform");
    assert.equal(s.res.headers.get("x-accel-buffering"), "no");
    assert.equal(s.res.headers.get("access-control-allow-origin"), "*");

    // 1. opening frame: no id, event "connected", channels echoed in request order
    const c = await s.waitFor((f) => f.event === "connected", 3000, "connected");
    assert.equal(s.frames[0], c, "connected is the very first frame");
    assert.match(c.raw, /^event: connected\ndata: \{"connected":true,"channels":\["revalidation","chat\.room-1"\],"timestamp":"[^"]+"\}$/);
    assert.equal(c.id, undefined);
    assert.deepEqual(Object.keys(c.json), ["connected", "channels", "timestamp"]);
    assert.match(c.json.timestamp, ISO);

    // 2. default publish: event "message", server-generated uuid id, no scopes key
    await post(srv.base, "/control/publish", { channel: "chat.room-1", data: { text: "hi" } });
    const m = await s.waitFor((f) => f.json?.data?.text === "hi", 3000, "publish");
    assert.match(m.raw, /^id: [0-9a-f-]{36}\nevent: message\ndata: \{"channel":"chat\.room-1","data":\{"text":"hi","timestamp":"[^"]+"\},"timestamp":"[^"]+"\}$/);
    assert.match(m.id, UUID);
    assert.deepEqual(Object.keys(m.json), ["channel", "data", "timestamp"]);
    // Igniter injects `timestamp` into object payloads that lack one
    assert.match(m.json.data.timestamp, ISO);

    // 3. publish with explicit type + id
    await post(srv.base, "/control/publish", { channel: "chat.room-1", data: { n: 2 }, type: "update", id: "evt-42" });
    const u = await s.waitFor((f) => f.id === "evt-42", 3000, "typed publish");
    assert.match(u.raw, /^id: evt-42\nevent: update\ndata: \{"channel":"chat\.room-1","data":\{"n":2,"timestamp":"[^"]+"\},"timestamp":"[^"]+"\}$/);

    // 4. non-object payloads are passed through untouched
    await post(srv.base, "/control/publish", { channel: "chat.room-1", data: "plain string" });
    const p = await s.waitFor((f) => f.json?.data === "plain string", 3000, "string publish");
    assert.match(p.raw, /^id: [0-9a-f-]{36}\nevent: message\ndata: \{"channel":"chat\.room-1","data":"plain string","timestamp":"[^"]+"\}$/);

    // 5. revalidation (unscoped), via an Igniter mutation's response.revalidate()
    await post(srv.base, "/control/revalidate", { keys: ["posts.list", "users"] });
    const r = await s.waitFor((f) => f.event === "revalidate", 3000, "revalidate");
    assert.match(r.raw, /^id: [0-9a-f-]{36}\nevent: revalidate\ndata: \{"channel":"revalidation","data":\{"queryKeys":\["posts\.list","users"\],"timestamp":"[^"]+"\},"timestamp":"[^"]+"\}$/);

    // 6. revalidation with data
    await post(srv.base, "/control/revalidate", { keys: ["posts.list"], data: { id: 7 } });
    const rd = await s.waitFor((f) => f.event === "revalidate" && f.json.data.data, 3000, "revalidate+data");
    assert.deepEqual(rd.json.data.data, { id: 7 });
    assert.deepEqual(Object.keys(rd.json.data), ["queryKeys", "data", "timestamp"]);

    // never a retry: field, never a multi-line data:
    for (const f of s.frames) {
      assert.equal(f.retry, undefined);
      assert.ok(f.raw.split("\n").filter((l) => l.startsWith("data:")).length <= 1);
    }
    assert.equal(s.frames.length, 6, "nothing else was sent");
  } finally {
    s.close();
  }
});

test("scopes: scoped revalidate reaches only intersecting connections", async () => {
  const mk = (scopes, label) =>
    openStream(`${srv.base}/api/v1/sse/events?channels=revalidation,room.scoped${scopes === null ? "" : `&scopes=${scopes}`}`, { label });
  const [u1, u2, u0, multi] = await Promise.all([mk("user:1", "U1"), mk("user:2", "U2"), mk(null, "U0"), mk("user:3,role:admin", "U3")]);
  try {
    await Promise.all([u1, u2, u0, multi].map((s) => s.waitFor((f) => f.event === "connected")));

    await post(srv.base, "/control/revalidate", { keys: ["users.getProfile"], scopes: ["user:1"] });
    await post(srv.base, "/control/revalidate", { keys: ["admin.stats"], scopes: ["role:admin", "role:owner"] });
    await post(srv.base, "/control/revalidate", { keys: ["marker"] }); // unscoped: everyone

    for (const s of [u1, u2, u0, multi]) await s.waitFor((f) => f.json?.data?.queryKeys?.[0] === "marker", 3000, "marker");
    const keysOf = (s) => s.frames.filter((f) => f.event === "revalidate").map((f) => f.json.data.queryKeys[0]);
    assert.deepEqual(keysOf(u1), ["users.getProfile", "marker"]);
    assert.deepEqual(keysOf(u2), ["marker"]);
    assert.deepEqual(keysOf(u0), ["marker"]);
    assert.deepEqual(keysOf(multi), ["admin.stats", "marker"]);

    const scoped = u1.frames.find((f) => f.json?.data?.queryKeys?.[0] === "users.getProfile");
    assert.match(scoped.raw, /^id: [0-9a-f-]{36}\nevent: revalidate\ndata: \{"scopes":\["user:1"\],"channel":"revalidation","data":\{"queryKeys":\["users\.getProfile"\],"timestamp":"[^"]+"\},"timestamp":"[^"]+"\}$/);
    assert.deepEqual(Object.keys(scoped.json), ["scopes", "channel", "data", "timestamp"]);

    // scopes: [] is "unscoped": delivered to everyone, but the key is kept on the wire
    await post(srv.base, "/control/revalidate", { keys: ["empty.scopes"], scopes: [] });
    for (const s of [u1, u2, u0, multi]) {
      const f = await s.waitFor((x) => x.json?.data?.queryKeys?.[0] === "empty.scopes", 3000, "empty scopes");
      assert.match(f.raw, /^id: [0-9a-f-]{36}\nevent: revalidate\ndata: \{"scopes":\[\],"channel":"revalidation",/);
    }

    // Custom-channel publish with scopes: @igniter-js/core 0.3.40's
    // realtime.publish() drops `scopes`, so EVERY subscriber gets it and the
    // frame carries no "scopes" key. (Asserted so a version bump that fixes it is noticed.)
    await post(srv.base, "/control/publish", { channel: "room.scoped", data: { secret: 1 }, scopes: ["user:1"] });
    for (const s of [u1, u2, u0, multi]) {
      const f = await s.waitFor((x) => x.json?.channel === "room.scoped", 3000, "scoped publish");
      assert.equal("scopes" in f.json, false);
    }
  } finally {
    for (const s of [u1, u2, u0, multi]) s.close();
  }
});

test("no channels= subscribes to every registered channel", async () => {
  const s = await openStream(`${strict.base}/api/v1/sse/events`, { label: "ALL" });
  try {
    const c = await s.waitFor((f) => f.event === "connected");
    // Registered at router init: revalidation, system, + one per `stream: true` query.
    assert.deepEqual(c.json.channels, ["revalidation", "system", "posts.stream", "notifications.stream"]);
    await post(strict.base, "/control/publish", { channel: "posts.stream", data: { title: "x" } });
    const m = await s.waitFor((f) => f.json?.channel === "posts.stream");
    assert.equal(m.event, "message");
  } finally {
    s.close();
  }
});

test("strict mode: unregistered channel is refused by Igniter with HTTP 500 JSON", async () => {
  const r = await fetch(`${strict.base}/api/v1/sse/events?channels=revalidation,never.declared`);
  const text = await r.text();
  console.log(`[strict] ${r.status} ${r.headers.get("content-type")} ${text}`);
  assert.equal(r.status, 500);
  assert.equal(r.headers.get("content-type"), "application/json");
  assert.deepEqual(JSON.parse(text), { error: { message: "Request initialization failed", code: "INITIALIZATION_ERROR" }, data: null });

  // declared stream channels work in strict mode; a published channel is registered from then on
  const ok = await openStream(`${strict.base}/api/v1/sse/events?channels=notifications.stream`, { label: "STRICT" });
  assert.equal(ok.res.status, 200);
  ok.close();
  await post(strict.base, "/control/publish", { channel: "never.declared", data: 1 });
  const later = await openStream(`${strict.base}/api/v1/sse/events?channels=never.declared`, { label: "STRICT2" });
  assert.equal(later.res.status, 200);
  later.close();
});

test("no replay: Last-Event-ID is ignored, reconnect gets only a fresh connected frame", async () => {
  const a = await openStream(`${srv.base}/api/v1/sse/events?channels=replay.test`, { label: "R1" });
  await a.waitFor((f) => f.event === "connected");
  await post(srv.base, "/control/publish", { channel: "replay.test", data: { seq: 1 }, id: "seq-1" });
  await a.waitFor((f) => f.id === "seq-1");
  a.close();
  await post(srv.base, "/control/publish", { channel: "replay.test", data: { seq: 2 }, id: "seq-2" }); // while disconnected
  const b = await openStream(`${srv.base}/api/v1/sse/events?channels=replay.test`, { label: "R2", headers: { "last-event-id": "seq-1" } });
  try {
    await b.waitFor((f) => f.event === "connected");
    await sleep(400);
    assert.deepEqual(b.frames.map((f) => f.event), ["connected"], "seq-2 is lost, nothing is replayed");
    // server keeps working after a client went away (its stale handler just fails silently)
    await post(srv.base, "/control/publish", { channel: "replay.test", data: { seq: 3 }, id: "seq-3" });
    await b.waitFor((f) => f.id === "seq-3");
  } finally {
    b.close();
  }
});

test("CORS: preflight and headers on control endpoints", async () => {
  const pre = await fetch(`${srv.base}/control/publish`, {
    method: "OPTIONS",
    headers: { origin: "http://127.0.0.1:9", "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
  });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "*");
  assert.match(pre.headers.get("access-control-allow-methods"), /POST/);
  assert.equal(pre.headers.get("access-control-allow-headers"), "content-type");
  const r = await fetch(`${srv.base}/api/v1/control/revalidate`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"keys":["x"]}' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get("access-control-allow-origin"), "*");
  const bad = await fetch(`${srv.base}/control/publish`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
  assert.equal(bad.status, 400);
});

test("keep-alive comment after 30 s", { skip: process.env.IGNITER_SKIP_KEEPALIVE === "1", timeout: 45000 }, async () => {
  const s = await openStream(`${srv.base}/api/v1/sse/events?channels=revalidation`, { label: "KA" });
  try {
    const t0 = Date.now();
    await s.waitFor((f) => f.event === "connected");
    const ka = await s.waitFor((f) => f.comments.length > 0, 40000, "keepalive");
    const dt = Date.now() - t0;
    console.log(`[KA] keepalive after ${dt} ms`);
    assert.equal(ka.raw + "\n\n", ": keepalive\n\n");
    assert.ok(dt >= 29000 && dt < 35000, `interval ${dt} ms`);
    assert.equal(s.rawText, s.frames.map((f) => f.raw + "\n\n").join(""), "byte-exact stream = frames");
  } finally {
    s.close();
  }
});
