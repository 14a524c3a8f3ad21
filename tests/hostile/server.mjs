#!/usr/bin/env node
// A scripted hostile WebSocket server for the browser tests of tests/hostile.rs. It speaks just enough
// of protocol v1 (docs/PROTOCOL.md: `hello`, `subscribed`, `event` with `seq`) to reach the state where
// the hostility matters, then misbehaves the way the scenario says, then (where the scenario allows)
// sends one good event so that the test can tell that the client still works.
//
//   node tests/hostile/server.mjs [--port N]
//
// Prints exactly one line on stdout when ready:  hostile listening on ws://127.0.0.1:PORT/ws
//
// A connection picks its scenario from its URL: ws://127.0.0.1:PORT/ws?scenario=NAME&run=ID. `run`
// names one test run: the server numbers the connections of a run (1, 2, …) and keeps its channels'
// `seq`, so that a reconnecting client resumes against the same history. `GET /connections?run=ID`
// answers `{"connections": n}` (how many WebSocket connections the run opened).
//
// Every scenario: `hello` (epoch `hostile-<run>`, ping_ms 250), then it waits for the client's
// `subscribe` and answers `subscribed` (resumed channels: `recovered: true` when the client's `since`
// is the server's last `seq`, else `false`), then:
//   good          one good event (seq+1), nothing hostile: the control
//   malformed     MALFORMED.length frames that are not JSON objects, then a good event
//   truncated     TRUNCATED.length prefixes of a valid event frame, then a good event
//   wrong_types   WRONG_TYPES.length frames with fields of the wrong type, then a good event
//   unknown_op    UNKNOWN_OPS.length frames with an `op` protocol v1 does not have, then a good event
//   binary        BINARY_FRAMES binary frames, then a good event
//   big           a good event (seq 1), then a 10 MiB event frame (seq 2); the client must drop the
//                 connection: the next one gets `recovered: false` and a good event (seq 3)
//   flood         FLOOD frames of garbage in one burst, then a good event
//   foreign       FOREIGN events on channels the client never subscribed to, then a good event
//   seq_back      events 1, 2, 3, then 2, 1, 3 again (duplicates), then 4
//   seq_jump      event 1, then 5 (2..4 never sent), then 6
//   second_hello  another `hello` (same version), another with version 2, then a good event
//   bad_version   `hello` with version 2 instead of 1, nothing else
//   half_close    a good event (seq 1), then the server ends its side of the TCP connection (FIN, no
//                 close frame) and keeps reading; the next connection gets a good event (seq 2)
//   silent        the first connection is accepted and never answered (no `hello`); the next one is
//                 the `good` scenario
//   silent_open   `hello`, `subscribed`, a good event (seq 1), then silence (no `ping`); the next
//                 connection gets a good event (seq 2)
// Good events are `{"op":"event","channel":C,"seq":n,"type":"updated","payload":{"n":n},"date":…}`.
import http from "node:http";
import { WebSocketServer } from "ws";

const arg = (name) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const PORT = Number(arg("--port") ?? process.env.PORT ?? 0);
const PING_MS = 250;

// The counts of the scenarios: the browser test asserts them exactly (see tests/hostile.rs).
export const MALFORMED = ["{", "not json", "[1,2,3]", '"a string"', "null", "42", '{"op":"event",}', "", "{\"op\":\"event\"\u0000}", "}{"];
const valid = JSON.stringify({ op: "event", channel: "c", seq: 1, type: "updated", payload: { n: 1, ids: [1, 2] }, date: 1763800000000 });
export const TRUNCATED = [1, 10, 30, valid.length / 2, valid.length - 1].map((n) => valid.slice(0, Math.floor(n)));
// Channel `C` is replaced by the subscribed channel; none of these may be delivered or move `seq`.
export const WRONG_TYPES = [
  { op: 5 },
  { op: null },
  { op: ["event"] },
  { op: "event", channel: 5, seq: 1, type: "updated", payload: {}, date: 0 },
  { op: "event", channel: "C", seq: "1", type: "updated", payload: {}, date: 0 },
  { op: "event", channel: "C", seq: -1, type: "updated", payload: {}, date: 0 },
  { op: "event", channel: "C", seq: 1.5, type: "updated", payload: {}, date: 0 },
  { op: "event", channel: "C", seq: 1, type: 7, payload: {}, date: 0 },
  { op: "event", channel: "C", seq: 1, type: "updated", date: 0 },
  { op: "event", channel: "C", seq: 1, type: "updated", payload: {}, date: "yesterday" },
  { op: "event", channel: "C", seq: 1, type: "updated", payload: {} },
  { op: "subscribed", channels: "C" },
  { op: "subscribed", channels: [{ channel: 1, seq: 0 }] },
  { op: "skip", channel: "C", seq: "2" },
  { op: "ack", id: "1", seq: 1 },
  { op: "error", code: 1, message: "x" },
  { op: "hello", version: "1", epoch: "e", ping_ms: 1000 },
];
export const UNKNOWN_OPS = [{ op: "frobnicate" }, { op: "EVENT", channel: "C", seq: 1 }, { op: "" }, { op: "publish", id: 1, channel: "C", type: "x" }, { op: "subscribe", channels: [] }];
export const BINARY_FRAMES = 3;
export const FLOOD = 10_000;
export const FOREIGN = 3;
export const BIG_BYTES = 10 * 1024 * 1024;

