// Vue adapter: composables for subscriptions tied to the current effect scope (a component's setup),
// connection state as a ref, and TanStack Query invalidation. Pass a `realtime(...)`,
// `liveProvider(...)` or `createLiveClient(...)`.
import { onScopeDispose, shallowRef, toValue, watch } from "vue";

const clientOf = (provider) => provider?.client ?? provider;

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
 * Calls `onEvent` for events on `channel` until the scope is disposed. `channel`, `types`, `ids` and
 * `enabled` may be refs or getters: a change re-subscribes (unsubscribing first), as Ginjou's hooks do.
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
    }),
    ({ channel, types, ids, enabled }) => {
      if (handle) client.unsubscribe(handle);
      handle = enabled ? client.subscribe(channel, [...types], ids ? [...ids] : undefined, (event) => onEvent(event)) : null;
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
 */
export function useLiveInvalidation(provider, queryClient, options) {
  const { queryKey, queryKeys } = options;
  if (!queryKey && !queryKeys) {
    throw new TypeError("useLiveInvalidation: give `queryKey` or `queryKeys(event)`");
  }
  useLiveEvent(provider, options, (event) => {
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
