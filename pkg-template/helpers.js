// Pure helpers of the JS entry (index.js): no wasm, no DOM, no state. The build bundles them into
// pkg/index.js (rolldown); the file also ships as it is, for the adapters' checks (adapter-checks.js),
// so it imports nothing. tests/js/helpers.test.mjs runs them under `node --test` without a build.

/**
 * Limits the JS entry shares with the wasm: the longest wait `setTimeout` honours (2^31-1 ms; the
 * millisecond options and `maxFrameBytes` are at most this), and `maxFrameBytes`'s default (1 MiB).
 * The Rust side's are `engine::limits` (src/engine/limits.rs); its test reads these lines, and the
 * numbers index.js's messages spell, and fails when they differ.
 */
export const MAX_TIMER_MS = 2147483647;
export const DEFAULT_MAX_FRAME_BYTES = 1048576;

/** What `value` is, for a TypeError's message. */
export function describe(value) {
  if (value == null) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    // A message stays readable whatever was passed (a 10 MB string, say).
    return value.length > 80 ? `a string of ${value.length} characters ("${value.slice(0, 40)}…")` : `the string "${value}"`;
  }
  if (typeof value === "function") return "a function";
  // Not String(value): an object without a prototype, or with a throwing toString, throws there.
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/** `value` as JSON text, or a TypeError naming `field` (a cycle, a BigInt, a function, undefined). */
export function toJson(value, where, field) {
  let text;
  try {
    text = JSON.stringify(value);
  } catch (cause) {
    throw new TypeError(`${where}: \`${field}\` cannot be sent as JSON: ${cause.message}`, { cause });
  }
  if (text === undefined) {
    throw new TypeError(`${where}: \`${field}\` cannot be sent as JSON, got ${describe(value)}`);
  }
  return text;
}

/** The relay's URL for `endpoint` ("sse" or "publish"), next to `url`'s last path segment. */
export function sibling(url, endpoint) {
  const u = new URL(url);
  if (u.protocol === "ws:") u.protocol = "http:";
  if (u.protocol === "wss:") u.protocol = "https:";
  u.pathname = u.pathname.replace(/[^/]*$/, endpoint);
  u.search = "";
  return u.toString();
}

/**
 * What the wasm client needs to reach the relays, from the user's options: each relay's SSE,
 * ticket and publish URLs, derived from its `url` unless given (always arrays, one entry per `url`,
 * copies: changing the user's arrays later changes nothing). The wasm derives and checks none of it.
 */
export function endpoints(options) {
  const transport = options.transport ?? "websocket";
  const list = (given, make) => (given === undefined ? [].concat(options.url).map(make) : [].concat(given));
  const sseUrl = list(options.sseUrl, (url) => (transport === "sse" ? url : sibling(url, "sse")));
  const out = {
    transport,
    sseUrl,
    publishUrl: list(options.publishUrl, (url) => sibling(url, "publish")),
    // `POST /sse/ticket` next to the stream: `http://h/sse/?a#b` -> `http://h/sse/ticket`.
    ticketUrl: sseUrl.map((url) => url.split(/[?#]/)[0].replace(/\/*$/, "/ticket")),
  };
  if (options.scopes?.length) out.scopeQuery = `scopes=${options.scopes.map(encodeURIComponent).join(",")}`;
  if (options.flavor) out.flavor = options.flavor;
  return out;
}

/**
 * How many bytes `texts` take in UTF-8, as a WebSocket sends them and the relay counts them
 * (`maxFrameBytes`, the relay's `--max-frame-bytes`; a lone surrogate is U+FFFD's 3 bytes).
 */
export function utf8Bytes(...texts) {
  return new Blob(texts).size;
}

/**
 * TanStack Query's `partialMatchKey(a, b)` (query-core's utils.ts): whether `b` matches `a` — equal
 * values; or arrays where `b` is no longer than `a` and matches it element by element (a prefix);
 * or objects where every property of `b` matches `a`'s (in any order; `a` may have more). What
 * `queryClient.invalidateQueries({ queryKey: b })` uses to pick the queries whose key is `a`.
 */
export function partialMatchKey(a, b) {
  if (a === b) return true;
  if (typeof a !== typeof b || !a || !b || typeof a !== "object") return false;
  const arrays = Array.isArray(a) && Array.isArray(b);
  if (arrays && b.length > a.length) return false;
  // An array's every index (holes too), an object's own enumerable properties.
  for (const key of arrays ? b.keys() : Object.keys(b)) if (!partialMatchKey(a[key], b[key])) return false;
  return true;
}

/**
 * Whether `queryKey` is revalidated by `keys` (as given to an `onRevalidate` listener): whether
 * `queryClient.invalidateQueries({ queryKey: key })` of one of them (what `useRevalidation` does) picks
 * a query with this key — TanStack Query's `partialMatchKey`: a key matches a prefix of `queryKey`,
 * element by element, objects matching when every property of the key's matches (in any order).
 * `keys === null` (missed revalidations) matches everything.
 */
export function isRevalidated(keys, queryKey) {
  const w = "isRevalidated";
  if (!Array.isArray(queryKey)) throw new TypeError(`${w}: \`queryKey\` must be an array, got ${describe(queryKey)}`);
  if (keys === null) return true;
  if (!Array.isArray(keys)) throw new TypeError(`${w}: \`keys\` must be an array of keys (arrays) or null, got ${describe(keys)}`);
  keys.forEach((key, i) => {
    if (!Array.isArray(key)) throw new TypeError(`${w}: \`keys[${i}]\` must be an array, got ${describe(key)}`);
  });
  return keys.some((key) => partialMatchKey(queryKey, key));
}
