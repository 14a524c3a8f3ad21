// wasm-live-provider: the JS entry. It validates arguments (throwing TypeErrors that name the field),
// loads the WebAssembly module lazily on first use, and queues work until it is ready, so that
// `subscribe` is synchronous and returns at once even before the module has loaded.
import init, { LiveClient } from "./wasm_live_provider.js";
import { DEFAULT_MAX_FRAME_BYTES, MAX_TIMER_MS, describe, endpoints, toJson, utf8Bytes } from "./helpers.js";
import { createPresence, presenceKey } from "./presence.js";

export { isRevalidated } from "./helpers.js";

let loading;
let loadingFull;

/**
 * Loads a wasm module once (shared by its clients); resolves with its `LiveClient`. The default build
 * speaks protocol v1 over WebSocket; the full one (`needsFullBuild`) is a dynamic `import()` that
 * bundlers split off, never downloaded by an app that does not need it.
 */
function loadModule(full, source) {
  const start = (initialise) => (source === undefined ? initialise() : initialise({ module_or_path: source }));
  if (full) {
    if (!loadingFull) {
      loadingFull = import("./full/wasm_live_provider.js").then((m) => start(m.default).then(() => m.LiveClient));
    }
    return loadingFull;
  }
  if (!loading) {
    loading = start(init).then(() => LiveClient);
  }
  return loading;
}

/** Whether (valid) options need the full build: Server-Sent Events, an Igniter.js stream or the simple protocol. */
function needsFullBuild(options) {
  return (options.transport ?? "websocket") !== "websocket" || options.flavor !== undefined || (options.protocol ?? "v1") !== "v1";
}

const MS_OPTIONS = ["backoffMinMs", "backoffMaxMs", "stableAfterMs", "pingGraceMs", "connectTimeoutMs", "publishTimeoutMs", "publishQueue", "idleCloseMs", "coalesceMs"];

function checkOptions(options, where) {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${where}: options must be an object like { url: "ws://127.0.0.1:8787/ws" }, got ${describe(options)}`);
  }
  const urls = urlList(options.url, "url", where);
  const transport = options.transport ?? "websocket";
  if (!TRANSPORTS.includes(transport)) {
    throw new TypeError(`${where}: \`transport\` must be one of ${TRANSPORTS.map((t) => `"${t}"`).join(", ")}, got ${describe(transport)}`);
  }
  if (options.flavor !== undefined && options.flavor !== "igniter") {
    throw new TypeError(`${where}: \`flavor\` must be "igniter" or left out, got ${describe(options.flavor)}`);
  }
  if (options.flavor === "igniter" && transport !== "sse") {
    throw new TypeError(`${where}: \`flavor: "igniter"\` reads an Igniter.js SSE stream: it needs \`transport: "sse"\``);
  }
  checkProtocol(options, transport, where);
  const wanted = transport === "sse" ? ["http:", "https:"] : ["ws:", "wss:"];
  urls.forEach((url, i) => {
    const field = Array.isArray(options.url) ? `url[${i}]` : "url";
    if (!wanted.includes(parseUrl(url, field, where).protocol)) {
      const scheme = transport === "sse" ? "http:// or https://" : "ws:// or wss://";
      throw new TypeError(`${where}: with transport "${transport}", \`${field}\` must start with ${scheme}, got "${url}"`);
    }
  });
  for (const key of ["sseUrl", "publishUrl"]) {
    if (options[key] === undefined) continue;
    const given = urlList(options[key], key, where);
    if (given.length !== urls.length) {
      throw new TypeError(
        `${where}: \`${key}\` has ${given.length} URL${given.length === 1 ? "" : "s"} but \`url\` has ${urls.length}: ` +
          `give an array of ${urls.length} (one per relay), or leave it out to derive each from \`url\``,
      );
    }
    given.forEach((url, i) => {
      const field = Array.isArray(options[key]) ? `${key}[${i}]` : key;
      const u = parseUrl(url, field, where);
      if (u.protocol !== "http:" && u.protocol !== "https:") {
        throw new TypeError(`${where}: \`${field}\` must start with http:// or https://, got "${url}"`);
      }
    });
  }
  if (options.scopes !== undefined && (!Array.isArray(options.scopes) || options.scopes.some((s) => typeof s !== "string" || !s))) {
    throw new TypeError(`${where}: \`scopes\` must be an array of non-empty strings, got ${describe(options.scopes)}`);
  }
  for (const key of MS_OPTIONS) {
    const v = options[key];
    // Past 2^31-1 ms `setTimeout` fires at once.
    if (v !== undefined && !(typeof v === "number" && Number.isFinite(v) && v >= 0 && v <= MAX_TIMER_MS)) {
      throw new TypeError(`${where}: \`${key}\` must be a non-negative number, at most 2147483647, got ${describe(v)}`);
    }
  }
  const max = options.maxFrameBytes;
  if (max !== undefined && !(typeof max === "number" && max >= 1 && max <= MAX_TIMER_MS)) {
    throw new TypeError(`${where}: \`maxFrameBytes\` must be a positive number, at most 2147483647, got ${describe(max)}`);
  }
  for (const key of ["onError", "onStateChange", "getToken"]) {
    const v = options[key];
    if (v !== undefined && typeof v !== "function") {
      throw new TypeError(`${where}: \`${key}\` must be a function, got ${describe(v)}`);
    }
  }
  if (options.token !== undefined && (typeof options.token !== "string" || options.token.length === 0)) {
    throw new TypeError(`${where}: \`token\` must be a non-empty string, got ${describe(options.token)}`);
  }
  if (options.token !== undefined && options.getToken !== undefined) {
    throw new TypeError(`${where}: give \`token\` or \`getToken\`, not both`);
  }
  if (options.flavor === "igniter" && (options.token !== undefined || options.getToken !== undefined)) {
    throw new TypeError(`${where}: \`token\` and \`getToken\` are for the relay; an Igniter.js stream takes none`);
  }
}

