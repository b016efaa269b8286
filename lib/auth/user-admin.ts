import type { PrismaClient } from "../generated/prisma/client.ts";
import { can, isRole, refusalMessage, type Role } from "./roles.ts";
import { userKey } from "./sessions.ts";
import { listTokens, revokeToken, type TokenInfo } from "./tokens.ts";
import { checkRole, createUser, setPassword, UserError, type UserInfo } from "./users.ts";

/**
 * The Users page's operations, for administrators. Each takes the acting
 * user and checks the role itself (the server action has checked already:
 * this is the second check, and the one tests can reach without a browser).
 * The console never leaves the machine without an administrator: the last
 * one can be neither demoted nor removed. Removing oneself needs an explicit
 * confirmation (the page asks), since it ends one's own session.
 */
export class RefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RefusedError";
  }
}

export interface AdminActor {
  id: number;
  name: string;
  role: Role;
}

function requireAdmin(actor: AdminActor, what: string): void {
  if (!can(actor.role, "administer")) throw new RefusedError(refusalMessage(actor.role, "administer", what));
}

export interface UserRow extends UserInfo {
  lastLoginAt: Date | null;
  /** when the login lock on the name ends, or null */
  lockedUntil: Date | null;
  totp: boolean;
  sessions: number;
  tokens: number;
}

export async function usersOverview(db: PrismaClient, actor: AdminActor, now = new Date()): Promise<UserRow[]> {
  requireAdmin(actor, "listing users");
  const [rows, locks] = await Promise.all([
    db.user.findMany({ orderBy: { name: "asc" }, include: { _count: { select: { sessions: { where: { expiresAt: { gt: now } } }, tokens: { where: { revokedAt: null } } } } } }),
    db.loginLock.findMany({ where: { key: { startsWith: "user:" }, until: { gt: now } } }),
  ]);
  const lockOf = new Map(locks.map((l) => [l.key, l.until]));
  return rows.map((u) => ({
    id: u.id,
    name: u.name,
    role: isRole(u.role) ? u.role : "viewer",
    createdAt: u.createdAt,
    lastLoginAt: u.lastLoginAt,
    lockedUntil: lockOf.get(userKey(u.name)) ?? null,
    totp: u.totpSecret !== null,
    sessions: u._count.sessions,
    tokens: u._count.tokens,
  }));
}

export async function allTokens(db: PrismaClient, actor: AdminActor): Promise<TokenInfo[]> {
  requireAdmin(actor, "listing every user's API tokens");
  return listTokens(db);
}

export async function addUser(db: PrismaClient, actor: AdminActor, o: { name: string; role: string; password: string }): Promise<UserInfo> {
  requireAdmin(actor, "adding a user");
  return createUser(db, o.name, o.role, o.password);
}

export async function changeRole(db: PrismaClient, actor: AdminActor, name: string, role: string): Promise<{ from: Role; to: Role }> {
  requireAdmin(actor, "changing a user's role");
  checkRole(role);
  return db.$transaction(async (tx) => {
    const user = await tx.user.findUnique({ where: { name } });
    if (!user || !isRole(user.role)) throw new UserError(`there is no user named "${name}"`);
    if (user.role === "admin" && role !== "admin" && (await tx.user.count({ where: { role: "admin" } })) <= 1) {
      throw new UserError(`${name} is the last administrator: make another user admin first; nothing was changed`);
    }
    await tx.user.update({ where: { id: user.id }, data: { role } });
    return { from: user.role, to: role };
  });
}

/** A new password set by an administrator: every session of the user ends. */
export async function resetPassword(db: PrismaClient, actor: AdminActor, name: string, password: string): Promise<void> {
  requireAdmin(actor, "resetting a user's password");
  await setPassword(db, name, password);
}

/**
 * Ends the lock on the user's name now. The lock is not deleted but made
 * to end now: failures are counted from a lock's end, so the failures that
 * caused it do not lock the name again at the next mistake.
 */
export async function unlockUser(db: PrismaClient, actor: AdminActor, name: string, now = new Date()): Promise<{ wasLocked: boolean }> {
  requireAdmin(actor, "unlocking a user");
  if (!(await db.user.findUnique({ where: { name } }))) throw new UserError(`there is no user named "${name}"`);
  const key = userKey(name);
  const lock = await db.loginLock.findUnique({ where: { key } });
  const wasLocked = Boolean(lock && lock.until > now);
  if (lock) await db.loginLock.update({ where: { key }, data: { until: now } });
  return { wasLocked };
}

export async function deleteUser(db: PrismaClient, actor: AdminActor, name: string, o: { confirmSelf?: boolean } = {}): Promise<void> {
  requireAdmin(actor, "removing a user");
  if (name === actor.name && !o.confirmSelf) throw new UserError("you are removing yourself: confirm it (your session ends at once); nothing was changed");
  await db.$transaction(async (tx) => {
    const user = await tx.user.findUnique({ where: { name } });
    if (!user) throw new UserError(`there is no user named "${name}"`);
    if (user.role === "admin" && (await tx.user.count({ where: { role: "admin" } })) <= 1) {
      throw new UserError(`${name} is the last administrator and cannot be removed; nothing was changed`);
    }
    // Sessions, tokens and half-logins go with the row (cascade).
    await tx.user.delete({ where: { id: user.id } });
  });
}

export async function revokeAnyToken(db: PrismaClient, actor: AdminActor, id: number): Promise<TokenInfo> {
  requireAdmin(actor, "revoking another user's API token");
  const t = (await listTokens(db)).find((x) => x.id === id);
  if (!t) throw new UserError(`there is no token ${id}`);
  await revokeToken(db, id);
  return t;
}
