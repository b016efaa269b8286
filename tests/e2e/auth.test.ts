import { spawnSync } from "node:child_process";
import path from "node:path";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CODE_REFUSED, LOGIN_REFUSED, login, sessionUser } from "../../lib/auth/sessions.ts";
import { codeFor } from "../../lib/auth/totp.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { request } from "../../lib/web/client.ts";
import { E2E_USERS, loginThroughForm, namespacesOf, ROOT, startConsole, type Console } from "./harness.ts";
import { captureAction as captureActionOf, expectCount, mainAxeViolations, expectText, expectVisible, replayHeaders, type CapturedAction } from "./ui-expect.ts";

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
/** The admin's password once the last test of the first block changed it with natfarm user passwd. */
const ADMIN_PW_AFTER_CLI = "a new admin password";

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

const captureAction = (click: () => Promise<void>) => captureActionOf(page, c.baseUrl, click);

/** The captured action sent again, as the given cookie's user. */
const replay = (a: CapturedAction, cookie: string) => raw(a.path, { method: "POST", headers: replayHeaders(a, cookie), body: a.body });

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
    // Compared here, not in SQL: SQLite keeps the time as a number, PostgreSQL as a timestamp.
    expect(c.query<{ until: number | string }>("SELECT until FROM LoginLock WHERE key = ?", `user:${name}`).filter((r) => new Date(r.until).getTime() > Date.now())).toHaveLength(1);
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

  let drain: CapturedAction;
  let remove: CapturedAction;
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
    // The audit log is for administrators: the viewer is told so, the admin sees both refusals.
    await page.goto(url("/history"));
    await expectText(page.getByTestId("audit-admins-only"), "you are signed in as viewer");
    await c.loginAs("admin");
    await page.goto(url(`/history?actor=${E2E_USERS.viewer.name}&kind=refused`));
    const log = page.getByRole("table", { name: "Audit log" });
    await expect.poll(() => log.locator("tbody tr").filter({ hasText: "Refused:" }).count()).toBe(2);
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
    // What each did to the farm: its declarative JSON before and after.
    const details = c.query<{ action: string; detail: string }>("SELECT action, detail FROM AuditEntry WHERE farm = ? AND result = 'ok' ORDER BY id", FARM).map((r) => r.detail);
    const farmJson = (d: string, which: "before" | "after") => JSON.parse(new RegExp(`${which}: (\\{.*?\\}|null)(?: · |$)`).exec(d)![1]!);
    expect(farmJson(details[0]!, "before")).toBeNull();
    expect(farmJson(details[0]!, "after")).toMatchObject({ name: FARM, vip: VIP, backends: [{ ip: B0, port: 80 }, { ip: B1, port: 80 }] });
    expect(farmJson(details[1]!, "before").backends.map((b: { state?: string }) => b.state ?? "up")).toEqual(["up", "up"]);
    expect(farmJson(details[1]!, "after").backends.map((b: { state?: string }) => b.state ?? "up")).toEqual(["maintenance", "up"]);
    expect(farmJson(details[3]!, "before")).toMatchObject({ name: FARM });
    expect(farmJson(details[3]!, "after")).toBeNull();
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
      input: `${ADMIN_PW_AFTER_CLI}\n`,
      encoding: "utf8",
      env: { ...process.env, NATFARM_DATABASE_URL: c.dbUrl },
    });
    expect(r.status, r.stderr).toBe(0);
    // The farms page polls /api/farms/health every 5 s: its 401 sends the browser to the login page.
    await expect.poll(() => new URL(page.url()).pathname, { timeout: 20_000 }).toBe("/login");
  });
});

const axeViolations = mainAxeViolations;

/**
 * The account side in the browser (same console): the user menu, the Users
 * page (403 for other roles, an admin adds a user who then logs in, a
 * replayed add refused for an operator), a password change ending the
 * user's other session, TOTP enrolment and a login with a code made here
 * from the secret the page showed, History's audit filters in the URL with
 * paging and the JSON-lines export, axe on the new pages.
 */
