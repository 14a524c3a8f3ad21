#!/usr/bin/env node
// Loopback Igniter.js server (@igniter-js/core, pinned in package.json) exposing
// Igniter's own realtime SSE endpoint, plus two control endpoints implemented
// as ordinary Igniter mutations. Plain node:http, no Next.js / Express.
//
//   node tests/igniter/server.mjs [--port N] [--base-path /api/v1]
//
// Prints exactly one line on stdout when ready:
//   igniter listening on http://127.0.0.1:PORT
// Everything else (debug logs) goes to stderr.
//
// Environment:
//   PORT=N                      listen port (default 0 = pick a free port)
//   IGNITER_BASE_PATH=/api/v1   Igniter basePATH (the Igniter client hard-codes /api/v1)
//   IGNITER_STRICT_CHANNELS=1   do NOT auto-register channel names requested on the SSE
//                               URL; unknown channels then get Igniter's own 500 error
//   IGNITER_DEBUG=1             Igniter debug logs to stderr
//
// See README.md for the observed wire format.

import http from "node:http";
import { Igniter } from "@igniter-js/core";
import { argValue, createMemoryStore, CORS, readBody } from "./fixture.mjs";

// ---------------------------------------------------------------- options
const HOST = "127.0.0.1";
const PORT = Number(argValue("--port") ?? process.env.PORT ?? 0);
const BASE_PATH = (argValue("--base-path") ?? process.env.IGNITER_BASE_PATH ?? "/api/v1").replace(/\/+$/, "");
const STRICT_CHANNELS = process.env.IGNITER_STRICT_CHANNELS === "1";
const DEBUG = process.env.IGNITER_DEBUG === "1";
const SSE_PATH = `${BASE_PATH}/sse/events`;

// ---------------------------------------------------------------- adapters
// The store: createMemoryStore (fixture.mjs).

// Minimal logger adapter writing to stderr (stdout is reserved for the ready line).
function createStderrLogger(component = "igniter") {
  const out = (level) => (msg, ...rest) => {
    const extra = rest.length ? " " + rest.map((r) => { try { return JSON.stringify(r); } catch { return String(r); } }).join(" ") : "";
    process.stderr.write(`[${level}] ${component}: ${msg}${extra}\n`);
  };
  const logger = {
    log: (level, msg, ctx) => out(level)(msg, ctx),
    fatal: out("fatal"), error: out("error"), warn: out("warn"), info: out("info"),
    debug: out("debug"), trace: out("trace"), success: out("success"),
    group() {}, groupEnd() {}, separator() {}, flush: async () => {},
    setLevel() {}, getLevel: () => "debug",
    child: (name) => createStderrLogger(`${component}/${name}`),
  };
  return logger;
}

// Igniter only parses the request body when the action declares a body schema
// (anything with .parse). We avoid a zod dependency with a passthrough schema
// and validate by hand.
const passthrough = { parse: (v) => v };

// ---------------------------------------------------------------- igniter app
let builder = Igniter.context(() => ({ app: "igniter-sse-fixture" }))
  .store(createMemoryStore())
  .config({ basePATH: BASE_PATH });
if (DEBUG) builder = builder.logger(createStderrLogger());
const igniter = builder.create();

// Channels Igniter registers itself when the router is created:
//   "revalidation", "system", and "<controllerKey>.<actionKey>" for every
//   query declared with `stream: true` (below: posts.stream, notifications.stream).
const knownChannels = new Set(["revalidation", "system"]);

const postsController = igniter.controller({
  name: "posts",
  path: "/posts",
  actions: {
    list: igniter.query({
      path: "/",
      handler: ({ response }) => response.success({ posts: [] }),
    }),
    stream: igniter.query({
      path: "/stream",
      stream: true, // registers SSE channel "posts.stream" at router init
      handler: ({ response }) => response.success({ status: "Connected to posts stream" }),
    }),
  },
});

const notificationsController = igniter.controller({
  name: "notifications",
  path: "/notifications",
  actions: {
    stream: igniter.query({
      path: "/stream",
      stream: true, // registers SSE channel "notifications.stream"
      handler: ({ response }) => response.success({ status: "Connected to notifications stream" }),
    }),
  },
});

