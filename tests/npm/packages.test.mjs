// What the packed tarballs hold: the manifests (versions stamped from relay/Cargo.toml, os/cpu, the exact
// optional dependency, no scripts), the binary (static: no NEEDED, no INTERP) and the sizes, printed and capped.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PLATFORM_PACKAGE, assertPacked, fromTarball, mainTarball, platformTarball, version } from "./lib.mjs";

// Caps a little above what was measured (docs/DISTRIBUTION.md): binary 6,760,296 B, platform tarball
// 3,187,966 B, main tarball 437,166 B (0.1.0, musl + mimalloc, the demo built from www/).
const CAPS = {
  // Raised from 8,000,000 and 4,000,000 for the PostgreSQL feed and presence (CHANGELOG, docs/DISTRIBUTION.md).
  binary: 9_000_000,
  platformTarball: 4_500_000,
  mainTarball: 600_000,
};

let work, binary;

before(() => {
  assertPacked();
  work = mkdtempSync(join(tmpdir(), "live-relay-npm-packages-"));
  binary = join(work, "live-relay");
  writeFileSync(binary, fromTarball(platformTarball, "bin/live-relay"));
});

after(() => work && rmSync(work, { recursive: true, force: true }));

const manifest = (tarball) => JSON.parse(fromTarball(tarball, "package.json"));
const listing = (tarball) => execFileSync("tar", ["-tzvf", tarball], { encoding: "utf8" });

test("the main package: version, bin, the exact optional dependency, the demo, no scripts", () => {
  const pkg = manifest(mainTarball);
  assert.equal(pkg.name, "live-relay");
  assert.equal(pkg.version, version, "stamped from relay/Cargo.toml");
  assert.deepEqual(pkg.bin, { "live-relay": "bin/live-relay.js" });
  assert.deepEqual(pkg.optionalDependencies, { [PLATFORM_PACKAGE]: version });
  assert.equal(pkg.dependencies, undefined, "no dependencies");
  assert.equal(pkg.scripts, undefined, "no scripts (no install script)");
  const files = listing(mainTarball);
  assert.match(files, /^-rwxr-xr-x .* package\/bin\/live-relay\.js$/m);
  assert.match(files, / package\/demo\/index\.html$/m);
  assert.match(files, / package\/demo\/assets\/.*\.wasm$/m);
});

test("the platform package: os linux, cpu x64, preferUnplugged, the executable binary, no scripts", () => {
  const pkg = manifest(platformTarball);
  assert.equal(pkg.name, PLATFORM_PACKAGE);
  assert.equal(pkg.version, version);
  assert.deepEqual(pkg.os, ["linux"]);
  assert.deepEqual(pkg.cpu, ["x64"]);
  assert.equal(pkg.libc, undefined, "one static binary for glibc and musl: no libc field");
  assert.equal(pkg.preferUnplugged, true);
  assert.equal(pkg.scripts, undefined);
  assert.match(listing(platformTarball), /^-rwxr-xr-x .* package\/bin\/live-relay$/m);
});

test("the binary is static: readelf shows no NEEDED and no INTERP", () => {
  const dynamic = execFileSync("readelf", ["-d", binary], { encoding: "utf8" });
  const program = execFileSync("readelf", ["-l", binary], { encoding: "utf8" });
  assert.doesNotMatch(dynamic, /NEEDED/, dynamic);
  assert.doesNotMatch(program, /INTERP/, program);
});

test("sizes: the binary and the two tarballs, printed and capped", (t) => {
  const sizes = {
    binary: statSync(binary).size,
    platformTarball: statSync(platformTarball).size,
    mainTarball: statSync(mainTarball).size,
  };
  for (const [what, size] of Object.entries(sizes)) {
    const line = `${what}: ${size.toLocaleString("en")} bytes (${(size / 1e6).toFixed(2)} MB; cap ${CAPS[what].toLocaleString("en")})`;
    t.diagnostic(line);
  }
  for (const [what, size] of Object.entries(sizes)) assert.ok(size <= CAPS[what], `${what} ${size} > cap ${CAPS[what]}`);
});
