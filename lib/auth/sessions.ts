import { createHash, randomBytes } from "node:crypto";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { audit } from "./audit.ts";
import { authConfig, type AuthConfig } from "./config.ts";
import { burnVerification, verifyPassword } from "./passwords.ts";
import { isRole, type Role } from "./roles.ts";
import { SecretBoxError } from "./secret-box.ts";
import { checkCode } from "./totp.ts";

/**
 * Server-side sessions. A login hands the browser a random 256-bit token in
 * a cookie; the database keeps only its SHA-256 (a copy of the database
 * opens no session), the user, when it was last used (idle timeout) and when
 * it ends whatever its use (absolute lifetime). Logout deletes the row, so
 * the cookie is worthless afterwards.
 *
 * Failed logins are counted per typed user name and per client address in
 * a window (LoginAttempt); reaching the limit writes a lock (LoginLock) for
 * the lock's duration, during which that name or address cannot log in even
 * with the right password. Every refusal says the same sentence.
 */
export const LOGIN_REFUSED = "Wrong user name or password, or too many failed attempts. Try again later.";

export interface SessionUser {
  id: number;
  name: string;
  role: Role;
  sessionId: string;
  expiresAt: Date;
}

export function tokenHash(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function newToken(): string {
  return randomBytes(32).toString("base64url");
}

/**
 * `challenge`: the password was right and the user has a second factor: no
 * session yet, the code is due (completeLogin) with this token, which the
 * browser keeps in a short-lived cookie.
 */
export type LoginResult = { ok: true; token: string; user: SessionUser } | { ok: false; message: string; challenge?: string };

export const CODE_ASKED = "Enter the 6-digit code from your authenticator app.";
export const CODE_REFUSED = "That code is wrong or was used already. Enter the current code from your authenticator app.";
export const CHALLENGE_ENDED = "The login was not finished in time (or was refused): log in again.";
export const TOTP_UNAVAILABLE = "Your second factor cannot be checked on this console (its encryption key is missing or was replaced): an administrator can reset it with natfarm user totp-reset.";
/** How long a half-login waits for its code. */
export const CHALLENGE_MS = 5 * 60_000;

export const userKey = (name: string) => `user:${name}`;
export const addrKey = (address: string) => `addr:${address}`;

export async function locked(db: PrismaClient, keys: string[], now: Date): Promise<boolean> {
  const n = await db.loginLock.count({ where: { key: { in: keys }, until: { gt: now } } });
  return n > 0;
}

/** Failures counted since the window began, and not before a lock on the same key ended (a lock is not served twice for the same failures). */
/** Records a failure; returns the keys it locked ("user:NAME", "addr:ADDRESS"). */
export async function recordFailure(db: PrismaClient, name: string, address: string, now: Date, c: AuthConfig): Promise<string[]> {
  const lockedNow: string[] = [];
  await db.loginAttempt.create({ data: { at: now, name, address, ok: false } });
  const windowStart = new Date(now.getTime() - c.windowMs);
  for (const [key, where, max] of [
    [userKey(name), { name }, c.maxFailures],
    [addrKey(address), { address }, c.addressMaxFailures],
  ] as const) {
    const prior = await db.loginLock.findUnique({ where: { key } });
    const since = prior && prior.until > windowStart ? prior.until : windowStart;
    const failures = await db.loginAttempt.count({ where: { ...where, ok: false, at: { gt: since } } });
    if (failures >= max) {
      const until = new Date(now.getTime() + c.lockMs);
      await db.loginLock.upsert({ where: { key }, create: { key, until }, update: { until } });
      lockedNow.push(key);
    }
  }
  return lockedNow;
}

export async function login(
  db: PrismaClient,
  input: { name: string; password: string; address: string; now?: Date; config?: AuthConfig },
): Promise<LoginResult> {
  const c = input.config ?? authConfig();
  const now = input.now ?? new Date();
  const name = input.name.trim().toLowerCase().slice(0, 64);
  const address = input.address || "unknown";
  const refused = { ok: false as const, message: LOGIN_REFUSED };
  if (await locked(db, [userKey(name), addrKey(address)], now)) {
    // Tries during a lock are recorded, but do not lengthen it.
    await db.loginAttempt.create({ data: { at: now, name, address, ok: false } });
    await burnVerification(input.password);
    await audit(db, { at: now, actor: name, via: "anonymous", address, action: "login", result: "locked", detail: "refused: the user name or the address is locked after repeated failures" });
    return refused;
  }
  const user = name ? await db.user.findUnique({ where: { name } }) : null;
  const good = user ? await verifyPassword(user.passwordHash, input.password) : (await burnVerification(input.password), false);
  if (!user || !good || !isRole(user.role)) {
    const lockedNow = await recordFailure(db, name, address, now, c);
    await audit(db, { at: now, actor: name, via: "anonymous", address, action: "login", result: "failed", detail: `${user ? "wrong password" : "no such user"}${lockedNow.length ? `; locked now: ${lockedNow.join(", ")}` : ""}` });
    return refused;
  }
  if (user.totpSecret) {
    // The password alone opens nothing: a half-login waits for the code (completeLogin).
    const challenge = newToken();
    await db.loginChallenge.deleteMany({ where: { OR: [{ userId: user.id }, { expiresAt: { lte: now } }] } });
    await db.loginChallenge.create({ data: { id: tokenHash(challenge), userId: user.id, createdAt: now, expiresAt: new Date(now.getTime() + CHALLENGE_MS), address } });
    await audit(db, { at: now, actor: user.name, via: "anonymous", address, action: "login.password", result: "ok", detail: "password right; the TOTP code is asked (no session yet)" });
    return { ok: false, message: CODE_ASKED, challenge };
  }
  return openSession(db, { id: user.id, name: user.name, role: user.role as Role }, address, now, c, `role ${user.role}`);
}

async function openSession(db: PrismaClient, user: { id: number; name: string; role: Role }, address: string, now: Date, c: AuthConfig, detail: string): Promise<LoginResult> {
  await db.loginAttempt.create({ data: { at: now, name: user.name, address, ok: true } });
  const token = newToken();
  const id = tokenHash(token);
  const expiresAt = new Date(now.getTime() + c.lifetimeMs);
  await db.session.create({ data: { id, userId: user.id, createdAt: now, lastSeenAt: now, expiresAt, address } });
  await db.user.updateMany({ where: { id: user.id }, data: { lastLoginAt: now } });
  await audit(db, { at: now, actor: user.name, via: "session", address, action: "login", result: "ok", detail });
  // Old attempts are of no further use.
  await db.loginAttempt.deleteMany({ where: { at: { lt: new Date(now.getTime() - Math.max(c.windowMs, c.lockMs) - 86_400_000) } } });
  return { ok: true, token, user: { id: user.id, name: user.name, role: user.role, sessionId: id, expiresAt } };
}

/** Whether a half-login is still waiting for its code (the login page then asks for it). */
export async function challengeValid(db: PrismaClient, challenge: string | undefined | null, now = new Date()): Promise<boolean> {
  if (!challenge || challenge.length > 200) return false;
  return (await db.loginChallenge.count({ where: { id: tokenHash(challenge), expiresAt: { gt: now } } })) === 1;
}

/**
 * The second step of a login with TOTP: the code for the half-login the
 * password opened. A wrong or replayed code counts as a failed login for the
 * user name and the address (the same limits and lock as a wrong password);
 * once the name or the address is locked the half-login is gone and the
 * password must be given again (and is refused until the lock ends). The
 * half-login is bound to the address it came from and ends after
 * CHALLENGE_MS.
 */
export async function completeLogin(
  db: PrismaClient,
  input: { challenge: string | undefined | null; code: unknown; address: string; now?: Date; config?: AuthConfig },
): Promise<LoginResult & { restart?: boolean }> {
  const c = input.config ?? authConfig();
  const now = input.now ?? new Date();
  const address = input.address || "unknown";
  const ended = { ok: false as const, message: CHALLENGE_ENDED, restart: true };
  if (!input.challenge || input.challenge.length > 200) return ended;
  const id = tokenHash(input.challenge);
  const ch = await db.loginChallenge.findUnique({ where: { id }, include: { user: true } });
  if (!ch || ch.expiresAt <= now || ch.address !== address || !isRole(ch.user.role)) {
    if (ch) await db.loginChallenge.deleteMany({ where: { id } });
    return ended;
  }
  const user = ch.user;
  if (await locked(db, [userKey(user.name), addrKey(address)], now)) {
    await db.loginChallenge.deleteMany({ where: { id } });
    await db.loginAttempt.create({ data: { at: now, name: user.name, address, ok: false } });
    await audit(db, { at: now, actor: user.name, via: "anonymous", address, action: "login", result: "locked", detail: "TOTP step refused: the user name or the address is locked after repeated failures" });
    return { ...ended, message: LOGIN_REFUSED };
  }
  let check: Awaited<ReturnType<typeof checkCode>>;
  try {
    check = await checkCode(db, user.id, input.code, now);
  } catch (e) {
    // The secret does not decrypt (the key file lost or replaced): no code can pass; say what to do, count nothing.
    if (!(e instanceof SecretBoxError)) throw e;
    await db.loginChallenge.deleteMany({ where: { id } });
    await audit(db, { at: now, actor: user.name, via: "anonymous", address, action: "login", result: "failed", detail: `TOTP code not checkable: ${e.message}` });
    return { ...ended, message: TOTP_UNAVAILABLE };
  }
  if (check === "ok") {
    await db.loginChallenge.deleteMany({ where: { id } });
    return openSession(db, { id: user.id, name: user.name, role: user.role as Role }, address, now, c, `role ${user.role}; TOTP code`);
  }
  const lockedNow = await recordFailure(db, user.name, address, now, c);
  const why = check === "replayed" ? "TOTP code used already (replay)" : check === "off" ? "TOTP turned off meanwhile" : "wrong TOTP code";
  await audit(db, { at: now, actor: user.name, via: "anonymous", address, action: "login", result: "failed", detail: `${why}${lockedNow.length ? `; locked now: ${lockedNow.join(", ")}` : ""}` });
  if (lockedNow.length || check === "off") {
    await db.loginChallenge.deleteMany({ where: { id } });
    return { ...ended, message: LOGIN_REFUSED };
  }
  return { ok: false, message: CODE_REFUSED };
}

/**
 * The session's user when the token is valid now (not idle longer than the
 * idle timeout, not past its absolute end); refreshes its last use (at most
 * every idle/4, capped at a minute, to spare the database). An expired
 * session's row is deleted.
 */
export async function sessionUser(db: PrismaClient, token: string | undefined | null, opts: { now?: Date; config?: AuthConfig; touch?: boolean } = {}): Promise<SessionUser | null> {
  if (!token || token.length > 200) return null;
  const c = opts.config ?? authConfig();
  const now = opts.now ?? new Date();
  const id = tokenHash(token);
  const s = await db.session.findUnique({ where: { id }, include: { user: true } });
  if (!s) return null;
  if (s.expiresAt <= now || now.getTime() - s.lastSeenAt.getTime() >= c.idleMs) {
    await db.session.deleteMany({ where: { id } });
    return null;
  }
  if (!isRole(s.user.role)) return null;
  if (opts.touch !== false && now.getTime() - s.lastSeenAt.getTime() >= Math.min(60_000, c.idleMs / 4)) {
    await db.session.updateMany({ where: { id }, data: { lastSeenAt: now } });
  }
  return { id: s.user.id, name: s.user.name, role: s.user.role, sessionId: id, expiresAt: s.expiresAt };
}

export async function logout(db: PrismaClient, token: string | undefined | null, address?: string): Promise<void> {
  if (!token) return;
  const s = await db.session.findUnique({ where: { id: tokenHash(token) }, include: { user: true } });
  await db.session.deleteMany({ where: { id: tokenHash(token) } });
  if (s) await audit(db, { actor: s.user.name, via: "session", address, action: "logout", result: "ok" });
}

// ---------------------------------------------------------------- the cookie

export function sessionCookieName(secure: boolean): string {
  // __Host-: the browser accepts it only with Secure, Path=/ and no Domain.
  return secure ? "__Host-natfarm_session" : "natfarm_session";
}

/** The half-login between the password and the TOTP code: its own short-lived cookie, never the session's. */
export function challengeCookieName(secure: boolean): string {
  return secure ? "__Host-natfarm_login" : "natfarm_login";
}

/** Whether the console is served over HTTPS (set by scripts/web-server.ts, in whose process Next.js runs). */
export function cookieSecure(env: Record<string, string | undefined> = process.env): boolean {
  return env.NATFARM_WEB_SCHEME !== "http";
}

export function sessionCookieHeader(token: string, secure: boolean): string {
  return `${sessionCookieName(secure)}=${token}; Path=/; HttpOnly; SameSite=Strict${secure ? "; Secure" : ""}`;
}

export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
