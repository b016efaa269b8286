"use server";

import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { consoleDb } from "@/lib/console/db";
import { clientAddress } from "@/lib/auth/next";
import { cookieSecure, login, logout, sessionCookieName } from "@/lib/auth/sessions";
import { completeSetup } from "@/lib/auth/setup";
import { UserError } from "@/lib/auth/users";
import { audit } from "@/lib/auth/audit";

export interface AuthFormState {
  status: "idle" | "failed";
  message: string;
  name?: string;
  stamp: number;
}

/** Only a path of this console: `next` must not send the operator elsewhere. */
function localPath(v: FormDataEntryValue | null): string {
  const s = typeof v === "string" ? v : "";
  return /^\/(?![/\\])[^\s]*$/.test(s) && !s.startsWith("/login") && !s.startsWith("/setup") ? s : "/";
}

async function startSession(token: string): Promise<void> {
  const secure = cookieSecure();
  // No Max-Age: the browser forgets it when closed; the server ends it after the idle timeout or the absolute lifetime anyway.
  (await cookies()).set(sessionCookieName(secure), token, { httpOnly: true, secure, sameSite: "strict", path: "/" });
}

export async function loginAction(_prev: AuthFormState, form: FormData): Promise<AuthFormState> {
  const name = String(form.get("name") ?? "");
  const password = String(form.get("password") ?? "");
  const r = await login(await consoleDb(), { name, password, address: await clientAddress() });
  if (!r.ok) return { status: "failed", message: r.message, name, stamp: Date.now() };
  await startSession(r.token);
  redirect(localPath(form.get("next")));
}

export async function logoutAction(): Promise<void> {
  const jar = await cookies();
  const cookie = sessionCookieName(cookieSecure());
  await logout(await consoleDb(), jar.get(cookie)?.value, await clientAddress());
  jar.delete({ name: cookie, path: "/", secure: cookieSecure(), httpOnly: true, sameSite: "strict" });
  redirect("/login");
}

export async function setupAction(_prev: AuthFormState, form: FormData): Promise<AuthFormState> {
  const token = String(form.get("token") ?? "");
  const name = String(form.get("name") ?? "").trim().toLowerCase();
  const password = String(form.get("password") ?? "");
  if (password !== String(form.get("confirm") ?? "")) return { status: "failed", message: "The two passwords differ.", name, stamp: Date.now() };
  const db = await consoleDb();
  try {
    await completeSetup(db, token, name, password);
  } catch (e) {
    if (e instanceof UserError) return { status: "failed", message: e.message, name, stamp: Date.now() };
    throw e;
  }
  await audit(db, { actor: name, via: "anonymous", address: await clientAddress(), action: "setup", result: "ok", detail: "first administrator created with the setup link" });
  const r = await login(db, { name, password, address: await clientAddress() });
  if (r.ok) await startSession(r.token);
  redirect("/");
}