const TRANSPORTS = ["websocket", "sse", "auto"];

/** `protocol`: "v1" (the relay's, default) or "simple" (the seed's minimal WebSocket protocol: no tokens, no scopes). */
function checkProtocol(options, transport, where) {
  const protocol = options.protocol ?? "v1";
  if (protocol !== "v1" && protocol !== "simple") {
    throw new TypeError(`${where}: \`protocol\` must be "v1" or "simple", got ${describe(protocol)}`);
  }
  if (protocol !== "simple") return;
  const simple = `${where}: \`protocol: "simple"\` (the seed's minimal WebSocket protocol)`;
  if (transport !== "websocket") {
    throw new TypeError(`${simple} is WebSocket only: it needs \`transport: "websocket"\`, got "${transport}"`);
  }
  if (options.flavor !== undefined) {
    throw new TypeError(`${simple} is WebSocket only: \`flavor\` names an SSE server, leave it out`);
  }
  if (options.token !== undefined || options.getToken !== undefined) {
    throw new TypeError(`${simple} has no authentication: leave out \`token\` and \`getToken\``);
  }
  if (options.scopes !== undefined) {
    throw new TypeError(`${simple} has no scopes: leave out \`scopes\``);
  }
}

/** An option that takes one URL or an array of them (one per relay), as a list. */
function urlList(value, field, where) {
  if (typeof value === "string") return [value];
  if (!Array.isArray(value)) {
    throw new TypeError(`${where}: \`${field}\` must be a URL string or an array of them, got ${describe(value)}`);
  }
  if (value.length === 0) {
    throw new TypeError(`${where}: \`${field}\` is an empty array: give at least one relay URL`);
  }
  // Not forEach, which skips the holes of a sparse array (`new Array(1e9)`).
  for (let i = 0; i < value.length; i++) {
    if (typeof value[i] !== "string") {
      throw new TypeError(`${where}: \`${field}[${i}]\` must be a string, got ${describe(value[i])}`);
    }
  }
  return value;
}

function parseUrl(value, field, where) {
  if (typeof value !== "string") {
    throw new TypeError(`${where}: \`${field}\` must be a string, got ${describe(value)}`);
  }
  try {
    return new URL(value);
  } catch (cause) {
    throw new TypeError(`${where}: \`${field}\` is not a valid URL: "${value}"`, { cause });
  }
}

