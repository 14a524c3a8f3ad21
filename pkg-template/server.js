// wasm-live-provider/server: publish to the relay, ask its clients to revalidate, and mint their
// connection tokens, from a backend. Zero dependencies: global `fetch`, `AbortSignal.timeout`, Web Crypto
// (`crypto.subtle`, `crypto.randomUUID`), `TextEncoder`, `atob`/`btoa` (Node ≥ 20, Deno, workerd, edge
// runtimes). It holds the relay's API key and token secret: never import it into browser code (the
// package's `browser` condition maps it to a stub that throws).
//
// The relay's HTTP API and token claims are described in docs/PROTOCOL.md; this module in docs/SERVER.md.

/** The longest idempotency `key` the relay accepts, in bytes (relay/src/publish.rs, MAX_KEY_LEN). */
const MAX_KEY_BYTES = 128;
/** The shortest `--jwt-secret` the relay starts with, in bytes. */
const MIN_SECRET_BYTES = 32;
/** HTTP statuses after which a request is sent again: the relay did not publish, or may have (keyed). */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * An error of the relay, or of reaching it. `status` is the HTTP status (undefined when no answer came),
 * `code` the relay's error code (`unauthorized`, `forbidden`, `bad_channel`, `rate_limited`,
 * `unavailable`, `outcome_unknown`, …) or one of this module's: `network`, `timeout`, `http_error` (an
 * answer without the relay's JSON error body, e.g. a proxy's 502 page), `bad_response`, `redirect`.
 * `retryable` says whether sending the same request again later may succeed; `attempts` how many
 * requests were made. For a publish, `key` is its idempotency key: resending the event with it (within
 * the relay's `--publish-key-ttl-ms`, default 5 minutes) publishes it at most once.
 */
export class RelayError extends Error {
  constructor(message, { status, code, retryable, attempts, key, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "RelayError";
    this.status = status;
    this.code = code;
    this.retryable = retryable === true;
    this.attempts = attempts ?? 0;
    if (key !== undefined) this.key = key;
  }
}

const encoder = new TextEncoder();
const isPlainObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
const describe = (v) => (v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "string" ? `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}` : typeof v);

function checkStringArray(value, name) {
  if (!Array.isArray(value)) throw new TypeError(`\`${name}\` must be an array of strings, not ${describe(value)}`);
  value.forEach((item, i) => {
    if (typeof item !== "string") throw new TypeError(`\`${name}[${i}]\` must be a string, not ${describe(item)}`);
  });
  return value;
}

function checkNonEmptyString(value, name) {
  if (typeof value !== "string" || value === "") throw new TypeError(`\`${name}\` must be a non-empty string, not ${value === "" ? "an empty string" : describe(value)}`);
  return value;
}

/** Options a number with bounds: `what` names the option in the error. */
function checkNumber(value, name, { min, integer = false }) {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || (integer && !Number.isInteger(value))) {
    throw new TypeError(`\`${name}\` must be ${integer ? "a whole number" : "a finite number"} ≥ ${min}, not ${typeof value === "number" ? value : describe(value)}`);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------------
// Base64url, PEM and DER

function base64url(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
const base64urlJson = (value) => base64url(encoder.encode(JSON.stringify(value)));

/** DER length octets. */
function derLength(n) {
  if (n < 0x80) return [n];
  const bytes = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return [0x80 | bytes.length, ...bytes];
}
const der = (tag, ...parts) => {
  const body = parts.flatMap((p) => Array.from(p));
  return Uint8Array.from([tag, ...derLength(body.length), ...body]);
};
// AlgorithmIdentifiers of PKCS#8 (RFC 5208): rsaEncryption with NULL parameters; id-ecPublicKey with
// the curve prime256v1 (P-256).
const RSA_ALGORITHM = Uint8Array.from([0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00]);
const EC_P256_ALGORITHM = Uint8Array.from([
  0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07,
]);
/** A PKCS#1 (RSA) or SEC 1 (EC) private key wrapped into PKCS#8, which is what Web Crypto imports. */
const pkcs8Of = (algorithm, inner) => der(0x30, [0x02, 0x01, 0x00], algorithm, der(0x04, inner));

/** The PKCS#8 DER of a PEM private key (`PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`). */
function privateKeyDer(pem, alg) {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!match) throw new TypeError("`privateKey` must be a PEM private key (`-----BEGIN PRIVATE KEY-----` …), not something without a PEM block");
  const label = match[1];
  if (label === "ENCRYPTED PRIVATE KEY") {
    throw new TypeError("`privateKey` is encrypted (`BEGIN ENCRYPTED PRIVATE KEY`): give it decrypted (`openssl pkcs8 -in key.pem -out plain.pem`)");
  }
  if (label === "PUBLIC KEY" || label === "CERTIFICATE" || label === "RSA PUBLIC KEY") {
    throw new TypeError(`\`privateKey\` is a ${label.toLowerCase()}: give the private key (the relay gets the public one, --jwt-public-key)`);
  }
  let bytes;
  try {
    bytes = Uint8Array.from(atob(match[2].replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  } catch (e) {
    throw new TypeError(`\`privateKey\`: the PEM block is not valid base64 (${e.message})`, { cause: e });
  }
  if (label === "PRIVATE KEY") return bytes;
  if (label === "RSA PRIVATE KEY") {
    if (alg !== "RS256") throw new TypeError(`\`privateKey\` is an RSA key (\`BEGIN RSA PRIVATE KEY\`), but \`alg\` is ${JSON.stringify(alg)}: use alg "RS256"`);
    return pkcs8Of(RSA_ALGORITHM, bytes);
  }
  if (label === "EC PRIVATE KEY") {
    if (alg !== "ES256") throw new TypeError(`\`privateKey\` is an EC key (\`BEGIN EC PRIVATE KEY\`), but \`alg\` is ${JSON.stringify(alg)}: use alg "ES256"`);
    return pkcs8Of(EC_P256_ALGORITHM, bytes);
  }
  throw new TypeError(`\`privateKey\` is a PEM \`${label}\`, not a private key (\`BEGIN PRIVATE KEY\`, \`BEGIN RSA PRIVATE KEY\` or \`BEGIN EC PRIVATE KEY\`)`);
}

// ---------------------------------------------------------------------------------------------------
// Durations, delays

const UNITS = { s: 1, m: 60, h: 3600, d: 86400 };
/** `expiresIn` in seconds: a number of seconds, or a string like "30s", "5m", "2h", "1d". */
function expiresInSeconds(value) {
  if (typeof value === "string") {
    const m = /^\s*(\d+)\s*(s|m|h|d)\s*$/.exec(value);
    if (!m) throw new TypeError(`\`expiresIn\` must be a number of seconds or a string like "30s", "5m", "2h", "1d", not ${JSON.stringify(value)}`);
    value = Number(m[1]) * UNITS[m[2]];
  }
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1) {
    throw new TypeError(`\`expiresIn\` must be a whole number of seconds ≥ 1 (or a string like "5m"), not ${typeof value === "number" ? value : describe(value)}`);
  }
  return value;
}

/** The delay a `Retry-After` header asks for, in ms (seconds or an HTTP date), or undefined. */
function retryAfterMs(header, now = Date.now()) {
  if (header == null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------
// The client

/**
 * A client of the relay's HTTP API (docs/SERVER.md). Options:
 * - `url`: the relay's HTTP base URL (`https://relay.example.com`, or with a path prefix);
 * - `apiKey`: sent as `Authorization: Bearer` with publishes and revalidations (an `--api-key` of the
 *   relay, or a token whose `publish` claim allows the channels);
 * - `jwtSecret` (HS256), or `privateKey` (PEM) with `alg` "RS256" | "ES256": signs `mintToken`'s tokens;
 * - `timeoutMs` (5000) per request, `retries` (3) after the first attempt, `retryDelayMs` (200) the base
 *   of the full-jitter backoff, `maxRetryDelayMs` (10000) its cap and the longest `Retry-After` honoured;
 * - `fetch`: a fetch to use instead of the global one.
 */
export function createRelayClient(options) {
  if (!isPlainObject(options)) throw new TypeError(`createRelayClient(options): \`options\` must be an object, not ${describe(options)}`);
  const known = new Set(["url", "apiKey", "jwtSecret", "privateKey", "alg", "timeoutMs", "retries", "retryDelayMs", "maxRetryDelayMs", "fetch"]);
  for (const name of Object.keys(options)) {
    if (!known.has(name)) throw new TypeError(`createRelayClient: unknown option \`${name}\` (known: ${[...known].join(", ")})`);
  }
  const { url, apiKey, jwtSecret, privateKey, alg, timeoutMs = 5000, retries = 3, retryDelayMs = 200, maxRetryDelayMs = 10_000 } = options;

  if (typeof url !== "string" && !(url instanceof URL)) throw new TypeError(`\`url\` must be the relay's http(s) URL (a string), not ${describe(url)}`);
  let base;
  try {
    base = new URL(String(url));
  } catch (e) {
    throw new TypeError(`\`url\` is not a valid URL: ${JSON.stringify(String(url))}`, { cause: e });
  }
  if (base.protocol === "ws:" || base.protocol === "wss:") {
    throw new TypeError(`\`url\` must be the relay's http(s) URL (e.g. ${base.protocol === "wss:" ? "https" : "http"}://${base.host}), not its WebSocket URL ${JSON.stringify(String(url))}`);
  }
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new TypeError(`\`url\` must be an http: or https: URL, not ${base.protocol}`);
  if (base.search || base.hash) throw new TypeError(`\`url\` must be the relay's base URL, without a query or fragment: ${JSON.stringify(String(url))}`);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const endpoint = (path) => new URL(path, base).href;

  if (apiKey !== undefined) checkNonEmptyString(apiKey, "apiKey");
  if (jwtSecret !== undefined && privateKey !== undefined) throw new TypeError("give either `jwtSecret` (HS256) or `privateKey` (RS256/ES256), not both");
  if (jwtSecret !== undefined) {
    checkNonEmptyString(jwtSecret, "jwtSecret");
    const bytes = encoder.encode(jwtSecret).length;
    if (bytes < MIN_SECRET_BYTES) throw new TypeError(`\`jwtSecret\` is ${bytes} bytes long: the relay requires at least ${MIN_SECRET_BYTES} (its --jwt-secret)`);
    if (alg !== undefined && alg !== "HS256") throw new TypeError(`\`alg\` is ${JSON.stringify(alg)}, but a \`jwtSecret\` signs HS256: leave \`alg\` out or give a \`privateKey\``);
  }
  let keyDer;
  if (privateKey !== undefined) {
    if (typeof privateKey !== "string") throw new TypeError(`\`privateKey\` must be a PEM string, not ${describe(privateKey)}`);
    if (alg !== "RS256" && alg !== "ES256") throw new TypeError(`\`alg\` must be "RS256" or "ES256" with a \`privateKey\`, not ${alg === undefined ? "missing" : JSON.stringify(alg)}`);
    keyDer = privateKeyDer(privateKey, alg);
  } else if (alg !== undefined && jwtSecret === undefined) {
    throw new TypeError(`\`alg\` ${JSON.stringify(alg)} was given without a key: give \`privateKey\` (RS256/ES256) or \`jwtSecret\` (HS256)`);
  }
  checkNumber(timeoutMs, "timeoutMs", { min: 1 });
  checkNumber(retries, "retries", { min: 0, integer: true });
  checkNumber(retryDelayMs, "retryDelayMs", { min: 0 });
  checkNumber(maxRetryDelayMs, "maxRetryDelayMs", { min: 0 });
  const fetchImpl = options.fetch ?? globalThis.fetch;
  if (typeof fetchImpl !== "function") {
    throw new TypeError(options.fetch === undefined ? "there is no global `fetch` (Node ≥ 20 has one): pass a `fetch` option" : `\`fetch\` must be a function, not ${describe(options.fetch)}`);
  }
  if (typeof globalThis.crypto?.randomUUID !== "function") throw new TypeError("there is no Web Crypto (`crypto.randomUUID`) here: wasm-live-provider/server needs Node ≥ 20 or another runtime with it");
  const subtle = globalThis.crypto.subtle;
  if ((jwtSecret !== undefined || privateKey !== undefined) && !subtle) throw new TypeError("there is no Web Crypto (`crypto.subtle`) here: mintToken needs Node ≥ 20 or another runtime with it");

  const algorithm = jwtSecret !== undefined ? "HS256" : privateKey !== undefined ? alg : undefined;
  let signingKey; // a promise of the CryptoKey, imported on the first mintToken
  const importKey = () => {
    if (algorithm === "HS256") return subtle.importKey("raw", encoder.encode(jwtSecret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    const params = algorithm === "RS256" ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } : { name: "ECDSA", namedCurve: "P-256" };
    return subtle.importKey("pkcs8", keyDer, params, false, ["sign"]).catch((e) => {
      throw new TypeError(
        `\`privateKey\` could not be imported as ${algorithm === "RS256" ? "an RSA private key (RS256)" : "an EC P-256 private key (ES256)"}: ${e.message}. Is \`alg\` right for this key?`,
        { cause: e },
      );
    });
  };
  const signParams = { HS256: { name: "HMAC" }, RS256: { name: "RSASSA-PKCS1-v1_5" }, ES256: { name: "ECDSA", hash: "SHA-256" } };

  /** One request with retries; resolves to the relay's JSON answer and the number of attempts. */
  async function send(path, body, what, key) {
    const url = endpoint(path);
    const headers = { "content-type": "application/json" };
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    const text = JSON.stringify(body);
    for (let attempt = 1; ; attempt++) {
      let failure; // the RelayError of this attempt
      let waitMs; // what the relay asked for (Retry-After)
      let response;
      try {
        response = await fetchImpl(url, { method: "POST", headers, body: text, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
      } catch (e) {
        const timedOut = e?.name === "TimeoutError" || e?.name === "AbortError";
        const reason = timedOut ? `no answer within ${timeoutMs} ms (timeoutMs)` : `${e?.message ?? e}${e?.cause?.message ? ` (${e.cause.code ? `${e.cause.code}: ` : ""}${e.cause.message})` : ""}`;
        failure = new RelayError(`${what}: POST ${url} failed: ${reason}`, { code: timedOut ? "timeout" : "network", retryable: true, attempts: attempt, key, cause: e });
      }
      if (response) {
        let raw;
        let json;
        try {
          raw = await response.text();
        } catch (e) {
          failure = new RelayError(`${what}: POST ${url} answered ${response.status}, then its body failed: ${e?.message ?? e}`, {
            status: response.status,
            code: e?.name === "TimeoutError" ? "timeout" : "network",
            retryable: true,
            attempts: attempt,
            key,
            cause: e,
          });
        }
        if (raw !== undefined) {
          try {
            json = JSON.parse(raw);
          } catch {
            json = undefined; // not the relay's JSON: a proxy's page, say; reported below with the status
          }
          if (response.status === 200) {
            if (isPlainObject(json) && Number.isSafeInteger(json.seq)) return { json, attempts: attempt };
            throw new RelayError(`${what}: POST ${url} answered 200 without a \`seq\`: ${raw.slice(0, 200)} (is \`url\` the relay's?)`, {
              status: 200,
              code: "bad_response",
              retryable: false,
              attempts: attempt,
              key,
            });
          }
          const status = response.status;
          if (status >= 300 && status < 400) {
            throw new RelayError(`${what}: POST ${url} answered a redirect (${status}) to ${response.headers.get("location")}: give the final URL as \`url\``, {
              status,
              code: "redirect",
              retryable: false,
              attempts: attempt,
              key,
            });
          }
          const error = isPlainObject(json) && isPlainObject(json.error) ? json.error : undefined;
          const code = typeof error?.code === "string" ? error.code : "http_error";
          const message = typeof error?.message === "string" ? error.message : raw.trim().slice(0, 200) || response.statusText;
          const retryable = RETRYABLE_STATUSES.has(status);
          let hint = "";
          if (status === 401 && apiKey === undefined) hint = " (no `apiKey` was given to createRelayClient)";
          if (status === 504 && key !== undefined) hint = " (the relay does not know whether it was published; resent with the same key, it is published at most once)";
          failure = new RelayError(`${what}: the relay answered ${status} ${code}: ${message}${hint}`, { status, code, retryable, attempts: attempt, key });
          if (retryable) waitMs = retryAfterMs(response.headers.get("retry-after"));
        }
      }
      if (!failure.retryable) throw failure;
      if (attempt > retries) {
        failure.message += ` (gave up after ${attempt} attempt${attempt === 1 ? "" : "s"}${key !== undefined ? `; resending with key ${JSON.stringify(key)} is safe` : ""})`;
        throw failure;
      }
      if (waitMs !== undefined && waitMs > maxRetryDelayMs) {
        failure.message += ` (the relay asked to wait ${Math.ceil(waitMs / 1000)} s before retrying, more than maxRetryDelayMs = ${maxRetryDelayMs}; attempts: ${attempt})`;
        throw failure;
      }
      // Full jitter (a random delay up to the exponential bound), or what Retry-After asked for.
      await sleep(waitMs ?? Math.random() * Math.min(maxRetryDelayMs, retryDelayMs * 2 ** (attempt - 1)));
    }
  }

  return {
    /**
     * Publishes one event (`POST /publish`). Resolves to `{ channel, seq, attempts }`. The idempotency
     * `key` (default: a random UUID) is made once and sent with every attempt, so that a retry after an
     * unknown outcome publishes the event at most once.
     */
    async publish(event) {
      if (!isPlainObject(event)) throw new TypeError(`publish(event): \`event\` must be an object, not ${describe(event)}`);
      const { channel, type, payload, meta, date, scopes, key } = event;
      checkNonEmptyString(channel, "channel");
      checkNonEmptyString(type, "type");
      const body = { channel, type };
      if (payload !== undefined) body.payload = payload;
      if (meta !== undefined) {
        if (!isPlainObject(meta)) throw new TypeError(`\`meta\` must be an object, not ${describe(meta)}`);
        body.meta = meta;
      }
      if (date !== undefined) {
        if (date instanceof Date) {
          if (Number.isNaN(date.getTime())) throw new TypeError("`date` is an invalid Date");
          body.date = date.getTime();
        } else if ((typeof date === "number" && Number.isFinite(date)) || typeof date === "string") {
          body.date = date;
        } else {
          throw new TypeError(`\`date\` must be a Date, a number of ms since 1970 or an RFC 3339 string, not ${describe(date)}`);
        }
      }
      if (scopes !== undefined) body.scopes = checkStringArray(scopes, "scopes");
      if (key !== undefined) {
        checkNonEmptyString(key, "key");
        const bytes = encoder.encode(key).length;
        if (bytes > MAX_KEY_BYTES) throw new TypeError(`\`key\` is ${bytes} bytes long, over the relay's limit of ${MAX_KEY_BYTES}`);
      }
      body.key = key ?? crypto.randomUUID();
      try {
        JSON.stringify(body);
      } catch (e) {
        throw new TypeError(`publish(event): \`payload\` or \`meta\` cannot be written as JSON: ${e.message}`, { cause: e });
      }
      const { json, attempts } = await send("publish", body, `publish to ${JSON.stringify(channel)}`, body.key);
      return { channel: typeof json.channel === "string" ? json.channel : channel, seq: json.seq, attempts };
    },

    /**
     * Tells the clients listening for revalidations to refetch these query keys (`POST /revalidate`).
     * Resolves to `{ channel: "$revalidate", seq, attempts }`. Retried like a publish; the relay takes
     * no key here, so a retry after an unknown outcome may revalidate twice (a second refetch).
     */
    async revalidate(keys, options = {}) {
      if (!Array.isArray(keys) || keys.length === 0) throw new TypeError(`revalidate(keys): \`keys\` must be a non-empty array of query keys (arrays or strings), not ${Array.isArray(keys) ? "an empty array" : describe(keys)}`);
      keys.forEach((k, i) => {
        if (typeof k !== "string" && !Array.isArray(k)) throw new TypeError(`\`keys[${i}]\` must be a query key (an array) or a string, not ${describe(k)}`);
      });
      if (!isPlainObject(options)) throw new TypeError(`revalidate(keys, options): \`options\` must be an object, not ${describe(options)}`);
      const body = { keys };
      if (options.scopes !== undefined) body.scopes = checkStringArray(options.scopes, "scopes");
      try {
        JSON.stringify(body);
      } catch (e) {
        throw new TypeError(`revalidate(keys): \`keys\` cannot be written as JSON: ${e.message}`, { cause: e });
      }
      const { json, attempts } = await send("revalidate", body, "revalidate");
      return { channel: typeof json.channel === "string" ? json.channel : "$revalidate", seq: json.seq, attempts };
    },

    /**
     * A connection token (JWT) for the relay, signed with `jwtSecret` (HS256) or `privateKey`
     * (RS256/ES256). `exp` is always set (`expiresIn` seconds or "5m" from now; default 300), `iat` too.
     */
    async mintToken(claims) {
      if (algorithm === undefined) throw new TypeError("mintToken needs a signing key: give `jwtSecret` (HS256) or `privateKey` and `alg` (RS256/ES256) to createRelayClient");
      if (!isPlainObject(claims)) throw new TypeError(`mintToken(claims): \`claims\` must be an object, not ${describe(claims)}`);
      const allowed = new Set(["sub", "channels", "publish", "scopes", "info", "expiresIn", "aud", "iss"]);
      for (const name of Object.keys(claims)) {
        if (!allowed.has(name)) throw new TypeError(`mintToken: unknown field \`${name}\` (known: ${[...allowed].join(", ")})`);
      }
      const { sub, channels, publish, scopes, info, expiresIn = 300, aud, iss } = claims;
      checkNonEmptyString(sub, "sub");
      checkStringArray(channels, "channels");
      const seconds = expiresInSeconds(expiresIn);
      const iat = Math.floor(Date.now() / 1000);
      const payload = { sub, iat, exp: iat + seconds, channels };
      if (publish !== undefined) payload.publish = checkStringArray(publish, "publish");
      if (scopes !== undefined) payload.scopes = checkStringArray(scopes, "scopes");
      if (info !== undefined) {
        if (!isPlainObject(info)) throw new TypeError(`\`info\` must be an object, not ${describe(info)}`);
        payload.info = info;
      }
      if (aud !== undefined) {
        if (Array.isArray(aud)) checkStringArray(aud, "aud");
        else checkNonEmptyString(aud, "aud");
        payload.aud = aud;
      }
      if (iss !== undefined) payload.iss = checkNonEmptyString(iss, "iss");
      let claimsPart;
      try {
        claimsPart = base64urlJson(payload);
      } catch (e) {
        throw new TypeError(`mintToken: \`info\` cannot be written as JSON: ${e.message}`, { cause: e });
      }
      const signingInput = `${base64urlJson({ alg: algorithm, typ: "JWT" })}.${claimsPart}`;
      signingKey ??= importKey();
      let key;
      try {
        key = await signingKey;
      } catch (e) {
        signingKey = undefined; // the next call reports it again
        throw e;
      }
      // ECDSA in Web Crypto gives r‖s (64 bytes for P-256), which is JWS's ES256 format.
      const signature = new Uint8Array(await subtle.sign(signParams[algorithm], key, encoder.encode(signingInput)));
      return `${signingInput}.${base64url(signature)}`;
    },
  };
}
