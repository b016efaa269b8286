import type { PrismaClient } from "../generated/prisma/client.ts";
import { hashPassword, passwordProblem } from "./passwords.ts";
import { isRole, ROLES, type Role } from "./roles.ts";

export const USER_NAME = /^[a-z0-9][a-z0-9._-]{0,31}$/;

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}

export interface UserInfo {
  id: number;
  name: string;
  role: Role;
  createdAt: Date;
}

function info(u: { id: number; name: string; role: string; createdAt: Date }): UserInfo {
  return { id: u.id, name: u.name, role: isRole(u.role) ? u.role : "viewer", createdAt: u.createdAt };
}

export function checkUserName(name: string): void {
  if (!USER_NAME.test(name)) throw new UserError(`user name "${name}": 1-32 of a-z 0-9 . _ -, starting with a letter or digit`);
}

export function checkRole(role: string): asserts role is Role {
  if (!isRole(role)) throw new UserError(`role "${role}": one of ${ROLES.join(", ")}`);
}

export async function createUser(db: PrismaClient, name: string, role: string, password: string): Promise<UserInfo> {
  checkUserName(name);
  checkRole(role);
  const problem = passwordProblem(password);
  if (problem) throw new UserError(problem);
  if (await db.user.findUnique({ where: { name } })) throw new UserError(`a user named "${name}" already exists`);
  const passwordHash = await hashPassword(password);
  try {
    return info(await db.user.create({ data: { name, role, passwordHash } }));
  } catch (e) {
    if ((e as { code?: string }).code === "P2002") throw new UserError(`a user named "${name}" already exists`);
    throw e;
  }
}

export async function listUsers(db: PrismaClient): Promise<(UserInfo & { sessions: number; totp: boolean; lastLoginAt: Date | null })[]> {
  const rows = await db.user.findMany({ orderBy: { name: "asc" }, include: { _count: { select: { sessions: true } } } });
  return rows.map((u) => ({ ...info(u), sessions: u._count.sessions, totp: u.totpSecret !== null, lastLoginAt: u.lastLoginAt }));
}

export function countUsers(db: PrismaClient): Promise<number> {
  return db.user.count();
}

/** Removes a user and (cascade) their sessions. */
export async function removeUser(db: PrismaClient, name: string): Promise<void> {
  const r = await db.user.deleteMany({ where: { name } });
  if (r.count === 0) throw new UserError(`there is no user named "${name}"`);
}

/** Sets a new password and ends every session of the user. */
export async function setPassword(db: PrismaClient, name: string, password: string): Promise<void> {
  const problem = passwordProblem(password);
  if (problem) throw new UserError(problem);
  const user = await db.user.findUnique({ where: { name } });
  if (!user) throw new UserError(`there is no user named "${name}"`);
  const passwordHash = await hashPassword(password);
  await db.$transaction([db.user.update({ where: { id: user.id }, data: { passwordHash } }), db.session.deleteMany({ where: { userId: user.id } })]);
}
