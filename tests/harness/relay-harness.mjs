// Runs a command against a real live-relay process, and lets that command's tests restart the relay.
//
//   node tests/harness/relay-harness.mjs [--relay PATH] [relay flags...] -- COMMAND [ARGS...]
//
// Starts `live-relay` on a free loopback port and a control server on another, then runs COMMAND with
//   LIVE_RELAY_WS     ws://127.0.0.1:PORT/ws
//   LIVE_RELAY_HTTP   http://127.0.0.1:PORT
//   LIVE_HARNESS_URL  http://127.0.0.1:CTRL   (POST /restart kills the relay and starts it again on the same port)
//   LIVE_PROXY_WS     ws://127.0.0.1:PROXY/ws  (a TCP proxy to the relay that the tests can break:
//                     POST /proxy/cut drops every proxied connection, /proxy/down also refuses new ones
//                     until /proxy/up, /proxy/stall holds all bytes until /proxy/unstall;
//                     /proxy/flap?min_ms=300&max_ms=700 cuts every connection min..max ms after it
//                     was accepted, by RST or FIN at random, until /proxy/steady, which answers the
//                     counts; /proxy/blackhole?ms=3000 holds every byte, and cuts nothing, for ms)
//   LIVE_CLOSED_WS    ws://127.0.0.1:CLOSED/ws  a loopback port where nothing listens (connections are
//                     refused: a relay node that is down)
//   LIVE_AUTH_RELAY_WS    ws://127.0.0.1:AUTH/ws  a second relay with authentication on (`--jwt-secret`,
//   LIVE_AUTH_RELAY_HTTP  http://127.0.0.1:AUTH   a random 32-byte secret; the flags given here apply
//                     to it too). The control server mints its tokens: GET /token?sub=u1&ttl_ms=2000&
//                     channels=a,b/*&publish=x&scopes=s → an HS256 JWT (text/plain) with `sub`, `iat`,
//                     `exp` = ceil((now + ttl_ms) / 1000) s (so it lives at least ttl_ms), `channels`
//                     and `publish` (comma-split patterns; absent: none) and `scopes` when given.
//                     Empty when the relay cannot start with --jwt-secret (its tests then fail saying so).
//   LIVE_HOSTILE_WS   ws://127.0.0.1:HOSTILE/ws  with --hostile: the scripted hostile WebSocket server of
//                     tests/hostile/server.mjs (a scenario per connection: ?scenario=NAME&run=ID)
//   LIVE_SIMPLE_WS    ws://127.0.0.1:SIMPLE/  with --simple: tests/simple/server.mjs, a server speaking the
//   LIVE_SIMPLE_HTTP  http://127.0.0.1:SIMPLE  seed's minimal WebSocket protocol (`protocol: "simple"`);
//                     its control endpoints (/control/publish, /control/drop, /control/frames) on HTTP
//   LIVE_CLUSTER_WS   three relay nodes of one cluster (`--redis` on a redis-server the harness starts on
//   LIVE_CLUSTER_HTTP a free port, without persistence): comma-separated ws://…/ws and http:// URLs, in
//                     node order. POST /cluster/kill/<i> kills node i (SIGKILL, by pid). Empty when
//                     Redis or a node cannot start (the cluster test then fails saying so).
// and exits with COMMAND's status, stopping the relays (after printing the authenticated relay's
// non-zero /metrics samples). POST /report prints its body (figures a test
// measured) to stderr.
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { createServer as createTcpServer, connect } from "node:net";
import { once } from "node:events";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const argv = process.argv.slice(2);
const split = argv.indexOf("--");
if (split < 0 || split === argv.length - 1) {
  console.error("usage: relay-harness.mjs [--relay PATH] [relay flags...] -- COMMAND [ARGS...]");
  process.exit(2);
}
let ours = argv.slice(0, split);
const command = argv.slice(split + 1);
let relayPath = "target/server/live-relay";
const r = ours.indexOf("--relay");
if (r >= 0) {
  relayPath = ours[r + 1];
  ours = ours.filter((_, i) => i !== r && i !== r + 1);
}
// --igniter: also start the Igniter.js server of tests/igniter (LIVE_IGNITER_URL).
const withIgniter = ours.includes("--igniter");
ours = ours.filter((a) => a !== "--igniter");
// --hostile: also start the scripted hostile WebSocket server of tests/hostile (LIVE_HOSTILE_WS).
const withHostile = ours.includes("--hostile");
ours = ours.filter((a) => a !== "--hostile");
// --simple: also start the seed-protocol WebSocket server of tests/simple (LIVE_SIMPLE_WS).
const withSimple = ours.includes("--simple");
ours = ours.filter((a) => a !== "--simple");
const relayFlags = ours;

