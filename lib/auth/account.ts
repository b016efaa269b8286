import type { PrismaClient } from "../generated/prisma/client.ts";
import { authConfig, type AuthConfig } from "./config.ts";
import { hashPassword, passwordProblem, verifyPassword } from "./passwords.ts";
import { recordFailure } from "./sessions.ts";
import { createToken, revokeToken, type TokenInfo } from "./tokens.ts";
import { UserError } from "./users.ts";

/**
 * What every signed-in user may do to their own account (the Account
 * page): change the password, make and revoke their own API tokens. The
 * caller is the session's user: none of these takes another user's name.
 */
export interface Actor {
  id: number;
  name: string;
  /** The session the request came with: a new password ends every other one. */
  sessionId: string;
}

/**
 * The current password is required (a borrowed, unlocked browser must not
 * be enough to take the account over); a wrong one counts as a failed login
 * for the name and the address, so a stolen session cannot guess it faster
 * than the login page allows. The other sessions of the user end; the one
 * that asked stays.
 */
export async function changeOwnPassword(
  db: PrismaClient,
  actor: Actor,
  input: { current: string; next: string; address: string; now?: Date; config?: AuthConfig },
): Promise<{ endedSessions: number }> {
  const user = await db.user.findUnique({ where: { id: actor.id } });
  if (!user) throw new UserError("your user no longer exists");
  if (!(await verifyPassword(user.passwordHash, input.current))) {
    await recordFailure(db, user.name, input.address || "unknown", input.now ?? new Date(), input.config ?? authConfig());
    throw new UserError("the current password is not right; nothing was changed");
  }
  const problem = passwordProblem(input.next);
  if (problem) throw new UserError(problem);
  if (input.next === input.current) throw new UserError("the new password is the current one");
  const passwordHash = await hashPassword(input.next);
  const [, ended] = await db.$transaction([
    db.user.update({ where: { id: user.id }, data: { passwordHash } }),
    db.session.deleteMany({ where: { userId: user.id, id: { not: actor.sessionId } } }),
  ]);
  return { endedSessions: ended.count };
}

export const TOKEN_EXPIRIES = ["never", "1d", "7d", "30d", "90d", "365d"] as const;

/** A token of one's own; its role no higher than one's own (createToken checks). */
export function createOwnToken(db: PrismaClient, actor: Actor, o: { name: string; role: string; expires: (typeof TOKEN_EXPIRIES)[number] }): Promise<{ secret: string; token: TokenInfo }> {
  return createToken(db, { user: actor.name, name: o.name, role: o.role, expires: o.expires === "never" ? undefined : o.expires });
}

/** Only one's own: another user's token id is answered as if it did not exist. */
export async function revokeOwnToken(db: PrismaClient, actor: Actor, id: number): Promise<void> {
  const t = await db.apiToken.findUnique({ where: { id } });
  if (!t || t.userId !== actor.id) throw new UserError(`you have no unrevoked token ${id}`);
  await revokeToken(db, id);
}
