import "server-only";
import { audit } from "@/lib/auth/audit";
import { apiGuard, clientAddress } from "@/lib/auth/next";
import { can, refusalMessage, type Permission } from "@/lib/auth/roles";
import type { SessionUser } from "@/lib/auth/sessions";
import { consoleDb } from "@/lib/console/db";
import type { ApiAnswer } from "./farms.ts";

/**
 * The REST API's route handlers' common part: the caller (session cookie or
 * `Authorization: Bearer`), the role check with its audited 403, the audit
 * entry of every mutation, and JSON answers that are never cached.
 */
export const NO_STORE = { "Cache-Control": "no-store" };

export function answer(a: ApiAnswer): Response {
  return Response.json(a.body, { status: a.status, headers: { ...NO_STORE, ...a.headers } });
}

export interface Caller {
  user: SessionUser;
  via: "session" | "token";
  address: string;
}

/** The signed-in caller (any role may read), or the 401. */
export async function caller(): Promise<{ caller: Caller; refusal?: undefined } | { refusal: Response; caller?: undefined }> {
  const g = await apiGuard("read", "reading farms");
  if (g.refusal) return { refusal: g.refusal };
  return { caller: { user: g.user, via: g.user.sessionId.startsWith("token:") ? "token" : "session", address: await clientAddress() } };
}

/** null when the caller's role may; otherwise the 403 (audited, like every refusal). */
export async function refuse(c: Caller, permission: Permission, what: string): Promise<Response | null> {
  if (can(c.user.role, permission)) return null;
  const message = refusalMessage(c.user.role, permission, what);
  await audit(await consoleDb(), { actor: c.user.name, via: c.via, address: c.address, action: "refused", result: "refused", detail: `${c.via === "token" ? `${c.user.sessionId}: ` : ""}${message}` });
  return answer({ status: 403, body: { error: message, issues: [] } });
}

/** Records a mutation through the API: who, how, from where, which farm, the result and its message, before and after. */
export async function auditMutation(c: Caller, o: { action: string; farm: string | null; status: number; message: string; before?: unknown; after?: unknown }): Promise<void> {
  const result = o.status < 300 ? "ok" : o.status === 400 || o.status === 409 || o.status === 404 || o.status === 413 || o.status === 415 || o.status === 428 ? "invalid" : "failed";
  const detail = [
    o.message,
    o.before !== undefined ? `before: ${JSON.stringify(o.before)}` : "",
    o.after !== undefined ? `after: ${JSON.stringify(o.after)}` : "",
  ]
    .filter(Boolean)
    .join(" · ");
  await audit(await consoleDb(), { actor: c.user.name, via: c.via, address: c.address, action: `api ${o.action}`, farm: o.farm?.slice(0, 64) ?? null, result, detail });
}

export function messageOf(a: ApiAnswer): string {
  const issues = Array.isArray(a.body.issues) ? (a.body.issues as { path: string; message: string }[]).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)) : [];
  return [String(a.body.message ?? a.body.error ?? ""), ...issues].filter(Boolean).join("; ").slice(0, 1000);
}
