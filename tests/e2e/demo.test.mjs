// End-to-end: the demo (www/dist, a real Refine app and a Vue app) served by a real relay in demo mode,
// driven by Playwright in headless Chromium with two browser contexts (two "windows"). The relay runs
// with authentication on, as `--demo` does: each page gets its connection token from GET /demo/token,
// and HTTP publishes need the demo API key.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { resolve } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

let relay, browser, base;
const windows = [];

function join(p) {
  return resolve(root, p);
}

/** A new browser context (a window of its own) with a page, counting the API requests it makes. */
async function openWindow(path) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  const tokens = [];
  page.on("request", (r) => {
    const url = new URL(r.url());
    if (url.pathname.startsWith("/api/")) requests.push(`${r.method()} ${url.pathname}${url.search}`);
  });
  page.on("response", async (r) => {
    if (new URL(r.url()).pathname === "/demo/token") tokens.push(r.status());
  });
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + path);
  await page.getByTestId("connection").filter({ hasText: "open" }).waitFor({ timeout: 10_000 });
  const w = { context, page, requests, errors, tokens, count: (prefix) => requests.filter((r) => r.startsWith(prefix)).length };
  windows.push(w);
  return w;
}

async function closeAll() {
  for (const w of windows.splice(0)) {
    assert.deepEqual(w.errors, [], "no error was thrown in the page");
    await w.context.close();
  }
}

/** A backend changing data: the demo API publishes the event itself. */
async function api(method, path, body) {
  const response = await fetch(`${base}/api/${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(response.ok, `${method} /api/${path}: ${response.status}`);
  return response.json();
}

/** `POST /publish` as a backend would, with this `Authorization` header (or none). */
async function publish(event, authorization) {
  const headers = { "content-type": "application/json" };
  if (authorization) headers.authorization = authorization;
  const response = await fetch(`${base}/publish`, { method: "POST", headers, body: JSON.stringify(event) });
  return { status: response.status, body: await response.json() };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  ({ child: relay, url: base } = await startRelay(["--demo", "--static-dir", join("www/dist")]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
});

test("create, update and delete in one window appear in the other's list without reload", async () => {
  const a = await openWindow("/#/posts");
  const b = await openWindow("/#/posts");
  await b.page.evaluate(() => (window.__notReloaded = true));

  const title = `Created in A ${Date.now()}`;
  await a.page.getByTestId("new-title").fill(title);
  await a.page.getByTestId("create").click();
  const row = b.page.getByTestId("posts").locator("tr", { hasText: title });
  await row.waitFor({ timeout: 5_000 });
  const id = Number(await row.locator("td").first().textContent());

  await a.page.goto(`${base}/#/posts/${id}/edit`);
  await a.page.getByTestId("edit-title").fill(`${title} (edited)`);
  await a.page.getByTestId("save").click();
  await b.page.getByTestId("posts").getByText(`${title} (edited)`).waitFor({ timeout: 5_000 });

  await a.page.goto(`${base}/#/posts`);
  await a.page.getByTestId(`delete-${id}`).click();
  await b.page.getByTestId(`post-${id}`).waitFor({ state: "detached", timeout: 5_000 });

  assert.equal(await b.page.evaluate(() => window.__notReloaded), true, "B never reloaded");
  const log = await b.page.getByTestId("event-log").textContent();
  for (const type of ["created", "updated", "deleted"]) assert.match(log, new RegExp(`${type} ${id}`));
  await closeAll();
});

test("a useOne page refetches for its own record only", async () => {
  const b = await openWindow("/#/posts/1");
  await b.page.getByTestId("show-title").waitFor();
  await sleep(300);
  const before = b.count("GET /api/posts/1");
  assert.ok(before >= 1, "the page fetched post 1");

  await api("PATCH", "posts/2", { title: "Post 2, changed elsewhere" });
  await b.page.getByTestId("event-log").getByText("updated 2").waitFor({ timeout: 5_000 });
  await sleep(500);
  assert.equal(b.count("GET /api/posts/1"), before, "an update of post 2 does not refetch post 1");

  await api("PATCH", "posts/1", { title: "Post 1, changed elsewhere" });
  await b.page.getByTestId("show-title").filter({ hasText: "Post 1, changed elsewhere" }).waitFor({ timeout: 5_000 });
  assert.equal(b.count("GET /api/posts/1"), before + 1, "an update of post 1 refetches it once");
  await closeAll();
});

test("manual mode calls onLiveEvent and refetches nothing", async () => {
  const b = await openWindow("/#/manual");
  await b.page.getByTestId("manual-list").locator("li").first().waitFor();
  await sleep(300);
  const before = b.count("GET /api/posts?");
  await api("PATCH", "posts/3", { title: "Post 3, changed elsewhere" });
  await b.page.getByTestId("manual-events").getByText("updated 3").waitFor({ timeout: 5_000 });
  await sleep(500);
  assert.equal(b.count("GET /api/posts?"), before, "no list refetch in manual mode");
  await closeAll();
});