async function freePort() {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address();
  server.close();
  await once(server, "close");
  return port;
}

const log = (msg) => console.error(`[relay-harness] ${msg}`);
const port = await freePort();
let relay = null;
let restarts = 0;

function startRelay() {
  return spawnRelay(port, []).then((child) => {
    relay = child;
    return child;
  });
}

/** Starts live-relay on `relayPort` with the harness's flags and `extra`; resolves once it listens. */
function spawnRelay(relayPort, extra) {
  return new Promise((resolve, reject) => {
    const child = spawn(relayPath, ["--addr", `127.0.0.1:${relayPort}`, ...relayFlags, ...extra], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`live-relay did not say it was listening within 10 s: ${out}`)), 10_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start ${relayPath}: ${e.message}`));
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (!child.listening) reject(new Error(`live-relay${extra.length ? " (with authentication)" : ""} exited before listening (code ${code}, signal ${signal}): ${out}`));
      else if (!child.expectedExit) log(`relay on port ${relayPort} exited unexpectedly (code ${code}, signal ${signal})`);
    });
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (out.includes("listening on") && !child.listening) {
        child.listening = true;
        clearTimeout(timer);
        resolve(child);
      }
    });
  });
}

async function stopRelay(signal) {
  if (!relay || relay.exitCode !== null) return;
  relay.expectedExit = true;
  const exited = once(relay, "exit");
  relay.kill(signal);
  await exited;
}

await startRelay();
log(`relay on 127.0.0.1:${port}`);

// The relay with authentication on, and the secret its tokens are signed with.
const jwtSecret = randomBytes(32).toString("hex");
const authPort = await freePort();
let authRelay = null;
try {
  authRelay = await spawnRelay(authPort, ["--jwt-secret", jwtSecret]);
  log(`relay with authentication on 127.0.0.1:${authPort}`);
} catch (e) {
  log(`NOT STARTED: the relay with authentication (--jwt-secret): ${e.message.slice(0, 400)}`);
}

// A cluster: a redis-server without persistence and three relay nodes on it.
const cluster = { redis: null, dir: null, nodes: [] };
try {
  const redisPort = await freePort();
  cluster.dir = mkdtempSync(join(tmpdir(), "relay-harness-redis-"));
  cluster.redis = spawn("redis-server", ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", cluster.dir], { stdio: "ignore" });
  const redisStarted = Date.now();
  while (!(await reachable(redisPort))) {
    if (Date.now() - redisStarted > 10_000 || cluster.redis.exitCode !== null) throw new Error("redis-server did not start (apt-get install redis-server)");
    await new Promise((ok) => setTimeout(ok, 50));
  }
  for (let i = 0; i < 3; i++) {
    const nodePort = await freePort();
    const child = await spawnRelay(nodePort, ["--redis", `redis://127.0.0.1:${redisPort}`, "--redis-prefix", "harness"]);
    cluster.nodes.push({ port: nodePort, child });
  }
  for (const node of cluster.nodes) await waitHealthy(node.port);
  log(`cluster: Redis on 127.0.0.1:${redisPort}, nodes on ${cluster.nodes.map((n) => n.port).join(", ")}`);
} catch (e) {
  log(`NOT STARTED: the cluster (Redis and three nodes): ${e.message.slice(0, 400)}`);
  for (const node of cluster.nodes) node.child.kill("SIGKILL");
  cluster.nodes = [];
}

/** Whether something accepts TCP connections on `port`. */
function reachable(port) {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.on("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.on("error", () => resolve(false));
  });
}

