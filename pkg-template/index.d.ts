/** A record id as Refine and Ginjou use them. Ids compare as strings: `1` matches `"1"`. */
export type RecordKey = string | number;

/**
 * Refine's `LiveEvent`. Type `"$resync"` (with `meta.resync === true` and `meta.reason`) means events
 * were missed during a disconnect and could not be replayed: refetch.
 *
 * With coalescing (`coalesceMs`), an event with `meta.coalesced` stands for that many events merged
 * in one window: it is the last of them, with `payload.ids` and `meta.ids` the union of their ids
 * (both left out when one of them carried no ids: it may concern any record).
 */
export interface LiveEvent {
  channel: string;
  type: "deleted" | "updated" | "created" | "*" | "$resync" | (string & {});
  payload: { ids?: RecordKey[]; [key: string]: any };
  date: Date;
  meta?: Record<string, any> & {
    dataProviderName?: string;
    resync?: true;
    reason?: string;
    /** Coalescing: how many events this one stands for (2 or more). */
    coalesced?: number;
    /** Coalescing: the union of the merged events' ids. */
    ids?: RecordKey[];
  };
}

export type ConnectionStateName = "loading" | "idle" | "connecting" | "open" | "reconnecting" | "closed" | "failed";

/** Passed to `onStateChange`. */
export interface ConnectionStateChange {
  state: ConnectionStateName;
  /** `reconnecting`: how many attempts in a row have failed. */
  attempt?: number;
  /** `reconnecting`: how long until the next attempt; `null` while waiting for the network, a visible page or the page to leave the back-forward cache. */
  delayMs?: number | null;
  /** `reconnecting` and `closed`: why. */
  reason?: string;
}

/** An error thrown by a publish: `code` says which kind. */
export interface LivePublishError extends Error {
  name: "LivePublishError";
  code: "invalid_json" | "timeout" | "queue_full" | "rejected" | "closed";
  /**
   * With `code: "rejected"`: the relay's reason, e.g. `forbidden` (the token does not allow this
   * channel), `rate_limited`, `unauthorized`, `bad_event`; `get_token` when no token could be had.
   */
  relayCode?: string;
}

/**
 * What `onError` receives for problems that are not thrown. Errors about authentication carry a
 * `code`: `forbidden` (with the refused `channel`), `unauthorized` (the relay refused the token, or
 * a refreshed one), `get_token` (`getToken` threw, rejected, timed out or gave no string), or
 * another relay error code (`rate_limited`, `too_many_connections`, …). With `flavor: "igniter"`,
 * `refused`: the Igniter.js server refused the stream for `channel` (one its app never registered;
 * the message names the HTTP status): its subscriptions show `forbidden`, it is left out of the
 * stream until they end, and the other channels go on.
 */
export interface LiveProviderError extends Error {
  name: "LiveProviderError";
  code?: "forbidden" | "refused" | "unauthorized" | "get_token" | "rate_limited" | "too_many_connections" | (string & {});
  /** With `code: "forbidden"` or `"refused"`: the channel the server refused. */
  channel?: string;
}

/**
 * Where a subscription stands with the relay: `pending` (not confirmed on the current connection
 * yet: loading, connecting, reconnecting), `subscribed` (events flow), `forbidden` (the relay refused
 * its channel for the token, asked again on every new connection; or an Igniter.js server refused it,
 * asked again only after every subscription to it has ended) or `ended` (unsubscribed).
 */
export type SubscriptionState = "pending" | "subscribed" | "forbidden" | "ended";

