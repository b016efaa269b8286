import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuthConfig } from "../../lib/auth/config.ts";
import { authConfig, parseDuration } from "../../lib/auth/config.ts";
import { can } from "../../lib/auth/roles.ts";
import { LOGIN_REFUSED, login, logout, sessionUser, tokenHash } from "../../lib/auth/sessions.ts";
import { completeSetup, makeSetupToken, setupTokenValid } from "../../lib/auth/setup.ts";
import { createUser, listUsers, removeUser, setPassword } from "../../lib/auth/users.ts";
import { adminPage, forbiddenPage, isPublic } from "../../lib/auth/gate.ts";
import { bearer, createToken, listTokens, revokeToken, tokenUser } from "../../lib/auth/tokens.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/** lib/auth against a real migrated database (SQLite or PostgreSQL: vitest's projects), with the clock passed in. */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-auth-"));
let url = "";
const dbs: TestDatabase[] = [];
const db = () => getPrisma(url);
const config: AuthConfig = { idleMs: 30 * 60_000, lifetimeMs: 12 * 3_600_000, maxFailures: 5, addressMaxFailures: 5, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
const T0 = new Date("2026-12-01T08:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);
const PW = "correct horse battery";

beforeAll(async () => {
  dbs.push(await createTestDatabase("auth"));
  url = dbs[0]!.url;
  await migrate(url);
  await createUser(db(), "alice", "admin", PW);
  await createUser(db(), "vic", "viewer", PW);
});
afterAll(async () => {
  await disconnectPrisma();
  for (const d of dbs) await d.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("users", () => {
  it("stores argon2id hashes, never the password", async () => {
    const u = await db().user.findUniqueOrThrow({ where: { name: "alice" } });
    expect(u.passwordHash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
    expect(u.passwordHash).not.toContain(PW);
  });
  it("refuses short passwords, bad names and roles, duplicates", async () => {
    await expect(createUser(db(), "bob", "viewer", "short")).rejects.toThrow(/at least 10/);
    await expect(createUser(db(), "Bad Name", "viewer", PW)).rejects.toThrow(/user name/);
    await expect(createUser(db(), "bob", "root", PW)).rejects.toThrow(/role/);
    await expect(createUser(db(), "alice", "viewer", PW)).rejects.toThrow(/already exists/);
    expect((await listUsers(db())).map((u) => u.name)).toEqual(["alice", "vic"]);
  });
});

describe("sessions", () => {
  it("a login opens a session kept only as a hash; logout ends it", async () => {
    const r = await login(db(), { name: "alice", password: PW, address: "192.0.2.1", now: T0, config });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(await db().session.findUnique({ where: { id: r.token } })).toBeNull();
    expect(await db().session.findUnique({ where: { id: tokenHash(r.token) } })).not.toBeNull();
    expect((await sessionUser(db(), r.token, { now: at(1000), config }))?.name).toBe("alice");
    await logout(db(), r.token);
    expect(await sessionUser(db(), r.token, { now: at(2000), config })).toBeNull();
  });

  it("ends after the idle timeout, and after the absolute lifetime however busy", async () => {
    const r = await login(db(), { name: "alice", password: PW, address: "192.0.2.1", now: T0, config });
    if (!r.ok) throw new Error("login failed");
    // Used every 20 minutes: alive past the idle timeout's first span...
    for (let m = 20; m < 12 * 60; m += 20) expect(await sessionUser(db(), r.token, { now: at(m * 60_000), config }), `minute ${m}`).not.toBeNull();
    // ...but not past 12 h.
    expect(await sessionUser(db(), r.token, { now: at(12 * 3_600_000 + 1), config })).toBeNull();

    const idle = await login(db(), { name: "alice", password: PW, address: "192.0.2.1", now: T0, config });
    if (!idle.ok) throw new Error("login failed");
    expect(await sessionUser(db(), idle.token, { now: at(29 * 60_000), config })).not.toBeNull();
    expect(await sessionUser(db(), idle.token, { now: at(29 * 60_000 + 30 * 60_000), config })).toBeNull();
    // The expired row is gone.
    expect(await db().session.findUnique({ where: { id: tokenHash(idle.token) } })).toBeNull();
  });

  it("a read that does not touch (the pages' API polling) does not extend the session", async () => {
    const r = await login(db(), { name: "alice", password: PW, address: "192.0.2.1", now: T0, config });
    if (!r.ok) throw new Error("login failed");
    for (let m = 5; m < 30; m += 5) expect(await sessionUser(db(), r.token, { now: at(m * 60_000), config, touch: false })).not.toBeNull();
    expect(await sessionUser(db(), r.token, { now: at(30 * 60_000), config, touch: false })).toBeNull();
  });

  it("a password change ends the user's sessions", async () => {
    const r = await login(db(), { name: "vic", password: PW, address: "192.0.2.9", now: T0, config });
    if (!r.ok) throw new Error("login failed");
    await setPassword(db(), "vic", "another good password");
    expect(await sessionUser(db(), r.token, { now: at(1000), config })).toBeNull();
    await setPassword(db(), "vic", PW);
  });
});

describe("failed logins", () => {
  it("one message for a wrong password and an unknown user; the 6th try is locked, the right password refused until the lock ends", async () => {
    const address = "198.51.100.20";
    const wrong = await login(db(), { name: "alice", password: "wrong password", address, now: T0, config });
    const unknown = await login(db(), { name: "nobody", password: PW, address: "198.51.100.21", now: T0, config });
    expect(wrong).toEqual({ ok: false, message: LOGIN_REFUSED });
    expect(unknown).toEqual({ ok: false, message: LOGIN_REFUSED });
    for (let i = 2; i <= 6; i++) {
      const addr = `198.51.100.${30 + i}`; // other addresses: the user's own limit
      expect((await login(db(), { name: "alice", password: "wrong password", address: addr, now: at(i * 1000), config })).ok).toBe(false);
    }
    // Locked: the right password is refused, with the same message.
    expect(await login(db(), { name: "alice", password: PW, address: "192.0.2.50", now: at(10_000), config })).toEqual({ ok: false, message: LOGIN_REFUSED });
    expect((await login(db(), { name: "alice", password: PW, address: "192.0.2.50", now: at(5_000 + 15 * 60_000 - 1000), config })).ok).toBe(false);
    // Another user is not affected.
    expect((await login(db(), { name: "vic", password: PW, address: "192.0.2.51", now: at(10_000), config })).ok).toBe(true);
    // The lock ends.
    expect((await login(db(), { name: "alice", password: PW, address: "192.0.2.50", now: at(5_000 + 15 * 60_000 + 1000), config })).ok).toBe(true);
  });

  it("an address that fails for many names is locked too", async () => {
    const address = "203.0.113.77";
    const base = at(3_600_000);
    for (let i = 0; i < 5; i++) await login(db(), { name: `guess${i}`, password: "x", address, now: new Date(base.getTime() + i), config });
    expect((await login(db(), { name: "vic", password: PW, address, now: new Date(base.getTime() + 10), config })).ok).toBe(false);
    expect((await login(db(), { name: "vic", password: PW, address: "203.0.113.78", now: new Date(base.getTime() + 10), config })).ok).toBe(true);
    expect((await login(db(), { name: "vic", password: PW, address, now: new Date(base.getTime() + 15 * 60_000 + 100), config })).ok).toBe(true);
  });
});

describe("audit log", () => {
  it("every login, failure and locked try is recorded with its name and address", async () => {
    const rows = await db().auditEntry.findMany({ where: { action: "login" }, orderBy: { id: "asc" } });
    const alice = rows.filter((r) => r.actor === "alice");
    expect(alice.some((r) => r.result === "ok" && r.address === "192.0.2.1" && r.via === "session")).toBe(true);
    expect(alice.filter((r) => r.result === "failed").length).toBeGreaterThanOrEqual(5);
    expect(alice.some((r) => r.result === "failed" && /locked now: user:alice/.test(r.detail ?? ""))).toBe(true);
    expect(alice.some((r) => r.result === "locked" && r.address === "192.0.2.50")).toBe(true);
    expect(rows.some((r) => r.actor === "nobody" && r.result === "failed" && r.detail === "no such user")).toBe(true);
    expect(rows.some((r) => r.address === "203.0.113.77" && /locked now: addr:203\.0\.113\.77/.test(r.detail ?? ""))).toBe(true);
    const logout = await db().auditEntry.findFirst({ where: { action: "logout", actor: "alice" } });
    expect(logout?.result).toBe("ok");
  });
});

describe("first administrator", () => {
  it("the setup token works once, only with no user", async () => {
    const fresh0 = await createTestDatabase("authfresh");
    dbs.push(fresh0);
    const other = fresh0.url;
    await migrate(other);
    const fresh = getPrisma(other);
    try {
      const token = await makeSetupToken(fresh);
      expect(token).toBeTruthy();
      expect(await setupTokenValid(fresh, token)).toBe(true);
      expect(await setupTokenValid(fresh, "forged")).toBe(false);
      await expect(completeSetup(fresh, token!, "root", "short")).rejects.toThrow(/at least 10/);
      expect(await setupTokenValid(fresh, token)).toBe(true); // a refused password gives the token back
      expect((await completeSetup(fresh, token!, "root", PW)).role).toBe("admin");
      await expect(completeSetup(fresh, token!, "root2", PW)).rejects.toThrow(/not valid/);
      expect(await makeSetupToken(fresh)).toBeNull();
      await removeUser(fresh, "root");
    } finally {
      await disconnectPrisma(other);
    }
  });
});

describe("API tokens", () => {
  it("a token acts as its user with its own role, never above the user's; the secret is stored hashed", async () => {
    const { secret, token } = await createToken(db(), { user: "alice", role: "operator", name: "ci", now: T0 });
    expect(secret).toMatch(/^nft_[A-Za-z0-9_-]{43}$/);
    expect(token).toMatchObject({ user: "alice", role: "operator", name: "ci", expiresAt: null });
    const row = await db().apiToken.findUniqueOrThrow({ where: { id: token.id } });
    expect(row.secretHash).toBe(tokenHash(secret));
    expect(JSON.stringify(row)).not.toContain(secret.slice(4));
    expect(await tokenUser(db(), secret, { now: at(1000) })).toMatchObject({ name: "alice", role: "operator", tokenId: token.id });
    expect((await listTokens(db(), "alice")).find((t) => t.id === token.id)?.lastUsedAt).toEqual(at(1000));
    await expect(createToken(db(), { user: "vic", role: "admin" })).rejects.toThrow(/cannot have the higher role admin/);
    // A user demoted after the token was made: the token shrinks with them.
    await db().user.update({ where: { name: "alice" }, data: { role: "viewer" } });
    expect((await tokenUser(db(), secret))?.role).toBe("viewer");
    await db().user.update({ where: { name: "alice" }, data: { role: "admin" } });
  });

  it("expired, revoked, unknown or malformed: no user", async () => {
    const short = await createToken(db(), { user: "vic", expires: "1h", now: T0 });
    expect(short.token.expiresAt).toEqual(at(3_600_000));
    expect(await tokenUser(db(), short.secret, { now: at(3_599_000) })).not.toBeNull();
    expect(await tokenUser(db(), short.secret, { now: at(3_600_000) })).toBeNull();
    const revoked = await createToken(db(), { user: "vic" });
    await revokeToken(db(), revoked.token.id);
    expect(await tokenUser(db(), revoked.secret)).toBeNull();
    await expect(revokeToken(db(), revoked.token.id)).rejects.toThrow(/no unrevoked token/);
    expect(await tokenUser(db(), "nft_unknown")).toBeNull();
    expect(await tokenUser(db(), revoked.secret.slice(4))).toBeNull();
    expect([bearer("Bearer nft_x"), bearer("bearer  nft_x "), bearer("Basic abc"), bearer(undefined)]).toEqual(["nft_x", "nft_x", null, null]);
  });
});

describe("roles, gate, configuration", () => {
  it("viewer < operator < admin", () => {
    expect([can("viewer", "read"), can("viewer", "operate"), can("operator", "operate"), can("operator", "administer"), can("admin", "administer")]).toEqual([true, false, true, false, true]);
    expect(can("root", "read")).toBe(false);
  });
  it("only the login and setup pages and static files are public", () => {
    expect(isPublic("GET", "/login?next=%2F")).toBe(true);
    expect(isPublic("POST", "/login")).toBe(true);
    expect(isPublic("GET", "/_next/static/chunks/a.js")).toBe(true);
    for (const [m, u] of [["GET", "/"], ["GET", "/farms/app"], ["GET", "/api/drift"], ["POST", "/"], ["POST", "/_next/static/x"], ["GET", "/%6cogin"], ["GET", "/_next/static/../../api/drift"], ["GET", "//login"]] as const) {
      expect(isPublic(m, u), `${m} ${u}`).toBe(false);
    }
  });
  it("the pages only administrators may open, and the 403 page escapes what it says", () => {
    for (const u of ["/users", "/users/", "/users?x=1", "/users/anything"]) expect(adminPage(u)?.path, u).toBe("/users");
    for (const u of ["/", "/usersx", "/account", "/history", "/api/users"]) expect(adminPage(u), u).toBeNull();
    expect(forbiddenPage("<script>x</script> & 'q'")).toContain("&#60;script&#62;x&#60;/script&#62; &#38; &#39;q&#39;");
  });
  it("durations and limits from the environment", () => {
    expect(authConfig({})).toEqual(config);
    expect(parseDuration("X", "90s", 0)).toBe(90_000);
    expect(authConfig({ NATFARM_LOGIN_LOCK: "3s", NATFARM_SESSION_IDLE: "5m", NATFARM_LOGIN_MAX_FAILURES: "3" })).toMatchObject({ lockMs: 3000, idleMs: 300_000, maxFailures: 3, addressMaxFailures: 3 });
    expect(() => authConfig({ NATFARM_SESSION_LIFETIME: "soon" })).toThrow(/NATFARM_SESSION_LIFETIME/);
  });
});
