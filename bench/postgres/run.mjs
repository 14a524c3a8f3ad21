#!/usr/bin/env node
// PostgreSQL feed benchmark (issue 25), on the database of $DATABASE_URL (bench/postgres/run.sh
// starts a throwaway cluster, fsync=off) and the relay's server build:
//   1. commit → browser receipt: a writer INSERTs one row of a watched table per statement
//      (autocommit), paced; this package's liveProvider in headless Chromium records when each
//      row's event arrives. Both clocks are the machine's wall clock (performance.timeOrigin +
//      performance.now()). With NOTIFY (the default) and with polling only (--postgres-notify=false,
//      --postgres-poll-ms 250).
//   2. drain rate: rows committed to live_relay.outbox in one transaction (64 channels), the time
//      until the outbox is empty, with one relay (in-process broker; Redis) and two relays on Redis
//      (one partition: one drains at a time; two partitions: both drain).
//   3. what a watched table costs the app's writes: 4 connections INSERTing (then UPDATEing) one
//      row per statement for a few seconds, into a plain table and into a watched one (NOTIFY on
//      and off), the relay draining meanwhile.
//
//   bash bench/postgres/run.sh [--samples 1000] [--rows 100000] [--seconds 5] [--smoke]
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import net from "node:net";
import pg from "pg";
import { startServer } from "../lib/v1server.mjs";
import { launchChromium, machine, machineLine, writeResults, table, args, fmt, quantile, root } from "../lib/common.mjs";

const opt = args({ samples: 1000, rows: 100_000, seconds: 5, pace: 10, out: "postgres", smoke: false });
if (opt.smoke) Object.assign(opt, { samples: 60, rows: 3000, seconds: 1, out: opt.out === "postgres" ? "postgres-smoke" : opt.out });
const url = process.env.DATABASE_URL;
if (!url) {
  console.error("postgres bench: DATABASE_URL is not set: run bash bench/postgres/run.sh");
  process.exit(1);
}
const relayBin = join(root, "target/server/live-relay");
const command = `bash bench/postgres/run.sh ${process.argv.slice(2).join(" ")}`.trim();
const failures = [];
const now = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** A free loopback port. */
function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
    s.on("error", fail);
  });
}

/** Starts `live-relay --addr 127.0.0.1:0 ARGS`; resolves with { addr, stop } once it listens. */
function startRelay(extra) {
  const child = spawn(relayBin, ["--addr", "127.0.0.1:0", "--postgres", url, ...extra], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  return new Promise((ok, fail) => {
    child.on("error", fail);
    child.on("exit", (code) => fail(new Error(`live-relay exited with ${code}`)));
    createInterface({ input: child.stdout }).once("line", (line) => {
      const addr = line.replace("live-relay listening on http://", "");
      const stop = () =>
        new Promise((done) => {
          child.removeAllListeners("exit");
          child.once("exit", done);
          child.kill("SIGTERM");
        });
      ok({ addr, stop });
    });
  });
}

/** Starts redis-server on a free port (no persistence). */
async function startRedis() {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise((ok) => net.connect(port, "127.0.0.1").on("connect", function () { this.destroy(); ok(true); }).on("error", () => ok(false)));
    if (up) break;
    await sleep(20);
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill("SIGTERM") };
}

const db = new pg.Client({ connectionString: url });
const count = async (sql) => Number((await db.query(sql)).rows[0].n);

const m0 = machine();
console.log(`postgres: ${machineLine(m0)}`);
await db.connect();
const pgVersion = (await db.query("show server_version")).rows[0].server_version;

// ---- 1. commit → browser receipt ---------------------------------------------------------------
const server = await startServer();
const browser = await launchChromium();

