#!/usr/bin/env node
// A loopback WebSocket server (npm `ws`, pinned in package.json) speaking exactly the server side of
// the seed document's "Custom WebSocket Provider" (../shared/seeds/002_*.txt): what the client
// there sends and expects, nothing more.
//
//   client -> server  {"action":"subscribe","channel":C}    the connection receives C's events
//                     {"action":"unsubscribe","channel":C}  it no longer does
//                     {"action":"publish","channel":C,"type":T,"payload":P}
//                                                            every connection subscribed to C (the
//                                                            publisher too, when it is) receives
//   server -> client  {"channel":C,"type":T,"payload":P}
//
// No hello, no acks, no sequence numbers, no history, no pings, and no subprotocol: the handshake
// answers none, as a hand-written server that knows of none does (ws would otherwise echo the
// first one offered, which would hide a client that cannot work without it).
//
//   node tests/simple/server.mjs [--port N]     (PORT=N works too; default: a free port)
//
// Prints exactly one line on stdout when ready:  simple listening on http://127.0.0.1:PORT
// The WebSocket is at ws://127.0.0.1:PORT/ (any path). Control endpoints for the tests, on the same
// port (CORS open, so that a browser test can call them):
//   POST /control/publish  {"channel","type","payload"}  publishes from the server side -> {"sent": n}
//   POST /control/raw?channel=C  sends the body as is to C's subscribers (a broken server) -> {"sent": n}
//   POST /control/drop     drops every connection (TCP reset, no close frame)      -> {"dropped": n}
//   GET  /control/frames?channel=C  the client frames received about C, in order:
//                          [{"conn": <connection number>, "frame": <the frame as parsed>}, ...]
//   GET  /control/subscribers?channel=C  -> {"subscribers": n}
// Frames that are not one of the three client frames are logged to stderr and ignored.

import http from "node:http";
import { WebSocketServer } from "ws";

function argValue(name) {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const HOST = "127.0.0.1";
const PORT = Number(argValue("--port") ?? process.env.PORT ?? 0);

/** channel -> Set of sockets subscribed to it */
const channels = new Map();
/** every client frame about a channel, for the tests: channel -> [{ conn, frame }] */
const frames = new Map();
let connections = 0;

function subscribers(channel) {
  return channels.get(channel) ?? new Set();
}

/** Sends `{channel, type, payload}` to every subscriber of `channel`; returns how many got it. */
function broadcast(channel, type, payload) {
  const text = JSON.stringify({ channel, type, payload });
  let sent = 0;
  for (const ws of subscribers(channel)) {
    if (ws.readyState === ws.OPEN) {
      ws.send(text);
      sent += 1;
    }
  }
  return sent;
}

function leave(ws, channel) {
  const set = channels.get(channel);
  if (!set) return;
  set.delete(ws);
  if (set.size === 0) channels.delete(channel);
}

const server = http.createServer(async (req, res) => {
  res.setHeader("Access-Control-Allow-Origin", "*");
  res.setHeader("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
  res.setHeader("Access-Control-Allow-Headers", "content-type");
  res.setHeader("Content-Type", "application/json");
  if (req.method === "OPTIONS") return res.end();
  const url = new URL(req.url, `http://${HOST}`);
  try {
    if (req.method === "POST" && url.pathname === "/control/publish") {
      let body = "";
      for await (const chunk of req) body += chunk;
      const { channel, type, payload } = JSON.parse(body);
      if (typeof channel !== "string" || typeof type !== "string") throw new Error("publish needs a string `channel` and `type`");
      return res.end(JSON.stringify({ sent: broadcast(channel, type, payload) }));
    }
    if (req.method === "POST" && url.pathname === "/control/raw") {
      // Not the seed's: a test's way to send its subscribers a frame as is (a broken server).
      let body = "";
      for await (const chunk of req) body += chunk;
      let sent = 0;
      for (const ws of subscribers(url.searchParams.get("channel"))) {
        ws.send(body);
        sent += 1;
      }
      return res.end(JSON.stringify({ sent }));
    }
    if (req.method === "POST" && url.pathname === "/control/drop") {
      let dropped = 0;
      for (const ws of wss.clients) {
        ws.terminate();
        dropped += 1;
      }
      return res.end(JSON.stringify({ dropped }));
    }
    if (req.method === "GET" && url.pathname === "/control/frames") {
      return res.end(JSON.stringify(frames.get(url.searchParams.get("channel")) ?? []));
    }
    if (req.method === "GET" && url.pathname === "/control/subscribers") {
      return res.end(JSON.stringify({ subscribers: subscribers(url.searchParams.get("channel")).size }));
    }
    res.statusCode = 404;
    res.end(JSON.stringify({ error: `unknown control request ${req.method} ${url.pathname}` }));
  } catch (e) {
    res.statusCode = 400;
    res.end(JSON.stringify({ error: e.message }));
  }
});

const wss = new WebSocketServer({ server, handleProtocols: () => false });

wss.on("connection", (ws) => {
  const conn = ++connections;
  const mine = new Set();
  ws.on("message", (data, isBinary) => {
    let msg;
    try {
      msg = isBinary ? null : JSON.parse(data.toString());
    } catch {
      msg = null;
    }
    const channel = msg?.channel;
    if (typeof channel !== "string" || !["subscribe", "unsubscribe", "publish"].includes(msg.action)) {
      console.error(`[simple] connection ${conn}: ignored a frame that is not a seed client frame: ${String(data).slice(0, 200)}`);
      return;
    }
    if (!frames.has(channel)) frames.set(channel, []);
    frames.get(channel).push({ conn, frame: msg });
    if (msg.action === "subscribe") {
      if (!channels.has(channel)) channels.set(channel, new Set());
      channels.get(channel).add(ws);
      mine.add(channel);
    } else if (msg.action === "unsubscribe") {
      leave(ws, channel);
      mine.delete(channel);
    } else {
      broadcast(channel, msg.type, msg.payload);
    }
  });
  ws.on("close", () => {
    for (const channel of mine) leave(ws, channel);
  });
  ws.on("error", (e) => console.error(`[simple] connection ${conn}: ${e.message}`));
});

server.listen(PORT, HOST, () => {
  console.log(`simple listening on http://${HOST}:${server.address().port}`);
});
