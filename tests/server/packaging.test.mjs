// How wasm-live-provider/server ships: the packed package (npm pack of pkg/) installed into a fresh
// project. Under Node it is the real helper; under the `browser` condition (node --conditions=browser,
// and a browser bundle made by rolldown) it is the stub that throws a clear error at import; a bundle
// with no platform condition (`default`) gets the stub too.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rolldown } from "rolldown";
import { root } from "./peers.mjs";

const MESSAGE = "wasm-live-provider/server runs on a server (Node ≥ 20): it holds your API key and secret; import it from your backend, not from browser code";
let work, app, packed;

before(() => {
  work = mkdtempSync(join(tmpdir(), "wlp-server-pack-"));
  const out = execFileSync("npm", ["pack", "--json", "--pack-destination", work, join(root, "pkg")], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  packed = JSON.parse(out.toString())[0];
  const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"));
  assert.ok(tarball, "npm pack produced a tarball");
  app = join(work, "app");
  execFileSync("mkdir", [app]);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "backend", private: true, type: "module", dependencies: { "wasm-live-provider": `file:../${tarball}` } }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], { cwd: app, stdio: ["ignore", "pipe", "inherit"] });
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Runs `node [flags] --input-type=module -e code` in the app; returns { status, stdout, stderr }. */
function node(flags, code) {
  const r = spawnSync(process.execPath, [...flags, "--input-type=module", "-e", code], { cwd: app, encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("the tarball ships server.js, server.browser.js and server.d.ts", () => {
  const files = packed.files.map((f) => f.path);
  for (const f of ["server.js", "server.browser.js", "server.d.ts", "package.json"]) assert.ok(files.includes(f), `${f} in ${files.join(", ")}`);
});

test("under Node the subpath is the real helper: it mints a token", () => {
  const r = node([], `
    import { createRelayClient, RelayError } from "wasm-live-provider/server";
    const c = createRelayClient({ url: "http://127.0.0.1:9", jwtSecret: "s".repeat(32) });
    const token = await c.mintToken({ sub: "u", channels: ["a"] });
    console.log(JSON.stringify({ parts: token.split(".").length, error: typeof RelayError }));
  `);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { parts: 3, error: "function" });
});

test("node --conditions=browser: importing it throws the clear error", () => {
  const r = node(["--conditions=browser"], `await import("wasm-live-provider/server");`);
  assert.notEqual(r.status, 0, "the import failed");
  assert.ok(r.stderr.includes(MESSAGE), r.stderr);
  // and it resolved to the stub, by the `browser` condition
  const where = node(["--conditions=browser"], `console.log(import.meta.resolve("wasm-live-provider/server"))`);
  assert.match(where.stdout, /server\.browser\.js$/m, where.stderr);
});

/** Bundles `import { createRelayClient } …; createRelayClient(…)` with rolldown; returns the code. */
async function bundle(options) {
  const entry = join(app, `entry-${Math.random().toString(36).slice(2)}.js`);
  writeFileSync(entry, `import { createRelayClient } from "wasm-live-provider/server";\nexport const client = () => createRelayClient({ url: "https://relay.example.com", apiKey: "secret-key-0123456789" });\n`);
  const build = await rolldown({ input: entry, cwd: app, logLevel: "silent", ...options });
  const { output } = await build.generate({ format: "esm" });
  await build.close();
  return output[0].code;
}

test("a browser bundle (rolldown, platform browser) gets the stub, which throws at import", async () => {
  const code = await bundle({ platform: "browser" });
  assert.ok(code.includes(MESSAGE), "the stub's message is in the bundle");
  assert.ok(!code.includes("crypto.subtle") && !code.includes("importKey"), "none of the real helper is in the bundle");
  const file = join(app, "browser-bundle.mjs");
  writeFileSync(file, code);
  const r = spawnSync(process.execPath, [file], { encoding: "utf8" });
  assert.notEqual(r.status, 0);
  assert.ok(r.stderr.includes(MESSAGE), r.stderr);
});

test("a bundle with only the default condition gets the stub; one for node gets the helper", async () => {
  const neutral = await bundle({ platform: "neutral", resolve: { conditionNames: [] } });
  assert.ok(neutral.includes(MESSAGE));
  const forNode = await bundle({ platform: "node" });
  assert.ok(!forNode.includes(MESSAGE) && forNode.includes("crypto.subtle"), "the node bundle holds the real helper");
  for (const condition of ["workerd", "worker", "edge-light", "deno"]) {
    const code = await bundle({ platform: "neutral", resolve: { conditionNames: [condition, "browser"] } });
    assert.ok(!code.includes(MESSAGE) && code.includes("crypto.subtle"), `${condition} (listed with browser) resolves to the helper`);
  }
});
