// End-to-end: the demo's network blip. A real relay in demo mode serves www/dist; Playwright drives
// headless Chromium windows. One window clicks "Cut every connection" (POST /demo/cut: the relay drops
// every WebSocket, as a network blip would) while a backend keeps publishing: every window reconnects
// after its backoff, resumes with `since`, gets the events it missed replayed, and ends with every
// event, none lost, none twice. `SCREENSHOT=1` also writes the README's screenshot to docs/demo.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
let relay, browser, base;
const windows = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  const child = spawn(resolve(root, "target/release/live-relay"), ["--addr", "127.0.0.1:0", "--demo", "--static-dir", resolve(root, "www/dist")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (c) => (out += c));
  while (!/listening on (http:\/\/\S+)/.test(out)) await once(child.stdout, "data");
  relay = child;
  base = out.match(/listening on (http:\/\/\S+)/)[1];
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  relay?.kill();
});

/** A window of its own (a browser context) on `path`, once its badge says "open"; records its state changes. */
async function openWindow(path, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + path);
  await page.getByTestId("connection").filter({ hasText: "open" }).waitFor({ timeout: 10_000 });
  await page.evaluate(() => {
    window.__states = [];
    window.__live.onStateChange((change) => window.__states.push(change));
    // What the badge said, in order.
    window.__badge = [];
    const badge = document.querySelector('[data-testid="connection"]');
    new MutationObserver(() => window.__badge.push(badge.textContent)).observe(badge, { childList: true, characterData: true, subtree: true });
  });
  const w = {
    page,
    errors,
    stats: () => page.evaluate(() => window.__live.stats),
    states: () => page.evaluate(() => window.__states),
    badge: () => page.evaluate(() => window.__badge),
    close: async () => {
      assert.deepEqual(errors, [], `no error was thrown in ${path}`);
      await context.close();
    },
  };
  windows.push(w);
  return w;
}

async function patchPost(id, title) {
  const response = await fetch(`${base}/api/posts/${id}`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ title }),
  });
  assert.ok(response.ok, `PATCH /api/posts/${id}: ${response.status}`);
}

async function until(what, cond, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await cond()) return;
    await sleep(50);
  }
  assert.fail(`timed out after ${ms} ms waiting until ${what}`);
}

/** A counter of the stats, as the page shows it beside the event log. */
async function shown(w, key) {
  return Number(await w.page.getByTestId(`stat-${key}`).textContent());
}

