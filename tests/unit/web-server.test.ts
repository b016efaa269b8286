import fs from "node:fs";
import type http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { request } from "../../lib/web/client.ts";
import { parseWebConfig, type SystemNames } from "../../lib/web/config.ts";
import { createWebServer } from "../../lib/web/server.ts";
import { ensureSelfSigned, type LoadedCertificate } from "../../lib/web/tls.ts";

/**
 * The guard in front of Next.js, with a stub handler standing in for it, on
 * real loopback sockets: what is refused never reaches the handler, what
 * passes does, every answer carries the security headers.
 */
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-web-server-"));
const sys: SystemNames = { hostname: "lb1", interfaceAddresses: [] };
const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
const servers: http.Server[] = [];
let cert: LoadedCertificate;
let port: number;
let base: string;
const logs: string[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function serve(env: Record<string, string>, o: { upgrade?: boolean } = {}): Promise<number> {
  const p = await freePort();
  const config = parseWebConfig({ ...env, PORT: String(p) }, { root: tmp, defaultTlsDir: () => path.join(tmp, "tls") });
  const { server } = createWebServer({
    config,
    system: () => sys,
    tls: config.scheme === "https" ? cert : null,
    log: (m) => logs.push(m),
    handler: (req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
        res.setHeader("Content-Type", "text/plain");
        res.end(`handled ${req.method} ${req.url}`);
      });
    },
    upgrade: o.upgrade
      ? (_req, socket) => {
          socket.end("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
        }
      : undefined,
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(p, "127.0.0.1", r));
  return p;
}

beforeAll(async () => {
  cert = await ensureSelfSigned({ dir: path.join(tmp, "tls"), required: ["localhost", "127.0.0.1", "::1", "lb1"], hostname: "lb1" });
  port = await serve({});
  base = `https://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

const get = (p: string, headers: Record<string, string> = {}, method = "GET", body?: string) => request(`${base}${p}`, { ca: cert.cert, headers, method, body, servername: "localhost" });
const count = () => seen.length;

/** Raw bytes over TLS (or plain TCP), for requests an HTTP client would not send. */
function raw(text: string, o: { tls: boolean; p?: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = o.tls ? tls.connect({ host: "127.0.0.1", port: o.p ?? port, ca: cert.cert, servername: "localhost" }) : net.connect({ host: "127.0.0.1", port: o.p ?? port });
    let out = "";
    s.on(o.tls ? "secureConnect" : "connect", () => s.write(text));
    s.on("data", (d: Buffer) => (out += d.toString("latin1")));
    s.on("close", () => resolve(out));
    s.on("error", (e) => (out ? resolve(out) : reject(e)));
    s.setTimeout(5000, () => s.destroy());
  });
}

describe("the console's server, before Next.js", () => {
  it("serves HTTPS with the certificate (its names verified), security headers on every answer", async () => {
    const r = await get("/");
    expect(r.status).toBe(200);
    expect(r.body).toBe("handled GET /");
    for (const url of [`https://localhost:${port}/`, `https://127.0.0.1:${port}/x`]) expect((await request(url, { ca: cert.cert })).status).toBe(200);
    expect(r.headers).toMatchObject({
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
      "strict-transport-security": "max-age=31536000",
    });
    expect(r.headers["content-security-policy"]).toMatch(/frame-ancestors 'none'/);
  });

  it("a foreign Host gets 421 and never reaches the handler (DNS rebinding)", async () => {
    const before = count();
    const r = await get("/", { Host: `evil.example:${port}` });
    expect(r.status).toBe(421);
    expect(r.body).toMatch(/not a name of this console/);
    expect(r.headers["x-frame-options"]).toBe("DENY");
    expect(r.headers["content-security-policy"]).toBeDefined();
    expect((await get("/", { Host: "lb1" })).status).toBe(200);
    expect(count()).toBe(before + 1);
    expect(logs.join("\n")).toMatch(/refused GET \/ from 127\.0\.0\.1: 421/);
  });

  it("a state-changing request without the console's Origin gets 403; its body is not read", async () => {
    const before = count();
    const big = "x".repeat(2_000_000);
    const refused: Record<string, string>[] = [{}, { Origin: "https://evil.example" }, { Origin: "null" }, { Origin: `http://127.0.0.1:${port}` }, { "Sec-Fetch-Site": "cross-site" }];
    for (const h of refused) {
      const r = await get("/", h, "POST", big).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
      // The server may close before the whole body is sent: either the 403 or a reset, never the handler.
      if (r.status !== -1) expect(r.status, JSON.stringify(h)).toBe(403);
    }
    for (const m of ["PUT", "DELETE", "PATCH"]) expect((await get("/api/x", { Origin: "https://evil.example" }, m)).status).toBe(403);
    expect(count()).toBe(before);
    const ok = await get("/", { Origin: `https://127.0.0.1:${port}`, "Next-Action": "abc" }, "POST", "[1]");
    expect(ok.status).toBe(200);
    expect(seen.at(-1)).toMatchObject({ method: "POST", body: "[1]" });
    expect((await get("/", { "Sec-Fetch-Site": "same-origin" }, "POST", "y")).status).toBe(200);
  });

  it("a bearer-only /api/v1 request (Authorization: Bearer, no Cookie) needs no Origin; a cookie, another path or scheme keeps the check", async () => {
    const before = count();
    const bearer = { Authorization: "Bearer nft_abc" };
    const refused: [string, Record<string, string>][] = [
      ["/api/v1/farms", { ...bearer, Cookie: "__Host-natfarm_session=x" }],
      ["/api/v1/farms", { ...bearer, Cookie: "" }],
      ["/api/v1/farms", { ...bearer, Cookie: "a=b", Origin: "https://evil.example" }],
      ["/api/farms", bearer],
      ["/", bearer],
      ["/api/v1/farms", { Authorization: "Basic YTpi" }],
      ["/api/v1/farms", { Authorization: "Bearer" }],
      ["/api/v1/farms", {}],
    ];
    for (const [p, h] of refused) expect((await get(p, h, "POST", "{}")).status, `${p} ${JSON.stringify(h)}`).toBe(403);
    expect(count()).toBe(before);
    for (const m of ["POST", "PUT", "PATCH", "DELETE"]) expect((await get("/api/v1/farms/x", bearer, m, m === "DELETE" ? undefined : "{}")).status, m).toBe(200);
    // The Origin, when sent, is not what lets it through: a foreign one on a bearer-only request is still not CSRF (no cookie rides along).
    expect((await get("/api/v1/farms", { ...bearer, Origin: "https://evil.example" }, "POST", "{}")).status).toBe(200);
    expect(count()).toBe(before + 5);
  });

  it("proxy headers are dropped before the handler (Next.js would trust x-forwarded-host for its own origin check)", async () => {
    await get("/fwd", { "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", Forwarded: "host=evil.example" });
    const h = seen.at(-1)!.headers;
    expect(h["x-forwarded-host"]).toBeUndefined();
    expect(h["x-forwarded-proto"]).toBeUndefined();
    expect(h.forwarded).toBeUndefined();
  });

  it("refuses an absolute request target and a doubled Origin", async () => {
    const abs = await raw(`GET https://evil.example/ HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, { tls: true });
    expect(abs).toMatch(/^HTTP\/1\.1 400/);
    const two = await raw(`POST / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: https://127.0.0.1:${port}\r\nOrigin: https://evil.example\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, { tls: true });
    expect(two).toMatch(/^HTTP\/1\.1 403/);
  });

  it("plain HTTP to the HTTPS port gets no HTTP answer at all", async () => {
    const before = count();
    const out = await raw(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`, { tls: false });
    expect(out).not.toMatch(/HTTP\/1\.[01] \d{3}/);
    await expect(request(`http://127.0.0.1:${port}/`, { timeoutMs: 5000 })).rejects.toThrow();
    expect(count()).toBe(before);
  });

  it("WebSocket upgrades: refused without a handler; with one, only from the console's origin", async () => {
    const ws = (origin: string, p = port) =>
      raw(`GET /_next/webpack-hmr HTTP/1.1\r\nHost: 127.0.0.1:${p}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nOrigin: ${origin}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`, { tls: true, p });
    expect(await ws(`https://127.0.0.1:${port}`)).toMatch(/^HTTP\/1\.1 404/);
    const p2 = await serve({}, { upgrade: true });
    expect(await ws(`https://127.0.0.1:${p2}`, p2)).toMatch(/^HTTP\/1\.1 101/);
    expect(await ws("https://evil.example", p2)).toMatch(/^HTTP\/1\.1 403/);
  });

  it("NATFARM_TLS=off on loopback: plain HTTP, http origins, no HSTS", async () => {
    const p = await serve({ NATFARM_TLS: "off" });
    const r = await request(`http://127.0.0.1:${p}/`);
    expect(r.status).toBe(200);
    expect(r.headers["strict-transport-security"]).toBeUndefined();
    expect(r.headers["x-frame-options"]).toBe("DENY");
    expect((await request(`http://127.0.0.1:${p}/`, { method: "POST", headers: { Origin: `http://127.0.0.1:${p}` } })).status).toBe(200);
    expect((await request(`http://127.0.0.1:${p}/`, { method: "POST", headers: { Origin: `https://127.0.0.1:${p}` } })).status).toBe(403);
  });
});
