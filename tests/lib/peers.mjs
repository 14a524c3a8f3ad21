// The real peers of the Playwright tests (tests/e2e, tests/packed): a live-relay process on a free loopback
// port, and headless Chromium (Debian's, as shared/reference/toolchain.md says: Playwright cannot download one).
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { chromium } from "playwright-core";

/** The repository's root. */
export const root = resolve(import.meta.dirname, "../..");

const LISTENING = /listening on (http:\/\/\S+)/;

/**
 * Starts `target/server/live-relay --addr 127.0.0.1:0 ...flags` (`LIVE_RELAY_BINARY` overrides the binary);
 * resolves to `{ child, url }` once it says where it listens, or rejects with what it printed when it exits
 * first.
 */
export async function startRelay(flags = []) {
  const binary = process.env.LIVE_RELAY_BINARY ?? resolve(root, "target/server/live-relay");
  const child = spawn(binary, ["--addr", "127.0.0.1:0", ...flags], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (c) => (out += c));
  const exited = once(child, "exit").then(([code, signal]) => {
    throw new Error(`live-relay exited (${code ?? signal}) before listening; it printed: ${out}`);
  });
  try {
    while (!LISTENING.test(out)) await Promise.race([once(child.stdout, "data"), exited]);
  } finally {
    exited.catch(() => {}); // it exits when the test kills it: that is not an error any more
  }
  return { child, url: out.match(LISTENING)[1] };
}

/** Headless Chromium (`CHROMIUM` overrides the path). */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
}