// A longer name makes a frame over the relay's default limit (64 KiB); past 1 MiB the relay would
// close the connection on every (re)subscribe.
const MAX_CHANNEL_LENGTH = 65536;

function checkChannel(channel, where) {
  if (typeof channel !== "string" || channel.length === 0) {
    throw new TypeError(`${where}: \`channel\` must be a non-empty string, got ${describe(channel)}`);
  }
  if (channel.length > MAX_CHANNEL_LENGTH) {
    throw new TypeError(`${where}: \`channel\` is ${channel.length} characters long; at most ${MAX_CHANNEL_LENGTH}`);
  }
}

function checkObject(value, where, what) {
  if (value === null || typeof value !== "object") {
    throw new TypeError(`${where}: ${what} must be an object, got ${describe(value)}`);
  }
}

function checkOpen(closed, where) {
  if (closed) throw new Error(`${where}: the client is closed (close() was called); create a new one`);
}

function idsToStrings(ids, where, field) {
  if (!Array.isArray(ids)) {
    throw new TypeError(`${where}: \`${field}\` must be an array of strings or numbers, got ${describe(ids)}`);
  }
  return ids.map((id, i) => {
    if (typeof id !== "string" && typeof id !== "number") {
      throw new TypeError(`${where}: \`${field}[${i}]\` must be a string or a number, got ${describe(id)}`);
    }
    return String(id);
  });
}

function toMillis(date, where) {
  if (date === undefined || date === null) return Date.now();
  const ms = date instanceof Date ? date.getTime() : typeof date === "string" ? Date.parse(date) : date;
  if (typeof ms !== "number" || !Number.isFinite(ms)) {
    throw new TypeError(`${where}: \`date\` must be a Date, a date string or a number of milliseconds, got ${describe(date)}`);
  }
  return ms;
}

function reportError(onError, error) {
  if (onError) onError(error);
  else console.error("wasm-live-provider:", error);
}

/**
 * A connection to a wasm-live-provider relay, usable before the wasm module has loaded.
 * Framework adapters (`liveProvider`) are built on it.
 */
export function createLiveClient(options) {
  return newClient(options, "createLiveClient");
}

