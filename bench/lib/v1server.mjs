// A loopback benchmark server: static files (the pkg/ package and the bench pages) over HTTP, and
// just enough of protocol v1 over WebSocket for the contenders:
//  - a client offering `wlp.v1` (our package) gets `hello`, and each `subscribe` is answered with
//    `subscribed` (seq 0 per channel); `unsubscribe` is honoured; `ping` gets `pong`;
//  - a client offering no subprotocol (the raw and hand-written contenders) gets no `hello`, and its
//    `{"action":"subscribe","channel":…}` messages (the seed provider's) are recorded;
//  - `GET /flood?run=R&n=N` writes the next N event frames of the run's scenario to the run's data
//    socket as one pre-framed buffer (the same bytes for every contender, and no per-message server
//    cost that could be the bottleneck);
//  - a control socket `/ctl?run=R` drives round trips: the server sends one event, the page answers
//    on the control socket from inside the callback, the server times it and sends the next.
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { join, normalize, extname } from "node:path";
import { WebSocketServer } from "ws";
import { benchDir, pkgDir } from "./common.mjs";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json",
  ".map": "application/json",
};

/** A server text frame (FIN, opcode 1, unmasked) around `payload`. */
function frameHeader(len) {
  if (len < 126) return Buffer.from([0x81, len]);
  if (len < 65536) return Buffer.from([0x81, 126, len >> 8, len & 0xff]);
  const h = Buffer.alloc(10);
  h[0] = 0x81;
  h[1] = 127;
  h.writeBigUInt64BE(BigInt(len), 2);
  return h;
}

/** The pre-framed event stream of one scenario, grown on demand. */
class Stream {
  constructor(scenario, eventFrame) {
    this.scenario = scenario;
    this.eventFrame = eventFrame;
    this.buf = Buffer.alloc(0);
    this.offsets = [0];
  }
  ensure(n) {
    const have = this.offsets.length - 1;
    if (n <= have) return;
    const parts = [];
    let off = this.buf.length;
    for (let i = have; i < n; i++) {
      const body = Buffer.from(this.eventFrame(this.scenario, i));
      const head = frameHeader(body.length);
      parts.push(head, body);
      off += head.length + body.length;
      this.offsets.push(off);
    }
    this.buf = Buffer.concat([this.buf, ...parts]);
  }
  slice(a, b) {
    this.ensure(b);
    return this.buf.subarray(this.offsets[a], this.offsets[b]);
  }
}

/**
 * Starts the server on 127.0.0.1 (port 0). `scenarios` maps names to scenario objects and
 * `eventFrame(scenario, i)` gives event i's JSON.
 */