test("the Vue app sees the same events through the Vue adapter and the Ginjou-shaped provider", async () => {
  const refine = await openWindow("/#/posts");
  const vue = await openWindow("/vue.html");
  await vue.page.getByTestId("vue-post-4").waitFor();

  // An edit in the Refine window reaches the Vue list (TanStack Vue Query invalidated by the adapter).
  await refine.page.goto(`${base}/#/posts/4/edit`);
  await refine.page.getByTestId("edit-title").fill("Post 4, edited in Refine");
  await refine.page.getByTestId("save").click();
  await vue.page.getByTestId("vue-post-4").getByText("Post 4, edited in Refine").waitFor({ timeout: 5_000 });
  await vue.page.getByTestId("vue-event-log").getByText("updated 4").waitFor();

  // The Ginjou-style detail: select post 5 (params change: unsubscribe, subscribe again).
  const five = await api("GET", "posts/5");
  await vue.page.getByTestId("vue-post-5").locator("a").click();
  await vue.page.getByTestId("vue-selected").filter({ hasText: "5" }).waitFor();
  await vue.page.getByTestId("vue-detail-title").filter({ hasText: five.title }).waitFor();
  await sleep(300);
  const fetches = async () => Number((await vue.page.getByTestId("vue-detail-fetches").textContent()).match(/\d+/)[0]);
  const before = await fetches();
  await api("PATCH", "posts/6", { title: "Post 6, changed" });
  await vue.page.getByTestId("vue-event-log").getByText("updated 6").waitFor({ timeout: 5_000 });
  await sleep(500);
  assert.equal(await fetches(), before, "post 6 changing does not refetch the detail of post 5");
  await api("PATCH", "posts/5", { title: "Post 5, changed" });
  await vue.page.getByTestId("vue-detail-title").filter({ hasText: "Post 5, changed" }).waitFor({ timeout: 5_000 });
  assert.equal(await fetches(), before + 1);
  await closeAll();
});

test("a ping through Refine's usePublish reaches the other window's useSubscription", async () => {
  const a = await openWindow("/#/posts");
  const b = await openWindow("/#/posts");
  await sleep(200);
  await a.page.getByTestId("ping").click();
  await b.page.getByTestId("notification").filter({ hasText: "ping at" }).waitFor({ timeout: 5_000 });
  await closeAll();
});

test("navigating away unmounts the live components and the relay sees the subscription go", async () => {
  const stats = async () => (await (await fetch(`${base}/stats/channels`, { headers: { authorization: "Bearer demo-publish-key" } })).json())["resources/posts"]?.subscribers ?? 0;
  const until = async (what, cond) => {
    for (let i = 0; i < 100 && !(await cond()); i++) await sleep(50);
    assert.ok(await cond(), what);
  };
  const w = await openWindow("/#/posts");
  await until("the page subscribes to resources/posts", async () => (await stats()) === 1);
  const before = await w.page.evaluate(() => window.__live.client.subscriptionCount);
  await w.page.getByRole("link", { name: "About" }).click();
  await until("the relay drops the channel", async () => (await stats()) === 0);
  const after = await w.page.evaluate(() => window.__live.client.subscriptionCount);
  assert.ok(after < before, `the page's subscriptions went from ${before} to ${after}`);
  await w.page.getByRole("link", { name: "Posts" }).click();
  await until("coming back subscribes again", async () => (await stats()) === 1);
  await closeAll();
});

test("with authentication on, each window connects with a token from /demo/token and edits still cross over", async () => {
  const a = await openWindow("/#/posts");
  const b = await openWindow("/vue.html");
  for (const w of [a, b]) {
    // The badge said "open" (openWindow waited for it) after the page fetched a token.
    assert.ok(w.tokens.length >= 1 && w.tokens.every((s) => s === 200), `token requests: ${w.tokens}`);
    assert.equal(await w.page.getByTestId("connection").textContent(), "open");
    const stats = await w.page.evaluate(() => window.__live.stats);
    assert.equal(stats.connections, 1, `one connection, not refused and retried: ${JSON.stringify(stats)}`);
  }
  await b.page.getByTestId("vue-post-7").waitFor();

  // An edit in the Refine window reaches the Vue window over the authenticated connection.
  const title = `Post 7, edited with auth on ${Date.now()}`;
  await a.page.goto(`${base}/#/posts/7/edit`);
  await a.page.getByTestId("edit-title").fill(title);
  await a.page.getByTestId("save").click();
  await b.page.getByTestId("vue-post-7").getByText(title).waitFor({ timeout: 5_000 });

  // A backend publish needs the demo API key; with it, the event reaches the pages.
  await a.page.goto(`${base}/#/posts`);
  await a.page.getByTestId("event-log").waitFor();
  const event = { channel: "resources/posts", type: "updated", payload: { ids: [8] } };
  const refused = await publish(event);
  assert.equal(refused.status, 401, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, "unauthorized");
  const accepted = await publish(event, "Bearer demo-publish-key");
  assert.equal(accepted.status, 200, JSON.stringify(accepted.body));
  await a.page.getByTestId("event-log").getByText("updated 8").waitFor({ timeout: 5_000 });
  await b.page.getByTestId("vue-event-log").getByText("updated 8").waitFor({ timeout: 5_000 });

  // A WebSocket without a token is refused by the relay (close code 4001).
  const refusal = await a.page.evaluate(
    (url) =>
      new Promise((resolve) => {
        const ws = new WebSocket(url, ["wlp.v1"]);
        const frames = [];
        ws.onopen = () => ws.send(JSON.stringify({ op: "subscribe", channels: [{ channel: "resources/posts" }] }));
        ws.onmessage = (m) => frames.push(JSON.parse(m.data).op);
        ws.onclose = (e) => resolve({ code: e.code, frames });
      }),
    base.replace(/^http/, "ws") + "/ws",
  );
  assert.deepEqual(refusal, { code: 4001, frames: ["hello", "error"] });
  await closeAll();
});
