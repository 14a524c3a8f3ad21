// The two packed tarballs installed offline into a temporary project (npm install --offline <platform.tgz>
// <main.tgz>), then run as a user would: npx live-relay --demo, --version, and the shim's own behaviour
// (signals, exit codes, LIVE_RELAY_BINARY, --static-dir, the errors for a missing platform package and an
// unsupported platform).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  PLATFORM_PACKAGE,
  alive,
  assertPacked,
  checkDemo,
  exitWithin,
  freePort,
  healthy,
  mainTarball,
  npx,
  platformTarball,
  portIsFree,
  project,
  shimAndRelay,
  until,
  version,
  watch,
} from "./lib.mjs";

let proj;

before(async () => {
  assertPacked();
  proj = project();
  await proj.npm(["install", "--offline", platformTarball, mainTarball]);
});

after(() => proj?.remove());

test("the offline install has the shim, the demo and the executable platform binary", () => {
  const modules = join(proj.dir, "node_modules");
  const pkg = JSON.parse(readFileSync(join(modules, "live-relay/package.json"), "utf8"));
  assert.equal(pkg.version, version);
  assert.ok(existsSync(join(modules, "live-relay/demo/index.html")));
  const binary = join(modules, PLATFORM_PACKAGE, "bin/live-relay");
  assert.ok(statSync(binary).mode & 0o111, "bin/live-relay is executable as installed");
  assert.ok(existsSync(join(modules, ".bin/live-relay")));
});

test("npx live-relay --demo serves the demo; SIGTERM to the shim: exit 0 through npx, port freed", { timeout: 60_000 }, async () => {
  const port = await freePort();
  const run = npx(proj, ["live-relay", "--demo", "--addr", `127.0.0.1:${port}`]);
  await healthy(run, port);
  await checkDemo(port);
  const { shim, relay, all } = shimAndRelay(run.child.pid);
  assert.ok(shim && relay, `shim and relay under npx: ${JSON.stringify(all)}`);
  const staticDir = relay.argv[relay.argv.indexOf("--static-dir") + 1];
  assert.equal(staticDir, join(proj.dir, "node_modules/live-relay/demo"), "--demo added the packaged demo as --static-dir");
  process.kill(shim.pid, "SIGTERM");
  const how = await exitWithin(run, 15_000);
  assert.deepEqual(how, { code: 0, signal: null }, run.output());
  assert.ok(!alive(relay.pid), "the relay has stopped");
  assert.ok(await portIsFree(port), `port ${port} is free again`);
});

test("SIGTERM to the npx process: npm exits 143, the shim stops the relay, port freed", { timeout: 60_000 }, async () => {
  // npm passes SIGTERM to the `sh -c` it runs the bin with, the shell dies of it without passing it on, and
  // npm re-raises it on itself (so its own exit is 143 / SIGTERM whatever the relay does). The shim sees its
  // shell gone and stops the relay as SIGTERM would.
  const port = await freePort();
  const run = npx(proj, ["live-relay", "--demo", "--addr", `127.0.0.1:${port}`]);
  await healthy(run, port);
  const { shim, relay } = shimAndRelay(run.child.pid);
  assert.ok(shim && relay);
  run.child.kill("SIGTERM");
  const how = await exitWithin(run, 15_000);
  assert.ok(how.signal === "SIGTERM" || how.code === 143, JSON.stringify(how));
  await until(async () => !alive(shim.pid) && !alive(relay.pid) && (await portIsFree(port)), 10_000, "shim and relay gone, port free");
});

test("npx live-relay --version prints the package's version", { timeout: 30_000 }, async () => {
  const run = npx(proj, ["live-relay", "--version"]);
  const how = await exitWithin(run, 20_000);
  assert.deepEqual(how, { code: 0, signal: null }, run.output());
  assert.equal(run.output().trim(), `live-relay ${version}`);
});

const shimPath = () => join(proj.dir, "node_modules/live-relay/bin/live-relay.js");

