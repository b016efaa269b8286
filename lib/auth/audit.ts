import { z } from "zod";
import type { Prisma, PrismaClient } from "../generated/prisma/client.ts";

/**
 * The audit log: one row per login, failed login (and whether the name or
 * address was locked), logout, first setup, refused request, and user or
 * token change. Rows are only ever added. Writing one never makes the
 * audited operation fail: a write error is reported on stderr.
 */
export interface AuditInput {
  actor: string | null;
  via: "session" | "token" | "cli" | "anonymous";
  address?: string | null;
  action: string;
  farm?: string | null;
  result: "ok" | "failed" | "invalid" | "locked" | "refused";
  detail?: string | null;
  at?: Date;
}

/** A change's detail carries the farm before and after (a farm of many backends runs to tens of kilobytes). */
export const DETAIL_MAX = 64 * 1024;

export async function audit(db: PrismaClient, e: AuditInput): Promise<void> {
  try {
    await db.auditEntry.create({
      data: { at: e.at ?? new Date(), actor: e.actor, via: e.via, address: e.address ?? null, action: e.action, farm: e.farm ?? null, result: e.result, detail: e.detail?.slice(0, DETAIL_MAX) ?? null },
    });
  } catch (err) {
    process.stderr.write(`natfarm: audit entry not written (${e.action} by ${e.actor ?? "nobody"}): ${(err as Error).message}\n`);
  }
}

export function recentAudit(db: PrismaClient, limit = 200) {
  return db.auditEntry.findMany({ orderBy: { id: "desc" }, take: limit });
}

/**
 * What the History page's filters, its JSON-lines export and
 * `GET /api/v1/audit` select by. A kind groups actions: `session` (login,
 * logout, setup), `change` (every farm, backend, apply or lab mutation, from
 * the console, the CLI or the API), `refused`, `user` and `token` changes.
 */
export const AUDIT_KINDS = ["session", "change", "refused", "user", "token"] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];
export const AUDIT_RESULTS = ["ok", "failed", "invalid", "locked", "refused"] as const;

// login.password: the password was right and the TOTP code was asked (the code's outcome is the "login" entry).
const SESSION_ACTIONS = ["login", "login.password", "logout", "setup"];

export function auditKind(action: string): AuditKind {
  if (SESSION_ACTIONS.includes(action)) return "session";
  if (action === "refused") return "refused";
  if (action.startsWith("user.")) return "user";
  if (action.startsWith("token.")) return "token";
  return "change";
}

const optionalText = z
  .string()
  .trim()
  .max(64, "at most 64 characters")
  .transform((s) => (s === "" ? undefined : s))
  .optional();

export const AuditFilterSchema = z
  .object({
    actor: optionalText,
    farm: optionalText,
    kind: z.enum(AUDIT_KINDS).optional(),
    result: z.enum(AUDIT_RESULTS).optional(),
    since: z.coerce.date({ error: "an ISO 8601 time, e.g. 2026-12-01T10:00:00Z" }).optional(),
    until: z.coerce.date({ error: "an ISO 8601 time, e.g. 2026-12-01T10:00:00Z" }).optional(),
    /** Entries older than this id (the previous page's last id). */
    before: z.coerce.number().int().positive().optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(200),
  })
  .strict();
export type AuditFilter = z.output<typeof AuditFilterSchema>;

function kindWhere(kind: AuditKind): Prisma.AuditEntryWhereInput {
  switch (kind) {
    case "session":
      return { action: { in: SESSION_ACTIONS } };
    case "refused":
      return { action: "refused" };
    case "user":
      return { action: { startsWith: "user." } };
    case "token":
      return { action: { startsWith: "token." } };
    case "change":
      return { NOT: [{ action: { in: [...SESSION_ACTIONS, "refused"] } }, { action: { startsWith: "user." } }, { action: { startsWith: "token." } }] };
  }
}

/** Newest first. */
export function queryAudit(db: PrismaClient, f: AuditFilter) {
  const where: Prisma.AuditEntryWhereInput = {
    ...(f.actor ? { actor: f.actor } : {}),
    ...(f.farm ? { farm: f.farm } : {}),
    ...(f.result ? { result: f.result } : {}),
    ...(f.since || f.until ? { at: { ...(f.since ? { gte: f.since } : {}), ...(f.until ? { lte: f.until } : {}) } } : {}),
    ...(f.before ? { id: { lt: f.before } } : {}),
    ...(f.kind ? { AND: [kindWhere(f.kind)] } : {}),
  };
  return db.auditEntry.findMany({ where, orderBy: { id: "desc" }, take: f.limit });
}

export type AuditRow = Awaited<ReturnType<typeof queryAudit>>[number];

/** One entry as the export and the API give it. */
export function auditRecord(e: AuditRow) {
  return { id: e.id, at: e.at.toISOString(), actor: e.actor, via: e.via, address: e.address, action: e.action, kind: auditKind(e.action), farm: e.farm, result: e.result, detail: e.detail };
}

/**
 * The filtered entries as JSON lines (one auditRecord each), newest first,
 * read 1,000 at a time along the `before` cursor so an export of the whole
 * log never holds it in memory. `max`: at most that many (the filter's own
 * `limit` when the caller asked for one); by default every matching entry.
 */
export async function* auditJsonLines(db: PrismaClient, f: AuditFilter, max = Number.POSITIVE_INFINITY): AsyncGenerator<string> {
  let before = f.before;
  let left = max;
  while (left > 0) {
    const take = Math.min(1000, left);
    const rows = await queryAudit(db, { ...f, before, limit: take });
    for (const r of rows) yield `${JSON.stringify(auditRecord(r))}\n`;
    if (rows.length < take) return;
    left -= rows.length;
    before = rows.at(-1)!.id;
  }
}

/** Search parameters (a URL's, a form's) as AuditFilterSchema's input: empty fields left out, repeated ones as given (the schema refuses them). */
export function auditFilterInput(params: URLSearchParams | Record<string, string | string[] | undefined>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const entries = params instanceof URLSearchParams ? [...params.keys()].map((k) => [k, params.getAll(k)] as const) : Object.entries(params);
  for (const [k, v] of entries) {
    const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
    const kept = list.filter((x) => x.trim() !== "");
    if (kept.length === 1) out[k] = kept[0];
    else if (kept.length > 1) out[k] = kept;
  }
  return out;
}
