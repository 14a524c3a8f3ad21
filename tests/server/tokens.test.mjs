// mintToken of wasm-live-provider/server (pkg/server.js) against real relays: an HS256 relay
// (--jwt-secret), an RS256 one and an ES256 one (--jwt-public-key with relay/tests/keys/), and one that
// checks --jwt-audience / --jwt-issuer. The helper's tokens are accepted over WebSocket (`authed` with
// their `sub` and a `ttl_ms` matching `expiresIn`); tampered, expired, forged and wrong-algorithm tokens
// are refused (`unauthorized`, close 4001). Cross-checked with jose: the helper's tokens verify with jose,
// and jose's tokens are accepted by the relay the same way.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createPrivateKey } from "node:crypto";
import { resolve } from "node:path";
import * as jose from "jose";
import { root, serverModule, startRelay, authenticate, subscribe, randomSecret, randomApiKey, sleep } from "./peers.mjs";

const { createRelayClient } = await import(serverModule);
const key = (name) => readFileSync(resolve(root, "relay/tests/keys", name), "utf8");
const RSA_PRIVATE = key("rsa-private.pem");
const EC_PRIVATE = key("ec-private.pem");

const secret = randomSecret();
const apiKey = randomApiKey();
const relays = {};

before(async () => {
  relays.hs = await startRelay(["--jwt-secret", secret, "--api-key", apiKey]);
  relays.rs = await startRelay(["--jwt-public-key", resolve(root, "relay/tests/keys/rsa-public.pem")]);
  relays.es = await startRelay(["--jwt-public-key", resolve(root, "relay/tests/keys/ec-public.pem")]);
  relays.audIss = await startRelay(["--jwt-secret", secret, "--jwt-audience", "live", "--jwt-issuer", "backend"]);
});

after(async () => {
  await Promise.all(Object.values(relays).map((r) => r.stop()));
});

const clients = () => ({
  hs: createRelayClient({ url: relays.hs.http, apiKey, jwtSecret: secret }),
  rs: createRelayClient({ url: relays.rs.http, privateKey: RSA_PRIVATE, alg: "RS256" }),
  es: createRelayClient({ url: relays.es.http, privateKey: EC_PRIVATE, alg: "ES256" }),
});

const decode = (token) => {
  const [h, p] = token.split(".");
  return { header: JSON.parse(Buffer.from(h, "base64url")), claims: JSON.parse(Buffer.from(p, "base64url")) };
};

/** Asserts the relay accepted the token: `authed` with `sub` and a ttl close to `ttlSeconds`. */
async function assertAccepted(relay, token, sub, ttlSeconds, what) {
  const { frame } = await authenticate(relay.ws, token);
  assert.equal(frame.op, "authed", `${what}: accepted, got ${JSON.stringify(frame)}`);
  assert.equal(frame.sub, sub, `${what}: authed.sub`);
  assert.ok(frame.ttl_ms > (ttlSeconds - 2) * 1000 && frame.ttl_ms <= ttlSeconds * 1000, `${what}: ttl_ms ${frame.ttl_ms} ≈ ${ttlSeconds} s`);
}

/** Asserts the relay refused the token: `unauthorized`, then close code 4001; returns the message. */
async function assertRefused(relay, token, what) {
  const { frame, closeCode } = await authenticate(relay.ws, token);
  assert.equal(frame.op, "error", `${what}: refused, got ${JSON.stringify(frame)}`);
  assert.equal(frame.code, "unauthorized", `${what}: ${JSON.stringify(frame)}`);
  assert.equal(closeCode, 4001, `${what}: close code`);
  return frame.message;
}

test("HS256, RS256 and ES256 tokens minted by the helper are accepted by the relay with that key", async () => {
  const c = clients();
  for (const [name, alg] of [["hs", "HS256"], ["rs", "RS256"], ["es", "ES256"]]) {
    const token = await c[name].mintToken({ sub: `user-${name}`, channels: ["resources/*"], expiresIn: 120 });
    const { header, claims } = decode(token);
    assert.deepEqual(header, { alg, typ: "JWT" });
    assert.equal(claims.exp - claims.iat, 120, "exp = iat + expiresIn");
    assert.ok(Math.abs(claims.iat - Date.now() / 1000) < 5, "iat is now");
    if (alg === "ES256") assert.equal(Buffer.from(token.split(".")[2], "base64url").length, 64, "an ES256 signature is r‖s, 64 bytes");
    await assertAccepted(relays[name], token, `user-${name}`, 120, alg);
  }
  // "5m" and the default (300 s)
  await assertAccepted(relays.hs, await c.hs.mintToken({ sub: "u", channels: [], expiresIn: "5m" }), "u", 300, "expiresIn 5m");
  await assertAccepted(relays.es, await c.es.mintToken({ sub: "u", channels: [] }), "u", 300, "default expiresIn");
});