/** `createLiveClient` for `where`, the function the app called: its errors name it. */
function newClient(options, where) {
  checkOptions(options, where);
  const { url, wasm, scopes, transport, sseUrl, publishUrl, flavor, ...clientOptions } = options;
  const reach = endpoints(options);
  const relayUrl = [].concat(url); // a copy: the client is created later
  let client = null;
  let failed = null;
  let closed = false;
  const pending = [];
  // What JS keeps of a subscription: a handle subscribed while the wasm loads, or its id in the
  // wasm client. Counts and states come from the engine once it runs (issue 27: state kept once).
  const queued = new Set();
  const ids = new WeakMap(); // handle -> id in the wasm client
  const stateListeners = new Set();
  if (options.onStateChange) stateListeners.add(options.onStateChange);
  let lastChange = { state: "loading" };
  const notifyState = (change) => {
    lastChange = change;
    for (const listener of [...stateListeners]) {
      try {
        listener(change);
      } catch (error) {
        reportError(options.onError, error);
      }
    }
  };

  const key = presenceKey();
  loadModule(needsFullBuild(options), wasm).then(
    (Client) => {
      if (closed) return;
      client = new Client(relayUrl, { ...clientOptions, ...reach, onStateChange: notifyState, onPresence: hub.receive });
      for (const op of pending.splice(0)) op(client);
    },
    (cause) => {
      failed = new Error(`wasm-live-provider: the WebAssembly module failed to load: ${cause?.message ?? cause}`, { cause });
      for (const op of pending.splice(0)) op(null);
      notifyState({ state: "failed", reason: failed.message });
      reportError(options.onError, failed);
    },
  );

  const whenReady = (op) => {
    if (client) return op(client);
    if (failed || closed) return op(null);
    pending.push(op);
    return undefined;
  };
  const hub = createPresence(key, whenReady, (error) => reportError(options.onError, error));

  /** Ends a subscription; unknown or already-ended handles are ignored. */
  function unsubscribe(handle) {
    const id = ids.get(handle);
    queued.delete(handle);
    if (id !== undefined && client) client.unsubscribe(id);
  }

  /** Where a subscription stands: `pending`, `subscribed`, `forbidden` or `ended`. */
  function subscriptionState(handle) {
    if (queued.has(handle)) return "pending";
    const id = ids.get(handle);
    return client && id !== undefined ? client.subscriptionState(id) : "ended";
  }

  // Every handle's `state`: one getter (reading its handle as `this`), so that V8 gives every
  // handle the same hidden class; a getter per handle cost about 2 µs and 170 B per subscription.
  const stateProperty = {
    get() {
      return subscriptionState(this);
    },
    enumerable: true,
  };

  /**
   * Subscribes; returns a handle that is also a function ending the subscription, with a `state`
   * getter (`pending`, `subscribed`, `forbidden` or `ended`). `options.coalesceMs`: this
   * subscription's own coalescing window (`0`: every event at once) instead of the client's.
   */
  function subscribe(channel, types, recordIds, callback, subOptions) {
    const w = "subscribe";
    checkOpen(closed, w);
    checkChannel(channel, w);
    if (!Array.isArray(types) || types.some((t) => typeof t !== "string")) {
      throw new TypeError(`${w}: \`types\` must be an array of strings, got ${describe(types)}`);
    }
    const idStrings = recordIds === undefined ? undefined : idsToStrings(recordIds, w, "ids");
    if (typeof callback !== "function") {
      throw new TypeError(`${w}: \`callback\` must be a function, got ${describe(callback)}`);
    }
    if (subOptions !== undefined && (subOptions === null || typeof subOptions !== "object")) {
      throw new TypeError(`${w}: \`options\` must be an object like { coalesceMs: 250 }, got ${describe(subOptions)}`);
    }
    const coalesceMs = subOptions?.coalesceMs;
    if (coalesceMs !== undefined && !(typeof coalesceMs === "number" && Number.isFinite(coalesceMs) && coalesceMs >= 0 && coalesceMs <= MAX_TIMER_MS)) {
      throw new TypeError(`${w}: \`coalesceMs\` must be a non-negative number, at most 2147483647, got ${describe(coalesceMs)}`);
    }
    const handle = newHandle();
    // `["*"]` (every type), the common case, goes over as `undefined`; one id as a string.
    const typeList = types.length === 1 && types[0] === "*" ? undefined : types;
    const one = idStrings?.length === 1 && typeof idStrings[0] === "string"; // not a hole
    const id = one ? idStrings[0] : undefined;
    const list = one ? undefined : idStrings;
    if (client) add(client, handle, channel, typeList, id, list, callback, coalesceMs);
    else {
      queued.add(handle);
      whenReady((c) => c && queued.delete(handle) && add(c, handle, channel, typeList, id, list, callback, coalesceMs));
    }
    return handle;
  }

  /** A handle that keeps nothing of its subscription alive but itself (its closure holds only it). */
  function newHandle() {
    const handle = () => unsubscribe(handle);
    return Object.defineProperty(handle, "state", stateProperty);
  }

  function add(c, handle, channel, types, id, list, callback, coalesceMs) {
    const sub = c.subscribe(channel, types, id, list, callback);
    if (coalesceMs !== undefined) c.setCoalesceMs(sub, coalesceMs);
    ids.set(handle, sub);
  }

  return {
    subscribe,
    unsubscribe,
    /** Publishes `{ channel, type, payload, date, meta }`; resolves with `{ seq }` on the relay's ack. */
    publish(event) {
      const w = "publish";
      if (event === null || typeof event !== "object") {
        throw new TypeError(`${w}: the event must be an object, got ${describe(event)}`);
      }
      checkChannel(event.channel, w);
      if (typeof event.type !== "string" || event.type.length === 0) {
        throw new TypeError(`${w}: \`type\` must be a non-empty string, got ${describe(event.type)}`);
      }
      if (reach.flavor === "igniter") {
        return Promise.reject(
          new Error("publish: an Igniter.js server publishes from its own actions; this client only reads its stream"),
        );
      }
      const payload = toJson(event.payload ?? {}, w, "payload");
      if (event.meta != null && (typeof event.meta !== "object" || Array.isArray(event.meta))) {
        throw new TypeError(`${w}: \`meta\` must be an object, got ${describe(event.meta)}`);
      }
      const meta = event.meta == null ? undefined : toJson(event.meta, w, "meta");
      // The relay sends the event back to this connection too: a frame over maxFrameBytes would be
      // dropped by this client then (and a relay closes the connection past its own limit). Both count
      // UTF-8 bytes.
      const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
      const bytes = utf8Bytes(payload, meta ?? "", event.channel, event.type);
      if (bytes > max) {
        throw new TypeError(`${w}: \`payload\` with the rest of the event is ${bytes} bytes as JSON (UTF-8), over \`maxFrameBytes\` (${max})`);
      }
      const date = toMillis(event.date, w);
      return new Promise((resolve, reject) => {
        whenReady((c) => {
          if (!c) reject(failed ?? new Error("wasm-live-provider: the client is closed"));
          else c.publish(event.channel, event.type, payload, date, meta).then(resolve, reject);
        });
      });
    },
    /**
     * Enters `channel`'s presence (or only watches it: `watchOnly`): a handle with `members` (one
     * entry per user), `status`, `onChange(listener)`, `update(data)` and `leave()`. Handles of one
     * channel share one membership. `user` and `info`: what others see of this client when the relay
     * has no authentication (declared by the client: not a security boundary).
     */
    presence(channel, presenceOptions) {
      checkOpen(closed, "presence");
      checkChannel(channel, "presence");
      return hub.presence(channel, presenceOptions);
    },
    /** Closes the connection for good. */
    close() {
      closed = true;
      queued.clear();
      if (client) {
        client.close();
        client.free();
        client = null;
      }
      hub.closeAll();
    },
    /** `loading`, `idle`, `connecting`, `open`, `reconnecting`, `closed` or `failed`. */
    get state() {
      if (client) return client.state;
      if (failed) return "failed";
      return closed ? "closed" : "loading";
    },
    /** The number of live subscriptions (including those queued while loading). */
    get subscriptionCount() {
      return client ? client.subscriptionCount : queued.size;
    },
    /** The last state change: `{ state, attempt?, delayMs?, reason? }`. */
    get connection() {
      return lastChange;
    },
    /** Calls `listener` on every state change; returns a function that stops it. */
    onStateChange(listener) {
      if (typeof listener !== "function") {
        throw new TypeError(`onStateChange: \`listener\` must be a function, got ${describe(listener)}`);
      }
      stateListeners.add(listener);
      return () => stateListeners.delete(listener);
    },
    /**
     * Calls `listener(keys)` when the server asks to revalidate query keys (`POST /revalidate`, or an
     * Igniter.js revalidation); `keys` is an array of keys (arrays), or `null` after missed
     * revalidations could not be replayed — revalidate everything then. Returns a function that stops.
     */
    onRevalidate(listener) {
      if (typeof listener !== "function") {
        throw new TypeError(`onRevalidate: \`listener\` must be a function, got ${describe(listener)}`);
      }
      checkOpen(closed, "onRevalidate");
      // Never coalesced: each revalidation names its own keys.
      const handle = subscribe(
        "$revalidate",
        ["*"],
        undefined,
        (event) => listener(event.type === "$resync" ? null : (event.payload.keys ?? []), event),
        { coalesceMs: 0 },
      );
      return () => unsubscribe(handle);
    },
    /**
     * Counters from the connection: `{ problems, duplicates, resyncs, connections, delivered,
     * replayed }`, and `url`: the relay endpoint in use (with several `url`s, the one of the current
     * connection, or the one the next attempt goes to).
     */
    get stats() {
      if (client) return client.stats;
      return { problems: 0, duplicates: 0, resyncs: 0, connections: 0, coalesced: 0, delivered: 0, replayed: 0, url: relayUrl[0] };
    },
  };
}

