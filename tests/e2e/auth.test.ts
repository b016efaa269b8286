import { spawnSync } from "node:child_process";
import path from "node:path";
import type { Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LOGIN_REFUSED } from "../../lib/auth/sessions.ts";
import { request } from "../../lib/web/client.ts";
import { E2E_USERS, loginThroughForm, namespacesOf, ROOT, startConsole, type Console } from "./harness.ts";

/**
 * Logins and roles in the built console through Chromium: the login form,
 * the generic refusal, the lock after repeated failures (NATFARM_LOGIN_LOCK
 * shortened to a few seconds for the test), logout, the cookie's flags, and
 * for each role what the page offers and what a replayed server action
 * (the exact request the admin's browser made) does, checked in the
 * database and the lab's kernel.
 */
const LOCK_S = 6;
const VIP = "198.51.100.240";
const FARM = "authfarm";
const B0 = "203.0.113.10";
const B1 = "203.0.113.11";

let c: Console;
let page: Page;
const url = (p: string) => `${c.baseUrl}${p}`;

beforeAll(async () => {
  c = await startConsole({
    backends: 2,
    login: null,
    // The user's own limit is tested here: the address limit (same default) would lock every user of this loopback run.
    env: { NATFARM_LOGIN_LOCK: `${LOCK_S}s`, NATFARM_LOGIN_ADDRESS_MAX_FAILURES: "1000" },
    log: (m) => console.log(`[e2e auth] ${m}`),
  });
  page = c.page;
}, 600_000);

afterAll(async () => {
  if (!c) return;
  const lab = c.lab.name;
  await c.stop();
  expect(namespacesOf(lab)).toEqual([]);
}, 120_000);

async function submitLogin(name: string, password: string): Promise<void> {
  await page.goto(url("/login"));
  await page.getByLabel("User name").fill(name);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
}

async function refusal(): Promise<string> {
  const alert = page.getByTestId("auth-error");
  await expect.poll(async () => (await alert.textContent())?.trim() ?? "", { timeout: 15_000 }).not.toBe("");
  return (await alert.textContent())!.trim();
}

const raw = (p: string, o: Parameters<typeof request>[1] = {}) => request(url(p), { insecure: true, timeoutMs: 30_000, ...o });

/** The natfarm rules of the lab's balancer, without counters. */
async function kernelRules(): Promise<string> {
  const t = await c.tables();
  return JSON.stringify(t.tables.map((x) => x.chains.filter((ch) => ch.owned).map((ch) => [ch.name, ch.rules.map((r) => (r as { spec?: string }).spec ?? JSON.stringify(r))])));
}

function dbState() {
  return JSON.stringify({
    farms: c.query("SELECT name, vip, mode, status FROM Farm ORDER BY name"),
    backends: c.query("SELECT ip, port, weight, state, mark FROM Backend ORDER BY mark"),
  });
}

interface Captured {
  headers: Record<string, string>;
  body: string;
  path: string;
}

/** Clicks `click` and captures the server action request the browser sends, without letting it reach the server. */
async function captureAction(click: () => Promise<void>): Promise<Captured> {
  let captured: Captured | null = null;
  await page.route(
    (u) => u.href.startsWith(c.baseUrl),
    async (route) => {
      const r: Request = route.request();
      if (r.method() === "POST" && r.headers()["next-action"]) {
        captured = { headers: r.headers(), body: r.postData() ?? "", path: new URL(r.url()).pathname };
        await route.abort();
      } else await route.continue();
    },
  );
  try {
    await click();
    await expect.poll(() => captured !== null, { timeout: 15_000 }).toBe(true);
  } finally {
    await page.unrouteAll({ behavior: "wait" });
  }
  return captured!;
}

/** The captured action sent again, as the given cookie's user. */
async function replay(a: Captured, cookie: string) {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(a.headers)) if (!/^(cookie|host|content-length|connection)$/i.test(k)) headers[k] = v;
  return raw(a.path, { method: "POST", headers: { ...headers, Cookie: cookie }, body: a.body });
}

async function cookieOf(user: keyof typeof E2E_USERS): Promise<string> {
  await c.loginAs(user);
  return c.cookieHeader();
}

