// Vue adapter: composables for subscriptions tied to the current effect scope (a component's setup),
// connection state as a ref, and TanStack Query invalidation. Pass a `realtime(...)`,
// `liveProvider(...)` or `createLiveClient(...)`.
import { onScopeDispose, shallowRef, toValue, watch } from "vue";

const clientOf = (provider) => provider?.client ?? provider;

/**
 * The coalescing window of `useLiveInvalidation` unless given (ms): a burst of events costs one
 * invalidation at once and one at the end of each window, not one per event.
 */
export const INVALIDATION_COALESCE_MS = 250;

/** A shallow ref holding the connection state (`{ state, attempt?, delayMs?, reason? }`). */
export function useConnectionState(provider) {
  const client = clientOf(provider);
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
  const client = clientOf(provider);
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
  const stop = clientOf(provider).onRevalidate((keys) => {
    if (keys === null) queryClient.invalidateQueries();
    else for (const key of keys) queryClient.invalidateQueries({ queryKey: key });
  });
  onScopeDispose(stop);
}
