import { randomBytes } from "node:crypto";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { parseDuration } from "./config.ts";
import { isRole, ROLES, type Role } from "./roles.ts";
import { tokenHash } from "./sessions.ts";
import { UserError } from "./users.ts";

/**
 * API tokens: `Authorization: Bearer nft_<43 characters>`. A token belongs
 * to a user and carries a role no higher than theirs (checked when it is
 * made and again at every use, so a demoted user's tokens shrink with
 * them), an optional expiry, its last use; it can be revoked. The secret is
 * shown once; the database keeps its SHA-256 and its first characters.
 */
export const TOKEN_PREFIX = "nft_";
const RANK: Record<Role, number> = { viewer: 0, operator: 1, admin: 2 };
const lower = (a: Role, b: Role): Role => (RANK[a] <= RANK[b] ? a : b);

export interface TokenUser {
  id: number;
  name: string;
  role: Role;
  tokenId: number;
}

export interface TokenInfo {
  id: number;
  user: string;
  name: string;
  role: Role;
  prefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export async function createToken(
  db: PrismaClient,
  o: { user: string; name?: string; role?: string; expires?: string; now?: Date },
): Promise<{ secret: string; token: TokenInfo }> {
  const user = await db.user.findUnique({ where: { name: o.user } });
  if (!user || !isRole(user.role)) throw new UserError(`there is no user named "${o.user}"`);
  const role = o.role ?? user.role;
  if (!isRole(role)) throw new UserError(`role "${role}": one of ${ROLES.join(", ")}`);
  if (RANK[role] > RANK[user.role]) throw new UserError(`a token of ${user.name} (${user.role}) cannot have the higher role ${role}`);
  const name = (o.name ?? "token").trim();
  if (!/^[\w .:@-]{1,64}$/.test(name)) throw new UserError("token name: 1-64 of letters, digits, space and _ . : @ -");
  const now = o.now ?? new Date();
  let expiresAt: Date | null = null;
  if (o.expires !== undefined) {
    try {
      expiresAt = new Date(now.getTime() + parseDuration("--expires", o.expires, 0));
    } catch (e) {
      throw new UserError((e as Error).message);
    }
  }
  const secret = TOKEN_PREFIX + randomBytes(32).toString("base64url");
  const row = await db.apiToken.create({ data: { userId: user.id, name, role, secretHash: tokenHash(secret), prefix: secret.slice(0, 10), createdAt: now, expiresAt } });
  return { secret, token: { ...row, user: user.name, role } };
}

/** The token's user with the token's role (never above the user's current one), or null: unknown, revoked, expired. */
export async function tokenUser(db: PrismaClient, secret: string | undefined | null, opts: { now?: Date } = {}): Promise<TokenUser | null> {
  if (!secret || !secret.startsWith(TOKEN_PREFIX) || secret.length > 200) return null;
  const now = opts.now ?? new Date();
  const t = await db.apiToken.findUnique({ where: { secretHash: tokenHash(secret) }, include: { user: true } });
  if (!t || t.revokedAt || (t.expiresAt && t.expiresAt <= now) || !isRole(t.role) || !isRole(t.user.role)) return null;
  if (!t.lastUsedAt || now.getTime() - t.lastUsedAt.getTime() > 60_000) await db.apiToken.updateMany({ where: { id: t.id }, data: { lastUsedAt: now } });
  return { id: t.user.id, name: t.user.name, role: lower(t.role, t.user.role), tokenId: t.id };
}

export function bearer(header: string | string[] | undefined | null): string | null {
  if (typeof header !== "string") return null;
  const m = /^Bearer\s+(\S+)$/i.exec(header.trim());
  return m ? m[1]! : null;
}

export async function listTokens(db: PrismaClient, user?: string): Promise<TokenInfo[]> {
  const rows = await db.apiToken.findMany({ where: user ? { user: { name: user } } : {}, include: { user: true }, orderBy: { id: "asc" } });
  return rows.map((t) => ({ id: t.id, user: t.user.name, name: t.name, role: isRole(t.role) ? t.role : "viewer", prefix: t.prefix, createdAt: t.createdAt, expiresAt: t.expiresAt, lastUsedAt: t.lastUsedAt, revokedAt: t.revokedAt }));
}

export async function revokeToken(db: PrismaClient, id: number): Promise<void> {
  const r = await db.apiToken.updateMany({ where: { id, revokedAt: null }, data: { revokedAt: new Date() } });
  if (r.count === 0) throw new UserError(`there is no unrevoked token ${id}`);
}
