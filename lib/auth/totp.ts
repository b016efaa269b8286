import * as OTPAuth from "otpauth";
import type { PrismaClient } from "../generated/prisma/client.ts";
import { verifyPassword } from "./passwords.ts";
import { open, seal, SecretBoxError } from "./secret-box.ts";
import { UserError } from "./users.ts";

/**
 * The optional second factor: TOTP (RFC 6238) with the parameters every
 * authenticator app understands (SHA-1, 6 digits, 30 s). A code is accepted
 * one step early or late (clock drift), and only once: the step of the last
 * accepted code is stored, and a code of that step or an earlier one is
 * refused, so a code seen over a shoulder or in a log cannot be used again.
 *
 * Enrolment is two steps: a new secret is kept aside (encrypted, in
 * `totpPending`) and shown once as a QR code and as text; it becomes the
 * active factor only when a code made from it is entered. The active secret
 * is never shown again.
 */
export const TOTP_ISSUER = "natfarm";
const DIGITS = 6;
const PERIOD = 30;
const WINDOW = 1;

function totpOf(secretBase32: string, label: string): OTPAuth.TOTP {
  return new OTPAuth.TOTP({ issuer: TOTP_ISSUER, label, algorithm: "SHA1", digits: DIGITS, period: PERIOD, secret: OTPAuth.Secret.fromBase32(secretBase32) });
}

/** A code as people type it ("123 456", "123456"), or null when it cannot be one. */
export function normalizeCode(raw: unknown): string | null {
  if (typeof raw !== "string") return null;
  const s = raw.replace(/[\s-]/g, "");
  return /^\d{6}$/.test(s) ? s : null;
}

export interface Enrolment {
  /** base32, as authenticator apps take it when typed */
  secret: string;
  /** otpauth://totp/… (the QR code's content) */
  uri: string;
}

/** A new secret set aside for the user (replacing one not yet confirmed); the active factor, if any, stays until this one is confirmed. */
export async function startEnrolment(db: PrismaClient, userId: number): Promise<Enrolment> {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user) throw new UserError("there is no such user");
  if (user.totpSecret) throw new UserError("two-factor login is already on: turn it off first to enrol another device");
  const secret = new OTPAuth.Secret({ size: 20 }).base32;
  await db.user.update({ where: { id: userId }, data: { totpPending: seal(secret, userId) } });
  return { secret, uri: totpOf(secret, user.name).toString() };
}

/** The secret being enrolled, to show again until it is confirmed (never the active one). */
export async function pendingEnrolment(db: PrismaClient, userId: number): Promise<Enrolment | null> {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user?.totpPending || user.totpSecret) return null;
  try {
    const secret = open(user.totpPending, userId);
    return { secret, uri: totpOf(secret, user.name).toString() };
  } catch (e) {
    // A pending secret whose key is gone can never be confirmed: drop it, and the page offers a fresh start.
    if (!(e instanceof SecretBoxError)) throw e;
    await cancelEnrolment(db, userId);
    return null;
  }
}

export async function cancelEnrolment(db: PrismaClient, userId: number): Promise<void> {
  await db.user.updateMany({ where: { id: userId }, data: { totpPending: null } });
}

/** The time step a code belongs to (within the window), or null when it is not a code of this secret now. */
function stepOf(secretBase32: string, label: string, code: string, now: Date): number | null {
  const t = totpOf(secretBase32, label);
  const delta = t.validate({ token: code, timestamp: now.getTime(), window: WINDOW });
  return delta === null ? null : t.counter({ timestamp: now.getTime() }) + delta;
}

/**
 * Records `step` as the last accepted one, if it is later than the stored
 * one: one UPDATE, so two requests with the same code cannot both pass.
 */
async function claimStep(db: PrismaClient, userId: number, step: number): Promise<boolean> {
  const r = await db.user.updateMany({ where: { id: userId, OR: [{ totpLastStep: null }, { totpLastStep: { lt: step } }] }, data: { totpLastStep: step } });
  return r.count === 1;
}

/** Confirms the pending secret with a code made from it: from now on a login needs a code. */
export async function confirmEnrolment(db: PrismaClient, userId: number, rawCode: unknown, now = new Date()): Promise<void> {
  const code = normalizeCode(rawCode);
  if (!code) throw new UserError("the code is the 6 digits your authenticator app shows");
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user?.totpPending) throw new UserError("no enrolment in progress: start again");
  const secret = open(user.totpPending, userId);
  const step = stepOf(secret, user.name, code, now);
  if (step === null) throw new UserError("that code does not match: check the device's clock and enter the current code");
  // The confirming code cannot then open a login (a replay within its window).
  const r = await db.user.updateMany({
    where: { id: userId, totpPending: user.totpPending, totpSecret: null },
    data: { totpSecret: user.totpPending, totpPending: null, totpEnabledAt: now, totpLastStep: step },
  });
  if (r.count !== 1) throw new UserError("the enrolment changed meanwhile: start again");
}

export type CodeCheck = "ok" | "wrong" | "replayed" | "off";

/** Checks a login code against the user's active secret; an accepted code is used up. */
export async function checkCode(db: PrismaClient, userId: number, rawCode: unknown, now = new Date()): Promise<CodeCheck> {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user?.totpSecret) return "off";
  const code = normalizeCode(rawCode);
  if (!code) return "wrong";
  const step = stepOf(open(user.totpSecret, userId), user.name, code, now);
  if (step === null) return "wrong";
  return (await claimStep(db, userId, step)) ? "ok" : "replayed";
}

/** Turns the second factor off: the password and a current code, both. */
export async function disableTotp(db: PrismaClient, userId: number, password: string, rawCode: unknown, now = new Date()): Promise<void> {
  const user = await db.user.findUnique({ where: { id: userId } });
  if (!user?.totpSecret) throw new UserError("two-factor login is not on");
  if (!(await verifyPassword(user.passwordHash, password))) throw new UserError("the password is not right; nothing was changed");
  const check = await checkCode(db, userId, rawCode, now);
  if (check !== "ok") throw new UserError(check === "replayed" ? "that code was used already: wait for the next one" : "that code does not match; nothing was changed");
  await db.user.update({ where: { id: userId }, data: { totpSecret: null, totpPending: null, totpEnabledAt: null } });
}

/** For an administrator whose user lost their device: the factor and any pending enrolment go, and half-finished logins with them. */
export async function resetTotp(db: PrismaClient, name: string): Promise<{ wasOn: boolean }> {
  const user = await db.user.findUnique({ where: { name } });
  if (!user) throw new UserError(`there is no user named "${name}"`);
  await db.$transaction([
    db.user.update({ where: { id: user.id }, data: { totpSecret: null, totpPending: null, totpEnabledAt: null } }),
    db.loginChallenge.deleteMany({ where: { userId: user.id } }),
  ]);
  return { wasOn: user.totpSecret !== null };
}

/** A code for `secret` at `now` (tests; an operator checking a device). */
export function codeFor(secretBase32: string, now = new Date()): string {
  return totpOf(secretBase32, "x").generate({ timestamp: now.getTime() });
}