async function latency(name, flags) {
  const relay = await startRelay(flags);
  await db.query("drop table if exists bench_items; create table bench_items (id bigint primary key, v int not null default 0)");
  await db.query("select live_relay.watch('bench_items')");
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${server.base}/postgres/page.html`);
  await page.waitForFunction(() => window.benchReady === true);
  await page.evaluate(([ws, ch]) => window.start(ws, ch), [`ws://${relay.addr}/ws`, "resources/bench_items"]);
  const committed = new Map();
  for (let i = 1; i <= opt.samples; i++) {
    await db.query("insert into bench_items (id) values ($1)", [i]);
    committed.set(String(i), now());
    await sleep(opt.pace + Math.random() * opt.pace);
  }
  const deadline = Date.now() + 10_000;
  let received = [];
  while (Date.now() < deadline) {
    received = await page.evaluate(() => window.received);
    if (received.length >= opt.samples) break;
    await sleep(50);
  }
  await page.close();
  await relay.stop();
  if (errors.length) failures.push(`${name}: page errors: ${errors.join("; ")}`);
  if (received.length !== opt.samples) failures.push(`${name}: ${received.length} of ${opt.samples} events arrived`);
  const ms = received.map(([id, at]) => at - committed.get(id)).filter(Number.isFinite).sort((a, b) => a - b);
  const r = { samples: ms.length, p50: quantile(ms, 0.5), p90: quantile(ms, 0.9), p99: quantile(ms, 0.99), max: ms[ms.length - 1] };
  console.log(`  ${name.padEnd(34)} p50 ${fmt(r.p50, 2)} ms  p90 ${fmt(r.p90, 2)} ms  p99 ${fmt(r.p99, 2)} ms  max ${fmt(r.max, 1)} ms  (${r.samples} events)`);
  return r;
}

console.log("\n1. commit → browser receipt");
const lat = {
  notify: await latency("NOTIFY (default)", []),
  poll: await latency("polling only, every 250 ms", ["--postgres-notify=false", "--postgres-poll-ms", "250"]),
};
await browser.close();
await server.close();
if (!opt.smoke && !(lat.notify.p50 <= 10 && lat.notify.p99 <= 50)) failures.push(`NOTIFY latency over target: p50 ${fmt(lat.notify.p50, 2)} ms, p99 ${fmt(lat.notify.p99, 2)} ms (target 10 / 50)`);

// ---- 2. drain rate ---------------------------------------------------------------------------------
const redis = await startRedis();
async function drain(name, nodes, flags) {
  const relays = [];
  for (let i = 0; i < nodes; i++) relays.push(await startRelay(flags));
  await sleep(300);
  const t0 = now();
  await db.query(
    `insert into live_relay.outbox (channel, type, payload)
     select 'bench/' || (i % 64), 'created', jsonb_build_object('ids', jsonb_build_array(i::text))
       from generate_series(1, $1::int) i`,
    [opt.rows],
  );
  const inserted = now();
  // Done when the relays have published every row: read from their /metrics, not from the
  // database (a count(*) every few ms would hold back the cleanup of the rows deleted meanwhile and
  // slow the drain it measures).
  const published = async () => {
    let sum = 0;
    for (const r of relays) {
      const text = await (await fetch(`http://${r.addr}/metrics`)).text();
      sum += Number(text.match(/^live_relay_postgres_rows_published_total (\d+)/m)?.[1] ?? 0);
    }
    return sum;
  };
  const deadline = Date.now() + 600_000;
  while ((await published()) < opt.rows && Date.now() < deadline) await sleep(20);
  const seconds = (now() - inserted) / 1000;
  if ((await count("select count(*) as n from live_relay.outbox")) > 0) failures.push(`${name}: rows left in the outbox`);
  for (const r of relays) await r.stop();
  const r = { rows: opt.rows, seconds, rowsPerSec: opt.rows / seconds, insertMs: inserted - t0 };
  console.log(`  ${name.padEnd(46)} ${fmt(r.rowsPerSec)} rows/s  (${fmt(opt.rows)} rows in ${fmt(seconds, 2)} s)`);
  return r;
}
console.log("\n2. drain rate (rows committed at once, 64 channels)");
const rate = {
  memory1: await drain("1 relay, in-process broker", 1, []),
  redis1: await drain("1 relay, Redis", 1, ["--redis", redis.url]),
  redis2p1: await drain("2 relays, Redis, 1 partition", 2, ["--redis", redis.url]),
  redis2p2: await drain("2 relays, Redis, 2 partitions", 2, ["--redis", redis.url, "--postgres-partitions", "2"]),
};
redis.stop();
if (!opt.smoke && rate.memory1.rowsPerSec < 10_000) failures.push(`drain rate ${fmt(rate.memory1.rowsPerSec)} rows/s on one relay, under 10,000`);

