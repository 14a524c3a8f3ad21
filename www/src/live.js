// One live connection for the whole page, to the relay that served it.
import { liveProvider, realtime } from "wasm-live-provider";
import { myName } from "./who.js";

export const relayUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

/**
 * A connection token for this tab's demo user (`myName`, see who.js), from the relay's
 * `GET /demo/token?name=…` (demo mode only; a real app asks its own backend). The client calls it
 * before every connection and again before the token expires (60 s here), and sends the token in
 * its first frame. A refusal rejects with an Error
 * saying why: the client reports it to `onError` and retries with backoff.
 */
export async function getDemoToken() {
  let response;
  try {
    response = await fetch(`/demo/token?name=${encodeURIComponent(myName)}`, { cache: "no-store", headers: { accept: "application/json" } });
  } catch (e) {
    throw new Error(`GET /demo/token failed: ${e?.message ?? e}`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = body?.error?.message ?? response.statusText;
    throw new Error(`GET /demo/token answered ${response.status}${reason ? `: ${reason}` : ""}`);
  }
  if (typeof body?.token !== "string" || body.token === "") {
    throw new Error("GET /demo/token answered without a token");
  }
  return body.token;
}

const onError = (e) => console.warn(e.message);

/** The demo's coalescing window unless the URL says otherwise, ms. */
export const DEFAULT_COALESCE_MS = 250;

/**
 * The coalescing window of both apps (`coalesceMs`), from the page URL's `?coalesce=<ms>` (before
 * the `#`): on by default (250 ms: a burst of updates costs each page one refetch at once and one
 * per window, not one per event), `?coalesce=0` turns it off (every event reaches Refine, which
 * refetches for each). A value that is not a non-negative number of ms keeps the default, with a
 * warning.
 */
export function coalesceFromUrl(search = location.search) {
  const given = new URLSearchParams(search).get("coalesce");
  if (given === null || given === "") return DEFAULT_COALESCE_MS;
  const ms = Number(given);
  if (!Number.isFinite(ms) || ms < 0 || ms > 2147483647) {
    console.warn(`?coalesce=${given} is not a number of milliseconds (0 turns coalescing off); using ${DEFAULT_COALESCE_MS}`);
    return DEFAULT_COALESCE_MS;
  }
  return ms;
}

/** The coalescing window in use on this page, ms (`0`: off). */
export const coalesceMs = coalesceFromUrl();

/** For the Refine app. */
export const createRefineLive = () => liveProvider({ url: relayUrl, getToken: getDemoToken, onError, coalesceMs });

/** For the Vue app: the Ginjou-shaped provider (`actions`, `action`). */
export const createVueLive = () => realtime({ url: relayUrl, getToken: getDemoToken, onError, coalesceMs });

/** The channel of the demo's pings: the demo token may subscribe and publish on `demo/*` only. */
export const PING_CHANNEL = "demo/notifications";
