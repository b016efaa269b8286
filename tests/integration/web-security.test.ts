import { spawnSync } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrate } from "../../lib/db/migrate.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { createUser } from "../../lib/auth/users.ts";
import { login } from "../../lib/auth/sessions.ts";
import { createToken, revokeToken } from "../../lib/auth/tokens.ts";
import { request } from "../../lib/web/client.ts";
import { ensureBuild, freePort, ROOT, startWebServer, type WebServer } from "../e2e/harness.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The built console served by scripts/web-server.ts, over real sockets:
 * HTTPS with its self-signed certificate on loopback; inside a network
 * namespace of this file's own, on a non-loopback address (198.51.100.1)
 * and on every interface (0.0.0.0), reached only from inside that
 * namespace. What must hold: the console over HTTPS and nothing over plain
 * HTTP; foreign Host names refused; state-changing requests (a real server
 * action) refused without the console's Origin, with the database unchanged;
 * the security headers on pages and API routes; no CSP violation in
 * Chromium on any page. Servers, namespaces and files are removed in
 * afterAll (and on exit), also when a test fails.
 */
const RUN = `nfws${randomBytes(3).toString("hex")}`;
const NS = `${RUN}-a`;
const NS_ADDR = "198.51.100.1";
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir = "";
/** SQLite, or PostgreSQL in vitest's postgresql project */
let tdb: TestDatabase;
let port = 0;
let base = "";
let web: WebServer;
/** An admin's session (opened with lib/auth's login, as the login form does): every request but the login tests carries it. */
let cookie = "";
let token = "";
/** API tokens of the admin: valid, revoked, expired. */
const bearers = { valid: "", revoked: "", expired: "" };
const servers: WebServer[] = [];
let nsCreated = false;

function ip(args: string[]): string {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

const deleteNs = () => {
  if (nsCreated) spawnSync("ip", ["netns", "del", NS]);
  nsCreated = false;
};
process.on("exit", deleteNs);

function farms(): string[] {
  return tdb.query<{ name: string }>("SELECT name FROM Farm ORDER BY name").map((r) => r.name);
}

/** The id Next.js gave a server action in this build (the same one the page's button posts). */
function actionId(exportedName: string): string {
  const distDir = path.join(ROOT, process.env.NATFARM_NEXT_DIST_DIR || ".next");
  const manifest = JSON.parse(fs.readFileSync(path.join(distDir, "server", "server-reference-manifest.json"), "utf8")) as {
    node: Record<string, { exportedName?: string; filename?: string }>;
  };
  const id = Object.entries(manifest.node).find(([, v]) => v.exportedName === exportedName)?.[0];
  if (!id) throw new Error(`no server action ${exportedName} in the build's manifest`);
  return id;
}

const get = (p: string, o: Parameters<typeof request>[1] = {}) => request(`${base}${p}`, { ca: web.ca!, servername: "localhost", ...o, headers: { Cookie: cookie, ...o.headers } });

/** Bytes in, bytes out over plain TCP (no TLS): what a plain-HTTP client gets. */
function plain(host: string, p: number, text: string): Promise<{ data: string; error: string | null }> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port: p });
    let data = "";
    let error: string | null = null;
    s.on("connect", () => s.write(text));
    s.on("data", (d: Buffer) => (data += d.toString("latin1")));
    s.on("error", (e) => (error = e.message));
    s.on("close", () => resolve({ data, error }));
    s.setTimeout(5000, () => s.destroy());
  });
}

/**
 * A client inside the namespace: `ip netns exec NS node` runs this script,
 * which makes the requests and prints what it got as JSON. The test process
 * itself stays in the root namespace and never talks to a non-loopback address.
 */