describe.sequential("logins and roles", () => {
  it("without a session every page goes to the login page", async () => {
    await page.goto(url("/farms/x"));
    await expect.poll(() => new URL(page.url()).pathname).toBe("/login");
    expect(new URL(page.url()).searchParams.get("next")).toBe("/farms/x");
    expect(await page.getByRole("heading", { level: 1 }).textContent()).toBe("Log in");
    expect((await raw("/api/drift")).status).toBe(401);
  });

  it("a wrong password and an unknown user get the same one message, and no cookie", async () => {
    await submitLogin(E2E_USERS.viewer.name, "not the password");
    expect(await refusal()).toBe(LOGIN_REFUSED);
    await submitLogin("nobody", E2E_USERS.viewer.password);
    expect(await refusal()).toBe(LOGIN_REFUSED);
    expect(await c.context.cookies(c.baseUrl)).toEqual([]);
  });

  it("the sixth wrong try finds the user locked: the right password is refused until the lock ends", async () => {
    const { name, password } = E2E_USERS.operator;
    for (let i = 1; i <= 6; i++) {
      await submitLogin(name, `wrong password ${i}`);
      expect(await refusal(), `try ${i}`).toBe(LOGIN_REFUSED);
    }
    const lockedAt = Date.now();
    await submitLogin(name, password);
    expect(await refusal()).toBe(LOGIN_REFUSED);
    expect(new URL(page.url()).pathname).toBe("/login");
    expect(c.query<{ n: number }>("SELECT COUNT(*) AS n FROM LoginLock WHERE key = ? AND until > ?", `user:${name}`, Date.now())[0]!.n).toBe(1);
    // Another user is not locked.
    await loginThroughForm(page, c.baseUrl, E2E_USERS.viewer.name, E2E_USERS.viewer.password);
    await c.context.clearCookies();
    await new Promise((r) => setTimeout(r, Math.max(0, LOCK_S * 1000 + 500 - (Date.now() - lockedAt))));
    await loginThroughForm(page, c.baseUrl, name, password);
    expect(new URL(page.url()).pathname).toBe("/");
  });

  it("the session cookie is HttpOnly, Secure, SameSite=Strict, a browser-session cookie", async () => {
    await c.loginAs("admin");
    const cookies = await c.context.cookies(c.baseUrl);
    expect(cookies.map((k) => ({ name: k.name, httpOnly: k.httpOnly, secure: k.secure, sameSite: k.sameSite, path: k.path, expires: k.expires }))).toEqual([
      { name: "__Host-natfarm_session", httpOnly: true, secure: true, sameSite: "Strict", path: "/", expires: -1 },
    ]);
    expect(await page.getByTestId("signed-in-as").textContent()).toMatch(/admin · admin/);
  });

  let drain: Captured;
  let remove: Captured;
  let before: { db: string; kernel: string };

  it("setup: the admin creates a farm; the drain and delete requests its browser sends are captured (not sent)", async () => {
    await page.goto(url("/"));
    await page.getByRole("button", { name: "New farm" }).click();
    const form = page.getByRole("region", { name: "New farm" });
    await form.getByLabel("Name", { exact: true }).fill(FARM);
    await form.getByLabel("Virtual IP").fill(VIP);
    await form.getByLabel("Ports", { exact: true }).fill("80");
    for (const [n, ip] of [[1, B0], [2, B1]] as const) {
      if (n === 2) await form.getByRole("button", { name: "Add backend row" }).click();
      const row = form.getByRole("group", { name: `Backend ${n}` });
      await row.getByLabel(`IP address of backend ${n}`).fill(ip);
      await row.getByLabel(`Port of backend ${n}`).fill("80");
    }
    await form.getByRole("button", { name: "Create farm" }).click();
    await expect.poll(() => c.query("SELECT applyState FROM Farm WHERE name = ?", FARM), { timeout: 60_000 }).toEqual([{ applyState: "applied" }]);
    await page.goto(url(`/farms/${FARM}`));
    drain = await captureAction(() => page.getByRole("button", { name: `Drain backend ${B0}:80` }).click());
    // The aborted request leaves the page in its error state: load it again.
    await page.goto(url(`/farms/${FARM}`));
    remove = await captureAction(async () => {
      await page.getByRole("button", { name: "Delete farm" }).click();
      await page.getByRole("dialog").getByRole("button", { name: "Delete farm" }).click();
    });
    await page.goto(url("/"));
    before = { db: dbState(), kernel: await kernelRules() };
    expect(before.kernel).toContain(B0);
    expect(c.query("SELECT state FROM Backend ORDER BY mark")).toEqual([{ state: "up" }, { state: "up" }]);
  });

  it("a viewer sees no mutating control, and the replayed drain and delete are refused with nothing changed in the database or the kernel", async () => {
    const cookie = await cookieOf("viewer");
    await page.goto(url("/"));
    await expect.poll(() => page.getByRole("table", { name: "Farms" }).getByRole("link", { name: FARM, exact: true }).count()).toBe(1);
    for (const name of ["New farm", "Apply all", "Guide example"]) expect(await page.getByRole("button", { name }).count(), name).toBe(0);
    await page.goto(url(`/farms/${FARM}`));
    await page.getByRole("table", { name: `Backends of ${FARM}` }).waitFor();
    const buttons = (await page.locator("main").getByRole("button").allTextContents()).map((t) => t.trim());
    for (const b of buttons) expect(b, `button "${b}" on the viewer's farm page`).toMatch(/^(Copy generated rules|Copy|Copied)$/i);
    expect(await page.getByRole("form", { name: "Add backend" }).count()).toBe(0);
    for (const a of [drain, remove]) {
      const r = await replay(a, cookie);
      expect(r.status).toBe(200);
      expect(r.body).toMatch(/Refused: .* needs the (operator|admin) role.*signed in as viewer/);
    }
    expect(dbState()).toBe(before.db);
    expect(await kernelRules()).toBe(before.kernel);
    // Both refusals are in the audit log with the viewer's name and address, and shown on History.
    const refused = c.query<{ detail: string; address: string }>("SELECT detail, address FROM AuditEntry WHERE action = 'refused' AND actor = ?", E2E_USERS.viewer.name);
    expect(refused.map((r) => r.detail.replace(/ needs.*/, ""))).toEqual(["Refused: draining, cutting or restoring a backend", "Refused: deleting a farm"]);
    expect(new Set(refused.map((r) => r.address))).toEqual(new Set(["127.0.0.1"]));
    await page.goto(url("/history"));
    const log = page.getByRole("table", { name: "Audit log" });
    await expect.poll(() => log.getByRole("row").filter({ hasText: "refused" }).filter({ hasText: E2E_USERS.viewer.name }).count()).toBe(2);
  });

  it("an operator can drain a backend but not delete the farm", async () => {
    const cookie = await cookieOf("operator");
    await page.goto(url(`/farms/${FARM}`));
    await page.getByRole("button", { name: `Drain backend ${B0}:80` }).waitFor();
    expect(await page.getByRole("button", { name: "Delete farm" }).count()).toBe(0);
    const del = await replay(remove, cookie);
    expect(del.body).toMatch(/Refused: deleting a farm needs the admin role; you are signed in as operator/);
    expect(dbState()).toBe(before.db);
    const r = await replay(drain, cookie);
    expect(r.body).not.toMatch(/Refused/);
    await expect.poll(() => c.query("SELECT ip, state FROM Backend ORDER BY mark")).toEqual([{ ip: B0, state: "maintenance" }, { ip: B1, state: "up" }]);
    expect(await kernelRules()).not.toBe(before.kernel);
  });

  it("an admin can drain and delete: the farm leaves the database and the kernel", async () => {
    await c.loginAs("admin");
    await page.goto(url(`/farms/${FARM}`));
    await page.getByRole("button", { name: `Drain backend ${B1}:80` }).click();
    await expect.poll(() => c.query("SELECT state FROM Backend ORDER BY mark"), { timeout: 30_000 }).toEqual([{ state: "maintenance" }, { state: "maintenance" }]);
    await page.getByRole("button", { name: "Delete farm" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Delete farm" }).click();
    await expect.poll(() => c.query("SELECT name FROM Farm"), { timeout: 30_000 }).toEqual([]);
    // The page goes back to the farms list (a redirect after the delete): let that navigation finish.
    await page.waitForURL((u) => u.pathname === "/" && u.searchParams.get("deleted") === FARM, { timeout: 20_000 });
    expect(await kernelRules()).not.toContain(FARM);
    // Who changed what, from where: every mutation in the audit log.
    const rows = c.query<{ actor: string; action: string; farm: string; result: string; address: string }>("SELECT actor, action, farm, result, address FROM AuditEntry WHERE farm = ? AND result != 'refused' ORDER BY id", FARM);
    expect(rows.map((r) => `${r.actor} ${r.action} ${r.result}`)).toEqual([
      "admin creating a farm ok",
      "oper draining, cutting or restoring a backend ok",
      "admin draining, cutting or restoring a backend ok",
      "admin deleting a farm ok",
    ]);
    expect(new Set(rows.map((r) => r.address))).toEqual(new Set(["127.0.0.1"]));
  });

  it("logout ends the session: its cookie no longer opens a page or an API route", async () => {
    await c.loginAs("admin");
    const cookie = await c.cookieHeader();
    expect((await raw("/", { headers: { Cookie: cookie } })).status).toBe(200);
    await page.goto(url("/"));
    await page.getByRole("button", { name: "Log out" }).click();
    await expect.poll(() => new URL(page.url()).pathname).toBe("/login");
    expect(await c.context.cookies(c.baseUrl)).toEqual([]);
    const after = await raw("/", { headers: { Cookie: cookie } });
    expect(after.status).toBe(303);
    expect(after.headers.location).toBe("/login");
    expect((await raw("/api/drift", { headers: { Cookie: cookie } })).status).toBe(401);
    expect(c.query("SELECT actor, result FROM AuditEntry WHERE action = 'logout'").at(-1)).toEqual({ actor: "admin", result: "ok" });
    expect(c.query<{ n: number }>("SELECT COUNT(*) AS n FROM AuditEntry WHERE action = 'login' AND result = 'locked' AND actor = ?", E2E_USERS.operator.name)[0]!.n).toBeGreaterThanOrEqual(1);
  });

  it("a session ended elsewhere (a new password from the CLI): the open page goes to the login page by itself", async () => {
    await c.loginAs("admin");
    await page.goto(url("/"));
    await page.getByTestId("signed-in-as").waitFor();
    const r = spawnSync(process.execPath, [path.join(ROOT, "bin", "natfarm.mjs"), "user", "passwd", "admin", "--password-stdin"], {
      input: "a new admin password\n",
      encoding: "utf8",
      env: { ...process.env, NATFARM_DATABASE_URL: `file:${c.dbFile}` },
    });
    expect(r.status, r.stderr).toBe(0);
    // The farms page polls /api/farms/health every 5 s: its 401 sends the browser to the login page.
    await expect.poll(() => new URL(page.url()).pathname, { timeout: 20_000 }).toBe("/login");
  });
});