/** Waits until the relay on `port` answers /healthz with 200 (a cluster node reaches Redis). */
async function waitHealthy(relayPort) {
  const started = Date.now();
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${relayPort}/healthz`)).ok) return;
    } catch {
      // not serving yet
    }
    if (Date.now() - started > 10_000) throw new Error(`the node on ${relayPort} never became healthy`);
    await new Promise((ok) => setTimeout(ok, 50));
  }
}

const base64url = (value) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

/** An HS256 JWT for the auth relay, from the query of `GET /token`. */
function mintToken(query) {
  const list = (name) => (query.has(name) ? query.get(name).split(",").filter(Boolean) : undefined);
  const ttl = Number(query.get("ttl_ms") ?? 60_000);
  if (!Number.isFinite(ttl) || ttl < 0) throw new Error(`ttl_ms must be a non-negative number, got ${query.get("ttl_ms")}`);
  const now = Date.now();
  const claims = {
    sub: query.get("sub") ?? "u1",
    iat: Math.floor(now / 1000),
    exp: Math.ceil((now + ttl) / 1000),
    channels: list("channels") ?? [],
    publish: list("publish") ?? [],
  };
  const scopes = list("scopes");
  if (scopes) claims.scopes = scopes;
  const unsigned = `${base64url({ alg: "HS256", typ: "JWT" })}.${base64url(claims)}`;
  return `${unsigned}.${createHmac("sha256", jwtSecret).update(unsigned).digest("base64url")}`;
}

// The breakable TCP proxy.
const proxied = new Set();
let proxyDown = false;
let stalled = false;
// Flapping (POST /proxy/flap): every proxied connection is cut a random 300-700 ms (min_ms..max_ms)
// after it was accepted, half of the cuts by RST (resetAndDestroy) and half by FIN (destroy), until
// POST /proxy/steady. A blackhole (POST /proxy/blackhole?ms=N) holds every byte of every connection,
// old and new (new ones are accepted and hang), for N ms and cuts nothing meanwhile: a cut due
// during it happens 300-700 ms after it ends.
let flap = null;
let blackholeUntil = 0;
let blackholeTimer = null;
const flapCounts = () => ({ flapping: flap !== null, cuts_rst: flap?.rst ?? 0, cuts_fin: flap?.fin ?? 0, blackholes: flap?.blackholes ?? 0, accepted: flap?.accepted ?? 0 });
const holding = () => stalled || Date.now() < blackholeUntil;
const between = (lo, hi) => lo + Math.random() * (hi - lo);
function scheduleFlapCut(pair, delayMs) {
  clearTimeout(pair.flapTimer);
  pair.flapTimer = setTimeout(() => {
    if (!flap || !proxied.has(pair)) return;
    const now = Date.now();
    if (now < blackholeUntil) return scheduleFlapCut(pair, blackholeUntil - now + between(flap.minMs, flap.maxMs));
    proxied.delete(pair);
    if (Math.random() < 0.5) {
      flap.rst += 1;
      pair.client.resetAndDestroy();
    } else {
      flap.fin += 1;
      pair.client.destroy();
    }
    pair.upstream.destroy();
  }, delayMs);
}
const proxy = createTcpServer((client) => {
  if (proxyDown) return client.destroy();
  const upstream = connect(port, "127.0.0.1");
  const pair = { client, upstream, flapTimer: null };
  proxied.add(pair);
  const drop = () => {
    clearTimeout(pair.flapTimer);
    client.destroy();
    upstream.destroy();
    proxied.delete(pair);
  };
  client.on("error", drop).on("close", drop);
  upstream.on("error", drop).on("close", drop);
  client.pipe(upstream);
  upstream.pipe(client);
  if (holding()) {
    client.pause();
    upstream.pause();
  }
  if (flap) {
    flap.accepted += 1;
    scheduleFlapCut(pair, between(flap.minMs, flap.maxMs));
  }
});
proxy.listen(0, "127.0.0.1");
await once(proxy, "listening");
/** A non-negative number from the query, or `fallback`. */
function queryMs(query, name, fallback) {
  if (!query.has(name)) return fallback;
  const value = Number(query.get(name));
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number of ms, got ${query.get(name)}`);
  return value;
}
function release() {
  for (const { client, upstream } of proxied) {
    client.resume();
    upstream.resume();
  }
}
const proxyActions = {
  cut() {
    for (const pair of proxied) {
      clearTimeout(pair.flapTimer);
      pair.client.resetAndDestroy();
      pair.upstream.destroy();
    }
    proxied.clear();
  },
  down() {
    proxyDown = true;
    this.cut();
  },
  up() {
    proxyDown = false;
  },
  stall() {
    stalled = true;
    for (const { client, upstream } of proxied) {
      client.pause();
      upstream.pause();
    }
  },
  unstall() {
    stalled = false;
    if (!holding()) release();
  },
  flap(query) {
    const minMs = queryMs(query, "min_ms", 300);
    const maxMs = queryMs(query, "max_ms", 700);
    if (maxMs < minMs) throw new Error(`max_ms (${maxMs}) is below min_ms (${minMs})`);
    flap = { minMs, maxMs, rst: 0, fin: 0, blackholes: 0, accepted: 0 };
    for (const pair of proxied) scheduleFlapCut(pair, between(minMs, maxMs));
    return flapCounts();
  },
  blackhole(query) {
    const ms = queryMs(query, "ms", 3000);
    if (flap) flap.blackholes += 1;
    blackholeUntil = Date.now() + ms;
    for (const { client, upstream } of proxied) {
      client.pause();
      upstream.pause();
    }
    clearTimeout(blackholeTimer);
    blackholeTimer = setTimeout(() => {
      blackholeUntil = 0;
      if (!holding()) release();
    }, ms);
    return { ...flapCounts(), blackhole_ms: ms };
  },
  steady() {
    const counts = flapCounts();
    flap = null;
    for (const pair of proxied) clearTimeout(pair.flapTimer);
    clearTimeout(blackholeTimer);
    blackholeUntil = 0;
    if (!holding()) release();
    return counts;
  },
};

