// Shared by the tests of the relay's npm packages (make test-npm): the packed tarballs of dist/npm/
// (scripts/npm-pack.sh), npm run in temporary projects with a configuration of their own (an empty cache,
// empty user and global .npmrc, a loopback registry, no audit, no fund), and the relay started through npx.
// Nothing here reaches beyond 127.0.0.1: installs are --offline (registry: a closed loopback port) or from
// the loopback registry of registry.mjs.
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export const root = resolve(import.meta.dirname, "../..");
export const version = readFileSync(join(root, "relay/Cargo.toml"), "utf8").match(/^version = "(.+)"$/m)[1];
export const mainTarball = join(root, `dist/npm/live-relay-${version}.tgz`);
export const platformTarball = join(root, `dist/npm/live-relay-linux-x64-${version}.tgz`);
export const PLATFORM_PACKAGE = "@live-relay/linux-x64";
/** A loopback port nothing listens on: npm told to use it as its registry fails at once, and offline. */
export const DEAD_REGISTRY = "http://127.0.0.1:9/";

export function assertPacked() {
  for (const file of [mainTarball, platformTarball]) {
    assert.ok(existsSync(file), `${file} is missing: run make npm (or bash scripts/npm-pack.sh)`);
  }
}

/** A file of a tarball, as a Buffer (tar from PATH). */
export function fromTarball(tarball, path) {
  return execFileSync("tar", ["-xzOf", tarball, `package/${path}`], { maxBuffer: 64 << 20 });
}

/**
 * A temporary project with npm configured for it alone: `dir`, `env` (process.env without any npm_* variable,
 * then cache, userconfig, globalconfig and registry inside or beside it), `flags` (the same as command-line
 * options, passed explicitly to every npm call), `npm(args)`, `remove()`.
 */
export function project(registry = DEAD_REGISTRY) {
  const dir = mkdtempSync(join(tmpdir(), "live-relay-npm-"));
  const home = join(dir, ".home");
  const cache = join(home, "cache");
  const userconfig = join(home, "npmrc");
  const globalconfig = join(home, "npmrc-global");
  execFileSync("mkdir", ["-p", cache]);
  writeFileSync(userconfig, "");
  writeFileSync(globalconfig, "");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "npm-test-project", private: true }) + "\n");
  const env = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && !/^(https?|all|no)_proxy$/i.test(key)) env[key] = value;
  }
  Object.assign(env, {
    HOME: home,
    npm_config_cache: cache,
    npm_config_userconfig: userconfig,
    npm_config_globalconfig: globalconfig,
    npm_config_registry: registry,
    npm_config_audit: "false",
    npm_config_fund: "false",
    npm_config_update_notifier: "false",
  });
  // `--key=value` throughout: npx takes a value-less `--no-fund` followed by `live-relay` for a flag and its value.
  const flags = [`--registry=${registry}`, `--cache=${cache}`, `--userconfig=${userconfig}`, "--audit=false", "--fund=false"];
  return {
    dir,
    env,
    flags,
    /**
     * Runs npm (from PATH) in the project, asynchronously (the loopback registry answers from this process);
     * rejects with its output when it fails or takes over two minutes.
     */
    async npm(args) {
      try {
        const { stdout } = await execFileAsync("npm", [...args, ...flags, "--no-audit", "--no-fund"], {
          cwd: dir,
          env,
          encoding: "utf8",
          timeout: 120_000,
          killSignal: "SIGKILL",
        });
        return stdout;
      } catch (err) {
        throw new Error(`npm ${args.join(" ")} failed (${err.code ?? err.signal}):\n${err.stdout}\n${err.stderr}`);
      }
    },
    /** Kills what is left running from the project (a failed test's relay), then deletes it. */
    remove() {
      for (const pid of processesUnder(dir)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone meanwhile
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** `npx <args>` in the project, its output collected: { child, output(), exited (a promise of { code, signal }) }. */
export function npx(proj, args, { offline = true } = {}) {
  const child = spawn("npx", [...(offline ? ["--offline"] : []), ...proj.flags, ...args], {
    cwd: proj.dir,
    env: proj.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  return watch(child);
}

/** Collects a child's output; `exited` resolves with how it ended. */
export function watch(child) {
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

/** Resolves with how it ended, or rejects after `ms` (and kills it: no process left behind). */
export async function exitWithin(run, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => {
      run.child.kill("SIGKILL");
      reject(new Error(`still running after ${ms} ms:\n${run.output()}`));
    }, ms);
  });
  try {
    return await Promise.race([run.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Whether 127.0.0.1:port can be bound again (nothing listens on it). */
export function portIsFree(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** Polls `check` (async, truthy = done) every 100 ms for up to `ms`. */
export async function until(check, ms, what) {
  const start = Date.now();
  for (;;) {
    if (await check()) return;
    if (Date.now() - start > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until http://127.0.0.1:port/healthz answers 200; fails early if the process ends. */
export async function healthy(run, port, ms = 20_000) {
  let ended = null;
  run.exited.then((how) => (ended = how));
  await until(
    async () => {
      if (ended) throw new Error(`ended (${JSON.stringify(ended)}) before answering /healthz:\n${run.output()}`);
      try {
        return (await fetch(`http://127.0.0.1:${port}/healthz`)).status === 200;
      } catch {
        return false;
      }
    },
    ms,
    `GET /healthz on port ${port} answers 200\n${run.output()}`,
  );
}

/** The processes whose command line names something inside `dir` (the shims and relays of a project). */
export function processesUnder(dir) {
  const found = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").some((arg) => arg.startsWith(`${dir}/`))) found.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** Every process descending from `pid`, as { pid, argv } (read from /proc). */
export function descendants(pid) {
  const parents = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  const found = [];
  const queue = [pid];
  while (queue.length) {
    const parent = queue.shift();
    for (const [child, ppid] of parents) {
      if (ppid !== parent) continue;
      queue.push(child);
      try {
        found.push({ pid: child, argv: readFileSync(`/proc/${child}/cmdline`, "utf8").split("\0").filter(Boolean) });
      } catch {
        // gone meanwhile
      }
    }
  }
  return found;
}

export const alive = (pid) => existsSync(`/proc/${pid}`) && !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8"));

/** The shim (node running bin/live-relay) and the relay binary under an npx process. */
export function shimAndRelay(npxPid) {
  const all = descendants(npxPid);
  const shim = all.find((p) => /(^|\/)node$/.test(p.argv[0]) && /live-relay(\.js)?$/.test(p.argv[1] ?? ""));
  const relay = all.find((p) => p.argv[0].endsWith(`${PLATFORM_PACKAGE}/bin/live-relay`));
  return { shim, relay, all };
}

/**
 * Checks the running demo on `port`: /healthz 200, `/` is the packaged demo's index.html byte for byte, the
 * script it loads is served, and the demo API answers.
 */
export async function checkDemo(port) {
  const base = `http://127.0.0.1:${port}`;
  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  const index = await fetch(`${base}/`);
  assert.equal(index.status, 200);
  const html = await index.text();
  assert.equal(html, fromTarball(mainTarball, "demo/index.html").toString("utf8"), "GET / serves the packaged demo's index.html");
  const script = html.match(/<script[^>]+src="([^"]+)"/)?.[1];
  assert.ok(script, `index.html loads a script:\n${html}`);
  const asset = await fetch(new URL(script, `${base}/`));
  assert.equal(asset.status, 200, `GET ${script}`);
  assert.match(asset.headers.get("content-type") ?? "", /javascript/);
  const api = await fetch(`${base}/api/posts`);
  assert.equal(api.status, 200, "the demo API (--demo) answers");
}
