#!/usr/bin/env node
// A stock Igniter.js app (@igniter-js/core, pinned in package.json), as a real app would write it:
// nothing is auto-registered. The only realtime channels are Igniter's own (`revalidation`,
// `system`) and those its controllers declare (`stream: true` queries register
// `<controller>.<action>`): here `posts.list` and `posts.show`. Any other channel on the SSE URL
// (for example Refine's `resources/posts`) gets Igniter's own answer: HTTP 500 for the whole stream.
//
//   node tests/igniter/stock-server.mjs [--port N]
//
// Prints exactly one line on stdout when ready:
//   igniter stock listening on http://127.0.0.1:PORT
//
// The app (under /api/v1, Igniter's default for its client):
//   GET  /api/v1/sse/events?channels=a,b&scopes=…   Igniter's SSE endpoint, untouched
//   GET  /api/v1/posts/          posts.list (stream: true)
//   GET  /api/v1/posts/:id       posts.show (stream: true)
//   POST /api/v1/posts/          {"title"} → creates a post, publishes {"type":"created","ids":[id]}
//                                on `posts.list` and revalidates ["posts.list"] (response.revalidate)
//   POST /api/v1/posts/:id       {"title"} → updates, publishes {"type":"updated","ids":[id]} on
//                                `posts.show` and revalidates ["posts.show", "posts.list"]
// Outside Igniter, for tests only (the network, not the app):
//   POST /__outage?ms=N          closes every connection and stops listening for N ms, then listens
//                                again on the same port (a server that is down, then back)
//   GET  /healthz                ok
// CORS as in server.mjs. SIGTERM/SIGINT exit.

import http from "node:http";
import { Igniter } from "@igniter-js/core";
import { argValue, createMemoryStore, CORS, readBody } from "./fixture.mjs";

const HOST = "127.0.0.1";
const PORT = Number(argValue("--port") ?? process.env.PORT ?? 0);

// Igniter parses a body only when the action declares a schema (anything with .parse).
const body = { parse: (v) => v };

const igniter = Igniter.context(() => ({}))
  .store(createMemoryStore())
  .config({ basePATH: "/api/v1" })
  .create();

const posts = new Map([[1, { id: 1, title: "first" }]]);
let nextId = 2;

const postsController = igniter.controller({
  name: "posts",
  path: "/posts",
  actions: {
    list: igniter.query({
      path: "/",
      stream: true,
      handler: ({ response }) => response.success({ posts: [...posts.values()] }),
    }),
    show: igniter.query({
      path: "/:id",
      stream: true,
      handler: ({ request, response }) => {
        const post = posts.get(Number(request.params.id));
        return post ? response.success(post) : response.notFound("no such post");
      },
    }),
    create: igniter.mutation({
      path: "/",
      method: "POST",
      body,
      handler: async ({ request, response }) => {
        const title = String(request.body?.title ?? "untitled");
        const post = { id: nextId++, title };
        posts.set(post.id, post);
        await igniter.realtime.publish("posts.list", { type: "created", ids: [post.id] });
        return response.success(post).revalidate(["posts.list"]);
      },
    }),
    update: igniter.mutation({
      path: "/:id",
      method: "POST",
      body,
      handler: async ({ request, response }) => {
        const id = Number(request.params.id);
        const post = posts.get(id);
        if (!post) return response.notFound("no such post");
        post.title = String(request.body?.title ?? post.title);
        await igniter.realtime.publish("posts.show", { type: "updated", ids: [id] });
        return response.success(post).revalidate(["posts.show", "posts.list"]);
      },
    }),
  },
});

const router = igniter.router({ controllers: { posts: postsController } });
await new Promise((r) => setTimeout(r, 0)); // Igniter registers routes and channels asynchronously


let port = PORT;
let down = false;

// A node:http bridge to Igniter's fetch-style handler, as in server.mjs, minus the auto-registration.
const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${HOST}:${port}`);
    if (req.method === "OPTIONS") {
      const allow = req.headers["access-control-request-headers"];
      res.writeHead(204, { ...CORS, ...(allow ? { "access-control-allow-headers": allow } : {}) });
      return res.end();
    }
    if (url.pathname === "/healthz") {
      res.writeHead(200, { ...CORS, "content-type": "text/plain" });
      return res.end("ok\n");
    }
    if (url.pathname === "/__outage" && req.method === "POST") {
      const ms = Number(url.searchParams.get("ms") ?? 1000);
      res.writeHead(200, { ...CORS, "content-type": "application/json" });
      res.end(JSON.stringify({ down: ms }));
      setTimeout(() => outage(ms), 20);
      return;
    }
    const headers = new Headers();
    for (const [k, v] of Object.entries(req.headers)) {
      if (Array.isArray(v)) v.forEach((x) => headers.append(k, x));
      else if (v !== undefined) headers.set(k, v);
    }
    const hasBody = !["GET", "HEAD"].includes(req.method);
    const payload = hasBody ? await readBody(req) : undefined;
    const response = await router.handler(new Request(url, { method: req.method, headers, body: payload }));
    const out = {};
    response.headers.forEach((v, k) => {
      if (k !== "set-cookie") out[k] = v;
    });
    res.writeHead(response.status, { ...out, ...CORS });
    if (!response.body) return res.end();
    if ((response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
      req.socket.setNoDelay(true);
      res.flushHeaders();
    }
    const reader = response.body.getReader();
    let closed = false;
    res.on("close", () => {
      closed = true;
      reader.cancel("client disconnected").catch((e) => process.stderr.write(`cancel: ${e}\n`));
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

function outage(ms) {
  if (down) return;
  down = true;
  process.stderr.write(`[stock-server] down for ${ms} ms\n`);
  server.close(() => {});
  server.closeAllConnections();
  setTimeout(() => {
    server.listen(port, HOST, () => {
      down = false;
      process.stderr.write(`[stock-server] back on port ${port}\n`);
    });
  }, ms);
}

function shutdown() {
  server.closeAllConnections?.();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 500).unref();
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);

server.listen(PORT, HOST, () => {
  port = server.address().port;
  process.stdout.write(`igniter stock listening on http://${HOST}:${port}\n`);
});
