"use server";

import { cookies } from "next/headers";
import { redirect } from "next/navigation";
import { consoleDb } from "@/lib/console/db";
import { clientAddress } from "@/lib/auth/next";
import { CHALLENGE_MS, challengeCookieName, completeLogin, cookieSecure, login, logout, sessionCookieName, tokenHash } from "@/lib/auth/sessions";
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

async function dropChallenge(): Promise<void> {
  const secure = cookieSecure();
  (await cookies()).delete({ name: challengeCookieName(cookieSecure()), path: "/", secure, httpOnly: true, sameSite: "strict" });
}

export async function loginAction(_prev: AuthFormState, form: FormData): Promise<AuthFormState> {
  const name = String(form.get("name") ?? "");
  const password = String(form.get("password") ?? "");
  const r = await login(await consoleDb(), { name, password, address: await clientAddress() });
  const next = localPath(form.get("next"));
  if (!r.ok && r.challenge) {
    const secure = cookieSecure();
    (await cookies()).set(challengeCookieName(cookieSecure()), r.challenge, { httpOnly: true, secure, sameSite: "strict", path: "/", maxAge: CHALLENGE_MS / 1000 });
    // The login page asks for the code while the half-login lasts (a reload included).
    redirect(next === "/" ? "/login" : `/login?next=${encodeURIComponent(next)}`);
  }
  if (!r.ok) return { status: "failed", message: r.message, name, stamp: Date.now() };
  await startSession(r.token);
  redirect(next);
}

/** The login's second step: the code for the half-login in the cookie. */
export async function loginCodeAction(_prev: AuthFormState, form: FormData): Promise<AuthFormState> {
  const jar = await cookies();
  const challenge = jar.get(challengeCookieName(cookieSecure()))?.value;
  const r = await completeLogin(await consoleDb(), { challenge, code: form.get("code"), address: await clientAddress() });
  const next = localPath(form.get("next"));
  if (r.ok) {
    await dropChallenge();
    await startSession(r.token);
    redirect(next);
  }
  if (r.restart) {
    // The half-login is over (too slow, too many wrong codes, another address): back to the password, saying so.
    await dropChallenge();
    redirect(`/login?again=1${next === "/" ? "" : `&next=${encodeURIComponent(next)}`}`);
  }
  return { status: "failed", message: r.message, stamp: Date.now() };
}

/** "Use another account" on the code step: the half-login ends now. */
export async function cancelLoginAction(): Promise<void> {
  const jar = await cookies();
  const challenge = jar.get(challengeCookieName(cookieSecure()))?.value;
  if (challenge && challenge.length <= 200) await (await consoleDb()).loginChallenge.deleteMany({ where: { id: tokenHash(challenge) } });
  await dropChallenge();
  redirect("/login");
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
