// The JS that runs for every frame the wasm client receives, imported by the browser shell
// (src/browser/js.rs, `#[wasm_bindgen(module = "/pkg-template/frames.js")]`) and
// bundled into the wasm-bindgen glue by scripts/build-pkg.sh. It decides nothing about the
// protocol: it parses a frame once, hands the engine the keys it routes on, and calls the
// callbacks the engine names. Type-checked under tsc --strict (tests/types/tsconfig.frames.json)
// and unit-tested with node --test (tests/js/frames.test.mjs).

/**
 * An event as the app's callbacks receive it (`LiveEvent` in index.d.ts).
 * @typedef {{ channel: string, type: string, payload: unknown, date: Date, meta?: object }} LiveEvent
 */

/**
 * The `Date` of `ms` milliseconds since the epoch, or now when that is no time JS can represent.
 * @param {unknown} ms
 * @returns {Date}
 */
function eventDate(ms) {
  const date = new Date(/** @type {number} */ (ms));
  return isNaN(date.getTime()) ? new Date() : date;
}

/**
 * Builds the `LiveEvent` handed to callbacks from the parts the engine kept (JSON texts): the
 * payload becomes a JS object here, once per event whatever the number of callbacks.
 * @param {string} channel
 * @param {string} type
 * @param {string} payload
 * @param {number} date
 * @param {string | undefined} meta
 * @returns {LiveEvent}
 */
export function liveEvent(channel, type, payload, date, meta) {
  /** @type {LiveEvent} */
  const event = { channel, type, payload: JSON.parse(payload), date: eventDate(date) };
  if (meta !== undefined) event.meta = JSON.parse(meta);
  return event;
}

/**
 * @param {any} f a parsed `event` frame
 * @param {Date} date
 * @returns {LiveEvent}
 */
function eventOf(f, date) {
  /** @type {LiveEvent} */
  const event = { channel: f.channel, type: f.type, payload: f.payload, date };
  const m = f.meta;
  if (typeof m === "object" && m !== null && !Array.isArray(m)) event.meta = m;
  return event;
}

/**
 * Builds the `LiveEvent` from an `event` frame as it arrived: its text (one `JSON.parse` per
 * event) or the object `frameListener` already parsed it into.
 * @param {unknown} frame
 * @returns {LiveEvent}
 */
export function eventFromFrame(frame) {
  const f = typeof frame === "string" ? JSON.parse(frame) : frame;
  return eventOf(f, eventDate(f.date));
}

/**
 * The record ids of a parsed frame the engine can route by its keys alone (an `event` with a
 * `seq`, a `date` JS can represent, a `meta` object or none, and `payload.ids` strings and safe
 * integers): the ids, or `undefined` when the payload has none. `null` for every other frame: the
 * engine's decoder reads it then (and says what is wrong with it).
 * @param {any} f
 * @returns {Array<string | number> | undefined | null}
 */
function eventIds(f) {
  if (f === null || typeof f !== "object" || f.op !== "event") return null;
  if (typeof f.channel !== "string" || typeof f.type !== "string") return null;
  if (!Number.isSafeInteger(f.seq) || f.seq < 0) return null;
  if (typeof f.date !== "number" || !(Math.abs(f.date) <= 8.64e15)) return null;
  const m = f.meta;
  if (m !== undefined && (typeof m !== "object" || m === null || Array.isArray(m))) return null;
  const p = f.payload;
  if (p === undefined) return null;
  if (p === null || typeof p !== "object" || Array.isArray(p) || p.ids == null) return undefined;
  const ids = p.ids;
  if (!Array.isArray(ids)) return null;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (typeof id !== "string" && !Number.isSafeInteger(id)) return null;
  }
  return ids;
}

/** The sub id under which presence frames go to the entry's presence bookkeeping (client.rs). */
const PRESENCE_SUB = 4294967295;

