// Vue adapter: composables for subscriptions tied to the current effect scope (a component's setup),
// connection state as a ref, and TanStack Query invalidation. Pass a `realtime(...)`,
// `liveProvider(...)` or `createLiveClient(...)`.
import { onScopeDispose, shallowRef, toValue, watch } from "vue";
import { checkOptions, checkQueryClient, clientOf, describe } from "./adapter-checks.js";

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

/**
 * The users of `members` on record `id` (any of their connections' `data.id`, compared as strings),
 * each with that connection's data; all of them without `id`.
 */
export function presenceOn(members, id) {
  if (id === undefined || id === null) return members;
  const out = [];
  for (const u of members) {
    const m = u.members.find((c) => c.data?.id !== undefined && String(c.data.id) === String(id));
    if (m) out.push(m.data === u.data ? u : { ...u, data: m.data });
  }
  return out;
}

/**
 * Who else is on a resource (or one record of it) until the scope is disposed: joins the presence of
 * channel `resources/<resource>` (or `channel`) with data `{ id, ...data }`; returns shallow refs
 * `{ others, self, count, status }`: the other users (on record `id` when given), this client's own
 * entry, how many users that is with this one, and the membership's status. `resource`, `id`,
 * `data`, `enabled` and `channel` may be refs or getters: a new channel leaves and joins again, a
 * new `id` or `data` updates the membership.
 */
export function usePresence(provider, options) {
  const where = "usePresence";
  const client = clientOf(provider, where);
  checkOptions(options, where, '{ resource: "posts", id: 3 }');
  if (typeof client.presence !== "function") {
    throw new TypeError(`${where}: this client has no presence (an older wasm-live-provider?)`);
  }
  // Checked here, in the call (a watcher's throw would go to Vue's error handler instead).
  const data = toValue(options.data);
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    throw new TypeError(`${where}: \`data\` must be an object, got ${describe(data)}`);
  }
  const others = shallowRef([]);
  const self = shallowRef(null);
  const count = shallowRef(0);
  const status = shallowRef("connecting");
  let handle = null;
  let stopChange = null;
  let id;
  const show = () => {
    if (!handle) return;
    const on = presenceOn(handle.members, id);
    others.value = on.filter((u) => !u.self);
    self.value = handle.self;
    count.value = others.value.length + (self.value ? 1 : 0);
    status.value = handle.status;
  };
  const leave = () => {
    if (stopChange) stopChange();
    if (handle) handle.leave();
    handle = stopChange = null;
  };
  const stop = watch(
    () => {
      const resource = toValue(options.resource);
      const channel = toValue(options.channel) ?? (typeof resource === "string" && resource ? `resources/${resource}` : undefined);
      const rid = toValue(options.id);
      const data = toValue(options.data);
      return { channel, id: rid, data: rid === undefined || rid === null ? { ...data } : { id: rid, ...data }, enabled: toValue(options.enabled) ?? true };
    },
    (next, prev) => {
      id = next.id ?? undefined;
      if (prev && handle && next.enabled && next.channel === prev.channel) {
        handle.update(next.data);
        return show();
      }
      leave();
      if (!next.enabled || next.channel === undefined) {
        others.value = [];
        self.value = null;
        count.value = 0;
        status.value = "closed";
        return;
      }
      handle = client.presence(next.channel, { data: next.data });
      stopChange = handle.onChange(show);
      show();
    },
    { immediate: true, deep: true },
  );
  onScopeDispose(() => {
    stop();
    leave();
  });
  return { others, self, count, status };
}