const NEW_USER = { name: "newops", password: "newops-initial-pw", role: "operator" };
const NEW_PW = "newops-changed-pw";

async function loginAdmin(): Promise<void> {
  await page.goto("about:blank");
  await c.context.clearCookies();
  await loginThroughForm(page, c.baseUrl, E2E_USERS.admin.name, ADMIN_PW_AFTER_CLI);
}

async function loginAsNew(password: string): Promise<void> {
  await page.goto("about:blank");
  await c.context.clearCookies();
  await submitLogin(NEW_USER.name, password);
}

describe.sequential("account, users, two-factor login, audit filters", () => {
  let totpSecret = "";

  it("the user menu: Account for everyone, Users for admins only, the API reference in the navigation; /users is 403 for an operator, audited", async () => {
    const cookie = await cookieOf("operator");
    await page.goto(url("/"));
    const menu = page.getByRole("navigation", { name: "Account" });
    await expectVisible(menu.getByRole("link", { name: "Account" }));
    expect(await menu.getByRole("link", { name: "Users" }).count()).toBe(0);
    expect(await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API" }).getAttribute("href")).toBe("/api-docs");
    const r = await raw("/users", { headers: { Cookie: cookie } });
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/needs the admin role; you are signed in as operator/);
    // The export of the audit log too (the REST API's audit is admin-only as well).
    const x = await raw("/history/audit.jsonl", { headers: { Cookie: cookie } });
    expect(x.status).toBe(403);
    expect(c.query<{ detail: string }>("SELECT detail FROM AuditEntry WHERE action = 'refused' AND actor = ? ORDER BY id DESC LIMIT 2", E2E_USERS.operator.name).map((a) => a.detail)).toEqual([
      expect.stringMatching(/^Refused: exporting the audit log needs the admin role/),
      expect.stringMatching(/^Refused: opening \/users/),
    ]);
    await page.goto(url("/history"));
    await expectText(page.getByTestId("audit-admins-only"), "for administrators");
    expect(await page.getByRole("table", { name: "Audit log" }).count()).toBe(0);
  });

  let addUser: CapturedAction;

  it("an admin adds a user who then logs in; the same request replayed with an operator's cookie is refused and adds nobody", async () => {
    const operator = await cookieOf("operator");
    await loginAdmin();
    await page.getByRole("navigation", { name: "Account" }).getByRole("link", { name: "Users" }).click();
    await page.waitForURL((u) => u.pathname === "/users");
    const form = page.getByRole("form", { name: "Add user" });
    await form.getByLabel("User name").fill("mallory");
    await form.getByLabel("Role").selectOption("admin");
    await form.getByLabel("Initial password").fill("mallory-password");
    addUser = await captureAction(() => form.getByRole("button", { name: "Add user" }).click());
    const before = c.query("SELECT name, role FROM User ORDER BY name");
    const replayed = await replay(addUser, operator);
    expect(replayed.body).toMatch(/Refused: adding a user needs the admin role; you are signed in as operator/);
    expect(c.query("SELECT name, role FROM User ORDER BY name")).toEqual(before);

    await page.goto(url("/users"));
    await form.getByLabel("User name").fill(NEW_USER.name);
    await form.getByLabel("Role").selectOption(NEW_USER.role);
    await form.getByLabel("Initial password").fill(NEW_USER.password);
    await form.getByRole("button", { name: "Add user" }).click();
    await expectText(page.getByTestId("add-user-result"), `User ${NEW_USER.name} (operator) added`);
    await expectVisible(page.getByRole("table", { name: "Users" }).getByRole("row").filter({ hasText: NEW_USER.name }));
    expect(c.query("SELECT actor, action, result, detail FROM AuditEntry WHERE action = 'user.add' ORDER BY id DESC LIMIT 1")).toEqual([
      { actor: "admin", action: "user.add", result: "ok", detail: `user ${NEW_USER.name}: ${NEW_USER.name} (operator)` },
    ]);

    await loginAsNew(NEW_USER.password);
    await page.waitForURL((u) => u.pathname === "/");
    expect(await page.getByTestId("signed-in-as").textContent()).toMatch(/newops · operator/);
  });

  it("a password change needs the current one and ends the user's other session, not this one", async () => {
    // A second session of the same user, opened beside the browser's.
    const dbUrl = c.dbUrl;
    const other = await login(getPrisma(dbUrl), { name: NEW_USER.name, password: NEW_USER.password, address: "192.0.2.77" });
    if (!other.ok) throw new Error("the second login failed");
    const otherCookie = `__Host-natfarm_session=${other.token}`;
    expect((await raw("/", { headers: { Cookie: otherCookie } })).status).toBe(200);

    await page.goto(url("/account"));
    const form = page.getByRole("form", { name: "Change password" });
    await form.getByLabel("Current password").fill("not the password");
    await form.getByLabel("New password", { exact: true }).fill(NEW_PW);
    await form.getByLabel("New password again").fill(NEW_PW);
    await form.getByRole("button", { name: "Change password" }).click();
    await expectText(page.getByTestId("password-result"), "current password is not right");
    await form.getByLabel("Current password").fill(NEW_USER.password);
    await form.getByLabel("New password", { exact: true }).fill(NEW_PW);
    await form.getByLabel("New password again").fill(NEW_PW);
    await form.getByRole("button", { name: "Change password" }).click();
    await expectText(page.getByTestId("password-result"), "Password changed. 1 other session ended.");
    // The other session is over; this one goes on.
    expect((await raw("/", { headers: { Cookie: otherCookie } })).status).toBe(303);
    expect(await sessionUser(getPrisma(dbUrl), other.token)).toBeNull();
    await disconnectPrisma(dbUrl);
    await page.goto(url("/account"));
    expect(await page.getByTestId("signed-in-as").textContent()).toMatch(/newops/);
    expect(c.query("SELECT result FROM AuditEntry WHERE action = 'user.passwd' AND actor = ? ORDER BY id", NEW_USER.name)).toEqual([{ result: "invalid" }, { result: "ok" }]);
  });

  it("API tokens on the account page: the secret shown once, then only its first characters; revoked", async () => {
    await page.goto(url("/account"));
    const form = page.getByRole("form", { name: "New API token" });
    await form.getByLabel("Name").fill("deploy");
    expect(await form.getByLabel("Role").locator("option").allTextContents()).toEqual(["viewer", "operator"]);
    await form.getByLabel("Role").selectOption("viewer");
    await form.getByRole("button", { name: "Create token" }).click();
    const secret = (await page.getByTestId("token-secret").textContent())!.trim();
    expect(secret).toMatch(/^nft_[A-Za-z0-9_-]{43}$/);
    expect((await raw("/api/drift", { headers: { Authorization: `Bearer ${secret}` } })).status).toBe(200);
    await page.goto(url("/account"));
    const table = page.getByRole("table", { name: "Your API tokens" });
    await expectText(table, `${secret.slice(0, 10)}…`);
    expect(await page.content()).not.toContain(secret);
    await table.getByRole("button", { name: "Revoke token deploy" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Revoke token" }).click();
    await expectText(table, "revoked");
    expect((await raw("/api/drift", { headers: { Authorization: `Bearer ${secret}` } })).status).toBe(401);
  });

  it("TOTP: enrolled with a code made from the secret the page shows; then a login asks for the code; a wrong or replayed code is refused", async () => {
    await page.goto(url("/account"));
    await page.getByRole("button", { name: "Set up two-factor login" }).click();
    await expectVisible(page.getByRole("img", { name: "QR code of the two-factor secret" }).locator("svg"));
    totpSecret = (await page.getByTestId("totp-secret").textContent())!.trim();
    expect(totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    await page.getByLabel("Code from the app").fill(codeFor(totpSecret));
    await page.getByRole("button", { name: "Turn on" }).click();
    await expectText(page.getByRole("region", { name: "Two-factor login" }), "On since");
    expect(await page.getByTestId("totp-secret").count()).toBe(0);
    expect(await page.content()).not.toContain(totpSecret);
    const stored = c.query<{ totpSecret: string }>("SELECT totpSecret FROM User WHERE name = ?", NEW_USER.name)[0]!.totpSecret;
    expect(stored).toMatch(/^v1\./);
    expect(stored).not.toContain(totpSecret);

    // The password alone opens no session now.
    await loginAsNew(NEW_PW);
    await expectVisible(page.getByRole("heading", { name: "Two-factor code" }));
    // The password's action redirected to this same page: let that navigation settle before the form is used.
    await page.waitForLoadState("networkidle");
    expect((await c.context.cookies(c.baseUrl)).map((k) => k.name)).toEqual(["__Host-natfarm_login"]);
    expect((await raw("/", { headers: { Cookie: await c.cookieHeader() } })).status).toBe(303);
    await page.getByLabel("Code", { exact: true }).fill("000000");
    await page.getByRole("button", { name: "Verify code" }).click();
    expect(await refusal()).toBe(CODE_REFUSED);
    // The next step's code (the enrolment used this one): accepted within the window.
    const code = codeFor(totpSecret, new Date(Date.now() + 30_000));
    await page.getByLabel("Code", { exact: true }).fill(code);
    await page.getByRole("button", { name: "Verify code" }).click();
    await page.waitForURL((u) => u.pathname === "/");
    expect((await c.context.cookies(c.baseUrl)).map((k) => k.name)).toEqual(["__Host-natfarm_session"]);
    // The same code again, at once: a replay.
    await loginAsNew(NEW_PW);
    await expectVisible(page.getByRole("heading", { name: "Two-factor code" }));
    await page.waitForLoadState("networkidle");
    await page.getByLabel("Code", { exact: true }).fill(code);
    await page.getByRole("button", { name: "Verify code" }).click();
    expect(await refusal()).toBe(CODE_REFUSED);
    await page.getByRole("button", { name: "Use another account" }).click();
    await expectVisible(page.getByRole("heading", { name: "Log in" }));
    const rows = c.query<{ action: string; result: string; detail: string }>("SELECT action, result, detail FROM AuditEntry WHERE actor = ? AND action IN ('login', 'login.password', 'user.totp.enable') ORDER BY id", NEW_USER.name);
    expect(rows.map((r) => `${r.action} ${r.result}`).slice(-6)).toEqual(["user.totp.enable ok", "login.password ok", "login failed", "login ok", "login.password ok", "login failed"]);
    expect(rows.at(-1)!.detail).toMatch(/replay/);
    expect(rows.some((r) => r.action === "login" && r.result === "ok" && /TOTP/.test(r.detail))).toBe(true);
  });

  it("History's audit log: filters kept in the URL, older pages by the cursor, the JSON-lines export of the filter", async () => {
    await loginAdmin();
    await page.goto(url("/history"));
    const filters = page.getByRole("form", { name: "Filter the audit log" });
    await filters.getByLabel("Actor").fill(NEW_USER.name);
    await filters.getByLabel("Kind").selectOption("user");
    await filters.getByRole("button", { name: "Filter" }).click();
    await page.waitForURL((u) => u.searchParams.get("actor") === NEW_USER.name && u.searchParams.get("kind") === "user");
    const log = page.getByRole("table", { name: "Audit log" });
    const want = c.query<{ id: number; action: string }>("SELECT id, action FROM AuditEntry WHERE actor = ? AND action LIKE 'user.%' ORDER BY id DESC", NEW_USER.name);
    expect(want.map((w) => w.action)).toEqual(["user.totp.enable", "user.totp.enrol", "user.passwd", "user.passwd"]);
    await expectCount(log.locator("tbody tr"), want.length);
    // The URL alone gives the same rows (a link, a reload); the filter's fields show it.
    const filtered = page.url();
    await page.goto("about:blank");
    await page.goto(filtered);
    await expectCount(log.locator("tbody tr"), want.length);
    expect(await filters.getByLabel("Actor").inputValue()).toBe(NEW_USER.name);
    expect(await filters.getByLabel("Kind").inputValue()).toBe("user");
    // Two per page: "Older entries" follows the cursor.
    await page.goto(url(`/history?actor=${NEW_USER.name}&kind=user&limit=2`));
    await expectCount(log.locator("tbody tr"), 2);
    await page.getByRole("navigation", { name: "Audit log pages" }).getByRole("link", { name: "Older entries" }).click();
    await page.waitForURL((u) => u.searchParams.get("before") === String(want[1]!.id));
    await expectCount(log.locator("tbody tr"), 2);
    await expectText(log, "user.passwd");
    expect(await log.getByText("user.totp.enable").count()).toBe(0);
    // A bad filter: said so, nothing shown.
    await page.goto(url("/history?kind=everything"));
    await expectText(page.getByRole("region", { name: "Audit log" }), "The filter is not valid");
    // The export link carries the filter (not the page cursor) and streams JSON lines.
    await page.goto(filtered);
    const href = await page.getByRole("link", { name: "Export JSON lines" }).getAttribute("href");
    expect(href).toBe(`/history/audit.jsonl?actor=${NEW_USER.name}&kind=user`);
    const x = await raw(href!, { headers: { Cookie: await c.cookieHeader() } });
    expect(x.status).toBe(200);
    expect(x.headers["content-type"]).toMatch(/^application\/x-ndjson/);
    const recs = x.body.trimEnd().split("\n").map((l) => JSON.parse(l) as { id: number; actor: string; kind: string; address: string });
    expect(recs.map((r) => r.id)).toEqual(want.map((w) => w.id));
    expect(new Set(recs.map((r) => `${r.actor} ${r.kind} ${r.address}`))).toEqual(new Set([`${NEW_USER.name} user 127.0.0.1`]));
    expect((await raw("/history/audit.jsonl?kind=everything", { headers: { Cookie: await c.cookieHeader() } })).status).toBe(400);
  });

  it("axe: no serious or critical violation on the account, users, history and code-step pages", async () => {
    const found: Record<string, string[]> = {};
    await page.goto(url("/users"));
    await page.getByRole("table", { name: "Users" }).waitFor();
    found.users = await axeViolations(page);
    await page.goto(url(`/history?actor=${NEW_USER.name}`));
    await page.getByRole("table", { name: "Audit log" }).waitFor();
    found.history = await axeViolations(page);
    await page.goto(url("/account"));
    await page.getByRole("button", { name: "Set up two-factor login" }).click();
    await page.getByRole("img", { name: "QR code of the two-factor secret" }).waitFor();
    found.accountEnrolling = await axeViolations(page);
    await loginAsNew(NEW_PW);
    await page.getByRole("heading", { name: "Two-factor code" }).waitFor();
    found.codeStep = await axeViolations(page);
    expect(Object.fromEntries(Object.entries(found).filter(([, v]) => v.length))).toEqual({});
  });

  it("an admin removes the user (a confirmation first); their sessions and tokens go with them", async () => {
    await loginAdmin();
    await page.goto(url("/users"));
    await page.getByRole("button", { name: `Remove user ${NEW_USER.name}` }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Remove user" }).click();
    await expect.poll(() => c.query("SELECT name FROM User WHERE name = ?", NEW_USER.name), { timeout: 20_000 }).toEqual([]);
    expect(c.query("SELECT COUNT(*) AS n FROM Session s LEFT JOIN User u ON u.id = s.userId WHERE u.id IS NULL")).toEqual([{ n: 0 }]);
    // The admin's own row offers removal only with the warning that it is oneself.
    await page.getByRole("button", { name: "Remove user admin" }).click();
    await expectText(page.getByRole("dialog"), "This is you.");
    await page.getByRole("dialog").getByRole("button", { name: "Cancel" }).click();
    expect(c.query("SELECT result, detail FROM AuditEntry WHERE action = 'user.remove' ORDER BY id DESC LIMIT 1")).toEqual([{ result: "ok", detail: `user ${NEW_USER.name}: removed with their sessions and tokens` }]);
  });
});
