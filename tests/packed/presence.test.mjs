// Presence through the *packed* npm package (npm pack of pkg/, served as a plain ES module) in headless
// Chromium, against real relays in open mode (each client declares its user): two LiveClients in one page
// see each other; two clients of one user are one entry with two connections, and closing one changes no
// user; a 1 s network blip on one client (a TCP proxy that drops its connection and refuses it for a
// second) makes 0 change events at the other; a relay run with `--presence=false` (what an older relay
// says) gives status "unsupported" and no error; a join refused for good (data over 1 KiB) says "closed"
// with the relay's code in onError, and the wasm forgets it (the client goes idle); a hostile server's presence frames are counted in
// `stats.problems` and reported to onError, never thrown; React's StrictMode (its double mount) around
// `usePresence` (the package's react.js, bundled with React 19 by rolldown) sends one join and no leave;
// on two relay nodes over one Redis, a client on one node sees a client on the other, and when that
// other's node is killed (SIGKILL) it moves to the first node with its key: 0 change events at the watcher.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createRequire } from "node:module";
import { mkdtempSync, mkdirSync, writeFileSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

const { WebSocketServer } = createRequire(join(root, "tests/hostile/package.json"))("ws");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let work, relay, oldRelay, browser, base, wsUrl, oldUrl, proxy, hostile;

/** A TCP proxy to `port` that `cut(ms)` drops (every connection) and refuses for `ms`. */
function tcpProxy(port) {
  const sockets = new Set();
  let refuseUntil = 0;
  const server = createServer((client) => {
    if (Date.now() < refuseUntil) return client.destroy();
    const upstream = connect(port, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        cut(ms) {
          refuseUntil = Date.now() + ms;
          for (const s of sockets) s.destroy();
        },
        close: () => server.close(),
      }),
    ),
  );
}

/**
 * A hostile relay: `hello` with presence, then, answering the first presence `join`, presence frames a
 * relay must never send, then a good sync of one member.
 */
