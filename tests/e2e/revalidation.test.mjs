// End-to-end: `useRevalidation` of the React and Vue adapters (pkg-template/react.js, vue.js) with real
// TanStack Query (@tanstack/react-query and @tanstack/vue-query from www/node_modules, `make www`), the
// *packed* package (npm pack of pkg/), pages bundled by Vite and served by a real live-relay (open, on
// loopback), in headless Chromium. Each page (tests/e2e/revalidation/) runs two apps: app "a" with a
// provider declaring scope user:a, app "b" with user:b, each with its own QueryClient and the same seven
// queries, whose query functions count their calls. A backend's `POST /revalidate` must make exactly
// the queries its keys prefix (TanStack Query's matching) refetch, once, in every app it reaches; a
// scoped one only in the apps of that scope; none once the component calling `useRevalidation` is
// unmounted, and again once it is mounted back.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, cpSync, readdirSync, rmSync, existsSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { build } from "vite";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";
import { QUERY_KEYS, keyName } from "./revalidation/keys.js";

const APPS = ["a", "b"];
const PAGES = ["react", "vue"];
const www = join(root, "www/node_modules");
let work, relay, browser, base;
const pages = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

before(async () => {
  for (const dep of ["react", "react-dom", "vue", "@tanstack/react-query", "@tanstack/vue-query"]) {
    assert.ok(existsSync(join(www, dep, "package.json")), `www/node_modules/${dep} is installed (make www)`);
  }
  work = mkdtempSync(join(tmpdir(), "wlp-revalidation-"));
  // The packed package, unpacked where the pages' imports find it; the frameworks from www/node_modules.
  execFileSync("npm", ["pack", "--silent", "--pack-destination", work, join(root, "pkg")], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack produced a tarball");
  const modules = join(work, "node_modules");
  mkdirSync(join(modules, "wasm-live-provider"), { recursive: true });
  execFileSync("tar", ["-xzf", join(work, tarball), "-C", join(modules, "wasm-live-provider"), "--strip-components=1"]);
  mkdirSync(join(modules, "@tanstack"));
  for (const dep of ["react", "react-dom", "vue", "@tanstack/react-query", "@tanstack/vue-query"]) symlinkSync(join(www, dep), join(modules, dep));
  cpSync(join(import.meta.dirname, "revalidation"), join(work, "app"), { recursive: true });
  await build({
    root: join(work, "app"),
    configFile: false,
    logLevel: "warn",
    build: {
      outDir: join(work, "app", "dist"),
      rollupOptions: {
        // React libraries mark modules "use client"; that directive means nothing in a client bundle.
        onwarn(warning, warn) {
          if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
        },
        input: Object.fromEntries(PAGES.map((p) => [p, join(work, "app", `${p}.html`)])),
      },
    },
  });

  ({ child: relay, url: base } = await startRelay(["--static-dir", join(work, "app", "dist")]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function until(what, cond, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    assert.ok(Date.now() < end, `timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** Every page's fetch counts: `{ react: { a: { '["posts"]': 1, … }, b: … }, vue: … }`. */
async function fetches() {
  const out = {};
  for (const name of PAGES) out[name] = await pages[name].page.evaluate(() => window.revalidationPage.fetches);
  return out;
}

/** The counts `counts` plus one for each query of the apps in `apps` whose key is in `refetched`. */
function plus(counts, apps, refetched) {
  const next = structuredClone(counts);
  for (const name of PAGES) for (const app of apps) for (const key of refetched) next[name][app][keyName(key)] += 1;
  return next;
}

/** How many connections the relay has subscribed to `$revalidate`. */
async function revalidateSubscribers() {
  const response = await fetch(`${base}/stats/channels`);
  assert.ok(response.ok, `GET /stats/channels: ${response.status}`);
  return (await response.json())["$revalidate"]?.subscribers ?? 0;
}

/** A backend's `POST /revalidate`. */
async function revalidate(body) {
  const response = await fetch(`${base}/revalidate`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
  assert.equal(response.status, 200, `POST /revalidate ${JSON.stringify(body)}: ${response.status} ${await response.text()}`);
}

/** Waits for the counts to become `expected` (10 s at most), then checks that nothing else is fetched for a while. */
async function expectFetches(what, expected) {
  const end = Date.now() + 10_000;
  let seen = await fetches();
  while (!isDeepStrictEqual(seen, expected) && Date.now() < end) {
    await sleep(50);
    seen = await fetches();
  }
  assert.deepEqual(seen, expected, `${what}: the calls of the query functions`);
  await sleep(700);
  assert.deepEqual(await fetches(), expected, `${what}: no other query refetched`);
}

async function setRevalidation(app, on) {
  for (const name of PAGES) await pages[name].page.evaluate(([a, v]) => window.revalidationPage.setRevalidation(a, v), [app, on]);
}

test("POST /revalidate refetches exactly the queries its keys match, in the scopes it names, through useRevalidation (React and Vue)", async () => {
  for (const name of PAGES) {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => m.type() === "error" && errors.push(`console.error: ${m.text()}`));
    await page.goto(`${base}/${name}.html`);
    pages[name] = { page, errors };
  }
  const once = Object.fromEntries(QUERY_KEYS.map((key) => [keyName(key), 1]));
  const start = Object.fromEntries(PAGES.map((name) => [name, Object.fromEntries(APPS.map((app) => [app, { ...once }]))]));
  await expectFetches("every query fetched once on mount", start);
  for (const name of PAGES) {
    await until(`the ${name} page's apps are open`, async () => {
      const states = await pages[name].page.evaluate(() => window.revalidationPage.states);
      return APPS.every((app) => states[app] === "open");
    });
  }
  await until("the four apps listen on $revalidate", async () => (await revalidateSubscribers()) === 4);

  // A key prefixes the queries that start with it.
  let counts = plus(start, APPS, [["posts"], ["posts", 1], ["posts", { page: 2, sort: "asc" }]]);
  await revalidate({ keys: [["posts"]] });
  await expectFetches('keys [["posts"]]: the three posts queries of every app', counts);

  // Objects match by their properties, in any order, and a key longer than a query's matches nothing.
  counts = plus(counts, APPS, [["users", { id: 7, tab: "profile" }]]);
  await revalidate({ keys: [["users", { id: 7 }]] });
  await expectFetches('keys [["users", {id: 7}]]: ["users", {id: 7, tab}] only', counts);
  counts = plus(counts, APPS, [["posts", { page: 2, sort: "asc" }]]);
  await revalidate({ keys: [["posts", { sort: "asc", page: 2 }], ["posts", 1, "comments"], ["nothing"]] });
  await expectFetches("keys with reordered properties, a longer key and an unknown one", counts);

  // Scoped: only the connections declaring user:a, in both pages.
  counts = plus(counts, ["a"], [["comments", { post: 1 }], ["posts", 1]]);
  await revalidate({ keys: [["comments"], ["posts", 1]], scopes: ["user:a"] });
  await expectFetches("scoped to user:a: app a's matching queries only", counts);
  counts = plus(counts, ["b"], [["users", { id: 8 }]]);
  await revalidate({ keys: [["users", { id: 8 }]], scopes: ["user:b"] });
  await expectFetches("scoped to user:b: app b's matching query only", counts);
  await revalidate({ keys: [["posts"]], scopes: ["user:c"] });
  await expectFetches("scoped to a scope no connection holds: nothing", counts);

  // Unmounting the component that calls useRevalidation stops it (the queries stay mounted).
  await setRevalidation("a", false);
  await until("app a's useRevalidation unsubscribed from $revalidate", async () => (await revalidateSubscribers()) === 2);
  counts = plus(counts, ["b"], [["users"], ["users", { id: 7, tab: "profile" }], ["users", { id: 8 }]]);
  await revalidate({ keys: [["users"]] });
  await expectFetches('app a\'s useRevalidation unmounted; keys [["users"]]: app b\'s users queries only', counts);
  await setRevalidation("a", true);
  // A revalidation sent before the relay has the new subscription would not reach it: wait for it.
  await until("app a's useRevalidation subscribed again", async () => (await revalidateSubscribers()) === 4);
  counts = plus(counts, APPS, [["comments", { post: 1 }]]);
  await revalidate({ keys: [["comments", { post: 1 }]] });
  await expectFetches("mounted again: both apps", counts);

  for (const name of PAGES) assert.deepEqual(pages[name].errors, [], `nothing thrown or logged as an error in the ${name} page`);
});