export async function startServer({ scenarios = {}, eventFrame = null, pkg = pkgDir, pkgBefore = null } = {}) {
  const streams = new Map();
  const runs = new Map(); // run id -> { ws, v1, channels:Set, scenario, cursor, waiters }
  const stream = (name) => {
    if (!streams.has(name)) streams.set(name, new Stream(scenarios[name], eventFrame));
    return streams.get(name);
  };
  const runOf = (id) => {
    if (!runs.has(id)) runs.set(id, { ws: null, v1: false, channels: new Set(), scenario: null, cursor: 0, frames: 0, waiters: [] });
    return runs.get(id);
  };
  const wake = (r) => {
    for (const w of r.waiters.splice(0)) w();
  };

  const http = createServer(async (req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    try {
      if (url.pathname === "/favicon.ico") return send(res, 204, "text/plain", "");
      if (url.pathname === "/ready") {
        // Resolves once the run's data socket is connected with at least `channels` channels.
        const r = runOf(url.searchParams.get("run"));
        r.scenario = url.searchParams.get("scenario") ?? r.scenario;
        const want = Number(url.searchParams.get("channels") ?? 0);
        const deadline = Date.now() + 30_000;
        while (!(r.ws && r.channels.size >= want)) {
          if (Date.now() > deadline) throw new Error(`run ${url.searchParams.get("run")}: ${r.channels.size}/${want} channels after 30 s`);
          await new Promise((ok) => {
            r.waiters.push(ok);
            setTimeout(ok, 20);
          });
        }
        return send(res, 200, "application/json", JSON.stringify({ channels: r.channels.size, frames: r.frames }));
      }
      if (url.pathname === "/flood") {
        const r = runOf(url.searchParams.get("run"));
        const n = Number(url.searchParams.get("n"));
        const bytes = stream(r.scenario).slice(r.cursor, r.cursor + n);
        r.cursor += n;
        r.ws._socket.write(bytes);
        return send(res, 200, "application/json", JSON.stringify({ n, bytes: bytes.length, first: r.cursor - n }));
      }
      if (url.pathname === "/skip") {
        const r = runOf(url.searchParams.get("run"));
        r.cursor += Number(url.searchParams.get("n"));
        return send(res, 200, "application/json", JSON.stringify({ cursor: r.cursor }));
      }
      if (url.pathname === "/stats") {
        const r = runOf(url.searchParams.get("run"));
        return send(res, 200, "application/json", JSON.stringify({ channels: r.channels.size, frames: r.frames, cursor: r.cursor }));
      }
      let file;
      if (url.pathname.startsWith("/pkg/")) file = join(pkg, normalize(url.pathname.slice(5)));
      else if (pkgBefore && url.pathname.startsWith("/pkg-before/")) file = join(pkgBefore, normalize(url.pathname.slice(12)));
      else file = join(benchDir, normalize(url.pathname));
      const allowed = [pkg, benchDir, pkgBefore].filter(Boolean);
      if (!allowed.some((dir) => file.startsWith(dir))) return send(res, 403, "text/plain", "forbidden");
      const body = await readFile(file);
      return send(res, 200, MIME[extname(file)] ?? "application/octet-stream", body);
    } catch (e) {
      return send(res, e.code === "ENOENT" ? 404 : 500, "text/plain", String(e.message ?? e));
    }
  });

  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has("wlp.v1") ? "wlp.v1" : false),
  });
  http.on("upgrade", (req, socket, head) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname !== "/ws" && url.pathname !== "/ctl") return socket.destroy();
    wss.handleUpgrade(req, socket, head, (ws) => {
      socket.setNoDelay(true);
      if (url.pathname === "/ws") onData(ws, url);
      else onControl(ws, url);
    });
  });

  function onData(ws, url) {
    const r = runOf(url.searchParams.get("run"));
    r.ws = ws;
    r.v1 = ws.protocol === "wlp.v1";
    if (r.v1) ws.send(JSON.stringify({ op: "hello", version: 1, epoch: "bench", ping_ms: 3_600_000 }));
    ws.on("message", (data) => {
      r.frames++;
      let m;
      try {
        m = JSON.parse(data.toString());
      } catch {
        return;
      }
      if (m.op === "subscribe") {
        for (const c of m.channels) r.channels.add(c.channel);
        ws.send(JSON.stringify({ op: "subscribed", channels: m.channels.map((c) => ({ channel: c.channel, seq: 0 })) }));
      } else if (m.op === "unsubscribe") {
        for (const c of m.channels) r.channels.delete(c.channel);
      } else if (m.op === "ping") {
        ws.send('{"op":"pong"}');
      } else if (m.action === "subscribe") {
        r.channels.add(m.channel);
      } else if (m.action === "unsubscribe") {
        r.channels.delete(m.channel);
      }
      wake(r);
    });
    ws.on("close", () => {
      if (r.ws === ws) r.ws = null;
    });
  }

  function onControl(ctl, url) {
    const r = runOf(url.searchParams.get("run"));
    let left = 0;
    let t0 = 0n;
    const rtts = [];
    const next = () => {
      const bytes = stream(r.scenario).slice(r.cursor, r.cursor + 1);
      r.cursor++;
      t0 = process.hrtime.bigint();
      r.ws._socket.write(bytes);
    };
    ctl.on("message", (data) => {
      const text = data.toString();
      if (text.startsWith("{")) {
        const m = JSON.parse(text);
        if (m.cmd === "pings") {
          left = m.count;
          rtts.length = 0;
          next();
        }
        return;
      }
      // An ack from inside the callback.
      rtts.push(Number(process.hrtime.bigint() - t0) / 1000);
      if (--left > 0) next();
      else ctl.send(JSON.stringify({ rtts }));
    });
  }

  await new Promise((ok) => http.listen(0, "127.0.0.1", ok));
  const port = http.address().port;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    runs,
    forget: (id) => runs.delete(id),
    close: () =>
      new Promise((ok) => {
        for (const c of wss.clients) c.terminate();
        http.closeAllConnections?.();
        http.close(ok);
      }),
  };
}

function send(res, status, type, body) {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}
