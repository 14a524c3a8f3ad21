// The real peers of the tests of wasm-live-provider/server (pkg/server.js): live-relay processes on free
// loopback ports, WebSocket clients of them (Node's WebSocket: `node --experimental-websocket` on Node 20,
// as the Makefile runs these tests), and a loopback HTTP proxy in front of a relay that fails on demand.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:http";
import { existsSync, statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";

/** The repository's root. */
export const root = resolve(import.meta.dirname, "../..");

/** The package's built server helper (scripts/build-pkg.sh copies it from pkg-template/). */
export const serverModule = resolve(root, "pkg/server.js");

/**
 * The relay binary: `LIVE_RELAY_BINARY`, else the newest of the builds `make relay` makes
 * (target/server/ or target/release/).
 */
export function relayBinary() {
  if (process.env.LIVE_RELAY_BINARY) return process.env.LIVE_RELAY_BINARY;
  const found = ["target/server/live-relay", "target/release/live-relay"]
    .map((p) => resolve(root, p))
    .filter((p) => existsSync(p))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
  if (found.length === 0) throw new Error("no live-relay binary in target/server/ or target/release/: run `make relay`");
  return found[0];
}

export const randomSecret = () => randomBytes(32).toString("hex");
export const randomApiKey = () => `key-${randomBytes(12).toString("hex")}`;

const LISTENING = /listening on (http:\/\/\S+)/;

/** Starts `live-relay --addr 127.0.0.1:0 ...flags`; resolves to `{ child, http, ws, stop() }` once it listens. */
export async function startRelay(flags) {
  const child = spawn(relayBinary(), ["--addr", "127.0.0.1:0", ...flags], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c) => (out += c));
  child.stderr.on("data", (c) => (err += c));
  const exited = once(child, "exit").then(([code, signal]) => {
    throw new Error(`live-relay ${flags.join(" ")} exited (${code ?? signal}) before listening: ${out}${err}`);
  });
  try {
    while (!LISTENING.test(out)) await Promise.race([once(child.stdout, "data"), exited]);
  } finally {
    exited.catch(() => {}); // the relay exits when the test stops it: that is not an error any more
  }
  const http = out.match(LISTENING)[1];
  return {
    child,
    http,
    ws: `${http.replace(/^http/, "ws")}/ws`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const done = once(child, "exit");
      child.kill("SIGTERM");
      await done;
    },
  };
}

/** Waits for the first of the socket's frames (parsed) that `accept` takes, or its close; rejects after `ms`. */
function nextFrame(socket, accept = () => true, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no frame within ${ms} ms (received: ${JSON.stringify(socket.frames)})`));
    }, ms);
    const onMessage = (m) => {
      const frame = JSON.parse(m.data);
      if (!accept(frame)) return;
      cleanup();
      resolve(frame);
    };
    const onClose = (e) => {
      cleanup();
      resolve({ op: "$closed", code: e.code, reason: e.reason });
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.removeEventListener("message", onMessage);
      socket.removeEventListener("close", onClose);
    };
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", onClose);
  });
}

/** Opens a protocol v1 connection and keeps every frame it receives in `socket.frames`. */
async function open(wsUrl) {
  if (typeof WebSocket !== "function") throw new Error("no global WebSocket: run these tests with `node --experimental-websocket` on Node 20");
  const socket = new WebSocket(wsUrl, ["wlp.v1"]);
  socket.frames = [];
  socket.addEventListener("message", (m) => socket.frames.push(JSON.parse(m.data)));
  socket.closed = new Promise((resolve) => socket.addEventListener("close", (e) => resolve(e.code)));
  const hello = await nextFrame(socket, (f) => f.op === "hello");
  if (hello.op !== "hello") throw new Error(`the relay at ${wsUrl} did not say hello: ${JSON.stringify(hello)}`);
  return socket;
}

/**
 * Sends `token` in an `auth` frame after `hello`; resolves to `{ frame, closeCode }`: the relay's answer
 * (`authed`, or the `error` frame) and, after an error, the close code that followed.
 */
export async function authenticate(wsUrl, token) {
  const socket = await open(wsUrl);
  socket.send(JSON.stringify({ op: "auth", token }));
  const frame = await nextFrame(socket, (f) => f.op === "authed" || f.op === "error");
  let closeCode;
  if (frame.op === "authed") socket.close();
  else closeCode = await Promise.race([socket.closed, new Promise((r) => setTimeout(() => r("not closed within 3 s"), 3000))]);
  return { frame, closeCode };
}

/**
 * A subscriber of `channel` (authenticated with `token`): `events` is every `event` frame it received;
 * `close()` ends it.
 */
export async function subscribe(wsUrl, token, channel) {
  const socket = await open(wsUrl);
  socket.send(JSON.stringify({ op: "auth", token }));
  const authed = await nextFrame(socket, (f) => f.op === "authed" || f.op === "error");
  if (authed.op !== "authed") throw new Error(`the subscriber's token was refused: ${JSON.stringify(authed)}`);
  socket.send(JSON.stringify({ op: "subscribe", channels: [{ channel }] }));
  const subscribed = await nextFrame(socket, (f) => f.op === "subscribed" || f.op === "error");
  if (subscribed.op !== "subscribed") throw new Error(`could not subscribe to ${channel}: ${JSON.stringify(subscribed)}`);
  return {
    get events() {
      return socket.frames.filter((f) => f.op === "event" && f.channel === channel);
    },
    close: () => socket.close(),
  };
}

