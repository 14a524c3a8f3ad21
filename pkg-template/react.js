// React adapter: subscriptions tied to a component's lifetime, connection state as React state, and
// TanStack Query invalidation. Pass a `liveProvider(...)`, `realtime(...)` or `createLiveClient(...)`.
import { useEffect, useRef, useSyncExternalStore } from "react";

const clientOf = (provider) => provider?.client ?? provider;
const coalescing = (coalesceMs) => (coalesceMs === undefined ? undefined : { coalesceMs });

/**
 * The coalescing window of `useLiveInvalidation` unless given (ms): a burst of events costs one
 * invalidation at once and one at the end of each window, not one per event.
 */
export const INVALIDATION_COALESCE_MS = 250;
const listKey = (list) => (list === undefined ? "" : JSON.stringify(list));

/** The connection state (`{ state, attempt?, delayMs?, reason? }`), re-rendering on every change. */
export function useConnectionState(provider) {
  const client = clientOf(provider);
  return useSyncExternalStore(
    (onChange) => client.onStateChange(onChange),
    () => client.connection,
    () => client.connection,
  );
}

/**
 * Calls `onEvent` for events on `channel` while the component is mounted (and `enabled`).
 * `types` defaults to every type; `ids` narrows to events about those records.
 * A new `onEvent` on each render does not re-subscribe. `coalesceMs` sets this subscription's
 * coalescing window (default: the client's `coalesceMs`; `0`: every event).
 */
export function useLiveEvent(provider, { channel, types = ["*"], ids, enabled = true, coalesceMs }, onEvent) {
  const client = clientOf(provider);
  const handler = useRef(onEvent);
  useEffect(() => {
    handler.current = onEvent;
  });
  const typesKey = listKey(types);
  const idsKey = listKey(ids);
  useEffect(() => {
    if (!enabled) return undefined;
    const handle = client.subscribe(
      channel,
      JSON.parse(typesKey),
      idsKey ? JSON.parse(idsKey) : undefined,
      (event) => handler.current(event),
      coalescing(coalesceMs),
    );
    return () => client.unsubscribe(handle);
  }, [client, channel, typesKey, idsKey, enabled, coalesceMs]);
}

/**
 * Invalidates TanStack Query queries when events arrive on `channel`: `queryKey` (a key, invalidated by
 * prefix) or `queryKeys(event)` returning the keys to invalidate. A `$resync` event invalidates
 * `queryKey` / `queryKeys(event)` too, so missed updates are refetched. Bursts are coalesced: at most
 * one invalidation per `coalesceMs` (default `INVALIDATION_COALESCE_MS`, 250 ms; `0`: one per
 * event), the trailing event carrying the union of the ids (`payload.ids`, for `queryKeys`).
 */
export function useLiveInvalidation(
  provider,
  queryClient,
  { channel, types, ids, enabled = true, queryKey, queryKeys, coalesceMs = INVALIDATION_COALESCE_MS },
) {
  if (!queryKey && !queryKeys) {
    throw new TypeError("useLiveInvalidation: give `queryKey` or `queryKeys(event)`");
  }
  useLiveEvent(provider, { channel, types, ids, enabled, coalesceMs }, (event) => {
    const keys = queryKeys ? queryKeys(event) : [queryKey];
    for (const key of keys) queryClient.invalidateQueries({ queryKey: key });
  });
}

/**
 * Applies server-driven revalidation (`POST /revalidate`, Igniter.js revalidations) to TanStack Query
 * while the component is mounted: each key invalidates the queries it prefixes; after missed
 * revalidations, every query.
 */
export function useRevalidation(provider, queryClient) {
  const client = clientOf(provider);
  useEffect(
    () =>
      client.onRevalidate((keys) => {
        if (keys === null) queryClient.invalidateQueries();
        else for (const key of keys) queryClient.invalidateQueries({ queryKey: key });
      }),
    [client, queryClient],
  );
}