export interface LiveProviderOptions {
  /**
   * The relay's endpoint: its WebSocket (`ws://127.0.0.1:8787/ws`) for transports "websocket" and
   * "auto", its event stream (`http://127.0.0.1:8787/sse`, or an Igniter.js server's) for "sse".
   *
   * Or several: the nodes of one relay cluster (`live-relay --redis …`), e.g.
   * `["wss://a.example.com/ws", "wss://b.example.com/ws"]`. The client connects to the first; when an
   * attempt fails or an open connection drops, the next attempt goes to the next URL (round robin,
   * with the usual backoff) and resumes every subscription where it was. `stats.url` names the one
   * in use. An empty array, an entry that is not a string or not a URL throws a `TypeError` naming
   * `url[i]`.
   */
  url: string | readonly string[];
  /** "websocket" (default), "sse" (Server-Sent Events + HTTP publish), or "auto" (WebSocket, falling back to SSE when it cannot connect). */
  transport?: "websocket" | "sse" | "auto";
  /**
   * The event stream URL for "auto" (default: `url`'s last path segment replaced by `sse`, over http(s)).
   * With several `url`s: one per URL, in the same order (default: derived from each).
   */
  sseUrl?: string | readonly string[];
  /**
   * Where publishes go over SSE (default: `url`'s last path segment replaced by `publish`, over http(s)).
   * With several `url`s: one per URL, in the same order (default: derived from each).
   */
  publishUrl?: string | readonly string[];
  /**
   * Scopes this connection declares: events published with scopes reach only connections holding one.
   * Declared by the client, they are not a security boundary (see the README).
   */
  scopes?: string[];
  /** `"igniter"`: `url` is an Igniter.js server's SSE stream (read only; publishing goes through its actions). */
  flavor?: "igniter";
  /**
   * The server's protocol: `"v1"` (default), the relay's own (`docs/PROTOCOL.md`), or `"simple"`: the
   * minimal protocol of the "Custom WebSocket Provider" in Refine's live-provider guide, for an
   * existing server that speaks it. The client sends `{"action":"subscribe"|"unsubscribe","channel"}`
   * (once per channel, however many subscriptions share it; unsubscribe when the last one ends) and
   * `{"action":"publish","channel","type","payload"}`, and reads `{"channel","type","payload"}`
   * (dated on receipt). Filtering by types and ids, reconnecting with backoff, connection states and
   * the idle close work as with the relay. What the simple protocol lacks:
   * - no `seq`, so no resume: after every reconnect each subscription gets one `"$resync"` event
   *   (`meta.reason` names the simple protocol) so that the app refetches;
   * - no publish ack: `publish()` resolves with `{ seq: 0 }` once the frame is handed to the socket
   *   (queued while disconnected, sent on reconnect); `date` and `meta` are not sent;
   * - no pings (a dead link is noticed when the browser's WebSocket closes), no tokens, no scopes,
   *   no revalidations, and no WebSocket subprotocol is offered.
   * WebSocket only: with `transport` "sse" or "auto", a `flavor`, `token`, `getToken` or `scopes` it
   * throws a `TypeError`, as does any other value.
   */
  protocol?: "v1" | "simple";
  /**
   * Where to load the `.wasm` from, when the bundler's default (next to the JS) does not fit: the
   * package's `wasm_live_provider_bg.wasm`, or `full/wasm_live_provider_bg.wasm` for a client whose
   * options need the full build (`transport` "sse" or "auto", `flavor`, `protocol: "simple"`).
   */
  wasm?: string | URL | Response | BufferSource | WebAssembly.Module;
  /** Smallest reconnect delay cap, ms (default 500). */
  backoffMinMs?: number;
  /** Largest reconnect delay, ms (default 20000; 2000 with `flavor: "igniter"`, which keeps no history). */
  backoffMaxMs?: number;
  /**
   * A connection open this long resets the backoff, ms (default 5000). So does one that got the
   * relay's `subscribed` answer and then served at least 250 ms: the backoff grows only across
   * attempts that failed before being useful (refused, timed out, dropped before or just after
   * the answer), so a flapping network is retried quickly and a refusing relay is not hammered.
   */
  stableAfterMs?: number;
  /** How long past the relay's ping interval the link counts as dead, ms (default 10000). */
  pingGraceMs?: number;
  /** How long opening a connection may take, ms (default 10000). */
  connectTimeoutMs?: number;
  /** How long a publish waits for the relay's ack, ms (default 10000). */
  publishTimeoutMs?: number;
  /** How many publishes may wait for a connection (default 100); past that the oldest is rejected. */
  publishQueue?: number;
  /** How long the connection stays open after the last subscription ends, ms (default 5000). */
  idleCloseMs?: number;
  /**
   * Coalescing of event bursts, ms (default 0: off, every event is delivered). When on, each
   * subscription gets the first event of a burst at once, then at most one event per window: the
   * last event of the window, standing for all of them (`meta.coalesced`: how many; `payload.ids` and
   * `meta.ids`: the union of their ids). A `$resync` is never delayed. 50 updates of one record in
   * 150 ms then cost a page 2 refetches instead of 50. `stats.coalesced` counts the callbacks saved.
   */
  coalesceMs?: number;
  /**
   * The largest frame accepted from the relay (default 1048576, 1 MiB), in bytes of UTF-8 as the
   * relay's `--max-frame-bytes` counts them, measured before it is copied into wasm. A longer frame is dropped, reported to
   * `onError` and counted in `stats().problems`, and the connection is dropped and resumed (the
   * relay replays what it held, or a `$resync` covers it). The millisecond options above must be
   * at most 2147483647 (what `setTimeout` can wait); a bad value throws a `TypeError`. A `publish`
   * whose event is more than `maxFrameBytes` bytes as JSON (UTF-8) throws a `TypeError` (the relay sends each
   * event back to its publisher too, which would drop it).
   */
  maxFrameBytes?: number;
  /** Problems that are not thrown: malformed frames, callback errors, failed publishes nobody awaited. */
  onError?: (error: Error) => void;
  /** Connection state changes, e.g. to show a banner. */
  onStateChange?: (change: ConnectionStateChange) => void;
  /**
   * A token for a relay with authentication (a JWT), sent in the first frame of every connection.
   * It is not refreshed: prefer `getToken` for tokens that expire.
   */
  token?: string;
  /**
   * Gets a token for a relay with authentication: called before every connection and again when
   * about 75 % of the token's lifetime (as the relay counts it) has passed, at least 1 s before it
   * expires; the new token is sent on the open connection (WebSocket) or the stream is reopened with
   * it, resuming every channel (SSE) — nothing is lost or repeated. A throw, a rejection, a result
   * that is not a non-empty string or no answer within `connectTimeoutMs` fails the attempt: the
   * client reports it to `onError` (code `get_token`), shows `reconnecting` and retries with backoff.
   */
  getToken?: () => string | Promise<string>;
}