function hostileServer() {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", handleProtocols: () => "wlp.v1" });
  wss.on("connection", (ws) => {
    ws.send(JSON.stringify({ op: "hello", version: 1, epoch: "hostile", ping_ms: 25000, features: ["presence"] }));
    ws.on("message", (data) => {
      const f = JSON.parse(String(data));
      if (f.op !== "presence" || f.action !== "join") return;
      const channel = f.channel;
      const bad = [
        { action: "sync", id: f.id, version: 1, members: "everyone" },
        { action: "sync", id: f.id, version: 1, members: [null] },
        { action: "join", version: 2, member: { key: 7, user: "x", data: {} } },
        { action: "join", version: "3", member: { key: "k", user: "x", data: {} } },
        { action: "update", version: 4, member: { key: "k", user: "x", data: "not an object" } },
        { action: "leave", version: 5 },
        { action: "explode", version: 6 },
        { action: "stats", members: -1, users: 1 },
      ];
      for (const b of bad) ws.send(JSON.stringify({ op: "presence", channel, ...b }));
      const good = { key: "goodkey0goodkey0", user: "good", info: null, data: { id: 1 }, since: 1 };
      ws.send(JSON.stringify({ op: "presence", channel, action: "sync", id: f.id, version: 9, members: [good] }));
    });
  });
  return new Promise((resolve) => wss.on("listening", () => resolve({ wss, url: `ws://127.0.0.1:${wss.address().port}/ws` })));
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), "wlp-presence-"));
  execFileSync("npm", ["pack", "--silent", "--pack-destination", work, join(root, "pkg")], { stdio: ["ignore", "pipe", "inherit"] });
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack produced a tarball");
  const site = join(work, "site");
  mkdirSync(site);
  execFileSync("tar", ["-xzf", join(work, tarball), "-C", site]); // site/package/: the package as installed
  // React and the package's React adapter in one file (React ships no browser ESM): the client itself
  // stays the package's own unbundled index.js, which finds its wasm next to it.
  symlinkSync(join(root, "node_modules"), join(site, "node_modules"));
  writeFileSync(
    join(site, "strict.js"),
    `import { StrictMode, createElement, useEffect } from "react";
import { createRoot } from "react-dom/client";
import { usePresence } from "./package/react.js";
window.mountStrict = (client) => {
  function Banner() {
    const { others, self, count, status } = usePresence(client, { resource: "posts", id: 3, data: { mode: "edit" } });
    window.strictView = { others: others.map((u) => u.user), self: self?.user ?? null, count, status };
    // StrictMode's double mount (React's development build): mounted, unmounted, mounted again.
    useEffect(() => {
      window.mounts = (window.mounts ?? 0) + 1;
      return () => (window.unmounts = (window.unmounts ?? 0) + 1);
    }, []);
    return createElement("p", null, status);
  }
  const root = createRoot(document.body.appendChild(document.createElement("div")));
  root.render(createElement(StrictMode, null, createElement(Banner)));
  return () => root.unmount();
};
`,
  );
  execFileSync(join(root, "node_modules/.bin/rolldown"), ["strict.js", "--format", "esm", "--platform", "browser", "-o", "strict.bundle.js"], {
    cwd: site,
    stdio: ["ignore", "pipe", "inherit"],
  });
  writeFileSync(
    join(site, "index.html"),
    `<!doctype html><meta charset="utf-8"><script>globalThis.process = { env: { NODE_ENV: "development" } };</script>
<script type="module" src="./strict.bundle.js"></script>
<script type="module">
import { createLiveClient } from "./package/index.js";
// Every presence frame any client sends, for the StrictMode test.
window.sent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (text) {
  if (typeof text === "string" && text.includes('"op":"presence"')) window.sent.push(JSON.parse(text));
  return send.call(this, text);
};
window.createLiveClient = createLiveClient;
// Clients by number, each with one presence handle on "resources/posts"; what each listener saw.
const clients = [];
window.errors = [];
window.make = (url, user, name, data = { id: 3 }) => {
  const errors = [];
  const c = createLiveClient({ url, backoffMinMs: 100, backoffMaxMs: 300, onError: (e) => errors.push(String(e.code ?? "") + " " + e.message) });
  const p = c.presence("resources/posts", { data, user, info: { name } });
  const entry = { c, p, errors, changes: 0 };
  p.onChange(() => entry.changes++);
  clients.push(entry);
  return clients.length - 1;
};
window.view = (i) => {
  const { c, p, errors, changes } = clients[i];
  return {
    status: p.status,
    state: c.state,
    changes,
    errors,
    problems: c.stats.problems,
    connections: c.stats.connections,
    url: c.stats.url,
    users: p.members.map((u) => [u.user, u.connections, u.self, u.info?.name ?? null]),
  };
};
window.closeClient = (i) => clients[i].c.close();
window.relayOf = (i) => clients[i].c.stats.url;
window.ready = true;
</script>`,
  );
  ({ child: relay, url: base } = await startRelay(["--static-dir", site]));
  wsUrl = base.replace("http://", "ws://") + "/ws";
  ({ child: oldRelay } = await startRelay(["--presence=false"]).then((r) => ((oldUrl = r.url.replace("http://", "ws://") + "/ws"), r)));
  proxy = await tcpProxy(Number(new URL(base).port));
  hostile = await hostileServer();
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
  oldRelay?.kill();
  proxy?.close();
  hostile?.wss.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function page() {
  const p = await browser.newPage();
  const pageErrors = [];
  p.on("pageerror", (e) => pageErrors.push(e.message));
  await p.goto(`${base}/index.html`);
  await p.waitForFunction(() => window.ready === true);
  return { p, pageErrors };
}

/** Waits until `check(view(i))` holds; returns that view. */
async function until(p, i, check, what, timeout = 10_000) {
  const start = Date.now();
  for (;;) {
    const v = await p.evaluate((i) => window.view(i), i);
    if (check(v)) return v;
    if (Date.now() - start > timeout) assert.fail(`${what}: still ${JSON.stringify(v)}`);
    await sleep(50);
  }
}

const names = (v) => v.users.map((u) => u[0]).sort();

