// End-to-end: coalescing of event bursts (issue 13, item 2) in the real Refine demo (www/dist) served
// by a real relay in demo mode, in headless Chromium. A list page (`useList`) and a show page for
// post 2 (`useOne(2)`), each in a browser context of its own, watch a backend update post 2 fifty times
// in about 150 ms (fifty `PATCH /api/posts/2` to the demo REST API, each publishing an `updated`
// event). The test counts the `GET /api/posts…` requests each page makes after the burst:
//   - coalescing on (the demo's default, `coalesceMs: 250`): the first event at once, then one
//     trailing event for the other 49 → 2 refetches per page;
//   - coalescing off (`?coalesce=0`): Refine invalidates on every event → one refetch per event.
// Either way each page ends up showing the last title: nothing is lost.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

const BURST = 50;
const BURST_SPAN_MS = 150;
const GROUPS = 5;
const WINDOW_MS = 250; // www/src/live.js DEFAULT_COALESCE_MS
const API_KEY = "Bearer demo-publish-key";
let relay, browser, base;
const figures = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));


/** A browser context of its own with one page at `path`, recording its `/api/` requests. */
async function openPage(path) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith("/api/")) requests.push(`${r.method()} ${url.pathname}${url.search}`);
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + path);
  await page.getByTestId("connection").filter({ hasText: "open" }).waitFor({ timeout: 10_000 });
  return { context, page, requests, errors, count: (prefix) => requests.filter((r) => r.startsWith(prefix)).length };
}

/** How many connections the relay has subscribed to `resources/posts`. */
async function subscribers() {
  const response = await fetch(`${base}/stats/channels`, { headers: { authorization: API_KEY } });
  assert.ok(response.ok, `GET /stats/channels: ${response.status}`);
  return (await response.json())["resources/posts"]?.subscribers ?? 0;
}

