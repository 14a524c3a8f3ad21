// React adapter: subscriptions tied to a component's lifetime, connection state as React state, and
// TanStack Query invalidation. Pass a `liveProvider(...)`, `realtime(...)` or `createLiveClient(...)`.
import { useEffect, useRef, useState, useSyncExternalStore } from "react";
import { checkOptions, checkQueryClient, clientOf, describe } from "./adapter-checks.js";

const coalescing = (coalesceMs) => (coalesceMs === undefined ? undefined : { coalesceMs });

/**
 * The coalescing window of `useLiveInvalidation` unless given (ms): a burst of events costs one
 * invalidation at once and one at the end of each window, not one per event.
 */
export const INVALIDATION_COALESCE_MS = 250;
const listKey = (list) => (list === undefined ? "" : JSON.stringify(list));

/** The connection state (`{ state, attempt?, delayMs?, reason? }`), re-rendering on every change. */
export function useConnectionState(provider) {
  const client = clientOf(provider, "useConnectionState");
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
export function useLiveEvent(provider, options, onEvent) {
  const where = "useLiveEvent";
  const client = clientOf(provider, where);
  checkOptions(options, where, '{ channel: "posts" }');
  if (typeof onEvent !== "function") {
    throw new TypeError(`${where}: \`onEvent\` (the third argument) must be a function, got ${describe(onEvent)}`);
  }
  const { channel, types = ["*"], ids, enabled = true, coalesceMs } = options;
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
export function useLiveInvalidation(provider, queryClient, options) {
  const where = "useLiveInvalidation";
  clientOf(provider, where);
  checkQueryClient(queryClient, where);
  checkOptions(options, where, '{ channel: "posts", queryKey: ["posts"] }');
  const { channel, types, ids, enabled = true, queryKey, queryKeys, coalesceMs = INVALIDATION_COALESCE_MS } = options;
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
  const client = clientOf(provider, "useRevalidation");
  checkQueryClient(queryClient, "useRevalidation");
  useEffect(
    () =>
      client.onRevalidate((keys) => {
        if (keys === null) queryClient.invalidateQueries();
        else for (const key of keys) queryClient.invalidateQueries({ queryKey: key });
      }),
    [client, queryClient],
  );
}

const NO_PRESENCE = Object.freeze({ others: Object.freeze([]), self: null, count: 0, status: "connecting" });
const DISABLED = Object.freeze({ ...NO_PRESENCE, status: "closed" });
const noSubscription = () => () => {};

/** Whether `value` is a record id as the hooks take them. */
const isId = (value) => typeof value === "string" || (typeof value === "number" && Number.isFinite(value));

/**
 * The users of `members` on record `id` (any of their connections' `data.id`, compared as strings),
 * each with that connection's data; all of them without `id`.
 */
export function presenceOn(members, id) {
  if (id === undefined) return members;
  const out = [];
  for (const u of members) {
    const m = u.members.find((c) => c.data?.id !== undefined && String(c.data.id) === String(id));
    if (m) out.push(m.data === u.data ? u : { ...u, data: m.data });
  }
  return out;
}

/**
 * Who else is on a resource (or one record of it) while the component is mounted: joins the presence
 * of channel `resources/<resource>` (or `channel`) with data `{ id, ...data }`, and returns
 * `{ others, self, count, status }`: the other users (on record `id` when given), this client's own
 * entry, how many users that is with this one, and the membership's status. A new `data` updates
 * it without leaving; `enabled: false` leaves.
 */
export function usePresence(provider, options) {
  const where = "usePresence";
  const client = clientOf(provider, where);
  checkOptions(options, where, '{ resource: "posts", id: 3 }');
  const { resource, id, data, enabled = true, channel: given } = options;
  if (given !== undefined ? typeof given !== "string" || !given : typeof resource !== "string" || !resource) {
    throw new TypeError(`${where}: give \`resource\` (a non-empty string) or \`channel\`, got ${describe(given ?? resource)}`);
  }
  if (id !== undefined && !isId(id)) {
    throw new TypeError(`${where}: \`id\` must be a string or a number, got ${describe(id)}`);
  }
  if (data !== undefined && (data === null || typeof data !== "object" || Array.isArray(data))) {
    throw new TypeError(`${where}: \`data\` must be an object, got ${describe(data)}`);
  }
  if (typeof client.presence !== "function") {
    throw new TypeError(`${where}: this client has no presence (an older wasm-live-provider?)`);
  }
  const channel = given ?? `resources/${resource}`;
  const dataKey = JSON.stringify(id === undefined ? { ...data } : { id, ...data });
  const [handle, setHandle] = useState(null);
  // The data last sent: an update goes only when it changes (the relay rate-limits changes).
  const sent = useRef(dataKey);
  useEffect(() => {
    if (!enabled) return undefined;
    sent.current = dataKey;
    const p = client.presence(channel, { data: JSON.parse(dataKey) });
    setHandle(p);
    return () => {
      p.leave();
      setHandle((current) => (current === p ? null : current));
    };
    // `dataKey` is read at join time only; a later one is an update (below), not a new membership.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, channel, enabled]);
  useEffect(() => {
    if (!handle || handle.status === "closed" || sent.current === dataKey) return;
    sent.current = dataKey;
    handle.update(JSON.parse(dataKey));
  }, [handle, dataKey]);
  const cache = useRef(NO_PRESENCE);
  const key = useRef([]);
  const snapshot = () => {
    if (!enabled) return DISABLED;
    if (!handle) return NO_PRESENCE;
    const members = handle.members;
    const status = handle.status;
    const [m, s, i] = key.current;
    if (m !== members || s !== status || i !== id) {
      key.current = [members, status, id];
      const on = presenceOn(members, id);
      const others = on.filter((u) => !u.self);
      const self = members.find((u) => u.self) ?? null;
      cache.current = { others, self, count: others.length + (self ? 1 : 0), status };
    }
    return cache.current;
  };
  return useSyncExternalStore(handle ? handle.onChange : noSubscription, snapshot, () => NO_PRESENCE);
}
