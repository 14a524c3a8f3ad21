// The packed tarballs published to a loopback npm registry (registry.mjs) and installed from it as users
// will: `npm install live-relay` pulls the platform package through optionalDependencies; --omit=optional
// leaves it out and the shim says so; --ignore-scripts changes nothing; `npx --yes live-relay` from no project.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import {
  PLATFORM_PACKAGE,
  alive,
  assertPacked,
  checkDemo,
  exitWithin,
  freePort,
  fromTarball,
  healthy,
  mainTarball,
  npx,
  platformTarball,
  portIsFree,
  project,
  shimAndRelay,
  version,
} from "./lib.mjs";
import { startRegistry } from "./registry.mjs";

let registry;
const projects = [];

before(async () => {
  assertPacked();
  registry = await startRegistry([mainTarball, platformTarball]);
});

after(async () => {
  for (const p of projects) p.remove();
  await registry?.close();
});

function fromRegistry() {
  const p = project(registry.url);
  projects.push(p);
  return p;
}

const platformTarballPath = `/-/live-relay-linux-x64-${version}.tgz`;

/** npx live-relay --demo in the project: the demo served, SIGTERM to the shim, exit 0, port freed. */
async function runDemo(proj) {
  const port = await freePort();
  const run = npx(proj, ["live-relay", "--demo", "--addr", `127.0.0.1:${port}`]);
  await healthy(run, port);
  await checkDemo(port);
  const { shim, relay } = shimAndRelay(run.child.pid);
  assert.ok(shim && relay);
  process.kill(shim.pid, "SIGTERM");
  assert.deepEqual(await exitWithin(run, 15_000), { code: 0, signal: null }, run.output());
  assert.ok(!alive(relay.pid));
  assert.ok(await portIsFree(port));
}

test("npm install live-relay pulls the platform package through optionalDependencies, and it runs", { timeout: 90_000 }, async () => {
  const proj = fromRegistry();
  const before = registry.requests.length;
  await proj.npm(["install", "live-relay"]);
  const requests = registry.requests.slice(before);
  assert.ok(requests.includes(`GET /${PLATFORM_PACKAGE}`), requests.join("\n"));
  assert.ok(requests.includes(`GET ${platformTarballPath}`), requests.join("\n"));
  const binary = join(proj.dir, "node_modules", PLATFORM_PACKAGE, "bin/live-relay");
  assert.ok(statSync(binary).mode & 0o111, "installed executable");
  const lock = JSON.parse(readFileSync(join(proj.dir, "package-lock.json"), "utf8"));
  const entry = lock.packages[`node_modules/${PLATFORM_PACKAGE}`];
  assert.equal(entry.version, version);
  assert.equal(entry.optional, true);
  assert.deepEqual([entry.os, entry.cpu], [["linux"], ["x64"]]);
  assert.equal(lock.packages["node_modules/live-relay"].optionalDependencies[PLATFORM_PACKAGE], version);
  await runDemo(proj);
});

test("--omit=optional: the platform package is left out, npx live-relay exits 1 naming it and the fix", { timeout: 60_000 }, async () => {
  const proj = fromRegistry();
  const before = registry.requests.length;
  await proj.npm(["install", "--omit=optional", "live-relay"]);
  assert.ok(!registry.requests.slice(before).includes(`GET ${platformTarballPath}`), "the platform tarball is not downloaded");
  assert.ok(existsSync(join(proj.dir, "node_modules/live-relay/bin/live-relay.js")));
  assert.ok(!existsSync(join(proj.dir, "node_modules", PLATFORM_PACKAGE)));
  const run = npx(proj, ["live-relay", "--demo"]);
  assert.deepEqual(await exitWithin(run, 20_000), { code: 1, signal: null }, run.output());
  const message = run.output();
  assert.match(message, new RegExp(`the platform package ${PLATFORM_PACKAGE} is not installed`));
  assert.match(message, /--omit=optional/);
  assert.match(message, new RegExp(`npm install --include=optional live-relay@${version.replace(/\./g, "\\.")}`));
});

test("--ignore-scripts changes nothing (the packages have no scripts): it still runs", { timeout: 90_000 }, async () => {
  for (const tarball of [mainTarball, platformTarball]) {
    assert.equal(JSON.parse(fromTarball(tarball, "package.json")).scripts, undefined, `${tarball} has no scripts`);
  }
  const proj = fromRegistry();
  await proj.npm(["install", "--ignore-scripts", "live-relay"]);
  assert.ok(existsSync(join(proj.dir, "node_modules", PLATFORM_PACKAGE, "bin/live-relay")));
  await runDemo(proj);
});

test("npx --yes live-relay --version from no project installs from the registry and prints the version", { timeout: 60_000 }, async () => {
  const proj = fromRegistry();
  const run = npx(proj, ["--yes", "live-relay", "--version"], { offline: false });
  assert.deepEqual(await exitWithin(run, 45_000), { code: 0, signal: null }, run.output());
  assert.equal(run.output().trim(), `live-relay ${version}`);
});
