// The endpoints the package's JS entry derives for the wasm client (pkg/index.js, as built by
// scripts/build-pkg.sh): the wasm derives none (src/engine/relays.rs). Against a real live-relay with
// authentication on, in headless Chromium, an SSE client given only its stream's URL (with a query)
// and a token gets its ticket from `POST /sse/ticket` next to the stream and publishes to `/publish`
// beside it: a wrong URL for either would never open or never deliver.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, cpSync, writeFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root, startRelay, launchChromium } from "../lib/peers.mjs";

const secret = randomBytes(32).toString("hex");
let work, relay, browser, base;

before(async () => {
  assert.ok(existsSync(join(root, "pkg/index.js")), "pkg/ is built (bash scripts/build-pkg.sh)");
  work = mkdtempSync(join(tmpdir(), "wlp-endpoints-"));
  cpSync(join(root, "pkg"), work, { recursive: true });
  writeFileSync(join(work, "endpoints.html"), '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>endpoints</title>');
  ({ child: relay, url: base } = await startRelay(["--static-dir", work, "--jwt-secret", secret]));
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  relay?.kill();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** An HS256 JWT for the relay: subscribe and publish on `channel` for a minute. */
function token(channel) {
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ sub: "u1", iat: now, exp: now + 60, channels: [channel], publish: [channel] })}`;
  return `${unsigned}.${createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

/** Runs in the page. */
async function scenario({ streamUrl, channel, token }) {
  const m = await import("/index.js");
  const until = async (cond, ms = 10_000) => {
    const start = Date.now();
    while (!cond()) {
      if (Date.now() - start > ms) return false;
      await new Promise((r) => setTimeout(r, 10));
    }
    return true;
  };
  const errors = [];
  const got = [];
  const c = m.createLiveClient({ url: streamUrl, transport: "sse", token, backoffMinMs: 20, onError: (e) => errors.push(String(e?.message ?? e)) });
  const handle = c.subscribe(channel, ["*"], undefined, (e) => got.push(e.type));
  const out = { subscribed: await until(() => handle.state === "subscribed") };
  out.url = c.stats.url;
  try {
    out.seq = (await c.publish({ channel, type: "updated", payload: { ids: [1] } })).seq;
  } catch (e) {
    out.publishError = String(e?.message ?? e);
  }
  out.delivered = await until(() => got.length === 1);
  out.got = got;
  out.errors = errors;
  c.close();
  return out;
}

test("an authenticated SSE client reaches the ticket and publish endpoints derived from its stream's URL", async () => {
  const page = await browser.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on("console", (msg) => msg.type() === "error" && pageErrors.push(`console.error: ${msg.text()}`));
  await page.goto(`${base}/endpoints.html`);
  const channel = "endpoints/sse";
  const streamUrl = `${base}/sse?from=endpoints-test`;
  const out = await page.evaluate(scenario, { streamUrl, channel, token: token(channel) });
  assert.equal(out.subscribed, true, `the stream opened with a ticket (errors: ${out.errors.join("; ")})`);
  assert.equal(out.url, streamUrl, "stats.url: the stream");
  assert.equal(out.publishError, undefined, "the publish went to /publish next to the stream");
  assert.ok(out.seq > 0, `acknowledged: seq ${out.seq}`);
  assert.equal(out.delivered, true);
  assert.deepEqual(out.got, ["updated"]);
  assert.deepEqual(out.errors, []);
  assert.deepEqual(pageErrors, []);
});
