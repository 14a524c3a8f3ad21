// node --test tests/igniter/
//
// The stock Igniter.js app (stock-server.mjs) as the browser tests rely on it: only its
// controllers' channels exist, an unregistered channel gets Igniter's HTTP 500 for the whole
// stream, a publish reaches every connection with one id (what lets the client drop an event that
// arrives on two overlapping streams), and POST /__outage takes the server down and back.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";

const SERVER = path.join(path.dirname(fileURLToPath(import.meta.url)), "stock-server.mjs");

let child;
let base;
before(async () => {
  child = spawn(process.execPath, [SERVER], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  base = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`stock server did not start: ${out}`)), 15_000);
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/^igniter stock listening on (http:\/\/127\.0\.0\.1:\d+)\n/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`stock server exited ${code}: ${out}`)));
  });
});
after(() => {
  child.removeAllListeners("exit");
  child.kill("SIGTERM");
});

/** Opens Igniter's stream for `channels`; `events` fills with parsed frames. */
async function stream(channels) {
  const ac = new AbortController();
  const res = await fetch(`${base}/api/v1/sse/events?channels=${channels}&scopes=`, { signal: ac.signal });
  const s = { res, events: [], close: () => ac.abort() };
  if (res.headers.get("content-type")?.startsWith("text/event-stream")) {
    (async () => {
      const dec = new TextDecoder();
      let buf = "";
      try {
        for await (const chunk of res.body) {
          buf += dec.decode(chunk, { stream: true });
          let k;
          while ((k = buf.indexOf("\n\n")) >= 0) {
            const raw = buf.slice(0, k);
            buf = buf.slice(k + 2);
            const f = {};
            for (const line of raw.split("\n")) {
              const i = line.indexOf(": ");
              if (i > 0) f[line.slice(0, i)] = line.slice(i + 2);
            }
            if (f.data) f.json = JSON.parse(f.data);
            s.events.push(f);
          }
        }
      } catch (e) {
        if (e.name !== "AbortError") throw e;
      }
    })();
  }
  return s;
}

async function until(what, cond, ms = 3_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("only the controllers' channels exist; any other gets HTTP 500 for the whole stream", async () => {
  const all = await stream("");
  await until("connected", () => all.events.length > 0);
  assert.deepEqual(all.events[0].json.channels.sort(), ["posts.list", "posts.show", "revalidation", "system"]);
  all.close();
  const refused = await stream("posts.list,resources%2Fposts");
  assert.equal(refused.res.status, 500);
  assert.match(refused.res.headers.get("content-type"), /application\/json/);
  assert.equal((await refused.res.json()).error.code, "INITIALIZATION_ERROR");
  // Asking did not register it.
  const again = await stream("resources%2Fposts");
  assert.equal(again.res.status, 500);
  await again.res.text();
});

test("a created post reaches every connection with one id, and revalidates posts.list", async () => {
  const [a, b] = await Promise.all([stream("posts.list,revalidation"), stream("posts.list")]);
  await until("both connected", () => a.events.length > 0 && b.events.length > 0);
  const created = await (await fetch(`${base}/api/v1/posts/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ title: "t" }),
  })).json();
  await until("the events", () => a.events.length >= 3 && b.events.length >= 2);
  const [ea, eb] = [a.events[1], b.events[1]];
  assert.equal(ea.event, "message");
  assert.deepEqual(ea.json.data.ids, [created.data.id]);
  assert.equal(ea.json.data.type, "created");
  assert.match(ea.id, /^[0-9a-f-]{36}$/);
  assert.equal(ea.id, eb.id, "one id per publish, on every connection");
  assert.equal(a.events[2].event, "revalidate");
  assert.deepEqual(a.events[2].json.data.queryKeys, ["posts.list"]);
  a.close();
  b.close();
});

test("POST /__outage takes the server down, then back on the same port", async () => {
  const r = await fetch(`${base}/__outage?ms=400`, { method: "POST" });
  assert.equal(r.status, 200);
  await new Promise((res) => setTimeout(res, 150));
  await assert.rejects(fetch(`${base}/healthz`), "down");
  await new Promise((res) => setTimeout(res, 600));
  assert.equal(await (await fetch(`${base}/healthz`)).text(), "ok\n");
});
