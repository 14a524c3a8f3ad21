import type { MaybeRefOrGetter, ShallowRef } from "vue";
import type { ConnectionStateChange, LiveClient, LiveEvent, PresenceStatus, PresenceUser, RecordKey } from "./index.js";

/**
 * Anything the adapters accept: `realtime(...)`, `liveProvider(...)` or `createLiveClient(...)`.
 * Given anything else (the factory itself, `undefined`, a plain object, …) a composable throws a
 * `TypeError` naming the argument, in its own call rather than later from an effect.
 */
export type LiveSource = LiveClient | { client: LiveClient };

/** Minimal TanStack Query client surface the adapter uses (`useQueryClient()` fits). */
export interface InvalidatingQueryClient {
  invalidateQueries(filters?: { queryKey: readonly unknown[] }): unknown;
}

export interface LiveEventOptions {
  channel: MaybeRefOrGetter<string>;
  types?: MaybeRefOrGetter<string[] | undefined>;
  ids?: MaybeRefOrGetter<RecordKey[] | undefined>;
  enabled?: MaybeRefOrGetter<boolean | undefined>;
  /** This subscription's coalescing window, ms (default: the client's `coalesceMs`; `0`: every event). */
  coalesceMs?: MaybeRefOrGetter<number | undefined>;
}

/** `useLiveInvalidation`'s coalescing window unless given: 250 ms. */
export const INVALIDATION_COALESCE_MS: number;

export function useConnectionState(provider: LiveSource): ShallowRef<ConnectionStateChange>;

export function useLiveEvent(provider: LiveSource, options: LiveEventOptions, onEvent: (event: LiveEvent) => void): void;

/**
 * Invalidates TanStack Query queries on events (and `$resync`). Coalesces bursts by default:
 * `coalesceMs` defaults to `INVALIDATION_COALESCE_MS` (250); `0` invalidates once per event.
 */
export function useLiveInvalidation(
  provider: LiveSource,
  queryClient: InvalidatingQueryClient,
  options: LiveEventOptions & {
    queryKey?: MaybeRefOrGetter<readonly unknown[]>;
    queryKeys?: (event: LiveEvent) => ReadonlyArray<readonly unknown[]>;
  },
): void;

/** Server-driven revalidation applied to TanStack Query (prefix matching; `null` keys: everything). */
export function useRevalidation(provider: LiveSource, queryClient: InvalidatingQueryClient): void;

export interface PresenceComposableOptions {
  /** The resource: the channel is `resources/<resource>` unless `channel` is given. */
  resource?: MaybeRefOrGetter<string | undefined>;
  /** The record shown: joined with data `{ id, ...data }`, and `others` narrowed to it. */
  id?: MaybeRefOrGetter<RecordKey | undefined | null>;
  /** This client's data besides `id`; a new value updates the membership. */
  data?: MaybeRefOrGetter<Record<string, unknown> | undefined>;
  /** `false` leaves (default `true`). */
  enabled?: MaybeRefOrGetter<boolean | undefined>;
  /** Another channel than `resources/<resource>`. */
  channel?: MaybeRefOrGetter<string | undefined>;
}

/** The users of `members` on record `id` (their connections' `data.id`); all of them without `id`. */
export function presenceOn(members: ReadonlyArray<PresenceUser>, id?: RecordKey | null): ReadonlyArray<PresenceUser>;

/** Who else is on a resource or record until the scope is disposed. */
export function usePresence(
  provider: LiveSource,
  options: PresenceComposableOptions,
): {
  others: ShallowRef<ReadonlyArray<PresenceUser>>;
  self: ShallowRef<PresenceUser | null>;
  count: ShallowRef<number>;
  status: ShallowRef<PresenceStatus>;
};
