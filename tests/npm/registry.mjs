// A loopback npm registry for the tests: serves the packuments of the given tarballs (each manifest read from
// the tarball's own package.json, with dist.tarball and a sha512 dist.integrity) and the tarballs, and
// records every request. Enough for npm install / npx from http://127.0.0.1:<port>.
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { basename } from "node:path";

export async function startRegistry(tarballs) {
  const packages = new Map();
  for (const file of tarballs) {
    const data = readFileSync(file);
    const manifest = JSON.parse(execFileSync("tar", ["-xzOf", file, "package/package.json"], { encoding: "utf8" }));
    packages.set(manifest.name, { manifest, data, file: basename(file) });
  }
  const requests = [];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    requests.push(`${req.method} ${path}`);
    const send = (status, type, body) => {
      res.writeHead(status, { "content-type": type, "content-length": Buffer.byteLength(body) });
      res.end(body);
    };
    for (const [name, { manifest, data, file }] of packages) {
      if (path === `/${name}`) {
        const dist = {
          tarball: `${url}/-/${file}`,
          integrity: `sha512-${createHash("sha512").update(data).digest("base64")}`,
          shasum: createHash("sha1").update(data).digest("hex"),
        };
        const packument = {
          _id: name,
          name,
          "dist-tags": { latest: manifest.version },
          versions: { [manifest.version]: { ...manifest, _id: `${name}@${manifest.version}`, dist } },
        };
        return send(200, "application/json", JSON.stringify(packument));
      }
      if (path === `/-/${file}`) return send(200, "application/octet-stream", data);
    }
    send(404, "application/json", JSON.stringify({ error: "not found" }));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return { url, requests, close: () => new Promise((resolve) => server.close(resolve)) };
}
