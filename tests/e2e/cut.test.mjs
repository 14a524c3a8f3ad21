// End-to-end: the demo's network blip. A real relay in demo mode serves www/dist; Playwright drives
// headless Chromium windows. One window clicks "Cut every connection" (POST /demo/cut: the relay drops
// every WebSocket, as a network blip would) while a backend keeps publishing: every window reconnects
// after its backoff, resumes with `since`, gets the events it missed replayed, and ends with every
// event, none lost, none twice. `SCREENSHOT=1` also writes the README's screenshot to docs/demo.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

let relay, browser, base;
const windows = [];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  ({ child: relay, url: base } = await startRelay(["--demo", "--static-dir", resolve(root, "www/dist")]));
  browser = await launchChromium();
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

/**
 * One cut while a backend edits post 1 every 15 ms: window `a` clicks "Cut every connection" after
 * the 5th edit; the edits go on until every watched window is open again on a new connection, then
 * five more. Waits until each watched window has delivered every edit; returns what each got.
 */
async function cutRound(a, watched) {
  const start = await Promise.all(watched.map((w) => w.stats()));
  let published = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      await patchPost(1, `Cut test edit ${++published}`);
      await sleep(15);
    }
  })();
  await until("5 edits were published", () => published >= 5);
  await a.page.getByTestId("cut").click();
  await a.page.getByTestId("cut-status").filter({ hasText: /^cut \d+ connections/ }).waitFor({ timeout: 5_000 });
  const cutAt = published;
  await until("every watched window is open on a new connection", async () => {
    const now = await Promise.all(watched.map((w) => w.page.evaluate(() => [window.__live.stats.connections, window.__live.connection.state])));
    return now.every(([connections, state], i) => connections === start[i].connections + 1 && state === "open");
  }, 15_000);
  const reopenedAt = published;
  await until("5 more edits were published", () => published >= reopenedAt + 5);
  publishing = false;
  await publisher;
  const cutText = await a.page.getByTestId("cut-status").textContent();
  const got = [];
  for (const [i, w] of watched.entries()) {
    await until(`window ${i} delivered all ${published} edits`, async () => (await w.stats()).delivered - start[i].delivered >= published);
    const end = await w.stats();
    got.push(Object.fromEntries(["delivered", "replayed", "resyncs", "duplicates", "connections"].map((k) => [k, end[k] - start[i][k]])));
  }
  return { published, cutAt, reopenedAt, cutText, got };
}

test("a cut while events are published: every window reconnects, gets the missed ones replayed, and loses none", async (t) => {
  const a = await openWindow("/#/posts");
  const b = await openWindow("/#/posts");
  const v = await openWindow("/vue.html");
  const watched = [b, v];
  const replayed = watched.map(() => 0);
  // Each window waits a random 0-500 ms (full jitter) before reconnecting: one that comes back before
  // the next edit missed nothing, and has nothing replayed. Cut again then (three rounds at most).
  for (let round = 1; round <= 3 && replayed.some((n) => n === 0); round++) {
    const { published, cutAt, reopenedAt, cutText, got } = await cutRound(a, watched);
    assert.match(cutText, /^cut [3-9] connections/, "the relay dropped (at least) the three windows' connections");
    for (const [i, g] of got.entries()) {
      const message = `round ${round}, window ${i}: ${published} edits, the cut answered after edit ${cutAt}, every window open again after edit ${reopenedAt}: ${JSON.stringify(g)}`;
      t.diagnostic(message);
      assert.equal(g.delivered, published, `every edit delivered, once: ${message}`);
      assert.equal(g.resyncs, 0, `nothing had to be refetched blindly (no resync): ${message}`);
      assert.equal(g.connections, 1, `one reconnection: ${message}`);
      replayed[i] += g.replayed;
    }
  }
  assert.ok(replayed.every((n) => n >= 1), `in three cuts, each window had missed edits replayed: ${replayed}`);

  for (const [i, w] of watched.entries()) {
    const states = await w.states();
    assert.ok(states.some((s) => s.state === "reconnecting" && typeof s.delayMs === "number"), `reconnecting with a delay: ${JSON.stringify(states)}`);
    assert.equal(states.at(-1).state, "open");
    const badge = await w.badge();
    assert.ok(badge.some((text) => /^reconnecting in \d+\.\d s$/.test(text)), `the badge counted down: ${badge}`);
    assert.equal(badge.at(-1), "open", `the badge is back to open: ${badge}`);
    // The event log tells the story: the connection lost, back, and the events that came as replays.
    const log = w.page.getByTestId(i === 0 ? "event-log" : "vue-event-log");
    await log.getByText(/^connection lost · reconnecting in \d+ ms$/).first().waitFor();
    await log.getByText("back · resumed from the last event it got").first().waitFor();
    assert.ok((await log.locator(".tag", { hasText: "replayed" }).count()) >= 1, "replayed events are marked in the log");
  }
  // The Refine window shows the counters it read from `stats`, and both show the last edit.
  await until("window B shows its counters", async () => (await shown(b, "delivered")) === (await b.stats()).delivered);
  assert.equal(await shown(b, "replayed"), (await b.stats()).replayed);
  const last = await b.page.evaluate(() => fetch("/api/posts/1").then((r) => r.json()));
  await b.page.getByTestId("post-1").getByText(last.title).waitFor({ timeout: 5_000 });
  await v.page.getByTestId("vue-post-1").getByText(last.title).waitFor({ timeout: 5_000 });
  for (const w of windows.splice(0)) await w.close();
});

test("the cut-during-a-burst button (in the Vue app): 20 edits, a cut after the 10th, every window gets all 20", async (t) => {
  const a = await openWindow("/vue.html");
  const b = await openWindow("/#/posts", { width: 1200, height: 1000 });
  const start = await b.stats();
  await a.page.getByTestId("cut-burst").click();
  const said = a.page.getByTestId("cut-status").filter({ hasText: /: this window got all 20, \d+ of them replayed after the cut$/ });
  await said.waitFor({ timeout: 20_000 });
  t.diagnostic(`window A said: ${await said.textContent()}`);
  await until("window B delivered the 20 edits", async () => (await b.stats()).delivered - start.delivered >= 20);
  const end = await b.stats();
  t.diagnostic(`window B: ${end.delivered - start.delivered} delivered, ${end.replayed - start.replayed} replayed after the cut`);
  assert.equal(end.delivered - start.delivered, 20, JSON.stringify({ start, end }));
  assert.equal(end.resyncs - start.resyncs, 0, JSON.stringify({ start, end }));
  await b.page.getByTestId("post-1").getByText("Burst edit 20/20").waitFor({ timeout: 5_000 });
  await until("window B shows its counters", async () => (await shown(b, "delivered")) === (await b.stats()).delivered);
  const tags = await b.page.getByTestId("event-log").locator(".tag", { hasText: "replayed" }).count();
  assert.equal(tags, end.replayed - start.replayed, "one \"replayed\" tag per replayed event in the log");
  if (process.env.SCREENSHOT) {
    await sleep(600); // the list's last refetch and the counters settle
    const path = resolve(root, "docs/demo.png");
    await b.page.screenshot({ path });
    console.log(`screenshot written to ${path}`);
  }
  for (const w of windows.splice(0)) await w.close();
});