test("the shim passes SIGINT (exit 0) and SIGHUP (the relay dies of it: exit 128+1) on", { timeout: 60_000 }, async () => {
  for (const [signal, code] of [["SIGINT", 0], ["SIGHUP", 129]]) {
    const port = await freePort();
    const run = watch(spawn(process.execPath, [shimPath(), "--addr", `127.0.0.1:${port}`], { cwd: proj.dir, env: proj.env }));
    await healthy(run, port);
    run.child.kill(signal);
    const how = await exitWithin(run, 15_000);
    assert.deepEqual(how, { code, signal: null }, `${signal}: ${run.output()}`);
    assert.ok(await portIsFree(port));
  }
});

test("LIVE_RELAY_BINARY overrides the binary; --static-dir is added only with --demo and without one", () => {
  const fake = join(proj.dir, "fake-relay.sh");
  writeFileSync(fake, '#!/bin/sh\necho "args: $*"\nexit 7\n');
  chmodSync(fake, 0o755);
  const env = { ...proj.env, LIVE_RELAY_BINARY: fake };
  const run = (...args) => spawnSync(process.execPath, [shimPath(), ...args], { cwd: proj.dir, env, encoding: "utf8" });
  const demo = join(proj.dir, "node_modules/live-relay/demo");

  let r = run("--demo", "--addr", "127.0.0.1:1");
  assert.equal(r.status, 7, "exits with the binary's code");
  assert.equal(r.stdout.trim(), `args: --demo --addr 127.0.0.1:1 --static-dir ${demo}`);
  r = run("--demo", "--static-dir", "/srv/app");
  assert.equal(r.stdout.trim(), "args: --demo --static-dir /srv/app");
  r = run("--demo", "--static-dir=/srv/app");
  assert.equal(r.stdout.trim(), "args: --demo --static-dir=/srv/app");
  r = run("--addr", "127.0.0.1:1");
  assert.equal(r.stdout.trim(), "args: --addr 127.0.0.1:1");
  r = spawnSync(process.execPath, [shimPath(), "--demo"], { cwd: proj.dir, env: { ...env, LIVE_RELAY_STATIC_DIR: "/srv/app" }, encoding: "utf8" });
  assert.equal(r.stdout.trim(), "args: --demo", "LIVE_RELAY_STATIC_DIR counts as --static-dir");

  r = spawnSync(process.execPath, [shimPath()], { cwd: proj.dir, env: { ...proj.env, LIVE_RELAY_BINARY: join(proj.dir, "nope") }, encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /nope does not exist/);
});

test("an unsupported platform: exit 1, naming linux-x64, the cargo build and the image", () => {
  const preload = join(proj.dir, "darwin-arm64.cjs");
  writeFileSync(preload, 'Object.defineProperty(process, "platform", { value: "darwin" });\nObject.defineProperty(process, "arch", { value: "arm64" });\n');
  const r = spawnSync(process.execPath, ["--require", preload, shimPath(), "--demo"], { cwd: proj.dir, env: proj.env, encoding: "utf8" });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /no prebuilt binary for darwin-arm64/);
  assert.match(r.stderr, /only linux-x64 is built/);
  assert.match(r.stderr, /cargo build --profile server -p live-relay/);
  assert.match(r.stderr, /container image/);
  assert.match(r.stderr, /node_modules copied from a Linux machine/, "the linux-x64 package is installed here: says so");
});

test("the main tarball alone (offline): the platform package is left out and npx live-relay says so", { timeout: 60_000 }, async () => {
  const alone = project();
  try {
    await alone.npm(["install", "--offline", mainTarball]);
    assert.ok(!existsSync(join(alone.dir, "node_modules", PLATFORM_PACKAGE)));
    const run = npx(alone, ["live-relay", "--demo"]);
    const how = await exitWithin(run, 20_000);
    assert.deepEqual(how, { code: 1, signal: null }, run.output());
    assert.match(run.output(), new RegExp(`the platform package ${PLATFORM_PACKAGE} is not installed`));
  } finally {
    alone.remove();
  }
});
