"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { ROLES } from "@/lib/auth/roles";
import { addUser, changeRole, deleteUser, resetPassword, revokeAnyToken, unlockUser } from "@/lib/auth/user-admin";
import { parseForm } from "@/lib/console/action-input";
import { consoleDb } from "@/lib/console/db";
import { auditedAccount } from "./authz";
import type { ActionState } from "./state";

/**
 * The Users page's actions, for administrators. auditedAccount checks the
 * role first (an operator's or viewer's replayed request is refused,
 * audited, and changes nothing); lib/auth/user-admin checks it again and
 * keeps the last administrator. Every change is audited with its subject.
 */
const ok = (message: string): ActionState => ({ status: "ok", message, errors: {}, stamp: Date.now() });

function refresh() {
  revalidatePath("/users");
  revalidatePath("/account");
}

const NameField = z.string({ error: "the form does not say which user" }).trim().toLowerCase().min(1, "enter a user name").max(32, "at most 32 characters");
const RoleField = z.enum(ROLES, { error: `the role is one of ${ROLES.join(", ")}` });
const PasswordField = z.string({ error: "the form has no password field" }).max(1024, "at most 1024 characters");

const NewUser = z.object({ name: NameField, role: RoleField, password: PasswordField });

export async function addUserAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("administer", "adding a user", "user.add", async ({ user }) => {
    const input = parseForm(NewUser, form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    const u = await addUser(await consoleDb(), user, input.data);
    refresh();
    return { state: ok(`User ${u.name} (${u.role}) added: they can log in now.`), detail: `${u.name} (${u.role})`, subject: u.name };
  });
}

export async function setRoleAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("administer", "changing a user's role", "user.role", async ({ user }) => {
    const input = parseForm(z.object({ name: NameField, role: RoleField }), form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    const { from, to } = await changeRole(await consoleDb(), user, input.data.name, input.data.role);
    refresh();
    return { state: ok(from === to ? `${input.data.name} is ${to} already.` : `${input.data.name} is ${to} now (was ${from}); their tokens are capped at ${to}.`), detail: `${from} → ${to}`, subject: input.data.name };
  });
}

export async function resetPasswordAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("administer", "resetting a user's password", "user.passwd", async ({ user }) => {
    const input = parseForm(z.object({ name: NameField, password: PasswordField }), form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    await resetPassword(await consoleDb(), user, input.data.name, input.data.password);
    refresh();
    return { state: ok(`Password of ${input.data.name} set; their sessions ended.`), detail: "password reset by an administrator; their sessions ended", subject: input.data.name };
  });
}

export async function unlockUserAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("administer", "unlocking a user", "user.unlock", async ({ user }) => {
    const input = parseForm(z.object({ name: NameField }), form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    const { wasLocked } = await unlockUser(await consoleDb(), user, input.data.name);
    refresh();
    return { state: ok(wasLocked ? `${input.data.name} is unlocked.` : `${input.data.name} was not locked.`), detail: wasLocked ? "login lock ended" : "was not locked", subject: input.data.name };
  });
}

export async function removeUserAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  let self = false;
  const state = await auditedAccount("administer", "removing a user", "user.remove", async ({ user }) => {
    const input = parseForm(z.object({ name: NameField, confirmSelf: z.enum(["yes"]).optional() }), form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    await deleteUser(await consoleDb(), user, input.data.name, { confirmSelf: input.data.confirmSelf === "yes" });
    self = input.data.name === user.name;
    refresh();
    return { state: ok(`User ${input.data.name} removed, with their sessions and tokens.`), detail: self ? "removed themselves (confirmed)" : "removed with their sessions and tokens", subject: input.data.name };
  });
  // One's own session went with the user.
  if (self && state.status === "ok") redirect("/login");
  return state;
}

export async function revokeTokenAction(_prev: ActionState, form: FormData): Promise<ActionState> {
  return auditedAccount("administer", "revoking another user's API token", "token.revoke", async ({ user }) => {
    const input = parseForm(z.object({ id: z.coerce.number({ error: "the form does not say which token" }).int().positive("the form does not say which token") }), form);
    if (!input.ok) return { state: input.state, detail: "refused by the form's checks" };
    const t = await revokeAnyToken(await consoleDb(), user, input.data.id);
    refresh();
    return { state: ok(`Token ${t.id} ("${t.name}" of ${t.user}) revoked.`), detail: `token ${t.id} "${t.name}" of ${t.user}`, subject: t.user };
  });
}
