// Vue adapter: composables for subscriptions tied to the current effect scope (a component's setup),
// connection state as a ref, and TanStack Query invalidation. Pass a `realtime(...)`,
// `liveProvider(...)` or `createLiveClient(...)`.
import { onScopeDispose, shallowRef, toValue, watch } from "vue";

// What the composables call on a client; an object with all of them is one (`createLiveClient(...)`,
// or any object typed `LiveClient`), and so is the `client` of a `liveProvider(...)` or `realtime(...)`.
const CLIENT_METHODS = ["subscribe", "unsubscribe", "onStateChange", "onRevalidate"];

// As pkg/index.js words a value in its messages (and `undefined` as such).
function describe(value) {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  if (typeof value === "string") {
    return value.length > 80 ? `a string of ${value.length} characters ("${value.slice(0, 40)}…")` : `the string "${value}"`;
  }
  if (typeof value === "function") return "a function";
  if (typeof value === "object") return "an object";
  return `${typeof value} ${String(value)}`;
}

/**
 * The client of `provider`, checked in the composable's own call: a wrong argument throws there,
 * named, rather than as a raw TypeError from a watcher or an event later.
 */
function clientOf(provider, where) {
  const client = provider !== null && typeof provider === "object" && "client" in provider ? provider.client : provider;
  const missing = CLIENT_METHODS.find((method) => typeof client?.[method] !== "function");
  if (missing === undefined) return client;
  throw new TypeError(
    `${where}: the first argument must be what liveProvider(), realtime() or createLiveClient() returns, got ${notAClient(provider, client, missing)}`,
  );
}

function notAClient(provider, client, missing) {
  if (typeof provider === "function") return "a function (the factory itself? pass what it returns, like liveProvider({ url }))";
  if (provider === null || typeof provider !== "object" || Array.isArray(provider)) return describe(provider);
  if (client === provider) return `an object with no \`client\` and no \`${missing}\` method`;
  if (client === null || typeof client !== "object") return `an object whose \`client\` is ${describe(client)}`;
  return `an object whose \`client\` has no \`${missing}\` method`;
}

function checkQueryClient(queryClient, where) {
  if (typeof queryClient?.invalidateQueries !== "function") {
    throw new TypeError(`${where}: the second argument must be a TanStack Query client (with invalidateQueries), got ${describe(queryClient)}`);
  }
}

function checkOptions(options, where, example) {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`${where}: the options must be an object like ${example}, got ${describe(options)}`);
  }
}

/**
 * The coalescing window of `useLiveInvalidation` unless given (ms): a burst of events costs one
 * invalidation at once and one at the end of each window, not one per event.
 */
export const INVALIDATION_COALESCE_MS = 250;

/** A shallow ref holding the connection state (`{ state, attempt?, delayMs?, reason? }`). */
export function useConnectionState(provider) {
  const client = clientOf(provider, "useConnectionState");
  const state = shallowRef(client.connection);
  const stop = client.onStateChange((change) => {
    state.value = change;
  });
  onScopeDispose(stop);
  return state;
}

/**
 * Calls `onEvent` for events on `channel` until the scope is disposed. `channel`, `types`, `ids`,
 * `enabled` and `coalesceMs` may be refs or getters: a change re-subscribes (unsubscribing first), as
 * Ginjou's hooks do. `coalesceMs` sets this subscription's coalescing window (default: the client's
 * `coalesceMs`; `0`: every event).
 */
export function useLiveEvent(provider, options, onEvent) {
  const where = "useLiveEvent";
  const client = clientOf(provider, where);
  checkOptions(options, where, '{ channel: "posts" }');
  if (typeof onEvent !== "function") {
    throw new TypeError(`${where}: \`onEvent\` (the third argument) must be a function, got ${describe(onEvent)}`);
  }
  let handle = null;
  const stop = watch(
    () => ({
      channel: toValue(options.channel),
      types: toValue(options.types) ?? ["*"],
      ids: toValue(options.ids),
      enabled: toValue(options.enabled) ?? true,
      coalesceMs: toValue(options.coalesceMs),
    }),
    ({ channel, types, ids, enabled, coalesceMs }) => {
      if (handle) client.unsubscribe(handle);
      const coalescing = coalesceMs === undefined ? undefined : { coalesceMs };
      handle = enabled
        ? client.subscribe(channel, [...types], ids ? [...ids] : undefined, (event) => onEvent(event), coalescing)
        : null;
    },
    { immediate: true, deep: true },
  );
  onScopeDispose(() => {
    stop();
    if (handle) client.unsubscribe(handle);
    handle = null;
  });
}

/**
 * Invalidates TanStack Query (`@tanstack/vue-query`) queries when events arrive on `channel`:
 * `queryKey` (invalidated by prefix) or `queryKeys(event)`. `$resync` events invalidate as well.
 * Bursts are coalesced: at most one invalidation per `coalesceMs` (default
 * `INVALIDATION_COALESCE_MS`, 250 ms; `0`: one per event), the trailing event carrying the union of
 * the ids (`payload.ids`, for `queryKeys`).
 */
export function useLiveInvalidation(provider, queryClient, options) {
  const where = "useLiveInvalidation";
  clientOf(provider, where);
  checkQueryClient(queryClient, where);
  checkOptions(options, where, '{ channel: "posts", queryKey: ["posts"] }');
  const { queryKey, queryKeys } = options;
  if (!queryKey && !queryKeys) {
    throw new TypeError("useLiveInvalidation: give `queryKey` or `queryKeys(event)`");
  }
  const coalesceMs = () => toValue(options.coalesceMs) ?? INVALIDATION_COALESCE_MS;
  useLiveEvent(provider, { ...options, coalesceMs }, (event) => {
    const keys = queryKeys ? queryKeys(event) : [toValue(queryKey)];
    for (const key of keys) queryClient.invalidateQueries({ queryKey: key });
  });
}

/**
 * Applies server-driven revalidation (`POST /revalidate`, Igniter.js revalidations) to TanStack Query
 * until the scope is disposed: each key invalidates the queries it prefixes; after missed
 * revalidations, every query.
 */
export function useRevalidation(provider, queryClient) {
  const client = clientOf(provider, "useRevalidation");
  checkQueryClient(queryClient, "useRevalidation");
  const stop = client.onRevalidate((keys) => {
    if (keys === null) queryClient.invalidateQueries();
    else for (const key of keys) queryClient.invalidateQueries({ queryKey: key });
  });
  onScopeDispose(stop);
}