test("two clients see each other; one user's two clients are one entry; a 1 s blip makes no change at the other", async () => {
  const { p, pageErrors } = await page();
  const alice = await p.evaluate((url) => window.make(url, "alice", "Alice"), wsUrl);
  // Bob goes through the proxy, which the blip cuts.
  const bob = await p.evaluate((url) => window.make(url, "bob", "Bob"), `ws://127.0.0.1:${proxy.port}/ws`);
  const seen = await until(p, alice, (v) => v.status === "live" && v.users.length === 2, "alice sees bob");
  assert.deepEqual(seen.users, [
    ["alice", 1, true, "Alice"],
    ["bob", 1, false, "Bob"],
  ]);
  await until(p, bob, (v) => v.status === "live" && v.users.length === 2, "bob sees alice");

  // A second client of alice: one entry, two connections.
  const alice2 = await p.evaluate((url) => window.make(url, "alice", "Alice"), wsUrl);
  await until(p, bob, (v) => v.users.some((u) => u[0] === "alice" && u[1] === 2), "alice with 2 connections at bob");
  const atBob = await until(p, bob, (v) => v.users.length === 2, "still two users at bob");
  assert.deepEqual(names(atBob), ["alice", "bob"]);

  // The blip: bob's connection dropped and refused for a second; alice's listeners hear nothing.
  await sleep(300);
  const before = (await p.evaluate((i) => window.view(i), alice)).changes;
  const bobBefore = await p.evaluate((i) => window.view(i), bob);
  proxy.cut(1000);
  await until(p, bob, (v) => v.state !== "open", "bob lost its connection", 3000);
  await until(p, bob, (v) => v.state === "open" && v.status === "live", "bob back and live", 10_000);
  await sleep(1500); // anything the relay would announce (a leave, a join) has arrived by now
  const after = await p.evaluate((i) => window.view(i), alice);
  assert.equal(after.changes - before, 0, `change events at alice during bob's blip: ${JSON.stringify(after)}`);
  const bobAfter = await p.evaluate((i) => window.view(i), bob);
  assert.deepEqual(bobAfter.users, bobBefore.users, "bob shows the same members after its blip");
  assert.ok(bobAfter.changes > bobBefore.changes, "bob's own listeners heard stale, then live");

  // Closing one of alice's clients: no change of users at bob (alice stays, with one connection after
  // the relay's grace).
  await p.evaluate((i) => window.closeClient(i), alice2);
  const end = await until(p, bob, (v) => v.users.some((u) => u[0] === "alice" && u[1] === 1), "alice back to 1 connection", 10_000);
  assert.deepEqual(names(end), ["alice", "bob"]);
  for (const i of [alice, bob]) assert.deepEqual((await p.evaluate((i) => window.view(i), i)).errors, []);
  assert.deepEqual(pageErrors, []);
});

test("a relay without presence (--presence=false): status unsupported, no error", async () => {
  const { p, pageErrors } = await page();
  const c = await p.evaluate((url) => window.make(url, "carol", "Carol"), oldUrl);
  const v = await until(p, c, (v) => v.status === "unsupported", "unsupported");
  assert.equal(v.state, "open");
  assert.deepEqual(v.errors, []);
  assert.equal(v.problems, 0);
  assert.deepEqual(pageErrors, []);
});

test("a join the relay refuses for good (data over 1 KiB) says closed, onError has the relay's code, and the wasm forgets it", async () => {
  const { p, pageErrors } = await page();
  const c = await p.evaluate((url) => window.make(url, "erin", "Erin", { id: 3, note: "x".repeat(2000) }), wsUrl);
  const v = await until(p, c, (v) => v.status === "closed", "closed once refused (it waited for a sync before)");
  assert.equal(v.errors.length, 1, v.errors.join("\n"));
  assert.match(v.errors[0], /^too_large .*presence/);
  assert.equal(v.changes, 1, "its listener heard the status change once");
  // The membership was the client's only work: forgotten, it no longer keeps the connection (a client
  // with subscriptions stays connected, and does not send the join again after a reconnect).
  const idle = await until(p, c, (v) => v.state === "idle", "idle: nothing left to do");
  assert.equal(idle.errors.length, 1, idle.errors.join("\n"));
  assert.equal(idle.status, "closed");
  const sent = await p.evaluate(() => window.sent.map((f) => f.action));
  assert.deepEqual(sent, ["join", "leave"], "one join; the leave that ended it in the wasm");
  assert.deepEqual(pageErrors, []);
});

test("a hostile server's presence frames are counted and reported, never thrown", async () => {
  const { p, pageErrors } = await page();
  const c = await p.evaluate((url) => window.make(url, "dave", "Dave"), hostile.url);
  const v = await until(p, c, (v) => v.status === "live" && v.users.length === 1, "the good sync after the bad frames");
  assert.deepEqual(v.users, [["good", 1, false, null]]);
  assert.equal(v.problems, 8, `every bad frame counted: ${JSON.stringify(v)}`);
  assert.equal(v.errors.length, 8);
  assert.ok(v.errors.every((e) => e.includes("presence frame")), v.errors.join("\n"));
  assert.equal(v.state, "open");
  assert.deepEqual(pageErrors, []);
});

