import type { ConnectionStateChange, LiveClient, LiveEvent, PresenceStatus, PresenceUser, RecordKey } from "./index.js";

/**
 * Anything the adapters accept: `liveProvider(...)`, `realtime(...)` or `createLiveClient(...)`.
 * Given anything else (the factory itself, `undefined`, a plain object, …) a hook throws a
 * `TypeError` naming the argument, in its own call rather than later from an effect.
 */
export type LiveSource = LiveClient | { client: LiveClient };

/** Minimal TanStack Query client surface the adapter uses (`useQueryClient()` fits). */
export interface InvalidatingQueryClient {
  invalidateQueries(filters?: { queryKey: readonly unknown[] }): unknown;
}

export interface LiveEventOptions {
  channel: string;
  /** Event types; default every type. */
  types?: string[];
  /** Only events about these records (plus `created` events and events without ids). */
  ids?: RecordKey[];
  enabled?: boolean;
  /** This subscription's coalescing window, ms (default: the client's `coalesceMs`; `0`: every event). */
  coalesceMs?: number;
}

/** `useLiveInvalidation`'s coalescing window unless given: 250 ms. */
export const INVALIDATION_COALESCE_MS: number;

export function useConnectionState(provider: LiveSource): ConnectionStateChange;

export function useLiveEvent(provider: LiveSource, options: LiveEventOptions, onEvent: (event: LiveEvent) => void): void;

/**
 * Invalidates TanStack Query queries on events (and `$resync`). Coalesces bursts by default:
 * `coalesceMs` defaults to `INVALIDATION_COALESCE_MS` (250); `0` invalidates once per event.
 */
export function useLiveInvalidation(
  provider: LiveSource,
  queryClient: InvalidatingQueryClient,
  options: LiveEventOptions & {
    queryKey?: readonly unknown[];
    queryKeys?: (event: LiveEvent) => ReadonlyArray<readonly unknown[]>;
  },
): void;

/** Server-driven revalidation applied to TanStack Query (prefix matching; `null` keys: everything). */
export function useRevalidation(provider: LiveSource, queryClient: InvalidatingQueryClient): void;

export interface PresenceHookOptions {
  /** The resource: the channel is `resources/<resource>` unless `channel` is given. */
  resource?: string;
  /** The record this component shows: joined with data `{ id, ...data }`, and `others` narrowed to it. */
  id?: RecordKey;
  /** This client's data besides `id` (e.g. `{ mode: "edit" }`); a new value updates the membership. */
  data?: Record<string, unknown>;
  /** `false` leaves (default `true`). */
  enabled?: boolean;
  /** Another channel than `resources/<resource>` (e.g. `resources/posts/3` for a busy resource). */
  channel?: string;
}

export interface PresenceState {
  /** The other users (on record `id` when given), each with its data there. */
  others: ReadonlyArray<PresenceUser>;
  /** This client's own user entry, once the relay listed it. */
  self: PresenceUser | null;
  /** How many users: `others` and this one. */
  count: number;
  status: PresenceStatus;
}

/** The users of `members` on record `id` (their connections' `data.id`); all of them without `id`. */
export function presenceOn(members: ReadonlyArray<PresenceUser>, id?: RecordKey): ReadonlyArray<PresenceUser>;

/**
 * Who else is on a resource or record while the component is mounted (`useSyncExternalStore`).
 * React's StrictMode double mount keeps one membership.
 */
export function usePresence(provider: LiveSource, options: PresenceHookOptions): PresenceState;