const runs = new Map(); // run -> { connections, seq: Map<channel, n> }

function runOf(id) {
  if (!runs.has(id)) runs.set(id, { connections: 0, seq: new Map() });
  return runs.get(id);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://hostile");
  res.setHeader("Access-Control-Allow-Origin", "*");
  if (req.method === "GET" && url.pathname === "/connections") {
    const run = runs.get(url.searchParams.get("run") ?? "");
    res.setHeader("Content-Type", "application/json");
    return res.end(JSON.stringify({ connections: run?.connections ?? 0 }));
  }
  res.statusCode = 404;
  res.end(`unknown request ${req.method} ${req.url}`);
});

const wss = new WebSocketServer({ server, path: "/ws", maxPayload: 1 << 20 });

wss.on("connection", (ws, req) => {
  const url = new URL(req.url, "http://hostile");
  const scenario = url.searchParams.get("scenario") ?? "good";
  const runId = url.searchParams.get("run") ?? "";
  const run = runOf(runId);
  const n = ++run.connections;
  const epoch = `hostile-${runId}`;
  const send = (frame) => ws.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  ws.on("error", (e) => console.error(`[hostile] ${scenario}#${n}: ${e.message}`));

  const nextEvent = (channel, seq = (run.seq.get(channel) ?? 0) + 1) => {
    run.seq.set(channel, Math.max(seq, run.seq.get(channel) ?? 0));
    return { op: "event", channel, seq, type: "updated", payload: { n: seq }, date: Date.now() };
  };

  if (scenario === "silent" && n === 1) return; // accepted, never answered
  if (scenario === "bad_version") return send({ op: "hello", version: 2, epoch, ping_ms: PING_MS });
  send({ op: "hello", version: 1, epoch, ping_ms: PING_MS });
  // The relay pings; `silent_open` stops everything after its first event.
  let quiet = false;
  const pinger = setInterval(() => quiet || ws.readyState !== ws.OPEN || send({ op: "ping" }), PING_MS);
  ws.on("close", () => clearInterval(pinger));

  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    let frame;
    try {
      frame = JSON.parse(data.toString());
    } catch (e) {
      return console.error(`[hostile] ${scenario}#${n}: the client sent a frame that is not JSON: ${e.message}`);
    }
    if (frame.op !== "subscribe") return;
    const entries = frame.channels.map(({ channel, since }) => {
      const seq = run.seq.get(channel) ?? 0;
      const entry = { channel, seq };
      if (since) entry.recovered = since.epoch === epoch && since.seq === seq;
      return entry;
    });
    send({ op: "subscribed", channels: entries });
    const channel = entries[0]?.channel;
    if (channel !== undefined) misbehave(channel);
  });

  function misbehave(channel) {
    const fill = (template) => JSON.stringify(template).replaceAll('"C"', JSON.stringify(channel));
    const good = () => send(nextEvent(channel));
    if (n > 1 && ["big", "half_close", "silent", "silent_open"].includes(scenario)) return good();
    switch (scenario) {
      case "good":
      case "silent":
        return good();
      case "malformed":
        MALFORMED.forEach((f) => send(f));
        return good();
      case "truncated":
        TRUNCATED.forEach((f) => send(f.replace('"c"', JSON.stringify(channel))));
        return good();
      case "wrong_types":
        WRONG_TYPES.forEach((f) => send(fill(f)));
        return good();
      case "unknown_op":
        UNKNOWN_OPS.forEach((f) => send(fill(f)));
        return good();
      case "binary":
        for (let i = 0; i < BINARY_FRAMES; i++) ws.send(Buffer.from([0, 1, 2, 255, i]), { binary: true });
        return good();
      case "big": {
        good();
        const event = nextEvent(channel);
        const head = JSON.stringify({ ...event, payload: { blob: "" } });
        const text = head.replace('"blob":""', `"blob":"${"x".repeat(BIG_BYTES - head.length)}"`);
        return send(text);
      }
      case "flood":
        for (let i = 0; i < FLOOD; i++) send(i % 3 === 0 ? `garbage ${i}` : i % 3 === 1 ? `{"op":"event","seq":${i}` : `{"op":"nope${i}"}`);
        return good();
      case "foreign":
        for (let i = 1; i <= FOREIGN; i++) send({ op: "event", channel: `${channel}/not-subscribed`, seq: i, type: "updated", payload: { n: -i }, date: Date.now() });
        return good();
      case "seq_back":
        for (const seq of [1, 2, 3, 2, 1, 3, 4]) send(nextEvent(channel, seq));
        return;
      case "seq_jump":
        for (const seq of [1, 5, 6]) send(nextEvent(channel, seq));
        return;
      case "second_hello":
        send({ op: "hello", version: 1, epoch: `${epoch}-again`, ping_ms: PING_MS });
        send({ op: "hello", version: 2, epoch, ping_ms: PING_MS });
        return good();
      case "half_close":
        good();
        // FIN without a close frame; the socket stays readable (allowHalfOpen) and keeps reading.
        return setTimeout(() => ws._socket.end(), 50);
      case "silent_open":
        good();
        quiet = true;
        return;
      default:
        send({ op: "error", code: "bad_frame", message: `unknown scenario ${scenario}` });
    }
  }
});

server.listen(PORT, "127.0.0.1", () => {
  console.log(`hostile listening on ws://127.0.0.1:${server.address().port}/ws`);
});