/**
 * A loopback HTTP proxy in front of `upstream` (the relay's http URL). Each request takes the next
 * action of `proxy.plan` (then "forward" when the plan is empty) and is recorded in `proxy.requests`
 * (`{ at, path, auth, body, action }`). Actions:
 *   "forward"            pass it to the relay and its answer back
 *   { status, headers?, body? }   answer this instead, relay untouched
 *   "reset"              reset the connection (RST) without answering, relay untouched
 *   "stall"              never answer
 *   "forward-then-504"   pass it to the relay (published), answer 504 outcome_unknown instead
 *   "forward-then-reset" pass it to the relay (published), then reset the connection
 */
export async function startProxy(upstream) {
  const proxy = { plan: [], requests: [], url: "" };
  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    let body;
    try {
      body = JSON.parse(raw.toString("utf8"));
    } catch (e) {
      body = { unreadable: e.message, length: raw.length };
    }
    const action = proxy.plan.length > 0 ? proxy.plan.shift() : "forward";
    proxy.requests.push({ at: performance.now(), path: req.url, auth: req.headers.authorization, body, action });
    if (action === "reset") return req.socket.resetAndDestroy();
    if (action === "stall") return;
    if (typeof action === "object") {
      res.writeHead(action.status, { "content-type": "application/json", ...action.headers });
      return res.end(typeof action.body === "string" ? action.body : JSON.stringify(action.body ?? { error: { code: "unavailable", message: "the test proxy says so" } }));
    }
    const headers = { "content-type": req.headers["content-type"] ?? "application/json" };
    if (req.headers.authorization) headers.authorization = req.headers.authorization;
    const answer = await fetch(`${upstream}${req.url}`, { method: req.method, headers, body: raw });
    const text = await answer.text();
    proxy.requests.at(-1).upstream = { status: answer.status, body: text };
    if (action === "forward-then-reset") return req.socket.resetAndDestroy();
    if (action === "forward-then-504") {
      res.writeHead(504, { "content-type": "application/json" });
      return res.end(JSON.stringify({ error: { code: "outcome_unknown", message: "the test proxy forwarded it and says the outcome is unknown" } }));
    }
    const out = { "content-type": answer.headers.get("content-type") ?? "application/json" };
    if (answer.headers.has("retry-after")) out["retry-after"] = answer.headers.get("retry-after");
    res.writeHead(answer.status, out);
    res.end(text);
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  proxy.url = `http://127.0.0.1:${server.address().port}`;
  proxy.close = () => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  };
  return proxy;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
