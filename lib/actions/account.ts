"use server";

import { revalidatePath } from "next/cache";
import { z } from "zod";
import { changeOwnPassword, createOwnToken, revokeOwnToken, TOKEN_EXPIRIES } from "@/lib/auth/account";
import { ROLES } from "@/lib/auth/roles";
import { cancelEnrolment, confirmEnrolment, disableTotp, startEnrolment } from "@/lib/auth/totp";
import { parseForm } from "@/lib/console/action-input";
import { consoleDb } from "@/lib/console/db";
import { auditedAccount } from "./authz";
import type { ActionState } from "./state";

/**
 * The Account page's actions, for every signed-in user and about their own
 * account only (the session's user: no form field names a user). Each is
 * audited under a user.… or token.… action; passwords, codes and secrets
 * never reach the audit log.
 */
export type TokenState = ActionState & { secret?: string; tokenName?: string };

const ok = (message: string): ActionState => ({ status: "ok", message, errors: {}, stamp: Date.now() });

const PasswordChange = z
  .object({
    current: z.string({ error: "the form has no current password field" }).min(1, "enter your current password").max(1024),
    next: z.string({ error: "the form has no new password field" }).max(1024, "at most 1024 characters"),
    confirm: z.string({ error: "the form has no confirmation field" }).max(1024),
  })
  .refine((v) => v.next === v.confirm, { path: ["confirm"], error: "the two new passwords differ" });

export async function changePasswordAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("read", "changing your password", "user.passwd", async ({ user, address }) => {
    const input = parseForm(PasswordChange, form);
    if (!input.ok) return { state: input.state, detail: "own password: refused by the form's checks" };
    const { endedSessions } = await changeOwnPassword(await consoleDb(), user, { current: input.data.current, next: input.data.next, address });
    revalidatePath("/account");
    return {
      state: ok(`Password changed. ${endedSessions === 0 ? "You had no other session." : `${endedSessions} other session${endedSessions === 1 ? "" : "s"} ended.`}`),
      detail: `own password changed in the console; ${endedSessions} other session(s) ended`,
    };
  });
}

const TokenInput = z.object({
  name: z.string({ error: "the form has no name field" }).trim().min(1, "give the token a name").max(64, "at most 64 characters"),
  role: z.enum(ROLES, { error: `the role is one of ${ROLES.join(", ")}` }),
  expires: z.enum(TOKEN_EXPIRIES, { error: `the expiry is one of ${TOKEN_EXPIRIES.join(", ")}` }),
});

export async function createTokenAction(_prev: TokenState, form: FormData): Promise<TokenState> {
  return auditedAccount("read", "creating an API token", "token.create", async ({ user }) => {
    const input = parseForm(TokenInput, form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    const { secret, token } = await createOwnToken(await consoleDb(), user, input.data);
    revalidatePath("/account");
    revalidatePath("/users");
    return {
      // The secret goes to this answer only: it is not stored, and not shown again.
      state: { ...ok(`Token "${token.name}" created: copy its secret now, it is not shown again.`), secret, tokenName: token.name },
      detail: `token ${token.id} "${token.name}" for ${token.user} (${token.role}), expires ${token.expiresAt?.toISOString() ?? "never"}`,
    };
  });
}

const TokenRef = z.object({ id: z.coerce.number({ error: "the form does not say which token" }).int().positive("the form does not say which token") });

export async function revokeOwnTokenAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("read", "revoking an API token", "token.revoke", async ({ user }) => {
    const input = parseForm(TokenRef, form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    await revokeOwnToken(await consoleDb(), user, input.data.id);
    revalidatePath("/account");
    revalidatePath("/users");
    return { state: ok(`Token ${input.data.id} revoked: it answers 401 from now on.`), detail: `own token ${input.data.id}` };
  });
}

export async function startTotpAction(_prev: ActionState): Promise<ActionState> {
  return auditedAccount("read", "setting up two-factor login", "user.totp.enrol", async ({ user }) => {
    await startEnrolment(await consoleDb(), user.id);
    revalidatePath("/account");
    return { state: ok("Scan the QR code, then enter a code to turn two-factor login on."), detail: "enrolment started (not active until confirmed)" };
  });
}

export async function cancelTotpAction(_prev: ActionState): Promise<ActionState> {
  return auditedAccount("read", "setting up two-factor login", "user.totp.cancel", async ({ user }) => {
    await cancelEnrolment(await consoleDb(), user.id);
    revalidatePath("/account");
    return { state: ok("Enrolment cancelled."), detail: "enrolment cancelled" };
  });
}

const CodeInput = z.object({ code: z.string({ error: "the form has no code field" }).max(16, "the code is 6 digits") });

export async function confirmTotpAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("read", "setting up two-factor login", "user.totp.enable", async ({ user }) => {
    const input = parseForm(CodeInput, form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    await confirmEnrolment(await consoleDb(), user.id, input.data.code);
    revalidatePath("/account");
    return { state: ok("Two-factor login is on: from now on a login asks for a code."), detail: "two-factor login turned on" };
  });
}

const DisableInput = CodeInput.extend({ password: z.string({ error: "the form has no password field" }).min(1, "enter your password").max(1024) });

export async function disableTotpAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("read", "turning two-factor login off", "user.totp.disable", async ({ user }) => {
    const input = parseForm(DisableInput, form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    await disableTotp(await consoleDb(), user.id, input.data.password, input.data.code);
    revalidatePath("/account");
    return { state: ok("Two-factor login is off."), detail: "two-factor login turned off" };
  });
}
