import { labBalancerRules } from "../helpers/lab.ts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { login } from "../../lib/auth/sessions.ts";
import { createToken, revokeToken } from "../../lib/auth/tokens.ts";
import { openApiDocument } from "../../lib/api/openapi.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { request } from "../../lib/web/client.ts";
import { namespacesOf, startConsole, type Console } from "../e2e/harness.ts";
import { chiSquare } from "../helpers/stats.ts";

/**
 * The REST API /api/v1 over real HTTPS against the built console and a lab
 * of its own (namespaces with a unique prefix, removed in afterAll): with
 * API tokens of each role, no cookie and no Origin (the front server's one
 * exemption from the Origin check). A farm is created, read, re-weighted
 * and deleted, and its rules are checked in the lab balancer's own
 * iptables-save; lab traffic sent through the API follows its weights, and
 * skips a backend drained through the API; refusals (viewer 403, operator
 * on settings 403, revoked and expired 401, stale If-Match 409, bad input
 * 400/413) change nothing in the database or the kernel; every action is
 * in GET /api/v1/audit with its actor and address.
 */
const VIP = "198.51.100.241";
const FARM = "apifarm";

let c: Console;
const tokens = { admin: "", operator: "", viewer: "", revoked: "", expired: "" };
/** The viewer's session cookie (the browser's way in). */
let viewerCookie = "";

beforeAll(async () => {
  c = await startConsole({ backends: 2, login: null, log: (m) => console.log(`[rest-api] ${m}`) });
  const url = c.dbUrl;
  const db = getPrisma(url);
  tokens.admin = (await createToken(db, { user: "admin", name: "api-admin" })).secret;
  tokens.operator = (await createToken(db, { user: "oper", name: "api-oper" })).secret;
  tokens.viewer = (await createToken(db, { user: "vera", name: "api-viewer" })).secret;
  const r = await createToken(db, { user: "admin", name: "api-revoked" });
  await revokeToken(db, r.token.id);
  tokens.revoked = r.secret;
  tokens.expired = (await createToken(db, { user: "admin", name: "api-expired", expires: "1s", now: new Date(Date.now() - 60_000) })).secret;
  const s = await login(db, { name: "vera", password: "viewer-password-e2e", address: "127.0.0.1" });
  if (!s.ok) throw new Error(s.message);
  viewerCookie = `__Host-natfarm_session=${s.token}`;
  await disconnectPrisma(url);
}, 600_000);

afterAll(async () => {
  if (!c) return;
  const lab = c.lab.name;
  await c.stop();
  expect(namespacesOf(lab)).toEqual([]);
}, 120_000);

type Who = keyof typeof tokens;
async function api(method: string, p: string, o: { as?: Who; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...(o.as ? { Authorization: `Bearer ${tokens[o.as]}` } : {}), ...o.headers };
  let body: string | Buffer | undefined = o.raw;
  if (o.body !== undefined) body = JSON.stringify(o.body);
  if (body !== undefined) headers["Content-Type"] ??= "application/json";
  const r = await request(`${c.baseUrl}${p}`, { method, headers, body, ca: c.ca ?? undefined, servername: "localhost", timeoutMs: 60_000 });
  let json: any = null;
  try {
    json = JSON.parse(r.body);
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, json, text: r.body };
}

const labRules = () => labBalancerRules(c.lab.lbNs);

function dbState() {
  return JSON.stringify({
    farms: c.query("SELECT name, vip, ports, mode, status, scheduler FROM Farm ORDER BY name"),
    backends: c.query("SELECT ip, port, weight, state, mark FROM Backend ORDER BY mark"),
  });
}

function farmBody() {
  const port = c.lab.ports[0]!;
  return {
    name: FARM,
    vip: VIP,
    ports: String(port),
    protocol: "tcp",
    mode: "nat",
    backends: c.lab.backends.map((b) => ({ ip: b.ip, port, weight: 50 })),
  };
}