/** Options of one `LiveClient.subscribe`. */
export interface SubscribeOptions {
  /** This subscription's coalescing window, ms, instead of the client's `coalesceMs` (`0`: off). */
  coalesceMs?: number;
}

/** A subscription handle: pass it to `unsubscribe`, or call it. */
export interface SubscriptionHandle {
  (): void;
  /** Where the subscription stands with the relay (e.g. `forbidden` when its channel was refused). */
  readonly state: SubscriptionState;
}

export interface LiveClient {
  subscribe(
    channel: string,
    types: string[],
    ids: RecordKey[] | undefined,
    callback: (event: LiveEvent) => void,
    /** `coalesceMs`: this subscription's own coalescing window (`0`: every event at once). */
    options?: SubscribeOptions,
  ): SubscriptionHandle;
  /** Ignores a handle it does not know or has already ended: a second call is a no-op. */
  unsubscribe(handle: SubscriptionHandle): void;
  /**
   * Throws a `TypeError` naming the field at fault (a `channel` over 65536 characters, a `meta` that
   * is not an object, an event over `maxFrameBytes` as JSON, …); rejects after `close()`.
   */
  publish(event: {
    channel: string;
    type: string;
    payload?: unknown;
    date?: Date | string | number;
    meta?: Record<string, unknown>;
  }): Promise<{ seq: number }>;
  /**
   * Ends the connection for good: callbacks stop at once (also the rest of an event being delivered
   * when a callback closes its client). A second call is a no-op; `subscribe` and `onRevalidate`
   * then throw an `Error`, `publish` rejects.
   */
  close(): void;
  /**
   * Calls `listener(keys)` when the server asks to revalidate query keys; `keys` is `null` when missed
   * revalidations could not be replayed (revalidate everything). Returns a function that stops it.
   */
  onRevalidate(listener: RevalidateListener): () => void;
  readonly state: ConnectionStateName;
  readonly subscriptionCount: number;
  /** The last state change. */
  readonly connection: ConnectionStateChange;
  /** Calls `listener` on every state change; returns a function that stops it. */
  onStateChange(listener: (change: ConnectionStateChange) => void): () => void;
  readonly stats: LiveStats;
  /**
   * Enters `channel`'s presence (docs/PROTOCOL.md, "Presence"), or only watches it (`watchOnly`).
   * Handles of one channel share one membership: the last `leave()` leaves. Re-joined after every
   * reconnect with the same member key and data. Throws a `TypeError` naming a bad option; throws
   * an `Error` after `close()`.
   */
  presence(channel: string, options?: PresenceOptions): Presence;
}

