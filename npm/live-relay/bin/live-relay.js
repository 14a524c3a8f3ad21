#!/usr/bin/env node
// The `live-relay` command of the npm package: starts the relay's native binary and stays in between only
// to pass signals on and to exit as the binary did. No dependencies and no install script: the binary
// comes from the platform package that npm installs as an optional dependency (only the one whose `os` and
// `cpu` match), found here with require.resolve. LIVE_RELAY_BINARY=/path/to/live-relay overrides it.
//
// `--demo` without `--static-dir` also serves the demo app packaged beside this file (demo/), so that
// `npx live-relay --demo` is the whole demo.
"use strict";

const { spawn } = require("node:child_process");
const { existsSync, readFileSync } = require("node:fs");
const { constants } = require("node:os");
const path = require("node:path");

const PLATFORM_PACKAGE = "@live-relay/linux-x64";
const BINARY_IN_PACKAGE = `${PLATFORM_PACKAGE}/bin/live-relay`;
const SOURCE_BUILD = "cargo build --profile server -p live-relay";

const ownPackage = JSON.parse(readFileSync(path.join(__dirname, "..", "package.json"), "utf8"));
const version = ownPackage.version;

function fail(lines) {
  process.stderr.write(`live-relay: ${lines.join("\n  ")}\n`);
  process.exit(1);
}

/** The platform package's binary, or null when it is not installed. */
function resolvePlatformBinary() {
  try {
    return require.resolve(BINARY_IN_PACKAGE);
  } catch (err) {
    if (err && err.code === "MODULE_NOT_FOUND") return null;
    throw err;
  }
}

function findBinary() {
  const override = process.env.LIVE_RELAY_BINARY;
  if (override) return override;

  const platform = `${process.platform}-${process.arch}`;
  if (platform !== "linux-x64") {
    const copied = resolvePlatformBinary()
      ? [`(${PLATFORM_PACKAGE} is installed here: node_modules copied from a Linux machine or container does not run on ${platform}; install on this machine instead.)`]
      : [];
    fail([
      `no prebuilt binary for ${platform}: only linux-x64 is built (one static binary, for glibc and musl/Alpine alike),`,
      "until a CI with other systems exists. Other ways to run the relay:",
      `- build it from source with Rust, in the wasm-live-provider repository: ${SOURCE_BUILD}`,
      "  (the binary is target/server/live-relay; LIVE_RELAY_BINARY=<that path> npx live-relay uses it here);",
      "- run the container image (FROM scratch with the same static binary, linux/amd64; docs/IMAGE.md):",
      "  make relay-static && docker build -t live-relay . (in the repository)",
      ...copied,
    ]);
  }

  const binary = resolvePlatformBinary();
  if (!binary) {
    fail([
      `the platform package ${PLATFORM_PACKAGE} is not installed, so there is no binary to run.`,
      `npm installs it as an optional dependency of live-relay; it was left out, most likely by --omit=optional`,
      "or --no-optional (or omit=optional / optional=false in an .npmrc, or a lockfile written on another system).",
      "To fix it, install again with optional dependencies, e.g.:",
      `  npm install --include=optional live-relay@${version}`,
      `or add the platform package itself: npm install ${PLATFORM_PACKAGE}@${version}`,
      "or point LIVE_RELAY_BINARY at a live-relay binary.",
    ]);
  }

  try {
    const platformVersion = JSON.parse(readFileSync(path.join(path.dirname(binary), "..", "package.json"), "utf8")).version;
    if (platformVersion !== version) {
      process.stderr.write(
        `live-relay: warning: ${PLATFORM_PACKAGE} is ${platformVersion}, live-relay is ${version}; ` +
          `install ${PLATFORM_PACKAGE}@${version} (the versions are released together).\n`,
      );
    }
  } catch {
    // No readable package.json beside the binary: nothing to compare.
  }
  return binary;
}

function relayArguments(args) {
  const has = (flag) => args.some((a) => a === flag || a.startsWith(`${flag}=`));
  if (has("--demo") && !has("--static-dir") && !process.env.LIVE_RELAY_STATIC_DIR) {
    const demo = path.join(__dirname, "..", "demo");
    if (existsSync(path.join(demo, "index.html"))) return [...args, "--static-dir", demo];
    process.stderr.write(`live-relay: warning: the packaged demo app is missing (${demo}); serving the demo API only.\n`);
  }
  return args;
}

const binary = findBinary();
const child = spawn(binary, relayArguments(process.argv.slice(2)), { stdio: "inherit" });

const stop = (signal) => {
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
};
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(signal, () => stop(signal));

// Started by npm (npx, npm exec, npm run), this process is the child of the `sh -c` npm runs scripts
// with. npm passes SIGINT and SIGTERM to that shell only, and the shell dies of them without passing them
// on: the relay would keep running, orphaned, with its port taken. So when the shell is gone (this
// process got a new parent), stop the relay as SIGTERM would. Only under npm: a relay started with
// `nohup` or `&` from a shell that exits is meant to outlive it.
if (process.env.npm_lifecycle_event) {
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop("SIGTERM");
  }, 200).unref();
}

child.on("error", (err) => {
  const why =
    err.code === "ENOENT"
      ? "does not exist"
      : err.code === "EACCES"
        ? "is not executable (chmod +x it, or install the package again)"
        : `could not be started (${err.message})`;
  fail([`the binary ${binary} ${why}.`]);
});

child.on("exit", (code, signal) => {
  // Killed by a signal: exit as a shell reports it, 128 + the signal's number.
  process.exit(signal ? 128 + (constants.signals[signal] || 0) : code);
});
