// Uses wasm-live-provider/server the way docs/SERVER.md shows; compiled with `tsc --strict` by `make test-types`.
import { createRelayClient, RelayError, type RelayClient, type PublishEvent, type Published, type TokenClaims, type RelayErrorCode } from "wasm-live-provider/server";

const relay: RelayClient = createRelayClient({
  url: "https://relay.example.com",
  apiKey: "a-relay-api-key-0123",
  jwtSecret: "a-secret-of-at-least-thirty-two-bytes!!",
  timeoutMs: 3000,
  retries: 2,
  fetch: globalThis.fetch,
});
createRelayClient({ url: new URL("https://relay.example.com"), privateKey: "-----BEGIN PRIVATE KEY-----…", alg: "ES256" });

async function backend(): Promise<number> {
  const event: PublishEvent = { channel: "resources/posts", type: "updated", payload: { ids: [1, "2"] }, meta: { dataProviderName: "default" }, date: new Date(), scopes: ["user:42"] };
  const published: Published = await relay.publish(event);
  await relay.publish({ channel: "resources/posts", type: "created", key: "order-7-created", date: 1_763_800_000_000 });
  const { seq } = await relay.revalidate([["posts"], "users", ["posts", 7, { page: 2 }]], { scopes: ["team:7"] });
  const claims: TokenClaims = { sub: "42", channels: ["resources/*", "$revalidate"], publish: ["resources/posts"], scopes: ["user:42"], info: { name: "Ada" }, expiresIn: "5m", aud: ["live"], iss: "backend" };
  const token: string = await relay.mintToken(claims);
  await relay.mintToken({ sub: "42", channels: [], expiresIn: 60 });
  try {
    await relay.publish({ channel: "x", type: "t" });
  } catch (e) {
    if (e instanceof RelayError) {
      const code: RelayErrorCode = e.code;
      const status: number | undefined = e.status;
      const again: boolean = e.retryable && e.attempts > 0;
      console.log(code, status, again, e.key?.length, e.message, token.length);
    }
  }
  return published.seq + seq;
}
void backend;

// @ts-expect-error: alg must be RS256 / ES256 / HS256
createRelayClient({ url: "https://r", privateKey: "pem", alg: "PS256" });
// @ts-expect-error: publish needs a type
void relay.publish({ channel: "x" });
// @ts-expect-error: expiresIn is seconds or "5m"-like
void relay.mintToken({ sub: "u", channels: [], expiresIn: "5 minutes" });
// @ts-expect-error: channels is required
void relay.mintToken({ sub: "u" });
