// End-to-end: the demo on PostgreSQL (`live-relay --demo --postgres $DATABASE_URL`), its records in real
// tables whose triggers publish every change, driven by Playwright in headless Chromium with two browser
// contexts (two "windows"). Changes are made with psql, not through the app: nothing but the database says
// they happened. Needs DATABASE_URL: `make test-e2e-postgres` runs it inside scripts/pg-throwaway.sh, which
// starts a throwaway PostgreSQL 15 and stops it after.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

const database = process.env.DATABASE_URL;
const PSQL = existsSync("/usr/lib/postgresql/15/bin/psql") ? "/usr/lib/postgresql/15/bin/psql" : "psql";

let relay, browser, base;
const windows = [];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs SQL with psql, as someone in a shell would; returns its output. */
function psql(sql) {
  return execFileSync(PSQL, ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql], { encoding: "utf8" }).trim();
}

/** A new browser context (a window of its own) with a page, counting the API requests it makes. */
async function openWindow(path) {
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
  await page.evaluate(() => (window.__notReloaded = true));
  const w = { context, page, requests, errors, count: (prefix) => requests.filter((r) => r.startsWith(prefix)).length };
  windows.push(w);
  return w;
}

async function closeAll() {
  for (const w of windows.splice(0)) {
    assert.equal(await w.page.evaluate(() => window.__notReloaded), true, "the page never reloaded");
    assert.deepEqual(w.errors, [], "no error was thrown in the page");
    await w.context.close();
  }
}

before(async () => {
  assert.ok(database, "DATABASE_URL is not set: run `make test-e2e-postgres` (it starts a throwaway PostgreSQL)");
  ({ child: relay, url: base } = await startRelay(["--demo", "--postgres", database, "--static-dir", resolve(root, "www/dist")]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
});

test("an UPDATE and an INSERT made with psql refetch both windows", async () => {
  const list = await openWindow("/#/posts");
  const show = await openWindow("/#/posts/1");
  await list.page.getByTestId("post-1").waitFor();
  await show.page.getByTestId("show-title").waitFor();
  await sleep(300);
  const before = { list: list.count("GET /api/posts?"), show: show.count("GET /api/posts/1") };

  const title = `Edited with psql ${Date.now()}`;
  psql(`UPDATE posts SET title = '${title}' WHERE id = 1`);
  await list.page.getByTestId("post-1").getByText(title).waitFor({ timeout: 5_000 });
  await show.page.getByTestId("show-title").filter({ hasText: title }).waitFor({ timeout: 5_000 });
  assert.ok(list.count("GET /api/posts?") > before.list, "the list refetched");
  assert.equal(show.count("GET /api/posts/1"), before.show + 1, "the detail refetched once");
  await list.page.getByTestId("event-log").getByText("updated 1").waitFor();

  const id = psql(`INSERT INTO posts (title, status) VALUES ('Inserted with psql', 'draft') RETURNING id`);
  await list.page.getByTestId(`post-${id}`).getByText("Inserted with psql").waitFor({ timeout: 5_000 });
  await list.page.getByTestId("event-log").getByText(`created ${id}`).waitFor();
  await closeAll();
});

test("the posts list does not refetch for a change to categories", async () => {
  const w = await openWindow("/#/posts");
  await w.page.getByTestId("post-2").waitFor();
  // A subscription of its own on the same connection: proof the categories event reached the page.
  await w.page.evaluate(() => {
    window.__categories = [];
    window.__live.client.subscribe("resources/categories", ["*"], undefined, (e) => window.__categories.push(e.payload), { coalesceMs: 0 });
  });
  await sleep(500);
  const before = w.count("GET /api/posts");

  psql("UPDATE categories SET title = 'Tech' WHERE id = 1");
  await w.page.waitForFunction(() => window.__categories.length === 1, null, { timeout: 5_000 });
  assert.deepEqual(await w.page.evaluate(() => window.__categories), [{ ids: ["1"] }]);
  await sleep(1_000);
  assert.equal(w.count("GET /api/posts"), before, "no refetch of posts for a change to categories");

  // A change to posts, made after, refetches: the count above is not blind.
  psql("UPDATE posts SET title = 'Post 2, edited with psql' WHERE id = 2");
  await w.page.getByTestId("post-2").getByText("Post 2, edited with psql").waitFor({ timeout: 5_000 });
  assert.equal(w.count("GET /api/posts"), before + 1, "one refetch for the change to posts");
  await closeAll();
});