// ---- 3. the cost of watching a table -------------------------------------------------------------
async function writes(name, tableName, flags) {
  const relay = flags ? await startRelay(flags) : null;
  await db.query(`drop table if exists ${tableName}; create table ${tableName} (id bigint primary key, v int not null default 0)`);
  if (tableName === "watched_items") await db.query("select live_relay.watch('watched_items')");
  const clients = await Promise.all([0, 1, 2, 3].map(async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    return c;
  }));
  const phase = async (sql) => {
    const lat = [];
    const end = Date.now() + opt.seconds * 1000;
    await Promise.all(clients.map(async (c, w) => {
      for (let i = 1; Date.now() < end; i++) {
        const t = now();
        await c.query(sql, [w * 10_000_000 + i]);
        lat.push(now() - t);
      }
    }));
    lat.sort((a, b) => a - b);
    return { perSec: lat.length / opt.seconds, p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), n: lat.length };
  };
  const insert = await phase(`insert into ${tableName} (id) values ($1)`);
  const update = await phase(`update ${tableName} set v = v + 1 where id = $1`);
  await Promise.all(clients.map((c) => c.end()));
  // Let the relay drain what was written.
  while ((await count("select count(*) as n from live_relay.outbox")) > 0) await sleep(50);
  if (relay) await relay.stop();
  console.log(`  ${name.padEnd(30)} INSERT ${fmt(insert.perSec)}/s p50 ${fmt(insert.p50, 2)} ms p99 ${fmt(insert.p99, 2)} ms   UPDATE ${fmt(update.perSec)}/s p50 ${fmt(update.p50, 2)} ms p99 ${fmt(update.p99, 2)} ms`);
  return { insert, update };
}
console.log("\n3. the app's writes (4 connections, one row per statement)");
const cost = {
  plain: await writes("plain table", "plain_items", null),
  watched: await writes("watched, NOTIFY on", "watched_items", []),
  watchedPoll: await writes("watched, NOTIFY off", "watched_items", ["--postgres-notify=false"]),
};
await db.end();
const m1 = machine();

const md = [
  `Command: \`${command}\` · PostgreSQL ${pgVersion} (throwaway cluster, fsync=off) · ${machineLine(m0)} → load ${m1.load}`,
  "",
  "Commit → browser receipt (this package's liveProvider in headless Chromium; the writer's clock after COMMIT returns):",
  "",
  table(
    ["wake-up", "events", "p50 ms", "p90 ms", "p99 ms", "max ms"],
    [
      ["NOTIFY (default)", lat.notify.samples, fmt(lat.notify.p50, 2), fmt(lat.notify.p90, 2), fmt(lat.notify.p99, 2), fmt(lat.notify.max, 1)],
      ["polling only (250 ms)", lat.poll.samples, fmt(lat.poll.p50, 2), fmt(lat.poll.p90, 2), fmt(lat.poll.p99, 2), fmt(lat.poll.max, 1)],
    ],
  ),
  "",
  `Drain rate (${fmt(opt.rows)} rows committed in one transaction on 64 channels, until the outbox is empty):`,
  "",
  table(
    ["relays", "rows/s", "seconds"],
    [
      ["1, in-process broker", fmt(rate.memory1.rowsPerSec), fmt(rate.memory1.seconds, 2)],
      ["1, Redis", fmt(rate.redis1.rowsPerSec), fmt(rate.redis1.seconds, 2)],
      ["2, Redis, 1 partition", fmt(rate.redis2p1.rowsPerSec), fmt(rate.redis2p1.seconds, 2)],
      ["2, Redis, 2 partitions", fmt(rate.redis2p2.rowsPerSec), fmt(rate.redis2p2.seconds, 2)],
    ],
  ),
  "",
  `The app's writes (4 connections, ${opt.seconds} s per phase, one row per statement, autocommit):`,
  "",
  table(
    ["table", "INSERT/s", "INSERT p50 ms", "INSERT p99 ms", "UPDATE/s", "UPDATE p50 ms", "UPDATE p99 ms"],
    Object.entries({ "plain": cost.plain, "watched, NOTIFY on": cost.watched, "watched, NOTIFY off": cost.watchedPoll }).map(([k, v]) => [
      k, fmt(v.insert.perSec), fmt(v.insert.p50, 2), fmt(v.insert.p99, 2), fmt(v.update.perSec), fmt(v.update.p50, 2), fmt(v.update.p99, 2),
    ]),
  ),
].join("\n");
writeResults(opt.out, { command, machine: { start: m0, end: m1 }, pgVersion, options: opt, latency: lat, drain: rate, writes: cost, failures }, md);
console.log(`\n${md}`);
if (failures.length) {
  console.error(`\npostgres bench: ${failures.length} failure(s):\n  ${failures.join("\n  ")}`);
  process.exit(1);
}
