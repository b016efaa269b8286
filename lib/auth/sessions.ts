import { createHash, randomBytes } from "node:crypto";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { audit } from "./audit.ts";
import { authConfig, type AuthConfig } from "./config.ts";
import { burnVerification, verifyPassword } from "./passwords.ts";
import { isRole, type Role } from "./roles.ts";

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

export type LoginResult = { ok: true; token: string; user: SessionUser } | { ok: false; message: string };

const userKey = (name: string) => `user:${name}`;
const addrKey = (address: string) => `addr:${address}`;

async function locked(db: PrismaClient, keys: string[], now: Date): Promise<boolean> {
  const n = await db.loginLock.count({ where: { key: { in: keys }, until: { gt: now } } });
  return n > 0;
}

/** Failures counted since the window began, and not before a lock on the same key ended (a lock is not served twice for the same failures). */
/** Records a failure; returns the keys it locked ("user:NAME", "addr:ADDRESS"). */
async function recordFailure(db: PrismaClient, name: string, address: string, now: Date, c: AuthConfig): Promise<string[]> {
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
  await db.loginAttempt.create({ data: { at: now, name, address, ok: true } });
  const token = newToken();
  const id = tokenHash(token);
  const expiresAt = new Date(now.getTime() + c.lifetimeMs);
  await db.session.create({ data: { id, userId: user.id, createdAt: now, lastSeenAt: now, expiresAt, address } });
  await audit(db, { at: now, actor: user.name, via: "session", address, action: "login", result: "ok", detail: `role ${user.role}` });
  // Old attempts are of no further use.
  await db.loginAttempt.deleteMany({ where: { at: { lt: new Date(now.getTime() - Math.max(c.windowMs, c.lockMs) - 86_400_000) } } });
  return { ok: true, token, user: { id: user.id, name: user.name, role: user.role, sessionId: id, expiresAt } };
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