test("React's StrictMode around usePresence: one join, no leave, the others see it once", async () => {
  const { p, pageErrors } = await page();
  const watcher = await p.evaluate((url) => window.make(url, "watcher", "Watcher"), wsUrl);
  // Members of the earlier tests' pages may still be listed (their grace): count from here.
  const { users: base } = await until(p, watcher, (v) => v.status === "live", "the watcher is live");
  await p.evaluate((url) => {
    window.strictClient = window.createLiveClient({ url });
    window.unmountStrict = window.mountStrict(window.strictClient);
  }, wsUrl);
  const seen = await until(p, watcher, (v) => v.users.length === base.length + 1, "the watcher sees the StrictMode component's client");
  await p.waitForFunction(() => window.strictView?.status === "live" && window.strictView.others.includes("watcher"));
  await sleep(500);
  const after = await p.evaluate((i) => window.view(i), watcher);
  assert.equal(after.changes, seen.changes, "one change at the watcher: the join, no leave and join again");
  const view = await p.evaluate(() => window.strictView);
  assert.ok(view.others.includes("watcher"));
  assert.equal(view.self?.length, 32, "its own entry: open mode without `user`, the member key");
  const frames = await p.evaluate(() => window.sent.filter((f) => f.data?.mode === "edit" || f.action === "leave"));
  assert.deepEqual(
    frames.map((f) => f.action),
    ["join"],
    `StrictMode mounted twice, one membership: ${JSON.stringify(frames)}`,
  );
  assert.deepEqual(frames[0].data, { id: 3, mode: "edit" });
  assert.deepEqual(await p.evaluate(() => [window.mounts, window.unmounts]), [2, 1], "StrictMode did mount twice");
  // Unmounted: it leaves, once.
  await p.evaluate(() => window.unmountStrict());
  await until(p, watcher, (v) => v.users.length === base.length, "gone at the watcher", 3000);
  const leaves = await p.evaluate(() => window.sent.filter((f) => f.action === "leave").length);
  assert.equal(leaves, 1);
  assert.deepEqual(pageErrors, []);
});

test("two relay nodes over Redis: seen across nodes; a killed node's client resumes on the other, 0 change events", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "wlp-presence-redis-"));
  const port = await new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
  const redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir], { stdio: "ignore" });
  t.after(() => {
    redis.kill();
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => connect(port, "127.0.0.1").on("connect", function () {
      this.destroy();
      resolve(true);
    }).on("error", () => resolve(false)));
    if (up) break;
    await sleep(50);
  }
  const flags = ["--redis", `redis://127.0.0.1:${port}`];
  const one = await startRelay(flags);
  const two = await startRelay(flags);
  t.after(() => {
    one.child.kill();
    two.child.kill();
  });
  const ws = (r) => r.url.replace("http://", "ws://") + "/ws";
  const { p, pageErrors } = await page();
  // Frank given both nodes (the client's relays: the first, then round robin after a failure); the node
  // he is on (`stats.url`: node two unless its first attempt failed) is the one killed, Erin watches
  // from the other.
  const frank = await p.evaluate((urls) => window.make(urls, "frank", "Frank"), [ws(two), ws(one)]);
  await until(p, frank, (v) => v.status === "live", "frank live");
  const frankAt = await p.evaluate((i) => window.view(i), frank);
  const frankUrl = frankAt.url;
  const [dying, staying] = frankUrl === ws(one) ? [one, two] : [two, one];
  const watcher = await p.evaluate((url) => window.make(url, "erin", "Erin"), ws(staying));
  await until(p, watcher, (v) => v.status === "live" && v.users.some((u) => u[0] === "frank"), "frank seen on the other node");
  await until(p, frank, (v) => v.users.some((u) => u[0] === "erin"), "erin seen on frank's node");
  await sleep(500);
  const before = await p.evaluate((i) => window.view(i), watcher);
  dying.child.kill("SIGKILL");
  // He may be open again on the other node (100 ms backoff) before a poll sees him closed: a new
  // connection counts as having lost his node.
  await until(p, frank, (v) => v.state !== "open" || v.connections > frankAt.connections, `frank lost his node (${frankUrl})`, 5000);
  await until(p, frank, (v) => v.state === "open" && v.status === "live", "frank live again on the other node", 10_000);
  assert.equal(await p.evaluate((i) => window.relayOf(i), frank), ws(staying));
  // Node two's members expire 8 s after its last refresh (and are announced), unless resumed: past that.
  await sleep(9500);
  const after = await p.evaluate((i) => window.view(i), watcher);
  assert.equal(after.changes - before.changes, 0, `change events at the watcher: ${JSON.stringify(after)}`);
  assert.deepEqual(after.users, before.users);
  assert.deepEqual(pageErrors, []);
});