test("a cut while events are published: every window reconnects, gets the missed ones replayed, and loses none", async (t) => {
  const a = await openWindow("/#/posts");
  const b = await openWindow("/#/posts");
  const v = await openWindow("/vue.html");
  const watched = [b, v];
  const start = await Promise.all(watched.map((w) => w.stats()));

  // A backend edits post 1 every 10 ms; after the 5th edit window A clicks the cut button. The edits go
  // on until both watched windows are open again on a new connection, then five more.
  let published = 0;
  let cut = false;
  let reopenedAt = null;
  const t0 = Date.now();
  while (reopenedAt === null || published < reopenedAt + 5) {
    await patchPost(1, `Cut test edit ${++published}`);
    if (published === 5) {
      await a.page.getByTestId("cut").click();
      await a.page.getByTestId("cut-status").filter({ hasText: /^cut \d+ connections/ }).waitFor({ timeout: 5_000 });
      cut = true;
    }
    if (cut && reopenedAt === null) {
      const now = await Promise.all(watched.map((w) => w.stats()));
      const open = await Promise.all(watched.map((w) => w.page.evaluate(() => window.__live.connection.state)));
      if (now.every((s, i) => s.connections === start[i].connections + 1) && open.every((s) => s === "open")) reopenedAt = published;
    }
    assert.ok(Date.now() - t0 < 15_000, "the windows reconnect within 15 s of the cut");
    await sleep(10);
  }
  const cutText = await a.page.getByTestId("cut-status").textContent();
  assert.match(cutText, /^cut [3-9] connections/, "the relay dropped (at least) the three windows' connections");

  for (const [i, w] of watched.entries()) {
    await until(`window ${i} delivered all ${published} events`, async () => (await w.stats()).delivered - start[i].delivered >= published);
    const end = await w.stats();
    const got = {
      delivered: end.delivered - start[i].delivered,
      replayed: end.replayed - start[i].replayed,
      resyncs: end.resyncs - start[i].resyncs,
      duplicates: end.duplicates - start[i].duplicates,
      connections: end.connections - start[i].connections,
    };
    const message = `window ${i} after ${published} events, the cut after the 5th, reopened by the ${reopenedAt}th: ${JSON.stringify(got)}`;
    t.diagnostic(message);
    assert.equal(got.delivered, published, `every event delivered once: ${message}`);
    assert.equal(got.resyncs, 0, `nothing had to be refetched blindly (no resync): ${message}`);
    assert.equal(got.connections, 1, `one reconnection: ${message}`);
    // The edits published between the cut and the resubscription (reopened by edit `reopenedAt` > 5)
    // were missed live and came back as replays.
    assert.ok(reopenedAt > 5, `the windows were reconnecting while edits 6.. were published: ${message}`);
    assert.ok(got.replayed >= 1, `the missed events were replayed after the cut: ${message}`);
    const states = (await w.states()).map((s) => s.state);
    assert.ok(states.includes("reconnecting") && states.at(-1) === "open", `reconnecting, then open: ${states}`);
    const waited = (await w.states()).find((s) => s.state === "reconnecting");
    assert.equal(typeof waited.delayMs, "number", `a reconnect delay: ${JSON.stringify(waited)}`);
    const badge = await w.badge();
    assert.ok(badge.some((text) => /^reconnecting in \d+\.\d s$/.test(text)), `the badge counted down: ${badge}`);
    assert.equal(badge.at(-1), "open", `the badge is back to open: ${badge}`);
    // The event log tells the story: the connection lost, back, and the events that came as replays.
    const log = w.page.getByTestId(i === 0 ? "event-log" : "vue-event-log");
    await log.getByText(/^connection lost · reconnecting in \d+ ms$/).waitFor();
    await log.getByText("back · resumed from the last event it got").waitFor();
    assert.equal(await log.locator(".tag", { hasText: "replayed" }).count(), got.replayed, `one "replayed" tag per replayed event: ${message}`);
  }
  // The Refine window shows the counters it read from `stats`, and the last edit.
  await until("window B shows its counters", async () => (await shown(b, "delivered")) === (await b.stats()).delivered);
  assert.ok((await shown(b, "replayed")) >= 1);
  await b.page.getByTestId("post-1").getByText(`Cut test edit ${published}`).waitFor({ timeout: 5_000 });
  await v.page.getByTestId("vue-post-1").getByText(`Cut test edit ${published}`).waitFor({ timeout: 5_000 });
  for (const w of windows.splice(0)) await w.close();
});

test("the cut-during-a-burst button (in the Vue app): 20 edits, a cut after the 10th, every window gets all 20", async (t) => {
  const a = await openWindow("/vue.html");
  const b = await openWindow("/#/posts", { width: 1200, height: 1000 });
  const start = await b.stats();
  await a.page.getByTestId("cut-burst").click();
  await a.page.getByTestId("cut-status").filter({ hasText: "every window got all 20" }).waitFor({ timeout: 20_000 });
  await until("window B delivered the 20 edits", async () => (await b.stats()).delivered - start.delivered >= 20);
  const end = await b.stats();
  t.diagnostic(`window B: ${end.delivered - start.delivered} delivered, ${end.replayed - start.replayed} replayed after the cut`);
  assert.equal(end.delivered - start.delivered, 20, JSON.stringify({ start, end }));
  assert.equal(end.resyncs - start.resyncs, 0, JSON.stringify({ start, end }));
  await b.page.getByTestId("post-1").getByText("Burst edit 20/20").waitFor({ timeout: 5_000 });
  await until("window B shows its counters", async () => (await shown(b, "delivered")) === (await b.stats()).delivered);
  if (process.env.SCREENSHOT) {
    await sleep(600); // the list's last refetch and the counters settle
    const path = resolve(root, "docs/demo.png");
    await b.page.screenshot({ path });
    console.log(`screenshot written to ${path}`);
  }
  for (const w of windows.splice(0)) await w.close();
});
