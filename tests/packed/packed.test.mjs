// Installs the *packed* npm package (npm pack of pkg/) into a fresh Vite project, builds it, serves
// it from a real live-relay, and drives it in headless Chromium the way Refine uses a LiveProvider and
// Ginjou a Realtime (string keys handed back to unsubscribe).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, cpSync, writeFileSync, readdirSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ["ignore", "pipe", "inherit"] }).toString();
let work, relay, browser, base;

before(async () => {
  work = mkdtempSync(join(tmpdir(), "wlp-packed-"));
  run("npm", ["pack", "--silent", "--pack-destination", work, join(root, "pkg")], root);
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack produced a tarball");
  cpSync(join(import.meta.dirname, "app"), join(work, "app"), { recursive: true });
  const vite = JSON.parse(run("node", ["-p", "JSON.stringify(require('vite/package.json').version)"], root));
  writeFileSync(
    join(work, "app", "package.json"),
    JSON.stringify({ name: "packed-app", private: true, type: "module", dependencies: { "wasm-live-provider": `file:../${tarball}` }, devDependencies: { vite } }),
  );
  run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], join(work, "app"));
  run("npx", ["vite", "build", "--logLevel", "error"], join(work, "app"));

  ({ child: relay, url: base } = await startRelay(["--static-dir", join(work, "app", "dist")]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

test("the packed package works in a fresh Vite app, called the way Refine and Ginjou call it", async () => {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));
  // A port where nothing listens, for the cluster provider's first URL. The browser logs the refused
  // connection to it; that is the only console error expected.
  const closed = await new Promise((resolve) => {
    const server = createServer().listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
  const refused = `WebSocket connection to 'ws://127.0.0.1:${closed}/ws' failed`;
  page.on("console", (m) => m.type() === "error" && !m.text().startsWith(refused) && pageErrors.push(m.text()));
  await page.goto(`${base}/?closed=${closed}`);
  const r = await page.evaluate(() => window.runScenario());

  assert.equal(r.stateBeforeLoad, "loading", "subscribe was called before the wasm module loaded");
  assert.equal(r.handleIsFunction, true);
  assert.equal(r.acks.length, 4);
  assert.ok(r.acks.every((s, i) => i === 0 || s === r.acks[i - 1] + 1), `seqs grow by one: ${r.acks}`);
  assert.deepEqual(r.list, ["created:9", "updated:3", "updated:2", "deleted:6,7"]);
  assert.deepEqual(r.one2, ["created:9", "updated:2"], "useOne(2) gets created and its own update only");
  assert.deepEqual(r.many, ["created:9", "deleted:6,7"], "useMany(5,6) matches string ids");
  assert.deepEqual(r.v4, r.one2, "Refine v4's option shape filters the same way");
  assert.equal(r.removed, 0, "an unsubscribed callback gets nothing");
  assert.equal(r.dateIsDate, true);
  assert.deepEqual(r.meta, { dataProviderName: "default" });
  assert.equal(r.beforeUnsubscribe, 8);
  assert.equal(r.afterUnsubscribe, 8, "nothing arrives after unsubscribe");

  assert.equal(r.clusterUrl, `ws://${new URL(base).host}/ws`, "failed over from the refused first URL to the second");
  assert.deepEqual(r.clustered, ["updated:4"]);
  assert.deepEqual(r.ginjouKeys, ["string", "string", true, true, true], "Ginjou keys are distinct strings like wlp:1");
  assert.deepEqual(r.ginjouOne, ["updated:2"], "unsubscribe(key) stopped delivery to that subscription");
  assert.equal(r.ginjouStateAfter, "ended");
  assert.equal(r.ginjouNoops, null, "a second unsubscribe(key) and unknown keys are no-ops");
  assert.deepEqual(r.ginjouList, ["updated:2", "updated:2"], "the other Ginjou subscription was left alone");
  assert.equal(r.ginjouCount, 1);
  assert.equal(r.ginjouCountAfter, 0);
  assert.equal(r.wasmBeforeSse, 1, "WebSocket clients load the default wasm only");
  assert.deepEqual(r.streamed, ["updated:8"], "transport \"sse\" works through the full build");
  assert.equal(r.wasmAfterSse, 2, "the first SSE client loaded the full build's wasm");
  assert.match(r.errors.urlIndex?.message ?? "", /`url\[1\]` must start with ws:\/\/ or wss:\/\//);
  assert.match(r.errors.sseUrlLength?.message ?? "", /`sseUrl` has 1 URL but `url` has 2/);
  assert.equal(r.errors.url?.name, "TypeError");
  assert.match(r.errors.url.message, /`url` must start with ws:\/\/ or wss:\/\//);
  assert.match(r.errors.channel?.message ?? "", /`channel` must be a non-empty string/);
  assert.match(r.errors.ids?.message ?? "", /`ids\[0\]` must be a string or a number/);
  assert.match(r.errors.callback?.message ?? "", /`callback` must be a function/);
  assert.match(r.errors.payload?.message ?? "", /`payload` cannot be sent as JSON/);
  assert.deepEqual(pageErrors, [], "nothing was thrown or logged as an error in the page");
});

test("the packed adapters resolve through the package's exports, with every file they import in the tarball", () => {
  const installed = join(work, "app", "node_modules", "wasm-live-provider");
  // Every relative import of the package's JS files names a file the tarball holds.
  for (const file of readdirSync(installed).filter((f) => f.endsWith(".js"))) {
    const text = readFileSync(join(installed, file), "utf8");
    for (const [, target] of text.matchAll(/(?:from|import)\s*\(?\s*"(\.\/[^"]+)"/g)) {
      assert.ok(existsSync(join(installed, target)), `${file} imports ${target}, which the tarball lacks`);
    }
  }
  // Both subpaths, bundled from the app as its bundler would (react and vue themselves left out).
  const entry = join(work, "app", "adapters-entry.js");
  writeFileSync(entry, 'export * as react from "wasm-live-provider/react";\nexport * as vue from "wasm-live-provider/vue";\n');
  const out = join(work, "adapters-bundle.js");
  run(join(root, "node_modules", ".bin", "rolldown"), [entry, "--format", "esm", "-e", "react", "-e", "vue", "-o", out], join(work, "app"));
  const bundle = readFileSync(out, "utf8");
  for (const needed of ["usePresence", "useLiveInvalidation", "the first argument must be what liveProvider()"]) {
    assert.ok(bundle.includes(needed), `the adapters' bundle has ${needed}`);
  }
});