test("the token's claims are what the relay enforces: channels, publish and scopes", async () => {
  const c = clients().hs;
  const token = await c.mintToken({ sub: "reader", channels: ["resources/posts"], scopes: ["user:1"], info: { name: "Ada" } });
  assert.deepEqual(decode(token).claims.scopes, ["user:1"]);
  assert.deepEqual(decode(token).claims.info, { name: "Ada" });
  const sub = await subscribe(relays.hs.ws, token, "resources/posts");
  await assert.rejects(subscribe(relays.hs.ws, token, "resources/users"), /forbidden/, "a channel outside `channels` is forbidden");
  // A scoped event reaches the holder of the scope; one for another scope arrives as a skip.
  const other = createRelayClient({ url: relays.hs.http, apiKey });
  const a = await other.publish({ channel: "resources/posts", type: "updated", payload: { ids: [1] }, scopes: ["user:1"] });
  await other.publish({ channel: "resources/posts", type: "updated", payload: { ids: [2] }, scopes: ["user:2"] });
  for (let i = 0; i < 50 && sub.events.length < 1; i++) await sleep(20);
  await sleep(100);
  assert.deepEqual(sub.events.map((e) => [e.seq, e.payload.ids[0]]), [[a.seq, 1]], "only the event of the token's scope");
  sub.close();

  // `publish`: a token allowed to publish on resources/* may publish there over HTTP, nowhere else.
  const publisher = await c.mintToken({ sub: "writer", channels: [], publish: ["resources/*"] });
  const asToken = createRelayClient({ url: relays.hs.http, apiKey: publisher });
  assert.equal((await asToken.publish({ channel: "resources/posts", type: "created" })).attempts, 1);
  await assert.rejects(asToken.publish({ channel: "admin", type: "created" }), (e) => e.status === 403 && e.code === "forbidden" && e.attempts === 1);
});

test("tampered, expired, forged and wrong-algorithm tokens are refused", async () => {
  const c = clients();
  const good = await c.hs.mintToken({ sub: "u1", channels: ["a"] });
  const [h, p, s] = good.split(".");

  // Tampered: another sub with the old signature; a signature with one bit flipped.
  const claims = decode(good).claims;
  const tamperedClaims = Buffer.from(JSON.stringify({ ...claims, sub: "admin", channels: ["*"] })).toString("base64url");
  assert.match(await assertRefused(relays.hs, `${h}.${tamperedClaims}.${s}`, "claims changed after signing"), /signature is invalid/);
  const sig = Buffer.from(s, "base64url");
  sig[5] ^= 1;
  assert.match(await assertRefused(relays.hs, `${h}.${p}.${sig.toString("base64url")}`, "a flipped signature bit"), /signature is invalid/);

  // Forged: signed with another secret.
  const forger = createRelayClient({ url: relays.hs.http, jwtSecret: randomSecret() });
  assert.match(await assertRefused(relays.hs, await forger.mintToken({ sub: "u1", channels: ["a"] }), "another secret"), /signature is invalid/);

  // Expired: a token of the helper that lived its second.
  const shortLived = await c.hs.mintToken({ sub: "u1", channels: ["a"], expiresIn: 1 });
  await sleep((decode(shortLived).claims.exp + 1) * 1000 - Date.now());
  assert.match(await assertRefused(relays.hs, shortLived, "expired"), /expired/);

  // Wrong algorithm: each relay refuses the other two algorithms, and alg "none".
  const tokens = {
    hs: await c.hs.mintToken({ sub: "u1", channels: ["a"] }),
    rs: await c.rs.mintToken({ sub: "u1", channels: ["a"] }),
    es: await c.es.mintToken({ sub: "u1", channels: ["a"] }),
  };
  for (const relay of ["hs", "rs", "es"]) {
    for (const signer of ["hs", "rs", "es"]) {
      if (relay === signer) continue;
      const message = await assertRefused(relays[relay], tokens[signer], `a ${signer} token on the ${relay} relay`);
      assert.match(message, new RegExp(`signed with ${signer.toUpperCase()}256`), message);
    }
  }
  const none = `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${p}.`;
  await assertRefused(relays.hs, none, "alg none");
  // HS256 signed with the RSA public key's PEM as the secret (the classic confusion attack).
  const confused = createRelayClient({ url: relays.rs.http, jwtSecret: key("rsa-public.pem") });
  assert.match(await assertRefused(relays.rs, await confused.mintToken({ sub: "u1", channels: ["a"] }), "HS256 keyed with the RSA public key"), /signed with HS256/);
});

test("aud and iss: accepted when they match the relay's --jwt-audience and --jwt-issuer, refused otherwise", async () => {
  const c = createRelayClient({ url: relays.audIss.http, jwtSecret: secret });
  await assertAccepted(relays.audIss, await c.mintToken({ sub: "u", channels: [], aud: "live", iss: "backend" }), "u", 300, "aud and iss");
  await assertAccepted(relays.audIss, await c.mintToken({ sub: "u", channels: [], aud: ["other", "live"], iss: "backend" }), "u", 300, "aud array");
  await assertRefused(relays.audIss, await c.mintToken({ sub: "u", channels: [], iss: "backend" }), "no aud");
  await assertRefused(relays.audIss, await c.mintToken({ sub: "u", channels: [], aud: "live", iss: "someone" }), "another iss");
});