const NS_CLIENT = `
import https from "node:https";
import net from "node:net";
const jobs = JSON.parse(process.argv[2]);
const out = [];
for (const j of jobs) {
  if (j.kind === "https") {
    out.push(await new Promise((resolve) => {
      const req = https.request({ host: j.host, port: j.port, path: j.path, method: j.method || "GET", headers: j.headers || {}, ca: j.ca, servername: j.servername, rejectUnauthorized: !!j.ca, agent: false, timeout: 15000 }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body: body.slice(0, 20000) }));
      });
      req.on("error", (e) => resolve({ error: e.message }));
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.end(j.body);
    }));
  } else {
    out.push(await new Promise((resolve) => {
      const s = net.connect({ host: j.host, port: j.port });
      let data = "";
      let error = null;
      s.on("connect", () => s.write(j.text));
      s.on("data", (d) => (data += d.toString("latin1")));
      s.on("error", (e) => (error = e.message));
      s.on("close", () => resolve({ data, error }));
      s.setTimeout(5000, () => s.destroy());
    }));
  }
}
process.stdout.write(JSON.stringify(out));
`;

type NsJob = { kind: "https"; host: string; port: number; path: string; method?: string; headers?: Record<string, string>; ca?: string; servername?: string; body?: string } | { kind: "plain"; host: string; port: number; text: string };
type NsResult = { status?: number; headers?: Record<string, string>; body?: string; error?: string | null; data?: string };

function inNamespace(jobs: NsJob[]): NsResult[] {
  const script = path.join(dir, "ns-client.mjs");
  fs.writeFileSync(script, NS_CLIENT);
  const r = spawnSync("ip", ["netns", "exec", NS, process.execPath, script, JSON.stringify(jobs)], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`client in ${NS} failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as NsResult[];
}

async function startServer(name: string, env: Record<string, string>, netns?: string): Promise<WebServer> {
  const s = await startWebServer({
    logFile: path.join(dir, `${name}.log`),
    netns,
    // A server inside the namespace reaches a PostgreSQL server through its socket only.
    env: { NATFARM_DATABASE_URL: netns ? await tdb.netnsUrl() : tdb.url, NATFARM_TARGET: "none", NATFARM_TLS_DIR: path.join(dir, `tls-${name}`), ...env },
  });
  servers.push(s);
  return s;
}

beforeAll(async () => {
  await ensureBuild((m) => console.log(`[web-security] ${m}`));
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-web-security-"));
  tdb = await createTestDatabase("websec");
  await migrate(tdb.url);
  const db = getPrisma(tdb.url);
  await createUser(db, "admin", "admin", "web-security-password");
  const session = await login(db, { name: "admin", password: "web-security-password", address: "127.0.0.1" });
  if (!session.ok) throw new Error(session.message);
  token = session.token;
  cookie = `__Host-natfarm_session=${token}`;
  bearers.valid = (await createToken(db, { user: "admin", role: "viewer", name: "valid" })).secret;
  const revoked = await createToken(db, { user: "admin", name: "revoked" });
  await revokeToken(db, revoked.token.id);
  bearers.revoked = revoked.secret;
  bearers.expired = (await createToken(db, { user: "admin", name: "expired", expires: "1s", now: new Date(Date.now() - 60_000) })).secret;
  await disconnectPrisma(tdb.url);
  port = await freePort();
  base = `https://127.0.0.1:${port}`;
  web = await startServer("loopback", { NATFARM_HOST: "127.0.0.1", PORT: String(port) });
}, 600_000);

afterAll(async () => {
  const errors: unknown[] = [];
  for (const s of servers.splice(0).reverse()) await s.stop().catch((e: unknown) => errors.push(e));
  deleteNs();
  await tdb?.drop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  expect(errors).toEqual([]);
  expect(ip(["netns", "list"]).split("\n").filter((l) => l.startsWith(RUN))).toEqual([]);
}, 120_000);