describe("REST API /api/v1 with tokens", () => {
  let etag = "";

  it("lists farms (none yet) for every role", async () => {
    for (const who of ["admin", "operator", "viewer"] as const) {
      const r = await api("GET", "/api/v1/farms", { as: who });
      expect(r.status, who).toBe(200);
      expect(r.json).toEqual({ farms: [], versions: {} });
    }
  });

  it("an unknown, revoked or expired token, or none, gets 401 JSON", async () => {
    for (const who of ["revoked", "expired"] as const) {
      const r = await api("GET", "/api/v1/farms", { as: who });
      expect(r.status, who).toBe(401);
      expect(r.json.error).toMatch(/unknown, expired or revoked/);
      const w = await api("POST", "/api/v1/farms", { as: who, body: farmBody() });
      expect(w.status, who).toBe(401);
    }
    expect((await api("GET", "/api/v1/farms")).status).toBe(401);
    expect((await api("GET", "/api/v1/farms", { headers: { Authorization: "Bearer nft_nope" } })).status).toBe(401);
    expect(dbState()).toBe(JSON.stringify({ farms: [], backends: [] }));
  });

  it("a viewer's or operator's create gets 403 and changes nothing", async () => {
    const rules = labRules();
    for (const who of ["viewer", "operator"] as const) {
      const r = await api("POST", "/api/v1/farms", { as: who, body: farmBody() });
      expect(r.status, who).toBe(403);
      expect(r.json.error).toMatch(/needs the admin role/);
    }
    expect(dbState()).toBe(JSON.stringify({ farms: [], backends: [] }));
    expect(labRules()).toBe(rules);
  });

  it("an admin token creates a farm: 201, ETag, and its rules in the lab's kernel", async () => {
    const r = await api("POST", "/api/v1/farms", { as: "admin", body: farmBody() });
    expect(r.status, r.text).toBe(201);
    expect(r.json.outcome).toBe("applied");
    expect(r.headers.etag).toMatch(/^"[\w-]+"$/);
    expect(r.headers.location).toBe(`/api/v1/farms/${FARM}`);
    etag = r.headers.etag as string;
    const rules = labRules();
    expect(rules).toContain(VIP);
    expect(rules).toMatch(new RegExp(`FARM_${FARM}_`));
    expect(rules).toMatch(/--probability 0\.(5|49999)/);
    const g = await api("GET", `/api/v1/farms/${FARM}`, { as: "viewer" });
    expect(g.status).toBe(200);
    expect(g.headers.etag).toBe(etag);
    expect(g.json).toMatchObject({ name: FARM, vip: VIP, backends: [{ weight: 50 }, { weight: 50 }] });
    expect(g.json.backends[0].mark).toMatch(/^0x[0-9a-f]+$/);
    const l = await api("GET", "/api/v1/farms", { as: "viewer" });
    expect(l.json.farms.map((f: { name: string }) => f.name)).toEqual([FARM]);
    expect(l.json.versions[FARM]).toBe(etag);
    // The same name again: 400 on "name".
    const again = await api("POST", "/api/v1/farms", { as: "admin", body: farmBody() });
    expect(again.status).toBe(400);
    expect(again.json.issues.map((i: { path: string }) => i.path)).toContain("name");
  });

  it("a viewer's weight change gets 403; an operator's PATCH of a weight is applied, with a new ETag", async () => {
    const before = dbState();
    const rules = labRules();
    const current = (await api("GET", `/api/v1/farms/${FARM}`, { as: "admin" })).json;
    const backends = current.backends.map((b: Record<string, unknown>, i: number) => ({ ...b, weight: i === 0 ? 80 : 20 }));
    const v = await api("PATCH", `/api/v1/farms/${FARM}`, { as: "viewer", body: { backends }, headers: { "If-Match": etag } });
    expect(v.status).toBe(403);
    expect(dbState()).toBe(before);
    expect(labRules()).toBe(rules);
    // An operator may not change the farm's settings (the VIP's port) ...
    const s = await api("PATCH", `/api/v1/farms/${FARM}`, { as: "operator", body: { scheduler: "roundrobin" } });
    expect(s.status).toBe(403);
    expect(s.json.error).toMatch(/admin/);
    expect(dbState()).toBe(before);
    // ... but may change weights.
    const r = await api("PATCH", `/api/v1/farms/${FARM}`, { as: "operator", body: { backends }, headers: { "If-Match": etag } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.outcome).toBe("applied");
    expect(r.headers.etag).not.toBe(etag);
    expect(c.query("SELECT weight FROM Backend ORDER BY position")).toEqual([{ weight: 80 }, { weight: 20 }]);
    expect(labRules()).toMatch(/--probability 0\.(8|79999)/);
    // The marks did not move.
    expect(r.json.farmConfig.backends.map((b: { mark: string }) => b.mark)).toEqual(current.backends.map((b: { mark: string }) => b.mark));
    const stale = etag;
    etag = r.headers.etag as string;

    // A write with the old version: 409, nothing changes.
    const mid = dbState();
    const midRules = labRules();
    const put = await api("PUT", `/api/v1/farms/${FARM}`, { as: "admin", body: { ...farmBody(), scheduler: "roundrobin" }, headers: { "If-Match": stale } });
    expect(put.status).toBe(409);
    expect(put.headers.etag).toBe(etag);
    const del = await api("DELETE", `/api/v1/farms/${FARM}`, { as: "admin", headers: { "If-Match": stale } });
    expect(del.status).toBe(409);
    expect(dbState()).toBe(mid);
    expect(labRules()).toBe(midRules);
  });

  it("lab traffic sent through the API follows the weights; a backend drained through the API gets none, and comes back", async () => {
    const run = async (connections: number) => {
      const r = await api("POST", "/api/v1/lab/traffic", { as: "operator", body: { farm: FARM, connections } });
      expect(r.status, r.text).toBe(200);
      expect(r.json.ok).toBe(connections);
      return r.json.backends.map((b: { count: number }) => b.count) as number[];
    };
    const counts = await run(1000);
    const fit = chiSquare(counts, [80, 20]);
    expect(fit.pass, `${counts} against 80:20, chi-square ${fit.statistic.toFixed(2)} (critical ${fit.critical})`).toBe(true);
    // The viewer may not drain, nor send traffic: 403, nothing changes.
    const before = dbState();
    const rules = labRules();
    const backends = (await api("GET", `/api/v1/farms/${FARM}/backends`, { as: "viewer" })).json.backends;
    const first = backends[0].mark as string;
    expect((await api("POST", `/api/v1/farms/${FARM}/backends/${first}/drain`, { as: "viewer", headers: { "If-Match": etag } })).status).toBe(403);
    expect((await api("POST", "/api/v1/lab/traffic", { as: "viewer", body: { farm: FARM, connections: 5 } })).status).toBe(403);
    expect(dbState()).toBe(before);
    expect(labRules()).toBe(rules);
    // The operator drains the first backend: new connections all go to the second.
    const d = await api("POST", `/api/v1/farms/${FARM}/backends/${first}/drain`, { as: "operator", headers: { "If-Match": etag } });
    expect(d.status, d.text).toBe(200);
    expect(d.json.farmConfig.backends[0].state).toBe("maintenance");
    expect(d.headers.etag).not.toBe(etag);
    expect(c.query("SELECT state FROM Backend ORDER BY position")).toEqual([{ state: "maintenance" }, { state: "up" }]);
    expect(await run(50)).toEqual([0, 50]);
    // A stale version cannot put it back.
    expect((await api("POST", `/api/v1/farms/${FARM}/backends/${first}/enable`, { as: "operator", headers: { "If-Match": etag } })).status).toBe(409);
    const e = await api("POST", `/api/v1/farms/${FARM}/backends/${first}/enable`, { as: "operator", headers: { "If-Match": d.headers.etag as string } });
    expect(e.status, e.text).toBe(200);
    // Back as it was: the same version.
    expect(e.headers.etag).toBe(etag);
    expect(Math.min(...(await run(100)))).toBeGreaterThan(0);
  }, 120_000);

  it("a bad-input corpus gets 400 (413 when too large) with field paths and changes nothing", async () => {
    const before = dbState();
    const rules = labRules();
    const base = farmBody();
    const cases: { body?: unknown; raw?: string; status: number; paths: string[]; method?: string; path?: string; headers?: Record<string, string> }[] = [
      { body: { ...base, name: "x2", vip: "198.51.100.242", backends: [{ ip: base.backends[0]!.ip, weight: "heavy" }] }, status: 400, paths: ["backends.0.weight"] },
      { body: { ...base, name: "x3", vip: "198.51.100.243", backends: [base.backends[0], { ...base.backends[1], weight: 0 }] }, status: 400, paths: ["backends.1.weight"] },
      { body: { ...base, name: "x4", vip: 12 }, status: 400, paths: ["vip"] },
      { body: { ...base, name: "x5", vip: "198.51.100.245", colour: "red" }, status: 400, paths: ["colour"] },
      { body: { ...base, name: "x6", vip: "198.51.100.246", backends: [{ ...base.backends[0], sudo: true }] }, status: 400, paths: ["backends.0.sudo"] },
      { body: { ...base, name: "x;rm -rf /", vip: "198.51.100.247" }, status: 400, paths: ["name"] },
      { body: { ...base, name: "$(reboot)", vip: "198.51.100.248" }, status: 400, paths: ["name"] },
      { body: { ...base, name: "x9", vip: "198.51.100.249", ports: "80`id`" }, status: 400, paths: ["ports"] },
      { body: { ...base, name: "x10", vip: "198.51.100.1; iptables -F" }, status: 400, paths: ["vip"] },
      { body: [base], status: 400, paths: [""] },
      { raw: "{not json", status: 400, paths: [] },
      { raw: JSON.stringify({ ...base, name: "big", pad: "x".repeat(1024 * 1024 + 10) }), status: 413, paths: [] },
      { method: "PATCH", path: `/api/v1/farms/${FARM}`, body: { backends: [{ ip: base.backends[0]!.ip, weight: -1 }] }, status: 400, paths: ["backends.0.weight"] },
      { method: "PATCH", path: `/api/v1/farms/${FARM}`, body: { name: "other" }, status: 400, paths: ["name"] },
      { method: "PUT", path: `/api/v1/farms/${FARM}`, body: { ...base, unknown: 1 }, headers: { "If-Match": "*" }, status: 400, paths: ["unknown"] },
      // A PUT must name the version it replaces.
      { method: "PUT", path: `/api/v1/farms/${FARM}`, body: base, status: 428, paths: ["If-Match"] },
    ];
    for (const k of cases) {
      const r = await api(k.method ?? "POST", k.path ?? "/api/v1/farms", { as: "admin", body: k.body, raw: k.raw, headers: k.headers });
      const label = JSON.stringify(k.body ?? k.raw?.slice(0, 40));
      expect(r.status, label).toBe(k.status);
      expect(typeof r.json.error, label).toBe("string");
      expect(r.json.issues.map((i: { path: string }) => i.path), label).toEqual(expect.arrayContaining(k.paths));
      for (const i of r.json.issues) expect(i.message, label).toMatch(/\S/);
    }
    // The CLI's words: "weight must be a whole number from 1 to 100".
    const w = await api("POST", "/api/v1/farms", { as: "admin", body: cases[1]!.body });
    expect(w.json.issues).toContainEqual({ path: "backends.1.weight", message: "weight must be a whole number from 1 to 100" });
    expect(dbState()).toBe(before);
    expect(labRules()).toBe(rules);
    // An unknown farm's name, even with shell metacharacters, is only a 404.
    expect((await api("GET", `/api/v1/farms/${encodeURIComponent("a;b")}`, { as: "viewer" })).status).toBe(404);
  });

  it("every change is in the audit log with its actor, token and address", () => {
    const rows = c.query<{ actor: string; via: string; address: string; action: string; farm: string | null; result: string }>(
      "SELECT actor, via, address, action, farm, result FROM AuditEntry WHERE action LIKE 'api %' OR action = 'refused' ORDER BY id",
    );
    expect(rows).toContainEqual(expect.objectContaining({ actor: "admin", via: "token", action: "api create farm", farm: FARM, result: "ok" }));
    expect(rows).toContainEqual(expect.objectContaining({ actor: "oper", via: "token", action: "api patch farm", farm: FARM, result: "ok" }));
    expect(rows).toContainEqual(expect.objectContaining({ actor: "vera", via: "token", action: "refused", result: "refused" }));
    expect(rows).toContainEqual(expect.objectContaining({ actor: "admin", action: "api replace farm", result: "invalid" }));
    for (const r of rows) expect(r.address).toMatch(/127\.0\.0\.1/);
  });

  it("the Origin check still holds for a cookie or a non-API path; a bearer-only API request passes without Origin", async () => {
    // Bearer and a cookie: the Origin check applies (403 before any auth).
    const withCookie = await api("POST", "/api/v1/farms", { as: "admin", body: farmBody(), headers: { Cookie: "x=1" } });
    expect(withCookie.status).toBe(403);
    expect(withCookie.text).toMatch(/Origin/);
    // Bearer, no cookie, but not /api/v1: the check applies.
    const other = await api("POST", "/api/farms/health", { as: "admin", body: {} });
    expect(other.status).toBe(403);
    expect(other.text).toMatch(/Origin/);
    // Bearer-only on /api/v1 (every write above) passes; with the console's own Origin it passes too.
    const own = await api("DELETE", `/api/v1/farms/nosuch`, { as: "admin", headers: { Origin: c.baseUrl } });
    expect(own.status).toBe(404);
  });

  it("the session cookie works too: a viewer reads; its write needs the console's Origin and then gets 403", async () => {
    const r = await api("GET", `/api/v1/farms/${FARM}`, { headers: { Cookie: viewerCookie } });
    expect(r.status).toBe(200);
    expect(r.headers.etag).toBe(etag);
    const before = dbState();
    const noOrigin = await api("DELETE", `/api/v1/farms/${FARM}`, { headers: { Cookie: viewerCookie } });
    expect(noOrigin.status).toBe(403);
    expect(noOrigin.text).toMatch(/Origin/);
    const own = await api("DELETE", `/api/v1/farms/${FARM}`, { headers: { Cookie: viewerCookie, Origin: c.baseUrl } });
    expect(own.status).toBe(403);
    expect(own.json.error).toMatch(/needs the admin role; you are signed in as viewer/);
    expect(dbState()).toBe(before);
    expect(c.query("SELECT via FROM AuditEntry WHERE actor = 'vera' AND result = 'refused' ORDER BY id DESC LIMIT 1")).toEqual([{ via: "session" }]);
  });

  it("an operator's PUT may stop and start the farm (its rules leave and come back), with the current version", async () => {
    const current = await api("GET", `/api/v1/farms/${FARM}`, { as: "operator" });
    expect(current.headers.etag).toBe(etag);
    const stop = await api("PUT", `/api/v1/farms/${FARM}`, { as: "operator", body: { ...current.json, status: "stopped" }, headers: { "If-Match": etag } });
    expect(stop.status, stop.text).toBe(200);
    expect(c.query("SELECT status FROM Farm")).toEqual([{ status: "stopped" }]);
    expect(labRules()).not.toContain(VIP);
    const start = await api("PATCH", `/api/v1/farms/${FARM}`, { as: "operator", body: { status: "up" }, headers: { "If-Match": stop.headers.etag as string } });
    expect(start.status, start.text).toBe(200);
    expect(labRules()).toContain(VIP);
    // Back to the same stored farm: the same version as before.
    expect(start.headers.etag).toBe(etag);
  });

  it("the operator cannot delete; the admin deletes with the current If-Match and the rules leave the kernel", async () => {
    const o = await api("DELETE", `/api/v1/farms/${FARM}`, { as: "operator", headers: { "If-Match": etag } });
    expect(o.status).toBe(403);
    expect(labRules()).toContain(VIP);
    const r = await api("DELETE", `/api/v1/farms/${FARM}`, { as: "admin", headers: { "If-Match": etag } });
    expect(r.status, r.text).toBe(200);
    expect(r.json.outcome).toBe("removed");
    expect(labRules()).not.toContain(VIP);
    expect(dbState()).toBe(JSON.stringify({ farms: [], backends: [] }));
    expect((await api("GET", `/api/v1/farms/${FARM}`, { as: "admin" })).status).toBe(404);
  });

  it("serves the OpenAPI 3.1 document (the one lib/api generates; its contract: rest-api-contract.test.ts)", async () => {
    expect((await api("GET", "/api/v1/openapi.json")).status).toBe(401);
    const r = await api("GET", "/api/v1/openapi.json", { as: "viewer" });
    expect(r.status).toBe(200);
    expect(r.json).toEqual(openApiDocument());
  });

  it("every action of this file is in GET /api/v1/audit (admin only) with its actor, token and address", async () => {
    expect((await api("GET", "/api/v1/audit", { as: "operator" })).status).toBe(403);
    const r = await api("GET", "/api/v1/audit?limit=1000", { as: "admin" });
    expect(r.status).toBe(200);
    type Entry = { actor: string; via: string; address: string; action: string; farm: string | null; result: string; kind: string; detail: string };
    const entries = r.json.entries as Entry[];
    const has = (e: Partial<Entry>) => expect(entries, JSON.stringify(e)).toContainEqual(expect.objectContaining(e));
    has({ actor: "admin", via: "token", action: "api create farm", farm: FARM, result: "ok", kind: "change" });
    has({ actor: "oper", via: "token", action: "api patch farm", farm: FARM, result: "ok" });
    has({ actor: "oper", via: "token", action: "api lab traffic", farm: FARM, result: "ok" });
    has({ actor: "oper", via: "token", action: "api drain backend", farm: FARM, result: "ok" });
    has({ actor: "oper", via: "token", action: "api enable backend", farm: FARM, result: "invalid" });
    has({ actor: "oper", via: "token", action: "api enable backend", farm: FARM, result: "ok" });
    has({ actor: "oper", via: "token", action: "api replace farm", farm: FARM, result: "ok" });
    has({ actor: "admin", via: "token", action: "api delete farm", farm: FARM, result: "ok" });
    has({ actor: "admin", via: "token", action: "api replace farm", result: "invalid" });
    has({ actor: "vera", via: "token", action: "refused", result: "refused", kind: "refused" });
    has({ actor: "vera", via: "session", action: "refused", result: "refused" });
    has({ actor: "oper", via: "token", action: "refused", result: "refused" });
    for (const e of entries.filter((x) => x.action.startsWith("api ") || x.action === "refused")) expect(e.address, JSON.stringify(e)).toMatch(/127\.0\.0\.1/);
    // The farm before and after a change.
    // (newest first: the first weight change is the oldest of them)
    const patch = entries.filter((e) => e.action === "api patch farm" && e.result === "ok").at(-1)!;
    expect(patch.detail).toMatch(/before: \{.*"weight":50.*after: \{.*"weight":80/);
    // Filters: one actor's, as JSON lines.
    const lines = await api("GET", "/api/v1/audit?actor=vera&format=jsonl", { as: "admin" });
    expect(lines.headers["content-type"]).toMatch(/application\/x-ndjson/);
    const rows = lines.text.trim().split("\n").map((l) => JSON.parse(l));
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) expect(row.actor).toBe("vera");
  });
});