/** Adds what every provider shape shares: the client (for the adapters), `close`, state and revalidation. */
function withClient(live, shape) {
  return Object.defineProperties(shape, {
    client: { value: live, enumerable: true },
    close: { value: () => live.close(), enumerable: true },
    onStateChange: { value: (listener) => live.onStateChange(listener), enumerable: true },
    onRevalidate: { value: (listener) => live.onRevalidate(listener), enumerable: true },
    state: { get: () => live.state, enumerable: true },
    connection: { get: () => live.connection, enumerable: true },
    stats: { get: () => live.stats, enumerable: true },
  });
}

function subscriptionIds(params) {
  if (!params) return undefined;
  if (params.ids !== undefined && params.ids !== null) return params.ids;
  if (params.id !== undefined && params.id !== null) return [params.id];
  return undefined;
}

/**
 * Refine's `LiveProvider`: `<Refine liveProvider={liveProvider({ url })} />`.
 * Events are filtered by `types` and by `params.ids` (falling back to `params.id`) with the
 * semantics of Refine's Ably provider. When the relay cannot replay what a subscription missed during
 * a disconnect, its callback gets one event of type "$resync" (`meta.resync === true`), which makes
 * Refine refetch in auto mode.
 */
export function liveProvider(options) {
  const live = newClient(options, "liveProvider");
  return withClient(live, {
    subscribe(options) {
      checkObject(options, "liveProvider.subscribe", "the options");
      const { channel, types, params, callback } = options;
      return live.subscribe(channel, types ?? ["*"], subscriptionIds(params), callback);
    },
    unsubscribe(subscription) {
      live.unsubscribe(subscription);
    },
    publish(event) {
      const sent = live.publish(event);
      // Refine ignores publish's result: failures still reach onError (or the console), while a
      // caller that awaits the promise sees the rejection itself.
      sent.catch((error) => reportError(options.onError, error));
      return sent;
    },
  });
}

