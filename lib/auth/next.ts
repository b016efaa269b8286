import "server-only";
import { cookies, headers } from "next/headers";
import { redirect } from "next/navigation";
import { consoleDb } from "../console/db.ts";
import { can, refusalMessage, type Permission } from "./roles.ts";
import { ADDRESS_HEADER } from "./gate.ts";
import { cookieSecure, sessionCookieName, sessionUser, type SessionUser } from "./sessions.ts";
import { bearer, tokenUser } from "./tokens.ts";
import { audit } from "./audit.ts";

/**
 * The login and the role inside Next.js: pages call requireUser() (no
 * session: to /login), server actions call actionGuard() and route handlers
 * apiGuard(), which refuse with the role's sentence (403 for the API).
 * The front server has already refused requests without a session; these
 * checks do not depend on it.
 */
export async function currentUser(opts: { touch?: boolean } = {}): Promise<SessionUser | null> {
  const jar = await cookies();
  const token = jar.get(sessionCookieName(cookieSecure()))?.value;
  if (!token) return null;
  return sessionUser(await consoleDb(), token, { touch: opts.touch });
}

export async function requireUser(): Promise<SessionUser> {
  const user = await currentUser();
  if (!user) redirect("/login");
  return user;
}

export async function clientAddress(): Promise<string> {
  return (await headers()).get(ADDRESS_HEADER) ?? "unknown";
}

export type Guarded = { ok: true; user: SessionUser } | { ok: false; status: 401 | 403; message: string };

export async function guard(permission: Permission, what: string, opts: { touch?: boolean } = {}): Promise<Guarded> {
  const user = await currentUser(opts);
  if (!user) return { ok: false, status: 401, message: "You are not signed in (or the session ended): log in again. Nothing was changed." };
  if (!can(user.role, permission)) {
    const message = refusalMessage(user.role, permission, what);
    await audit(await consoleDb(), { actor: user.name, via: "session", address: await clientAddress(), action: "refused", result: "refused", detail: message });
    return { ok: false, status: 403, message };
  }
  return { ok: true, user };
}

/** For route handlers: the user, or the Response to return (401 / 403, JSON). */
export async function apiGuard(permission: Permission = "read", what = "this"): Promise<{ user: SessionUser; refusal?: undefined } | { refusal: Response; user?: undefined }> {
  // The pages' polling of the API does not extend the session (see lib/auth/gate.ts).
  let g = await guard(permission, what, { touch: false });
  if (!g.ok && g.status === 401) {
    // Or an API token, with the token's role.
    const secret = bearer((await headers()).get("authorization"));
    const t = secret ? await tokenUser(await consoleDb(), secret) : null;
    if (t) {
      const user: SessionUser = { id: t.id, name: t.name, role: t.role, sessionId: `token:${t.tokenId}`, expiresAt: new Date(8.64e15) };
      if (can(t.role, permission)) g = { ok: true, user };
      else {
        const message = refusalMessage(t.role, permission, what);
        await audit(await consoleDb(), { actor: t.name, via: "token", address: await clientAddress(), action: "refused", result: "refused", detail: `token ${t.tokenId}: ${message}` });
        g = { ok: false, status: 403, message };
      }
    }
  }
  if (g.ok) return { user: g.user };
  return { refusal: Response.json({ error: g.message }, { status: g.status, headers: { "Cache-Control": "no-store" } }) };
}