/** What `client.presence(channel, options)` takes. */
export interface PresenceOptions {
  /** This client's own data on the channel (an object, at most 1 KiB as JSON by default; `{}` if left out). */
  data?: Record<string, unknown>;
  /** See the members without being one. */
  watchOnly?: boolean;
  /**
   * Without authentication only: the user this client says it is (default: its member key) and
   * what others see of it. Declared by the client: not a security boundary. With authentication
   * the relay takes both from the token (`sub`, `info`) and ignores these.
   */
  user?: string;
  info?: Record<string, unknown>;
}

/**
 * `connecting` (until the relay's first member list), `live`, `stale` (the connection is lost: the
 * members shown are the last known), `unsupported` (the relay offers no presence: an older relay,
 * Server-Sent Events or `protocol: "simple"`), `closed` (left, refused, or the client closed).
 */
export type PresenceStatus = "connecting" | "live" | "stale" | "unsupported" | "closed";

/** One user on a channel: all of its connections (tabs) together. */
export interface PresenceUser {
  user: string;
  /** From the token's `info` claim (authentication on) or what the client declared; `null` if none. */
  info: Record<string, unknown> | null;
  /** The data of its most recent connection. */
  data: Record<string, unknown>;
  /** How many connections (tabs, devices) it is present with. */
  connections: number;
  /** Whether one of them is this client. */
  self: boolean;
  /** When its most recent connection joined (ms since the epoch). */
  since: number;
  /** Each connection: its member key, data and join time. */
  members: ReadonlyArray<{ key: string; data: Record<string, unknown>; since: number }>;
}

export interface Presence {
  readonly channel: string;
  readonly status: PresenceStatus;
  /** One entry per user; a new array whenever something shown changes. */
  readonly members: ReadonlyArray<PresenceUser>;
  /** This client's own user entry, once the relay listed it. */
  readonly self: PresenceUser | null;
  /** Counts sent instead of members when the channel's set is full (`presence_full`). */
  readonly stats: { members: number; users: number } | null;
  /** Calls `listener` when the members or the status change; returns a function that stops it. */
  onChange(listener: (members: ReadonlyArray<PresenceUser>, presence: Presence) => void): () => void;
  /** Replaces this client's data (throws a `TypeError` on a `watchOnly` handle). */
  update(data: Record<string, unknown>): void;
  /** Ends this handle (a second call is a no-op). */
  leave(): void;
}

/** Counters of the connection. */
export interface LiveStats {
  /** Malformed or unexpected frames from the relay. */
  problems: number;
  /** Replayed events dropped because they had already been delivered. */
  duplicates: number;
  /** Resync events handed out (one per channel and unrecoverable gap). */
  resyncs: number;
  /** Connections that reached the relay's hello. */
  connections: number;
  /** Callbacks saved by coalescing (`coalesceMs`): events merged into another, per subscription. */
  coalesced: number;
  /** Events received in order, each once (whether or not a subscription's filter wanted it). */
  delivered: number;
  /** Of those, the events the relay replayed on a resume: missed while the connection was down. */
  replayed: number;
  /**
   * The relay endpoint in use: the current connection's (its WebSocket URL, or its event stream's
   * over SSE); while reconnecting, the one the next attempt goes to. With several `url`s, it changes
   * when the client fails over to another relay.
   */
  url: string;
}