/**
 * A WebSocket's `onmessage`: it parses each text frame once. A binary frame goes to
 * `onText(undefined, 0)`, a text frame over `max` bytes of UTF-8 to `onText(undefined, bytes)`: it
 * never enters wasm. A plain socket (`onEvent` undefined) hands every text frame to
 * `onText(text, 0)`, for its translator. A presence frame goes to the callback of `PRESENCE_SUB`.
 * An `event` frame `eventIds` accepts goes to `onEvent(channel, type, seq, ids, frame, timeStamp)`,
 * which answers the subscriptions (a sub id or a list of them) whose callbacks are called with the
 * event, each looked up in `callbacks` when its turn comes; what one throws goes to `onThrow`.
 * Every other frame goes to `onFrame(parsed, undefined)`, or `onFrame(undefined, why)` when it is
 * not JSON.
 * @param {number} max
 * @param {(text: string | undefined, bytes: number) => void} onText
 * @param {(frame: unknown, why: string | undefined) => void} onFrame
 * @param {((channel: string, type: string, seq: number, ids: Array<string | number> | undefined, frame: unknown, timeStamp: number) => number | ArrayLike<number> | undefined) | undefined} onEvent
 * @param {Map<number, (event: any) => void>} callbacks
 * @param {(error: unknown) => void} onThrow
 * @returns {(e: { data: unknown, timeStamp: number }) => void}
 */
export function frameListener(max, onText, onFrame, onEvent, callbacks, onThrow) {
  return (e) => {
    const d = e.data;
    if (typeof d !== "string") return onText(undefined, 0);
    // UTF-8 bytes, as the relay counts; a UTF-16 unit is 1 to 3 bytes (as stream.js's bytesOver).
    const n = d.length * 3 > max ? new Blob([d]).size : 0;
    if (n > max) return onText(undefined, n);
    if (onEvent === undefined) return onText(d, 0);
    let f;
    try {
      f = JSON.parse(d);
    } catch (error) {
      return onFrame(undefined, String(error instanceof Error ? error.message : error));
    }
    if (f !== null && f.op === "presence") return deliver(callbacks, PRESENCE_SUB, f, onThrow);
    const ids = eventIds(f);
    if (ids === null) return onFrame(f, undefined);
    const subs = onEvent(f.channel, f.type, f.seq, ids, f, e.timeStamp);
    if (subs === undefined) return;
    // As eventFromFrame(f): eventIds checked that the date is a time JS can represent.
    const event = eventOf(f, new Date(f.date));
    if (typeof subs === "number") return deliver(callbacks, subs, event, onThrow);
    for (let i = 0; i < subs.length; i++) deliver(callbacks, subs[i], event, onThrow);
  };
}

/**
 * Calls the callback of `sub`, looked up at call time: an earlier callback may have unsubscribed it.
 * @param {Map<number, (event: any) => void>} callbacks
 * @param {number} sub
 * @param {unknown} event
 * @param {(error: unknown) => void} onThrow
 */
function deliver(callbacks, sub, event, onThrow) {
  const callback = callbacks.get(sub);
  if (callback === undefined) return;
  try {
    callback(event);
  } catch (error) {
    onThrow(error);
  }
}

/**
 * A parsed `event` frame's payload and meta as JSON text, and its date: `[payload, meta, date]`
 * (for an event a coalescing window holds back).
 * @param {any} f
 * @returns {[string, string | undefined, number]}
 */
export function ownedParts(f) {
  return [JSON.stringify(f.payload), f.meta === undefined ? undefined : JSON.stringify(f.meta), f.date];
}

/**
 * The event handed to subscriptions whose channel could not be replayed (they should refetch).
 * @param {string} channel
 * @param {string} reason
 * @returns {LiveEvent}
 */
export function resyncEvent(channel, reason) {
  return { channel, type: "$resync", payload: {}, date: new Date(), meta: { resync: true, reason } };
}
