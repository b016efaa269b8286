import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { changeOwnPassword, createOwnToken, revokeOwnToken } from "../../lib/auth/account.ts";
import { AuditFilterSchema, audit, auditFilterInput, auditJsonLines, auditKind } from "../../lib/auth/audit.ts";
import type { AuthConfig } from "../../lib/auth/config.ts";
import { open } from "../../lib/auth/secret-box.ts";
import { CHALLENGE_ENDED, CHALLENGE_MS, CODE_ASKED, CODE_REFUSED, LOGIN_REFUSED, TOTP_UNAVAILABLE, completeLogin, login, sessionUser } from "../../lib/auth/sessions.ts";
import { codeFor, confirmEnrolment, disableTotp, pendingEnrolment, resetTotp, startEnrolment } from "../../lib/auth/totp.ts";
import { addUser, allTokens, changeRole, deleteUser, RefusedError, resetPassword, revokeAnyToken, unlockUser, usersOverview, type AdminActor } from "../../lib/auth/user-admin.ts";
import { createUser } from "../../lib/auth/users.ts";
import { disconnectPrisma, getPrisma } from "../../lib/db/client.ts";
import { migrate } from "../../lib/db/migrate.ts";
import { createTestDatabase, type TestDatabase } from "../helpers/db.ts";

/**
 * The account side of lib/auth against a real migrated database (SQLite, and PostgreSQL in vitest's postgresql project), with
 * the clock passed in: the TOTP second factor (enrolment, the login's second
 * step, wrong codes toward the lock, replay, disabling, reset), a password
 * change ending the other sessions, the users page's admin operations and
 * their refusal for other roles, and the audit log's filtered JSON lines.
 */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "natfarm-auth-account-"));
let tdb: TestDatabase;
let url = "";
const keyFile = path.join(dir, "keys", "totp.key");
const db = () => getPrisma(url);
const config: AuthConfig = { idleMs: 30 * 60_000, lifetimeMs: 12 * 3_600_000, maxFailures: 5, addressMaxFailures: 1000, windowMs: 15 * 60_000, lockMs: 15 * 60_000 };
// On a step boundary: T0 + 30 s is the next code.
const T0 = new Date("2026-12-01T08:00:00Z");
const at = (ms: number) => new Date(T0.getTime() + ms);
const PW = "correct horse battery";
const ADDR = "192.0.2.10";
let savedKeyEnv: string | undefined;

const state = async () => JSON.stringify(await db().user.findMany({ orderBy: { id: "asc" }, select: { name: true, role: true, passwordHash: true, totpSecret: true } })) + JSON.stringify(await db().apiToken.findMany({ select: { id: true, revokedAt: true } }));