/** Receives revalidated keys (arrays), or `null` for "everything". */
export type RevalidateListener = (keys: ReadonlyArray<readonly unknown[]> | null, event: LiveEvent) => void;

/**
 * Whether `queryClient.invalidateQueries({ queryKey: key })` of one of `keys` (what `useRevalidation` does)
 * picks a query whose key is `queryKey`: TanStack Query's `partialMatchKey` (a key matches a prefix of
 * `queryKey`, objects by their properties in any order); `null` matches all.
 */
export function isRevalidated(keys: ReadonlyArray<readonly unknown[]> | null, queryKey: readonly unknown[]): boolean;

export function createLiveClient(options: LiveProviderOptions): LiveClient;

/** What Refine passes to `subscribe`. */
export interface LiveSubscribeOptions {
  channel: string;
  types: Array<LiveEvent["type"]>;
  callback: (event: LiveEvent) => void;
  params?: {
    ids?: RecordKey[];
    id?: RecordKey;
    resource?: string;
    subscriptionType?: "useList" | "useOne" | "useMany";
    [key: string]: unknown;
  };
  meta?: Record<string, any> & { dataProviderName?: string };
}

/** What every provider shape shares with the client it wraps. */
export interface ProviderExtras {
  close(): void;
  readonly state: ConnectionStateName;
  readonly connection: ConnectionStateChange;
  onStateChange(listener: (change: ConnectionStateChange) => void): () => void;
  onRevalidate(listener: RevalidateListener): () => void;
  readonly stats: LiveStats;
  /** The underlying client (what the React and Vue adapters use). */
  readonly client: LiveClient;
}

/** Refine's `LiveProvider` shape, plus the shared extras. */
export interface WasmLiveProvider extends ProviderExtras {
  subscribe(options: LiveSubscribeOptions): SubscriptionHandle;
  unsubscribe(subscription: SubscriptionHandle): void;
  publish(event: LiveEvent): Promise<{ seq: number }>;
}

export function liveProvider(options: LiveProviderOptions): WasmLiveProvider;

/** Ginjou's `RealtimeEvent`: `action` where Refine says `type`. */
export interface RealtimeEvent<P = any> {
  channel: string;
  action: "*" | "created" | "updated" | "deleted" | "$resync" | (string & {});
  payload: P;
  date: Date;
  meta?: Record<string, any> & { resync?: true; reason?: string; coalesced?: number; ids?: RecordKey[] };
}

/** What Ginjou passes to `subscribe`. */
export interface RealtimeSubscribeProps {
  channel: string;
  actions: string[];
  callback: (event: RealtimeEvent) => void;
  params?:
    | { type: "list"; resource: string; [key: string]: unknown }
    | { type: "one"; resource: string; id: RecordKey; [key: string]: unknown }
    | { type: "many"; resource: string; ids: RecordKey[]; [key: string]: unknown }
    | Record<string, any>;
  meta?: Record<string, any>;
}

/**
 * The key `subscribe` returns: a string unique per subscription (`"wlp:1"`, `"wlp:2"`, …), as Ginjou
 * types it (`UnsubscribeKey = string`). Hand it back to `unsubscribe`.
 */
export type UnsubscribeKey = string;

/** Ginjou's `Realtime` shape, plus the shared extras. */
export interface WasmRealtime extends ProviderExtras {
  subscribe(props: RealtimeSubscribeProps): UnsubscribeKey;
  /** Ends the subscription of `key`; a key it does not know, or has already ended, is ignored. */
  unsubscribe(key: UnsubscribeKey): void;
  /** Where the subscription of `key` stands with the relay; `ended` once unsubscribed (and for unknown keys). */
  subscriptionState(key: UnsubscribeKey): SubscriptionState;
  publish(event: { channel: string; action: string; payload?: unknown; date?: Date | string | number; meta?: Record<string, unknown> }): Promise<{ seq: number }>;
}

export function realtime(options: LiveProviderOptions): WasmRealtime;