async function until(what, cond, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    assert.ok(Date.now() < end, `timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** Waits until `value()` has not changed for `quietMs` (at most `timeoutMs`); returns it. */
async function settled(value, quietMs = 1_500, timeoutMs = 20_000) {
  const end = Date.now() + timeoutMs;
  let last = value();
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    assert.ok(Date.now() < end, "the pages kept fetching");
    await sleep(50);
    const now = value();
    if (now !== last) [last, since] = [now, Date.now()];
  }
  return last;
}

/** `POST /publish` of an `updated` event of post 2, as a backend would (with the demo API key). */
async function publishUpdate() {
  const response = await fetch(`${base}/publish`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: API_KEY },
    body: JSON.stringify({ channel: "resources/posts", type: "updated", payload: { ids: [2] } }),
  });
  assert.equal(response.status, 200, `POST /publish: ${response.status}`);
}

/** A real change through the demo API: `PATCH /api/posts/2` publishes its own `updated` event. */
async function patchTitle(title) {
  const response = await fetch(`${base}/api/posts/2`, {
    method: "PATCH",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ title }),
  });
  assert.ok(response.ok, `PATCH /api/posts/2: ${response.status}`);
}

/**
 * The backend: `BURST` updated events of post 2 started at an even pace over `BURST_SPAN_MS`, not
 * waiting for each other (a bulk import): `BURST - 1` through `POST /publish` (a counter ticking),
 * the last a real change of the title through the demo API, which every page must end up showing
 * (whatever the order the relay numbers them in, the refetch after the last event sees it).
 * Returns the span from the first request to the last answer, ms.
 */
async function burst(title) {
  const start = performance.now();
  const sent = [];
  // In GROUPS groups at an even pace (fewer timers than one per request: a loaded machine delays
  // each timer by milliseconds).
  for (let g = 0; g < GROUPS; g++) {
    const wait = start + (g * BURST_SPAN_MS) / GROUPS - performance.now();
    if (wait > 0) await sleep(wait);
    for (let i = (g * BURST) / GROUPS + 1; i <= ((g + 1) * BURST) / GROUPS; i++) {
      sent.push(i < BURST ? publishUpdate() : patchTitle(title));
    }
  }
  await Promise.all(sent);
  return performance.now() - start;
}

/**
 * Records when each event about post 2 reaches the page, through a subscription of its own that is
 * never coalesced: how many events the page got, and over how long.
 */
async function recordArrivals(page) {
  await page.evaluate((windowMs) => {
    window.__arrivals = [];
    window.__live.client.subscribe("resources/posts", ["*"], [2], () => window.__arrivals.push(performance.now()), { coalesceMs: 0 });
    // And what a subscription with its own window of `windowMs` gets (whatever the client's).
    window.__coalesced = [];
    window.__live.client.subscribe(
      "resources/posts",
      ["*"],
      [2],
      (e) => window.__coalesced.push({ type: e.type, payload: e.payload, meta: e.meta ?? null, isDate: e.date instanceof Date }),
      { coalesceMs: windowMs },
    );
  }, WINDOW_MS);
}

const arrivals = (page) => page.evaluate(() => window.__arrivals);

/**
 * The events of the subscription with its own window: the first as published, then trailing ones
 * standing for the rest (`meta.coalesced`), with post 2's id in `payload.ids` and `meta.ids`.
 */
async function checkTrailingEvents(page, where) {
  const got = await page.evaluate(() => window.__coalesced);
  assert.ok(got.length >= 2 && got.length < BURST, `${where}: ${got.length} callbacks for ${BURST} events`);
  assert.equal(got[0].meta?.coalesced, undefined, `${where}: the first event is delivered as published`);
  let total = 0;
  for (const e of got) {
    assert.equal(e.type, "updated");
    assert.ok(e.isDate, "date is a Date");
    assert.deepEqual(e.payload.ids, [2], `${where}: payload.ids`);
    total += e.meta?.coalesced ?? 1;
    if (e.meta?.coalesced !== undefined) assert.deepEqual(e.meta.ids, [2], `${where}: meta.ids`);
  }
  assert.equal(total, BURST, `${where}: the callbacks stand for every event`);
  return got.map((e) => e.meta?.coalesced ?? 1);
}

/** Opens the two pages with `query` before the hash, bursts, and returns what each page fetched. */
async function measure(query, label) {
  await until("no page of an earlier run is subscribed", async () => (await subscribers()) === 0);
  const list = await openPage(`/${query}#/posts`);
  const show = await openPage(`/${query}#/posts/2`);
  await show.page.getByTestId("show-title").waitFor();
  await list.page.getByTestId("post-2").waitFor();
  await until("both pages are subscribed", async () => (await subscribers()) === 2);
  // Let the first fetches finish before counting.
  await settled(() => list.requests.length + show.requests.length, 500);
  const before = { list: list.count("GET /api/posts?"), show: show.count("GET /api/posts/2") };
  await recordArrivals(list.page);
  await recordArrivals(show.page);
  // A bad window is refused with a TypeError naming it.
  const refused = await list.page.evaluate(() => {
    try {
      window.__live.client.subscribe("resources/posts", ["*"], undefined, () => {}, { coalesceMs: -1 });
      return "accepted";
    } catch (e) {
      return `${e.name}: ${e.message}`;
    }
  });
  assert.match(refused, /^TypeError: .*`coalesceMs` must be a non-negative number/);

  const last = `${label} ${Date.now()}`;
  const spanMs = await burst(last);
  await show.page.getByTestId("show-title").filter({ hasText: last }).waitFor({ timeout: 20_000 });
  await list.page.getByTestId("post-2").getByText(last).waitFor({ timeout: 20_000 });
  await settled(() => list.requests.length + show.requests.length);

  const seen = { list: await arrivals(list.page), show: await arrivals(show.page) };
  const trailing = { list: await checkTrailingEvents(list.page, "list page"), show: await checkTrailingEvents(show.page, "show page") };
  const result = {
    spanMs,
    trailing,
    events: { list: seen.list.length, show: seen.show.length },
    // Over how long the events reached each page (what the coalescing windows saw).
    arrivalMs: { list: seen.list.at(-1) - seen.list[0], show: seen.show.at(-1) - seen.show[0] },
    list: list.count("GET /api/posts?") - before.list,
    show: show.count("GET /api/posts/2") - before.show,
    otherRequests: [...list.requests, ...show.requests].filter((r) => !r.startsWith("GET /api/posts")),
    stats: { list: await list.page.evaluate(() => window.__live.stats), show: await show.page.evaluate(() => window.__live.stats) },
  };
  for (const p of [list, show]) {
    assert.deepEqual(p.errors, [], "no error was thrown in the page");
    await p.context.close();
  }
  return result;
}

before(async () => {
  ({ child: relay, url: base } = await startRelay(["--demo", "--static-dir", resolve(root, "www/dist")]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
  if (figures.length) console.log(`\ncoalescing figures (${BURST} updates of post 2):\n${figures.join("\n")}`);
});

/** One line of figures for the report. */
function figure(name, r) {
  const page = (p) => `${r[p]} × GET ${p === "list" ? "/api/posts?…" : "/api/posts/2"} (${r.events[p]} events over ${r.arrivalMs[p].toFixed(0)} ms, stats.coalesced ${r.stats[p].coalesced})`;
  return (
    `  ${name}: sent over ${r.spanMs.toFixed(0)} ms → list page ${page("list")}; show page ${page("show")}` +
    `; a subscription with its own ${WINDOW_MS} ms window got callbacks standing for [${r.trailing.show.join(", ")}] events`
  );
}

test("coalescing on (the demo's default): a burst of 50 updates costs each page at most 2 refetches", async () => {
  const r = await measure("", "Coalesced");
  figures.push(figure(`on  (coalesceMs ${WINDOW_MS})`, r));
  assert.deepEqual(r.otherRequests, []);
  for (const page of ["list", "show"]) {
    assert.equal(r.events[page], BURST, `every event reached the ${page} page`);
    // The first event at once, then one trailing event per window the burst spans: 2 for a burst
    // shorter than the window (the target); a loaded machine stretching the burst gets one more
    // per window.
    const windows = Math.max(1, Math.ceil(r.arrivalMs[page] / WINDOW_MS));
    const allowed = 1 + windows;
    assert.ok(r[page] >= 2, `the ${page} page refetched at once and after the window: ${r[page]}`);
    assert.ok(r[page] <= allowed, `the ${page} page refetched ${r[page]} times for events over ${r.arrivalMs[page].toFixed(0)} ms (at most ${allowed})`);
    if (r.arrivalMs[page] < WINDOW_MS) assert.equal(r[page], 2, `${page} page: the first event at once and one trailing event`);
    // Refine's subscription got one callback per window instead of one per event, and so did the
    // test's own.
    const saved = BURST - allowed + (BURST - r.trailing[page].length);
    assert.ok(r.stats[page].coalesced >= saved, `stats.coalesced of the ${page} page: ${r.stats[page].coalesced} (at least ${saved})`);
  }
});

test("coalescing off (?coalesce=0): every event reaches Refine, which refetches for each", async () => {
  const r = await measure("?coalesce=0", "Every");
  figures.push(figure("off (?coalesce=0)     ", r));
  assert.deepEqual(r.otherRequests, []);
  for (const page of ["list", "show"]) {
    assert.equal(r.events[page], BURST, `every event reached the ${page} page`);
    // Only the test's own subscription, with its own window, coalesced.
    assert.equal(r.stats[page].coalesced, BURST - r.trailing[page].length);
    assert.equal(r[page], BURST, `${page} page: one refetch per event`);
  }
});

test("the Vue adapter's useLiveInvalidation coalesces by default, even with the client's coalescing off", async () => {
  await until("no page of an earlier run is subscribed", async () => (await subscribers()) === 0);
  // `?coalesce=0`: the client delivers every event; the list's `useLiveInvalidation` still uses its
  // own window (250 ms), while the detail, wired the way Ginjou's `useSubscribe` is, gets every event.
  const vue = await openPage("/vue.html?coalesce=0");
  await vue.page.getByTestId("vue-post-2").locator("a").click();
  await vue.page.getByTestId("vue-selected").filter({ hasText: "2" }).waitFor();
  await vue.page.getByTestId("vue-detail-title").filter({ hasNotText: "…" }).waitFor();
  await until("the page is subscribed", async () => (await subscribers()) === 1);
  await settled(() => vue.requests.length, 500);
  const before = { list: vue.count("GET /api/posts?"), detail: vue.count("GET /api/posts/2") };
  await recordArrivals(vue.page);

  const last = `Vue ${Date.now()}`;
  const spanMs = await burst(last);
  await vue.page.getByTestId("vue-detail-title").filter({ hasText: last }).waitFor({ timeout: 20_000 });
  await vue.page.getByTestId("vue-post-2").getByText(last).waitFor({ timeout: 20_000 });
  await settled(() => vue.requests.length);
  const seen = await arrivals(vue.page);
  const arrivalMs = seen.at(-1) - seen[0];
  const list = vue.count("GET /api/posts?") - before.list;
  const detail = vue.count("GET /api/posts/2") - before.detail;
  figures.push(
    `  Vue page, ?coalesce=0: sent over ${spanMs.toFixed(0)} ms, ${seen.length} events over ${arrivalMs.toFixed(0)} ms → ` +
      `list (useLiveInvalidation, default window) ${list} × GET /api/posts?…; detail (Ginjou-style, client's window 0) ${detail} × GET /api/posts/2`,
  );
  assert.deepEqual(vue.errors, [], "no error was thrown in the page");
  await vue.context.close();
  assert.equal(seen.length, BURST, "every event reached the page");
  const allowed = 1 + Math.max(1, Math.ceil(arrivalMs / WINDOW_MS));
  assert.ok(list >= 2 && list <= allowed, `the adapter's list refetched ${list} times (2..${allowed})`);
  if (arrivalMs < WINDOW_MS) assert.equal(list, 2);
  assert.equal(detail, BURST, "the uncoalesced detail refetched once per event");
});

test("a bad coalesceMs throws a TypeError naming it (liveProvider, realtime, createLiveClient)", async () => {
  // The JS entry of the built package checks options before it loads any wasm.
  const pkg = await import(resolve(root, "pkg/index.js"));
  for (const make of [pkg.liveProvider, pkg.realtime, pkg.createLiveClient]) {
    for (const bad of [-1, "250", Number.NaN, Infinity, 2 ** 31]) {
      assert.throws(() => make({ url: "ws://127.0.0.1:1/ws", coalesceMs: bad }), (e) => e instanceof TypeError && /`coalesceMs` must be a non-negative number/.test(e.message), `${make.name}(${String(bad)})`);
    }
  }
});