beforeAll(async () => {
  savedKeyEnv = process.env.NATFARM_TOTP_KEY_FILE;
  process.env.NATFARM_TOTP_KEY_FILE = keyFile;
  tdb = await createTestDatabase("authaccount");
  url = tdb.url;
  await migrate(url);
  for (const [n, r] of [["ada", "admin"], ["otto", "operator"], ["val", "viewer"], ["tess", "operator"]] as const) await createUser(db(), n, r, PW);
});
afterAll(async () => {
  if (savedKeyEnv === undefined) delete process.env.NATFARM_TOTP_KEY_FILE;
  else process.env.NATFARM_TOTP_KEY_FILE = savedKeyEnv;
  await disconnectPrisma(url);
  await tdb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const idOf = async (name: string) => (await db().user.findUniqueOrThrow({ where: { name } })).id;

describe("TOTP second factor", () => {
  let secret = "";

  it("enrolment: a pending secret (encrypted at rest, shown until confirmed) becomes active only with a right code", async () => {
    const id = await idOf("tess");
    const e = await startEnrolment(db(), id);
    expect(e.secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(e.uri).toMatch(/^otpauth:\/\/totp\/natfarm:tess\?/);
    expect(e.uri).toContain(`secret=${e.secret}`);
    secret = e.secret;
    const row = await db().user.findUniqueOrThrow({ where: { id } });
    expect(row.totpPending).not.toContain(secret);
    expect(row.totpSecret).toBeNull();
    expect(fs.statSync(keyFile).mode & 0o777).toBe(0o600);
    // Bound to its user: the same ciphertext does not open for another id.
    expect(() => open(row.totpPending!, id + 1)).toThrow(/does not decrypt/);
    expect((await pendingEnrolment(db(), id))?.secret).toBe(secret);
    // Until confirmed the password alone still logs in.
    expect((await login(db(), { name: "tess", password: PW, address: ADDR, now: T0, config })).ok).toBe(true);
    await expect(confirmEnrolment(db(), id, "000000", T0)).rejects.toThrow(/does not match/);
    await expect(confirmEnrolment(db(), id, "12ab", T0)).rejects.toThrow(/6 digits/);
    expect((await db().user.findUniqueOrThrow({ where: { id } })).totpSecret).toBeNull();
    await confirmEnrolment(db(), id, codeFor(secret, T0), T0);
    const on = await db().user.findUniqueOrThrow({ where: { id } });
    expect(on.totpSecret).toBe(row.totpPending);
    expect(on.totpPending).toBeNull();
    // The active secret is never handed out again.
    expect(await pendingEnrolment(db(), id)).toBeNull();
    await expect(startEnrolment(db(), id)).rejects.toThrow(/already on/);
  });

  it("a login needs the code: the password opens a half-login only; the confirming code cannot be replayed; the next code opens a session", async () => {
    const r = await login(db(), { name: "tess", password: PW, address: ADDR, now: at(5_000), config });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toBe(CODE_ASKED);
    expect(r.challenge).toBeTruthy();
    expect(await sessionUser(db(), r.challenge, { now: at(5_000), config })).toBeNull();
    // The enrolment's own code, same step: refused as a replay, and counted.
    const replay = await completeLogin(db(), { challenge: r.challenge, code: codeFor(secret, T0), address: ADDR, now: at(6_000), config });
    expect(replay).toEqual({ ok: false, message: CODE_REFUSED });
    // From another address the half-login is worthless (and ended).
    expect(await completeLogin(db(), { challenge: r.challenge, code: codeFor(secret, at(31_000)), address: "192.0.2.99", now: at(31_000), config })).toMatchObject({ ok: false, restart: true, message: CHALLENGE_ENDED });
    const again = await login(db(), { name: "tess", password: PW, address: ADDR, now: at(31_000), config });
    if (again.ok) throw new Error("no code asked");
    const ok = await completeLogin(db(), { challenge: again.challenge, code: codeFor(secret, at(31_000)), address: ADDR, now: at(31_000), config });
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    expect((await sessionUser(db(), ok.token, { now: at(32_000), config }))?.name).toBe("tess");
    // Used once: the same code at once again is refused.
    const third = await login(db(), { name: "tess", password: PW, address: ADDR, now: at(40_000), config });
    if (third.ok) throw new Error("no code asked");
    expect(await completeLogin(db(), { challenge: third.challenge, code: codeFor(secret, at(31_000)), address: ADDR, now: at(40_000), config })).toEqual({ ok: false, message: CODE_REFUSED });
    // The half-login ends after CHALLENGE_MS.
    expect(await completeLogin(db(), { challenge: third.challenge, code: codeFor(secret, at(40_000 + CHALLENGE_MS)), address: ADDR, now: at(40_000 + CHALLENGE_MS), config })).toMatchObject({ ok: false, restart: true });
    const rows = await db().auditEntry.findMany({ where: { actor: "tess", action: { in: ["login", "login.password"] } }, orderBy: { id: "asc" } });
    expect(rows.some((a) => a.action === "login.password" && a.result === "ok")).toBe(true);
    expect(rows.some((a) => a.action === "login" && a.result === "failed" && /replay/.test(a.detail ?? ""))).toBe(true);
    expect(rows.some((a) => a.action === "login" && a.result === "ok" && /TOTP/.test(a.detail ?? ""))).toBe(true);
    expect(auditKind("login.password")).toBe("session");
    expect((await db().user.findUniqueOrThrow({ where: { name: "tess" } })).lastLoginAt).toEqual(at(31_000));
  });

  it("wrong codes count toward the same lock as wrong passwords: then the right password and code are refused until it ends", async () => {
    const base = at(3_600_000);
    // The replays above were failures within another window: start clean.
    const start = await login(db(), { name: "tess", password: PW, address: ADDR, now: base, config });
    if (start.ok) throw new Error("no code asked");
    // Two wrong passwords and three wrong codes: five failures.
    for (let i = 0; i < 2; i++) expect((await login(db(), { name: "tess", password: "wrong one", address: ADDR, now: new Date(base.getTime() + 1000 + i), config })).ok).toBe(false);
    for (let i = 0; i < 2; i++) expect(await completeLogin(db(), { challenge: start.challenge, code: "000000", address: ADDR, now: new Date(base.getTime() + 2000 + i), config })).toEqual({ ok: false, message: CODE_REFUSED });
    const fifth = await completeLogin(db(), { challenge: start.challenge, code: "000000", address: ADDR, now: new Date(base.getTime() + 3000), config });
    expect(fifth).toMatchObject({ ok: false, restart: true, message: LOGIN_REFUSED });
    expect(await db().loginLock.findUnique({ where: { key: "user:tess" } })).not.toBeNull();
    const t = new Date(base.getTime() + 60_000);
    expect(await login(db(), { name: "tess", password: PW, address: ADDR, now: t, config })).toEqual({ ok: false, message: LOGIN_REFUSED });
    const audit = await db().auditEntry.findMany({ where: { actor: "tess", action: "login", result: "failed" } });
    expect(audit.some((a) => /wrong TOTP code; locked now: user:tess/.test(a.detail ?? ""))).toBe(true);
    // After the lock: password and code again.
    const later = new Date(base.getTime() + 3000 + config.lockMs + 1000);
    const r = await login(db(), { name: "tess", password: PW, address: ADDR, now: later, config });
    if (r.ok) throw new Error("no code asked");
    expect((await completeLogin(db(), { challenge: r.challenge, code: codeFor(secret, later), address: ADDR, now: later, config })).ok).toBe(true);
  });

  it("disabling needs the password and a current code; a reset (lost device) turns it off and ends half-logins", async () => {
    const id = await idOf("tess");
    const now = at(7_200_000);
    await expect(disableTotp(db(), id, "wrong password", codeFor(secret, now), now)).rejects.toThrow(/password is not right/);
    await expect(disableTotp(db(), id, PW, "123456", now)).rejects.toThrow(/does not match/);
    expect((await db().user.findUniqueOrThrow({ where: { id } })).totpSecret).not.toBeNull();
    await disableTotp(db(), id, PW, codeFor(secret, now), now);
    expect((await db().user.findUniqueOrThrow({ where: { id } })).totpSecret).toBeNull();
    expect((await login(db(), { name: "tess", password: PW, address: ADDR, now: at(7_300_000), config })).ok).toBe(true);

    // Enrol again, then the administrator's reset.
    const e = await startEnrolment(db(), id);
    const t2 = at(7_400_010);
    await confirmEnrolment(db(), id, codeFor(e.secret, t2), t2);
    const half = await login(db(), { name: "tess", password: PW, address: ADDR, now: at(7_400_100), config });
    expect(half.ok).toBe(false);
    expect(await resetTotp(db(), "tess")).toEqual({ wasOn: true });
    expect(await db().loginChallenge.count({ where: { userId: id } })).toBe(0);
    expect((await login(db(), { name: "tess", password: PW, address: ADDR, now: at(7_500_000), config })).ok).toBe(true);
  });
});

describe("TOTP with its key gone", () => {
  it("a lost or replaced key file: the code step says what to do (no 500), a pending enrolment is dropped; totp-reset lets the user in", async () => {
    await createUser(db(), "kira", "viewer", PW);
    const id = await idOf("kira");
    const e = await startEnrolment(db(), id);
    const t = at(9_000_000);
    await confirmEnrolment(db(), id, codeFor(e.secret, t), t);
    const moved = `${keyFile}.away`;
    fs.renameSync(keyFile, moved);
    try {
      const r = await login(db(), { name: "kira", password: PW, address: ADDR, now: at(9_100_000), config });
      if (r.ok) throw new Error("no code asked");
      expect(await completeLogin(db(), { challenge: r.challenge, code: codeFor(e.secret, at(9_100_000)), address: ADDR, now: at(9_100_000), config })).toMatchObject({ ok: false, restart: true, message: TOTP_UNAVAILABLE });
      // A pending enrolment sealed with the lost key: dropped, not a 500.
      const sealed = (await db().user.findUniqueOrThrow({ where: { id } })).totpSecret;
      await db().user.update({ where: { id }, data: { totpSecret: null, totpPending: sealed } });
      expect(await pendingEnrolment(db(), id)).toBeNull();
      expect((await db().user.findUniqueOrThrow({ where: { id } })).totpPending).toBeNull();
    } finally {
      fs.renameSync(moved, keyFile);
    }
    expect(await resetTotp(db(), "kira")).toEqual({ wasOn: false });
    expect((await login(db(), { name: "kira", password: PW, address: ADDR, now: at(9_200_000), config })).ok).toBe(true);
  });
});

describe("own account", () => {
  it("a password change needs the current password and ends the user's other sessions, not this one", async () => {
    const a = await login(db(), { name: "otto", password: PW, address: ADDR, now: T0, config });
    const b = await login(db(), { name: "otto", password: PW, address: "192.0.2.11", now: T0, config });
    if (!a.ok || !b.ok) throw new Error("login failed");
    const actor = { id: a.user.id, name: "otto", sessionId: a.user.sessionId };
    const before = (await db().user.findUniqueOrThrow({ where: { name: "otto" } })).passwordHash;
    await expect(changeOwnPassword(db(), actor, { current: "not it at all", next: "a new good password", address: ADDR, now: T0, config })).rejects.toThrow(/current password is not right/);
    await expect(changeOwnPassword(db(), actor, { current: PW, next: "short", address: ADDR, now: T0, config })).rejects.toThrow(/at least 10/);
    expect((await db().user.findUniqueOrThrow({ where: { name: "otto" } })).passwordHash).toBe(before);
    // The wrong current password was counted as a failed login of otto.
    expect(await db().loginAttempt.count({ where: { name: "otto", ok: false } })).toBe(1);
    expect(await changeOwnPassword(db(), actor, { current: PW, next: "a new good password", address: ADDR, now: T0, config })).toEqual({ endedSessions: 1 });
    expect(await sessionUser(db(), a.token, { now: at(1000), config })).not.toBeNull();
    expect(await sessionUser(db(), b.token, { now: at(1000), config })).toBeNull();
    expect((await login(db(), { name: "otto", password: PW, address: ADDR, now: at(2000), config })).ok).toBe(false);
    expect((await login(db(), { name: "otto", password: "a new good password", address: ADDR, now: at(3000), config })).ok).toBe(true);
  });

  it("own tokens: role no higher than one's own, revoking only one's own", async () => {
    const otto = { id: await idOf("otto"), name: "otto", sessionId: "x" };
    const val = { id: await idOf("val"), name: "val", sessionId: "y" };
    await expect(createOwnToken(db(), otto, { name: "ci", role: "admin", expires: "30d" })).rejects.toThrow(/cannot have the higher role admin/);
    const { secret, token } = await createOwnToken(db(), otto, { name: "ci", role: "viewer", expires: "30d" });
    expect(secret).toMatch(/^nft_/);
    expect(token.expiresAt!.getTime() - Date.now()).toBeGreaterThan(29 * 86_400_000);
    await expect(revokeOwnToken(db(), val, token.id)).rejects.toThrow(/no unrevoked token/);
    expect((await db().apiToken.findUniqueOrThrow({ where: { id: token.id } })).revokedAt).toBeNull();
    await revokeOwnToken(db(), otto, token.id);
    expect((await db().apiToken.findUniqueOrThrow({ where: { id: token.id } })).revokedAt).not.toBeNull();
  });
});

describe("users page operations", () => {
  const admin: AdminActor = { id: 0, name: "ada", role: "admin" };

  it("an operator or a viewer is refused every operation, and nothing changes", async () => {
    const tok = await createOwnToken(db(), { id: await idOf("val"), name: "val", sessionId: "v" }, { name: "v", role: "viewer", expires: "never" });
    await db().loginLock.upsert({ where: { key: "user:val" }, create: { key: "user:val", until: at(86_400_000 * 400) }, update: { until: at(86_400_000 * 400) } });
    const before = await state();
    for (const role of ["operator", "viewer"] as const) {
      const actor: AdminActor = { id: 1, name: role === "operator" ? "otto" : "val", role };
      const tries: [string, () => Promise<unknown>][] = [
        ["list", () => usersOverview(db(), actor)],
        ["tokens", () => allTokens(db(), actor)],
        ["add", () => addUser(db(), actor, { name: "mallory", role: "admin", password: PW })],
        ["role", () => changeRole(db(), actor, role === "operator" ? "otto" : "val", "admin")],
        ["reset", () => resetPassword(db(), actor, "ada", "taken over now!!")],
        ["unlock", () => unlockUser(db(), actor, "val")],
        ["remove", () => deleteUser(db(), actor, "ada", { confirmSelf: true })],
        ["revoke", () => revokeAnyToken(db(), actor, tok.token.id)],
      ];
      for (const [what, run] of tries) {
        const e = await run().then(() => null, (x: unknown) => x);
        expect(e, `${role} ${what}`).toBeInstanceOf(RefusedError);
        expect((e as Error).message).toMatch(new RegExp(`needs the admin role; you are signed in as ${role}\\. Nothing was changed\\.`));
      }
    }
    expect(await state()).toBe(before);
    expect((await db().loginLock.findUniqueOrThrow({ where: { key: "user:val" } })).until).toEqual(at(86_400_000 * 400));
  });

  it("an admin adds, changes role, resets, unlocks, revokes, removes; never the last admin; not oneself without confirming", async () => {
    const now = new Date();
    const u = await addUser(db(), admin, { name: "newbie", role: "viewer", password: PW });
    expect(u.role).toBe("viewer");
    await expect(addUser(db(), admin, { name: "newbie", role: "viewer", password: PW })).rejects.toThrow(/already exists/);
    expect(await changeRole(db(), admin, "newbie", "operator")).toEqual({ from: "viewer", to: "operator" });
    await expect(changeRole(db(), admin, "newbie", "root")).rejects.toThrow(/role "root"/);
    // ada is the only admin.
    await expect(changeRole(db(), admin, "ada", "viewer")).rejects.toThrow(/last administrator/);
    await expect(deleteUser(db(), admin, "ada", { confirmSelf: true })).rejects.toThrow(/last administrator/);
    await expect(deleteUser(db(), admin, "ada")).rejects.toThrow(/removing yourself/);
    expect((await db().user.findUniqueOrThrow({ where: { name: "ada" } })).role).toBe("admin");

    const s = await login(db(), { name: "newbie", password: PW, address: ADDR, now, config });
    if (!s.ok) throw new Error("login failed");
    await resetPassword(db(), admin, "newbie", "reset by the admin");
    expect(await sessionUser(db(), s.token, { config })).toBeNull();

    const overview = await usersOverview(db(), admin, now);
    const val = overview.find((x) => x.name === "val")!;
    expect(val.lockedUntil).not.toBeNull();
    expect(overview.find((x) => x.name === "newbie")).toMatchObject({ role: "operator", lastLoginAt: now, totp: false, lockedUntil: null });
    expect(await unlockUser(db(), admin, "val", now)).toEqual({ wasLocked: true });
    expect((await usersOverview(db(), admin, new Date(now.getTime() + 1))).find((x) => x.name === "val")!.lockedUntil).toBeNull();
    expect((await login(db(), { name: "val", password: PW, address: ADDR, now: new Date(now.getTime() + 10), config })).ok).toBe(true);

    const t = (await allTokens(db(), admin)).find((x) => x.user === "val" && !x.revokedAt)!;
    expect((await revokeAnyToken(db(), admin, t.id)).user).toBe("val");
    await expect(revokeAnyToken(db(), admin, t.id)).rejects.toThrow(/no unrevoked token/);

    // With a second admin, the first may remove itself (confirmed).
    await changeRole(db(), admin, "newbie", "admin");
    await deleteUser(db(), admin, "ada", { confirmSelf: true });
    expect(await db().user.findUnique({ where: { name: "ada" } })).toBeNull();
  });
});

describe("audit log export", () => {
  it("JSON lines of the filtered entries, newest first, along the cursor, every matching row", async () => {
    const d = db();
    await audit(d, { actor: "exp-a", via: "session", action: "login", result: "ok" });
    await d.auditEntry.createMany({
      data: Array.from({ length: 2500 }, (_, i) => ({ actor: i % 2 ? "exp-a" : "exp-b", via: "session", address: "192.0.2.5", action: i % 5 ? "creating a farm" : "refused", farm: `f${i % 3}`, result: i % 5 ? "ok" : "refused", detail: `n${i}` })),
    });
    const f = AuditFilterSchema.parse(auditFilterInput(new URLSearchParams("actor=exp-a&kind=change&farm=&result=ok")));
    const lines: string[] = [];
    for await (const l of auditJsonLines(d, f)) lines.push(l);
    const recs = lines.map((l) => JSON.parse(l) as { id: number; actor: string; kind: string; result: string; detail: string });
    const want = Array.from({ length: 2500 }, (_, i) => i).filter((i) => i % 2 === 1 && i % 5 !== 0);
    expect(recs.length).toBe(want.length);
    expect(recs.every((r) => r.actor === "exp-a" && r.kind === "change" && r.result === "ok")).toBe(true);
    expect(recs.map((r) => r.detail)).toEqual(want.reverse().map((i) => `n${i}`));
    expect(lines.every((l) => l.endsWith("\n") && !l.slice(0, -1).includes("\n"))).toBe(true);
    // A limit and a cursor are honoured; bad filters are refused by the schema.
    const two: string[] = [];
    for await (const l of auditJsonLines(d, AuditFilterSchema.parse({ actor: "exp-b", before: recs[0]!.id }), 2)) two.push(l);
    expect(two.map((l) => JSON.parse(l).id)).toEqual([recs[0]!.id - 1, recs[0]!.id - 3]);
    expect(AuditFilterSchema.safeParse(auditFilterInput({ kind: "everything" })).success).toBe(false);
    expect(AuditFilterSchema.safeParse(auditFilterInput({ actor: ["a", "b"] })).success).toBe(false);
    expect(AuditFilterSchema.safeParse(auditFilterInput({ format: "csv" })).success).toBe(false);
  });
});