const control = createServer(async (req, res) => {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Methods", "POST, OPTIONS");
  res.setHeader("Access-Control-Allow-Headers", "content-type");
  if (req.method === "OPTIONS") return res.end();
  try {
    const proxyUrl = req.method === "POST" && req.url.startsWith("/proxy/") ? new URL(req.url, "http://harness") : null;
    const action = proxyUrl?.pathname.slice("/proxy/".length);
    if (action && Object.hasOwn(proxyActions, action)) {
      const result = proxyActions[action](proxyUrl.searchParams);
      res.setHeader("Content-Type", "application/json");
      return res.end(JSON.stringify({ proxy: action, ...result }));
    }
    if (req.method === "GET" && req.url.startsWith("/token")) {
      const token = mintToken(new URL(req.url, "http://harness").searchParams);
      res.setHeader("Content-Type", "text/plain");
      return res.end(token);
    }
    const kill = req.method === "POST" && req.url.match(/^\/cluster\/kill\/(\d+)$/);
    if (kill) {
      const node = cluster.nodes[Number(kill[1])];
      if (!node) throw new Error(`no cluster node ${kill[1]}`);
      node.child.expectedExit = true;
      const exited = node.child.exitCode === null ? once(node.child, "exit") : null;
      node.child.kill("SIGKILL");
      await exited;
      log(`cluster node ${kill[1]} (port ${node.port}, pid ${node.child.pid}) killed`);
      return res.end(JSON.stringify({ killed: Number(kill[1]) }));
    }
    if (req.method === "POST" && req.url === "/report") {
      let body = "";
      for await (const chunk of req) body += chunk;
      console.error(`[report] ${body}`);
      return res.end("{}");
    }
    if (req.method === "POST" && req.url === "/restart") {
      await stopRelay("SIGKILL");
      await startRelay();
      restarts += 1;
      log(`relay restarted (${restarts})`);
      res.setHeader("Content-Type", "application/json");
      return res.end(JSON.stringify({ restarted: restarts }));
    }
    res.statusCode = 404;
    res.end(`unknown control request ${req.method} ${req.url}`);
  } catch (e) {
    log(`control request failed: ${e.message}`);
    res.statusCode = 500;
    res.end(e.message);
  }
});
control.listen(0, "127.0.0.1");
await once(control, "listening");

