import type { PrismaClient } from "../generated/prisma/client.ts";
import { newToken, tokenHash } from "./sessions.ts";
import { createUser, UserError, type UserInfo } from "./users.ts";

/**
 * The first administrator on a fresh machine: with no user in the database,
 * `npm start` makes a one-time token and prints the setup link (/setup?token=…).
 * Only its hash is stored; a new start replaces an unused one; it works once,
 * and only while there is no user at all.
 */
export async function makeSetupToken(db: PrismaClient): Promise<string | null> {
  if ((await db.user.count()) > 0) return null;
  const token = newToken();
  await db.$transaction([db.setupToken.deleteMany({ where: { usedAt: null } }), db.setupToken.create({ data: { id: tokenHash(token) } })]);
  return token;
}

export async function setupTokenValid(db: PrismaClient, token: string | undefined | null): Promise<boolean> {
  if (!token || token.length > 200) return false;
  const row = await db.setupToken.findUnique({ where: { id: tokenHash(token) } });
  return Boolean(row && !row.usedAt && (await db.user.count()) === 0);
}

export const SETUP_REFUSED = "This setup link is not valid (it was used already, replaced by a newer one, or an administrator exists). Use the link printed by the latest npm start, or `natfarm user add`.";

/** Creates the first admin with the token, once. */
export async function completeSetup(db: PrismaClient, token: string, name: string, password: string): Promise<UserInfo> {
  const id = tokenHash(token);
  // Claim the token first (one UPDATE: two tabs cannot both pass), then create the user.
  const claimed = await db.setupToken.updateMany({ where: { id, usedAt: null }, data: { usedAt: new Date() } });
  if (claimed.count !== 1 || (await db.user.count()) > 0) throw new UserError(SETUP_REFUSED);
  try {
    return await createUser(db, name, "admin", password);
  } catch (e) {
    // A refused name or password gives the token back.
    await db.setupToken.updateMany({ where: { id }, data: { usedAt: null } });
    throw e;
  }
}