describe("the console over HTTPS on loopback", () => {
  it("answers GET / with the farms page, over TLS with the certificate it printed", async () => {
    const r = await get("/");
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toMatch(/^text\/html/);
    expect(r.body).toMatch(/^<!DOCTYPE html>/i);
    expect(r.body).toMatch(/<h1[^>]*>Farms<\/h1>/);
    // Streamed through the custom server as Next.js wrote it (chunked, not buffered into one answer).
    expect(r.headers["transfer-encoding"]).toBe("chunked");
    // The certificate served is the one whose fingerprint was printed, and it names 127.0.0.1, ::1 and localhost.
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const s = tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false }, () => {
        const c = s.getPeerX509Certificate();
        s.end();
        if (c) resolve(c);
        else reject(new Error("no peer certificate"));
      });
      s.on("error", reject);
    });
    expect(web.fingerprint).toBe(served.fingerprint256);
    expect(served.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(served.checkIP("::1")).toBe("::1");
    expect(served.checkHost("localhost")).toBe("localhost");
    expect(served.checkHost(os.hostname().toLowerCase())).toBeTruthy();
    expect(web.log()).toMatch(/natfarm web: serving https:\/\/localhost:\d+ .*SHA-256 fingerprint [0-9A-F:]{95}/);
    // Trusted as a CA for exactly this certificate, its names verify (no -k).
    expect((await request(`https://localhost:${port}/`, { ca: web.ca!, headers: { Cookie: cookie } })).status).toBe(200);
    // Key readable only by the server's user.
    expect(fs.statSync(path.join(dir, "tls-loopback", "key.pem")).mode & 0o777).toBe(0o600);
  });

  it("a plain-HTTP request to the HTTPS port gets no console page", async () => {
    const r = await plain("127.0.0.1", port, `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    expect(r.data).not.toMatch(/HTTP\/1\.[01] \d{3}/);
    expect(r.data).not.toMatch(/Farms|<html/i);
  });

  it("a foreign Host is refused (421) before Next.js (DNS rebinding)", async () => {
    for (const host of ["evil.example", `evil.example:${port}`, `127.0.0.1.evil.example:${port}`]) {
      const r = await get("/", { headers: { Host: host } });
      expect(r.status, host).toBe(421);
      expect(r.body).not.toMatch(/<html/i);
      expect(r.headers["x-frame-options"]).toBe("DENY");
    }
    expect((await get("/api/tables", { headers: { Host: "evil.example" } })).status).toBe(421);
    for (const host of [`localhost:${port}`, `[::1]:${port}`, "localhost", `${os.hostname()}:${port}`]) expect((await get("/", { headers: { Host: host } })).status, host).toBe(200);
  });

  it("a server action from a foreign Origin, or with none, is refused (403) and changes nothing; from the console's own origin it runs", async () => {
    const id = actionId("createGuideExampleAction");
    const action = (headers: Record<string, string>) =>
      get("/", {
        method: "POST",
        headers: { "Next-Action": id, "Content-Type": "text/plain;charset=UTF-8", Accept: "text/x-component", ...headers },
        body: JSON.stringify([{ status: "idle", message: "", errors: {}, stamp: 0 }]),
      });
    expect(farms()).toEqual([]);
    const refused: Record<string, string>[] = [{ Origin: "https://evil.example" }, {}, { Origin: "null" }, { Origin: `http://127.0.0.1:${port}` }, { Origin: `https://127.0.0.1:${port + 1}` }, { "Sec-Fetch-Site": "cross-site" }];
    for (const h of refused) {
      const r = await action(h);
      expect(r.status, JSON.stringify(h)).toBe(403);
      expect(r.headers["content-type"]).toMatch(/^text\/plain/);
    }
    // A plain form post from elsewhere, too.
    expect((await get("/farms/new", { method: "POST", headers: { Origin: "https://evil.example", "Content-Type": "application/x-www-form-urlencoded" }, body: "name=x" })).status).toBe(403);
    expect(farms()).toEqual([]);
    expect(web.log()).toMatch(/refused POST \/ from 127\.0\.0\.1: 403/);

    const ok = await action({ Origin: `https://127.0.0.1:${port}` });
    expect(ok.status).toBe(200);
    expect(ok.headers["content-type"]).toMatch(/text\/x-component/);
    expect(farms()).toEqual(["app"]);
  });

  it("without a session: pages go to /login, API routes and server actions get 401 and change nothing; the login page and static files are public", async () => {
    const anon = { Cookie: "" };
    const before = farms();
    const page = await get("/farms/app", { headers: anon });
    expect(page.status).toBe(303);
    expect(page.headers.location).toBe("/login?next=%2Ffarms%2Fapp");
    expect((await get("/", { headers: anon })).headers.location).toBe("/login");
    const forged = await get("/", { headers: { Cookie: "__Host-natfarm_session=forged" } });
    expect(forged.status).toBe(303);
    for (const p of ["/api/tables", "/api/drift", "/api/farms/health", "/api/health-events", "/api/agent"]) {
      const r = await get(p, { headers: anon });
      expect(r.status, p).toBe(401);
      expect(r.body).not.toMatch(/"farms"/);
    }
    const action = await get("/", {
      method: "POST",
      headers: { ...anon, Origin: `https://127.0.0.1:${port}`, "Next-Action": actionId("deleteFarmAction"), "Content-Type": "text/plain;charset=UTF-8", Accept: "text/x-component" },
      body: JSON.stringify([{ status: "idle", message: "", errors: {}, stamp: 0 }]),
    });
    expect(action.status).toBe(401);
    // Posted to the public login page's URL, the action refuses by itself.
    const viaLogin = await get("/login", {
      method: "POST",
      headers: { ...anon, Origin: `https://127.0.0.1:${port}`, "Next-Action": actionId("createGuideExampleAction"), "Content-Type": "text/plain;charset=UTF-8", Accept: "text/x-component" },
      body: JSON.stringify([{ status: "idle", message: "", errors: {}, stamp: 0 }]),
    });
    // (Next.js does not run it there, or the action's own check refuses it: either way nothing happens.)
    expect(viaLogin.body).not.toMatch(/"status":"ok"/);
    expect(farms()).toEqual(before);
    const login = await get("/login", { headers: anon });
    expect(login.status).toBe(200);
    expect(login.body).toMatch(/<h1[^>]*>Log in<\/h1>/);
    const css = /href="(\/_next\/static\/[^"]+\.css)"/.exec(login.body)?.[1];
    expect((await get(css!, { headers: anon })).status).toBe(200);
  });

  it("API routes take an API token (Bearer); revoked, expired or unknown ones get 401; pages do not take tokens", async () => {
    const anon = { Cookie: "" };
    const auth = (secret: string) => ({ ...anon, Authorization: `Bearer ${secret}` });
    const ok = await get("/api/farms/health", { headers: auth(bearers.valid) });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toHaveProperty("degraded");
    for (const s of [bearers.revoked, bearers.expired, "nft_unknown"]) {
      const r = await get("/api/farms/health", { headers: auth(s) });
      expect(r.status).toBe(401);
      expect(r.body).toMatch(/unknown, expired or revoked/);
    }
    expect((await get("/", { headers: auth(bearers.valid) })).status).toBe(303);
  });

  it("every answer carries the security headers: pages, API routes, static files, refusals", async () => {
    const page = await get("/");
    const css = /href="(\/_next\/static\/[^"]+\.css)"/.exec(page.body)?.[1];
    expect(css).toBeTruthy();
    for (const r of [page, await get("/api/tables"), await get("/api/farms/health"), await get(css!), await get("/nope"), await get("/", { method: "POST" })]) {
      expect(r.headers).toMatchObject({
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "strict-transport-security": "max-age=31536000",
      });
      const csp = r.headers["content-security-policy"] as string;
      for (const d of ["frame-ancestors 'none'", "object-src 'none'", "base-uri 'self'", "form-action 'self'", "default-src 'self'"]) expect(csp).toContain(d);
      expect(r.headers["x-powered-by"]).toBeUndefined();
    }
  });

  it("renders in Chromium with no CSP violation and no page error on any page", async () => {
    let browser: Browser | null = null;
    try {
      browser = await chromium.launch({
        executablePath: process.env.NATFARM_E2E_CHROMIUM ?? "/usr/bin/chromium",
        headless: true,
        args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      });
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      await context.addCookies([{ name: "__Host-natfarm_session", value: token, url: `${base}/`, secure: true, httpOnly: true, sameSite: "Strict" }]);
      await context.route((u) => !u.href.startsWith(`${base}/`) && u.protocol !== "data:" && u.protocol !== "blob:", (r) => r.abort("blockedbyclient"));
      const problems: string[] = [];
      const page = await context.newPage();
      page.on("console", (m) => {
        if (m.type() === "error" || /Content Security Policy|Refused to/i.test(m.text())) problems.push(`${page.url()}: console ${m.type()}: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`${page.url()}: ${e.message}`));
      await page.addInitScript(() => {
        document.addEventListener("securitypolicyviolation", (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
      });
      // (/lab is the lab's page: with NATFARM_TARGET=none it shows Not Found, which must render cleanly too;
      // the document's own 404 is the one console error expected there.)
      const statuses: Record<string, number | undefined> = {};
      for (const p of ["/", "/farms/app", "/tables", "/history", "/lab"]) {
        const r = await page.goto(`${base}${p}`, { waitUntil: "networkidle" });
        statuses[p] = r?.status();
        if (p === "/lab") problems.splice(0, problems.length, ...problems.filter((m) => !/Failed to load resource: the server responded with a status of 404/.test(m)));
        const heading = await page.locator("h1").first().textContent({ timeout: 20_000 }).catch(() => null);
        if (!heading) problems.push(`${p}: no heading rendered`);
      }
      expect(problems).toEqual([]);
      expect(statuses).toEqual({ "/": 200, "/farms/app": 200, "/tables": 200, "/history": 200, "/lab": statuses["/lab"] === 404 ? 404 : 200 });
      // Hydrated: client navigation works.
      await page.goto(`${base}/`);
      await page.getByRole("table", { name: "Farms" }).getByRole("link", { name: "app", exact: true }).click();
      await page.waitForURL(`${base}/farms/app`);
      await sleep(500);
      expect(problems).toEqual([]);
    } finally {
      await browser?.close();
    }
  });
});

describe("the console on a non-loopback address (inside a namespace of this test)", () => {
  let nsCa = "";
  const nsPort = 3443;

  beforeAll(() => {
    ip(["netns", "add", NS]);
    nsCreated = true;
    ip(["-n", NS, "link", "set", "lo", "up"]);
    ip(["-n", NS, "link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    ip(["-n", NS, "addr", "add", `${NS_ADDR}/24`, "dev", "v0"]);
    ip(["-n", NS, "link", "set", "v0", "up"]);
    ip(["-n", NS, "link", "set", "v1", "up"]);
  });

  it("NATFARM_TLS=off is refused there: the server does not start and nothing listens", async () => {
    await expect(startServer("ns-plain", { NATFARM_HOST: NS_ADDR, PORT: String(nsPort), NATFARM_TLS: "off" }, NS)).rejects.toThrow(/NATFARM_TLS=off \(plain HTTP\) is only allowed on a loopback address/);
    expect(ip(["netns", "exec", NS, "ss", "-Hltn"]).trim()).toBe("");
  });

  it(`listening on ${NS_ADDR}: HTTPS answers, plain HTTP gets nothing, foreign names are refused`, async () => {
    const s = await startServer("ns-addr", { NATFARM_HOST: NS_ADDR, PORT: String(nsPort) }, NS);
    nsCa = s.ca!;
    expect(s.url).toBe(`https://${NS_ADDR}:${nsPort}`);
    expect(new X509Certificate(nsCa).checkIP(NS_ADDR)).toBe(NS_ADDR);
    // The only listening socket in the namespace is the console's TLS port.
    expect(ip(["netns", "exec", NS, "ss", "-Hltn"]).trim().split("\n").map((l) => l.trim().split(/\s+/)[3])).toEqual([`${NS_ADDR}:${nsPort}`]);
    const [page, plainHttp, plain80, evil, noOrigin, evilOrigin] = inNamespace([
      { kind: "https", host: NS_ADDR, port: nsPort, path: "/", ca: nsCa, headers: { Cookie: cookie } },
      { kind: "plain", host: NS_ADDR, port: nsPort, text: `GET / HTTP/1.1\r\nHost: ${NS_ADDR}:${nsPort}\r\nConnection: close\r\n\r\n` },
      { kind: "plain", host: NS_ADDR, port: 80, text: `GET / HTTP/1.1\r\nHost: ${NS_ADDR}\r\nConnection: close\r\n\r\n` },
      { kind: "https", host: NS_ADDR, port: nsPort, path: "/", ca: nsCa, servername: "localhost", headers: { Host: "evil.example" } },
      { kind: "https", host: NS_ADDR, port: nsPort, path: "/", ca: nsCa, method: "POST", body: "x" },
      { kind: "https", host: NS_ADDR, port: nsPort, path: "/", ca: nsCa, method: "POST", body: "x", headers: { Origin: "https://evil.example" } },
    ]);
    expect(page!.status).toBe(200);
    expect(page!.body).toMatch(/<h1[^>]*>Farms<\/h1>/);
    expect(page!.headers!["strict-transport-security"]).toBe("max-age=31536000");
    expect(plainHttp!.data).not.toMatch(/HTTP\/1\.[01] \d{3}|<html/i);
    expect(plain80!.data).toBe("");
    expect(plain80!.error).toMatch(/ECONNREFUSED/);
    expect(evil!.status).toBe(421);
    expect(noOrigin!.status).toBe(403);
    expect(evilOrigin!.status).toBe(403);
    expect(farms()).toEqual(["app"]);
    await s.stop();
  });

  it("listening on 0.0.0.0: the interface address is one of its names (and in its certificate), others are not", async () => {
    const s = await startServer("ns-any", { NATFARM_HOST: "0.0.0.0", PORT: String(nsPort) }, NS);
    const ca = s.ca!;
    expect(new X509Certificate(ca).checkIP(NS_ADDR)).toBe(NS_ADDR);
    // The operator is told every URL it answers on, with the fingerprint to check in the browser.
    expect(s.log()).toMatch(new RegExp(`serving https://\\S+:${nsPort} \\(listening on 0\\.0\\.0\\.0:${nsPort}; also https://${NS_ADDR.replace(/\./g, "\\.")}:${nsPort}\\); .*SHA-256 fingerprint [0-9A-F:]{95}`));
    const [byAddr, byLoopback, evil, plainHttp] = inNamespace([
      { kind: "https", host: NS_ADDR, port: nsPort, path: "/api/farms/health", ca, headers: { Cookie: cookie } },
      { kind: "https", host: "127.0.0.1", port: nsPort, path: "/api/farms/health", ca, headers: { Cookie: cookie } },
      { kind: "https", host: NS_ADDR, port: nsPort, path: "/", ca, servername: "localhost", headers: { Host: `evil.example:${nsPort}` } },
      { kind: "plain", host: NS_ADDR, port: nsPort, text: `GET / HTTP/1.1\r\nHost: ${NS_ADDR}:${nsPort}\r\nConnection: close\r\n\r\n` },
    ]);
    expect(byAddr!.status).toBe(200);
    expect(byLoopback!.status).toBe(200);
    expect(evil!.status).toBe(421);
    expect(plainHttp!.data).not.toMatch(/HTTP\/1\.[01] \d{3}|<html/i);
    await s.stop();
  });
});