let igniter = null;
let igniterUrl = "";
if (withIgniter) {
  igniter = spawn(process.execPath, ["tests/igniter/server.mjs"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  igniter.stdout.on("data", (c) => (out += c));
  const started = Date.now();
  while (!/igniter listening on (http:\/\/\S+)/.test(out)) {
    if (Date.now() - started > 15_000 || igniter.exitCode !== null) throw new Error(`the Igniter server did not start: ${out}`);
    await once(igniter.stdout, "data");
  }
  igniterUrl = out.match(/igniter listening on (http:\/\/\S+)/)[1];
  log(`Igniter.js server on ${igniterUrl}`);
}
// With --igniter, also a stock Igniter.js app (tests/igniter/stock-server.mjs: only its controllers'
// channels exist, nothing auto-registered) for tests/igniter_stock.rs (LIVE_IGNITER_STOCK_URL).
let igniterStock = null;
let igniterStockUrl = "";
if (withIgniter) {
  igniterStock = spawn(process.execPath, ["tests/igniter/stock-server.mjs"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  igniterStock.stdout.on("data", (c) => (out += c));
  const started = Date.now();
  while (!/igniter stock listening on (http:\/\/\S+)/.test(out)) {
    if (Date.now() - started > 15_000 || igniterStock.exitCode !== null) throw new Error(`the stock Igniter server did not start: ${out}`);
    await once(igniterStock.stdout, "data");
  }
  igniterStockUrl = out.match(/igniter stock listening on (http:\/\/\S+)/)[1];
  log(`stock Igniter.js app on ${igniterStockUrl}`);
}

let hostile = null;
let hostileUrl = "";
if (withHostile) {
  hostile = spawn(process.execPath, ["tests/hostile/server.mjs"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  hostile.stdout.on("data", (c) => (out += c));
  const started = Date.now();
  while (!/hostile listening on (ws:\/\/\S+)/.test(out)) {
    if (Date.now() - started > 15_000 || hostile.exitCode !== null) throw new Error(`the hostile server did not start: ${out}`);
    await once(hostile.stdout, "data");
  }
  hostileUrl = out.match(/hostile listening on (ws:\/\/\S+)/)[1];
  log(`hostile WebSocket server on ${hostileUrl}`);
}

let simple = null;
let simpleUrl = "";
if (withSimple) {
  simple = spawn(process.execPath, ["tests/simple/server.mjs"], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  simple.stdout.on("data", (c) => (out += c));
  const started = Date.now();
  while (!/simple listening on (http:\/\/\S+)/.test(out)) {
    if (Date.now() - started > 15_000 || simple.exitCode !== null) throw new Error(`the simple-protocol server did not start: ${out}`);
    await once(simple.stdout, "data");
  }
  simpleUrl = out.match(/simple listening on (http:\/\/\S+)/)[1];
  log(`simple-protocol WebSocket server on ${simpleUrl}`);
}

// A port that was free a moment ago and that nothing here listens on.
const closedPort = await freePort();

const env = {
  ...process.env,
  LIVE_CLOSED_WS: `ws://127.0.0.1:${closedPort}/ws`,
  LIVE_IGNITER_URL: igniterUrl,
  LIVE_IGNITER_STOCK_URL: igniterStockUrl,
  LIVE_HOSTILE_WS: hostileUrl,
  LIVE_SIMPLE_WS: simpleUrl ? `${simpleUrl.replace(/^http/, "ws")}/` : "",
  LIVE_SIMPLE_HTTP: simpleUrl,
  LIVE_RELAY_WS: `ws://127.0.0.1:${port}/ws`,
  LIVE_RELAY_HTTP: `http://127.0.0.1:${port}`,
  LIVE_HARNESS_URL: `http://127.0.0.1:${control.address().port}`,
  LIVE_PROXY_WS: `ws://127.0.0.1:${proxy.address().port}/ws`,
  LIVE_PROXY_HTTP: `http://127.0.0.1:${proxy.address().port}`,
  LIVE_AUTH_RELAY_WS: authRelay ? `ws://127.0.0.1:${authPort}/ws` : "",
  LIVE_AUTH_RELAY_HTTP: authRelay ? `http://127.0.0.1:${authPort}` : "",
  LIVE_CLUSTER_WS: cluster.nodes.map((n) => `ws://127.0.0.1:${n.port}/ws`).join(","),
  LIVE_CLUSTER_HTTP: cluster.nodes.map((n) => `http://127.0.0.1:${n.port}`).join(","),
};
const child = spawn(command[0], command.slice(1), { stdio: "inherit", env });
const [code, signal] = await once(child, "exit");
// What the authenticated relay counted over the run (the figures of the auth tests, for the record).
if (authRelay && authRelay.exitCode === null) {
  try {
    const text = await (await fetch(`http://127.0.0.1:${authPort}/metrics`)).text();
    const lines = text.split("\n").filter((l) => l.startsWith("live_relay_") && !/ 0$/.test(l));
    log(`metrics of the relay with authentication after the run (non-zero samples):\n  ${lines.join("\n  ")}`);
  } catch (e) {
    log(`could not read the authenticated relay's /metrics: ${e.message}`);
  }
}
await stopRelay("SIGTERM");
if (authRelay && authRelay.exitCode === null) {
  authRelay.expectedExit = true;
  authRelay.kill("SIGTERM");
}
igniter?.kill();
igniterStock?.kill();
hostile?.kill();
simple?.kill();
for (const node of cluster.nodes) {
  node.child.expectedExit = true;
  node.child.kill("SIGTERM");
}
cluster.redis?.kill("SIGKILL");
if (cluster.dir) rmSync(cluster.dir, { recursive: true, force: true });
proxyActions.cut();
proxy.close();
control.close();
process.exit(code ?? (signal ? 1 : 0));