function toGinjouEvent(event) {
  const out = { channel: event.channel, action: event.type, payload: event.payload, date: event.date };
  if (event.meta !== undefined) out.meta = event.meta;
  return out;
}

let nextKey = 0; // shared by every `realtime(...)`: a key never names another provider's subscription

/**
 * Ginjou's `Realtime`: `createApp(...).use(...)` with `realtime: realtime({ url })`.
 * `subscribe` returns synchronously a string key, unique per subscription (`"wlp:1"`, `"wlp:2"`, …),
 * as Ginjou types it (`UnsubscribeKey = string`); `unsubscribe(key)` ends that subscription, and
 * ignores a key it does not know or has already ended.
 */
export function realtime(options) {
  const live = newClient(options, "realtime");
  const handles = new Map(); // key -> handle of the client
  return withClient(live, {
    subscribe(props) {
      const w = "realtime.subscribe";
      checkObject(props, w, "the options");
      const { channel, actions, params, callback } = props;
      if (actions !== undefined && (!Array.isArray(actions) || actions.some((a) => typeof a !== "string"))) {
        throw new TypeError(`${w}: \`actions\` must be an array of strings, got ${describe(actions)}`);
      }
      if (typeof callback !== "function") {
        throw new TypeError(`${w}: \`callback\` must be a function, got ${describe(callback)}`);
      }
      const inner = live.subscribe(channel, actions ?? ["*"], subscriptionIds(params), (e) => callback(toGinjouEvent(e)));
      const key = `wlp:${++nextKey}`;
      handles.set(key, inner);
      return key;
    },
    unsubscribe(key) {
      const inner = handles.get(key);
      if (inner === undefined) return;
      handles.delete(key);
      live.unsubscribe(inner);
    },
    /** Where the subscription of `key` stands: `pending`, `subscribed`, `forbidden`, or `ended` (also for unknown keys). */
    subscriptionState(key) {
      return handles.get(key)?.state ?? "ended";
    },
    publish(event) {
      if (event === null || typeof event !== "object") {
        throw new TypeError(`realtime.publish: the event must be an object, got ${describe(event)}`);
      }
      if (typeof event.action !== "string" || event.action.length === 0) {
        throw new TypeError(`realtime.publish: \`action\` must be a non-empty string, got ${describe(event.action)}`);
      }
      const sent = live.publish({ channel: event.channel, type: event.action, payload: event.payload, date: event.date, meta: event.meta });
      sent.catch((error) => reportError(options.onError, error));
      return sent;
    },
  });
}
