#!/usr/bin/env node
// The server a user would otherwise write with the `ws` package: subscribe by channel, broadcast
// JSON to the channel's subscribers (the `ws` README's broadcast pattern: one `client.send(data)`
// per subscriber). It speaks the same protocol v1 frames as the relay (hello, subscribe/subscribed,
// publish/ack, event with a per-channel seq, ping/pong) so that the same load client drives both;
// unlike the relay it keeps no history, checks nothing and has no slow-consumer limit.
//
//   node bench/fanout/node-server.mjs [--port 0]   → prints "node-ws listening on http://127.0.0.1:PORT"
import { WebSocketServer } from "ws";

const portArg = process.argv.indexOf("--port");
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0;
const channels = new Map(); // channel -> Set<WebSocket>
const seqs = new Map(); // channel -> last seq

const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false, clientTracking: false });

wss.on("connection", (ws) => {
  const mine = new Set();
  ws.send(JSON.stringify({ op: "hello", version: 1, epoch: "node", ping_ms: 25000 }));
  ws.on("message", (data) => {
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return ws.send(JSON.stringify({ op: "error", code: "bad_frame", message: "not JSON" }));
    }
    switch (m.op) {
      case "subscribe": {
        for (const { channel } of m.channels) {
          if (!channels.has(channel)) channels.set(channel, new Set());
          channels.get(channel).add(ws);
          mine.add(channel);
        }
        ws.send(JSON.stringify({ op: "subscribed", channels: m.channels.map(({ channel }) => ({ channel, seq: seqs.get(channel) ?? 0 })) }));
        break;
      }
      case "unsubscribe":
        for (const { channel } of m.channels) {
          channels.get(channel)?.delete(ws);
          mine.delete(channel);
        }
        break;
      case "publish": {
        const seq = (seqs.get(m.channel) ?? 0) + 1;
        seqs.set(m.channel, seq);
        const event = { op: "event", channel: m.channel, seq, type: m.type, payload: m.payload ?? {}, date: m.date ?? Date.now() };
        if (m.meta !== undefined) event.meta = m.meta;
        const text = JSON.stringify(event);
        for (const client of channels.get(m.channel) ?? []) {
          if (client.readyState === 1) client.send(text);
        }
        ws.send(JSON.stringify({ op: "ack", id: m.id, seq }));
        break;
      }
      case "ping":
        ws.send('{"op":"pong"}');
        break;
      default:
        break;
    }
  });
  ws.on("close", () => {
    for (const channel of mine) channels.get(channel)?.delete(ws);
  });
});

wss.on("listening", () => console.log(`node-ws listening on http://127.0.0.1:${wss.address().port}`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => process.exit(0));
