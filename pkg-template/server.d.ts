// Types of `wasm-live-provider/server` (server.js): a backend's client of the relay's HTTP API and the
// minting of its connection tokens. See docs/SERVER.md.

/** A plain JSON value, as the relay carries in `payload`, `meta` and revalidation keys. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json | undefined };

/** The relay's error codes (docs/PROTOCOL.md, *Error codes*) and this module's own. */
export type RelayErrorCode =
  | "bad_frame"
  | "too_large"
  | "bad_channel"
  | "bad_event"
  | "unauthorized"
  | "forbidden"
  | "rate_limited"
  | "too_many_connections"
  | "unavailable"
  | "outcome_unknown"
  /** No answer: the connection failed or was reset. */
  | "network"
  /** No answer within `timeoutMs`. */
  | "timeout"
  /** An error status without the relay's JSON error body (a proxy's page, say). */
  | "http_error"
  /** A 200 answer that is not the relay's (`seq` missing). */
  | "bad_response"
  /** A 3xx answer: give the final URL. */
  | "redirect"
  | (string & {});

/** Thrown (rejected) by `publish` and `revalidate` when the relay refuses, or cannot be reached. */
export declare class RelayError extends Error {
  constructor(
    message: string,
    details?: { status?: number; code?: RelayErrorCode; retryable?: boolean; attempts?: number; key?: string; cause?: unknown },
  );
  readonly name: "RelayError";
  /** The HTTP status; undefined when no answer came (`network`, `timeout`). */
  readonly status: number | undefined;
  /** The relay's error code (`unauthorized`, `forbidden`, `unavailable`, …) or this module's. */
  readonly code: RelayErrorCode;
  /** Whether the same request may succeed later (network errors, timeouts, 408, 429, 5xx). */
  readonly retryable: boolean;
  /** How many requests were made. */
  readonly attempts: number;
  /** A publish's idempotency key: resending the event with it publishes it at most once (within the relay's --publish-key-ttl-ms). */
  readonly key?: string;
  readonly cause?: unknown;
}

export interface RelayClientOptions {
  /** The relay's HTTP base URL, e.g. `https://relay.example.com` (not its `wss://…/ws` URL). */
  url: string | URL;
  /** Sent as `Authorization: Bearer` with publishes and revalidations: an `--api-key` of the relay (or a token allowed to publish). */
  apiKey?: string;
  /** The relay's `--jwt-secret` (at least 32 bytes): `mintToken` signs HS256. */
  jwtSecret?: string;
  /** A PEM private key (PKCS#8 `BEGIN PRIVATE KEY`, or `BEGIN RSA PRIVATE KEY` / `BEGIN EC PRIVATE KEY`) whose public key is the relay's `--jwt-public-key`. */
  privateKey?: string;
  /** The algorithm of `privateKey` (required with it); `"HS256"` may be given with `jwtSecret`. */
  alg?: "RS256" | "ES256" | "HS256";
  /** How long one request may take, in ms (default 5000). */
  timeoutMs?: number;
  /** How many times a failed request is sent again (default 3): after network errors, timeouts, 408, 429, 500, 502, 503, 504. */
  retries?: number;
  /** The base of the full-jitter backoff, in ms (default 200): retry n waits a random time up to min(maxRetryDelayMs, retryDelayMs · 2^(n−1)). */
  retryDelayMs?: number;
  /** The longest backoff, and the longest `Retry-After` honoured (longer: no retry), in ms (default 10000). */
  maxRetryDelayMs?: number;
  /** A fetch to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
}

/** An event to publish (`POST /publish`). */
export interface PublishEvent {
  channel: string;
  type: string;
  /** Any JSON (default `{}`); `payload.ids`, when given, an array of strings and numbers. */
  payload?: Json;
  meta?: { [key: string]: Json | undefined };
  /** When it happened (default: the relay's clock). */
  date?: Date | number | string;
  /** Only connections holding one of these scopes receive the event; the others get a `skip`. */
  scopes?: string[];
  /** The idempotency key (at most 128 bytes); default: a random UUID, made once for every attempt. */
  key?: string;
}

export interface Published {
  channel: string;
  /** The event's sequence number on its channel. */
  seq: number;
  /** How many requests it took. */
  attempts: number;
}

/** A query key to revalidate: an array (TanStack Query's keys), or a string `"k"` meaning `["k"]`. */
export type RevalidateKey = string | Json[];

export interface TokenClaims {
  /** The user id (the relay's publisher and SSE ticket holder). */
  sub: string;
  /** Channel patterns the connection may subscribe to: names, or prefixes ending in `*`. */
  channels: string[];
  /** Channel patterns the bearer may publish to (none when absent). */
  publish?: string[];
  /** The connection's scopes. */
  scopes?: string[];
  /** Anything else for your own use; the relay ignores it. */
  info?: { [key: string]: Json | undefined };
  /** Seconds until `exp` (a whole number), or "30s" / "5m" / "2h" / "1d" (default 300). */
  expiresIn?: number | `${number}${"s" | "m" | "h" | "d"}`;
  /** Checked by a relay started with --jwt-audience. */
  aud?: string | string[];
  /** Checked by a relay started with --jwt-issuer. */
  iss?: string;
}

export interface RelayClient {
  /** Publishes one event; retried with the same idempotency key, so it is published at most once. */
  publish(event: PublishEvent): Promise<Published>;
  /** Tells clients listening for revalidations to refetch these query keys (on the channel `$revalidate`). */
  revalidate(keys: RevalidateKey[], options?: { scopes?: string[] }): Promise<Published>;
  /** A connection token (JWT) with `sub`, `iat`, `exp` and the claims given, signed with the client's key. */
  mintToken(claims: TokenClaims): Promise<string>;
}

/** A client of the relay's HTTP API. Throws a TypeError naming the option at fault. */
export declare function createRelayClient(options: RelayClientOptions): RelayClient;
