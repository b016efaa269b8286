import "server-only";
import { audit } from "@/lib/auth/audit";
import { apiGuard, clientAddress } from "@/lib/auth/next";
import { can, refusalMessage, type Permission } from "@/lib/auth/roles";
import type { SessionUser } from "@/lib/auth/sessions";
import { consoleDb } from "@/lib/console/db";
import { farmService } from "@/lib/console/farm-service";
import type { FarmService, Precondition } from "@/lib/service/farm-service";
import type { FarmRow } from "@/lib/service/farm-rows";
import type { MutationResult } from "@/lib/service/result";
import { withAuthor, type Author } from "@/lib/service/config-history";
import type { z } from "zod";
import { etagOf, farmView, matches, readJsonBody, resultAnswer, type ApiAnswer } from "./farms.ts";
import { noBackend, parseBody, parseMarkParam } from "./input.ts";

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

/** Who the configuration history names for the caller's changes: the user, and the token when one was used. */
export function authorOf(c: Caller): Author {
  return { name: c.via === "token" ? `${c.user.name} (${c.user.sessionId.replace(":", " ")})` : c.user.name, via: "api" };
}

/** Runs a service change as the caller (the configuration history's author). */
export function asCaller<T>(c: Caller, run: () => Promise<T>): Promise<T> {
  return withAuthor(authorOf(c), run);
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

/** The answer's message for the audit log: the sentence, each field at fault, and iptables' own words when the kernel refused. */
export function messageOf(a: ApiAnswer): string {
  const issues = Array.isArray(a.body.issues) ? (a.body.issues as { path: string; message: string }[]).map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)) : [];
  const iptables = typeof a.body.iptables === "string" && !String(a.body.error ?? "").includes(a.body.iptables) ? [`iptables: ${a.body.iptables}`] : [];
  return [String(a.body.message ?? a.body.error ?? ""), ...issues, ...iptables].filter(Boolean).join("; ").slice(0, 1000);
}

type Ctx = { params: Promise<Record<string, string>> };

export interface FarmActionSpec<B> {
  /** The audit entry's action, after "api ". */
  action: string;
  permission: Permission;
  /** For the refusal's sentence: "draining a backend". */
  what: string;
  /** The body's schema; `bodyOptional`: it may be absent. None: no body is read. */
  body?: z.ZodType<B>;
  bodyOptional?: boolean;
  /** Custom body parsing (instead of `body`). */
  parse?: (json: unknown) => { value: B } | { refusal: ApiAnswer };
  /** The path names a backend by its mark. */
  backend?: boolean;
  okStatus?: 200 | 201;
  run: (service: FarmService, name: string, input: { body: B; mark: number }, precondition: Precondition) => Promise<MutationResult>;
  /** More of the answer once it worked, from the farm as stored then. */
  extra?: (row: FarmRow, input: { body: B; mark: number }) => { body?: Record<string, unknown>; headers?: Record<string, string> } | ApiAnswer;
}

/**
 * One change to an existing farm through the farm service, as every
 * /api/v1/farms/{name}/… action makes it: the login (401), the role (403,
 * audited), the mark and the body (400/413/415), the farm's version checked
 * inside the service's serialized write (If-Match stale: 409; a backend
 * that is not there: 404), then the service's result as the answer with the
 * farm as stored now and its new ETag, and the audit entry with the farm
 * before and after.
 */
export async function farmAction<B = undefined>(req: Request, ctx: Ctx, spec: FarmActionSpec<B>): Promise<Response> {
  const { caller: c, refusal } = await caller();
  if (refusal) return refusal;
  const no = await refuse(c, spec.permission, spec.what);
  if (no) return no;
  const params = await ctx.params;
  const name = params.name ?? "";
  let before: unknown;
  const done = async (a: ApiAnswer, after?: unknown) => {
    await auditMutation(c, { action: spec.action, farm: name, status: a.status, message: messageOf(a), before, after });
    return answer(a);
  };
  let mark = 0;
  if (spec.backend) {
    const m = parseMarkParam(params.mark ?? "");
    if ("refusal" in m) return done(m.refusal);
    mark = m.mark;
  }
  let body = undefined as B;
  if (spec.parse) {
    const raw = await readJsonBody(req);
    if ("refusal" in raw) return done(raw.refusal);
    const p = spec.parse(raw.json);
    if ("refusal" in p) return done(p.refusal);
    body = p.value;
  } else if (spec.body) {
    const p = await parseBody(req, spec.body, { optional: spec.bodyOptional });
    if ("refusal" in p) return done(p.refusal);
    body = p.data;
  }
  const ifMatch = req.headers.get("if-match");
  let early: ApiAnswer | null = null;
  const precondition: Precondition = (row) => {
    const tag = etagOf(row);
    if (!matches(ifMatch, tag)) return ((early = staleVersion(row.name, tag)), "stale");
    if (spec.backend && !row.backends.some((b) => b.mark === mark)) return ((early = noBackend(row.name, mark)), "no backend");
    before = farmView(row);
    return null;
  };
  const service = await farmService();
  const input = { body, mark };
  const r = await asCaller(c, () => spec.run(service, name, input, precondition));
  if (early) return done(early);
  const a = resultAnswer(r, spec.okStatus);
  let after: unknown;
  if (r.ok || r.reason === "apply-failed") {
    const row = await service.getFarm(name);
    if (row) {
      after = farmView(row);
      a.body.farmConfig = after;
      a.headers = { ETag: etagOf(row) };
      if (r.ok && spec.extra) {
        const more = spec.extra(row, input);
        if ("status" in more) return done(more, after);
        Object.assign(a.body, more.body);
        a.headers = { ...a.headers, ...more.headers };
      }
    }
  }
  return done(a, after);
}

/** 409: the farm changed since the version the client holds. */
export function staleVersion(name: string, current: string): ApiAnswer {
  return {
    status: 409,
    body: { error: `farm "${name}" changed since that version (If-Match is stale; its version is now ${current}): read it again; nothing was changed`, issues: [] },
    headers: { ETag: current },
  };
}

/** A read: the login, then the answer (any role), never cached. */
export async function read(run: (c: Caller) => Promise<Response | ApiAnswer>): Promise<Response> {
  const c = await caller();
  if (c.refusal) return c.refusal;
  const r = await run(c.caller);
  return r instanceof Response ? r : answer(r);
}

export const json = (body: unknown, headers: Record<string, string> = {}): Response => Response.json(body, { headers: { ...NO_STORE, ...headers } });