test("PKCS#1 (BEGIN RSA PRIVATE KEY) and SEC 1 (BEGIN EC PRIVATE KEY) keys are accepted too", async () => {
  const rsaPkcs1 = createPrivateKey(RSA_PRIVATE).export({ type: "pkcs1", format: "pem" });
  const ecSec1 = createPrivateKey(EC_PRIVATE).export({ type: "sec1", format: "pem" });
  assert.match(rsaPkcs1, /BEGIN RSA PRIVATE KEY/);
  assert.match(ecSec1, /BEGIN EC PRIVATE KEY/);
  const rs = createRelayClient({ url: relays.rs.http, privateKey: rsaPkcs1, alg: "RS256" });
  const es = createRelayClient({ url: relays.es.http, privateKey: ecSec1, alg: "ES256" });
  await assertAccepted(relays.rs, await rs.mintToken({ sub: "p1", channels: [] }), "p1", 300, "PKCS#1 RSA");
  await assertAccepted(relays.es, await es.mintToken({ sub: "s1", channels: [] }), "s1", 300, "SEC 1 EC");
});

test("a key that does not fit `alg` is reported when minting, naming privateKey and alg", async () => {
  const wrong = createRelayClient({ url: relays.rs.http, privateKey: RSA_PRIVATE, alg: "ES256" });
  await assert.rejects(wrong.mintToken({ sub: "u", channels: [] }), (e) => e instanceof TypeError && /`privateKey`.*EC P-256.*`alg`/s.test(e.message));
  // reported again on the next call, not cached as a broken key forever
  await assert.rejects(wrong.mintToken({ sub: "u", channels: [] }), TypeError);
});

test("jose verifies the helper's tokens, and the relay accepts jose's", async () => {
  const c = clients();
  const hsKey = new TextEncoder().encode(secret);
  const rsPublic = await jose.importSPKI(key("rsa-public.pem"), "RS256");
  const esPublic = await jose.importSPKI(key("ec-public.pem"), "ES256");

  const fromHelper = {
    hs: [await c.hs.mintToken({ sub: "h", channels: ["a/*"], publish: ["a/b"], scopes: ["s"], aud: "live", iss: "backend", expiresIn: 60 }), hsKey, "HS256"],
    rs: [await c.rs.mintToken({ sub: "h", channels: ["a/*"], publish: ["a/b"], scopes: ["s"], aud: "live", iss: "backend", expiresIn: 60 }), rsPublic, "RS256"],
    es: [await c.es.mintToken({ sub: "h", channels: ["a/*"], publish: ["a/b"], scopes: ["s"], aud: "live", iss: "backend", expiresIn: 60 }), esPublic, "ES256"],
  };
  for (const [name, [token, verifyKey, alg]] of Object.entries(fromHelper)) {
    const { payload, protectedHeader } = await jose.jwtVerify(token, verifyKey, { algorithms: [alg], audience: "live", issuer: "backend", requiredClaims: ["exp", "iat", "sub"] });
    assert.equal(protectedHeader.alg, alg, name);
    assert.equal(payload.sub, "h");
    assert.deepEqual(payload.channels, ["a/*"]);
    assert.deepEqual(payload.publish, ["a/b"]);
    assert.deepEqual(payload.scopes, ["s"]);
    assert.equal(payload.exp - payload.iat, 60);
    // and jose refuses it once tampered with
    const [h, , s] = token.split(".");
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, sub: "admin" })).toString("base64url")}.${s}`;
    await assert.rejects(jose.jwtVerify(forged, verifyKey, { algorithms: [alg] }), /signature verification failed/, `${name}: jose refuses a tampered token`);
  }

  const sign = (alg) =>
    new jose.SignJWT({ channels: ["a/*"] }).setProtectedHeader({ alg, typ: "JWT" }).setSubject("from-jose").setIssuedAt().setExpirationTime("2m");
  const fromJose = {
    hs: await sign("HS256").sign(hsKey),
    rs: await sign("RS256").sign(await jose.importPKCS8(RSA_PRIVATE, "RS256")),
    es: await sign("ES256").sign(await jose.importPKCS8(EC_PRIVATE, "ES256")),
  };
  for (const [name, token] of Object.entries(fromJose)) await assertAccepted(relays[name], token, "from-jose", 120, `jose ${name}`);
  // jose's expired token is refused like the helper's
  const expired = await new jose.SignJWT({ channels: [] }).setProtectedHeader({ alg: "HS256" }).setSubject("x").setIssuedAt(Math.floor(Date.now() / 1000) - 60).setExpirationTime(Math.floor(Date.now() / 1000) - 1).sign(hsKey);
  assert.match(await assertRefused(relays.hs, expired, "jose expired"), /expired/);
});
