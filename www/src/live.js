// One live connection for the whole page, to the relay that served it.
import { liveProvider, realtime } from "wasm-live-provider";

export const relayUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;

/**
 * A connection token for the demo user, from the relay's `GET /demo/token` (demo mode only; a real
 * app asks its own backend). The client calls it before every connection and again before the
 * token expires (60 s here), and sends the token in its first frame. A refusal rejects with an Error
 * saying why: the client reports it to `onError` and retries with backoff.
 */
export async function getDemoToken() {
  let response;
  try {
    response = await fetch("/demo/token", { cache: "no-store", headers: { accept: "application/json" } });
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

/** For the Refine app. */
export const createRefineLive = () => liveProvider({ url: relayUrl, getToken: getDemoToken, onError });

/** For the Vue app: the Ginjou-shaped provider (`actions`, `action`). */
export const createVueLive = () => realtime({ url: relayUrl, getToken: getDemoToken, onError });

/** The channel of the demo's pings: the demo token may subscribe and publish on `demo/*` only. */
export const PING_CHANNEL = "demo/notifications";