const controlController = igniter.controller({
  name: "control",
  path: "/control",
  actions: {
    // POST <base>/control/publish {"channel": "...", "data": ..., "type"?: "...", "id"?: "...", "scopes"?: [...]}
    // Calls igniter.realtime.publish(channel, data, { type, id, scopes }) exactly
    // as the Igniter docs do. NOTE: in @igniter-js/core 0.3.40
    // IgniterRealtimeService.publish() forwards only { type, id } to the
    // SSEProcessor; `scopes` is accepted by the type but DROPPED, so custom-channel
    // publishes always go to every subscriber of the channel.
    publish: igniter.mutation({
      path: "/publish",
      method: "POST",
      body: passthrough,
      handler: async ({ request, response }) => {
        const b = request.body ?? {};
        if (typeof b.channel !== "string" || b.channel === "") {
          return response.badRequest("body.channel (non-empty string) is required");
        }
        const options = {};
        if (b.type !== undefined) options.type = b.type;
        if (b.id !== undefined) options.id = b.id;
        if (b.scopes !== undefined) options.scopes = () => b.scopes;
        await igniter.realtime.publish(b.channel, b.data, options);
        knownChannels.add(b.channel); // publish() auto-registers unknown channels
        return response.success({
          published: true,
          channel: b.channel,
          scopesHonoredByIgniter: false,
        });
      },
    }),
    // POST <base>/control/revalidate {"keys": ["posts.list"], "scopes"?: [...], "data"?: ...}
    // Exactly what an Igniter mutation does: response.success(..).revalidate(keys, ctx => scopes).
    revalidate: igniter.mutation({
      path: "/revalidate",
      method: "POST",
      body: passthrough,
      handler: async ({ request, response }) => {
        const b = request.body ?? {};
        const keys = typeof b.keys === "string" ? [b.keys] : b.keys;
        if (!Array.isArray(keys) || keys.some((k) => typeof k !== "string")) {
          return response.badRequest("body.keys (string[]) is required");
        }
        const scopes = Array.isArray(b.scopes) ? b.scopes.map(String) : undefined;
        const opts = b.data === undefined ? keys : { queryKeys: keys, data: b.data };
        return response
          .success({ revalidated: keys, scopes: scopes ?? null })
          .revalidate(opts, scopes ? () => scopes : undefined);
      },
    }),
  },
});

const controllers = {
  posts: postsController,
  notifications: notificationsController,
  control: controlController,
};
for (const [ck, c] of Object.entries(controllers)) {
  for (const [ak, a] of Object.entries(c.actions)) if (a.stream) knownChannels.add(`${ck}.${ak}`);
}

const router = igniter.router({ controllers });

// Igniter registers routes/channels asynchronously (RequestProcessor.initializeAsync).
await new Promise((r) => setTimeout(r, 0));

// Igniter's SSEProcessor refuses (HTTP 500, INVALID_SSE_CHANNEL) any channel that
// is not registered yet, and channels only get registered by stream actions or
// by the first publish. To let a client subscribe to arbitrary channel names
// *before* anything is published, the bridge pre-registers them through the
// public API: igniter.realtime.publish(ch, undefined) on a brand new channel
// registers it and then delivers to 0 connections (no frame anywhere).
async function ensureChannels(url) {
  const param = url.searchParams.get("channels");
  if (!param) return;
  for (const ch of param.split(",")) {
    if (ch === "" || knownChannels.has(ch)) continue;
    await igniter.realtime.publish(ch, undefined, { description: "auto-registered by tests/igniter/server.mjs" });
    knownChannels.add(ch);
  }
}

// ---------------------------------------------------------------- node:http bridge
const server = http.createServer(async (req, res) => {
  try {
    const origin = `http://${req.headers.host ?? `${HOST}:${server.address().port}`}`;
    const url = new URL(req.url, origin);

    if (req.method === "OPTIONS") {
      const allowHeaders = req.headers["access-control-request-headers"];
      res.writeHead(204, { ...CORS, ...(allowHeaders ? { "access-control-allow-headers": allowHeaders } : {}) });
      res.end();
      return;
    }
    if (url.pathname === "/healthz") {
      res.writeHead(200, { ...CORS, "content-type": "text/plain" });
      res.end("ok\n");
      return;
    }
    // Short aliases outside the base path: /control/* -> <base>/control/*
    if (url.pathname.startsWith("/control/")) url.pathname = BASE_PATH + url.pathname;

    if (url.pathname === SSE_PATH && req.method === "GET" && !STRICT_CHANNELS) {
      await ensureChannels(url);
    }

    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
      else if (v !== undefined) headers.set(k, v);
    }
    const hasBody = !["GET", "HEAD"].includes(req.method);
    const body = hasBody ? await readBody(req) : undefined;
    const request = new Request(url, { method: req.method, headers, body: hasBody ? body : undefined });

    const response = await router.handler(request);

    const outHeaders = {};
    response.headers.forEach((v, k) => {
      if (k === "set-cookie") return;
      outHeaders[k] = v;
    });
    const cookies = response.headers.getSetCookie?.() ?? [];
    if (cookies.length) outHeaders["set-cookie"] = cookies;
    res.writeHead(response.status, { ...outHeaders, ...CORS });

    if (!response.body) {
      res.end();
      return;
    }
    const isSSE = (response.headers.get("content-type") ?? "").startsWith("text/event-stream");
    if (isSSE) {
      req.socket.setNoDelay(true);
      res.flushHeaders();
    }
    const reader = response.body.getReader();
    let closed = false;
    res.on("close", () => {
      closed = true;
      // Cancelling makes Igniter's next enqueue throw; it then stops its
      // keep-alive timer. (Its per-channel handler is never removed in 0.3.40.)
      reader.cancel("client disconnected").catch(() => {});
    });
    while (!closed) {
      const { done, value } = await reader.read();
      if (done) break;
      res.write(value);
    }
    if (!closed) res.end();
  } catch (err) {
    process.stderr.write(`bridge error: ${err?.stack ?? err}\n`);
    if (!res.headersSent) res.writeHead(500, { ...CORS, "content-type": "application/json" });
    res.end(JSON.stringify({ error: { message: String(err?.message ?? err), code: "BRIDGE_ERROR" }, data: null }));
  }
});

function shutdown() {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

server.listen(PORT, HOST, () => {
  process.stdout.write(`igniter listening on http://${HOST}:${server.address().port}\n`);
});
